/*
 * config.h: configuration from environment variables, read and validated once at start.
 *
 * Every variable any xero-sync process reads is declared in one table, xs_config_vars
 * (config_vars.c): name, type, default, bounds, which processes read it and what it means.
 * docs/CONFIG.md is checked against that table by a test, so the documentation cannot drift.
 * xs_config_load reads the variables a process uses, checks every one, and on the first
 * bad one returns XS_ECONFIG with one clear message naming it, e.g.
 *   XS_HTTP_PORT: must be an integer from 1 to 65535, got "80a"
 * After loading, a configuration is immutable and safe to read from any thread.
 */
#ifndef XS_CONFIG_H
#define XS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"

/* Processes, as a bit set in xs_config_var.used_by. */
#define XS_PROC_ORCHESTRATOR 0x01u
#define XS_PROC_AUTH         0x02u
#define XS_PROC_CONTACTS     0x04u
#define XS_PROC_INVOICES     0x08u
#define XS_PROC_PAYMENTS     0x10u
#define XS_PROC_MIGRATE      0x20u
#define XS_PROC_SIM          0x40u
#define XS_PROC_FILES        0x80u
#define XS_PROC_JOBS         0x100u
/* The services that sync entities over the engine's steps. */
#define XS_PROC_SYNCERS                                                                            \
    (XS_PROC_CONTACTS | XS_PROC_INVOICES | XS_PROC_PAYMENTS | XS_PROC_FILES | XS_PROC_JOBS)
#define XS_PROC_DOMAINS (XS_PROC_AUTH | XS_PROC_SYNCERS)
#define XS_PROC_ENGINE  (XS_PROC_ORCHESTRATOR | XS_PROC_DOMAINS)
#define XS_PROC_ALL     0x1ffu

typedef enum xs_config_type {
    XS_CFG_STRING,   /* any non-empty text */
    XS_CFG_INT,      /* decimal integer within [min, max] */
    XS_CFG_BOOL,     /* true/false/1/0/yes/no/on/off */
    XS_CFG_ENUM,     /* one of the '|'-separated words in `choices` */
    XS_CFG_URL,      /* text with a "scheme://" prefix; `choices` lists allowed schemes */
    XS_CFG_SECRET,   /* text never logged or echoed back in errors */
    XS_CFG_DURATION, /* milliseconds: "250", "250ms", "30s", "5m", "2h", "30d", in [min, max] ms */
} xs_config_type;

typedef struct xs_config_var {
    const char *name;    /* "XS_HTTP_PORT" */
    xs_config_type type; /* how the value is checked */
    const char *dflt;    /* default text; NULL: required (unless `optional`) */
    bool optional;       /* may be absent with no default (read back as NULL / not set) */
    int64_t min, max;    /* bounds for INT and DURATION */
    const char *choices; /* ENUM words or URL schemes, '|'-separated; NULL otherwise */
    unsigned used_by;    /* XS_PROC_* bits */
    const char *doc;     /* one sentence: what it means */
} xs_config_var;

/* xs_config_vars is the one table of every variable; xs_config_nvars is its length. */
extern const xs_config_var xs_config_vars[];
extern const size_t xs_config_nvars;

typedef struct xs_config xs_config;

/* Room for xs_config_load's message, for callers' buffers. */
#define XS_CONFIG_ERR_MAX 320

/* xs_config_load reads, from the process environment, every variable whose used_by has
 * a bit of proc, validates them all, and makes *out (new). On the first invalid or missing
 * variable (in table order) it returns XS_ECONFIG and writes one line naming it into err
 * (XS_CONFIG_ERR_MAX bytes; err may be NULL); a secret's value is never repeated in the
 * message. An empty value ("NAME=") counts as unset: the default applies, an optional
 * variable stays unset, and a required one is reported as "NAME: required but not set".
 * Values are taken as given (no trimming). Rules per type: INT an optional '-' and decimal
 * digits; DURATION decimal digits with an optional lower-case unit ms, s, m, h or d (none
 * means ms); BOOL true/false/1/0/yes/no/on/off in any case; ENUM exactly one of the choices; URL
 * "scheme://" plus at least one character, the scheme one of the choices; STRING and
 * SECRET anything but blank (only whitespace: "must not be empty"). Messages read, e.g.:
 *   XS_HTTP_PORT: must be an integer from 1 to 65535, got "80a"
 *   XS_API_KEYS: must not be empty
 * with the bad value quoted (escaped, cut after 64 bytes) except for secrets. A built-in
 * default that fails its own check is reported with " (the built-in default)" appended.
 * XS_EINVAL for out NULL or proc 0 or outside XS_PROC_ALL; XS_ENOMEM. */
xs_err xs_config_load(xs_config **out, unsigned proc, char *err);

/* xs_config_load_from is xs_config_load reading from envp (a NULL-terminated "NAME=value"
 * array; envp NULL is an empty environment; the first entry for a name wins) instead of
 * the process environment; for tests. */
xs_err xs_config_load_from(xs_config **out, unsigned proc, char *const *envp, char *err);

/* xs_config_check validates text as a value of var by the rules of xs_config_load (text ""
 * is invalid here: the loader handles "unset" before checking). On success returns XS_OK
 * and, when num is not NULL, writes the number (INT; DURATION in ms; BOOL 1 or 0; 0 for
 * other types). Otherwise returns XS_ECONFIG with "NAME: reason" in err (XS_CONFIG_ERR_MAX
 * bytes, may be NULL), never quoting a secret. XS_EINVAL when var or text is NULL. */
xs_err xs_config_check(const xs_config_var *var, const char *text, int64_t *num, char *err);

/* xs_config_destroy frees cfg, overwriting secret values with zeros first; NULL is
 * accepted. */
void xs_config_destroy(xs_config *cfg);

/*
 * Accessors. `name` must be a variable in the table used by the loaded process; asking for
 * any other, or xs_config_int / xs_config_bool for a variable of another type, is a
 * programming error and aborts with a message on stderr. xs_config_str returns the text
 * (borrowed; NULL when optional and unset), also for INT, BOOL, ENUM, URL, DURATION and
 * SECRET. xs_config_int and xs_config_bool return 0 / false for an optional unset variable.
 */
const char *xs_config_str(const xs_config *cfg, const char *name);
int64_t xs_config_int(const xs_config *cfg, const char *name); /* INT and DURATION (ms) */
bool xs_config_bool(const xs_config *cfg, const char *name);   /* BOOL */
bool xs_config_is_set(const xs_config *cfg, const char *name); /* given or defaulted */

/* xs_config_find returns the table entry for name, or NULL. */
const xs_config_var *xs_config_find(const char *name);

/* xs_config_markdown writes the documentation table (one row per variable: name, default,
 * processes, meaning) into *out (new, free with free()). docs/CONFIG.md embeds it. Columns
 * are "| Variable | Default | Used by | Meaning |", rows in table order, each ending in
 * "\n": the name in backticks; the default in backticks, or "(required)", or "(unset)"
 * for an optional variable; the processes comma-separated in XS_PROC_* bit order
 * (orchestrator, auth, contacts, invoices, payments, migrate, xero-sim), where "all
 * processes" stands for every one, "engine services" for the orchestrator and the four
 * domain services, and "domain services" for auth, contacts, invoices and payments; the
 * doc sentence. '|' in cells is escaped as "\|". The output depends only on the table.
 * XS_EINVAL when out is NULL, XS_ENOMEM. */
xs_err xs_config_markdown(char **out);

#endif
