/*
 * cli_test.c: the `xs` command-line tool and the runs' progress, end to end. A real
 * PostgreSQL, xero-sim answering each call slowly, the orchestrator and one replica of each
 * domain service; the real build/bin/xs run as a child process for every command:
 *   - GET /v1/runs/{id} reports each entity's progress while a slow full import runs: done
 *     grows, the total (Xero's pagination.itemCount) is known before the end, and at the end
 *     done is the total; api_calls is the run's rows in sync.api_calls;
 *   - every command's output and exit code, --json parsing, the config file, and the errors:
 *     a wrong key (1, with the API's message), an unreachable URL (4), a wrong command line (2);
 *   - `xs connect` prints the consent URL and waits until the connection appears;
 *   - `xs sync` under tmux draws a bar per entity that moves and ends at 100% with the run's
 *     status; piped, it writes plain lines with no escape codes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

#define N_CONTACTS 600
#define LATENCY_MS 150

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];
static char HOME_DIR[128];

static char *const SIM_ENV[] = {"XS_SIM_LIMIT_MINUTE=1000000", "XS_SIM_LIMIT_CONCURRENT=50", NULL};
/* Calls paced by the simulator's latency only; small pages, one a step, so progress moves often;
 * a failing step given up fast. */
static char *const ORCH_ENV[] = {
    "XS_SCHEDULER=false",   "XS_BUDGET_TENANT_MINUTE=100000", "XS_BUDGET_TENANT_DAY=10000000",
    "XS_PULL_PAGE_SIZE=20", "XS_PULL_PAGES_PER_STEP=1",       "XS_STEP_MAX_ATTEMPTS=3",
    "XS_STEP_BACKOFF=50ms", "XS_STEP_BACKOFF_MAX=200ms",      NULL};

/* ---- running xs ---- */

/* What a run of xs came to. */
typedef struct xs_out {
    int code; /* exit code, -1 when killed */
    char *out, *err;
} xs_out;

static void xs_out_free(xs_out *o)
{
    free(o->out);
    free(o->err);
    memset(o, 0, sizeof(*o));
}

static char *slurp(const char *path)
{
    char *text = xst_slurp(path);
    return text != NULL ? text : strdup("");
}

/* xs_spawn starts build/bin/xs with args (NULL-terminated) in the test's environment with
 * XS_URL, XS_API_KEY and HOME set for the engine, then env ("NAME=value" sets, "-NAME"
 * unsets; may be NULL); stdin from in_path (NULL: /dev/null), stdout and stderr into files
 * named after tag. */
static pid_t xs_spawn(const char *tag, char *const env[], const char *in_path,
                      const char *const args[], char *out_path, char *err_path)
{
    snprintf(out_path, 256, "%s/%s.out", HOME_DIR, tag);
    snprintf(err_path, 256, "%s/%s.err", HOME_DIR, tag);
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    setenv("XS_URL", E->api, 1);
    setenv("XS_API_KEY", XST_API_KEY, 1);
    setenv("HOME", HOME_DIR, 1);
    unsetenv("XS_CONFIG");
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        if (env[i][0] == '-') {
            unsetenv(env[i] + 1);
        } else {
            putenv(env[i]);
        }
    }
    int in = open(in_path != NULL ? in_path : "/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) {
        _exit(127);
    }
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    const char *argv[32] = {"xs"};
    for (size_t i = 0; args[i] != NULL && i < 30; i++) {
        argv[i + 1] = args[i];
    }
    execv(xst_bin("xs"), (char *const *)argv);
    _exit(127);
}

/* xs_wait waits up to timeout_ms for pid and returns its exit code (-1: killed). */
static int xs_wait(pid_t pid, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (xst_now_ms() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* xs_env runs xs with env (see xs_spawn) and stdin from in_path; args end with NULL. */
static xs_out xs_env(char *const env[], const char *in_path, ...)
{
    const char *args[30];
    size_t n = 0;
    va_list ap;
    va_start(ap, in_path);
    for (const char *a = va_arg(ap, const char *); a != NULL && n < 29;
         a = va_arg(ap, const char *)) {
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    char out_path[256], err_path[256];
    pid_t pid = xs_spawn("xs", env, in_path, args, out_path, err_path);
    xs_out o = {.code = xs_wait(pid, 120000)};
    o.out = slurp(out_path);
    o.err = slurp(err_path);
    return o;
}

#define XS(...) xs_env(NULL, NULL, __VA_ARGS__, NULL)

/* expect checks an exit code, and that the output (stdout or stderr) holds each of the
 * strings after it (NULL-terminated), showing both when not. */
static void expect(const xs_out *o, int code, const char *where, ...)
{
    bool ok = o->code == code;
    va_list ap;
    va_start(ap, where);
    const char *text = strcmp(where, "err") == 0 ? o->err : o->out;
    for (const char *s = va_arg(ap, const char *); s != NULL; s = va_arg(ap, const char *)) {
        if (strstr(text, s) == NULL) {
            fprintf(stderr, "missing in std%s: %s\n", where, s);
            ok = false;
        }
    }
    va_end(ap);
    if (!ok) {
        fail_msg("xs exited %d (want %d)\nstdout:\n%s\nstderr:\n%s", o->code, code, o->out, o->err);
    }
}

/* json_of parses xs's --json output (new); fails the test when it is not one document. */
static json_t *json_of(const xs_out *o)
{
    json_error_t je;
    json_t *j = json_loads(o->out, 0, &je);
    if (j == NULL) {
        fail_msg("--json output is not JSON (%s): %s", je.text, o->out);
    }
    return j;
}

/* json_run takes a run of xs with --json, which must exit 0, and returns its output parsed
 * (new). */
static json_t *json_run(xs_out o)
{
    if (o.code != 0) {
        fail_msg("xs exited %d\nstdout:\n%s\nstderr:\n%s", o.code, o.out, o.err);
    }
    json_t *j = json_of(&o);
    xs_out_free(&o);
    return j;
}

#define XSJ(...) json_run(XS(__VA_ARGS__, "--json"))

/* ---- the engine ---- */

static void sim_latency(int ms)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"latency\":{\"fixed_ms\":%d}}", ms);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", body));
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("cli");
    xst_engine_start_sim(E, SIM_ENV);
    xst_engine_start_orchestrator(E, ORCH_ENV);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Cli Ltd", CONN, TENANT);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    char body[96];
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"seed\":5}", N_CONTACTS);
    json_decref(xst_engine_sim_json(E, "POST", path, body));
    snprintf(HOME_DIR, sizeof(HOME_DIR), "/tmp/xs-cli-test-%d", (int)getpid());
    mkdir(HOME_DIR, 0700);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", HOME_DIR);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", HOME_DIR);
    }
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* start_run starts a run through the API and returns its id (static). */
static const char *start_run(const char *body)
{
    static char id[40];
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    xst_http r = xst_engine_api(E, "POST", path, body);
    if (r.status != 202) {
        fail_msg("sync: %ld %s", r.status, r.body);
    }
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    return id;
}

/* policy sets the connection's conflict policy for contacts. */
static void policy(const char *name)
{
    char path[128], body[96];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    snprintf(body, sizeof(body), "{\"conflict_policy\":{\"contact\":\"%s\"}}", name);
    xst_http put = xst_engine_api(E, "PUT", path, body);
    assert_int_equal(put.status, 200);
    xst_http_free(&put);
}

/* pending_conflict makes contact lid a conflict held for a person: with the policy manual,
 * both sides change its e-mail (<tag>-xero@, <tag>-local@example.com) while nothing syncs, and
 * an incremental run finds it. The conflict's id goes into cid (40 bytes). */
static void pending_conflict(const char *lid, const char *tag, char *cid)
{
    policy("manual");
    assert_true(xst_engine_settle(E, 60000));
    char *xid =
        xst_engine_sqlf(E, "SELECT xero_id::text FROM sync.mappings WHERE local_id = $1", 1, lid);
    assert_non_null(xid);
    char path[256], body[128], email[64];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    snprintf(body, sizeof(body), "{\"EmailAddress\":\"%s-xero@example.com\"}", tag);
    json_decref(xst_engine_sim_json(E, "POST", path, body));
    snprintf(email, sizeof(email), "%s-local@example.com", tag);
    free(xst_engine_sqlf(E, "UPDATE app.contacts SET email = $2 WHERE id = $1 RETURNING id::text",
                         2, lid, email));
    assert_true(xst_engine_settle(E, 60000));
    json_decref(xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 60000));
    char *id = xst_engine_sqlf(E,
                               "SELECT id::text FROM sync.conflicts WHERE local_id = $1 AND "
                               "status = 'PENDING'",
                               1, lid);
    assert_non_null(id);
    snprintf(cid, 40, "%s", id);
    free(id);
    free(xid);
}

/* ---- the tests ---- */

/* A slow full import: every entity reports its progress while it runs. */
static void test_run_progress(void **state)
{
    (void)state;
    sim_latency(LATENCY_MS);
    const char *run = start_run("{\"mode\":\"full\"}");
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    long last_done = -1, grew = 0, total_seen = -1;
    bool total_before_end = false;
    json_t *final = NULL;
    int64_t end = xst_now_ms() + 120000;
    while (xst_now_ms() < end) {
        xst_http r = xst_engine_api(E, "GET", path, NULL);
        assert_int_equal(r.status, 200);
        const char *st = json_string_value(json_object_get(r.json, "status"));
        json_t *p = json_object_get(json_object_get(r.json, "progress"), "contact");
        assert_non_null(p); /* from the start: waiting, then its phases */
        const char *phase = json_string_value(json_object_get(p, "phase"));
        const char *pstate = json_string_value(json_object_get(p, "state"));
        assert_non_null(phase);
        assert_non_null(pstate);
        json_t *total = json_object_get(p, "total");
        assert_true(json_is_integer(total) || json_is_null(total));
        long done = (long)json_integer_value(json_object_get(p, "done"));
        if (strcmp(st, "running") == 0 && strcmp(phase, "pull") == 0 &&
            strcmp(pstate, "running") == 0) {
            if (done > last_done && last_done >= 0) {
                grew++;
            }
            last_done = done;
            if (json_is_integer(total) && done < N_CONTACTS) {
                /* Xero's itemCount: known before the pull ends, and right. */
                total_before_end = true;
                total_seen = (long)json_integer_value(total);
                assert_true(done <= total_seen);
            }
        }
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
            final = json_incref(r.json);
            xst_http_free(&r);
            break;
        }
        xst_http_free(&r);
        usleep(100000);
    }
    sim_latency(0);
    assert_non_null(final);
    assert_string_equal(json_string_value(json_object_get(final, "status")), "succeeded");
    assert_true(grew >= 3); /* seen growing at least three times */
    assert_true(total_before_end);
    assert_int_equal(total_seen, N_CONTACTS);
    /* At the end: the last phase of contacts (the scan of the local records) done, whole. */
    json_t *p = json_object_get(json_object_get(final, "progress"), "contact");
    assert_string_equal(json_string_value(json_object_get(p, "state")), "done");
    assert_string_equal(json_string_value(json_object_get(p, "phase")), "scan");
    assert_int_equal(json_integer_value(json_object_get(p, "done")), N_CONTACTS);
    assert_int_equal(json_integer_value(json_object_get(p, "total")), N_CONTACTS);
    /* Every entity of the run is done, and the calls are the run's audit rows. */
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(final, "progress"), k, v)
    {
        assert_string_equal(json_string_value(json_object_get(v, "state")), "done");
        assert_int_equal(json_integer_value(json_object_get(v, "done")),
                         json_integer_value(json_object_get(v, "total")));
    }
    long calls =
        xst_engine_sql_longf(E, "SELECT count(*) FROM sync.api_calls WHERE run_id = $1", 1, run);
    assert_true(calls >= N_CONTACTS / 20);
    assert_int_equal(json_integer_value(json_object_get(final, "api_calls")), calls);
    json_decref(final);
    /* The list shows the same. */
    char lpath[128];
    snprintf(lpath, sizeof(lpath), "/v1/runs?connection_id=%s&limit=1", CONN);
    xst_http l = xst_engine_api(E, "GET", lpath, NULL);
    assert_int_equal(l.status, 200);
    json_t *r0 = json_array_get(json_object_get(l.json, "runs"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "id")), run);
    assert_int_equal(json_integer_value(json_object_get(r0, "api_calls")), calls);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(r0, "progress"), "contact"), "total")),
                     N_CONTACTS);
    xst_http_free(&l);
}

/* A run that fails: its phase under way is stopped, those after it never run; xs says so and
 * exits 3. */
static void test_run_failed(void **state)
{
    (void)state;
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/faults",
                                    "{\"script\":[{\"method\":\"GET\",\"path\":\"/api.xro/2.0/"
                                    "Contacts\",\"fault\":\"500\",\"times\":100}]}"));
    xs_out o = XS("sync", CONN, "--mode", "full", "--entities", "contact,invoice");
    xst_http d = xst_engine_simctl(E, "DELETE", "/_sim/faults", NULL);
    xst_http_free(&d);
    expect(&o, 3, "err", "ended failed", "the pull of contact did not complete", NULL);
    expect(&o, 3, "out", "contact pull stopped", "invoice pull not_run", NULL);
    char run[40] = "";
    const char *at = strstr(o.out, "run ");
    assert_non_null(at);
    snprintf(run, sizeof(run), "%.36s", at + 4);
    xs_out_free(&o);
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    xst_http r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "failed");
    json_t *p = json_object_get(r.json, "progress");
    json_t *c = json_object_get(p, "contact"), *i = json_object_get(p, "invoice");
    assert_string_equal(json_string_value(json_object_get(c, "state")), "stopped");
    assert_string_equal(json_string_value(json_object_get(c, "phase")), "pull");
    assert_true(json_is_null(json_object_get(c, "total")));
    assert_string_equal(json_string_value(json_object_get(i, "state")), "not_run");
    assert_int_equal(json_integer_value(json_object_get(i, "done")), 0);
    xst_http_free(&r);
}

/* The errors: usage (2), a wrong key (1), an API that cannot be reached (4), the config file. */
static void test_cli_errors(void **state)
{
    (void)state;
    xs_out o = XS("--version");
    expect(&o, 0, "out", "xs 0.1.0", NULL);
    xs_out_free(&o);
    o = XS("--help");
    expect(&o, 0, "out", "xs sync CONNECTION", "Exit codes", NULL);
    xs_out_free(&o);
    o = XS("sync", "--help");
    expect(&o, 0, "out", "usage: xs sync", NULL);
    xs_out_free(&o);
    o = XS("frobnicate");
    expect(&o, 2, "err", "unknown command `frobnicate`", NULL);
    xs_out_free(&o);
    o = XS("runs", "--bogus");
    expect(&o, 2, "err", "unknown option `--bogus`", "usage: xs runs", NULL);
    xs_out_free(&o);
    o = XS("connection");
    expect(&o, 2, "err", "missing argument", NULL);
    xs_out_free(&o);
    o = XS("sync", CONN, "--mode", "sideways");
    expect(&o, 2, "err", "--mode must be full, incremental or push", NULL);
    xs_out_free(&o);
    o = XS("resolve", "c2a1", "maybe");
    expect(&o, 2, "err", "`maybe` is not a resolution", NULL);
    xs_out_free(&o);
    o = XS("resolve", "c2a1", "merge", "/nonexistent/record.json");
    expect(&o, 2, "err", "cannot read /nonexistent/record.json", NULL);
    xs_out_free(&o);
    o = XS("mappings", "--entity", "contact");
    expect(&o, 2, "err", "one of --local-id or --xero-id", NULL);
    xs_out_free(&o);

    /* A wrong key: the API's 401 and its message. */
    char *const bad_key[] = {"XS_API_KEY=not-the-key", NULL};
    o = xs_env(bad_key, NULL, "connections", NULL);
    expect(&o, 1, "err", "GET /v1/connections", "401 unauthorized", NULL);
    xs_out_free(&o);
    /* No key at all. */
    char *const no_key[] = {"-XS_API_KEY", NULL};
    o = xs_env(no_key, NULL, "connections", NULL);
    expect(&o, 2, "err", "no API key", NULL);
    xs_out_free(&o);
    /* Nothing listens there: 4, naming the URL. */
    char gone[96];
    snprintf(gone, sizeof(gone), "XS_URL=http://127.0.0.1:%u", (unsigned)xst_free_port());
    char *const unreachable[] = {gone, NULL};
    o = xs_env(unreachable, NULL, "runs", NULL);
    expect(&o, 4, "err", "cannot reach the API at", gone + strlen("XS_URL="), NULL);
    xs_out_free(&o);
    /* The API refuses: 404 naming the field, 400 for a bad id. */
    o = XS("connection", "99f0df63-c78d-4d02-8e23-d7b980ec0255");
    expect(&o, 1, "err", "404 not_found", "no connection", "(field: id)", NULL);
    xs_out_free(&o);
    o = XS("runs", "--limit", "0");
    expect(&o, 1, "err", "400 invalid", "limit", NULL);
    xs_out_free(&o);

    /* The config file: refused when others may read it, used when private. */
    char cfg[300], env_cfg[320];
    snprintf(cfg, sizeof(cfg), "%s/xs.conf", HOME_DIR);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "# xs\nurl = %s\napi_key = %s\n", E->api, XST_API_KEY);
    fclose(f);
    chmod(cfg, 0644);
    snprintf(env_cfg, sizeof(env_cfg), "XS_CONFIG=%s", cfg);
    char *const with_cfg[] = {env_cfg, "-XS_URL", "-XS_API_KEY", NULL};
    o = xs_env(with_cfg, NULL, "connections", NULL);
    expect(&o, 2, "err", "is open to others (mode 0644)", "chmod 600", NULL);
    xs_out_free(&o);
    chmod(cfg, 0600);
    o = xs_env(with_cfg, NULL, "connections", NULL);
    expect(&o, 0, "out", CONN, NULL);
    xs_out_free(&o);
    char *const missing_cfg[] = {"XS_CONFIG=/nonexistent/xs.conf", NULL};
    o = xs_env(missing_cfg, NULL, "runs", NULL);
    expect(&o, 2, "err", "cannot read the config file /nonexistent/xs.conf", NULL);
    xs_out_free(&o);
    char *const ftp[] = {"XS_URL=ftp://127.0.0.1", NULL};
    o = xs_env(ftp, NULL, "runs", NULL);
    expect(&o, 2, "err", "must start with http:// or https://", NULL);
    xs_out_free(&o);
    /* The default place, ~/.config/xs/config, with a line it does not know. */
    char dir[300], def[320];
    snprintf(dir, sizeof(dir), "%s/.config", HOME_DIR);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/.config/xs", HOME_DIR);
    mkdir(dir, 0700);
    snprintf(def, sizeof(def), "%s/config", dir);
    f = fopen(def, "w");
    assert_non_null(f);
    fprintf(f, "url = %s\ntoken = x\n", E->api);
    fclose(f);
    chmod(def, 0600);
    char *const default_cfg[] = {"-XS_API_KEY", NULL};
    o = xs_env(default_cfg, NULL, "runs", NULL);
    expect(&o, 2, "err", "line 2: unknown key `token`", NULL);
    xs_out_free(&o);
    unlink(def);
}

/* Every command against the engine: readable output, --json as the API's JSON. */
static void test_cli_commands(void **state)
{
    (void)state;
    xs_out o = XS("connections");
    expect(&o, 0, "out", "ID", "STATUS", CONN, "active", NULL);
    xs_out_free(&o);
    json_t *j = XSJ("connections", "--organisation", ORG, "--status", "active");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "connections"), 0), "id")),
                        CONN);
    json_decref(j);
    o = XS("connection", CONN);
    expect(&o, 0, "out", "tenant_id", TENANT, "status", NULL);
    xs_out_free(&o);

    /* A sync piped: plain lines, no escape codes, the run's status at the end. */
    o = XS("sync", CONN, "--mode", "incremental", "--entities", "contact");
    expect(&o, 0, "out", "succeeded", "contact pull", NULL);
    assert_null(strchr(o.out, '\033'));
    xs_out_free(&o);
    j = XSJ("sync", CONN, "--mode", "full", "--no-wait");
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(j, "id")));
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "full");
    assert_non_null(json_object_get(j, "progress"));
    json_decref(j);
    json_decref(xst_engine_wait_run(E, run, 120000));
    o = XS("run", run);
    expect(&o, 0, "out", run, "succeeded", "progress", "contact", "counts", "api calls", NULL);
    xs_out_free(&o);
    j = XSJ("run", run);
    assert_string_equal(json_string_value(json_object_get(j, "id")), run);
    assert_non_null(json_object_get(j, "steps"));
    json_decref(j);
    o = XS("runs", "--connection", CONN, "--limit", "3");
    expect(&o, 0, "out", "ID", "STATUS", run, "full", NULL);
    xs_out_free(&o);
    j = XSJ("runs", "--connection", CONN, "--status", "succeeded");
    assert_true(json_array_size(json_object_get(j, "runs")) >= 2);
    json_decref(j);

    o = XS("stats", CONN);
    expect(&o, 0, "out", "connection", CONN, "contact", "budget", "minute_left", NULL);
    xs_out_free(&o);
    j = XSJ("stats", CONN);
    assert_non_null(json_object_get(j, "budget"));
    json_decref(j);

    /* A conflict held for a person, listed and resolved from the command line. */
    char *lid = xst_engine_sqlf(E,
                                "SELECT m.local_id::text FROM sync.mappings m WHERE "
                                "m.connection_id = $1 AND m.entity = 'contact' ORDER BY "
                                "m.local_id LIMIT 1",
                                1, CONN);
    char cid[40];
    pending_conflict(lid, "first", cid);
    o = XS("conflicts", "--connection", CONN, "--status", "PENDING");
    expect(&o, 0, "out", "ID", "ENTITY", cid, lid, "PENDING", NULL);
    xs_out_free(&o);
    j = XSJ("conflicts", "--connection", CONN, "--status", "PENDING");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "conflicts"), 0), "id")),
                        cid);
    json_decref(j);
    o = XS("resolve", cid, "keep-xero");
    expect(&o, 0, "out", cid, "RESOLVED", NULL);
    xs_out_free(&o);
    o = XS("resolve", cid, "keep-local");
    expect(&o, 1, "err", "409", NULL); /* already resolved */
    xs_out_free(&o);
    o = XS("resolve", "0b7e6a52-9d0e-4d43-9a58-5d1a0c1f7e11", "keep-local");
    expect(&o, 1, "err", "404 not_found", NULL);
    xs_out_free(&o);
    char *email = xst_engine_sqlf(E, "SELECT email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(email, "first-xero@example.com");
    free(email);

    /* merge, the record read from standard input: the local version with a third e-mail. */
    pending_conflict(lid, "second", cid);
    j = XSJ("conflicts", "--connection", CONN, "--status", "PENDING");
    json_t *merged = json_deep_copy(
        json_object_get(json_array_get(json_object_get(j, "conflicts"), 0), "local"));
    json_decref(j);
    assert_non_null(merged);
    json_object_set_new(merged, "email", json_string("merged@example.com"));
    char in_path[256];
    snprintf(in_path, sizeof(in_path), "%s/merged.json", HOME_DIR);
    assert_int_equal(json_dump_file(merged, in_path, 0), 0);
    json_decref(merged);
    o = xs_env(NULL, in_path, "resolve", cid, "merge", "-", NULL);
    expect(&o, 0, "out", cid, "RESOLVED", NULL);
    xs_out_free(&o);
    assert_true(xst_engine_settle(E, 60000));
    email = xst_engine_sqlf(E, "SELECT email FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(email, "merged@example.com");
    free(email);
    free(lid);
    policy("last_write_wins");
}

/* xs connect prints the consent URL and waits until the connection appears. */
static void test_cli_connect(void **state)
{
    (void)state;
    xs_out o = XS("connect", ORG, "--no-wait");
    expect(&o, 0, "out", "Open this URL", "/identity/connect/authorize?", NULL);
    xs_out_free(&o);
    o = XS("connect", ORG, "--no-wait", "--redirect-uri", "https://evil.example.com/cb");
    expect(&o, 1, "err", "400", "(field: redirect_uri)", NULL);
    xs_out_free(&o);
    /* --open hands the URL to xdg-open (here one that notes what it was given). */
    char bin[256], opener[300], seen[300], path_env[4200];
    snprintf(bin, sizeof(bin), "%s/bin", HOME_DIR);
    mkdir(bin, 0700);
    snprintf(opener, sizeof(opener), "%s/xdg-open", bin);
    snprintf(seen, sizeof(seen), "%s/opened", HOME_DIR);
    FILE *f = fopen(opener, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nprintf '%%s' \"$1\" > '%s'\n", seen);
    fclose(f);
    chmod(opener, 0700);
    snprintf(path_env, sizeof(path_env), "PATH=%s:%s", bin, getenv("PATH"));
    char *const with_opener[] = {path_env, NULL};
    o = xs_env(with_opener, NULL, "connect", ORG, "--no-wait", "--open", NULL);
    expect(&o, 0, "out", "Open this URL", NULL);
    char *opened = slurp(seen);
    assert_true(strncmp(opened, "http", 4) == 0);
    assert_non_null(strstr(o.out, opened));
    free(opened);
    xs_out_free(&o);
    o = XS("connect", "4ad38310-788b-45f4-b8a9-df61838759b5", "--no-wait");
    expect(&o, 1, "err", "404 not_found", "(field: organisation_id)", NULL);
    xs_out_free(&o);

    const char *args[] = {"connect", ORG, "--timeout", "60", NULL};
    char out_path[256], err_path[256];
    pid_t pid = xs_spawn("connect", NULL, NULL, args, out_path, err_path);
    char url[2048] = "";
    int64_t end = xst_now_ms() + 20000;
    while (url[0] == '\0' && xst_now_ms() < end) {
        char *text = slurp(out_path);
        char *at = strstr(text, "  http");
        char *eol = at != NULL ? strchr(at, '\n') : NULL;
        if (eol != NULL) {
            snprintf(url, sizeof(url), "%.*s", (int)(eol - at - 2), at + 2);
        }
        free(text);
        usleep(50000);
    }
    assert_true(url[0] != '\0');
    usleep(1500000); /* xs is waiting now; a second's poll or two sees nothing new */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    /* The person consents (the simulator at once) and Xero redirects to the callback. */
    xst_http consent = xst_http_do("GET", url, NULL, NULL, 10000);
    assert_int_equal(consent.status, 302);
    xst_http cb = xst_http_do("GET", consent.location, NULL, NULL, 60000);
    assert_int_equal(cb.status, 200);
    xst_http_free(&consent);
    xst_http_free(&cb);
    assert_int_equal(xs_wait(pid, 30000), 0);
    char *text = slurp(out_path);
    if (strstr(text, "Connected:") == NULL || strstr(text, CONN) == NULL) {
        fail_msg("xs connect: %s", text);
    }
    free(text);
}

/* The operator's commands: organisations, pause and resume, cancel, ignore, mappings. */
static void test_cli_operator_routes(void **state)
{
    (void)state;
    xs_out o = XS("organisation", "create", "Made From The CLI");
    expect(&o, 0, "out", "Made From The CLI", NULL);
    xs_out_free(&o);
    json_t *j = XSJ("organisation", "create", "Second From The CLI");
    char org[40];
    snprintf(org, sizeof(org), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    o = XS("organisations");
    expect(&o, 0, "out", "Made From The CLI", org, "Cli Ltd", NULL);
    xs_out_free(&o);
    j = XSJ("organisation", org);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Second From The CLI");
    json_decref(j);
    o = XS("organisation", "create", "");
    expect(&o, 1, "err", "400", "name", NULL);
    xs_out_free(&o);

    o = XS("pause", CONN);
    expect(&o, 0, "out", CONN, "paused", NULL);
    xs_out_free(&o);
    o = XS("sync", CONN, "--mode", "incremental");
    expect(&o, 1, "err", "409 paused", NULL);
    xs_out_free(&o);
    j = XSJ("resume", CONN);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "active");
    json_decref(j);

    sim_latency(LATENCY_MS);
    j = XSJ("sync", CONN, "--mode", "full", "--no-wait");
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    j = XSJ("cancel", run);
    const char *st = json_string_value(json_object_get(j, "status"));
    assert_true(strcmp(st, "canceled") == 0 ||
                json_is_string(json_object_get(j, "cancel_requested_at")));
    json_decref(j);
    json_t *ended = xst_engine_wait_run(E, run, 60000);
    assert_string_equal(json_string_value(json_object_get(ended, "status")), "canceled");
    json_decref(ended);
    sim_latency(0);

    char *lid = xst_engine_sqlf(E,
                                "SELECT local_id::text FROM sync.mappings WHERE connection_id = "
                                "$1 AND entity = 'contact' ORDER BY local_id LIMIT 1",
                                1, CONN);
    char cid[40];
    pending_conflict(lid, "ignored", cid);
    o = XS("resolve", cid, "ignore");
    expect(&o, 0, "out", cid, "IGNORED", NULL);
    xs_out_free(&o);
    policy("last_write_wins");
    o = XS("conflicts", "--connection", CONN, "--status", "IGNORED");
    expect(&o, 0, "out", cid, "IGNORED", NULL);
    xs_out_free(&o);
    o = XS("mappings", "--entity", "contact", "--local-id", lid);
    expect(&o, 0, "out", lid, CONN, NULL);
    xs_out_free(&o);
    j = XSJ("mappings", "--entity", "contact", "--local-id", lid);
    assert_int_equal(json_array_size(json_object_get(j, "mappings")), 1);
    json_decref(j);
    free(lid);
}

/* ---- under tmux ---- */

/* tmux runs tmux on the test's own server (socket) with args; its output (new). */
static char *tmux(const char *sock, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "tmux -L '%s' %s 2>&1", sock, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(1, cap);
    size_t got;
    while ((got = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += got;
    }
    out[n] = '\0';
    pclose(p);
    return out;
}

/* bar_done reads the contact bar's "done/total" and percent from a captured screen; false
 * when no bar is drawn. */
static bool bar_of(const char *screen, const char *entity, long *done, long *total, int *pct)
{
    const char *at = screen;
    while ((at = strstr(at, entity)) != NULL) {
        const char *eol = strchr(at, '\n');
        size_t len = eol != NULL ? (size_t)(eol - at) : strlen(at);
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int)(len < 511 ? len : 511), at);
        char *open = strchr(line, '['), *close = strchr(line, ']');
        if (open != NULL && close != NULL && close > open) {
            *pct = -1;
            *total = -1;
            if (sscanf(close + 1, " %d%% %ld/%ld", pct, done, total) >= 2 ||
                sscanf(close + 1, " ? %ld/%ld", done, total) >= 1) {
                return true;
            }
        }
        at += strlen(entity);
    }
    return false;
}

static void test_cli_tmux_bar(void **state)
{
    (void)state;
    sim_latency(LATENCY_MS);
    char sock[64];
    snprintf(sock, sizeof(sock), "xs-cli-test-%d", (int)getpid());
    char cmd[1500];
    snprintf(cmd, sizeof(cmd),
             "new-session -d -x 120 -y 30 -s bar \"env XS_URL=%s XS_API_KEY=%s HOME=%s %s sync "
             "%s --mode full; echo XS-EXIT=\\$?; sleep 120\"",
             E->api, XST_API_KEY, HOME_DIR, xst_bin("xs"), CONN);
    char *o = tmux(sock, cmd);
    free(o);
    long first = -1, last = -1;
    int moves = 0;
    bool drawn = false;
    char *screen = NULL;
    int64_t end = xst_now_ms() + 120000;
    while (xst_now_ms() < end) {
        free(screen);
        screen = tmux(sock, "capture-pane -p -t bar");
        long done = 0, total = 0;
        int pct = 0;
        if (strstr(screen, "XS-EXIT=") != NULL) {
            break;
        }
        if (bar_of(screen, "contact ", &done, &total, &pct)) {
            drawn = true;
            if (strstr(screen, "contact          pull ") != NULL) {
                if (first < 0) {
                    first = done;
                }
                if (done > last && last >= 0) {
                    moves++;
                }
                last = done;
            }
        }
        usleep(150000);
    }
    free(tmux(sock, "kill-server"));
    sim_latency(0);
    if (!drawn || moves < 3 || strstr(screen, "XS-EXIT=0") == NULL) {
        fail_msg("the bar was %sdrawn, moved %d times (%ld to %ld); last screen:\n%s",
                 drawn ? "" : "not ", moves, first, last, screen);
    }
    fprintf(stderr, "the bar moved %d times (%ld to %ld); the last screen:\n%s", moves, first, last,
            screen);
    /* The end: every bar at 100% and the run's status. */
    long done = 0, total = 0;
    int pct = 0;
    assert_true(bar_of(screen, "contact ", &done, &total, &pct));
    assert_int_equal(pct, 100);
    assert_int_equal(done, total);
    assert_non_null(strstr(screen, "succeeded"));
    assert_null(strstr(screen, "waiting"));
    free(screen);

    /* The same command piped: plain lines, no escape codes, the counts growing. */
    sim_latency(LATENCY_MS);
    xs_out p = XS("sync", CONN, "--mode", "full");
    sim_latency(0);
    expect(&p, 0, "out", "run ", "running", "contact pull running", "succeeded in", NULL);
    assert_null(strchr(p.out, '\033'));
    assert_null(strchr(p.out, '\r'));
    int lines = 0;
    for (const char *at = p.out; (at = strstr(at, "contact pull running ")) != NULL; at++) {
        lines++;
    }
    assert_true(lines >= 3);
    fprintf(stderr, "piped:\n%s", p.out);
    xs_out_free(&p);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("XS_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("XS_TEST_FILTER")); /* one test while working on it */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_progress), cmocka_unit_test(test_run_failed),
        cmocka_unit_test(test_cli_errors),   cmocka_unit_test(test_cli_commands),
        cmocka_unit_test(test_cli_tmux_bar), cmocka_unit_test(test_cli_operator_routes),
        cmocka_unit_test(test_cli_connect),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
