/*
 * cli/cli.h: the `xs` command-line tool (docs/CLI.md). One context made in main and passed
 * down; the REST API reached through cli_call only (client.c); every command a function of
 * the table in main.c (commands.c, follow.c). Its own layer above lib/: it speaks to the engine
 * only through the REST API, never through the bus or the database.
 */
#ifndef XS_CLI_H
#define XS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Exit codes (docs/CLI.md, "Exit codes"). */
enum {
    CLI_OK = 0,
    CLI_REFUSED = 1,     /* the API refused the request (4xx) */
    CLI_USAGE = 2,       /* a wrong command line or configuration */
    CLI_NOT_DONE = 3,    /* a run ended but did not succeed; connect gave up waiting */
    CLI_UNREACHABLE = 4, /* the API could not be reached, or failed (5xx) */
};

/* The whole tool's state, made once in main. */
typedef struct cli {
    char url[1024]; /* the API's base, no trailing slash */
    char key[1024]; /* the API key */
    char config_path[1024];
    bool json;       /* --json: the API's JSON as it came */
    bool tty;        /* standard output is a terminal */
    void *curl;      /* one CURL handle, reused */
    const char *cmd; /* the command's name, for messages */
} cli;

/* A reply of the API: status and body (owned), parsed (owned) when it is JSON. */
typedef struct cli_reply {
    long status;
    char *body;
    size_t len;
    json_t *json;
} cli_reply;

/* cli_config_load fills c->url and c->key: the defaults, then the config file ($XS_CONFIG, or
 * ~/.config/xs/config when present), then XS_URL and XS_API_KEY. CLI_USAGE, having said why on
 * standard error, when the file cannot be read, is open to others, or holds a bad line. */
int cli_config_load(cli *c);

/* cli_call sends method to path (with its query) with body (borrowed, may be NULL) and keeps
 * the reply in *out (free with cli_reply_free, whatever the outcome). CLI_OK for a 2xx; else,
 * having said what was wrong on standard error, CLI_REFUSED (4xx) or CLI_UNREACHABLE (no
 * answer, or a 5xx). */
int cli_call(cli *c, const char *method, const char *path, const json_t *body, cli_reply *out);

/* cli_reply_free releases what a reply holds. */
void cli_reply_free(cli_reply *r);

/* cli_escape is s escaped for a URL's path segment or query value (new; free()). */
char *cli_escape(cli *c, const char *s);

/* cli_query_add appends "?name=value" or "&name=value" (value escaped) to path (cap bytes)
 * when value is not NULL. */
void cli_query_add(cli *c, char *path, size_t cap, const char *name, const char *value);

/* cli_print_json writes the reply's body as it came, ending with a newline. */
void cli_print_json(const cli_reply *r);

/* cli_fail says "xs CMD: ..." on standard error and returns code. */
int cli_fail(const cli *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* cli_str is the string at key of o, or "-" when absent or null (borrowed). */
const char *cli_str(const json_t *o, const char *key);

#define CLI_MAX_POS  4
#define CLI_MAX_OPTS 8

typedef struct cli_args cli_args;

/* A command: its name, the options it takes ("name" a flag, "name=" with a value), how many
 * positional arguments, its usage line and help. */
typedef struct cli_command {
    const char *name;
    int (*run)(cli *c, const cli_args *a);
    const char *opts[CLI_MAX_OPTS + 1];
    int min_pos, max_pos;
    const char *usage;
    const char *help;
} cli_command;

/* The parsed command line of one command: its positional arguments and options. */
struct cli_args {
    const cli_command *cmd;
    const char *pos[CLI_MAX_POS];
    int npos;
    const char *opt[CLI_MAX_OPTS]; /* by index in cmd->opts; NULL: not given; a flag is "" */
};

/* cli_opt is the value of the command's option name (borrowed; NULL when not given). */
const char *cli_opt(const cli_args *a, const char *name);

/* The commands (commands.c, follow.c). */
int cli_connect(cli *c, const cli_args *a);
int cli_organisations(cli *c, const cli_args *a);
int cli_organisation(cli *c, const cli_args *a);
int cli_connections(cli *c, const cli_args *a);
int cli_connection(cli *c, const cli_args *a);
int cli_sync(cli *c, const cli_args *a);
int cli_runs(cli *c, const cli_args *a);
int cli_run(cli *c, const cli_args *a);
int cli_conflicts(cli *c, const cli_args *a);
int cli_resolve(cli *c, const cli_args *a);
int cli_cancel(cli *c, const cli_args *a);
int cli_pause(cli *c, const cli_args *a);
int cli_resume(cli *c, const cli_args *a);
int cli_stats(cli *c, const cli_args *a);
int cli_mappings(cli *c, const cli_args *a);

/* cli_run_print writes a run (GET /v1/runs/{id}) for people. */
void cli_run_print(const json_t *run);

/* cli_now_ms is the monotonic time in milliseconds. */
int64_t cli_now_ms(void);

#endif
