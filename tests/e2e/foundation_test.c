/*
 * foundation_test.c: the five processes, for real. A private PostgreSQL database migrated by
 * xs-migrate; the orchestrator and the four domain services (contacts twice) talking over nng;
 * /health over HTTP; work reaching both contacts replicas; SIGTERM stopping every process
 * cleanly; bad configuration and an unmigrated database refused at start.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "xs/pg.h"

#define API_KEY "test-key-0123456789abcdef"

typedef struct world {
    char *db_url;
    char bus[256];
    char base[128];
    char env_db[1024], env_bus_listen[300], env_bus_url[300], env_port[64];
    xst_proc *orch;
    xst_proc *auth, *contacts1, *contacts2, *invoices, *payments, *files, *jobs;
} world;

static world W;

static const char *AUTH_HDR[] = {"Authorization: Bearer " API_KEY, NULL};

/* run_to_end runs a binary to completion and returns its exit code; its log is shown when
 * the code is not the expected one. */
static int run_to_end(const char *name, const char *bin, char *const argv[], char *const env[],
                      int expect)
{
    xst_proc *p = xst_spawn(name, bin, argv, env);
    int64_t end = xst_now_ms() + 60000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    int code = xst_stop(p, 1000);
    if (code != expect) {
        xst_log_dump(p);
    }
    xst_proc_free(p);
    return code;
}

static xst_proc *start_service(const char *bin, const char *replica)
{
    char rid[128];
    snprintf(rid, sizeof(rid), "XS_REPLICA_ID=%s", replica);
    /* xs-auth also needs its Xero app and sealing key; the others ignore these. */
    char *env[] = {W.env_db,
                   W.env_bus_url,
                   "XS_HEARTBEAT=100ms",
                   "XS_WORKERS=4",
                   rid,
                   "XS_LOG_LEVEL=debug",
                   "XS_XERO_CLIENT_ID=xero-sim-client",
                   "XS_XERO_CLIENT_SECRET=xero-sim-secret",
                   "XS_TOKEN_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                   NULL};
    return xst_spawn(replica, xst_bin(bin), NULL, env);
}

static xst_http health(void)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", W.base);
    return xst_http_do("GET", url, NULL, NULL, 5000);
}

/* live_of returns domains.<d>.live from a /health body, or -1. */
static int live_of(const xst_http *h, const char *d)
{
    json_t *v = json_object_get(json_object_get(json_object_get(h->json, "domains"), d), "live");
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* wait_live polls /health until domain d has want live replicas. */
static bool wait_live(const char *d, int want, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        xst_http h = health();
        int live = live_of(&h, d);
        xst_http_free(&h);
        if (live == want) {
            return true;
        }
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(50000);
    }
}

static int setup(void **state)
{
    (void)state;
    W.db_url = xst_db_create("foundation");
    char dir[128];
    snprintf(dir, sizeof(dir), "/tmp/xs-foundation-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(W.bus, sizeof(W.bus), "ipc://%s/bus", dir);
    uint16_t port = xst_free_port();
    snprintf(W.base, sizeof(W.base), "http://127.0.0.1:%u", port);
    snprintf(W.env_db, sizeof(W.env_db), "XS_DATABASE_URL=%s", W.db_url);
    snprintf(W.env_bus_listen, sizeof(W.env_bus_listen), "XS_BUS_LISTEN=%s", W.bus);
    snprintf(W.env_bus_url, sizeof(W.env_bus_url), "XS_BUS_URL=%s", W.bus);
    snprintf(W.env_port, sizeof(W.env_port), "XS_HTTP_PORT=%u", port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xst_proc *all[] = {W.orch,     W.auth,     W.contacts1, W.contacts2,
                       W.invoices, W.payments, W.files,     W.jobs};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i] != NULL) {
            xst_stop(all[i], 5000);
            xst_proc_free(all[i]);
        }
    }
    free(W.db_url);
    return 0;
}

/* Services refuse a database that has not been migrated, naming the reason. */
static void test_unmigrated_database_refused(void **state)
{
    (void)state;
    char *env[] = {W.env_db, W.env_bus_url, "XS_DB_CONNECT_WAIT=5s", NULL};
    xst_proc *p = xst_spawn("contacts-unmigrated", xst_bin("xs-contacts"), NULL, env);
    int64_t end = xst_now_ms() + 20000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_false(xst_alive(p));
    assert_int_equal(xst_stop(p, 100), 1);
    assert_true(xst_log_contains(p, "db.schema_mismatch"));
    assert_true(xst_log_contains(p, "xs-migrate"));
    xst_proc_free(p);
}

/* xs-migrate applies the schema, is idempotent, and --check agrees. */
static void test_migrate(void **state)
{
    (void)state;
    char *env[] = {W.env_db, NULL};
    char *check[] = {(char *)xst_bin("xs-migrate"), "--check", NULL};
    assert_int_equal(run_to_end("migrate-check-before", xst_bin("xs-migrate"), check, env, 1), 1);
    assert_int_equal(run_to_end("migrate-1", xst_bin("xs-migrate"), NULL, env, 0), 0);
    assert_int_equal(run_to_end("migrate-2", xst_bin("xs-migrate"), NULL, env, 0), 0);
    assert_int_equal(run_to_end("migrate-check-after", xst_bin("xs-migrate"), check, env, 0), 0);
}

/* A bad variable stops the process at start with exit code 2 and a message naming it. */
static void test_bad_config_refused(void **state)
{
    (void)state;
    char *env[] = {W.env_db, W.env_bus_listen, "XS_HTTP_PORT=80a", "XS_API_KEYS=" API_KEY, NULL};
    xst_proc *p = xst_spawn("orch-badconfig", xst_bin("xs-orchestrator"), NULL, env);
    int64_t end = xst_now_ms() + 10000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_int_equal(xst_stop(p, 100), 2);
    assert_true(xst_log_contains(p, "XS_HTTP_PORT"));
    assert_true(xst_log_contains(p, "config.invalid"));
    xst_proc_free(p);

    /* A short API key is refused too, without echoing it. */
    char *env2[] = {W.env_db, W.env_bus_listen, W.env_port, "XS_API_KEYS=short-key", NULL};
    p = xst_spawn("orch-shortkey", xst_bin("xs-orchestrator"), NULL, env2);
    end = xst_now_ms() + 10000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_int_equal(xst_stop(p, 100), 2);
    assert_true(xst_log_contains(p, "XS_API_KEYS"));
    assert_false(xst_log_contains(p, "short-key"));
    xst_proc_free(p);
}

/* The orchestrator alone answers /health with 503: no domain has a replica. */
static void test_orchestrator_alone_is_unavailable(void **state)
{
    (void)state;
    char *env[] = {W.env_db,
                   W.env_bus_listen,
                   W.env_port,
                   "XS_API_KEYS=" API_KEY,
                   "XS_HEARTBEAT=100ms",
                   "XS_LOG_LEVEL=debug",
                   NULL};
    W.orch = xst_spawn("orchestrator", xst_bin("xs-orchestrator"), NULL, env);
    char url[256];
    snprintf(url, sizeof(url), "%s/health", W.base);
    if (!xst_wait_http(url, 503, 20000)) {
        xst_log_dump(W.orch);
        fail_msg("orchestrator did not answer /health with 503");
    }
    xst_http h = health();
    assert_int_equal(h.status, 503);
    assert_non_null(h.json);
    assert_string_equal(json_string_value(json_object_get(h.json, "status")), "unavailable");
    assert_true(json_is_true(json_object_get(json_object_get(h.json, "database"), "ok")));
    assert_int_equal(live_of(&h, "contacts"), 0);
    xst_http_free(&h);
}

/* All services up: /health is 200 and counts the replicas. */
static void test_all_up_is_healthy(void **state)
{
    (void)state;
    W.auth = start_service("xs-auth", "auth-1");
    W.contacts1 = start_service("xs-contacts", "contacts-1");
    W.contacts2 = start_service("xs-contacts", "contacts-2");
    W.invoices = start_service("xs-invoices", "invoices-1");
    W.payments = start_service("xs-payments", "payments-1");
    W.files = start_service("xs-files", "files-1");
    W.jobs = start_service("xs-jobs", "jobs-1");
    char url[256];
    snprintf(url, sizeof(url), "%s/health", W.base);
    if (!xst_wait_http(url, 200, 30000) || !wait_live("contacts", 2, 10000)) {
        xst_log_dump(W.orch);
        xst_log_dump(W.contacts1);
        fail_msg("the engine did not become healthy");
    }
    xst_http h = health();
    assert_int_equal(h.status, 200);
    assert_string_equal(json_string_value(json_object_get(h.json, "status")), "ok");
    assert_int_equal(live_of(&h, "auth"), 1);
    assert_int_equal(live_of(&h, "contacts"), 2);
    assert_int_equal(live_of(&h, "invoices"), 1);
    assert_int_equal(live_of(&h, "payments"), 1);
    assert_int_equal(live_of(&h, "files"), 1);
    assert_int_equal(live_of(&h, "jobs"), 1);
    json_t *reps = json_object_get(json_object_get(json_object_get(h.json, "domains"), "contacts"),
                                   "replicas");
    assert_int_equal(json_array_size(reps), 2);
    xst_http_free(&h);
}

/* The API refuses requests without a valid key. */
static void test_api_key_required(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/system/ping", W.base);
    xst_http r = xst_http_do("POST", url, "{\"domain\":\"contacts\"}", NULL, 5000);
    assert_int_equal(r.status, 401);
    xst_http_free(&r);
    const char *wrong[] = {"Authorization: Bearer not-the-right-key-at-all", NULL};
    r = xst_http_do("POST", url, "{\"domain\":\"contacts\"}", wrong, 5000);
    assert_int_equal(r.status, 401);
    xst_http_free(&r);
}

/* Work sent to the contacts domain reaches both replicas. */
static void test_work_reaches_both_replicas(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/system/ping", W.base);
    xst_http r = xst_http_do("POST", url, "{\"domain\":\"contacts\",\"count\":24,\"delay_ms\":200}",
                             AUTH_HDR, 30000);
    if (r.status != 200) {
        fprintf(stderr, "ping: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "answered")), 24);
    json_t *by = json_object_get(r.json, "by_replica");
    json_int_t a = json_integer_value(json_object_get(by, "contacts-1"));
    json_int_t b = json_integer_value(json_object_get(by, "contacts-2"));
    assert_true(a > 0);
    assert_true(b > 0);
    assert_int_equal(a + b, 24);
    xst_http_free(&r);

    /* Bad requests name the bad field. */
    r = xst_http_do("POST", url, "{\"domain\":\"nowhere\"}", AUTH_HDR, 5000);
    assert_int_equal(r.status, 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "field")), "domain");
    xst_http_free(&r);
    r = xst_http_do("POST", url, "{\"domain\":\"auth\",\"count\":0}", AUTH_HDR, 5000);
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_http_do("POST", url, "{not json", AUTH_HDR, 5000);
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
}

/* Stopping a replica with SIGTERM is clean, and /health follows. */
static void test_sigterm_and_health_follows(void **state)
{
    (void)state;
    assert_int_equal(xst_stop(W.contacts2, 10000), 0);
    assert_true(xst_log_contains(W.contacts2, "svc.stopping"));
    xst_proc_free(W.contacts2);
    W.contacts2 = NULL;
    assert_true(wait_live("contacts", 1, 5000));
    xst_http h = health();
    assert_int_equal(h.status, 200);
    xst_http_free(&h);

    assert_int_equal(xst_stop(W.auth, 10000), 0);
    xst_proc_free(W.auth);
    W.auth = NULL;
    assert_true(wait_live("auth", 0, 5000));
    h = health();
    assert_int_equal(h.status, 503);
    xst_http_free(&h);

    /* The single remaining contacts replica takes all the work. */
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/system/ping", W.base);
    xst_http r = xst_http_do("POST", url, "{\"domain\":\"contacts\",\"count\":5}", AUTH_HDR, 10000);
    assert_int_equal(r.status, 200);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(r.json, "by_replica"), "contacts-1")),
        5);
    xst_http_free(&r);
}

/* When PostgreSQL stops answering, /health says so with 503, and recovers after. */
static void test_database_down_is_unhealthy(void **state)
{
    (void)state;
    W.auth = start_service("xs-auth", "auth-2");
    assert_true(wait_live("auth", 1, 10000));
    const char *dbname = strrchr(W.db_url, '/') + 1;
    xs_pg *admin = NULL;
    assert_int_equal(xs_pg_connect(&admin, xst_pg_admin_url(), "xs-test", 5000, NULL), XS_OK);
    /* ALTER DATABASE takes no parameters; the name comes from the harness ([a-z0-9_]). */
    char sql[256];
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", dbname);
    assert_int_equal(xs_pg_q0(admin, NULL, sql), XS_OK);
    assert_int_equal(xs_pg_q(admin, NULL,
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = $1 AND pid <> pg_backend_pid()",
                             dbname),
                     XS_OK);
    xst_http h = health();
    assert_int_equal(h.status, 503);
    assert_false(json_is_true(json_object_get(json_object_get(h.json, "database"), "ok")));
    xst_http_free(&h);

    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", dbname);
    assert_int_equal(xs_pg_q0(admin, NULL, sql), XS_OK);
    xs_pg_close(admin);
    char url[256];
    snprintf(url, sizeof(url), "%s/health", W.base);
    assert_true(xst_wait_http(url, 200, 10000));
}

/* Every process stops cleanly on SIGTERM. */
static void test_everything_stops_cleanly(void **state)
{
    (void)state;
    xst_proc **all[] = {&W.auth,  &W.contacts1, &W.invoices, &W.payments,
                        &W.files, &W.jobs,      &W.orch};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        int code = xst_stop(*all[i], 10000);
        if (code != 0) {
            xst_log_dump(*all[i]);
        }
        assert_int_equal(code, 0);
        assert_true(xst_log_contains(*all[i], "process.stop"));
        xst_proc_free(*all[i]);
        *all[i] = NULL;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unmigrated_database_refused),
        cmocka_unit_test(test_migrate),
        cmocka_unit_test(test_bad_config_refused),
        cmocka_unit_test(test_orchestrator_alone_is_unavailable),
        cmocka_unit_test(test_all_up_is_healthy),
        cmocka_unit_test(test_api_key_required),
        cmocka_unit_test(test_work_reaches_both_replicas),
        cmocka_unit_test(test_sigterm_and_health_follows),
        cmocka_unit_test(test_database_down_is_unhealthy),
        cmocka_unit_test(test_everything_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
