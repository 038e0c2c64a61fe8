/* hookwatch_test.c: a connection's webhook state and polling (hookwatch.c) from the rows a
 * real PostgreSQL holds (the `pg` fixture's cluster): the tenant's events, the connection's
 * incremental runs and its incremental schedule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "hookwatch.h"
#include "xs/log.h"

#define MIN 60000

static char *url;
static xs_pg *pg;
static orch O;
static uint8_t key[] = "webhook-key";
static char log_path[] = "/tmp/xs-hookwatch-test-XXXXXX";

/* sql runs a statement with up to three parameters and returns its first value (new; NULL
 * when none). */
static char *sql(const char *q, const char *p1, const char *p2, const char *p3)
{
    const char *params[3] = {p1, p2, p3};
    int n = p3 != NULL ? 3 : p2 != NULL ? 2 : p1 != NULL ? 1 : 0;
    xs_pg_res *r = NULL;
    if (xs_pg_exec(pg, &r, q, n, params) != XS_OK) {
        fail_msg("%s: %s", q, xs_pg_error(pg));
    }
    const char *v = xs_pg_res_nrows(r) > 0 ? xs_pg_res_get(r, 0, 0) : NULL;
    char *copy = v != NULL ? strdup(v) : NULL;
    xs_pg_res_free(r);
    return copy;
}

static void exec(const char *q, const char *p1, const char *p2, const char *p3)
{
    free(sql(q, p1, p2, p3));
}

static int group_setup(void **state)
{
    (void)state;
    url = xst_db_migrated("hookwatch");
    if (xs_pg_connect(&pg, url, "hookwatch-test", 5000, NULL) != XS_OK) {
        return -1;
    }
    int fd = mkstemp(log_path);
    if (fd < 0 || xs_log_create(&O.proc.log, "hookwatch_test", XS_LOG_DEBUG, fd) != XS_OK) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    xs_log_destroy(O.proc.log);
    unlink(log_path);
    xs_pg_close(pg);
    free(url);
    return 0;
}

/* A fresh connection (its tenant's id in tenant) with its incremental schedule due at
 * 2030-01-01 00:05 UTC, and the configuration of the defaults: a key, 1 h silence, relaxed to
 * 1 h, incremental runs every 15 min. */
static char conn[40], tenant[40];

static int each_setup(void **state)
{
    (void)state;
    O.webhook_keys[0].bytes = key;
    O.webhook_keys[0].len = sizeof(key) - 1;
    O.webhook_keys[1].bytes = NULL;
    O.webhook_silence_ms = 60 * MIN;
    O.webhook_poll_every_ms = 60 * MIN;
    O.incremental_every_ms = 15 * MIN;
    O.full_at_minutes = 120;
    char *org =
        sql("INSERT INTO app.organisations (name) VALUES ('Org') RETURNING id", NULL, NULL, NULL);
    char *c = sql("WITH g AS (INSERT INTO sync.grants (organisation_id) VALUES ($1) RETURNING id) "
                  "INSERT INTO sync.connections (organisation_id, tenant_id, grant_id) SELECT $1, "
                  "gen_random_uuid(), id FROM g RETURNING id::text || ' ' || tenant_id::text",
                  org, NULL, NULL);
    assert_int_equal(sscanf(c, "%39s %39s", conn, tenant), 2);
    exec("INSERT INTO sync.schedules (connection_id, kind, next_run_at) VALUES ($1, "
         "'incremental', '2030-01-01T00:05:00Z')",
         conn, NULL, NULL);
    free(c);
    free(org);
    return 0;
}

/* event stores an event of the tenant received `ago` (an interval) ago. */
static void event(const char *ago)
{
    exec("INSERT INTO sync.webhook_events (tenant_id, event_category, event_type, resource_id, "
         "event_date_utc, raw, received_at) VALUES ($1, 'CREDITNOTE', 'UPDATE', "
         "gen_random_uuid(), now(), '{}', now() - $2::interval)",
         tenant, ago, NULL);
}

/* run records an incremental run of entities (a PostgreSQL array) with counts, started at
 * `at` and ended a minute later (status succeeded; NULL: still running). */
static void run(const char *entities, const char *counts, const char *at, const char *status)
{
    char q[1024];
    snprintf(q, sizeof(q),
             "INSERT INTO sync.runs (connection_id, mode, direction, trigger, entities, status, "
             "counts, created_at, finished_at) VALUES ($1, 'incremental', 'pull', 'schedule', "
             "$2::text[], '%s', $3::jsonb, now() - $4::interval, %s)",
             status != NULL ? status : "running",
             status != NULL ? "now() - $4::interval + interval '1 minute'" : "NULL");
    const char *params[] = {conn, entities, counts, at};
    assert_int_equal(xs_pg_exec(pg, NULL, q, 4, params), XS_OK);
}

static orch_hookwatch read_state(void)
{
    orch_hookwatch h;
    json_t *settings = json_object();
    assert_int_equal(orch_hookwatch_read(&O, pg, conn, settings, &h), XS_OK);
    json_decref(settings);
    return h;
}

static void test_states(void **state)
{
    (void)state;
    /* No event yet: silent; without a key: not configured, whatever came. */
    orch_hookwatch h = read_state();
    assert_string_equal(h.state, "silent");
    assert_false(h.relaxed);
    event("2 hours");
    assert_string_equal(read_state().state, "silent");
    event("10 minutes");
    h = read_state();
    assert_string_equal(h.state, "healthy");
    assert_true(h.relaxed);
    assert_false(h.polled_lately); /* never pulled: the next run pulls them */
    assert_string_equal(h.polled_at, "");
    O.webhook_keys[0].bytes = NULL;
    assert_string_equal(read_state().state, "not_configured");
    O.webhook_keys[1].bytes = key; /* the previous key alone, in a rotation */
    assert_string_equal(read_state().state, "healthy");

    /* A pull of contacts that created a record: missed. A later one that found nothing: healthy
     * again. A run that pulled only payments does not count either way; nor does one still
     * running. */
    run("{contact,invoice,payment}", "{\"contact\": {\"pull\": {\"created\": 1}}}", "40 minutes",
        "succeeded");
    h = read_state();
    assert_string_equal(h.state, "missed");
    assert_false(h.relaxed);
    assert_true(h.polled_lately);
    run("{payment}", "{\"payment\": {\"pull\": {\"unchanged\": 4}}}", "30 minutes", "succeeded");
    assert_string_equal(read_state().state, "missed");
    run("{contact,invoice,payment}", "{\"contact\": {\"pull\": {\"unchanged\": 3}}}", "20 minutes",
        "partial");
    assert_string_equal(read_state().state, "healthy");
    run("{invoice}", "{\"invoice\": {\"pull\": {\"updated\": 2}}}", "10 minutes", "failed");
    assert_string_equal(read_state().state, "missed");
    run("{contact}", "{\"contact\": {\"pull\": {\"conflicts\": 1}}}", "5 minutes", "succeeded");
    assert_string_equal(read_state().state, "missed");
    run("{contact}", "{}", "2 minutes", "succeeded");
    assert_string_equal(read_state().state, "healthy");
    /* Payments created by a pull miss nothing: Xero sends no webhooks for them. */
    run("{contact,payment}", "{\"payment\": {\"pull\": {\"created\": 7}}}", "1 minute",
        "succeeded");
    assert_string_equal(read_state().state, "healthy");
    run("{contact}", "{}", "0 minutes", NULL);
    h = read_state();
    assert_string_equal(h.state, "healthy");
    assert_true(h.polled_lately);
}

static void test_relaxed_only_when_longer(void **state)
{
    (void)state;
    event("1 minute");
    run("{contact}", "{}", "30 minutes", "succeeded");
    orch_hookwatch h = read_state();
    assert_true(h.relaxed);
    assert_true(h.polled_lately);
    /* 0: relaxing off; not longer than the incremental interval: nothing to relax. */
    O.webhook_poll_every_ms = 0;
    h = read_state();
    assert_string_equal(h.state, "healthy");
    assert_false(h.relaxed);
    assert_false(h.polled_lately);
    O.webhook_poll_every_ms = 15 * MIN;
    assert_false(read_state().relaxed);
    /* Pulled longer ago than the relaxed interval: due. */
    O.webhook_poll_every_ms = 20 * MIN;
    h = read_state();
    assert_true(h.relaxed);
    assert_false(h.polled_lately);
    /* The silence is configured too. */
    O.webhook_silence_ms = 30000;
    assert_string_equal(read_state().state, "silent");
}

static void test_next_poll(void **state)
{
    (void)state;
    event("1 minute");
    /* Normal polling: the schedule's next time. */
    orch_hookwatch h = read_state();
    assert_string_equal(h.next_poll_at, "2030-01-01T00:05:00.000Z");
    /* Relaxed, pulled at 00:00: the first run of the schedule (00:05, 00:20, ...) at or after
     * 01:00. */
    exec("INSERT INTO sync.runs (connection_id, mode, direction, trigger, entities, created_at) "
         "VALUES ($1, 'incremental', 'pull', 'schedule', '{contact}', '2030-01-01T00:00:00Z')",
         conn, NULL, NULL);
    h = read_state();
    assert_true(h.relaxed);
    assert_string_equal(h.polled_at, "2030-01-01T00:00:00.000Z");
    assert_string_equal(h.next_poll_at, "2030-01-01T01:05:00.000Z");
    /* The connection's own interval (settings), and no time when its schedule is off. */
    json_t *settings = json_pack("{s:{s:{s:i}}}", "schedule", "incremental", "every_minutes", 10);
    assert_int_equal(orch_hookwatch_read(&O, pg, conn, settings, &h), XS_OK);
    json_decref(settings);
    assert_string_equal(h.next_poll_at, "2030-01-01T01:05:00.000Z"); /* 00:05 + 6 x 10 min */
    settings = json_pack("{s:{s:{s:i}}}", "schedule", "incremental", "every_minutes", 25);
    assert_int_equal(orch_hookwatch_read(&O, pg, conn, settings, &h), XS_OK);
    json_decref(settings);
    assert_string_equal(h.next_poll_at, "2030-01-01T01:20:00.000Z"); /* 00:05 + 3 x 25 min */
    settings = json_pack("{s:{s:{s:b}}}", "schedule", "incremental", "enabled", 0);
    assert_int_equal(orch_hookwatch_read(&O, pg, conn, settings, &h), XS_OK);
    json_decref(settings);
    assert_string_equal(h.next_poll_at, "");
    /* And none for a connection that is not there. */
    settings = json_object();
    assert_int_equal(
        orch_hookwatch_read(&O, pg, "00000000-0000-4000-8000-000000000000", settings, &h),
        XS_ENOTFOUND);
    json_decref(settings);
}

/* lines counts the log's lines holding both a and b. */
static int lines(const char *a, const char *b)
{
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, conn) != NULL && strstr(line, a) != NULL && strstr(line, b) != NULL;
    }
    fclose(f);
    return n;
}

static void test_note_logs_each_change_once(void **state)
{
    (void)state;
    orch_hookwatch relaxed = {.state = "healthy", .relaxed = true};
    orch_hookwatch silent = {.state = "silent"}, missed = {.state = "missed"};
    /* Nothing noted counts as normal: a first normal state is no change. */
    orch_hookwatch_note(&O, pg, conn, &silent);
    assert_int_equal(lines("webhook.polling_normal", "silent"), 0);
    orch_hookwatch_note(&O, pg, conn, &relaxed);
    orch_hookwatch_note(&O, pg, conn, &relaxed);
    assert_int_equal(lines("webhook.polling_relaxed", "\"state\":\"healthy\""), 1);
    orch_hookwatch_note(&O, pg, conn, &missed);
    orch_hookwatch_note(&O, pg, conn, &silent); /* still normal: no line */
    orch_hookwatch_note(&O, pg, conn, &missed);
    assert_int_equal(lines("webhook.polling_normal", "\"state\":\"missed\""), 1);
    assert_int_equal(lines("webhook.polling_normal", "\"state\":\"silent\""), 0);
    /* Durable beside the schedule, its other settings kept. */
    char *noted = sql("SELECT (settings -> 'webhooks' ->> 'state') || ' ' || (settings -> "
                      "'webhooks' ->> 'polling') || ' ' || next_run_at::text FROM sync.schedules "
                      "WHERE connection_id = $1 AND kind = 'incremental'",
                      conn, NULL, NULL);
    assert_non_null(noted);
    assert_memory_equal(noted, "missed normal 2030-01-01", strlen("missed normal 2030-01-01"));
    free(noted);
}

/* assert_others checks what a relaxed incremental run covers under settings (JSON text). */
static void assert_others(const char *settings, const char *want)
{
    json_t *st = json_loads(settings, 0, NULL);
    assert_non_null(st);
    json_t *o = orch_hookwatch_others(st);
    char *got = json_dumps(o, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    json_decref(o);
    json_decref(st);
}

static void test_others(void **state)
{
    (void)state;
    assert_others("{}", "[\"account\",\"payment\",\"bank_transaction\"]");
    assert_others("{\"entities\": [\"contact\", \"payment\"]}", "[\"payment\"]");
    assert_others("{\"entities\": [\"contact\", \"invoice\"]}", "[]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_states, each_setup),
        cmocka_unit_test_setup(test_relaxed_only_when_longer, each_setup),
        cmocka_unit_test_setup(test_next_poll, each_setup),
        cmocka_unit_test_setup(test_note_logs_each_change_once, each_setup),
        cmocka_unit_test(test_others),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
