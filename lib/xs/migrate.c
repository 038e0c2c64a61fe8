/* migrate.c: bringing a database to this build's schema version, and checking it is there. */
#include "xs/migrate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/clock.h"
#include "xs/crypto.h"

/* The key of the session-level advisory lock every migrator takes: "xs-migra" in ASCII. */
#define MIGRATE_LOCK_KEY "8679330854816150113"

#define REASON_MAX   160
#define CHECKSUM_LEN (2 * XS_SHA256_LEN + 1)

/* The ledger lives outside the migrations because it must exist before the first one can be
 * looked up: xs_migrate_apply makes it, under the lock, when it is missing. */
static const char *const bootstrap_sql[] = {
    "CREATE SCHEMA IF NOT EXISTS sync",
    "CREATE TABLE sync.schema_migrations ("
    " version integer PRIMARY KEY CHECK (version > 0),"
    " name text NOT NULL,"
    " checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),"
    " applied_at timestamptz NOT NULL DEFAULT now())",
    "COMMENT ON TABLE sync.schema_migrations IS 'Migrations applied to this database (one row "
    "each, written in the migration''s own transaction) with the SHA-256 of the file applied; "
    "made by xs_migrate_apply, not by a migration.'",
};

int xs_migrate_latest(void)
{
    int latest = 0;
    for (size_t i = 0; i < xs_nmigrations; i++) {
        if (xs_migrations[i].version > latest) {
            latest = xs_migrations[i].version;
        }
    }
    return latest;
}

/* find returns this build's migration `version`, or NULL. */
static const xs_migration *find(int version)
{
    for (size_t i = 0; i < xs_nmigrations; i++) {
        if (xs_migrations[i].version == version) {
            return &xs_migrations[i];
        }
    }
    return NULL;
}

/* ledger_exists tells (in *out) whether sync.schema_migrations exists. */
static xs_err ledger_exists(xs_pg *pg, bool *out)
{
    xs_pg_res *res = NULL;
    xs_err e = xs_pg_q0(pg, &res, "SELECT to_regclass('sync.schema_migrations') IS NOT NULL");
    if (e != XS_OK) {
        return e;
    }
    e = xs_pg_res_bool(res, 0, 0, out);
    xs_pg_res_free(res);
    return e;
}

/* read_ledger returns the recorded migrations (version, checksum) in version order in *out
 * (new), or NULL in *out when there is no ledger yet. */
static xs_err read_ledger(xs_pg *pg, xs_pg_res **out)
{
    bool exists = false;
    xs_err e = ledger_exists(pg, &exists);
    if (e != XS_OK) {
        return e;
    }
    if (!exists) {
        *out = NULL;
        return XS_OK;
    }
    return xs_pg_q0(pg, out,
                    "SELECT version, checksum FROM sync.schema_migrations ORDER BY version");
}

/* verify compares the ledger (NULL: none) with this build. On XS_OK, *db_version is the
 * highest version recorded and *pending how many of this build's migrations are not; on
 * XS_ESCHEMA, reason says why the database cannot be used or migrated by this build. */
static xs_err verify(const xs_pg_res *ledger, int *db_version, size_t *pending, char *reason)
{
    int latest = xs_migrate_latest();
    for (size_t i = 1; i < xs_nmigrations; i++) {
        if (xs_migrations[i].version <= xs_migrations[i - 1].version) {
            snprintf(reason, REASON_MAX, "this build's migrations are not in strict order at %d",
                     xs_migrations[i].version);
            return XS_ESCHEMA;
        }
    }
    int top = 0;
    size_t recorded = 0;
    int n = xs_pg_res_nrows(ledger);
    for (int r = 0; r < n; r++) {
        int64_t v = 0;
        if (xs_pg_res_int(ledger, r, 0, &v) != XS_OK || v <= 0 || v > 1000000) {
            snprintf(reason, REASON_MAX, "sync.schema_migrations holds an unreadable version");
            return XS_ESCHEMA;
        }
        top = (int)v > top ? (int)v : top;
    }
    for (int r = 0; r < n; r++) {
        int64_t v = 0;
        xs_pg_res_int(ledger, r, 0, &v);
        const xs_migration *m = find((int)v);
        if (m == NULL) {
            if (v > latest) {
                snprintf(reason, REASON_MAX,
                         "database is at version %d, newer than this build's %d: run a newer "
                         "build",
                         top, latest);
            } else {
                snprintf(reason, REASON_MAX,
                         "database has migration %d, which this build does not carry", (int)v);
            }
            return XS_ESCHEMA;
        }
        char sum[CHECKSUM_LEN];
        xs_sha256_hex(m->sql, m->len, sum);
        const char *got = xs_pg_res_get(ledger, r, 1);
        if (got == NULL || strcmp(got, sum) != 0) {
            snprintf(reason, REASON_MAX,
                     "migration %d (%s) differs from the one applied to the database: checksum "
                     "mismatch",
                     m->version, m->name);
            return XS_ESCHEMA;
        }
        recorded++;
    }
    /* Every version is recorded at most once (primary key) and each is one of ours, so what
     * is not recorded is pending. A pending one below the top would run out of order. */
    for (size_t i = 0; i < xs_nmigrations; i++) {
        if (xs_migrations[i].version >= top) {
            break;
        }
        bool found = false;
        for (int r = 0; r < n && !found; r++) {
            int64_t v = 0;
            xs_pg_res_int(ledger, r, 0, &v);
            found = v == xs_migrations[i].version;
        }
        if (!found) {
            snprintf(reason, REASON_MAX,
                     "migration %d is missing from the database, which is at version %d",
                     xs_migrations[i].version, top);
            return XS_ESCHEMA;
        }
    }
    *db_version = top;
    *pending = xs_nmigrations - recorded;
    return XS_OK;
}

/* bootstrap creates the schema `sync` and the ledger, in one transaction. */
static xs_err bootstrap(xs_pg *pg)
{
    xs_err e = xs_pg_begin(pg);
    for (size_t i = 0; e == XS_OK && i < sizeof(bootstrap_sql) / sizeof(bootstrap_sql[0]); i++) {
        e = xs_pg_q0(pg, NULL, bootstrap_sql[i]);
    }
    if (e == XS_OK) {
        return xs_pg_commit(pg);
    }
    xs_pg_rollback(pg); /* keeps the failure's message readable */
    return e;
}

/* apply_one runs migration m and records it, in one transaction; on failure nothing of it
 * remains and pg's error tells why. */
static xs_err apply_one(xs_pg *pg, const xs_migration *m)
{
    char sum[CHECKSUM_LEN];
    xs_sha256_hex(m->sql, m->len, sum);
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    if (strlen(m->sql) != m->len) {
        xs_pg_error_restore(pg, "migration file holds a NUL byte", "");
        return XS_ESCHEMA;
    }
    xs_err e = xs_pg_begin(pg);
    if (e != XS_OK) {
        return e;
    }
    e = xs_pg_exec_script(pg, m->sql);
    if (e == XS_OK) {
        e = xs_pg_q(pg, NULL,
                    "INSERT INTO sync.schema_migrations (version, name, checksum) "
                    "VALUES ($1::integer, $2, $3)",
                    version, m->name, sum);
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
        if (e == XS_OK) {
            return XS_OK;
        }
    }
    xs_pg_rollback(pg); /* keeps the failure's message readable */
    return e;
}

xs_err xs_migrate_apply(xs_pg *pg, xs_log *log, int *applied)
{
    if (pg == NULL) {
        return XS_EINVAL;
    }
    if (xs_pg_in_transaction(pg)) {
        /* Our BEGIN and COMMIT would end the caller's transaction. */
        xs_log_error(log, "migrate.in_transaction", NULL);
        return XS_ESTATE;
    }
    xs_err e = xs_pg_q(pg, NULL, "SELECT pg_advisory_lock($1::bigint)", MIGRATE_LOCK_KEY);
    if (e != XS_OK) {
        xs_log_error(log, "migrate.lock_failed", "{s:s}", "error", xs_pg_error(pg));
        return e;
    }
    int count = 0;
    int db_version = 0;
    size_t pending = 0;
    char reason[REASON_MAX] = "";
    xs_pg_res *ledger = NULL;

    bool exists = false;
    e = ledger_exists(pg, &exists);
    if (e == XS_OK && !exists) {
        e = bootstrap(pg);
    }
    if (e == XS_OK) {
        e = read_ledger(pg, &ledger);
    }
    if (e != XS_OK) {
        xs_log_error(log, "migrate.ledger_failed", "{s:s, s:s}", "error", xs_pg_error(pg),
                     "sqlstate", xs_pg_sqlstate(pg));
        goto fail;
    }
    e = verify(ledger, &db_version, &pending, reason);
    if (e != XS_OK) {
        xs_log_error(log, "migrate.refused", "{s:s}", "reason", reason);
        xs_pg_error_restore(pg, reason, "");
        goto fail;
    }
    for (size_t i = 0; i < xs_nmigrations; i++) {
        const xs_migration *m = &xs_migrations[i];
        if (m->version <= db_version) {
            continue;
        }
        int64_t t0 = xs_clock_mono_ms();
        e = apply_one(pg, m);
        if (e != XS_OK) {
            xs_log_error(log, "migrate.failed", "{s:i, s:s, s:s, s:s, s:s}", "version", m->version,
                         "name", m->name, "error", xs_pg_error(pg), "sqlstate", xs_pg_sqlstate(pg),
                         "code", xs_err_name(e));
            goto fail;
        }
        count++;
        xs_log_info(log, "migrate.applied", "{s:i, s:s, s:I}", "version", m->version, "name",
                    m->name, "ms", (json_int_t)(xs_clock_mono_ms() - t0));
    }
    xs_log_info(log, "migrate.done", "{s:i, s:i}", "applied", count, "version",
                xs_migrate_latest());

fail:
    xs_pg_res_free(ledger);
    {
        /* The unlock must not hide why we failed: keep the failure's message readable. */
        char msg[512], state[8];
        snprintf(msg, sizeof(msg), "%s", xs_pg_error(pg));
        snprintf(state, sizeof(state), "%s", xs_pg_sqlstate(pg));
        if (xs_pg_q(pg, NULL, "SELECT pg_advisory_unlock($1::bigint)", MIGRATE_LOCK_KEY) != XS_OK) {
            /* Only a lost connection gets here, and that released the lock with it. */
            xs_log_warn(log, "migrate.unlock_failed", "{s:s}", "error", xs_pg_error(pg));
        }
        if (e != XS_OK) {
            xs_pg_error_restore(pg, msg, state);
        }
    }
    if (e == XS_OK && applied != NULL) {
        *applied = count;
    }
    return e;
}

xs_err xs_migrate_version(xs_pg *pg, int *out)
{
    if (pg == NULL || out == NULL) {
        return XS_EINVAL;
    }
    bool exists = false;
    xs_err e = ledger_exists(pg, &exists);
    if (e != XS_OK) {
        return e;
    }
    if (!exists) {
        *out = 0;
        return XS_OK;
    }
    xs_pg_res *res = NULL;
    e = xs_pg_q0(pg, &res, "SELECT coalesce(max(version), 0) FROM sync.schema_migrations");
    if (e != XS_OK) {
        return e;
    }
    int64_t v = 0;
    e = xs_pg_res_int(res, 0, 0, &v);
    xs_pg_res_free(res);
    if (e != XS_OK) {
        return e;
    }
    *out = (int)v;
    return XS_OK;
}

xs_err xs_migrate_check(xs_pg *pg, char *err)
{
    char reason[REASON_MAX] = "";
    xs_pg_res *ledger = NULL;
    xs_err e = pg != NULL ? read_ledger(pg, &ledger) : XS_EINVAL;
    if (e != XS_OK) {
        snprintf(reason, sizeof(reason), "cannot read the schema version: %s",
                 pg != NULL ? xs_pg_error(pg) : "no connection");
    } else {
        int db_version = 0;
        size_t pending = 0;
        e = verify(ledger, &db_version, &pending, reason);
        if (e == XS_OK && pending > 0) {
            snprintf(reason, sizeof(reason),
                     "database is at version %d, this build needs %d: run xs-migrate", db_version,
                     xs_migrate_latest());
            e = XS_ESCHEMA;
        }
    }
    xs_pg_res_free(ledger);
    if (err != NULL) {
        snprintf(err, REASON_MAX, "%s", reason);
    }
    return e;
}
