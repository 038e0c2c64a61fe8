/* config.c: configuration from environment variables, checked against xs_config_vars. */
#include "xs/config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xs/buf.h"

/* Most bytes of a bad value repeated in an error message; longer values are cut. */
#define ECHO_MAX 64
/* Room for a repeated value once escaped, and for check_value's reason. */
#define ECHO_ROOM  100
#define REASON_MAX 256

/* One loaded variable, at the same index as its entry in xs_config_vars. */
typedef struct xs_config_value {
    char *text;  /* the value as given or defaulted (new); NULL when not set */
    int64_t num; /* INT and DURATION (ms): the number; BOOL: 1 or 0 */
    bool set;
} xs_config_value;

struct xs_config {
    unsigned proc;
    xs_config_value vals[]; /* xs_config_nvars entries */
};

/* Process names, in XS_PROC_* bit order. */
static const char *const proc_names[] = {"orchestrator", "auth",     "contacts",
                                         "invoices",     "payments", "migrate",
                                         "xero-sim",     "files",    "jobs"};

/* config_die reports a programming error (fn called with name) on stderr and aborts. */
static _Noreturn void config_die(const char *fn, const char *name, const char *why)
{
    fprintf(stderr, "%s: %s %s\n", fn, name != NULL ? name : "(null)", why);
    fflush(stderr);
    abort();
}

/* var_index returns the index of name in xs_config_vars, or xs_config_nvars. */
static size_t var_index(const char *name)
{
    if (name == NULL) {
        return xs_config_nvars;
    }
    for (size_t i = 0; i < xs_config_nvars; i++) {
        if (strcmp(xs_config_vars[i].name, name) == 0) {
            return i;
        }
    }
    return xs_config_nvars;
}

const xs_config_var *xs_config_find(const char *name)
{
    size_t i = var_index(name);
    return i < xs_config_nvars ? &xs_config_vars[i] : NULL;
}

/* env_lookup returns the value of the first "name=value" entry of envp (borrowed), or NULL.
 * envp NULL is an empty environment. */
static const char *env_lookup(char *const *envp, const char *name)
{
    if (envp == NULL) {
        return NULL;
    }
    size_t n = strlen(name);
    for (size_t i = 0; envp[i] != NULL; i++) {
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=') {
            return envp[i] + n + 1;
        }
    }
    return NULL;
}

/* echo_value writes text into buf (size bytes) as it may appear inside double quotes in a
 * one-line message: '"', '\\' and control bytes escaped, cut after ECHO_MAX bytes with
 * "...". */
static void echo_value(const char *text, char *buf, size_t size)
{
    size_t w = 0;
    size_t i = 0;
    for (; text[i] != '\0' && i < ECHO_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        char piece[8];
        if (c == '"' || c == '\\') {
            snprintf(piece, sizeof(piece), "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(piece, sizeof(piece), "\\x%02x", c);
        } else {
            piece[0] = (char)c;
            piece[1] = '\0';
        }
        size_t n = strlen(piece);
        if (w + n + 4 >= size) {
            break;
        }
        memcpy(buf + w, piece, n);
        w += n;
    }
    if (text[i] != '\0' && w + 4 <= size) {
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w] = '\0';
}

/* parse_int reads an optional '-' and decimal digits, nothing else, into *out. */
static bool parse_int(const char *text, int64_t *out)
{
    const char *p = text;
    bool neg = *p == '-';
    if (neg) {
        p++;
    }
    if (*p == '\0') {
        return false;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (limit - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* parse_duration reads decimal digits with an optional unit (ms, s, m, h, d; none means ms)
 * into milliseconds; false on bad syntax or overflow. */
static bool parse_duration(const char *text, int64_t *out)
{
    const char *p = text;
    int64_t v = 0;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    int64_t unit;
    if (*p == '\0' || strcmp(p, "ms") == 0) {
        unit = 1;
    } else if (strcmp(p, "s") == 0) {
        unit = 1000;
    } else if (strcmp(p, "m") == 0) {
        unit = 60 * 1000;
    } else if (strcmp(p, "h") == 0) {
        unit = 3600 * 1000;
    } else if (strcmp(p, "d") == 0) {
        unit = 86400 * 1000;
    } else {
        return false;
    }
    if (v > INT64_MAX / unit) {
        return false;
    }
    *out = v * unit;
    return true;
}

/* format_duration writes ms in the largest unit that divides it exactly ("1m", "50ms",
 * "0ms") into buf (32 bytes). */
static void format_duration(int64_t ms, char *buf)
{
    if (ms != 0 && ms % (86400 * 1000) == 0) {
        snprintf(buf, 32, "%" PRId64 "d", ms / (86400 * 1000));
    } else if (ms != 0 && ms % (3600 * 1000) == 0) {
        snprintf(buf, 32, "%" PRId64 "h", ms / (3600 * 1000));
    } else if (ms != 0 && ms % (60 * 1000) == 0) {
        snprintf(buf, 32, "%" PRId64 "m", ms / (60 * 1000));
    } else if (ms != 0 && ms % 1000 == 0) {
        snprintf(buf, 32, "%" PRId64 "s", ms / 1000);
    } else {
        snprintf(buf, 32, "%" PRId64 "ms", ms);
    }
}

/* parse_bool reads true/false/1/0/yes/no/on/off, case-insensitively. */
static bool parse_bool(const char *text, int64_t *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

/* choice_has tells whether the '|'-separated list choices holds the word s[0..n). */
static bool choice_has(const char *choices, const char *s, size_t n)
{
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, s, n) == 0) {
            return true;
        }
        if (bar == NULL) {
            return false;
        }
        p = bar + 1;
    }
}

/* choices_text writes the '|'-separated choices as "a, b, c", each word followed by
 * suffix, into buf (size bytes). */
static void choices_text(const char *choices, const char *suffix, char *buf, size_t size)
{
    size_t w = 0;
    buf[0] = '\0';
    for (const char *p = choices; *p != '\0' && w + 1 < size; p++) {
        int n;
        if (*p == '|') {
            n = snprintf(buf + w, size - w, "%s, ", suffix);
        } else {
            n = snprintf(buf + w, size - w, "%c", *p);
        }
        if (n < 0 || (size_t)n >= size - w) {
            return;
        }
        w += (size_t)n;
    }
    snprintf(buf + w, size - w, "%s", suffix);
}

/* url_ok checks "scheme://rest" with a non-empty rest and, when choices is not NULL, a
 * scheme from choices; without choices any RFC 3986 scheme is accepted. */
static bool url_ok(const char *text, const char *choices)
{
    const char *sep = strstr(text, "://");
    if (sep == NULL || sep == text || sep[3] == '\0') {
        return false;
    }
    size_t n = (size_t)(sep - text);
    if (choices != NULL) {
        return choice_has(choices, text, n);
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) {
            return false;
        }
    }
    return true;
}

/* is_blank tells whether text holds only spaces, tabs and line breaks. */
static bool is_blank(const char *text)
{
    return text[strspn(text, " \t\r\n\v\f")] == '\0';
}

/* check_value validates text for v. On success sets *num (see xs_config_value) and
 * returns true; otherwise writes the reason, without the variable's name, into msg (size
 * bytes). A secret's text is never written into msg. */
static bool check_value(const xs_config_var *v, const char *text, int64_t *num, char *msg,
                        size_t size)
{
    /* Filled only on the failure paths of non-secret types, so a secret never reaches it. */
    char echo[ECHO_ROOM];
    *num = 0;
    switch (v->type) {
    case XS_CFG_STRING:
    case XS_CFG_SECRET:
        if (is_blank(text)) {
            snprintf(msg, size, "must not be empty");
            return false;
        }
        return true;
    case XS_CFG_INT:
        if (!parse_int(text, num) || *num < v->min || *num > v->max) {
            echo_value(text, echo, sizeof(echo));
            snprintf(msg, size, "must be an integer from %" PRId64 " to %" PRId64 ", got \"%s\"",
                     v->min, v->max, echo);
            return false;
        }
        return true;
    case XS_CFG_DURATION:
        if (!parse_duration(text, num) || *num < v->min || *num > v->max) {
            echo_value(text, echo, sizeof(echo));
            char lo[32], hi[32];
            format_duration(v->min, lo);
            format_duration(v->max, hi);
            snprintf(msg, size,
                     "must be a duration from %s to %s (milliseconds, or a number with ms, s, m, "
                     "h or d), got \"%s\"",
                     lo, hi, echo);
            return false;
        }
        return true;
    case XS_CFG_BOOL:
        if (!parse_bool(text, num)) {
            echo_value(text, echo, sizeof(echo));
            snprintf(msg, size, "must be true/false, 1/0, yes/no or on/off, got \"%s\"", echo);
            return false;
        }
        return true;
    case XS_CFG_ENUM:
        if (v->choices == NULL || !choice_has(v->choices, text, strlen(text))) {
            echo_value(text, echo, sizeof(echo));
            char list[64];
            choices_text(v->choices != NULL ? v->choices : "", "", list, sizeof(list));
            snprintf(msg, size, "must be one of %s, got \"%s\"", list, echo);
            return false;
        }
        return true;
    case XS_CFG_URL:
        if (!url_ok(text, v->choices)) {
            echo_value(text, echo, sizeof(echo));
            char list[64];
            if (v->choices != NULL) {
                choices_text(v->choices, "://", list, sizeof(list));
            } else {
                snprintf(list, sizeof(list), "scheme://");
            }
            snprintf(msg, size, "must be a URL starting with %s, got \"%s\"", list, echo);
            return false;
        }
        return true;
    }
    snprintf(msg, size, "has an unknown type");
    return false;
}

/* config_fail writes "NAME: reason" into err (when not NULL) and returns XS_ECONFIG. */
static xs_err config_fail(char *err, const char *name, const char *reason, bool from_default)
{
    if (err != NULL) {
        snprintf(err, XS_CONFIG_ERR_MAX, "%s: %s%s", name, reason,
                 from_default ? " (the built-in default)" : "");
    }
    return XS_ECONFIG;
}

xs_err xs_config_check(const xs_config_var *var, const char *text, int64_t *num, char *err)
{
    if (err != NULL) {
        err[0] = '\0';
    }
    if (var == NULL || text == NULL) {
        if (err != NULL) {
            snprintf(err, XS_CONFIG_ERR_MAX, "xs_config_check: invalid arguments");
        }
        return XS_EINVAL;
    }
    char reason[REASON_MAX];
    int64_t n;
    if (!check_value(var, text, &n, reason, sizeof(reason))) {
        return config_fail(err, var->name, reason, false);
    }
    if (num != NULL) {
        *num = n;
    }
    return XS_OK;
}

xs_err xs_config_load_from(xs_config **out, unsigned proc, char *const *envp, char *err)
{
    if (err != NULL) {
        err[0] = '\0';
    }
    if (out == NULL || proc == 0 || (proc & ~XS_PROC_ALL) != 0) {
        if (err != NULL) {
            snprintf(err, XS_CONFIG_ERR_MAX, "xs_config_load: invalid arguments");
        }
        return XS_EINVAL;
    }
    xs_config *cfg = calloc(1, sizeof(*cfg) + xs_config_nvars * sizeof(xs_config_value));
    if (cfg == NULL) {
        goto nomem;
    }
    cfg->proc = proc;
    for (size_t i = 0; i < xs_config_nvars; i++) {
        const xs_config_var *v = &xs_config_vars[i];
        if ((v->used_by & proc) == 0) {
            continue;
        }
        const char *text = env_lookup(envp, v->name);
        bool from_default = false;
        /* "NAME=" counts as unset, so an empty assignment falls back to the default. */
        if (text == NULL || text[0] == '\0') {
            if (v->dflt != NULL) {
                text = v->dflt;
                from_default = true;
            } else if (v->optional) {
                continue;
            } else {
                xs_config_destroy(cfg);
                return config_fail(err, v->name, "required but not set", false);
            }
        }
        char reason[REASON_MAX];
        int64_t num;
        if (!check_value(v, text, &num, reason, sizeof(reason))) {
            xs_config_destroy(cfg);
            return config_fail(err, v->name, reason, from_default);
        }
        cfg->vals[i].text = strdup(text);
        if (cfg->vals[i].text == NULL) {
            goto nomem;
        }
        cfg->vals[i].num = num;
        cfg->vals[i].set = true;
    }
    *out = cfg;
    return XS_OK;
nomem:
    xs_config_destroy(cfg);
    if (err != NULL) {
        snprintf(err, XS_CONFIG_ERR_MAX, "xs_config_load: out of memory");
    }
    return XS_ENOMEM;
}

xs_err xs_config_load(xs_config **out, unsigned proc, char *err)
{
    return xs_config_load_from(out, proc, environ, err);
}

void xs_config_destroy(xs_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < xs_config_nvars; i++) {
        char *t = cfg->vals[i].text;
        if (t == NULL) {
            continue;
        }
        if (xs_config_vars[i].type == XS_CFG_SECRET) {
            explicit_bzero(t, strlen(t));
        }
        free(t);
    }
    free(cfg);
}

/* value_of returns the loaded value of name, aborting (on behalf of fn) when cfg is NULL,
 * name is not in the table, or the loaded process does not read it. */
static const xs_config_value *value_of(const xs_config *cfg, const char *name, const char *fn,
                                       const xs_config_var **var)
{
    if (cfg == NULL) {
        config_die(fn, name, "asked of a NULL configuration");
    }
    size_t i = var_index(name);
    if (i == xs_config_nvars) {
        config_die(fn, name, "is not a configuration variable (see config_vars.c)");
    }
    if ((xs_config_vars[i].used_by & cfg->proc) == 0) {
        config_die(fn, name, "is not read by this process (see used_by in config_vars.c)");
    }
    *var = &xs_config_vars[i];
    return &cfg->vals[i];
}

const char *xs_config_str(const xs_config *cfg, const char *name)
{
    const xs_config_var *v;
    return value_of(cfg, name, "xs_config_str", &v)->text;
}

int64_t xs_config_int(const xs_config *cfg, const char *name)
{
    const xs_config_var *v;
    const xs_config_value *val = value_of(cfg, name, "xs_config_int", &v);
    if (v->type != XS_CFG_INT && v->type != XS_CFG_DURATION) {
        config_die("xs_config_int", name, "is not an INT or DURATION variable");
    }
    return val->num;
}

bool xs_config_bool(const xs_config *cfg, const char *name)
{
    const xs_config_var *v;
    const xs_config_value *val = value_of(cfg, name, "xs_config_bool", &v);
    if (v->type != XS_CFG_BOOL) {
        config_die("xs_config_bool", name, "is not a BOOL variable");
    }
    return val->num != 0;
}

bool xs_config_is_set(const xs_config *cfg, const char *name)
{
    const xs_config_var *v;
    return value_of(cfg, name, "xs_config_is_set", &v)->set;
}

/* The markdown below is appended without checking each append: a failure shows in the
 * buffer's failed flag, checked once by xs_buf_take. */

/* md_cell appends s as table-cell text: '|' escaped, line breaks as spaces. */
static void md_cell(xs_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|') {
            xs_buf_append(b, "\\|", 2);
        } else if (*s == '\n' || *s == '\r') {
            xs_buf_append(b, " ", 1);
        } else {
            xs_buf_append(b, s, 1);
        }
    }
}

/* md_used_by appends the process list of used_by: "all processes" for every process,
 * otherwise names in XS_PROC_* order, with "engine services" standing for the orchestrator
 * and the four domain services and "domain services" for the four domain services. */
static void md_used_by(xs_buf *b, unsigned used_by)
{
    if ((used_by & XS_PROC_ALL) == XS_PROC_ALL) {
        xs_buf_puts(b, "all processes");
        return;
    }
    const char *sep = "";
    unsigned rest = used_by;
    if ((rest & XS_PROC_ENGINE) == XS_PROC_ENGINE) {
        xs_buf_puts(b, "engine services");
        rest &= ~XS_PROC_ENGINE;
        sep = ", ";
    } else if ((rest & XS_PROC_DOMAINS) == XS_PROC_DOMAINS) {
        xs_buf_puts(b, "domain services");
        rest &= ~XS_PROC_DOMAINS;
        sep = ", ";
    }
    for (size_t i = 0; i < sizeof(proc_names) / sizeof(proc_names[0]); i++) {
        if (rest & (1u << i)) {
            xs_buf_puts(b, sep);
            xs_buf_puts(b, proc_names[i]);
            sep = ", ";
        }
    }
}

xs_err xs_config_markdown(char **out)
{
    if (out == NULL) {
        return XS_EINVAL;
    }
    xs_buf b;
    xs_buf_init(&b, 1024);
    xs_buf_puts(&b, "| Variable | Default | Used by | Meaning |\n");
    xs_buf_puts(&b, "|---|---|---|---|\n");
    for (size_t i = 0; i < xs_config_nvars; i++) {
        const xs_config_var *v = &xs_config_vars[i];
        xs_buf_puts(&b, "| `");
        md_cell(&b, v->name);
        xs_buf_puts(&b, "` | ");
        if (v->dflt != NULL) {
            xs_buf_puts(&b, "`");
            md_cell(&b, v->dflt);
            xs_buf_puts(&b, "`");
        } else {
            xs_buf_puts(&b, v->optional ? "(unset)" : "(required)");
        }
        xs_buf_puts(&b, " | ");
        md_used_by(&b, v->used_by);
        xs_buf_puts(&b, " | ");
        md_cell(&b, v->doc != NULL ? v->doc : "");
        xs_buf_puts(&b, " |\n");
    }
    char *text = xs_buf_take(&b, NULL);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    *out = text;
    return XS_OK;
}
