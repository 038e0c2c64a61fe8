/*
 * sched_test.c: the scheduler at scale (services/orchestrator/sched.c, polling.c), with the
 * real orchestrator, xs-auth and the simulator.
 *
 * - Start rate: 300 tenants connected by one consent are 300 initial imports due at once; all
 *   300 runs are made within a few seconds of the connections, in batches one after another
 *   rather than 100 a second (no domain service runs here: what is measured is how fast the
 *   runs are made, not how fast they run). Under a small app-wide budget (50 calls per 2 s),
 *   150 imports due at once are made 50 per window.
 * - Spread: the next daily full runs of those 300 connections are 300 distinct times, all
 *   within XS_SCHEDULE_FULL_WINDOW from XS_SCHEDULE_FULL_AT and spread over it; unchanged by a
 *   restart; moved by a restart with another window, and back to the very same times when the
 *   window is set back (each connection's slot comes from its id). A connection that fixes
 *   its own time (schedule.full.at) keeps it exactly.
 * - Adaptive polling: an entity whose polls find nothing is polled less and less often, never
 *   less often than XS_POLL_MAX_EVERY; a change found in Xero, a local change pushed, and a
 *   webhook naming the entity bring it back to the incremental interval; an entity the connection
 * does not sync is never polled; the stats show the intervals and the cost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "engine.h"
#include "xs/json.h"

#define TENANTS 300
#define KEY     "sched-test-webhook-key-0123456789abcdef"

/* sched_env is the orchestrator's environment of the start-rate and spread test, with the
 * window given (e.g. "XS_SCHEDULE_FULL_WINDOW=5h"). */
static char **sched_env(char *window)
{
    static char *env[8];
    env[0] = "XS_SCHEDULER=true";
    env[1] = "XS_SCHEDULE_JITTER=0";
    env[2] = "XS_SCHEDULE_FULL_AT=01:00";
    env[3] = window;
    env[4] = "XS_SCHEDULE_INCREMENTAL_EVERY=1h";
    env[5] = NULL;
    return env;
}

/* restart stops the orchestrator and starts it again with env. */
static void restart(xst_engine *e, char **env)
{
    assert_int_equal(xst_stop(e->orch, 20000), 0);
    xst_proc_free(e->orch);
    e->orch = NULL;
    xst_engine_start_orchestrator(e, env);
}

/* The next full runs of the connections of organisation $1, in the order of their ids. */
/* The times of day (UTC) of the full schedules: a slot that comes due while the test runs (it
 * may run at any hour, the window's own included) moves on by a day and keeps its time. */
#define FULL_TIMES                                                                                 \
    "SELECT string_agg(((s.next_run_at AT TIME ZONE 'UTC')::time)::text, ',' ORDER BY "            \
    "s.connection_id) FROM "                                                                       \
    "sync.schedules s JOIN sync.connections c ON c.id = s.connection_id WHERE s.kind = 'full' "    \
    "AND c.organisation_id = $1"

/* within counts the full schedules of organisation org due in the next day at a time of day
 * from `from` to before `to` (HH:MM, UTC); one due a moment ago, that the scheduler has yet to
 * move on, counts too. */
static long within(xst_engine *e, const char *org, const char *from, const char *to)
{
    return xst_engine_sql_longf(
        e,
        "SELECT count(*) FROM sync.schedules s JOIN sync.connections c ON c.id = s.connection_id "
        "WHERE s.kind = 'full' AND c.organisation_id = $1 AND s.next_run_at > now() - interval "
        "'1 minute' AND "
        "s.next_run_at <= now() + interval '1 day' AND (s.next_run_at AT TIME ZONE 'UTC')::time "
        ">= $2::time AND (s.next_run_at AT TIME ZONE 'UTC')::time < $3::time",
        3, org, from, to);
}

/* many starts the simulator, the orchestrator (env) and xs-auth on e, makes n organisations in
 * Xero (the simulator has one already) and connects them all by one consent; the local
 * organisation's id (new). */
static char *many(xst_engine *e, char **env, int n)
{
    char *sim_env[] = {"XS_SIM_LIMIT_MINUTE=100000", "XS_SIM_LIMIT_DAY=10000000", NULL};
    xst_engine_start_sim(e, sim_env);
    xst_engine_start_orchestrator(e, env);
    xst_engine_start_service(e, "auth", "auth-1", NULL);
    assert_true(xst_engine_wait_live(e, "auth", 1, 20000));
    for (int i = 1; i < n; i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"name\":\"Tenant %d\"}", i);
        json_decref(xst_engine_sim_json(e, "POST", "/_sim/tenants", body));
    }
    char *org = xst_engine_org(e, "Many Ltd");
    xst_http cb = xst_engine_connect(e, org);
    assert_int_equal(cb.status, 200);
    assert_int_equal(json_array_size(json_object_get(cb.json, "connections")), n);
    xst_http_free(&cb);
    return org;
}

/* The scheduled full runs of the connections of organisation $1. */
#define FULL_RUNS                                                                                  \
    "SELECT count(*) FROM sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE "    \
    "c.organisation_id = $1 AND r.mode = 'full' AND r.trigger = 'schedule'"

/* wait_runs waits until organisation org has n scheduled full runs; dies after timeout_ms. */
static void wait_runs(xst_engine *e, const char *org, long n, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (xst_engine_sql_longf(e, FULL_RUNS, 1, org) < n) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
}

static void test_start_rate_and_spread(void **state)
{
    (void)state;
    xst_engine *e = xst_engine_new("sched");
    char win5[] = "XS_SCHEDULE_FULL_WINDOW=5h", win2[] = "XS_SCHEDULE_FULL_WINDOW=2h";
    char *org = many(e, sched_env(win5), TENANTS);

    /* Start rate: every initial import made within a few seconds of the connections (one tick
     * at most, then the batches), not 100 a second. */
    wait_runs(e, org, TENANTS, 20000);
    long made_ms = xst_engine_sql_longf(
        e,
        "SELECT (extract(epoch FROM max(r.created_at) - min(r.created_at)) * 1000)::bigint FROM "
        "sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE c.organisation_id = "
        "$1 AND r.mode = 'full'",
        1, org);
    long after_ms = xst_engine_sql_longf(
        e,
        "SELECT (extract(epoch FROM max(r.created_at) - max(c.created_at)) * 1000)::bigint FROM "
        "sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE c.organisation_id = "
        "$1 AND r.mode = 'full'",
        1, org);
    fprintf(stderr,
            "start rate: %d initial imports made over %ld ms, the last %ld ms after the "
            "connections\n",
            TENANTS, made_ms, after_ms);
    assert_true(made_ms >= 0 && made_ms < 2000);
    assert_true(after_ms < 3500);

    /* Spread: 300 distinct times in 01:00-06:00 UTC, each hour holding a fair share (60 on
     * average; 30 to 90 is over four standard deviations either way). */
    assert_int_equal(within(e, org, "01:00", "06:00"), TENANTS);
    assert_int_equal(xst_engine_sql_longf(e,
                                          "SELECT count(DISTINCT s.next_run_at) FROM "
                                          "sync.schedules s JOIN sync.connections c ON c.id = "
                                          "s.connection_id WHERE s.kind = 'full' AND "
                                          "c.organisation_id = $1",
                                          1, org),
                     TENANTS);
    const char *hours[] = {"01:00", "02:00", "03:00", "04:00", "05:00", "06:00"};
    for (int h = 0; h < 5; h++) {
        long n = within(e, org, hours[h], hours[h + 1]);
        fprintf(stderr, "spread: %ld full runs from %s\n", n, hours[h]);
        assert_true(n >= 30 && n <= 90);
    }
    char *first = xst_engine_sqlf(e, FULL_TIMES, 1, org);

    /* A restart changes nothing; another window moves them all into it; the first window again
     * gives back the very same times. */
    restart(e, sched_env(win5));
    usleep(2500000); /* the recompute, had it anything to move, would have moved it by now */
    char *again = xst_engine_sqlf(e, FULL_TIMES, 1, org);
    assert_string_equal(again, first);
    free(again);
    restart(e, sched_env(win2));
    int64_t end = xst_now_ms() + 10000;
    while (within(e, org, "01:00", "03:00") < TENANTS) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    again = xst_engine_sqlf(e, FULL_TIMES, 1, org);
    assert_string_not_equal(again, first);
    free(again);
    restart(e, sched_env(win5));
    end = xst_now_ms() + 10000;
    for (;;) {
        again = xst_engine_sqlf(e, FULL_TIMES, 1, org);
        if (strcmp(again, first) == 0) {
            break;
        }
        free(again);
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    free(again);

    /* A connection's own time is kept exactly, outside the window. */
    char *conn = xst_engine_sqlf(e,
                                 "SELECT id FROM sync.connections WHERE organisation_id = $1 "
                                 "ORDER BY id LIMIT 1",
                                 1, org);
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", conn);
    xst_http r = xst_engine_api(e, "PUT", path, "{\"schedule\":{\"full\":{\"at\":\"23:15\"}}}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    assert_int_equal(xst_engine_sql_longf(e,
                                          "SELECT count(*) FROM sync.schedules WHERE "
                                          "connection_id = $1 AND kind = 'full' AND "
                                          "to_char(next_run_at AT TIME ZONE 'UTC', "
                                          "'HH24:MI:SS.MS') = '23:15:00.000'",
                                          1, conn),
                     1);
    free(conn);
    free(first);
    free(org);
    assert_int_equal(xst_engine_free(e), 0);
}

/* Where the app-wide budget is small, the scheduler starts no more runs in a window than ten
 * windows of it: 150 imports due at once under 5 calls per 2 s are made 50, then 50 two
 * seconds on, then 50. */
static void test_start_rate_follows_the_budget(void **state)
{
    (void)state;
    xst_engine *e = xst_engine_new("schedrate");
    char *env[] = {"XS_SCHEDULER=true", "XS_SCHEDULE_INCREMENTAL_EVERY=1h",
                   "XS_BUDGET_APP_MINUTE=5", "XS_BUDGET_MINUTE_WINDOW=2s", NULL};
    char *org = many(e, env, 150);
    wait_runs(e, org, 150, 15000);
    /* Each run's count of the runs made in the 1.8 s from it (the window, to within a slot
     * of 2/16 s): never more than 50, and 50 from the first. */
    const char *per =
        "SELECT %s FROM (SELECT (SELECT count(*) FROM sync.runs y JOIN sync.connections k ON "
        "k.id = y.connection_id WHERE k.organisation_id = $1 AND y.mode = 'full' AND "
        "y.created_at >= r.created_at AND y.created_at < r.created_at + interval '1800 ms') AS n, "
        "r.created_at FROM sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE "
        "c.organisation_id = $1 AND r.mode = 'full') w";
    char q[1024];
    snprintf(q, sizeof(q), per, "max(n)");
    assert_int_equal(xst_engine_sql_longf(e, q, 1, org), 50);
    snprintf(q, sizeof(q), per, "(array_agg(n ORDER BY created_at))[1]");
    assert_int_equal(xst_engine_sql_longf(e, q, 1, org), 50);
    long spread_ms = xst_engine_sql_longf(
        e,
        "SELECT (extract(epoch FROM max(r.created_at) - min(r.created_at)) * 1000)::bigint FROM "
        "sync.runs r JOIN sync.connections c ON c.id = r.connection_id WHERE c.organisation_id = "
        "$1 AND r.mode = 'full'",
        1, org);
    fprintf(stderr, "budgeted start rate: 150 initial imports made over %ld ms\n", spread_ms);
    assert_true(spread_ms >= 3600 && spread_ms < 6000);
    free(org);
    assert_int_equal(xst_engine_free(e), 0);
}

/* The adaptive polling world: one tenant, every service, incremental runs every second. */
static xst_engine *E;
static char CONN[40], TENANT[40];

/* polling returns the stats' polling block (new). */
static json_t *polling(void)
{
    json_t *p = xst_engine_stats(E, CONN, "polling");
    assert_non_null(p);
    return p;
}

/* contact_every is the contacts' poll interval the stats show (ms), and their empty polls in
 * a row into *empty when not NULL. */
static long contact_every(long *empty)
{
    json_t *p = polling();
    json_t *c = json_object_get(json_object_get(p, "entities"), "contact");
    assert_non_null(c);
    long every = (long)json_integer_value(json_object_get(c, "every_ms"));
    if (empty != NULL) {
        *empty = (long)json_integer_value(json_object_get(c, "empty_polls"));
    }
    json_decref(p);
    return every;
}

/* contact_polled_at is when a scheduled run last polled the contacts (new; "" for never). */
static char *contact_polled_at(void)
{
    json_t *p = polling();
    const char *at = xs_json_string_value(
        json_object_get(json_object_get(json_object_get(p, "entities"), "contact"), "polled_at"),
        NULL);
    char *out = strdup(at != NULL ? at : "");
    json_decref(p);
    return out;
}

/* wait_every waits until the contacts' interval is want ms with no empty poll yet when fresh;
 * false after timeout_ms. */
static bool wait_every(long want, bool fresh, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (xst_now_ms() < end) {
        long empty = -1;
        if (contact_every(&empty) == want && (!fresh || empty == 0)) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

static void test_adaptive_polling(void **state)
{
    (void)state;
    E = xst_engine_new("polling");
    /* Webhooks signed with KEY, delivered only once the test gives the simulator a URL; never
     * relaxing the polling (XS_WEBHOOK_POLL_EVERY 0), so every poll here is adaptive. */
    char *sim_env[] = {"XS_SIM_LIMIT_MINUTE=100000",       "XS_SIM_LIMIT_DAY=10000000",
                       "XS_SIM_WEBHOOK_KEY=" KEY,          "XS_SIM_WEBHOOK_DELAY=100ms",
                       "XS_SIM_WEBHOOK_REQUIRE_ITR=false", NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_XERO_WEBHOOK_KEY=" KEY,
                        "XS_WEBHOOK_POLL_EVERY=0",
                        "XS_WEBHOOK_DELAY=100ms",
                        "XS_SCHEDULE_INCREMENTAL_EVERY=1s",
                        "XS_SCHEDULE_JITTER=0",
                        "XS_POLL_MAX_EVERY=4s",
                        "XS_PUSH_DELAY=0ms",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=1000000",
                        NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    char *org = xst_engine_connected(E, "Quiet Ltd", CONN, TENANT);
    int64_t end = xst_now_ms() + 30000;
    while (xst_engine_sql_longf(E,
                                "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode "
                                "= 'full' AND status = 'succeeded'",
                                1, CONN) == 0) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    /* The connection syncs contacts only from now on. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    xst_http r = xst_engine_api(E, "PUT", path, "{\"entities\":[\"contact\"]}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    assert_true(xst_engine_settle(E, 20000));
    long invoices = xst_engine_sim_calls(E, "GET /Invoices", 0);
    long payments = xst_engine_sim_calls(E, "GET /Payments", 0);

    /* Nothing changes in Xero: the interval doubles to the cap and stays there. */
    assert_true(wait_every(4000, false, 15000));
    json_t *p = polling();
    assert_int_equal(json_object_size(json_object_get(p, "entities")), 1);
    assert_true(json_integer_value(json_object_get(p, "calls_last_hour")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(p, "max_every_ms")), 4000);
    /* One call every 4 s: 900 an hour, where every second would be 3,600. */
    const char *est = xs_json_decimal_text(json_object_get(p, "calls_per_hour_estimate"));
    assert_non_null(est);
    assert_string_equal(est, "900.00");
    json_decref(p);
    long contacts = xst_engine_sim_calls(E, "GET /Contacts", 0);
    int64_t t0 = xst_now_ms();
    while (xst_now_ms() - t0 < 9000) {
        long empty = 0;
        assert_int_equal(contact_every(&empty), 4000);
        assert_true(empty >= 2);
        usleep(250000);
    }
    long polled = xst_engine_sim_calls(E, "GET /Contacts", 0) - contacts;
    fprintf(stderr, "backed off: %ld contact polls in 9 s at the cap of 4 s\n", polled);
    assert_true(polled >= 1 && polled <= 3);

    /* A contact made in Xero: the poll that finds it brings the interval back to a second. */
    char sp[128];
    snprintf(sp, sizeof(sp), "/_sim/tenants/%s/Contacts", TENANT);
    json_decref(xst_engine_sim_json(E, "PUT", sp, "{\"Name\":\"Made in Xero\"}"));
    assert_true(wait_every(1000, true, 8000));
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM app.contacts WHERE organisation_id "
                                          "= $1 AND name = 'Made in Xero'",
                                          1, org),
                     1);

    /* Backed off again, then a local change, pushed: back to a second, the push run's doing
     * (no scheduled pull found anything since). */
    assert_true(wait_every(4000, false, 15000));
    char *pushed = xst_engine_sql(E, "SELECT sync.iso(now())", 0, NULL);
    free(xst_engine_sqlf(E, "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2)", 2,
                         org, "Made here"));
    assert_true(wait_every(1000, true, 6000));
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.runs WHERE connection_id = $1 "
                                          "AND trigger = 'schedule' AND created_at > "
                                          "$2::timestamptz AND sync.pull_found(counts -> "
                                          "'contact' -> 'pull')",
                                          2, CONN, pushed),
                     0);
    free(pushed);

    /* Backed off again, then a contact edited in Xero comes by webhook (the simulator delivers
     * now): the webhook run brings the interval back, no poll having found the edit. */
    assert_true(wait_every(4000, false, 15000));
    char body[512], lid[40], xid[40];
    snprintf(body, sizeof(body),
             "{\"webhook\":{\"url\":\"%s/v1/webhooks/xero\",\"require_intent_to_receive\":"
             "false}}",
             E->api);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", body));
    char *mark = xst_engine_sql(E, "SELECT sync.iso(now())", 0, NULL);
    xst_engine_mapped(E, "contact", 0, lid, xid);
    snprintf(sp, sizeof(sp), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    /* Right after a poll: the next is 4 s away, long after the webhook's run ... */
    char *last = contact_polled_at();
    end = xst_now_ms() + 8000;
    for (;;) {
        char *now = contact_polled_at();
        bool same = strcmp(now, last) == 0;
        free(now);
        if (!same) {
            break;
        }
        assert_true(xst_now_ms() < end);
        usleep(20000);
    }
    free(last);
    /* ... and once that poll's run has ended, having read Xero before the edit. */
    while (xst_engine_sql_longf(E,
                                "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode "
                                "= 'incremental' AND status IN ('queued', 'running')",
                                1, CONN) > 0) {
        assert_true(xst_now_ms() < end);
        usleep(20000);
    }
    json_decref(xst_engine_sim_json(E, "POST", sp, "{\"EmailAddress\":\"hook@example.com\"}"));
    assert_true(wait_every(1000, true, 6000));
    assert_true(xst_engine_sql_longf(E,
                                     "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                                     "mode = 'entity' AND trigger = 'webhook' AND created_at > "
                                     "$2::timestamptz AND 'contact' = ANY (entities)",
                                     2, CONN, mark) >= 1);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.runs WHERE connection_id = $1 "
                                          "AND trigger = 'schedule' AND created_at > "
                                          "$2::timestamptz AND sync.pull_found(counts -> "
                                          "'contact' -> 'pull')",
                                          2, CONN, mark),
                     0);
    free(mark);

    /* The entities it does not sync were never polled. */
    assert_int_equal(xst_engine_sim_calls(E, "GET /Invoices", 0), invoices);
    assert_int_equal(xst_engine_sim_calls(E, "GET /Payments", 0), payments);
    free(org);
    assert_int_equal(xst_engine_free(E), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("XST_ONLY") != NULL) {
        cmocka_set_test_filter(getenv("XST_ONLY")); /* one test, by name (a glob) */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_rate_and_spread),
        cmocka_unit_test(test_start_rate_follows_the_budget),
        cmocka_unit_test(test_adaptive_polling),
    };
    return xst_result(cmocka_run_group_tests(tests, NULL, NULL));
}
