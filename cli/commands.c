/*
 * commands.c: the commands but `sync` (follow.c): each one call (or two) of the REST API,
 * printed for people as aligned columns or `name  value` lines, or with --json as the API
 * answered.
 */
#include "cli.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xs/json.h"

extern char **environ;

#define MAX_COLS 8
#define PATH_CAP 2048

/* A table for people: a header and rows of at most MAX_COLS cells; keys (when set) name the
 * member of a listed item each column shows. */
typedef struct table {
    int ncols;
    const char *head[MAX_COLS];
    const char *keys[MAX_COLS];
    char *(*rows)[MAX_COLS];
    size_t n, cap;
} table;

/* table_add appends a row of t->ncols cells (copied). */
static void table_add(table *t, const char *const *cells)
{
    if (t->n == t->cap) {
        t->cap = t->cap > 0 ? t->cap * 2 : 16;
        t->rows = realloc(t->rows, t->cap * sizeof(*t->rows));
        if (t->rows == NULL) {
            fprintf(stderr, "xs: out of memory\n");
            exit(CLI_UNREACHABLE);
        }
    }
    for (int i = 0; i < t->ncols; i++) {
        t->rows[t->n][i] = strdup(cells[i] != NULL ? cells[i] : "-");
    }
    t->n++;
}

/* table_print writes t, columns padded to their widest cell, and frees its rows; `empty` is
 * said when it has none. */
static void table_print(table *t, const char *empty)
{
    if (t->n == 0) {
        printf("%s\n", empty);
        return;
    }
    size_t w[MAX_COLS] = {0};
    for (int i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->head[i]);
        for (size_t r = 0; r < t->n; r++) {
            size_t l = strlen(t->rows[r][i]);
            w[i] = l > w[i] ? l : w[i];
        }
    }
    for (int i = 0; i < t->ncols; i++) {
        printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->head[i],
               i + 1 < t->ncols ? "  " : "\n");
    }
    for (size_t r = 0; r < t->n; r++) {
        for (int i = 0; i < t->ncols; i++) {
            printf("%-*s%s", i + 1 < t->ncols ? (int)w[i] : 0, t->rows[r][i],
                   i + 1 < t->ncols ? "  " : "\n");
            free(t->rows[r][i]);
        }
    }
    free(t->rows);
    t->rows = NULL;
    t->n = t->cap = 0;
}

/* path_id writes fmt with one path segment, id escaped, into path. */
static void path_id(cli *c, char *path, const char *fmt, const char *id)
{
    char *e = cli_escape(c, id);
    snprintf(path, PATH_CAP, fmt, e);
    free(e);
}

/* get_json does GET path and, with --json, prints the reply; *out is the reply (CLI_OK). */
static int get(cli *c, const char *path, cli_reply *out)
{
    int rc = cli_call(c, "GET", path, NULL, out);
    if (rc == CLI_OK && c->json) {
        cli_print_json(out);
    }
    return rc;
}

/* A row of a list for people: the cells of item o. */
typedef void row_fn(table *t, const json_t *o);

/* keyed_row adds the row of o's members named by t's keys. */
static void keyed_row(table *t, const json_t *o)
{
    const char *cells[MAX_COLS];
    for (int i = 0; i < t->ncols; i++) {
        cells[i] = cli_str(o, t->keys[i]);
    }
    table_add(t, cells);
}

/* list does GET path and prints the array at key of its reply: with --json the reply as it
 * came, else t's columns, a row of each item (empty: what is said when there is none). */
static int list(cli *c, const char *path, const char *key, table *t, row_fn *row, const char *empty)
{
    cli_reply r;
    int rc = get(c, path, &r);
    if (rc == CLI_OK && !c->json) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(r.json, key), i, o)
        {
            row(t, o);
        }
        table_print(t, empty);
    }
    cli_reply_free(&r);
    return rc;
}

/* show does GET fmt (its one path segment id) and prints the record: with --json as it came,
 * else through print. */
static int show(cli *c, const char *fmt, const char *id, void (*print)(const json_t *))
{
    char path[PATH_CAP];
    path_id(c, path, fmt, id);
    cli_reply r;
    int rc = get(c, path, &r);
    if (rc == CLI_OK && !c->json) {
        print(r.json);
    }
    cli_reply_free(&r);
    return rc;
}

/* value writes v for people: strings as they are, null as -, anything else as compact JSON. */
static void value(FILE *f, const json_t *v)
{
    const char *s = xs_json_string_value(v, NULL);
    if (s != NULL) {
        fputs(s, f);
    } else if (v == NULL || json_is_null(v)) {
        fputc('-', f);
    } else {
        char *t = xs_json_dump(v, 0);
        fputs(t != NULL ? t : "?", f);
        free(t);
    }
}

/* fields writes `name  value` lines of o's members, in o's order, indented by indent. */
static void fields(const json_t *o, int indent)
{
    size_t w = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        w = strlen(k) > w ? strlen(k) : w;
    }
    json_object_foreach((json_t *)o, k, v)
    {
        printf("%*s%-*s  ", indent, "", (int)w, k);
        value(stdout, v);
        putchar('\n');
    }
}

/* -------- organisations and connections -------- */

static void org_row(table *t, const json_t *o)
{
    char nconn[24];
    snprintf(nconn, sizeof(nconn), "%zu", json_array_size(json_object_get(o, "connections")));
    const char *cells[] = {cli_str(o, "id"), cli_str(o, "name"), nconn, cli_str(o, "created_at")};
    table_add(t, cells);
}

int cli_organisations(cli *c, const cli_args *a)
{
    (void)a;
    table t = {4, {"ID", "NAME", "CONNECTIONS", "CREATED"}, {NULL}};
    return list(c, "/v1/organisations", "organisations", &t, org_row, "no organisations");
}

int cli_organisation(cli *c, const cli_args *a)
{
    cli_reply r;
    int rc;
    if (strcmp(a->pos[0], "create") == 0) {
        if (a->npos != 2) {
            return cli_fail(c, CLI_USAGE, "missing the name\nusage: %s", a->cmd->usage);
        }
        json_t *body = json_pack("{s:s}", "name", a->pos[1]);
        rc = cli_call(c, "POST", "/v1/organisations", body, &r);
        json_decref(body);
        if (rc == CLI_OK && c->json) {
            cli_print_json(&r);
        }
    } else if (a->npos == 1) {
        char path[PATH_CAP];
        path_id(c, path, "/v1/organisations/%s", a->pos[0]);
        rc = get(c, path, &r);
    } else {
        return cli_fail(c, CLI_USAGE, "unexpected argument `%s`\nusage: %s", a->pos[1],
                        a->cmd->usage);
    }
    if (rc == CLI_OK && !c->json) {
        printf("id          %s\nname        %s\ncreated_at  %s\nupdated_at  %s\n",
               cli_str(r.json, "id"), cli_str(r.json, "name"), cli_str(r.json, "created_at"),
               cli_str(r.json, "updated_at"));
        size_t i;
        json_t *k;
        json_array_foreach(json_object_get(r.json, "connections"), i, k)
        {
            printf("connection  %s  %s  %s\n",
                   json_is_string(k) ? json_string_value(k) : cli_str(k, "id"),
                   cli_str(k, "tenant_name"), cli_str(k, "status"));
        }
    }
    cli_reply_free(&r);
    return rc;
}

static void conn_print(const json_t *k)
{
    json_t *shown = json_deep_copy(k);
    json_t *scopes = json_object_get(shown, "scopes");
    if (json_is_array(scopes)) {
        char line[2048] = "";
        size_t i, n = 0;
        json_t *s;
        json_array_foreach(scopes, i, s)
        {
            n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0, "%s%s",
                                  i > 0 ? " " : "", json_is_string(s) ? json_string_value(s) : "");
        }
        json_object_set_new(shown, "scopes", json_string(line));
    }
    fields(shown, 0);
    json_decref(shown);
}

int cli_connections(cli *c, const cli_args *a)
{
    char path[PATH_CAP] = "/v1/connections";
    cli_query_add(c, path, sizeof(path), "organisation_id", cli_opt(a, "organisation"));
    cli_query_add(c, path, sizeof(path), "status", cli_opt(a, "status"));
    cli_query_add(c, path, sizeof(path), "limit", "1000");
    table t = {5,
               {"ID", "TENANT", "STATUS", "ORGANISATION", "CONNECTED"},
               {"id", "tenant_name", "status", "organisation_id", "connected_at"}};
    return list(c, path, "connections", &t, keyed_row, "no connections");
}

int cli_connection(cli *c, const cli_args *a)
{
    return show(c, "/v1/connections/%s", a->pos[0], conn_print);
}

/* -------- connect -------- */

/* active_set reads the organisation's active connections as {id: connected_at} (new), and
 * when found is not NULL their list into *found (new); NULL having said why (*rc). */
static json_t *active_set(cli *c, const char *org, int *rc, json_t **found)
{
    char path[PATH_CAP] = "/v1/connections";
    cli_query_add(c, path, sizeof(path), "organisation_id", org);
    cli_query_add(c, path, sizeof(path), "status", "active");
    cli_query_add(c, path, sizeof(path), "limit", "1000");
    cli_reply r;
    *rc = cli_call(c, "GET", path, NULL, &r);
    if (*rc != CLI_OK) {
        cli_reply_free(&r);
        return NULL;
    }
    json_t *set = json_object();
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(r.json, "connections"), i, k)
    {
        json_object_set_new(set, cli_str(k, "id"), json_string(cli_str(k, "connected_at")));
    }
    if (found != NULL) {
        *found = json_incref(json_object_get(r.json, "connections"));
    }
    cli_reply_free(&r);
    return set;
}

/* open_url runs xdg-open url (no shell); false when it could not be started or failed. */
static bool open_url(const char *url)
{
    pid_t pid;
    char *argv[] = {"xdg-open", (char *)url, NULL};
    if (posix_spawnp(&pid, "xdg-open", NULL, NULL, argv, environ) != 0) {
        return false;
    }
    int st = 0;
    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int cli_connect(cli *c, const cli_args *a)
{
    const char *org = a->pos[0];
    long timeout_s = 900;
    const char *to = cli_opt(a, "timeout");
    if (to != NULL) {
        char *end = NULL;
        errno = 0;
        timeout_s = strtol(to, &end, 10);
        if (errno != 0 || end == to || *end != '\0' || timeout_s < 1 || timeout_s > 86400) {
            return cli_fail(c, CLI_USAGE, "--timeout must be 1 to 86400 seconds, not `%s`", to);
        }
    }
    bool wait = cli_opt(a, "no-wait") == NULL;
    int rc = CLI_OK;
    json_t *before = wait ? active_set(c, org, &rc, NULL) : NULL;
    if (rc != CLI_OK) {
        return rc;
    }
    json_t *body = json_pack("{s:s}", "organisation_id", org);
    if (cli_opt(a, "redirect-uri") != NULL) {
        json_object_set_new(body, "redirect_uri", json_string(cli_opt(a, "redirect-uri")));
    }
    cli_reply r;
    rc = cli_call(c, "POST", "/v1/connections/authorize", body, &r);
    json_decref(body);
    if (rc != CLI_OK) {
        cli_reply_free(&r);
        json_decref(before);
        return rc;
    }
    const char *url = cli_str(r.json, "authorize_url");
    if (c->json && !wait) {
        cli_print_json(&r);
    } else {
        /* With --json the one document is the connection: the URL goes to the person. */
        FILE *f = c->json ? stderr : stdout;
        fprintf(f, "Open this URL to give consent (it expires at %s):\n\n  %s\n\n",
                cli_str(r.json, "state_expires_at"), url);
        fflush(f);
    }
    if (cli_opt(a, "open") != NULL && !open_url(url)) {
        fprintf(stderr, "xs connect: could not open it with xdg-open; open it yourself\n");
    }
    cli_reply_free(&r);
    if (!wait) {
        return CLI_OK;
    }
    if (!c->json) {
        printf("Waiting for the connection (Ctrl-C stops waiting)...\n");
        fflush(stdout);
    }
    int64_t end = cli_now_ms() + timeout_s * 1000;
    while (cli_now_ms() < end) {
        usleep(1000000);
        json_t *list = NULL;
        json_t *now = active_set(c, org, &rc, &list);
        if (rc != CLI_OK) {
            json_decref(before);
            return rc;
        }
        size_t i;
        json_t *k;
        json_array_foreach(list, i, k)
        {
            const char *was = xs_json_str_or(before, cli_str(k, "id"), NULL);
            if (was == NULL || strcmp(was, cli_str(k, "connected_at")) != 0) {
                if (c->json) {
                    char *t = xs_json_dump(k, 0);
                    printf("%s\n", t != NULL ? t : "{}");
                    free(t);
                } else {
                    printf("Connected:\n");
                    conn_print(k);
                }
                json_decref(list);
                json_decref(now);
                json_decref(before);
                return CLI_OK;
            }
        }
        json_decref(list);
        json_decref(now);
    }
    json_decref(before);
    return cli_fail(c, CLI_NOT_DONE, "no new active connection of organisation %s within %ld s",
                    org, timeout_s);
}

/* -------- runs -------- */

static void run_row(table *t, const json_t *run)
{
    char dur[32];
    snprintf(dur, sizeof(dur), "%.1fs",
             (double)json_integer_value(json_object_get(run, "duration_ms")) / 1000.0);
    char ents[256] = "";
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(json_object_get(run, "entities"), i, e)
    {
        n += (size_t)snprintf(ents + n, n < sizeof(ents) ? sizeof(ents) - n : 0, "%s%s",
                              i > 0 ? "," : "", json_is_string(e) ? json_string_value(e) : "");
    }
    const char *cells[] = {cli_str(run, "id"),
                           cli_str(run, "status"),
                           cli_str(run, "mode"),
                           cli_str(run, "trigger"),
                           ents,
                           cli_str(run, "created_at"),
                           dur,
                           cli_str(run, "connection_id")};
    table_add(t, cells);
}

int cli_runs(cli *c, const cli_args *a)
{
    char path[PATH_CAP] = "/v1/runs";
    cli_query_add(c, path, sizeof(path), "connection_id", cli_opt(a, "connection"));
    cli_query_add(c, path, sizeof(path), "status", cli_opt(a, "status"));
    cli_query_add(c, path, sizeof(path), "limit", cli_opt(a, "limit"));
    table t = {8,
               {"ID", "STATUS", "MODE", "TRIGGER", "ENTITIES", "CREATED", "TOOK", "CONNECTION"},
               {NULL}};
    return list(c, path, "runs", &t, run_row, "no runs");
}

void cli_run_print(const json_t *run)
{
    printf("id          %s\nstatus      %s\nmode        %s (%s, %s)\nconnection  %s\n",
           cli_str(run, "id"), cli_str(run, "status"), cli_str(run, "mode"),
           cli_str(run, "trigger"), cli_str(run, "direction"), cli_str(run, "connection_id"));
    printf("created     %s\nstarted     %s\nfinished    %s\nduration    %.1f s\n",
           cli_str(run, "created_at"), cli_str(run, "started_at"), cli_str(run, "finished_at"),
           (double)json_integer_value(json_object_get(run, "duration_ms")) / 1000.0);
    printf("api calls   %lld\n", (long long)json_integer_value(json_object_get(run, "api_calls")));
    if (json_is_string(json_object_get(run, "error"))) {
        printf("error       %s\n", cli_str(run, "error"));
    }
    const char *k;
    json_t *v;
    table t = {5, {"ENTITY", "PHASE", "STATE", "DONE", "TOTAL"}, {NULL}};
    json_object_foreach(json_object_get(run, "progress"), k, v)
    {
        char done[24], total[24];
        snprintf(done, sizeof(done), "%lld",
                 (long long)json_integer_value(json_object_get(v, "done")));
        if (json_is_integer(json_object_get(v, "total"))) {
            snprintf(total, sizeof(total), "%lld",
                     (long long)json_integer_value(json_object_get(v, "total")));
        } else {
            snprintf(total, sizeof(total), "?");
        }
        const char *cells[] = {k, cli_str(v, "phase"), cli_str(v, "state"), done, total};
        table_add(&t, cells);
    }
    printf("\nprogress\n");
    table_print(&t, "(none)");
    table u = {8,
               {"ENTITY", "PROCESSED", "CREATED", "UPDATED", "UNCHANGED", "FAILED", "CONFLICTS",
                "SKIPPED"},
               {NULL}};
    static const char *const keys[] = {"processed", "created",   "updated", "unchanged",
                                       "failed",    "conflicts", "skipped"};
    json_object_foreach(json_object_get(run, "counts"), k, v)
    {
        char cell[7][24];
        const char *cells[8] = {k};
        for (int i = 0; i < 7; i++) {
            snprintf(cell[i], sizeof(cell[i]), "%lld",
                     (long long)json_integer_value(json_object_get(v, keys[i])));
            cells[i + 1] = cell[i];
        }
        table_add(&u, cells);
    }
    printf("\ncounts\n");
    table_print(&u, "(none)");
    size_t i;
    json_t *s;
    if (json_array_size(json_object_get(run, "failed_steps")) > 0) {
        printf("\nfailed steps\n");
        json_array_foreach(json_object_get(run, "failed_steps"), i, s)
        {
            printf("  %s %s: %s\n", cli_str(s, "entity"), cli_str(s, "kind"), cli_str(s, "error"));
        }
    }
    if (json_array_size(json_object_get(run, "item_errors")) > 0) {
        printf("\nrecord errors\n");
        json_array_foreach(json_object_get(run, "item_errors"), i, s)
        {
            printf("  %s local %s xero %s: %s\n", cli_str(s, "entity"), cli_str(s, "local_id"),
                   cli_str(s, "xero_id"), cli_str(s, "message"));
        }
    }
}

int cli_run(cli *c, const cli_args *a)
{
    return show(c, "/v1/runs/%s", a->pos[0], cli_run_print);
}

/* post_id does POST fmt(id) with body (may be NULL) and prints the reply: the API's JSON,
 * or `id  status` and `name value` of the members extra names (a space-separated list, may be
 * NULL) that are not null. */
static int post_id(cli *c, const char *fmt, const char *id, const json_t *body, const char *extra)
{
    char path[PATH_CAP];
    path_id(c, path, fmt, id);
    cli_reply r;
    int rc = cli_call(c, "POST", path, body, &r);
    if (rc == CLI_OK && c->json) {
        cli_print_json(&r);
    } else if (rc == CLI_OK) {
        printf("%s  %s", cli_str(r.json, "id"), cli_str(r.json, "status"));
        char names[128];
        snprintf(names, sizeof(names), "%s", extra != NULL ? extra : "");
        char *save = NULL;
        for (char *k = strtok_r(names, " ", &save); k != NULL; k = strtok_r(NULL, " ", &save)) {
            const json_t *v = json_object_get(r.json, k);
            if (v != NULL && !json_is_null(v)) {
                printf("  %s ", k);
                value(stdout, v);
            }
        }
        putchar('\n');
    }
    cli_reply_free(&r);
    return rc;
}

int cli_cancel(cli *c, const cli_args *a)
{
    return post_id(c, "/v1/runs/%s/cancel", a->pos[0], NULL, "cancel_requested_at");
}

int cli_pause(cli *c, const cli_args *a)
{
    return post_id(c, "/v1/connections/%s/pause", a->pos[0], NULL, NULL);
}

int cli_resume(cli *c, const cli_args *a)
{
    return post_id(c, "/v1/connections/%s/resume", a->pos[0], NULL, NULL);
}

/* -------- conflicts -------- */

int cli_conflicts(cli *c, const cli_args *a)
{
    char path[PATH_CAP] = "/v1/conflicts";
    cli_query_add(c, path, sizeof(path), "connection_id", cli_opt(a, "connection"));
    cli_query_add(c, path, sizeof(path), "status", cli_opt(a, "status"));
    table t = {7,
               {"ID", "ENTITY", "STATUS", "LOCAL", "XERO", "DETECTED", "REASON"},
               {"id", "entity", "status", "local_id", "xero_id", "detected_at", "reason"}};
    return list(c, path, "conflicts", &t, keyed_row, "no conflicts");
}

/* read_all reads f whole (new, NUL-terminated), or NULL. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    while (p != NULL) {
        size_t got = fread(p + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) {
            if (ferror(f)) {
                free(p);
                return NULL;
            }
            break;
        }
        char *q = realloc(p, cap * 2);
        if (q == NULL) {
            free(p);
            return NULL;
        }
        p = q;
        cap *= 2;
    }
    if (p != NULL) {
        p[n] = '\0';
        *len = n;
    }
    return p;
}

/* merge_data reads the record of `xs resolve ID merge FILE` (new), or NULL having said why. */
static json_t *merge_data(cli *c, const char *file)
{
    bool in = strcmp(file, "-") == 0;
    FILE *f = in ? stdin : fopen(file, "r");
    if (f == NULL) {
        cli_fail(c, 0, "cannot read %s: %s", file, strerror(errno));
        return NULL;
    }
    size_t len = 0;
    char *text = read_all(f, &len);
    if (!in) {
        fclose(f);
    }
    if (text == NULL) {
        cli_fail(c, 0, "cannot read %s", in ? "standard input" : file);
        return NULL;
    }
    char err[XS_JSON_ERR_MAX] = "";
    json_t *data = xs_json_parse(text, len, err); /* decimals kept exact */
    free(text);
    if (data == NULL || !json_is_object(data)) {
        cli_fail(c, 0, "%s is not a JSON object%s%s", in ? "standard input" : file,
                 err[0] != '\0' ? ": " : "", err);
        json_decref(data);
        return NULL;
    }
    return data;
}

int cli_resolve(cli *c, const cli_args *a)
{
    static const char *const how[][2] = {{"keep-local", "KEEP_LOCAL"},
                                         {"keep-xero", "KEEP_XERO"},
                                         {"ignore", "IGNORED"},
                                         {"merge", "MERGED"}};
    const char *resolution = NULL;
    for (size_t i = 0; i < sizeof(how) / sizeof(how[0]); i++) {
        if (strcmp(a->pos[1], how[i][0]) == 0) {
            resolution = how[i][1];
        }
    }
    if (resolution == NULL) {
        return cli_fail(c, CLI_USAGE,
                        "`%s` is not a resolution: keep-local, keep-xero, ignore or merge FILE",
                        a->pos[1]);
    }
    bool merge = strcmp(resolution, "MERGED") == 0;
    if (merge != (a->npos == 3)) {
        return cli_fail(c, CLI_USAGE,
                        merge ? "merge needs the FILE of the record to keep"
                              : "only merge takes a FILE");
    }
    json_t *body = json_pack("{s:s}", "resolution", resolution);
    if (merge) {
        json_t *data = merge_data(c, a->pos[2]);
        if (data == NULL) {
            json_decref(body);
            return CLI_USAGE;
        }
        json_object_set_new(body, "data", data);
    }
    int rc = post_id(c, "/v1/conflicts/%s/resolve", a->pos[0], body, "resolution run_id");
    json_decref(body);
    return rc;
}

/* -------- stats and mappings -------- */

/* stats_print writes a connection's statistics for people. */
static void stats_print(const json_t *s)
{
    printf("connection  %s  %s\n", cli_str(s, "id"), cli_str(s, "status"));
    table t = {5, {"ENTITY", "LINKED", "CONFLICTS", "OUTBOX", "LAST SUCCESS"}, {NULL}};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "entities"), k, v)
    {
        char l[24], cf[24], ob[24];
        snprintf(l, sizeof(l), "%lld", (long long)json_integer_value(json_object_get(v, "linked")));
        snprintf(cf, sizeof(cf), "%lld",
                 (long long)json_integer_value(json_object_get(v, "conflicts_pending")));
        snprintf(ob, sizeof(ob), "%lld",
                 (long long)json_integer_value(json_object_get(v, "outbox_pending")));
        const char *cells[] = {k, l, cf, ob, cli_str(v, "last_success")};
        table_add(&t, cells);
    }
    putchar('\n');
    table_print(&t, "no entities");
    static const char *const parts[] = {"last_day", "api_calls_today", "budget", "webhooks",
                                        "waiting"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        const json_t *p = json_object_get(s, parts[i]);
        if (json_is_object(p)) {
            printf("\n%s\n", parts[i]);
            fields(p, 2);
        }
    }
    if (json_is_string(json_object_get(s, "rate_limited_until"))) {
        printf("\nrate limited until %s (%s)\n", cli_str(s, "rate_limited_until"),
               cli_str(s, "rate_limited_problem"));
    }
}

int cli_stats(cli *c, const cli_args *a)
{
    return show(c, "/v1/connections/%s/stats", a->pos[0], stats_print);
}

int cli_mappings(cli *c, const cli_args *a)
{
    const char *entity = cli_opt(a, "entity"), *lid = cli_opt(a, "local-id"),
               *xid = cli_opt(a, "xero-id");
    if (entity == NULL || (lid == NULL) == (xid == NULL)) {
        return cli_fail(c, CLI_USAGE, "give --entity and one of --local-id or --xero-id\nusage: %s",
                        a->cmd->usage);
    }
    char path[PATH_CAP] = "/v1/mappings";
    cli_query_add(c, path, sizeof(path), "entity", entity);
    cli_query_add(c, path, sizeof(path), "local_id", lid);
    cli_query_add(c, path, sizeof(path), "xero_id", xid);
    cli_query_add(c, path, sizeof(path), "connection_id", cli_opt(a, "connection"));
    table t = {5,
               {"CONNECTION", "ENTITY", "LOCAL", "XERO", "UPDATED"},
               {"connection_id", "entity", "local_id", "xero_id", "updated_at"}};
    return list(c, path, "mappings", &t, keyed_row, "no mappings");
}
