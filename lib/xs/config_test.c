/* config_test.c: tests of config.c against the real variable table and synthetic ones. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xs/config.h"

/* Secrets with distinctive values, to check they never show up in a message. */
#define DB_SECRET  "postgresql://xs:hunter2-db-secret@127.0.0.1/xs"
#define KEY_SECRET "k3y-s3cr3t-0123456789abcdef"

/* load loads proc from a NULL-terminated envp; returns the code, err filled. */
static xs_err load(xs_config **cfg, unsigned proc, char *const *envp, char *err)
{
    *cfg = NULL;
    memset(err, 'x', XS_CONFIG_ERR_MAX);
    xs_err e = xs_config_load_from(cfg, proc, envp, err);
    if (e == XS_OK) {
        assert_non_null(*cfg);
    } else {
        assert_null(*cfg);
        assert_non_null(memchr(err, '\0', XS_CONFIG_ERR_MAX));
        assert_null(strstr(err, "hunter2"));
        assert_null(strstr(err, "s3cr3t"));
    }
    return e;
}

/* assert_orch_error loads the orchestrator's variables (secrets given) plus one extra
 * assignment and checks the exact message. */
static void assert_orch_error(const char *assignment, const char *expect)
{
    char *envp[] = {(char *)assignment, "XS_DATABASE_URL=" DB_SECRET, "XS_API_KEYS=" KEY_SECRET,
                    NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, envp, err), XS_ECONFIG);
    assert_string_equal(err, expect);
}

/* orch_int loads the orchestrator with one extra assignment and returns xs_config_int of
 * name, failing the test when loading fails. */
static int64_t orch_int(const char *assignment, const char *name)
{
    char *envp[] = {(char *)assignment, "XS_DATABASE_URL=" DB_SECRET, "XS_API_KEYS=" KEY_SECRET,
                    NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    if (load(&cfg, XS_PROC_ORCHESTRATOR, envp, err) != XS_OK) {
        fail_msg("%s refused: %s", assignment, err);
    }
    int64_t v = xs_config_int(cfg, name);
    xs_config_destroy(cfg);
    return v;
}

static void test_defaults(void **state)
{
    (void)state;
    char *envp[] = {"XS_DATABASE_URL=" DB_SECRET, "XS_API_KEYS=" KEY_SECRET, "UNRELATED=1", NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, envp, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "info");
    assert_string_equal(xs_config_str(cfg, "XS_DATABASE_URL"), DB_SECRET);
    assert_string_equal(xs_config_str(cfg, "XS_API_KEYS"), KEY_SECRET);
    assert_string_equal(xs_config_str(cfg, "XS_BUS_LISTEN"), "tls+tcp://127.0.0.1:7400");
    assert_string_equal(xs_config_str(cfg, "XS_HTTP_ADDR"), "127.0.0.1");
    assert_string_equal(xs_config_str(cfg, "XS_HTTP_PORT"), "8080");
    assert_string_equal(xs_config_str(cfg, "XS_HEARTBEAT"), "1s");
    assert_true(xs_config_int(cfg, "XS_HTTP_PORT") == 8080);
    assert_true(xs_config_int(cfg, "XS_DB_POOL_SIZE") == 8);
    assert_true(xs_config_int(cfg, "XS_BUS_MAX_MSG") == 16777216);
    assert_true(xs_config_int(cfg, "XS_HTTP_MAX_BODY") == 4194304);
    assert_true(xs_config_int(cfg, "XS_DB_CONNECT_WAIT") == 30000);
    assert_true(xs_config_int(cfg, "XS_BUS_TIMEOUT") == 120000);
    assert_true(xs_config_int(cfg, "XS_BUS_RESEND") == 0);
    assert_true(xs_config_int(cfg, "XS_HEARTBEAT") == 1000);
    assert_true(xs_config_is_set(cfg, "XS_HTTP_PORT"));
    assert_true(xs_config_is_set(cfg, "XS_API_KEYS"));
    xs_config_destroy(cfg);
    xs_config_destroy(NULL);
}

static void test_every_process_defaults(void **state)
{
    (void)state;
    /* Every built-in default passes its own check, for every process. */
    /* (The required variables without a default: the database, the API keys, and xs-auth's
     * Xero app and sealing key.) */
    char *envp[] = {"XS_DATABASE_URL=" DB_SECRET,
                    "XS_API_KEYS=" KEY_SECRET,
                    "XS_XERO_CLIENT_ID=app-id",
                    "XS_XERO_CLIENT_SECRET=app-secret",
                    "XS_TOKEN_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                    NULL};
    for (unsigned bit = 1; bit <= XS_PROC_SIM; bit <<= 1) {
        xs_config *cfg;
        char err[XS_CONFIG_ERR_MAX];
        if (load(&cfg, bit, envp, err) != XS_OK) {
            fail_msg("process 0x%x: %s", bit, err);
        }
        xs_config_destroy(cfg);
    }
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_ALL, envp, err), XS_OK);
    xs_config_destroy(cfg);
    /* The simulator needs nothing: an empty (NULL) environment will do. */
    assert_int_equal(load(&cfg, XS_PROC_SIM, NULL, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "info");
    xs_config_destroy(cfg);
}

static void test_given_values(void **state)
{
    (void)state;
    char *envp[] = {"XS_LOG_LEVEL=debug",
                    "XS_DATABASE_URL=" DB_SECRET,
                    "XS_BUS_URL=ipc:///tmp/xs-bus",
                    "XS_HEARTBEAT=250ms",
                    "XS_WORKERS=16",
                    "XS_REPLICA_ID=contacts-1",
                    "XS_HTTP_PORT=not-read-by-contacts",
                    "XS_LOG_LEVEL=error",
                    NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_CONTACTS, envp, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "debug"); /* first one wins */
    assert_string_equal(xs_config_str(cfg, "XS_BUS_URL"), "ipc:///tmp/xs-bus");
    assert_true(xs_config_int(cfg, "XS_HEARTBEAT") == 250);
    assert_string_equal(xs_config_str(cfg, "XS_HEARTBEAT"), "250ms");
    assert_true(xs_config_int(cfg, "XS_WORKERS") == 16);
    assert_string_equal(xs_config_str(cfg, "XS_REPLICA_ID"), "contacts-1");
    assert_true(xs_config_is_set(cfg, "XS_REPLICA_ID"));
    xs_config_destroy(cfg);
}

static void test_empty_and_optional(void **state)
{
    (void)state;
    /* "NAME=" is unset: defaults apply and optional variables stay unset. */
    char *envp[] = {"XS_LOG_LEVEL=",
                    "XS_REPLICA_ID=",
                    "XS_DATABASE_URL=" DB_SECRET,
                    "XS_BUS_URLX=tcp://wrong:1",
                    "XS_BUS=ipc://wrong",
                    "XS_XERO_CLIENT_ID=app-id",
                    "XS_XERO_CLIENT_SECRET=app-secret",
                    "XS_TOKEN_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                    "XS_TOKEN_OLD_KEYS=",
                    NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_AUTH, envp, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "info");
    assert_null(xs_config_str(cfg, "XS_REPLICA_ID"));
    assert_false(xs_config_is_set(cfg, "XS_REPLICA_ID"));
    /* Names are matched whole: XS_BUS_URLX does not set XS_BUS_URL. */
    assert_string_equal(xs_config_str(cfg, "XS_BUS_URL"), "tls+tcp://127.0.0.1:7400");
    xs_config_destroy(cfg);

    char *blank[] = {"XS_REPLICA_ID= \t", "XS_DATABASE_URL=" DB_SECRET, NULL};
    assert_int_equal(load(&cfg, XS_PROC_AUTH, blank, err), XS_ECONFIG);
    assert_string_equal(err, "XS_REPLICA_ID: must not be empty");
}

static void test_required(void **state)
{
    (void)state;
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    char *none[] = {NULL};
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, none, err), XS_ECONFIG);
    assert_string_equal(err, "XS_DATABASE_URL: required but not set");
    assert_int_equal(load(&cfg, XS_PROC_MIGRATE, NULL, err), XS_ECONFIG);
    assert_string_equal(err, "XS_DATABASE_URL: required but not set");

    char *empty_db[] = {"XS_DATABASE_URL=", "XS_API_KEYS=" KEY_SECRET, NULL};
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, empty_db, err), XS_ECONFIG);
    assert_string_equal(err, "XS_DATABASE_URL: required but not set");

    char *no_keys[] = {"XS_DATABASE_URL=" DB_SECRET, NULL};
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, no_keys, err), XS_ECONFIG);
    assert_string_equal(err, "XS_API_KEYS: required but not set");
    /* A domain service does not read XS_API_KEYS. */
    assert_int_equal(load(&cfg, XS_PROC_INVOICES, no_keys, err), XS_OK);
    xs_config_destroy(cfg);

    /* The first bad variable in table order is the one reported. */
    char *two_bad[] = {"XS_HTTP_PORT=0", "XS_LOG_LEVEL=loud", NULL};
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, two_bad, err), XS_ECONFIG);
    assert_string_equal(err, "XS_LOG_LEVEL: must be one of debug, info, warn, error, got \"loud\"");

    /* err may be NULL. */
    assert_int_equal(xs_config_load_from(&cfg, XS_PROC_ORCHESTRATOR, none, NULL), XS_ECONFIG);
}

static void test_int(void **state)
{
    (void)state;
    assert_orch_error("XS_HTTP_PORT=80a",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"80a\"");
    assert_orch_error("XS_HTTP_PORT=0",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"0\"");
    assert_orch_error("XS_HTTP_PORT=65536",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"65536\"");
    assert_orch_error("XS_HTTP_PORT=-1",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"-1\"");
    assert_orch_error("XS_HTTP_PORT=+80",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"+80\"");
    assert_orch_error("XS_HTTP_PORT= 80",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \" 80\"");
    assert_orch_error("XS_HTTP_PORT=8.0",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"8.0\"");
    assert_orch_error("XS_HTTP_PORT=-",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"-\"");
    assert_orch_error("XS_HTTP_PORT=99999999999999999999",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got "
                      "\"99999999999999999999\"");
    assert_orch_error("XS_DB_POOL_SIZE=257",
                      "XS_DB_POOL_SIZE: must be an integer from 1 to 256, got \"257\"");
    assert_true(orch_int("XS_HTTP_PORT=1", "XS_HTTP_PORT") == 1);
    assert_true(orch_int("XS_HTTP_PORT=65535", "XS_HTTP_PORT") == 65535);
    assert_true(orch_int("XS_HTTP_PORT=00443", "XS_HTTP_PORT") == 443);
    assert_true(orch_int("XS_BUS_MAX_MSG=268435456", "XS_BUS_MAX_MSG") == 268435456);
}

static void test_duration(void **state)
{
    (void)state;
    assert_true(orch_int("XS_HEARTBEAT=50", "XS_HEARTBEAT") == 50);
    assert_true(orch_int("XS_HEARTBEAT=75ms", "XS_HEARTBEAT") == 75);
    assert_true(orch_int("XS_HEARTBEAT=2s", "XS_HEARTBEAT") == 2000);
    assert_true(orch_int("XS_HEARTBEAT=1m", "XS_HEARTBEAT") == 60000);
    assert_true(orch_int("XS_HEARTBEAT=60000ms", "XS_HEARTBEAT") == 60000);
    assert_true(orch_int("XS_DB_CONNECT_WAIT=1h", "XS_DB_CONNECT_WAIT") == 3600000);
    assert_true(orch_int("XS_DB_CONNECT_WAIT=0", "XS_DB_CONNECT_WAIT") == 0);
    assert_true(orch_int("XS_BUS_RESEND=0s", "XS_BUS_RESEND") == 0);
    assert_true(orch_int("XS_INCREMENTAL_LOOKBACK=2d", "XS_INCREMENTAL_LOOKBACK") == 172800000);
    static const char *bad[] = {"49",
                                "49ms",
                                "0s",
                                "61s",
                                "2m",
                                "1h",
                                "5x",
                                "1.5s",
                                "s",
                                "-50",
                                "1S",
                                "1 s",
                                "99999999999999999999h",
                                "+50",
                                "50ms ",
                                "1hh",
                                "1d",
                                "1D",
                                "1dd",
                                "ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char assignment[64], expect[XS_CONFIG_ERR_MAX];
        snprintf(assignment, sizeof(assignment), "XS_HEARTBEAT=%s", bad[i]);
        snprintf(expect, sizeof(expect),
                 "XS_HEARTBEAT: must be a duration from 50ms to 1m (milliseconds, or a number "
                 "with ms, s, m, h or d), got \"%s\"",
                 bad[i]);
        assert_orch_error(assignment, expect);
    }
    assert_orch_error("XS_DB_CONNECT_WAIT=61m",
                      "XS_DB_CONNECT_WAIT: must be a duration from 0ms to 1h (milliseconds, or a "
                      "number with ms, s, m, h or d), got \"61m\"");
    assert_orch_error("XS_BUDGET_DAY_WINDOW=31d",
                      "XS_BUDGET_DAY_WINDOW: must be a duration from 10ms to 30d (milliseconds, "
                      "or a number with ms, s, m, h or d), got \"31d\"");
    assert_orch_error("XS_BUS_TIMEOUT=99",
                      "XS_BUS_TIMEOUT: must be a duration from 100ms to 1h (milliseconds, or a "
                      "number with ms, s, m, h or d), got \"99\"");
}

static void test_enum_and_url(void **state)
{
    (void)state;
    assert_orch_error("XS_LOG_LEVEL=INFO",
                      "XS_LOG_LEVEL: must be one of debug, info, warn, error, got \"INFO\"");
    assert_orch_error("XS_LOG_LEVEL=inf",
                      "XS_LOG_LEVEL: must be one of debug, info, warn, error, got \"inf\"");
    assert_orch_error("XS_LOG_LEVEL=info|warn", "XS_LOG_LEVEL: must be one of debug, info, "
                                                "warn, error, got \"info|warn\"");
    assert_orch_error("XS_BUS_LISTEN=http://x",
                      "XS_BUS_LISTEN: must be a URL starting with tls+tcp://, "
                      "tcp://, ipc://, inproc://, got \"http://x\"");
    assert_orch_error("XS_BUS_LISTEN=tcp://",
                      "XS_BUS_LISTEN: must be a URL starting with tls+tcp://, "
                      "tcp://, ipc://, inproc://, got \"tcp://\"");
    assert_orch_error("XS_BUS_LISTEN=tcp:/x",
                      "XS_BUS_LISTEN: must be a URL starting with tls+tcp://, "
                      "tcp://, ipc://, inproc://, got \"tcp:/x\"");
    assert_orch_error("XS_BUS_LISTEN=://x",
                      "XS_BUS_LISTEN: must be a URL starting with tls+tcp://, "
                      "tcp://, ipc://, inproc://, got \"://x\"");
    assert_orch_error("XS_BUS_LISTEN=TCP://x",
                      "XS_BUS_LISTEN: must be a URL starting with tls+tcp://, "
                      "tcp://, ipc://, inproc://, got \"TCP://x\"");
    char *envp[] = {"XS_LOG_LEVEL=warn", "XS_BUS_LISTEN=inproc://bus", "XS_DATABASE_URL=" DB_SECRET,
                    "XS_API_KEYS=" KEY_SECRET, NULL};
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, envp, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "warn");
    assert_string_equal(xs_config_str(cfg, "XS_BUS_LISTEN"), "inproc://bus");
    xs_config_destroy(cfg);
}

static void test_secret_never_echoed(void **state)
{
    (void)state;
    xs_config *cfg;
    char err[XS_CONFIG_ERR_MAX];
    char *blank_key[] = {"XS_DATABASE_URL=" DB_SECRET, "XS_API_KEYS=   ", NULL};
    assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, blank_key, err), XS_ECONFIG);
    assert_string_equal(err, "XS_API_KEYS: must not be empty");
    char *blank_db[] = {"XS_DATABASE_URL=\t", NULL};
    assert_int_equal(load(&cfg, XS_PROC_MIGRATE, blank_db, err), XS_ECONFIG);
    assert_string_equal(err, "XS_DATABASE_URL: must not be empty");

    /* Checking a secret directly never quotes it either. */
    const xs_config_var *keys = xs_config_find("XS_API_KEYS");
    assert_int_equal(xs_config_check(keys, " \n ", NULL, err), XS_ECONFIG);
    assert_string_equal(err, "XS_API_KEYS: must not be empty");
    int64_t num = -1;
    assert_int_equal(xs_config_check(keys, KEY_SECRET, &num, err), XS_OK);
    assert_true(num == 0);

    /* Errors about other variables do not mention the secrets given alongside them. */
    static const char *bad[] = {"XS_LOG_LEVEL=verbose", "XS_HTTP_PORT=x", "XS_BUS_TIMEOUT=1",
                                "XS_BUS_LISTEN=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *envp[] = {(char *)bad[i], "XS_DATABASE_URL=" DB_SECRET, "XS_API_KEYS=" KEY_SECRET,
                        NULL};
        assert_int_equal(load(&cfg, XS_PROC_ORCHESTRATOR, envp, err), XS_ECONFIG);
        assert_null(strstr(err, "hunter2"));
    }
}

static void test_echo_escaped_and_cut(void **state)
{
    (void)state;
    assert_orch_error("XS_HTTP_PORT=8\n0\"\\",
                      "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"8\\x0a0\\\"\\\\\"");
    char assignment[300] = "XS_HTTP_PORT=";
    memset(assignment + strlen(assignment), '7', 200);
    assignment[13 + 200] = '\0';
    char expect[XS_CONFIG_ERR_MAX] = "XS_HTTP_PORT: must be an integer from 1 to 65535, got \"";
    size_t n = strlen(expect);
    memset(expect + n, '7', 64);
    strcpy(expect + n + 64, "...\"");
    assert_orch_error(assignment, expect);
}

static void test_check(void **state)
{
    (void)state;
    char err[XS_CONFIG_ERR_MAX];
    int64_t num = -1;
    /* Synthetic declarations, for types the real table does not use. */
    xs_config_var flag = {"XS_T_FLAG", XS_CFG_BOOL, "false",     false,    0,
                          0,           NULL,        XS_PROC_SIM, "A flag."};
    static const char *yes[] = {"true", "TRUE", "1", "yes", "Yes", "on", "ON"};
    static const char *no[] = {"false", "False", "0", "no", "NO", "off", "Off"};
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(xs_config_check(&flag, yes[i], &num, err), XS_OK);
        assert_true(num == 1);
        assert_int_equal(xs_config_check(&flag, no[i], &num, err), XS_OK);
        assert_true(num == 0);
    }
    static const char *notbool[] = {"", "2", "y", "n", "tru", "true ", "enabled", "-1"};
    for (size_t i = 0; i < sizeof(notbool) / sizeof(notbool[0]); i++) {
        num = -1;
        assert_int_equal(xs_config_check(&flag, notbool[i], &num, err), XS_ECONFIG);
        assert_true(num == -1);
        char expect[XS_CONFIG_ERR_MAX];
        snprintf(expect, sizeof(expect),
                 "XS_T_FLAG: must be true/false, 1/0, yes/no or on/off, got \"%s\"", notbool[i]);
        assert_string_equal(err, expect);
    }

    xs_config_var any_url = {"XS_T_URL", XS_CFG_URL, NULL, true, 0, 0, NULL, XS_PROC_SIM, "U."};
    assert_int_equal(xs_config_check(&any_url, "https://api.xero.com", NULL, err), XS_OK);
    assert_int_equal(xs_config_check(&any_url, "svn+ssh://h", NULL, err), XS_OK);
    assert_int_equal(xs_config_check(&any_url, "1http://h", NULL, err), XS_ECONFIG);
    assert_string_equal(err, "XS_T_URL: must be a URL starting with scheme://, got \"1http://h\"");
    assert_int_equal(xs_config_check(&any_url, "ht tp://h", NULL, err), XS_ECONFIG);
    assert_int_equal(xs_config_check(&any_url, "http://", NULL, err), XS_ECONFIG);

    xs_config_var neg = {"XS_T_NEG", XS_CFG_INT, NULL, false, -10, -2, NULL, XS_PROC_SIM, "N."};
    assert_int_equal(xs_config_check(&neg, "-10", &num, err), XS_OK);
    assert_true(num == -10);
    assert_int_equal(xs_config_check(&neg, "-1", &num, err), XS_ECONFIG);
    assert_string_equal(err, "XS_T_NEG: must be an integer from -10 to -2, got \"-1\"");
    xs_config_var wide = {"XS_T_WIDE", XS_CFG_INT, NULL,        false, INT64_MIN,
                          INT64_MAX,   NULL,       XS_PROC_SIM, "W."};
    assert_int_equal(xs_config_check(&wide, "-9223372036854775808", &num, err), XS_OK);
    assert_true(num == INT64_MIN);
    assert_int_equal(xs_config_check(&wide, "9223372036854775807", &num, err), XS_OK);
    assert_true(num == INT64_MAX);
    assert_int_equal(xs_config_check(&wide, "9223372036854775808", &num, err), XS_ECONFIG);
    assert_int_equal(xs_config_check(&wide, "-9223372036854775809", &num, err), XS_ECONFIG);

    xs_config_var dur = {"XS_T_DUR", XS_CFG_DURATION, NULL, false, 1500, 7200000,
                         NULL,       XS_PROC_SIM,     "D."};
    assert_int_equal(xs_config_check(&dur, "2h", &num, err), XS_OK);
    assert_true(num == 7200000);
    assert_int_equal(xs_config_check(&dur, "1s", &num, err), XS_ECONFIG);
    assert_string_equal(err, "XS_T_DUR: must be a duration from 1500ms to 2h (milliseconds, or a "
                             "number with ms, s, m, h or d), got \"1s\"");
    assert_int_equal(xs_config_check(&dur, "2562047788015216h", &num, err), XS_ECONFIG);

    xs_config_var str = {"XS_T_STR", XS_CFG_STRING, NULL, false, 0, 0, NULL, XS_PROC_SIM, "S."};
    assert_int_equal(xs_config_check(&str, " padded ", &num, err), XS_OK);
    assert_int_equal(xs_config_check(&str, "", &num, err), XS_ECONFIG);
    assert_string_equal(err, "XS_T_STR: must not be empty");

    assert_int_equal(xs_config_check(NULL, "x", NULL, err), XS_EINVAL);
    assert_int_equal(xs_config_check(&str, NULL, NULL, NULL), XS_EINVAL);
    assert_int_equal(xs_config_check(&str, "", NULL, NULL), XS_ECONFIG);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    xs_config *cfg = NULL;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(xs_config_load_from(NULL, XS_PROC_SIM, NULL, err), XS_EINVAL);
    assert_int_equal(xs_config_load_from(&cfg, 0, NULL, err), XS_EINVAL);
    assert_int_equal(xs_config_load_from(&cfg, XS_PROC_ALL + 1, NULL, err), XS_EINVAL);
    assert_string_equal(err, "xs_config_load: invalid arguments");
    assert_null(cfg);
}

static void test_process_environment(void **state)
{
    (void)state;
    assert_int_equal(setenv("XS_LOG_LEVEL", "warn", 1), 0);
    xs_config *cfg = NULL;
    char err[XS_CONFIG_ERR_MAX];
    assert_int_equal(xs_config_load(&cfg, XS_PROC_SIM, err), XS_OK);
    assert_string_equal(xs_config_str(cfg, "XS_LOG_LEVEL"), "warn");
    xs_config_destroy(cfg);
    assert_int_equal(setenv("XS_LOG_LEVEL", "chatty", 1), 0);
    assert_int_equal(xs_config_load(&cfg, XS_PROC_SIM, err), XS_ECONFIG);
    assert_string_equal(err, "XS_LOG_LEVEL: must be one of debug, info, warn, error, got "
                             "\"chatty\"");
    assert_int_equal(unsetenv("XS_LOG_LEVEL"), 0);
}

static void test_find(void **state)
{
    (void)state;
    const xs_config_var *v = xs_config_find("XS_HTTP_PORT");
    assert_non_null(v);
    assert_string_equal(v->name, "XS_HTTP_PORT");
    assert_int_equal(v->type, XS_CFG_INT);
    assert_true(v >= xs_config_vars && v < xs_config_vars + xs_config_nvars);
    assert_null(xs_config_find("XS_NOPE"));
    assert_null(xs_config_find("XS_HTTP_POR"));
    assert_null(xs_config_find(NULL));
    /* Names in the table are unique. */
    for (size_t i = 0; i < xs_config_nvars; i++) {
        assert_true(xs_config_find(xs_config_vars[i].name) == &xs_config_vars[i]);
    }
}

/* Which accessor a child process calls in expect_abort. */
typedef enum misuse {
    MISUSE_UNKNOWN,
    MISUSE_NOT_USED,
    MISUSE_INT_OF_ENUM,
    MISUSE_BOOL_OF_INT,
    MISUSE_IS_SET_UNKNOWN,
} misuse;

/* expect_abort runs one misuse in a child process and checks that it aborts with a message
 * containing expect on stderr. */
static void expect_abort(misuse m, const char *expect)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        char *envp[] = {"XS_DATABASE_URL=" DB_SECRET, NULL};
        xs_config *cfg = NULL;
        if (xs_config_load_from(&cfg, XS_PROC_CONTACTS, envp, NULL) != XS_OK) {
            _exit(3);
        }
        switch (m) {
        case MISUSE_UNKNOWN:
            (void)xs_config_str(cfg, "XS_NO_SUCH_THING");
            break;
        case MISUSE_NOT_USED:
            (void)xs_config_int(cfg, "XS_HTTP_PORT");
            break;
        case MISUSE_INT_OF_ENUM:
            (void)xs_config_int(cfg, "XS_LOG_LEVEL");
            break;
        case MISUSE_BOOL_OF_INT:
            (void)xs_config_bool(cfg, "XS_WORKERS");
            break;
        case MISUSE_IS_SET_UNKNOWN:
            (void)xs_config_is_set(cfg, NULL);
            break;
        }
        _exit(0); /* not reached when the accessor aborts */
    }
    close(fds[1]);
    char out[512];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(out) - 1 && (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    if (strstr(out, expect) == NULL) {
        fail_msg("stderr \"%s\" lacks \"%s\"", out, expect);
    }
}

static void test_accessor_misuse_aborts(void **state)
{
    (void)state;
    expect_abort(MISUSE_UNKNOWN, "xs_config_str: XS_NO_SUCH_THING is not a configuration variable");
    expect_abort(MISUSE_NOT_USED, "xs_config_int: XS_HTTP_PORT is not read by this process");
    expect_abort(MISUSE_INT_OF_ENUM,
                 "xs_config_int: XS_LOG_LEVEL is not an INT or DURATION variable");
    expect_abort(MISUSE_BOOL_OF_INT, "xs_config_bool: XS_WORKERS is not a BOOL variable");
    expect_abort(MISUSE_IS_SET_UNKNOWN, "xs_config_is_set: (null) is not a configuration variable");
}

static void test_markdown(void **state)
{
    (void)state;
    char *md = NULL;
    assert_int_equal(xs_config_markdown(&md), XS_OK);
    assert_non_null(md);
    const char *head = "| Variable | Default | Used by | Meaning |\n|---|---|---|---|\n";
    assert_int_equal(strncmp(md, head, strlen(head)), 0);
    size_t lines = 0;
    for (const char *p = md; *p != '\0'; p++) {
        lines += *p == '\n';
    }
    assert_int_equal(lines, xs_config_nvars + 2);
    assert_int_equal(md[strlen(md) - 1], '\n');

    /* One row per variable, in table order. */
    const char *p = md + strlen(head);
    for (size_t i = 0; i < xs_config_nvars; i++) {
        char start[64];
        snprintf(start, sizeof(start), "| `%s` | ", xs_config_vars[i].name);
        assert_int_equal(strncmp(p, start, strlen(start)), 0);
        p = strchr(p, '\n') + 1;
    }

    assert_non_null(strstr(md, "| `XS_LOG_LEVEL` | `info` | all processes | Lowest level of log "
                               "line written to standard error (one JSON object per line). |\n"));
    assert_non_null(strstr(md, "| `XS_DATABASE_URL` | (required) | engine services, migrate | "));
    assert_non_null(strstr(md, "| `XS_DB_POOL_SIZE` | `8` | orchestrator | Connections the "
                               "orchestrator keeps open to PostgreSQL. |\n"));
    assert_non_null(strstr(md, "| `XS_BUS_URL` | `tls+tcp://127.0.0.1:7400` | domain services | "));
    assert_non_null(strstr(md, "| `XS_BUS_MAX_MSG` | `16777216` | engine services | "));
    assert_non_null(strstr(md, "| `XS_REPLICA_ID` | (unset) | domain services | "));
    assert_non_null(strstr(md, "| `XS_API_KEYS` | (required) | orchestrator | "));

    /* Deterministic. */
    char *again = NULL;
    assert_int_equal(xs_config_markdown(&again), XS_OK);
    assert_string_equal(md, again);
    free(again);
    free(md);
    assert_int_equal(xs_config_markdown(NULL), XS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_process_defaults),
        cmocka_unit_test(test_given_values),
        cmocka_unit_test(test_empty_and_optional),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_enum_and_url),
        cmocka_unit_test(test_secret_never_echoed),
        cmocka_unit_test(test_echo_escaped_and_cut),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_process_environment),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_accessor_misuse_aborts),
        cmocka_unit_test(test_markdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
