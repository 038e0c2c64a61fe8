/* pg_test.c: the PostgreSQL module against a real server (the `pg` fixture's cluster). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "xs/log.h"
#include "xs/pg.h"

static char *db_url; /* this program's database */

static int group_setup(void **state)
{
    (void)state;
    db_url = xst_db_create("pg");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(db_url);
    return 0;
}

/* connect_db opens a connection to this program's database or fails the test. */
static xs_pg *connect_db(void)
{
    xs_pg *pg = NULL;
    assert_int_equal(xs_pg_connect(&pg, db_url, "xs-pg-test", 5000, NULL), XS_OK);
    assert_non_null(pg);
    return pg;
}

/* scalar runs sql (no parameters) and returns the first value (new; NULL for SQL NULL). */
static char *scalar(xs_pg *pg, const char *sql)
{
    xs_pg_res *res = NULL;
    xs_err e = xs_pg_q0(pg, &res, sql);
    if (e != XS_OK) {
        fail_msg("%s: %s (%s)", sql, xs_strerror(e), xs_pg_error(pg));
    }
    assert_int_equal(xs_pg_res_nrows(res), 1);
    const char *v = xs_pg_res_get(res, 0, 0);
    char *copy = v != NULL ? strdup(v) : NULL;
    xs_pg_res_free(res);
    return copy;
}

static void assert_scalar(xs_pg *pg, const char *sql, const char *want)
{
    char *got = scalar(pg, sql);
    bool same =
        (got == NULL && want == NULL) || (got != NULL && want != NULL && strcmp(got, want) == 0);
    if (!same) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s: got %s, wanted %s", sql, got != NULL ? got : "NULL",
                 want != NULL ? want : "NULL");
        free(got);
        fail_msg("%s", msg);
    }
    free(got);
}

static int64_t backend_pid(xs_pg *pg)
{
    xs_pg_res *res = NULL;
    assert_int_equal(xs_pg_q0(pg, &res, "SELECT pg_backend_pid()"), XS_OK);
    int64_t pid = 0;
    assert_int_equal(xs_pg_res_int(res, 0, 0, &pid), XS_OK);
    xs_pg_res_free(res);
    return pid;
}

/* terminate kills backend pid from admin and waits until the server has let it go. */
static void terminate(xs_pg *admin, int64_t pid)
{
    char p[32];
    snprintf(p, sizeof(p), "%lld", (long long)pid);
    xs_pg_res *res = NULL;
    assert_int_equal(xs_pg_q(admin, &res, "SELECT pg_terminate_backend($1::int)", p), XS_OK);
    xs_pg_res_free(res);
    int64_t end = xst_now_ms() + 10000;
    for (;;) {
        res = NULL;
        assert_int_equal(
            xs_pg_q(admin, &res, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", p),
            XS_OK);
        int64_t n = -1;
        assert_int_equal(xs_pg_res_int(res, 0, 0, &n), XS_OK);
        xs_pg_res_free(res);
        if (n == 0) {
            return;
        }
        assert_true(xst_now_ms() < end);
        usleep(10000);
    }
}

/* read_all returns the contents of the file at path (new). */
static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_connect_session(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_true(xs_pg_is_ok(pg));
    assert_false(xs_pg_in_transaction(pg));
    assert_scalar(pg, "SELECT current_setting('application_name')", "xs-pg-test");
    assert_scalar(pg, "SELECT current_setting('TimeZone')", "UTC");
    assert_scalar(pg, "SELECT to_char('2024-01-02 03:04:05+13'::timestamptz, 'HH24:MI')", "14:04");
    assert_scalar(pg, "SELECT current_setting('random_page_cost')", "1.1");
    assert_int_equal(xs_pg_ping(pg), XS_OK);
    assert_string_equal(xs_pg_error(pg), "");
    assert_string_equal(xs_pg_sqlstate(pg), "");
    xs_pg_close(pg);

    /* Options the URL carries are kept (over the planner default), and the time zone still
     * added. */
    char url[600];
    snprintf(url, sizeof(url),
             "%s?options=-c%%20statement_timeout%%3D4321%%20-c%%20random_page_cost%%3D2", db_url);
    pg = NULL;
    assert_int_equal(xs_pg_connect(&pg, url, "xs-pg-test-2", 5000, NULL), XS_OK);
    assert_scalar(pg, "SELECT current_setting('statement_timeout')", "4321ms");
    assert_scalar(pg, "SELECT current_setting('random_page_cost')", "2");
    assert_scalar(pg, "SELECT current_setting('TimeZone')", "UTC");
    assert_scalar(pg, "SELECT current_setting('application_name')", "xs-pg-test-2");
    xs_pg_close(pg);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    xs_pg *pg = NULL;
    assert_int_equal(xs_pg_connect(NULL, db_url, "x", 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_connect(&pg, NULL, "x", 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_connect(&pg, db_url, NULL, 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_connect(&pg, db_url, "x", -1, NULL), XS_EINVAL);
    /* A malformed connection string is refused at once, not retried. */
    int64_t t0 = xst_now_ms();
    assert_int_equal(xs_pg_connect(&pg, "host=127.0.0.1 port", "x", 5000, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_connect(&pg, "postgresql://a b@/?x=%zz", "x", 5000, NULL), XS_EINVAL);
    assert_true(xst_now_ms() - t0 < 1000);
    assert_null(pg);

    assert_int_equal(xs_pg_exec(NULL, NULL, "SELECT 1", 0, NULL), XS_EINVAL);
    pg = connect_db();
    assert_int_equal(xs_pg_exec(pg, NULL, NULL, 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_exec(pg, NULL, "SELECT $1", 1, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_exec(pg, NULL, "SELECT 1", -1, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_exec_script(pg, NULL), XS_EINVAL);
    char *ch = NULL;
    assert_int_equal(xs_pg_wait(pg, -1, &ch, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_wait(NULL, 10, &ch, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_mark_engine(NULL, "x"), XS_EINVAL);
    assert_int_equal(xs_pg_reconnect(NULL), XS_EINVAL);
    assert_int_equal(xs_pg_commit(NULL), XS_EINVAL);
    assert_int_equal(xs_pg_rollback(NULL), XS_EINVAL);
    assert_string_equal(xs_pg_error(NULL), "");
    assert_string_equal(xs_pg_sqlstate(NULL), "");
    assert_false(xs_pg_is_ok(NULL));
    assert_false(xs_pg_in_transaction(NULL));
    xs_pg_close(pg);
    xs_pg_close(NULL);
    xs_pg_res_free(NULL);
    xs_pg_pool_destroy(NULL);
    xs_pg_pool *pool = NULL;
    assert_int_equal(xs_pg_pool_create(&pool, db_url, "x", 0, 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_pool_create(&pool, NULL, "x", 1, 0, NULL), XS_EINVAL);
    assert_int_equal(xs_pg_pool_acquire(NULL, 0, &pg), XS_EINVAL);
    assert_null(pool);
}

static void test_connect_retry_closed_port(void **state)
{
    (void)state;
    char logpath[] = "/tmp/xs-pg-test-log-XXXXXX";
    int fd = mkstemp(logpath);
    assert_true(fd >= 0);
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "pg_test", XS_LOG_DEBUG, fd), XS_OK);

    char url[200];
    snprintf(url, sizeof(url), "postgresql://xs:pw-Secret-77@127.0.0.1:%u/postgres",
             (unsigned)xst_free_port());
    xs_pg *pg = NULL;
    int64_t t0 = xst_now_ms();
    assert_int_equal(xs_pg_connect(&pg, url, "x", 800, log), XS_EUNAVAILABLE);
    int64_t took = xst_now_ms() - t0;
    assert_null(pg);
    assert_true(took >= 750);
    assert_true(took < 3000);

    /* wait 0: one attempt only. */
    t0 = xst_now_ms();
    assert_int_equal(xs_pg_connect(&pg, url, "x", 0, log), XS_EUNAVAILABLE);
    assert_true(xst_now_ms() - t0 < 500);

    /* A malformed URL's error names the bad token, here inside the password: not logged. */
    assert_int_equal(
        xs_pg_connect(&pg, "postgresql://xs:pw-Secret-77%zz@127.0.0.1/db", "x", 1000, log),
        XS_EINVAL);

    xs_log_destroy(log);
    close(fd);
    char *text = read_all(logpath);
    assert_non_null(strstr(text, "pg.connect_bad_url"));
    assert_non_null(strstr(text, "invalid percent-encoded token"));
    unlink(logpath);
    assert_non_null(strstr(text, "pg.connect_retry"));
    assert_non_null(strstr(text, "pg.connect_failed"));
    assert_non_null(strstr(text, "127.0.0.1"));
    assert_null(strstr(text, "pw-Secret-77"));
    free(text);
}

static void test_params_verbatim(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_q0(pg, NULL, "CREATE TABLE verbatim (id int PRIMARY KEY, v text)"),
                     XS_OK);
    static const char *const values[] = {
        "'); DROP TABLE verbatim; --",
        "$1",
        "\\' OR 1=1 --",
        "\"quoted\" E'\\x41'",
        "unicode: \xc3\xbc\xc3\xb1\xc3\xaf \xe2\x9c\x93",
        "",
        "line\nbreak\ttab",
        "%s%n%x",
        NULL,
    };
    size_t n = sizeof(values) / sizeof(values[0]);
    for (size_t i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%zu", i);
        xs_pg_res *res = NULL;
        assert_int_equal(
            xs_pg_q(pg, &res, "INSERT INTO verbatim (id, v) VALUES ($1, $2)", id, values[i]),
            XS_OK);
        assert_int_equal(xs_pg_res_affected(res), 1);
        xs_pg_res_free(res);
    }
    xs_pg_res *res = NULL;
    assert_int_equal(xs_pg_q0(pg, &res, "SELECT id, v FROM verbatim ORDER BY id"), XS_OK);
    assert_int_equal(xs_pg_res_nrows(res), (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *got = xs_pg_res_getn(res, (int)i, "v");
        if (values[i] == NULL) {
            assert_null(got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, values[i]);
        }
    }
    xs_pg_res_free(res);
    /* A value is never SQL: the parameter equals itself, and the table is still there. */
    assert_int_equal(xs_pg_q(pg, &res, "SELECT count(*) FROM verbatim WHERE v = $1",
                             "'); DROP TABLE verbatim; --"),
                     XS_OK);
    assert_string_equal(xs_pg_res_get(res, 0, 0), "1");
    xs_pg_res_free(res);
    /* Parameters that are SQL NULL compare as NULL. */
    assert_int_equal(xs_pg_q(pg, &res, "SELECT $1::text IS NULL, $2::text IS NULL", NULL, ""),
                     XS_OK);
    bool b1 = false, b2 = true;
    assert_int_equal(xs_pg_res_bool(res, 0, 0, &b1), XS_OK);
    assert_int_equal(xs_pg_res_bool(res, 0, 1, &b2), XS_OK);
    assert_true(b1);
    assert_false(b2);
    xs_pg_res_free(res);
    xs_pg_close(pg);
}

static void test_result_accessors(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    xs_pg_res *res = NULL;
    assert_int_equal(
        xs_pg_q0(pg, &res,
                 "SELECT 42 AS n, 'x' AS s, NULL::int AS z, true AS b, "
                 "9223372036854775807::bigint AS big, 99999999999999999999::numeric AS huge, "
                 "-7 AS neg, ' 5' AS spaced, \"Q\" FROM (SELECT 1 AS \"Q\") q"),
        XS_OK);
    assert_int_equal(xs_pg_res_nrows(res), 1);
    assert_int_equal(xs_pg_res_ncols(res), 9);
    assert_int_equal(xs_pg_res_col(res, "s"), 1);
    assert_int_equal(xs_pg_res_col(res, "nope"), -1);
    assert_int_equal(xs_pg_res_col(res, "Q"), 8);
    assert_int_equal(xs_pg_res_col(res, "q"), -1);
    assert_int_equal(xs_pg_res_col(res, NULL), -1);
    assert_string_equal(xs_pg_res_getn(res, 0, "s"), "x");
    assert_null(xs_pg_res_getn(res, 0, "nope"));
    assert_null(xs_pg_res_get(res, 1, 0));
    assert_null(xs_pg_res_get(res, 0, 9));
    assert_null(xs_pg_res_get(res, -1, 0));
    assert_null(xs_pg_res_get(res, 0, 2));
    int64_t v = 0;
    assert_int_equal(xs_pg_res_int(res, 0, 0, &v), XS_OK);
    assert_int_equal(v, 42);
    assert_int_equal(xs_pg_res_int(res, 0, 4, &v), XS_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(xs_pg_res_int(res, 0, 6, &v), XS_OK);
    assert_int_equal(v, -7);
    v = 99;
    assert_int_equal(xs_pg_res_int(res, 0, 1, &v), XS_EPARSE);
    assert_int_equal(xs_pg_res_int(res, 0, 2, &v), XS_ENOTFOUND);
    assert_int_equal(xs_pg_res_int(res, 0, 5, &v), XS_ERANGE);
    assert_int_equal(xs_pg_res_int(res, 0, 7, &v), XS_OK); /* strtoll skips leading blanks */
    assert_int_equal(xs_pg_res_int(res, 0, 99, &v), XS_EINVAL);
    assert_int_equal(xs_pg_res_int(res, 0, 0, NULL), XS_EINVAL);
    bool b = false;
    assert_int_equal(xs_pg_res_bool(res, 0, 3, &b), XS_OK);
    assert_true(b);
    assert_int_equal(xs_pg_res_bool(res, 0, 1, &b), XS_EPARSE);
    assert_int_equal(xs_pg_res_bool(res, 0, 2, &b), XS_ENOTFOUND);
    assert_int_equal(xs_pg_res_bool(res, 5, 0, &b), XS_EINVAL);
    xs_pg_res_free(res);

    assert_int_equal(xs_pg_res_nrows(NULL), 0);
    assert_int_equal(xs_pg_res_ncols(NULL), 0);
    assert_int_equal(xs_pg_res_affected(NULL), 0);
    assert_null(xs_pg_res_get(NULL, 0, 0));

    assert_int_equal(
        xs_pg_q0(pg, NULL, "CREATE TEMP TABLE three AS SELECT generate_series(1, 3) AS i"), XS_OK);
    assert_int_equal(xs_pg_q0(pg, &res, "UPDATE three SET i = i + 1"), XS_OK);
    assert_int_equal(xs_pg_res_affected(res), 3);
    assert_int_equal(xs_pg_res_nrows(res), 0);
    xs_pg_res_free(res);
    assert_int_equal(xs_pg_q0(pg, &res, "SELECT i FROM three WHERE false"), XS_OK);
    assert_int_equal(xs_pg_res_nrows(res), 0);
    assert_int_equal(xs_pg_res_ncols(res), 1);
    xs_pg_res_free(res);
    /* The empty statement is fine. */
    assert_int_equal(xs_pg_q0(pg, NULL, ""), XS_OK);
    xs_pg_close(pg);
}

static void test_error_translation(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_q0(pg, NULL, "CREATE TABLE uniq (k int PRIMARY KEY)"), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, "INSERT INTO uniq VALUES ($1)", "1"), XS_OK);
    xs_pg_res *res = NULL;
    assert_int_equal(xs_pg_q(pg, &res, "INSERT INTO uniq VALUES ($1)", "1"), XS_EEXIST);
    assert_null(res);
    assert_string_equal(xs_pg_sqlstate(pg), "23505");
    assert_non_null(strstr(xs_pg_error(pg), "duplicate key"));
    assert_true(xs_pg_is_ok(pg));

    /* The next call clears the last error. */
    assert_int_equal(xs_pg_ping(pg), XS_OK);
    assert_string_equal(xs_pg_error(pg), "");
    assert_string_equal(xs_pg_sqlstate(pg), "");

    assert_int_equal(xs_pg_q0(pg, NULL, "SELEC 1"), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "42601");
    assert_non_null(strstr(xs_pg_error(pg), "syntax error"));
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1/0"), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "22012");
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT * FROM no_such_table"), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "42P01");
    /* A parameter count that does not match: a protocol-level error, the connection lives. */
    assert_int_equal(xs_pg_q(pg, NULL, "SELECT $1::int + $2::int", "1"), XS_EDB);
    assert_true(xs_pg_is_ok(pg));
    assert_int_equal(xs_pg_ping(pg), XS_OK);

    assert_int_equal(xs_pg_q0(pg, NULL,
                              "DO $$ BEGIN RAISE EXCEPTION 'could not serialize' USING ERRCODE "
                              "= '40001'; END $$"),
                     XS_ECONFLICT);
    assert_string_equal(xs_pg_sqlstate(pg), "40001");
    assert_int_equal(xs_pg_q0(pg, NULL,
                              "DO $$ BEGIN RAISE EXCEPTION 'deadlock' USING ERRCODE = '40P01'; "
                              "END $$"),
                     XS_ECONFLICT);
    assert_string_equal(xs_pg_sqlstate(pg), "40P01");
    assert_int_equal(xs_pg_q0(pg, NULL, "COPY uniq TO STDOUT"), XS_EUNSUPPORTED);
    assert_true(xs_pg_is_ok(pg));
    assert_int_equal(xs_pg_ping(pg), XS_OK);

    /* A long message is kept (truncated to the buffer) without overflowing it. */
    char sql[3000];
    memset(sql, 0, sizeof(sql));
    strcpy(sql, "SELECT * FROM ");
    memset(sql + strlen(sql), 'x', 2000);
    assert_int_equal(xs_pg_q0(pg, NULL, sql), XS_EDB);
    assert_true(strlen(xs_pg_error(pg)) > 0);

    /* xs_pg_error_restore puts back a saved message, also from pg's own buffer. */
    xs_pg_error_restore(pg, xs_pg_error(pg), xs_pg_sqlstate(pg));
    assert_string_equal(xs_pg_sqlstate(pg), "42P01");
    xs_pg_error_restore(pg, "saved\n", NULL);
    assert_string_equal(xs_pg_error(pg), "saved");
    assert_string_equal(xs_pg_sqlstate(pg), "");
    xs_pg_close(pg);
}

static void test_exec_script(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_exec_script(pg, "CREATE TABLE s1 (a int); INSERT INTO s1 VALUES (1);"
                                           "INSERT INTO s1 VALUES (2); SELECT 1"),
                     XS_OK);
    assert_scalar(pg, "SELECT sum(a) FROM s1", "3");
    /* Outside a transaction the script is one implicit transaction: all or nothing. */
    assert_int_equal(xs_pg_exec_script(pg, "INSERT INTO s1 VALUES (10);\nSELEC oops;"), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "42601");
    assert_non_null(strstr(xs_pg_error(pg), "at character"));
    assert_scalar(pg, "SELECT sum(a) FROM s1", "3");
    assert_int_equal(xs_pg_exec_script(pg, "INSERT INTO s1 VALUES (1)"), XS_OK);
    assert_scalar(pg, "SELECT sum(a) FROM s1", "4");
    assert_int_equal(xs_pg_exec_script(pg, ""), XS_OK);
    assert_int_equal(xs_pg_exec_script(pg, "COPY s1 TO STDOUT"), XS_EUNSUPPORTED);
    assert_int_equal(xs_pg_ping(pg), XS_OK);
    xs_pg_close(pg);
}

static void test_transactions(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_q0(pg, NULL, "CREATE TABLE tx (a int)"), XS_OK);
    assert_int_equal(xs_pg_rollback(pg), XS_OK); /* none open: fine */

    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_true(xs_pg_in_transaction(pg));
    assert_int_equal(xs_pg_q(pg, NULL, "INSERT INTO tx VALUES ($1)", "1"), XS_OK);
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    assert_false(xs_pg_in_transaction(pg));
    assert_scalar(pg, "SELECT count(*) FROM tx", "0");

    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, "INSERT INTO tx VALUES ($1)", "2"), XS_OK);
    assert_int_equal(xs_pg_commit(pg), XS_OK);
    assert_scalar(pg, "SELECT count(*) FROM tx", "1");

    /* A failed transaction: unusable until it ends; COMMIT rolls it back and says so. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, "INSERT INTO tx VALUES ($1)", "3"), XS_OK);
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1/0"), XS_EDB);
    assert_false(xs_pg_is_ok(pg));
    assert_true(xs_pg_in_transaction(pg));
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1"), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "25P02");
    assert_int_equal(xs_pg_commit(pg), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "25P02");
    assert_false(xs_pg_in_transaction(pg));
    assert_true(xs_pg_is_ok(pg));
    assert_scalar(pg, "SELECT count(*) FROM tx", "1");

    /* The same, ended by ROLLBACK, which leaves the reason readable. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1/0"), XS_EDB);
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    assert_string_equal(xs_pg_sqlstate(pg), "22012");
    assert_non_null(strstr(xs_pg_error(pg), "division by zero"));
    assert_int_equal(xs_pg_rollback(pg), XS_OK); /* none open: fine, and still readable */
    assert_string_equal(xs_pg_sqlstate(pg), "22012");
    assert_true(xs_pg_is_ok(pg));
    assert_int_equal(xs_pg_ping(pg), XS_OK);
    assert_string_equal(xs_pg_sqlstate(pg), "");
    xs_pg_close(pg);
}

static void test_mark_engine(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_mark_engine(pg, "tx-1"), XS_ESTATE);
    assert_scalar(pg, "SELECT coalesce(current_setting('xs.origin', true), '')", "");

    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "tx-'1'; --"), XS_OK);
    assert_scalar(pg, "SELECT current_setting('xs.origin', true)", "engine");
    assert_scalar(pg, "SELECT current_setting('xs.txid', true)", "tx-'1'; --");
    assert_int_equal(xs_pg_commit(pg), XS_OK);
    assert_scalar(pg, "SELECT coalesce(current_setting('xs.origin', true), '')", "");
    assert_scalar(pg, "SELECT coalesce(current_setting('xs.txid', true), '')", "");

    /* Gone after a rollback too; a NULL txid is recorded as "". */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, NULL), XS_OK);
    assert_scalar(pg, "SELECT current_setting('xs.origin', true)", "engine");
    assert_scalar(pg, "SELECT current_setting('xs.txid', true)", "");
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    assert_scalar(pg, "SELECT coalesce(current_setting('xs.origin', true), '')", "");

    /* Not inside a failed transaction either. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1/0"), XS_EDB);
    assert_int_equal(xs_pg_mark_engine(pg, "x"), XS_ESTATE);
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    xs_pg_close(pg);
}

static void test_listen_notify_wait(void **state)
{
    (void)state;
    xs_pg *a = connect_db();
    xs_pg *b = connect_db();
    assert_int_equal(xs_pg_listen(a, "xs_test"), XS_OK);
    assert_int_equal(xs_pg_listen(a, "xs_test"), XS_OK); /* twice is once */
    assert_int_equal(xs_pg_notify(b, "xs_test", "hello 'world'"), XS_OK);
    char *ch = NULL, *payload = NULL;
    assert_int_equal(xs_pg_wait(a, 5000, &ch, &payload), XS_OK);
    assert_string_equal(ch, "xs_test");
    assert_string_equal(payload, "hello 'world'");
    free(ch);
    free(payload);

    /* Nothing more: a timeout, within reason. */
    int64_t t0 = xst_now_ms();
    assert_int_equal(xs_pg_wait(a, 200, &ch, &payload), XS_ETIMEDOUT);
    int64_t took = xst_now_ms() - t0;
    assert_true(took >= 190 && took < 2000);
    assert_int_equal(xs_pg_wait(a, 0, NULL, NULL), XS_ETIMEDOUT);

    /* A notification sent in a transaction arrives on commit, and only then. */
    assert_int_equal(xs_pg_begin(b), XS_OK);
    assert_int_equal(xs_pg_notify(b, "xs_test", NULL), XS_OK);
    assert_int_equal(xs_pg_wait(a, 100, NULL, NULL), XS_ETIMEDOUT);
    assert_int_equal(xs_pg_commit(b), XS_OK);
    payload = NULL;
    assert_int_equal(xs_pg_wait(a, 5000, NULL, &payload), XS_OK);
    assert_string_equal(payload, ""); /* NULL payload travels as "" */
    free(payload);

    /* In order; and one already read with an earlier result is returned without waiting. */
    assert_int_equal(xs_pg_notify(b, "xs_test", "1"), XS_OK);
    assert_int_equal(xs_pg_notify(b, "xs_test", "2"), XS_OK);
    assert_int_equal(xs_pg_notify(a, "xs_test", "3"), XS_OK);
    const char *want[] = {"1", "2", "3"};
    for (int i = 0; i < 3; i++) {
        payload = NULL;
        assert_int_equal(xs_pg_wait(a, 5000, NULL, &payload), XS_OK);
        assert_string_equal(payload, want[i]);
        free(payload);
    }

    /* Channels not listened to are not delivered. */
    assert_int_equal(xs_pg_notify(b, "xs_other", "x"), XS_OK);
    assert_int_equal(xs_pg_wait(a, 100, NULL, NULL), XS_ETIMEDOUT);

    /* Only plain lowercase identifiers are channel names. */
    const char *bad[] = {"",    "Upper",      "1abc",        "a-b",       "a\"b",
                         "a b", "a;LISTEN x", "caf\xc3\xa9", "x\"; DROP", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(xs_pg_listen(a, bad[i]), XS_EINVAL);
        assert_int_equal(xs_pg_notify(b, bad[i], "x"), XS_EINVAL);
    }
    char longest[65];
    memset(longest, 'a', 63);
    longest[63] = '\0';
    assert_int_equal(xs_pg_listen(a, longest), XS_OK);
    longest[63] = 'a';
    longest[64] = '\0';
    assert_int_equal(xs_pg_listen(a, longest), XS_EINVAL);
    assert_int_equal(xs_pg_listen(a, "_x9"), XS_OK);
    assert_true(xs_pg_is_ok(a));
    xs_pg_close(a);
    xs_pg_close(b);
}

static void test_killed_connection(void **state)
{
    (void)state;
    xs_pg *admin = connect_db();
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_listen(pg, "xs_kill"), XS_OK);
    int64_t pid = backend_pid(pg);

    /* A listener sees the connection go. */
    terminate(admin, pid);
    assert_int_equal(xs_pg_wait(pg, 5000, NULL, NULL), XS_ECLOSED);
    assert_false(xs_pg_is_ok(pg));
    assert_int_equal(xs_pg_ping(pg), XS_ECLOSED);

    /* Reconnected, the session is set up again, subscriptions included. */
    assert_int_equal(xs_pg_reconnect(pg), XS_OK);
    assert_true(xs_pg_is_ok(pg));
    assert_true(backend_pid(pg) != pid);
    assert_scalar(pg, "SELECT current_setting('TimeZone')", "UTC");
    assert_scalar(pg, "SELECT current_setting('application_name')", "xs-pg-test");
    assert_int_equal(xs_pg_notify(admin, "xs_kill", "after"), XS_OK);
    char *payload = NULL;
    assert_int_equal(xs_pg_wait(pg, 5000, NULL, &payload), XS_OK);
    assert_string_equal(payload, "after");
    free(payload);

    /* A statement on a killed connection reports it closed; in a transaction too. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    terminate(admin, backend_pid(pg));
    assert_int_equal(xs_pg_q0(pg, NULL, "SELECT 1"), XS_ECLOSED);
    assert_false(xs_pg_is_ok(pg));
    assert_int_equal(xs_pg_rollback(pg), XS_ECLOSED);
    assert_int_equal(xs_pg_reconnect(pg), XS_OK);
    assert_false(xs_pg_in_transaction(pg));
    assert_int_equal(xs_pg_ping(pg), XS_OK);
    xs_pg_close(pg);
    xs_pg_close(admin);
}

static const char PREPARED_SQL[] = "SELECT $1::int + $2::int";
static const char PREPARED_BAD_SQL[] = "SELECT * FROM no_such_table WHERE x = $1";

/* A prepared statement is prepared once a session, executed with new values each time, its
 * errors reported as any statement's, and prepared again after a reconnect. */
static void test_prepared(void **state)
{
    (void)state;
    xs_pg *admin = connect_db();
    xs_pg *pg = connect_db();
    for (int i = 0; i < 3; i++) {
        char a[16];
        snprintf(a, sizeof(a), "%d", i);
        xs_pg_res *r = NULL;
        assert_int_equal(xs_pg_qp(pg, &r, PREPARED_SQL, a, "40"), XS_OK);
        char want[16];
        snprintf(want, sizeof(want), "%d", 40 + i);
        assert_string_equal(xs_pg_res_get(r, 0, 0), want);
        xs_pg_res_free(r);
    }
    /* Once in the server's list of this session's statements. */
    xs_pg_res *r = NULL;
    assert_int_equal(xs_pg_q0(pg, &r,
                              "SELECT count(*) FROM pg_prepared_statements WHERE statement = "
                              "'SELECT $1::int + $2::int'"),
                     XS_OK);
    assert_string_equal(xs_pg_res_get(r, 0, 0), "1");
    xs_pg_res_free(r);
    /* A statement the server refuses to prepare: the error, and no result. */
    r = NULL;
    assert_int_equal(xs_pg_qp(pg, &r, PREPARED_BAD_SQL, "1"), XS_EDB);
    assert_null(r);
    assert_string_equal(xs_pg_sqlstate(pg), "42P01");
    /* A wrong value at execution: the error; the statement stays prepared. */
    assert_int_equal(xs_pg_qp(pg, NULL, PREPARED_SQL, "x", "1"), XS_EDB);
    assert_int_equal(xs_pg_qp(pg, NULL, PREPARED_SQL, "1", "1"), XS_OK);
    /* A new session prepares it again. */
    terminate(admin, backend_pid(pg));
    assert_int_equal(xs_pg_qp(pg, NULL, PREPARED_SQL, "1", "1"), XS_ECLOSED);
    assert_int_equal(xs_pg_reconnect(pg), XS_OK);
    assert_int_equal(xs_pg_qp(pg, &r, PREPARED_SQL, "2", "3"), XS_OK);
    assert_string_equal(xs_pg_res_get(r, 0, 0), "5");
    xs_pg_res_free(r);
    xs_pg_close(pg);
    xs_pg_close(admin);
}

typedef struct worker_arg {
    xs_pg_pool *pool;
    int id;
    int committed;
    int failures;
} worker_arg;

enum { POOL_THREADS = 12, POOL_ITERS = 40 };

static void *pool_worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < POOL_ITERS; i++) {
        xs_pg *pg = NULL;
        if (xs_pg_pool_acquire(w->pool, 10000, &pg) != XS_OK) {
            w->failures++;
            continue;
        }
        char v[32];
        snprintf(v, sizeof(v), "%d", w->id * 1000 + i);
        if (!xs_pg_is_ok(pg) || xs_pg_in_transaction(pg)) {
            w->failures++;
        }
        bool ok = xs_pg_begin(pg) == XS_OK &&
                  xs_pg_q(pg, NULL, "INSERT INTO pooled (v) VALUES ($1::int)", v) == XS_OK;
        if (i % 5 == 4) {
            /* Left open on purpose: release must roll it back. */
        } else if (i % 7 == 3) {
            /* A failed transaction left behind. */
            xs_pg_q0(pg, NULL, "SELECT 1/0");
        } else if (ok && xs_pg_commit(pg) == XS_OK) {
            w->committed++;
        } else {
            w->failures++;
        }
        xs_pg_pool_release(w->pool, pg);
    }
    return NULL;
}

static void test_pool_threads(void **state)
{
    (void)state;
    xs_pg *pg = connect_db();
    assert_int_equal(xs_pg_q0(pg, NULL, "CREATE TABLE pooled (v int PRIMARY KEY)"), XS_OK);
    xs_pg_pool *pool = NULL;
    assert_int_equal(xs_pg_pool_create(&pool, db_url, "xs-pool-test", 4, 5000, NULL), XS_OK);
    pthread_t th[POOL_THREADS];
    worker_arg args[POOL_THREADS];
    for (int i = 0; i < POOL_THREADS; i++) {
        args[i] = (worker_arg){.pool = pool, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, pool_worker, &args[i]), 0);
    }
    int committed = 0;
    for (int i = 0; i < POOL_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
        committed += args[i].committed;
    }
    char want[16];
    snprintf(want, sizeof(want), "%d", committed);
    assert_scalar(pg, "SELECT count(*) FROM pooled", want);
    /* Exactly the pool's connections were made, no more. */
    assert_scalar(pg,
                  "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'xs-pool-test' "
                  "AND datname = current_database()",
                  "4");
    xs_pg_pool_destroy(pool);
    xs_pg_close(pg);
}

static void test_pool_timeout_and_release(void **state)
{
    (void)state;
    xs_pg_pool *pool = NULL;
    assert_int_equal(xs_pg_pool_create(&pool, db_url, "xs-pool-1", 1, 5000, NULL), XS_OK);
    xs_pg *a = NULL, *b = NULL;
    assert_int_equal(xs_pg_pool_acquire(pool, 0, &a), XS_OK);
    int64_t t0 = xst_now_ms();
    assert_int_equal(xs_pg_pool_acquire(pool, 150, &b), XS_ETIMEDOUT);
    int64_t took = xst_now_ms() - t0;
    assert_true(took >= 140 && took < 2000);
    assert_null(b);
    assert_int_equal(xs_pg_pool_acquire(pool, 0, &b), XS_ETIMEDOUT);

    /* Released with a failed transaction and a subscription: the next borrower gets it clean. */
    assert_int_equal(xs_pg_listen(a, "xs_pool_chan"), XS_OK);
    assert_int_equal(xs_pg_begin(a), XS_OK);
    assert_int_equal(xs_pg_q0(a, NULL, "SELECT 1/0"), XS_EDB);
    xs_pg_pool_release(pool, a);
    assert_int_equal(xs_pg_pool_acquire(pool, 1000, &b), XS_OK);
    assert_ptr_equal(a, b);
    assert_true(xs_pg_is_ok(b));
    assert_false(xs_pg_in_transaction(b));
    assert_scalar(b, "SELECT count(*) FROM pg_listening_channels()", "0");
    /* A connection from elsewhere is not taken in. */
    xs_pg *stranger = connect_db();
    xs_pg_pool_release(pool, stranger);
    xs_pg_close(stranger);
    xs_pg_pool_release(pool, b);
    xs_pg_pool_destroy(pool);
}

/* A waiter is woken by a release, long before its timeout. */
typedef struct {
    xs_pg_pool *pool;
    xs_pg *held;
} releaser_arg;

static void *release_later(void *p)
{
    releaser_arg *r = p;
    usleep(100000);
    xs_pg_pool_release(r->pool, r->held);
    return NULL;
}

static void test_pool_wakes_waiter(void **state)
{
    (void)state;
    xs_pg_pool *pool = NULL;
    assert_int_equal(xs_pg_pool_create(&pool, db_url, "xs-pool-w", 1, 5000, NULL), XS_OK);
    releaser_arg r = {.pool = pool};
    assert_int_equal(xs_pg_pool_acquire(pool, 0, &r.held), XS_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, release_later, &r), 0);
    int64_t t0 = xst_now_ms();
    xs_pg *pg = NULL;
    assert_int_equal(xs_pg_pool_acquire(pool, 10000, &pg), XS_OK);
    assert_true(xst_now_ms() - t0 < 5000);
    pthread_join(th, NULL);
    xs_pg_pool_release(pool, pg);
    xs_pg_pool_destroy(pool);
}

static void test_pool_recovers_killed(void **state)
{
    (void)state;
    xs_pg *admin = connect_db();
    xs_pg_pool *pool = NULL;
    assert_int_equal(xs_pg_pool_create(&pool, db_url, "xs-pool-k", 3, 5000, NULL), XS_OK);
    xs_pg *held[3];
    int64_t pids[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xs_pg_pool_acquire(pool, 1000, &held[i]), XS_OK);
        pids[i] = backend_pid(held[i]);
    }
    for (int i = 0; i < 3; i++) {
        xs_pg_pool_release(pool, held[i]);
    }
    /* Killed while idle in the pool: acquire notices and reconnects. */
    for (int i = 0; i < 3; i++) {
        terminate(admin, pids[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xs_pg_pool_acquire(pool, 1000, &held[i]), XS_OK);
        assert_int_equal(xs_pg_ping(held[i]), XS_OK);
        int64_t pid = backend_pid(held[i]);
        for (int j = 0; j < 3; j++) {
            assert_true(pid != pids[j]);
        }
    }
    /* Killed while lent: the borrower sees XS_ECLOSED, the next borrower a fresh one. */
    terminate(admin, backend_pid(held[0]));
    assert_int_equal(xs_pg_q0(held[0], NULL, "SELECT 1"), XS_ECLOSED);
    for (int i = 0; i < 3; i++) {
        xs_pg_pool_release(pool, held[i]);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xs_pg_pool_acquire(pool, 1000, &held[i]), XS_OK);
        assert_int_equal(xs_pg_ping(held[i]), XS_OK);
    }
    for (int i = 0; i < 3; i++) {
        xs_pg_pool_release(pool, held[i]);
    }
    xs_pg_pool_destroy(pool);
    xs_pg_close(admin);
}

static void test_pool_unavailable(void **state)
{
    (void)state;
    /* No server: creation gives up after the wait. */
    char url[200];
    snprintf(url, sizeof(url), "postgresql://xs@127.0.0.1:%u/postgres", (unsigned)xst_free_port());
    xs_pg_pool *pool = NULL;
    int64_t t0 = xst_now_ms();
    assert_int_equal(xs_pg_pool_create(&pool, url, "x", 2, 300, NULL), XS_EUNAVAILABLE);
    assert_true(xst_now_ms() - t0 < 3000);
    assert_null(pool);

    /* The database goes away under a pool: acquire says XS_EUNAVAILABLE, not a dead conn. */
    char *gone = xst_db_create("pg_gone");
    const char *name = strrchr(gone, '/') + 1;
    for (const char *c = name; *c; c++) {
        assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
    }
    assert_int_equal(xs_pg_pool_create(&pool, gone, "xs-pool-gone", 1, 5000, NULL), XS_OK);
    xs_pg *admin = connect_db();
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", name);
    assert_int_equal(xs_pg_q0(admin, NULL, sql), XS_OK);
    xs_pg *pg = NULL;
    assert_int_equal(xs_pg_pool_acquire(pool, 1000, &pg), XS_EUNAVAILABLE);
    assert_null(pg);
    /* And the slot was given back: the same answer again, not a timeout. */
    assert_int_equal(xs_pg_pool_acquire(pool, 1000, &pg), XS_EUNAVAILABLE);
    xs_pg_pool_destroy(pool);
    xs_pg_close(admin);
    free(gone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_session),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_connect_retry_closed_port),
        cmocka_unit_test(test_params_verbatim),
        cmocka_unit_test(test_result_accessors),
        cmocka_unit_test(test_error_translation),
        cmocka_unit_test(test_exec_script),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_mark_engine),
        cmocka_unit_test(test_listen_notify_wait),
        cmocka_unit_test(test_killed_connection),
        cmocka_unit_test(test_prepared),
        cmocka_unit_test(test_pool_threads),
        cmocka_unit_test(test_pool_timeout_and_release),
        cmocka_unit_test(test_pool_wakes_waiter),
        cmocka_unit_test(test_pool_recovers_killed),
        cmocka_unit_test(test_pool_unavailable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
