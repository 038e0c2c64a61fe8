/*
 * main.c: `xs`, the command-line tool of xero-sync (docs/CLI.md). Reads the command line
 * against the table of commands, loads where the API is and its key, and runs the command;
 * its return is the exit code.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

static const cli_command COMMANDS[] = {
    {"connect",
     cli_connect,
     {"redirect-uri=", "no-wait", "open", "timeout="},
     1,
     1,
     "xs connect ORGANISATION_ID [--redirect-uri URI] [--open] [--no-wait] [--timeout SECONDS]",
     "Asks for the Xero consent URL of the organisation and prints it (--open also opens it\n"
     "with xdg-open), then waits until a new active connection of the organisation appears\n"
     "and prints it (at most --timeout seconds, 900 by default; --no-wait: not at all)."},
    {"organisations",
     cli_organisations,
     {NULL},
     0,
     0,
     "xs organisations",
     "Lists the host application's organisations."},
    {"organisation",
     cli_organisation,
     {NULL},
     1,
     2,
     "xs organisation ID | xs organisation create NAME",
     "Shows one organisation, or makes one named NAME."},
    {"connections",
     cli_connections,
     {"organisation=", "status="},
     0,
     0,
     "xs connections [--organisation ID] [--status active|needs_reauth|disconnected|paused]",
     "Lists connections to Xero organisations (tenants)."},
    {"connection", cli_connection, {NULL}, 1, 1, "xs connection ID", "Shows one connection."},
    {"sync",
     cli_sync,
     {"mode=", "entities=", "no-wait"},
     1,
     1,
     "xs sync CONNECTION [--mode full|incremental|push] [--entities contact,invoice,...] "
     "[--no-wait]",
     "Starts a run of the connection (incremental by default) and follows it until it ends:\n"
     "on a terminal a progress bar per entity (records done of the estimated total, rate,\n"
     "time left, the run's calls to Xero and the tenant's budget left), otherwise a plain\n"
     "line per change. Exits 0 when the run succeeded, 3 when it ended otherwise. Ctrl-C\n"
     "stops following; the run goes on."},
    {"runs",
     cli_runs,
     {"connection=", "status=", "limit="},
     0,
     0,
     "xs runs [--connection ID] [--status S] [--limit N]",
     "Lists runs, the latest first (status: queued, running, succeeded, failed, partial,\n"
     "canceled; limit 1 to 1000, 50 by default)."},
    {"run",
     cli_run,
     {NULL},
     1,
     1,
     "xs run ID",
     "Shows one run: its progress, counts, failed steps and record errors."},
    {"conflicts",
     cli_conflicts,
     {"connection=", "status="},
     0,
     0,
     "xs conflicts [--connection ID] [--status PENDING|RESOLVED|IGNORED]",
     "Lists conflicts (records changed on both sides)."},
    {"resolve",
     cli_resolve,
     {NULL},
     2,
     3,
     "xs resolve ID keep-local|keep-xero|ignore | xs resolve ID merge FILE",
     "Settles a conflict: keep-local sends the local record to Xero, keep-xero writes Xero's\n"
     "locally, ignore leaves both as they are, merge keeps the record in FILE (JSON, in the\n"
     "local form; - reads standard input)."},
    {"cancel",
     cli_cancel,
     {NULL},
     1,
     1,
     "xs cancel RUN",
     "Cancels a run: it stops between steps, nothing half-done."},
    {"pause",
     cli_pause,
     {NULL},
     1,
     1,
     "xs pause CONNECTION",
     "Pauses a connection: no scheduled or realtime runs; local changes keep collecting."},
    {"resume", cli_resume, {NULL}, 1, 1, "xs resume CONNECTION", "Resumes a paused connection."},
    {"stats",
     cli_stats,
     {NULL},
     1,
     1,
     "xs stats CONNECTION",
     "Shows a connection's statistics: records linked, conflicts, calls today, the rate\n"
     "budget, webhooks and the work waiting."},
    {"mappings",
     cli_mappings,
     {"entity=", "local-id=", "xero-id=", "connection="},
     0,
     0,
     "xs mappings --entity E (--local-id ID | --xero-id ID) [--connection ID]",
     "Shows how a record is linked: its local id and Xero id per connection."},
};
#define NCOMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

static void usage_all(FILE *f)
{
    fprintf(f, "xs %s: the command-line tool of xero-sync\n\nCommands:\n", XS_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %s\n", COMMANDS[i].usage);
    }
    fprintf(f, "\nEvery command takes --json (the API's JSON as it came) and --help.\n"
               "The API: XS_URL (default http://127.0.0.1:8080) and XS_API_KEY, or url and\n"
               "api_key in the config file ($XS_CONFIG, else ~/.config/xs/config; mode 600).\n"
               "Exit codes: 0 done; 1 the API refused (4xx); 2 a wrong command line or\n"
               "configuration; 3 a run that did not succeed (or connect gave up waiting);\n"
               "4 the API could not be reached or failed (5xx). See docs/CLI.md.\n");
}

static void usage_one(FILE *f, const cli_command *cmd)
{
    fprintf(f, "usage: %s [--json]\n\n%s\n", cmd->usage, cmd->help);
}

const char *cli_opt(const cli_args *a, const char *name)
{
    for (int i = 0; i < CLI_MAX_OPTS && a->cmd->opts[i] != NULL; i++) {
        size_t n = strcspn(a->cmd->opts[i], "=");
        if (strlen(name) == n && strncmp(a->cmd->opts[i], name, n) == 0) {
            return a->opt[i];
        }
    }
    return NULL;
}

/* parse_args reads argv[from..] of cmd into a: options anywhere (--name value, --name=value),
 * --json and --help for every command. CLI_USAGE, said, when something does not fit; -1 for
 * --help. */
static int parse_args(cli *c, const cli_command *cmd, int argc, char **argv, int from, cli_args *a)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    bool help = false;
    for (int i = from; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            help = true;
            continue;
        }
        if (strncmp(s, "--", 2) != 0 || strcmp(s, "-") == 0) {
            if (a->npos >= cmd->max_pos) {
                return cli_fail(c, CLI_USAGE, "unexpected argument `%s`\nusage: %s", s, cmd->usage);
            }
            a->pos[a->npos++] = s;
            continue;
        }
        const char *name = s + 2, *eq = strchr(name, '=');
        size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
        int k = 0;
        for (; k < CLI_MAX_OPTS && cmd->opts[k] != NULL; k++) {
            size_t m = strcspn(cmd->opts[k], "=");
            if (m == n && strncmp(cmd->opts[k], name, n) == 0) {
                break;
            }
        }
        if (k >= CLI_MAX_OPTS || cmd->opts[k] == NULL) {
            return cli_fail(c, CLI_USAGE, "unknown option `%.*s`\nusage: %s", (int)n + 2, s,
                            cmd->usage);
        }
        bool takes = strchr(cmd->opts[k], '=') != NULL;
        if (takes && eq != NULL) {
            a->opt[k] = eq + 1;
        } else if (takes && i + 1 < argc) {
            a->opt[k] = argv[++i];
        } else if (takes) {
            return cli_fail(c, CLI_USAGE, "option --%.*s needs a value\nusage: %s", (int)n, name,
                            cmd->usage);
        } else if (eq != NULL) {
            return cli_fail(c, CLI_USAGE, "option --%.*s takes no value", (int)n, name);
        } else {
            a->opt[k] = "";
        }
    }
    if (help) {
        return -1;
    }
    if (a->npos < cmd->min_pos) {
        return cli_fail(c, CLI_USAGE, "missing argument\nusage: %s", cmd->usage);
    }
    return CLI_OK;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof(c));
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--version") == 0) {
            printf("xs %s\n", XS_VERSION);
            return CLI_OK;
        }
        if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
            usage_all(stdout);
            return CLI_OK;
        }
        if (strcmp(argv[first], "--json") != 0) {
            fprintf(stderr, "xs: unknown option `%s`\n\n", argv[first]);
            usage_all(stderr);
            return CLI_USAGE;
        }
        c.json = true;
    }
    if (first >= argc) {
        usage_all(stderr);
        return CLI_USAGE;
    }
    const cli_command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS && cmd == NULL; i++) {
        if (strcmp(argv[first], COMMANDS[i].name) == 0) {
            cmd = &COMMANDS[i];
        }
    }
    if (cmd == NULL) {
        fprintf(stderr, "xs: unknown command `%s` (xs --help lists them)\n", argv[first]);
        return CLI_USAGE;
    }
    c.cmd = cmd->name;
    cli_args a;
    int rc = parse_args(&c, cmd, argc, argv, first + 1, &a);
    if (rc == -1) {
        usage_one(stdout, cmd);
        return CLI_OK;
    }
    if (rc != CLI_OK || (rc = cli_config_load(&c)) != CLI_OK) {
        return rc;
    }
    c.tty = isatty(STDOUT_FILENO) == 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (c.curl = curl_easy_init()) == NULL) {
        return cli_fail(&c, CLI_UNREACHABLE, "cannot start libcurl");
    }
    rc = cmd->run(&c, &a);
    fflush(stdout);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    return rc;
}
