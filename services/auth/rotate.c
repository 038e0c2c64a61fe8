/*
 * rotate.c: `xs-auth rotate-key`. Re-seals every stored token set, and every pending PKCE
 * verifier, that is sealed with a key other than XS_TOKEN_KEY (opening it with the key from
 * XS_TOKEN_OLD_KEYS that sealed it), one row per transaction with the row locked, so it can
 * run while the service runs. Afterwards the old keys can be dropped from XS_TOKEN_OLD_KEYS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "xs/migrate.h"
#include "xs/proc.h"

static const char usage[] =
    "xs-auth rotate-key: re-seal every stored OAuth token under XS_TOKEN_KEY. Put the previous "
    "key in XS_TOKEN_OLD_KEYS, run this once (the service may keep running), then drop it. "
    "Exit code 0 when every row was re-sealed, 1 when some could not be opened (see the log).";

/* reseal_one re-seals the columns of one row of table (grants or oauth_states) under the
 * current key. Returns XS_OK, XS_ENOTFOUND when the row is gone or already current, or an
 * error. */
static xs_err reseal_one(xs_pg *pg, const auth_keys *k, bool grant, const char *id, xs_log *log)
{
    xs_pg_res *r = NULL;
    char *a = NULL, *b = NULL, *sa = NULL, *sb = NULL;
    xs_err e = xs_pg_begin(pg);
    if (e != XS_OK) {
        return e;
    }
    e = grant ? xs_pg_q(pg, &r,
                        "SELECT key_id, access_token_sealed, refresh_token_sealed FROM sync.grants "
                        "WHERE id = $1 AND key_id IS NOT NULL AND key_id <> $2 FOR UPDATE",
                        id, k->current.id)
              : xs_pg_q(pg, &r,
                        "SELECT key_id, code_verifier_sealed FROM sync.oauth_states WHERE "
                        "state_hash = $1 AND key_id <> $2 FOR UPDATE",
                        id, k->current.id);
    if (e != XS_OK) {
        goto out;
    }
    if (xs_pg_res_nrows(r) == 0) {
        e = XS_ENOTFOUND;
        goto out;
    }
    const char *key = xs_pg_res_get(r, 0, 0);
    char aad_a[128], aad_b[128];
    auth_aad(aad_a, sizeof(aad_a), grant ? "grant" : "state", id, grant ? "access" : "verifier");
    auth_aad(aad_b, sizeof(aad_b), "grant", id, "refresh");
    if ((e = auth_open(k, key, xs_pg_res_get(r, 0, 1), aad_a, &a)) != XS_OK ||
        (grant && xs_pg_res_get(r, 0, 2) != NULL &&
         (e = auth_open(k, key, xs_pg_res_get(r, 0, 2), aad_b, &b)) != XS_OK)) {
        xs_log_error(log, "auth.rotate_unreadable", "{s:s, s:s, s:s}", "table",
                     grant ? "sync.grants" : "sync.oauth_states", "id", id, "key_id", key);
        goto out;
    }
    if ((e = auth_seal(k, a, aad_a, &sa)) != XS_OK ||
        (b != NULL && (e = auth_seal(k, b, aad_b, &sb)) != XS_OK)) {
        goto out;
    }
    e = grant ? xs_pg_q(pg, NULL,
                        "UPDATE sync.grants SET access_token_sealed = $2, refresh_token_sealed = "
                        "coalesce($3::bytea, refresh_token_sealed), key_id = $4 WHERE id = $1",
                        id, sa, sb, k->current.id)
              : xs_pg_q(pg, NULL,
                        "UPDATE sync.oauth_states SET code_verifier_sealed = $2, key_id = $3 "
                        "WHERE state_hash = $1",
                        id, sa, k->current.id);
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
out:
    xs_pg_res_free(r);
    auth_secret_free(a);
    auth_secret_free(b);
    free(sa);
    free(sb);
    xs_pg_rollback(pg);
    return e;
}

/* reseal_all re-seals every row a query lists; counts go to *done and *failed. */
static xs_err reseal_all(xs_pg *pg, const auth_keys *k, bool grant, xs_log *log, long *done,
                         long *failed)
{
    xs_pg_res *ids = NULL;
    xs_err e = grant ? xs_pg_q(pg, &ids,
                               "SELECT id FROM sync.grants WHERE key_id IS NOT NULL AND key_id "
                               "<> $1 ORDER BY id",
                               k->current.id)
                     : xs_pg_q(pg, &ids,
                               "SELECT state_hash FROM sync.oauth_states WHERE key_id <> $1 AND "
                               "used_at IS NULL AND expires_at > now() ORDER BY state_hash",
                               k->current.id);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(ids); i++) {
        e = reseal_one(pg, k, grant, xs_pg_res_get(ids, i, 0), log);
        if (e == XS_OK) {
            (*done)++;
        } else if (e != XS_ENOTFOUND) {
            (*failed)++;
        }
    }
    xs_pg_res_free(ids);
    if (!grant) {
        /* Spent or expired states need no verifier any more; drop those sealed with an old
         * key, so the old key can go. */
        xs_pg_q(pg, NULL,
                "DELETE FROM sync.oauth_states WHERE key_id <> $1 AND (used_at IS NOT NULL OR "
                "expires_at <= now())",
                k->current.id);
    }
    return XS_OK;
}

int auth_rotate_main(int argc, char **argv)
{
    xs_proc proc;
    int code;
    if (xs_proc_start(&proc, "xs-auth", XS_PROC_AUTH, argc, argv, usage, &code) != XS_OK) {
        return code;
    }
    auth_keys k;
    char err[XS_CONFIG_ERR_MAX];
    xs_pg *pg = NULL;
    if (auth_keys_load(proc.cfg, &k, err) != XS_OK) {
        xs_log_error(proc.log, "config.invalid", "{s:s}", "error", err);
        code = XS_EXIT_CONFIG;
        goto done;
    }
    code = XS_EXIT_FAIL;
    if (xs_pg_connect(&pg, xs_config_str(proc.cfg, "XS_DATABASE_URL"), "xs-auth rotate-key",
                      xs_config_int(proc.cfg, "XS_DB_CONNECT_WAIT"), proc.log) != XS_OK) {
        xs_log_error(proc.log, "db.unreachable", NULL);
        goto done;
    }
    char why[160];
    if (xs_migrate_check(pg, why) != XS_OK) {
        xs_log_error(proc.log, "db.schema_mismatch", "{s:s}", "reason", why);
        goto done;
    }
    long grants = 0, states = 0, failed = 0;
    if (reseal_all(pg, &k, true, proc.log, &grants, &failed) != XS_OK ||
        reseal_all(pg, &k, false, proc.log, &states, &failed) != XS_OK) {
        xs_log_error(proc.log, "auth.rotate_failed", "{s:s}", "error", xs_pg_error(pg));
        goto done;
    }
    xs_log_info(proc.log, "auth.rotate_key", "{s:s, s:I, s:I, s:I}", "key_id", k.current.id,
                "grants_resealed", (json_int_t)grants, "states_resealed", (json_int_t)states,
                "failed", (json_int_t)failed);
    code = failed == 0 ? XS_EXIT_OK : XS_EXIT_FAIL;
done:
    xs_crypto_wipe(&k, sizeof(k));
    xs_pg_close(pg);
    xs_proc_finish(&proc, code);
    return code;
}
