/*
 * budget_test.c: a tenant's day budget running out, end to end against xero-sim (issue 19,
 * "When the budget runs out"). The simulator's day is a few seconds and a few calls long; the
 * orchestrator follows what Xero says: the 429's Retry-After is the end of the block, the
 * block is logged once, shown on the connection, its statistics and its waiting runs, kept
 * across a restart (no call goes into it), and when it ends the work completes and the fields
 * clear.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

/* The simulator's day: DAY_CALLS calls in DAY_WINDOW_MS. A block is used for the restart when
 * at least MIN_BLOCK_MS of it is left when it is seen. */
#define DAY_CALLS     8
#define DAY_WINDOW_MS 15000
#define MIN_BLOCK_MS  6000

typedef struct world {
    xst_engine *e;
    char *org;
    char conn[40], tenant[40];
} world;

static char *const ORCH_ENV[] = {"XS_SCHEDULER=false",
                                 "XS_BUDGET_TENANT_MINUTE=100000",
                                 "XS_BUDGET_TENANT_DAY=10000000",
                                 "XS_BUDGET_DAY_PROBE=1s",
                                 "XS_STEP_BACKOFF=50ms",
                                 "XS_STEP_BACKOFF_MAX=500ms",
                                 "XS_PUSH_DELAY=100ms",
                                 "XS_PUSH_POLL=200ms",
                                 "XS_PULL_PAGE_SIZE=5",
                                 NULL};

/* api_get answers GET path of the REST API (new), which must be 200. */
static json_t *api_get(world *w, const char *path)
{
    xst_http r = xst_engine_api(w->e, "GET", path, NULL);
    if (r.status != 200 || r.json == NULL) {
        fail_msg("GET %s: %ld %s", path, r.status, r.body);
    }
    json_t *j = json_incref(r.json);
    xst_http_free(&r);
    return j;
}

static json_t *connection(world *w)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/connections/%s", w->conn);
    return api_get(w, path);
}

static json_t *stats(world *w)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/stats", w->conn);
    return api_get(w, path);
}

/* block_left is how long the connection's stored block has left (ms; -1 when none). */
static long block_left(world *w)
{
    const char *p[] = {w->conn};
    return xst_engine_sql_long(w->e,
                               "SELECT coalesce((extract(epoch FROM rate_limited_until - now()) "
                               "* 1000)::bigint, -1) FROM sync.connections WHERE id = $1",
                               1, p);
}

/* make_work gives the connection calls to make: contacts changed in Xero, and a full and an
 * incremental run (unless one of the mode is under way already), pulling pages of 5. */
static void make_work(world *w)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/touch", w->tenant);
    json_decref(xst_engine_sim_json(w->e, "POST", path, "{\"kind\":\"Contacts\",\"count\":30}"));
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", w->conn);
    const char *modes[] = {"{\"mode\":\"full\"}", "{\"mode\":\"incremental\"}"};
    for (size_t i = 0; i < 2; i++) {
        xst_http r = xst_engine_api(w->e, "POST", path, modes[i]);
        assert_true(r.status == 202 || r.status == 409);
        xst_http_free(&r);
    }
}

/* log_count counts needle in p's captured log. */
static int log_count(const xst_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    assert_non_null(f);
    int n = 0;
    char line[16384];
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, needle) != NULL;
    }
    fclose(f);
    return n;
}

/* log_wait waits up to 2 s for needle to be in p's log `want` times (a log line follows the
 * row it tells of by a moment) and returns how many times it is there. */
static int log_wait(const xst_proc *p, const char *needle, int want)
{
    int64_t end = xst_now_ms() + 2000;
    int n;
    while ((n = log_count(p, needle)) != want && xst_now_ms() < end) {
        usleep(20000);
    }
    return n;
}

/* xero_calls counts the tenant's calls to Xero's API the simulator answered after call
 * number *since, and moves *since past them. */
static long xero_calls(world *w, long *since)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/calls?since=%ld&limit=100000&tenant=%s", *since, w->tenant);
    json_t *calls = xst_engine_sim_json(w->e, "GET", path, NULL);
    long n = 0;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        n += strncmp(xs_json_str_or(c, "path", ""), "/api.xro/", 9) == 0;
        long seq = (long)json_integer_value(json_object_get(c, "seq"));
        *since = seq > *since ? seq : *since;
    }
    json_decref(calls);
    return n;
}

/* assert_waiting checks that run (GET /v1/runs/{id} or a list's item) shows it waits for the
 * day block until `until`. */
static void assert_waiting(const json_t *run, const char *until)
{
    const json_t *wt = json_object_get(run, "waiting");
    if (wt == NULL) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        fail_msg("run without waiting: %s", t);
    }
    assert_string_equal(xs_json_str_or(wt, "reason", ""), "rate_limited");
    assert_string_equal(xs_json_str_or(wt, "problem", ""), "day");
    assert_string_equal(xs_json_str_or(wt, "until", ""), until);
}

/* wait_long_block makes work until a block set by Xero's Retry-After with at least
 * MIN_BLOCK_MS left is stored for the connection; the stats of that moment (new). */
static json_t *wait_long_block(world *w)
{
    int64_t end = xst_now_ms() + 3 * DAY_WINDOW_MS + 20000;
    bool short_seen = false;
    for (;;) {
        assert_true(xst_now_ms() < end);
        json_t *s = stats(w);
        bool exact = strcmp(xs_json_str_or(json_object_get(s, "budget"), "day_block", ""),
                            "retry_after") == 0;
        long left = block_left(w);
        if (exact && left >= MIN_BLOCK_MS) {
            return s;
        }
        json_decref(s);
        if (exact && !short_seen) {
            /* Too short to restart in: the next day is spent as soon as it begins. */
            short_seen = true;
            make_work(w);
        } else if (left < 0) {
            short_seen = false;
        }
        usleep(100000);
    }
}

static void test_day_budget_runs_out(void **state)
{
    (void)state;
    world w;
    memset(&w, 0, sizeof(w));
    w.e = xst_engine_new("budget");
    xst_engine_start_sim(w.e, NULL);
    xst_engine_start_orchestrator(w.e, ORCH_ENV);
    xst_engine_start_services(w.e);
    w.org = xst_engine_connected(w.e, "Budget Ltd", w.conn, w.tenant);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", w.tenant);
    json_decref(xst_engine_sim_json(w.e, "POST", path, "{\"contacts\":40,\"seed\":3}"));
    json_decref(xst_engine_run(w.e, w.conn, "{\"mode\":\"full\"}", 30000));

    /* A day of DAY_CALLS calls, and more work than two days hold. */
    char limits[128];
    snprintf(limits, sizeof(limits), "{\"limits\":{\"day\":%d,\"day_window_ms\":%d}}", DAY_CALLS,
             DAY_WINDOW_MS);
    json_decref(xst_engine_sim_json(w.e, "POST", "/_sim/config", limits));
    make_work(&w);
    json_t *s = wait_long_block(&w);

    /* The connection, its statistics and the log say so, once a block. A reply already on its
     * way when the block began (another 429, a later Retry-After) may still move its end, so
     * the two are read again until one pair was read with no move between. */
    json_t *c = connection(&w);
    char until[64];
    snprintf(until, sizeof(until), "%s", xs_json_str_or(c, "rate_limited_until", ""));
    for (int i = 0; i < 50 && strcmp(xs_json_str_or(s, "rate_limited_until", ""), until) != 0;
         i++) {
        json_decref(s);
        json_decref(c);
        usleep(100000);
        s = stats(&w);
        c = connection(&w);
        snprintf(until, sizeof(until), "%s", xs_json_str_or(c, "rate_limited_until", ""));
    }
    assert_true(strlen(until) > 0);
    assert_string_equal(xs_json_str_or(c, "rate_limited_problem", ""), "day");
    json_decref(c);
    assert_string_equal(xs_json_str_or(s, "rate_limited_until", ""), until);
    assert_string_equal(xs_json_str_or(s, "rate_limited_problem", ""), "day");
    int64_t blocked = 0;
    assert_int_equal(xs_json_get_int(json_object_get(s, "budget"), "blocked_ms", &blocked), XS_OK);
    assert_true(blocked >= MIN_BLOCK_MS - 1000);
    int64_t queued = 0, running = 0, steps = 0;
    xs_json_get_int(json_object_get(s, "waiting"), "runs_queued", &queued);
    xs_json_get_int(json_object_get(s, "waiting"), "runs_running", &running);
    xs_json_get_int(json_object_get(s, "waiting"), "steps_pending", &steps);
    assert_true(queued + running >= 1);
    assert_true(steps >= 1);
    json_decref(s);
    int restored = log_count(w.e->orch, "\"budget.restored\"");
    assert_int_equal(log_wait(w.e->orch, "\"budget.exhausted\"", restored + 1), restored + 1);
    assert_true(xst_log_contains(w.e->orch, "\"reason\":\"day\""));
    char list_path[160];
    snprintf(list_path, sizeof(list_path), "/v1/connections?organisation_id=%s", w.org);
    json_t *list = api_get(&w, list_path);
    assert_string_equal(xs_json_str_or(json_array_get(json_object_get(list, "connections"), 0),
                                       "rate_limited_until", ""),
                        until);
    json_decref(list);

    /* Local edits made now wait too: handed to a push run, they are still counted. */
    const char *p[] = {w.org};
    free(xst_engine_sql(w.e,
                        "INSERT INTO app.contacts (organisation_id, name) SELECT $1::uuid, 'Late "
                        "' || g FROM generate_series(1, 3) g",
                        1, p));
    int64_t end = xst_now_ms() + 5000;
    while (xst_engine_sql_long(w.e,
                               "SELECT count(*) FROM sync.changes WHERE organisation_id = $1 AND "
                               "processed_at IS NULL",
                               1, p) > 0) {
        assert_true(xst_now_ms() < end);
        usleep(50000);
    }
    s = stats(&w);
    int64_t changes = 0, contacts = 0;
    xs_json_get_int(json_object_get(s, "waiting"), "local_changes", &changes);
    xs_json_get_int(json_object_get(json_object_get(s, "entities"), "contact"), "outbox_pending",
                    &contacts);
    assert_int_equal(changes, 3);
    assert_int_equal(contacts, 3);
    json_decref(s);

    /* The runs not over say why they wait; those over do not. */
    snprintf(path, sizeof(path), "/v1/runs?connection_id=%s", w.conn);
    json_t *runs = api_get(&w, path);
    size_t i, waiting = 0;
    json_t *run;
    const char *waiting_id = NULL;
    json_array_foreach(json_object_get(runs, "runs"), i, run)
    {
        const char *st = xs_json_str_or(run, "status", "");
        if (strcmp(st, "queued") == 0 || strcmp(st, "running") == 0) {
            assert_waiting(run, until);
            waiting_id = xs_json_str_or(run, "id", "");
            waiting++;
        } else {
            assert_null(json_object_get(run, "waiting"));
        }
    }
    assert_true(waiting >= 2); /* the push run of the late edits among them */
    snprintf(path, sizeof(path), "/v1/runs/%s", waiting_id);
    json_t *one = api_get(&w, path);
    assert_waiting(one, until);
    json_decref(one);
    json_decref(runs);

    /* A restart in the block: no call to Xero for the tenant before it ends. */
    long since = 0;
    xero_calls(&w, &since);
    assert_int_equal(xst_stop(w.e->orch, 20000), 0);
    xst_proc_free(w.e->orch);
    xst_engine_start_orchestrator(w.e, ORCH_ENV);
    assert_true(xst_log_contains(w.e->orch, "\"budget.blocks_restored\""));
    /* From now on a day holds every call left. */
    json_decref(xst_engine_sim_json(w.e, "POST", "/_sim/config", "{\"limits\":{\"day\":1000000}}"));
    long left;
    while ((left = block_left(&w)) > 300) {
        assert_int_equal(xero_calls(&w, &since), 0);
        usleep(left > 1000 ? 200000 : 50000);
    }
    assert_int_equal(xero_calls(&w, &since), 0);

    /* After it, the work completes and the fields clear. */
    assert_true(xst_engine_settle(w.e, 30000));
    assert_true(xero_calls(&w, &since) > 0);
    end = xst_now_ms() + 5000;
    while (block_left(&w) != -1) {
        assert_true(xst_now_ms() < end);
        usleep(50000);
    }
    c = connection(&w);
    assert_true(json_is_null(json_object_get(c, "rate_limited_until")));
    assert_true(json_is_null(json_object_get(c, "rate_limited_problem")));
    json_decref(c);
    s = stats(&w);
    assert_true(json_is_null(json_object_get(s, "rate_limited_until")));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(s, "budget"), "blocked_ms")), 0);
    xs_json_get_int(json_object_get(s, "waiting"), "local_changes", &changes);
    assert_int_equal(changes, 0);
    json_decref(s);
    snprintf(path, sizeof(path), "/v1/runs?connection_id=%s", w.conn);
    runs = api_get(&w, path);
    json_array_foreach(json_object_get(runs, "runs"), i, run)
    {
        assert_string_equal(xs_json_str_or(run, "status", ""), "succeeded");
        assert_null(json_object_get(run, "waiting"));
    }
    json_decref(runs);
    assert_int_equal(xst_engine_sql_long(w.e,
                                         "SELECT count(*) FROM sync.mappings m JOIN app.contacts "
                                         "k ON k.id = m.local_id WHERE k.name LIKE 'Late %'",
                                         0, NULL),
                     3);
    /* The restarted orchestrator logged the end, and not the block again. */
    assert_int_equal(log_wait(w.e->orch, "\"budget.restored\"", 1), 1);
    assert_int_equal(log_count(w.e->orch, "\"budget.exhausted\""), 0);
    free(w.org);
    assert_int_equal(xst_engine_free(w.e), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_budget_runs_out),
    };
    return xst_result(cmocka_run_group_tests(tests, NULL, NULL));
}
