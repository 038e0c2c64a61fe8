/* migrate_test.c: schema migrations, and the schema they make (triggers, constraints),
 * against a real server (the `pg` fixture's cluster). */
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
#include "xs/crypto.h"
#include "xs/log.h"
#include "xs/migrate.h"
#include "xs/pg.h"

static char *schema_url; /* one migrated database shared by the schema tests */

static int group_setup(void **state)
{
    (void)state;
    schema_url = xst_db_migrated("schema");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(schema_url);
    return 0;
}

static xs_pg *connect_to(const char *url)
{
    xs_pg *pg = NULL;
    assert_int_equal(xs_pg_connect(&pg, url, "xs-migrate-test", 5000, NULL), XS_OK);
    return pg;
}

/* value runs sql with up to two parameters and returns the first value (new; NULL for SQL
 * NULL or no row). */
static char *value(xs_pg *pg, const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = {p1, p2};
    int n = p2 != NULL ? 2 : (p1 != NULL ? 1 : 0);
    xs_pg_res *res = NULL;
    xs_err e = xs_pg_exec(pg, &res, sql, n, params);
    if (e != XS_OK) {
        fail_msg("%s: %s (%s)", sql, xs_strerror(e), xs_pg_error(pg));
    }
    const char *v = xs_pg_res_get(res, 0, 0);
    char *copy = v != NULL ? strdup(v) : NULL;
    xs_pg_res_free(res);
    return copy;
}

static void assert_value(xs_pg *pg, const char *sql, const char *p1, const char *p2,
                         const char *want)
{
    char *got = value(pg, sql, p1, p2);
    bool same =
        (got == NULL && want == NULL) || (got != NULL && want != NULL && strcmp(got, want) == 0);
    if (!same) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s ($1=%s, $2=%s): got %s, wanted %s", sql,
                 p1 != NULL ? p1 : "-", p2 != NULL ? p2 : "-", got != NULL ? got : "NULL",
                 want != NULL ? want : "NULL");
        free(got);
        fail_msg("%s", msg);
    }
    free(got);
}

static void exec_ok(xs_pg *pg, const char *sql, const char *p1, const char *p2)
{
    const char *params[2] = {p1, p2};
    int n = p2 != NULL ? 2 : (p1 != NULL ? 1 : 0);
    xs_err e = xs_pg_exec(pg, NULL, sql, n, params);
    if (e != XS_OK) {
        fail_msg("%s: %s (%s)", sql, xs_strerror(e), xs_pg_error(pg));
    }
}

/* Advisory locks held in this test's database (pg_locks spans the whole cluster, which
 * other test programs share). */
#define ADVISORY_LOCKS_HERE                                                                        \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid "        \
    "FROM pg_database WHERE datname = current_database())"

/* ---- the migrations ---- */

static void test_build_table(void **state)
{
    (void)state;
    assert_true(xs_nmigrations >= 4);
    for (size_t i = 0; i < xs_nmigrations; i++) {
        const xs_migration *m = &xs_migrations[i];
        assert_int_equal(m->version, (int)i + 1); /* 0001, 0002, ... without gaps */
        assert_true(strlen(m->name) > 0);
        assert_int_equal(strlen(m->sql), m->len);
    }
    assert_int_equal(xs_migrate_latest(), xs_migrations[xs_nmigrations - 1].version);
    assert_string_equal(xs_migrations[0].name, "schemas");
}

static void test_fresh_apply_then_noop(void **state)
{
    (void)state;
    char *url = xst_db_create("mig_fresh");
    xs_pg *pg = connect_to(url);
    int v = -1;
    assert_int_equal(xs_migrate_version(pg, &v), XS_OK);
    assert_int_equal(v, 0);
    char err[160];
    assert_int_equal(xs_migrate_check(pg, err), XS_ESCHEMA);
    char want[160];
    snprintf(want, sizeof(want), "database is at version 0, this build needs %d: run xs-migrate",
             xs_migrate_latest());
    assert_string_equal(err, want);
    /* Checking does not create anything. */
    assert_value(pg, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('app', 'sync')", NULL,
                 NULL, "0");

    char logpath[] = "/tmp/xs-migrate-test-XXXXXX";
    int fd = mkstemp(logpath);
    assert_true(fd >= 0);
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "migrate_test", XS_LOG_DEBUG, fd), XS_OK);
    int applied = -1;
    assert_int_equal(xs_migrate_apply(pg, log, &applied), XS_OK);
    assert_int_equal(applied, (int)xs_nmigrations);
    assert_int_equal(xs_migrate_version(pg, &v), XS_OK);
    assert_int_equal(v, xs_migrate_latest());
    assert_int_equal(xs_migrate_check(pg, err), XS_OK);
    assert_string_equal(err, "");
    assert_int_equal(xs_migrate_check(pg, NULL), XS_OK);

    /* One ledger row per migration, with the file's SHA-256. */
    char count[16];
    snprintf(count, sizeof(count), "%zu", xs_nmigrations);
    assert_value(pg, "SELECT count(*) FROM sync.schema_migrations", NULL, NULL, count);
    for (size_t i = 0; i < xs_nmigrations; i++) {
        char ver[16], sum[2 * XS_SHA256_LEN + 1];
        snprintf(ver, sizeof(ver), "%d", xs_migrations[i].version);
        xs_sha256_hex(xs_migrations[i].sql, xs_migrations[i].len, sum);
        assert_value(pg, "SELECT checksum FROM sync.schema_migrations WHERE version = $1::int", ver,
                     NULL, sum);
        assert_value(pg, "SELECT name FROM sync.schema_migrations WHERE version = $1::int", ver,
                     NULL, xs_migrations[i].name);
    }
    char *stamp = value(pg, "SELECT max(applied_at)::text FROM sync.schema_migrations", NULL, NULL);

    /* Again: nothing to do, nothing written. */
    applied = -1;
    assert_int_equal(xs_migrate_apply(pg, log, &applied), XS_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(xs_migrate_apply(pg, NULL, NULL), XS_OK);
    assert_value(pg, "SELECT count(*) FROM sync.schema_migrations", NULL, NULL, count);
    assert_value(pg, "SELECT max(applied_at)::text FROM sync.schema_migrations", NULL, NULL, stamp);
    free(stamp);
    /* The lock was let go. */
    assert_value(pg, ADVISORY_LOCKS_HERE, NULL, NULL, "0");
    assert_false(xs_pg_in_transaction(pg));

    xs_log_destroy(log);
    close(fd);
    FILE *f = fopen(logpath, "r");
    assert_non_null(f);
    char text[16384];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(logpath);
    assert_non_null(strstr(text, "\"migrate.applied\""));
    assert_non_null(strstr(text, "\"migrate.done\""));
    assert_non_null(strstr(text, "\"change_capture\""));
    xs_pg_close(pg);
    free(url);
}

typedef struct {
    const char *url;
    xs_err rc;
    int applied;
} racer;

static void *race_apply(void *p)
{
    racer *r = p;
    xs_pg *pg = NULL;
    r->rc = xs_pg_connect(&pg, r->url, "xs-migrate-race", 5000, NULL);
    if (r->rc == XS_OK) {
        r->rc = xs_migrate_apply(pg, NULL, &r->applied);
    }
    xs_pg_close(pg);
    return NULL;
}

static void test_concurrent_apply(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        char *url = xst_db_create("mig_race");
        racer r[3] = {
            {.url = url, .applied = -1}, {.url = url, .applied = -1}, {.url = url, .applied = -1}};
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            assert_int_equal(pthread_create(&th[i], NULL, race_apply, &r[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(r[i].rc, XS_OK);
            /* The lock covers the whole apply: one did it all, the others found it done. */
            assert_true(r[i].applied == 0 || r[i].applied == (int)xs_nmigrations);
            total += r[i].applied;
        }
        assert_int_equal(total, (int)xs_nmigrations);
        xs_pg *pg = connect_to(url);
        char count[16];
        snprintf(count, sizeof(count), "%zu", xs_nmigrations);
        assert_value(pg, "SELECT count(*) FROM sync.schema_migrations", NULL, NULL, count);
        assert_int_equal(xs_migrate_check(pg, NULL), XS_OK);
        xs_pg_close(pg);
        free(url);
    }
}

static void test_newer_database_refused(void **state)
{
    (void)state;
    char *url = xst_db_migrated("mig_newer");
    xs_pg *pg = connect_to(url);
    char future[16];
    snprintf(future, sizeof(future), "%d", xs_migrate_latest() + 1);
    exec_ok(pg,
            "INSERT INTO sync.schema_migrations (version, name, checksum) "
            "VALUES ($1::int, 'from_the_future', repeat('a', 64))",
            future, NULL);
    int v = 0;
    assert_int_equal(xs_migrate_version(pg, &v), XS_OK);
    assert_int_equal(v, xs_migrate_latest() + 1);
    int applied = -1;
    assert_int_equal(xs_migrate_apply(pg, NULL, &applied), XS_ESCHEMA);
    assert_int_equal(applied, -1);
    assert_non_null(strstr(xs_pg_error(pg), "newer than this build"));
    char err[160];
    assert_int_equal(xs_migrate_check(pg, err), XS_ESCHEMA);
    char want[160];
    snprintf(want, sizeof(want),
             "database is at version %d, newer than this build's %d: run a newer build",
             xs_migrate_latest() + 1, xs_migrate_latest());
    assert_string_equal(err, want);
    /* Refusing let the lock go. */
    assert_value(pg, ADVISORY_LOCKS_HERE, NULL, NULL, "0");
    xs_pg_close(pg);
    free(url);
}

static void test_checksum_mismatch_refused(void **state)
{
    (void)state;
    char *url = xst_db_migrated("mig_sum");
    xs_pg *pg = connect_to(url);
    exec_ok(pg, "UPDATE sync.schema_migrations SET checksum = repeat('0', 64) WHERE version = 2",
            NULL, NULL);
    assert_int_equal(xs_migrate_apply(pg, NULL, NULL), XS_ESCHEMA);
    char err[160];
    assert_int_equal(xs_migrate_check(pg, err), XS_ESCHEMA);
    char want[160];
    snprintf(want, sizeof(want),
             "migration 2 (%s) differs from the one applied to the database: checksum mismatch",
             xs_migrations[1].name);
    assert_string_equal(err, want);
    xs_pg_close(pg);
    free(url);
}

static void test_missing_version_refused(void **state)
{
    (void)state;
    char *url = xst_db_migrated("mig_hole");
    xs_pg *pg = connect_to(url);
    exec_ok(pg, "DELETE FROM sync.schema_migrations WHERE version = 1", NULL, NULL);
    /* Re-running 0001 on top of later ones would be out of order: refused, not attempted. */
    assert_int_equal(xs_migrate_apply(pg, NULL, NULL), XS_ESCHEMA);
    char err[160];
    assert_int_equal(xs_migrate_check(pg, err), XS_ESCHEMA);
    char want[160];
    snprintf(want, sizeof(want), "migration 1 is missing from the database, which is at version %d",
             xs_migrate_latest());
    assert_string_equal(err, want);
    xs_pg_close(pg);
    free(url);
}

static void test_failing_migration_leaves_nothing(void **state)
{
    (void)state;
    char *url = xst_db_create("mig_fail");
    xs_pg *pg = connect_to(url);
    /* An object in the way of 0003_sync, which first creates sync.connections, then
     * sync.mappings: the failure comes half-way through the file. */
    exec_ok(pg, "CREATE SCHEMA sync", NULL, NULL);
    exec_ok(pg, "CREATE TABLE sync.mappings (x int)", NULL, NULL);
    int applied = -1;
    assert_int_equal(xs_migrate_apply(pg, NULL, &applied), XS_EDB);
    assert_int_equal(applied, -1);
    /* The cause stays readable after the clean-up. */
    assert_string_equal(xs_pg_sqlstate(pg), "42P07");
    assert_non_null(strstr(xs_pg_error(pg), "already exists"));
    assert_true(xs_pg_is_ok(pg));
    assert_false(xs_pg_in_transaction(pg));
    assert_value(pg, ADVISORY_LOCKS_HERE, NULL, NULL, "0");

    /* 0001 and 0002 are in, 0003 not at all: not its first table, not its ledger row. */
    int v = 0;
    assert_int_equal(xs_migrate_version(pg, &v), XS_OK);
    assert_int_equal(v, 2);
    assert_value(pg, "SELECT to_regclass('app.contacts') IS NOT NULL", NULL, NULL, "t");
    assert_value(pg, "SELECT to_regclass('sync.connections') IS NULL", NULL, NULL, "t");
    assert_value(pg, "SELECT to_regclass('sync.changes_seq') IS NULL", NULL, NULL, "t");
    assert_value(pg, "SELECT count(*) FROM sync.schema_migrations WHERE version >= 3", NULL, NULL,
                 "0");
    assert_value(pg,
                 "SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = "
                 "'sync.mappings'::regclass AND attnum > 0",
                 NULL, NULL, "x");
    char err[160];
    assert_int_equal(xs_migrate_check(pg, err), XS_ESCHEMA);
    assert_non_null(strstr(err, "database is at version 2"));

    /* Out of the way, another migrator (the lock is free) finishes the job. */
    exec_ok(pg, "DROP TABLE sync.mappings", NULL, NULL);
    xs_pg *other = connect_to(url);
    applied = -1;
    assert_int_equal(xs_migrate_apply(other, NULL, &applied), XS_OK);
    assert_int_equal(applied, (int)xs_nmigrations - 2);
    assert_int_equal(xs_migrate_check(pg, NULL), XS_OK);
    xs_pg_close(other);
    xs_pg_close(pg);
    free(url);
}

static void test_apply_refuses_open_transaction(void **state)
{
    (void)state;
    char *url = xst_db_create("mig_tx");
    xs_pg *pg = connect_to(url);
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_migrate_apply(pg, NULL, NULL), XS_ESTATE);
    assert_true(xs_pg_in_transaction(pg)); /* the caller's transaction is untouched */
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    assert_int_equal(xs_migrate_apply(NULL, NULL, NULL), XS_EINVAL);
    int v;
    assert_int_equal(xs_migrate_version(NULL, &v), XS_EINVAL);
    assert_int_equal(xs_migrate_version(pg, NULL), XS_EINVAL);
    char err[160];
    assert_int_equal(xs_migrate_check(NULL, err), XS_EINVAL);
    assert_non_null(strstr(err, "cannot read"));
    xs_pg_close(pg);
    free(url);
}

/* ---- the schema: change capture ---- */

/* new_org inserts an organisation and returns its id (new). */
static char *new_org(xs_pg *pg)
{
    return value(pg, "INSERT INTO app.organisations (name) VALUES ($1) RETURNING id", "Org", NULL);
}

static char *new_contact(xs_pg *pg, const char *org, const char *name)
{
    return value(pg,
                 "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2) RETURNING id",
                 org, name);
}

/* pending returns "op:seq" of the pending change of (entity, local_id), or NULL (new). */
static char *pending(xs_pg *pg, const char *entity, const char *local_id)
{
    return value(pg,
                 "SELECT op || ':' || seq FROM sync.changes WHERE entity = $1 AND local_id = $2 "
                 "AND processed_at IS NULL",
                 entity, local_id);
}

static void assert_pending_op(xs_pg *pg, const char *entity, const char *local_id, const char *op)
{
    assert_value(pg,
                 "SELECT count(*) FROM sync.changes WHERE entity = $1 AND local_id = $2 AND "
                 "processed_at IS NULL",
                 entity, local_id, op != NULL ? "1" : "0");
    if (op != NULL) {
        assert_value(pg,
                     "SELECT op FROM sync.changes WHERE entity = $1 AND local_id = $2 AND "
                     "processed_at IS NULL",
                     entity, local_id, op);
    }
}

static void process_all(xs_pg *pg, const char *org)
{
    exec_ok(pg,
            "UPDATE sync.changes SET processed_at = now() WHERE organisation_id = $1 AND "
            "processed_at IS NULL",
            org, NULL);
}

/* drain takes every notification already delivered to pg. */
static void drain(xs_pg *pg)
{
    while (xs_pg_wait(pg, 50, NULL, NULL) == XS_OK) {
    }
}

static void expect_notify(xs_pg *listener, const char *org)
{
    char *ch = NULL, *payload = NULL;
    assert_int_equal(xs_pg_wait(listener, 5000, &ch, &payload), XS_OK);
    assert_string_equal(ch, "xs_changes");
    assert_string_equal(payload, org);
    free(ch);
    free(payload);
}

static void test_capture_contact(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    xs_pg *listener = connect_to(schema_url);
    assert_int_equal(xs_pg_listen(listener, "xs_changes"), XS_OK);
    char *org = new_org(pg);
    char *id = new_contact(pg, org, "Alice");

    assert_pending_op(pg, "contact", id, "insert");
    expect_notify(listener, org);
    char *first = pending(pg, "contact", id);

    /* A second change before the engine saw the first: still one row, still "insert", a new
     * sequence number. */
    exec_ok(pg, "UPDATE app.contacts SET email = 'a@example.com' WHERE id = $1", id, NULL);
    assert_pending_op(pg, "contact", id, "insert");
    char *second = pending(pg, "contact", id);
    assert_string_not_equal(first, second);
    assert_true(atoll(strchr(second, ':') + 1) > atoll(strchr(first, ':') + 1));
    expect_notify(listener, org);
    free(first);
    free(second);

    process_all(pg, org);
    drain(listener);
    char *stamp = value(pg, "SELECT updated_at::text FROM app.contacts WHERE id = $1", id, NULL);

    /* Updates that change nothing: no change, no notification, updated_at kept. */
    exec_ok(pg, "UPDATE app.contacts SET name = name, email = 'a@example.com' WHERE id = $1", id,
            NULL);
    exec_ok(pg, "UPDATE app.contacts SET updated_at = now() - interval '1 day' WHERE id = $1", id,
            NULL);
    assert_pending_op(pg, "contact", id, NULL);
    assert_value(pg, "SELECT updated_at::text FROM app.contacts WHERE id = $1", id, NULL, stamp);
    assert_int_equal(xs_pg_wait(listener, 200, NULL, NULL), XS_ETIMEDOUT);

    /* A real update: an "update" change, and updated_at moves forward. */
    exec_ok(pg,
            "UPDATE app.contacts SET phones = '[{\"type\": \"MOBILE\", \"number\": \"1\"}]' "
            "WHERE id = $1",
            id, NULL);
    assert_pending_op(pg, "contact", id, "update");
    expect_notify(listener, org);
    assert_value(pg, "SELECT updated_at > $2::timestamptz FROM app.contacts WHERE id = $1", id,
                 stamp, "t");
    free(stamp);

    /* Many updates in a row: one pending row. */
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "Alice %d", i);
        exec_ok(pg, "UPDATE app.contacts SET name = $2 WHERE id = $1", id, name);
    }
    assert_pending_op(pg, "contact", id, "update");

    /* A delete wins over the pending update. */
    exec_ok(pg, "DELETE FROM app.contacts WHERE id = $1", id, NULL);
    assert_pending_op(pg, "contact", id, "delete");
    assert_value(pg, "SELECT count(*) FROM sync.changes WHERE local_id = $1", id, NULL, "2");
    assert_value(pg, "SELECT DISTINCT organisation_id::text FROM sync.changes WHERE local_id = $1",
                 id, NULL, org);

    /* A worker that finishes a row whose seq moved on leaves it pending. */
    char *again = new_contact(pg, org, "Bob");
    char *row = pending(pg, "contact", again);
    char *seq = strdup(strchr(row, ':') + 1);
    exec_ok(pg, "UPDATE app.contacts SET name = 'Bobby' WHERE id = $1", again, NULL);
    exec_ok(pg,
            "UPDATE sync.changes SET processed_at = now() WHERE local_id = $1 AND seq = $2::bigint",
            again, seq);
    assert_pending_op(pg, "contact", again, "insert");
    free(row);
    free(seq);
    free(again);

    free(id);
    free(org);
    xs_pg_close(listener);
    xs_pg_close(pg);
}

static void test_capture_skips_engine_writes(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    xs_pg *listener = connect_to(schema_url);
    assert_int_equal(xs_pg_listen(listener, "xs_changes"), XS_OK);
    char *org = new_org(pg);
    drain(listener);

    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "pull-1"), XS_OK);
    char *id = new_contact(pg, org, "Pulled from Xero");
    exec_ok(pg, "UPDATE app.contacts SET email = 'p@example.com' WHERE id = $1", id, NULL);
    char *inv = value(pg,
                      "INSERT INTO app.invoices (organisation_id, contact_id, type) VALUES ($1, "
                      "$2, 'ACCREC') RETURNING id",
                      org, id);
    exec_ok(pg, "INSERT INTO app.invoice_lines (invoice_id, quantity) VALUES ($1, 1)", inv, NULL);
    exec_ok(pg, "INSERT INTO app.payments (invoice_id, date, amount) VALUES ($1, '2024-01-01', 5)",
            inv, NULL);
    assert_int_equal(xs_pg_commit(pg), XS_OK);

    assert_value(pg, "SELECT count(*) FROM sync.changes WHERE organisation_id = $1", org, NULL,
                 "0");
    assert_int_equal(xs_pg_wait(listener, 300, NULL, NULL), XS_ETIMEDOUT);

    /* The mark ended with its transaction: the next local edit is captured. */
    exec_ok(pg, "UPDATE app.contacts SET name = 'Edited locally' WHERE id = $1", id, NULL);
    assert_pending_op(pg, "contact", id, "update");
    expect_notify(listener, org);

    /* A marked transaction that rolls back leaves no mark either. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "pull-2"), XS_OK);
    assert_int_equal(xs_pg_rollback(pg), XS_OK);
    exec_ok(pg, "UPDATE app.invoices SET reference = 'local' WHERE id = $1", inv, NULL);
    assert_pending_op(pg, "invoice", inv, "update");

    free(inv);
    free(id);
    free(org);
    xs_pg_close(listener);
    xs_pg_close(pg);
}

/* edited_at (0009): when the host application last changed a row; the engine's writes, and
 * updates that change nothing, leave it; a change of an invoice's lines moves it. */
static void test_edited_at(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *id = new_contact(pg, org, "Edited");
    assert_value(pg, "SELECT edited_at = updated_at FROM app.contacts WHERE id = $1", id, NULL,
                 "t");
    char *was = value(pg, "SELECT edited_at::text FROM app.contacts WHERE id = $1", id, NULL);
    exec_ok(pg, "UPDATE app.contacts SET name = name WHERE id = $1", id, NULL);
    assert_value(pg, "SELECT edited_at::text FROM app.contacts WHERE id = $1", id, NULL, was);
    /* The engine's write moves updated_at, not edited_at. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "pull-e"), XS_OK);
    exec_ok(pg, "UPDATE app.contacts SET email = 'engine@example.com' WHERE id = $1", id, NULL);
    char *inv = value(pg,
                      "INSERT INTO app.invoices (organisation_id, contact_id, type) VALUES ($1, "
                      "$2, 'ACCREC') RETURNING id",
                      org, id);
    assert_int_equal(xs_pg_commit(pg), XS_OK);
    assert_value(pg, "SELECT edited_at::text FROM app.contacts WHERE id = $1", id, NULL, was);
    assert_value(pg, "SELECT (updated_at > edited_at)::text FROM app.contacts WHERE id = $1", id,
                 NULL, "true");
    assert_value(pg, "SELECT edited_at IS NULL FROM app.invoices WHERE id = $1", inv, NULL, "t");
    /* The host's edit moves it with updated_at; so does a new line of the invoice. */
    exec_ok(pg, "UPDATE app.contacts SET email = 'host@example.com' WHERE id = $1", id, NULL);
    assert_value(pg, "SELECT edited_at = updated_at FROM app.contacts WHERE id = $1", id, NULL,
                 "t");
    exec_ok(pg, "INSERT INTO app.invoice_lines (invoice_id, quantity) VALUES ($1, 1)", inv, NULL);
    assert_value(pg, "SELECT edited_at = updated_at FROM app.invoices WHERE id = $1", inv, NULL,
                 "t");
    free(inv);
    free(was);
    free(id);
    free(org);
    xs_pg_close(pg);
}

/* edited_fields (0012): per field, when the host application last wrote it (the row's
 * updated_at in ms), under the engine's names; a write putting back an earlier value is a
 * write; the engine's writes, and updates that change nothing, leave it. */
static void test_edited_fields(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *id = new_contact(pg, org, "Fields");
    assert_value(pg, "SELECT edited_fields IS NULL FROM app.contacts WHERE id = $1", id, NULL, "t");
    exec_ok(pg, "UPDATE app.contacts SET status = 'ARCHIVED' WHERE id = $1", id, NULL);
    assert_value(pg,
                 "SELECT (edited_fields = jsonb_build_object('status', (extract(epoch FROM "
                 "updated_at) * 1000)::bigint))::text FROM app.contacts WHERE id = $1",
                 id, NULL, "true");
    char *first =
        value(pg, "SELECT edited_fields->>'status' FROM app.contacts WHERE id = $1", id, NULL);
    /* Nothing changed: nothing recorded. */
    exec_ok(pg, "UPDATE app.contacts SET status = status WHERE id = $1", id, NULL);
    assert_value(pg, "SELECT edited_fields->>'status' FROM app.contacts WHERE id = $1", id, NULL,
                 first);
    /* The engine's write records nothing. */
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "pull-f"), XS_OK);
    exec_ok(pg, "UPDATE app.contacts SET status = 'ACTIVE', email = 'e@example.com' WHERE id = $1",
            id, NULL);
    assert_int_equal(xs_pg_commit(pg), XS_OK);
    assert_value(pg,
                 "SELECT (edited_fields = jsonb_build_object('status', $2::bigint))::text FROM "
                 "app.contacts WHERE id = $1",
                 id, first, "true");
    /* The host puts ARCHIVED back: a write of status, at this write's time. */
    exec_ok(pg, "SELECT pg_sleep(0.01)", NULL, NULL);
    exec_ok(pg, "UPDATE app.contacts SET status = 'ARCHIVED' WHERE id = $1", id, NULL);
    assert_value(pg,
                 "SELECT ((edited_fields->>'status')::bigint > $2::bigint AND "
                 "(edited_fields->>'status')::bigint = (extract(epoch FROM updated_at) * "
                 "1000)::bigint AND NOT edited_fields ? 'email')::text FROM app.contacts WHERE "
                 "id = $1",
                 id, first, "true");
    /* An invoice's contact and lines by the engine's names. */
    char *other = new_contact(pg, org, "Other");
    char *inv = value(pg,
                      "INSERT INTO app.invoices (organisation_id, contact_id, type) VALUES ($1, "
                      "$2, 'ACCREC') RETURNING id",
                      org, id);
    exec_ok(pg, "UPDATE app.invoices SET contact_id = $2 WHERE id = $1", inv, other);
    exec_ok(pg, "INSERT INTO app.invoice_lines (invoice_id, quantity) VALUES ($1, 1)", inv, NULL);
    assert_value(pg,
                 "SELECT string_agg(k, ',' ORDER BY k) FROM app.invoices, "
                 "jsonb_object_keys(edited_fields) k WHERE id = $1",
                 inv, NULL, "contact,lines");
    free(inv);
    free(other);
    free(first);
    free(id);
    free(org);
    xs_pg_close(pg);
}

static void test_capture_invoice_lines_and_payments(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *contact = new_contact(pg, org, "Customer");
    char *inv = value(pg,
                      "INSERT INTO app.invoices (organisation_id, contact_id, type, date) VALUES "
                      "($1, $2, 'ACCREC', '2024-03-01') RETURNING id",
                      org, contact);
    assert_pending_op(pg, "invoice", inv, "insert");
    process_all(pg, org);

    /* A line is part of its invoice: organisation filled in, the invoice changed. */
    char *line = value(pg,
                       "INSERT INTO app.invoice_lines (invoice_id, position, description, "
                       "quantity, unit_amount, line_amount) VALUES ($1, 0, 'Work', 3, 0.1, "
                       "0.30) RETURNING id",
                       inv, NULL);
    assert_value(pg, "SELECT organisation_id::text FROM app.invoice_lines WHERE id = $1", line,
                 NULL, org);
    assert_pending_op(pg, "invoice", inv, "update");
    assert_value(pg, "SELECT count(*) FROM sync.changes WHERE local_id = $1", line, NULL, "0");
    process_all(pg, org);

    exec_ok(pg, "UPDATE app.invoice_lines SET quantity = 4 WHERE id = $1", line, NULL);
    assert_pending_op(pg, "invoice", inv, "update");
    process_all(pg, org);
    exec_ok(pg, "UPDATE app.invoice_lines SET quantity = 4 WHERE id = $1", line, NULL);
    assert_pending_op(pg, "invoice", inv, NULL);
    exec_ok(pg, "DELETE FROM app.invoice_lines WHERE id = $1", line, NULL);
    assert_pending_op(pg, "invoice", inv, "update");
    process_all(pg, org);

    /* Several lines in one go: one pending change of the invoice. */
    exec_ok(pg,
            "INSERT INTO app.invoice_lines (invoice_id, position, quantity) "
            "SELECT $1, g, 1 FROM generate_series(1, 5) g",
            inv, NULL);
    assert_value(pg,
                 "SELECT count(*) FROM sync.changes WHERE local_id = $1 AND processed_at IS NULL",
                 inv, NULL, "1");

    /* Payments are captured as payments, organisation taken from the invoice. */
    char *pay = value(pg,
                      "INSERT INTO app.payments (invoice_id, account_code, date, amount) VALUES "
                      "($1, '090', '2024-03-05', 12.34) RETURNING id",
                      inv, NULL);
    assert_pending_op(pg, "payment", pay, "insert");
    assert_value(pg, "SELECT organisation_id::text FROM app.payments WHERE id = $1", pay, NULL,
                 org);
    process_all(pg, org);
    exec_ok(pg, "UPDATE app.payments SET status = 'DELETED' WHERE id = $1", pay, NULL);
    assert_pending_op(pg, "payment", pay, "update");
    exec_ok(pg, "DELETE FROM app.payments WHERE id = $1", pay, NULL);
    assert_pending_op(pg, "payment", pay, "delete");

    /* Deleting the invoice takes its lines along; the change stays a delete. */
    exec_ok(pg, "DELETE FROM app.invoices WHERE id = $1", inv, NULL);
    assert_pending_op(pg, "invoice", inv, "delete");
    assert_value(pg, "SELECT count(*) FROM app.invoice_lines WHERE invoice_id = $1", inv, NULL,
                 "0");

    free(pay);
    free(line);
    free(inv);
    free(contact);
    free(org);
    xs_pg_close(pg);
}

static void test_organisation_scoping_and_constraints(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *other = new_org(pg);
    char *contact = new_contact(pg, org, "Mine");
    char *theirs = new_contact(pg, other, "Theirs");

    /* An invoice cannot point at another organisation's contact. */
    assert_int_equal(xs_pg_q(pg, NULL,
                             "INSERT INTO app.invoices (organisation_id, contact_id, type) "
                             "VALUES ($1, $2, 'ACCREC')",
                             org, theirs),
                     XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23503");
    char *inv = value(pg,
                      "INSERT INTO app.invoices (organisation_id, contact_id, type) VALUES ($1, "
                      "$2, 'ACCPAY') RETURNING id",
                      org, contact);
    /* Nor a line another organisation's invoice. */
    assert_int_equal(xs_pg_q(pg, NULL,
                             "INSERT INTO app.invoice_lines (organisation_id, invoice_id) "
                             "VALUES ($1, $2)",
                             other, inv),
                     XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23503");
    /* A contact with invoices cannot simply vanish. */
    assert_int_equal(xs_pg_q(pg, NULL, "DELETE FROM app.contacts WHERE id = $1", contact), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23503");

    /* Enumerations and shapes are checked. */
    static const char *const bad[] = {
        "INSERT INTO app.contacts (organisation_id, name, status) VALUES ($1, 'x', 'GONE')",
        "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, '  ')",
        "INSERT INTO app.contacts (organisation_id, name, phones) VALUES ($1, 'x', '{}')",
        "INSERT INTO app.contacts (organisation_id, name, default_currency) VALUES ($1, 'x', "
        "'usd')",
        "INSERT INTO app.accounts (organisation_id, name, type, status) VALUES ($1, 'x', "
        "'BANK', 'OPEN')",
        "INSERT INTO app.accounts (organisation_id, name, type, class) VALUES ($1, 'x', "
        "'BANK', 'MONEY')",
        "INSERT INTO app.bank_transactions (organisation_id, type) VALUES ($1, 'GIFT')",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(xs_pg_q(pg, NULL, bad[i], org), XS_EDB);
        assert_string_equal(xs_pg_sqlstate(pg), "23514");
    }
    assert_int_equal(
        xs_pg_q(pg, NULL, "UPDATE app.invoices SET status = 'PAYED' WHERE id = $1", inv), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23514");
    assert_int_equal(xs_pg_q(pg, NULL,
                             "UPDATE app.invoices SET line_amount_types = 'exclusive' WHERE id = "
                             "$1",
                             inv),
                     XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23514");

    /* Money is exact decimal, at Xero's precision. */
    exec_ok(pg, "UPDATE app.invoices SET total = 0.1 + 0.2, sub_total = $2 WHERE id = $1", inv,
            "9999999999999999.99");
    assert_value(pg, "SELECT total::text || ' ' || sub_total FROM app.invoices WHERE id = $1", inv,
                 NULL, "0.30 9999999999999999.99");
    assert_value(pg,
                 "SELECT count(*) FROM information_schema.columns WHERE table_schema IN ('app', "
                 "'sync') AND data_type IN ('real', 'double precision', 'money', "
                 "'timestamp without time zone')",
                 NULL, NULL, "0");

    /* A bank transaction keeps its row when its contact goes, losing only the link. */
    char *c2 = new_contact(pg, org, "Payee");
    char *bt = value(pg,
                     "INSERT INTO app.bank_transactions (organisation_id, type, contact_id, total) "
                     "VALUES ($1, 'SPEND', $2, 10) RETURNING id",
                     org, c2);
    exec_ok(pg, "DELETE FROM app.contacts WHERE id = $1", c2, NULL);
    char want[64];
    snprintf(want, sizeof(want), "true%s", org);
    assert_value(pg,
                 "SELECT (contact_id IS NULL)::text || organisation_id::text FROM "
                 "app.bank_transactions WHERE id = $1",
                 bt, NULL, want);

    /* Deleting an organisation takes all its data along, outbox writes included. */
    exec_ok(pg, "INSERT INTO app.invoice_lines (invoice_id, quantity) VALUES ($1, 2)", inv, NULL);
    exec_ok(pg, "INSERT INTO app.payments (invoice_id, date, amount) VALUES ($1, '2024-01-01', 1)",
            inv, NULL);
    exec_ok(pg,
            "WITH g AS (INSERT INTO sync.grants (organisation_id) VALUES ($1) RETURNING id) "
            "INSERT INTO sync.connections (organisation_id, tenant_id, grant_id) SELECT $1, "
            "gen_random_uuid(), id FROM g",
            org, NULL);
    exec_ok(pg, "DELETE FROM app.organisations WHERE id = $1", org, NULL);
    assert_value(pg,
                 "SELECT (SELECT count(*) FROM app.contacts WHERE organisation_id = $1) + "
                 "(SELECT count(*) FROM app.invoices WHERE organisation_id = $1) + "
                 "(SELECT count(*) FROM app.invoice_lines WHERE organisation_id = $1) + "
                 "(SELECT count(*) FROM app.payments WHERE organisation_id = $1) + "
                 "(SELECT count(*) FROM sync.connections WHERE organisation_id = $1)",
                 org, NULL, "0");
    assert_value(pg, "SELECT count(*) FROM app.contacts WHERE id = $1", theirs, NULL, "1");

    free(bt);
    free(c2);
    free(inv);
    free(theirs);
    free(contact);
    free(other);
    free(org);
    xs_pg_close(pg);
}

/* unlinked lists "conn:contact" pairs of sync.unlinked_contacts for org's contacts, sorted by
 * the contacts' names, as "name@conn-label" joined by commas (labels: A for conn_a, B). */
static char *unlinked(xs_pg *pg, const char *conn_a, const char *conn_b)
{
    char *v = NULL;
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT coalesce(string_agg(c.name || '@' || CASE u.connection_id WHEN $1::uuid "
                "THEN 'A' WHEN $2::uuid THEN 'B' ELSE '?' END, ',' ORDER BY c.name, "
                "u.connection_id = $2::uuid), '') FROM sync.unlinked_contacts u JOIN app.contacts "
                "c ON c.id = u.contact_id WHERE u.connection_id IN ($1::uuid, $2::uuid)",
                conn_a, conn_b != NULL ? conn_b : conn_a) == XS_OK &&
        xs_pg_res_nrows(r) == 1) {
        v = strdup(xs_pg_res_get(r, 0, 0));
    }
    xs_pg_res_free(r);
    assert_non_null(v);
    return v;
}

static void assert_unlinked(xs_pg *pg, const char *a, const char *b, const char *want)
{
    char *got = unlinked(pg, a, b);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "unlinked: got '%s', want '%s'\n", got, want);
    }
    assert_string_equal(got, want);
    free(got);
}

/* pulled inserts a contact the way connection conn's pull does (marked, sync.mark_pull),
 * with its mapping in the same transaction. */
static char *pulled(xs_pg *pg, const char *org, const char *conn, const char *name)
{
    assert_int_equal(xs_pg_begin(pg), XS_OK);
    assert_int_equal(xs_pg_mark_engine(pg, "pull-u"), XS_OK);
    exec_ok(pg, "SELECT sync.mark_pull($1)", conn, NULL);
    char *id = new_contact(pg, org, name);
    exec_ok(pg,
            "INSERT INTO sync.mappings (connection_id, entity, local_id, xero_id) VALUES ($1, "
            "'contact', $2, gen_random_uuid())",
            conn, id);
    assert_int_equal(xs_pg_commit(pg), XS_OK);
    return id;
}

/* The local contacts each connection has not linked (migration 0008): what a pull matches
 * against, kept by the database whoever writes. */
static void test_unlinked_contacts(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    static const char *const with_grant =
        "WITH g AS (INSERT INTO sync.grants (organisation_id) VALUES ($1) RETURNING id) INSERT "
        "INTO sync.connections (organisation_id, tenant_id, grant_id) SELECT $1, "
        "gen_random_uuid(), id FROM g RETURNING id";
    /* Contacts from before the first connection are all unlinked for it. */
    char *before = new_contact(pg, org, "a before");
    char *a = value(pg, with_grant, org, NULL);
    assert_unlinked(pg, a, NULL, "a before@A");
    /* A contact the host application adds is unlinked; one the only connection's pull adds
     * is linked at once, so it is not. */
    char *host = new_contact(pg, org, "b host");
    char *mine = pulled(pg, org, a, "c pulled by A");
    assert_unlinked(pg, a, NULL, "a before@A,b host@A");
    /* The engine's mapping writes take a linked contact out (engine/mappings.c, map_write,
     * does it with the write); a mapping removed puts it back. */
    exec_ok(pg,
            "INSERT INTO sync.mappings (connection_id, entity, local_id, xero_id) VALUES ($1, "
            "'contact', $2, gen_random_uuid())",
            a, host);
    exec_ok(pg, "DELETE FROM sync.unlinked_contacts WHERE connection_id = $1 AND contact_id = $2",
            a, host);
    assert_unlinked(pg, a, NULL, "a before@A");
    exec_ok(pg, "DELETE FROM sync.mappings WHERE connection_id = $1 AND local_id = $2", a, host);
    assert_unlinked(pg, a, NULL, "a before@A,b host@A");
    /* A mapping moved to another contact: the one it left is unlinked again. */
    exec_ok(pg,
            "UPDATE sync.mappings SET local_id = $2 WHERE connection_id = $1 AND local_id = "
            "(SELECT id FROM app.contacts WHERE name = 'c pulled by A')",
            a, host);
    exec_ok(pg, "DELETE FROM sync.unlinked_contacts WHERE connection_id = $1 AND contact_id = $2",
            a, host);
    assert_unlinked(pg, a, NULL, "a before@A,c pulled by A@A");

    /* A second connection starts with every contact unlinked; now a pull of either adds the
     * contacts it creates for the other one. */
    char *b = value(pg, with_grant, org, NULL);
    assert_unlinked(pg, a, b, "a before@A,a before@B,b host@B,c pulled by A@A,c pulled by A@B");
    char *theirs = pulled(pg, org, b, "d pulled by B");
    assert_unlinked(pg, a, b,
                    "a before@A,a before@B,b host@B,c pulled by A@A,c pulled by A@B,d pulled by "
                    "B@A");
    /* A deleted contact leaves the set; a contact moved to another organisation is unlinked
     * for that one's connections, and no longer for these. */
    exec_ok(pg, "DELETE FROM app.contacts WHERE id = $1", before, NULL);
    char *other = new_org(pg);
    char *c = value(pg, with_grant, other, NULL);
    exec_ok(pg, "UPDATE app.contacts SET organisation_id = $2 WHERE id = $1", theirs, other);
    assert_unlinked(pg, a, b, "b host@B,c pulled by A@A,c pulled by A@B");
    assert_unlinked(pg, c, NULL, "d pulled by B@A");
    /* A connection's removal takes its rows along, and its mappings' removal adds none. */
    exec_ok(pg, "DELETE FROM sync.connections WHERE id = $1", b, NULL);
    assert_unlinked(pg, a, b, "c pulled by A@A");
    assert_value(pg, "SELECT count(*) FROM sync.unlinked_contacts WHERE connection_id = $1", b,
                 NULL, "0");

    free(c);
    free(other);
    free(theirs);
    free(b);
    free(mine);
    free(host);
    free(a);
    free(before);
    free(org);
    xs_pg_close(pg);
}

/* A tenant blocked by Xero's day limit (migration 0010): the time and the problem go
 * together, and only problems the engine writes are taken. */
static void test_rate_limited(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *conn = value(pg,
                       "WITH g AS (INSERT INTO sync.grants (organisation_id) VALUES ($1) "
                       "RETURNING id) INSERT INTO sync.connections (organisation_id, tenant_id, "
                       "grant_id) SELECT $1, gen_random_uuid(), id FROM g RETURNING id",
                       org, NULL);
    /* A new connection is not blocked. */
    assert_value(pg,
                 "SELECT (rate_limited_until IS NULL AND rate_limited_problem IS NULL)::text "
                 "FROM sync.connections WHERE id = $1",
                 conn, NULL, "true");
    exec_ok(pg,
            "UPDATE sync.connections SET rate_limited_until = now() + interval '1 hour', "
            "rate_limited_problem = 'day' WHERE id = $1",
            conn, NULL);
    assert_value(pg,
                 "SELECT rate_limited_problem || ':' || (rate_limited_until > now())::text FROM "
                 "sync.connections WHERE id = $1",
                 conn, NULL, "day:true");
    /* A time without its problem, a problem without its time, a problem Xero does not name:
     * refused. */
    static const char *const bad[] = {
        "UPDATE sync.connections SET rate_limited_problem = NULL WHERE id = $1",
        "UPDATE sync.connections SET rate_limited_until = NULL WHERE id = $1",
        "UPDATE sync.connections SET rate_limited_problem = 'week' WHERE id = $1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(xs_pg_q(pg, NULL, bad[i], conn), XS_EDB);
        assert_string_equal(xs_pg_sqlstate(pg), "23514");
    }
    /* Cleared together when the block ends. */
    exec_ok(pg,
            "UPDATE sync.connections SET rate_limited_until = NULL, rate_limited_problem = NULL "
            "WHERE id = $1",
            conn, NULL);
    assert_value(pg,
                 "SELECT count(*) FROM sync.connections WHERE id = $1 AND rate_limited_until "
                 "IS NULL",
                 conn, NULL, "1");
    free(conn);
    free(org);
    xs_pg_close(pg);
}

/* 0011: the safety net's question (a tenant's last event) reads the index, not the table. */
static void test_webhook_events_by_tenant(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    exec_ok(pg, "SET enable_seqscan = off", NULL, NULL);
    char *plan = value(pg,
                       "EXPLAIN (FORMAT JSON) SELECT max(received_at) FROM sync.webhook_events "
                       "WHERE tenant_id = $1::uuid",
                       "6f1b2c3d-0000-4000-8000-000000000001", NULL);
    assert_non_null(strstr(plan, "webhook_events_tenant_received"));
    free(plan);
    exec_ok(pg, "RESET enable_seqscan", NULL, NULL);
    xs_pg_close(pg);
}

/* 0014: what the orchestrator's pruning reads goes through an index: old runs by when they
 * ended, processed events by when, and the rows PostgreSQL checks when a run or step goes
 * (conflicts by run, item errors by step). */
static void test_retention_indexes(void **state)
{
    (void)state;
    static const struct {
        const char *sql, *index;
    } q[] = {
        {"SELECT id FROM sync.runs WHERE finished_at < $1::timestamptz ORDER BY finished_at",
         "runs_finished"},
        {"SELECT id FROM sync.webhook_events WHERE status IN ('done', 'failed', 'ignored') AND "
         "coalesce(processed_at, received_at) < $1::timestamptz",
         "webhook_events_processed"},
        {"SELECT id FROM sync.conflicts WHERE run_id = gen_random_uuid() AND $1::text <> ''",
         "conflicts_run"},
        {"SELECT id FROM sync.run_item_errors WHERE step_id = 42 AND $1::text <> ''",
         "run_item_errors_step"},
    };
    xs_pg *pg = connect_to(schema_url);
    exec_ok(pg, "SET enable_seqscan = off", NULL, NULL);
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        char sql[400];
        snprintf(sql, sizeof(sql), "EXPLAIN (FORMAT JSON) %s", q[i].sql);
        char *plan = value(pg, sql, "2026-01-01T00:00:00Z", NULL);
        if (strstr(plan, q[i].index) == NULL) {
            fprintf(stderr, "%s: %s\n", q[i].index, plan);
        }
        assert_non_null(strstr(plan, q[i].index));
        free(plan);
    }
    exec_ok(pg, "RESET enable_seqscan", NULL, NULL);
    xs_pg_close(pg);
}

static void test_sync_uniqueness(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = new_org(pg);
    char *tenant = value(pg, "SELECT gen_random_uuid()", NULL, NULL);
    /* Connections act through a grant (one OAuth consent); a tenant connection with none
     * is refused unless it is disconnected. */
    static const char *const with_grant =
        "WITH g AS (INSERT INTO sync.grants (organisation_id) VALUES ($1) RETURNING id) INSERT "
        "INTO sync.connections (organisation_id, tenant_id, grant_id) SELECT $1, $2::uuid, id "
        "FROM g RETURNING id";
    char *conn = value(pg, with_grant, org, tenant);
    assert_int_equal(xs_pg_q(pg, NULL,
                             "INSERT INTO sync.connections (organisation_id, tenant_id) VALUES "
                             "($1, gen_random_uuid())",
                             org),
                     XS_EDB);
    exec_ok(pg,
            "INSERT INTO sync.connections (organisation_id, tenant_id, status) VALUES ($1, "
            "gen_random_uuid(), 'disconnected')",
            org, NULL);
    /* One connection per organisation and tenant. */
    assert_int_equal(xs_pg_q(pg, NULL, with_grant, org, tenant), XS_EEXIST);
    char *fresh = value(pg, "SELECT gen_random_uuid()", NULL, NULL);
    char *conn2 = value(pg, with_grant, org, fresh);
    free(fresh);

    static const char *const ins =
        "INSERT INTO sync.mappings (connection_id, entity, local_id, xero_id) VALUES ($1, $2, "
        "$3, $4)";
    const char *l1 = "00000000-0000-4000-8000-000000000001";
    const char *l2 = "00000000-0000-4000-8000-000000000002";
    const char *x1 = "00000000-0000-4000-8000-0000000000a1";
    const char *x2 = "00000000-0000-4000-8000-0000000000a2";
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "contact", l1, x1), XS_OK);
    /* The same local row to a second Xero record, and the reverse: refused. */
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "contact", l1, x2), XS_EEXIST);
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "contact", l2, x1), XS_EEXIST);
    /* Other entities and other connections are separate name spaces. */
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "invoice", l1, x1), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn2, "contact", l1, x1), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "contact", l2, x2), XS_OK);
    assert_int_equal(xs_pg_q(pg, NULL, ins, conn, "widget", l1, x1), XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23514");

    /* At most one pending conflict per record. */
    static const char *const conflict =
        "INSERT INTO sync.conflicts (connection_id, entity, local_id, policy) VALUES ($1, "
        "'contact', $2, 'manual') RETURNING id";
    char *c1 = value(pg, conflict, conn, l1);
    assert_int_equal(xs_pg_q(pg, NULL, conflict, conn, l1), XS_EEXIST);
    /* Resolved needs a resolution; once resolved, a new one may be held. */
    assert_int_equal(
        xs_pg_q(pg, NULL, "UPDATE sync.conflicts SET status = 'RESOLVED' WHERE id = $1", c1),
        XS_EDB);
    assert_string_equal(xs_pg_sqlstate(pg), "23514");
    exec_ok(pg,
            "UPDATE sync.conflicts SET status = 'RESOLVED', resolution = 'KEEP_LOCAL', "
            "resolved_at = now() WHERE id = $1",
            c1, NULL);
    char *c2 = value(pg, conflict, conn, l1);
    assert_non_null(c2);

    /* A redelivered webhook event is stored once. */
    static const char *const hook =
        "INSERT INTO sync.webhook_events (tenant_id, event_category, event_type, resource_id, "
        "event_date_utc, raw) VALUES ($1, 'CONTACT', 'UPDATE', $2, '2024-05-01T10:00:00Z', "
        "'{}') ON CONFLICT DO NOTHING";
    xs_pg_res *res = NULL;
    assert_int_equal(xs_pg_q(pg, &res, hook, tenant, x1), XS_OK);
    assert_int_equal(xs_pg_res_affected(res), 1);
    xs_pg_res_free(res);
    assert_int_equal(xs_pg_q(pg, &res, hook, tenant, x1), XS_OK);
    assert_int_equal(xs_pg_res_affected(res), 0);
    xs_pg_res_free(res);

    /* updated_at is kept on sync tables too. */
    char *stamp =
        value(pg, "SELECT updated_at::text FROM sync.connections WHERE id = $1", conn, NULL);
    exec_ok(pg, "UPDATE sync.connections SET status = 'paused' WHERE id = $1", conn, NULL);
    assert_value(pg, "SELECT updated_at > $2::timestamptz FROM sync.connections WHERE id = $1",
                 conn, stamp, "t");
    free(stamp);

    /* A connection takes its mappings and conflicts along when it goes. */
    exec_ok(pg, "DELETE FROM sync.connections WHERE id = $1", conn, NULL);
    assert_value(pg,
                 "SELECT (SELECT count(*) FROM sync.mappings WHERE connection_id = $1) + "
                 "(SELECT count(*) FROM sync.conflicts WHERE connection_id = $1)",
                 conn, NULL, "0");
    assert_value(pg, "SELECT count(*) FROM sync.mappings WHERE connection_id = $1", conn2, NULL,
                 "1");

    free(c2);
    free(c1);
    free(conn2);
    free(conn);
    free(tenant);
    free(org);
    xs_pg_close(pg);
}

/* 0017: app.xpm_job_apply decides a job's history and events under its row's lock, so the
 * same XPM job written again (a retried step, a repeated run) adds nothing; a job first seen
 * in a mapped state enters it, leaving it is one documents_done, a state named in another case
 * is mapped too, and an XPM date that is not one is NULL rather than a failure. */
static void test_job_events_once(void **state)
{
    (void)state;
    xs_pg *pg = connect_to(schema_url);
    char *org = value(pg, "INSERT INTO app.organisations (name) VALUES ('Jobs Ltd') RETURNING id",
                      NULL, NULL);
    char *conn = value(pg,
                       "INSERT INTO sync.connections (organisation_id, tenant_id, status) VALUES "
                       "($1, gen_random_uuid(), 'disconnected') RETURNING id",
                       org, NULL);
    static const struct {
        const char *state, *want;
    } steps[] = {
        {"waiting on client", "created job.needs_documents"},
        {"Waiting on Client", "updated"},
        {"Waiting on Client", "unchanged"},
        {"Review", "updated job.documents_done"},
        {"Review", "unchanged"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char job[256], sql[512];
        snprintf(job, sizeof(job),
                 "{\"uuid\":\"u-1\",\"id\":\"J000001\",\"name\":\"Accounts\",\"state\":"
                 "\"%s\",\"startDate\":\"2026-02-30\",\"dueDate\":\"2026-03-01T00:00:00\"}",
                 steps[i].state);
        snprintf(sql, sizeof(sql),
                 "SELECT app.xpm_job_apply($1::uuid, '%s'::uuid, $2::jsonb, "
                 "ARRAY['Waiting on Client'], false, true)",
                 org);
        char *got = value(pg, sql, conn, job);
        assert_string_equal(got, steps[i].want);
        free(got);
    }
    char *n = value(pg,
                    "SELECT (SELECT count(*) FROM app.job_events WHERE connection_id = $1) || ' ' "
                    "|| (SELECT count(*) FROM app.job_state_changes c JOIN app.jobs j ON j.id = "
                    "c.job_id WHERE j.connection_id = $1) || ' ' || (SELECT coalesce(start_date::"
                    "text, 'null') || ' ' || due_date FROM app.jobs WHERE connection_id = $1)",
                    conn, NULL);
    /* two events; states: first sight, the case change, Review; a bad date is NULL */
    assert_string_equal(n, "2 3 null 2026-03-01");
    free(n);
    exec_ok(pg, "DELETE FROM app.organisations WHERE id = $1", org, NULL);
    free(org);
    free(conn);
    xs_pg_close(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_table),
        cmocka_unit_test(test_fresh_apply_then_noop),
        cmocka_unit_test(test_concurrent_apply),
        cmocka_unit_test(test_newer_database_refused),
        cmocka_unit_test(test_checksum_mismatch_refused),
        cmocka_unit_test(test_missing_version_refused),
        cmocka_unit_test(test_failing_migration_leaves_nothing),
        cmocka_unit_test(test_apply_refuses_open_transaction),
        cmocka_unit_test(test_capture_contact),
        cmocka_unit_test(test_capture_skips_engine_writes),
        cmocka_unit_test(test_edited_at),
        cmocka_unit_test(test_edited_fields),
        cmocka_unit_test(test_capture_invoice_lines_and_payments),
        cmocka_unit_test(test_organisation_scoping_and_constraints),
        cmocka_unit_test(test_sync_uniqueness),
        cmocka_unit_test(test_unlinked_contacts),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_webhook_events_by_tenant),
        cmocka_unit_test(test_retention_indexes),
        cmocka_unit_test(test_job_events_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
