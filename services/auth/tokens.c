/*
 * tokens.c: live access tokens, refreshed once per grant across every xs-auth replica.
 *
 * A token that is fresh enough is opened and handed out without any lock. One that is due
 * is refreshed under the grant's row lock (SELECT ... FOR UPDATE): whoever holds the lock
 * reads the refresh token, calls Xero, and commits the rotated pair before anyone sees the
 * new access token; whoever waited finds the new token when the lock is released and uses
 * it. So two refreshes never spend the same refresh token, on one replica or on many. A
 * refresh whose reply is lost (a reset, a time-out) is retried with the same refresh token:
 * Xero honours it again while its successor is unused, within the grace period.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "xs/json.h"

/* Refresh attempts when the reply does not arrive, and the pause before each retry. */
#define REFRESH_ATTEMPTS 4
#define REFRESH_PAUSE_MS 250

/* Columns of the grant a token is read from, after locking or not. */
#define GRANT_COLS                                                                                 \
    "g.status, g.key_id, g.access_token_sealed, g.refresh_token_sealed, "                          \
    "g.access_expires_at > now() + $2::bigint * interval '1 millisecond', "                        \
    "sync.iso(g.access_expires_at), coalesce(g.last_error, '')"

enum { G_STATUS, G_KEY, G_ACCESS, G_REFRESH, G_FRESH, G_EXPIRES, G_ERROR };

/* open_access opens the access token of a grant row (columns from GRANT_COLS at `at`). */
static xs_err open_access(xs_svc_ctx *ctx, const xs_pg_res *r, int at, auth_token *out)
{
    auth_state *st = ctx->state;
    char aad[128];
    auth_aad(aad, sizeof(aad), "grant", out->grant_id, "access");
    xs_err e = auth_open(&st->keys, xs_pg_res_get(r, 0, at + G_KEY),
                         xs_pg_res_get(r, 0, at + G_ACCESS), aad, &out->access_token);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, XS_ECRYPTO, false,
                           "the stored access token of this connection cannot be opened (a key "
                           "missing from XS_TOKEN_KEY/XS_TOKEN_OLD_KEYS, or the row was altered)");
    }
    snprintf(out->expires_at, sizeof(out->expires_at), "%s", xs_pg_res_get(r, 0, at + G_EXPIRES));
    return XS_OK;
}

/* needs_person describes a grant or connection that only a person can fix. */
static xs_err needs_person(xs_svc_ctx *ctx, const char *conn, const char *status, const char *why)
{
    return xs_svc_fail(ctx, XS_EAUTH, false, "connection %s is %s%s%s%s", conn, status,
                       why[0] != '\0' ? ": " : "", why,
                       strcmp(status, "needs_reauth") == 0
                           ? " (connect it again with POST /v1/connections/authorize)"
                           : "");
}

void auth_mark_needs_reauth(xs_svc_ctx *ctx, const char *grant, const char *reason)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q(ctx->pg, NULL,
                "UPDATE sync.grants SET status = 'needs_reauth', last_error = $2, last_error_at = "
                "now() WHERE id = $1",
                grant, reason) != XS_OK ||
        xs_pg_q(ctx->pg, &r,
                "UPDATE sync.connections SET status = 'needs_reauth', last_error = $2, "
                "last_error_at = now() WHERE grant_id = $1 AND status IN ('active', 'paused') "
                "RETURNING id, organisation_id, tenant_id",
                grant, reason) != XS_OK) {
        xs_log_error(ctx->proc->log, "auth.mark_failed", "{s:s, s:s}", "grant", grant, "error",
                     xs_pg_error(ctx->pg));
        return;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        auth_publish_status(ctx, xs_pg_res_get(r, i, 0), xs_pg_res_get(r, i, 1),
                            xs_pg_res_get(r, i, 2), "needs_reauth", reason);
    }
    xs_log_warn(ctx->proc->log, "auth.needs_reauth", "{s:s, s:s, s:i}", "grant", grant, "reason",
                reason, "connections", xs_pg_res_nrows(r));
    xs_pg_res_free(r);
}

/* refresh_locked refreshes the grant whose row r (GRANT_COLS at column 0) this transaction
 * holds locked, commits, and fills out. The calls it made go to calls[*ncalls]. */
static xs_err refresh_locked(xs_svc_ctx *ctx, const xs_pg_res *r, auth_token *out,
                             xs_xero_call *calls, int *ncalls)
{
    auth_state *st = ctx->state;
    char aad_r[128], aad_a[128];
    auth_aad(aad_r, sizeof(aad_r), "grant", out->grant_id, "refresh");
    auth_aad(aad_a, sizeof(aad_a), "grant", out->grant_id, "access");
    char *refresh = NULL, *sealed_a = NULL, *sealed_r = NULL;
    xs_xero_tokens t = {0};
    xs_pg_res *u = NULL;
    xs_err e = auth_open(&st->keys, xs_pg_res_get(r, 0, G_KEY), xs_pg_res_get(r, 0, G_REFRESH),
                         aad_r, &refresh);
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, XS_ECRYPTO, false,
                        "the stored refresh token of this connection cannot be opened (a key "
                        "missing from XS_TOKEN_KEY/XS_TOKEN_OLD_KEYS, or the row was altered)");
        goto out;
    }
    char oauth_error[64] = "";
    for (int attempt = 0; attempt < REFRESH_ATTEMPTS; attempt++) {
        if (attempt > 0) {
            xs_clock_sleep_ms((int64_t)REFRESH_PAUSE_MS * attempt);
        }
        e = xs_xero_token_refresh(ctx->wstate, refresh, &t, oauth_error, &calls[*ncalls]);
        (*ncalls)++;
        if (e == XS_OK || e == XS_EAUTH || e == XS_EPROTO || e == XS_ENOMEM) {
            break;
        }
        xs_log_warn(ctx->proc->log, "auth.refresh_retry", "{s:s, s:i, s:s}", "grant", out->grant_id,
                    "attempt", attempt + 1, "error", calls[*ncalls - 1].error);
    }
    if (e == XS_EAUTH) {
        char reason[200];
        snprintf(reason, sizeof(reason), "Xero refused the refresh token (%s)", oauth_error);
        auth_mark_needs_reauth(ctx, out->grant_id, reason);
        if (xs_pg_commit(ctx->pg) != XS_OK) {
            xs_log_error(ctx->proc->log, "auth.mark_failed", "{s:s}", "grant", out->grant_id);
        }
        e = xs_svc_fail(ctx, XS_EAUTH, false,
                        "%s: the connection needs to be connected again (POST "
                        "/v1/connections/authorize)",
                        reason);
        goto out;
    }
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, XS_EUNAVAILABLE, true, "the token refresh with Xero failed: %s",
                        calls[*ncalls - 1].error);
        goto out;
    }
    const char *next = t.refresh_token != NULL ? t.refresh_token : refresh;
    if ((e = auth_seal(&st->keys, t.access_token, aad_a, &sealed_a)) != XS_OK ||
        (e = auth_seal(&st->keys, next, aad_r, &sealed_r)) != XS_OK) {
        goto out;
    }
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)t.expires_in_s);
    e = xs_pg_q(ctx->pg, &u,
                "UPDATE sync.grants SET access_token_sealed = $2, refresh_token_sealed = $3, "
                "key_id = $4, access_expires_at = now() + $5::bigint * interval '1 second', "
                "last_refresh_at = now(), refresh_count = refresh_count + 1, last_error = NULL, "
                "last_error_at = NULL, scopes = CASE WHEN $6 = '' THEN scopes ELSE "
                "string_to_array($6, ' ') END WHERE id = $1 RETURNING sync.iso(access_expires_at)",
                out->grant_id, sealed_a, sealed_r, st->keys.current.id, exp,
                t.scope != NULL ? t.scope : "");
    /* The rotated refresh token is durable before the new access token leaves this
     * process; if the commit fails, the old refresh token still works (its successor is
     * unused) and the next request refreshes again. */
    if (e == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, e, true, "cannot store the refreshed tokens: %s",
                        xs_pg_error(ctx->pg));
        goto out;
    }
    snprintf(out->expires_at, sizeof(out->expires_at), "%s", xs_pg_res_get(u, 0, 0));
    out->access_token = t.access_token;
    t.access_token = NULL;
    out->refreshed = true;
    xs_log_info(ctx->proc->log, "auth.refreshed", "{s:s, s:s}", "grant", out->grant_id,
                "expires_at", out->expires_at);
out:
    xs_pg_res_free(u);
    auth_secret_free(refresh);
    free(sealed_a);
    free(sealed_r);
    xs_xero_tokens_fini(&t);
    return e;
}

/* count_refresh counts a refresh that came to e: token_refreshes, or
 * token_refresh_failures{reason}: "refused" (Xero refused the refresh token: the connection
 * needs a person), "unavailable" (no usable answer from Xero after the retries) or "error"
 * (the stored token could not be opened, or the new pair not stored). */
static void count_refresh(xs_svc_ctx *ctx, xs_err e)
{
    if (e == XS_OK) {
        xs_svc_count(ctx, "token_refreshes", NULL, 1);
        return;
    }
    const char *why[] = {"reason",
                         e == XS_EAUTH          ? "refused"
                         : e == XS_EUNAVAILABLE ? "unavailable"
                                                : "error",
                         NULL};
    xs_svc_count(ctx, "token_refresh_failures", why, 1);
}

xs_err auth_token_get(xs_svc_ctx *ctx, const char *conn, int64_t min_valid_ms, bool force,
                      auth_token *out)
{
    auth_state *st = ctx->state;
    memset(out, 0, sizeof(*out));
    char valid[24];
    snprintf(valid, sizeof(valid), "%lld", (long long)min_valid_ms);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT c.tenant_id, c.organisation_id, c.status, coalesce(c.last_error, "
                       "''), g.id, " GRANT_COLS " FROM sync.connections c LEFT JOIN sync.grants g "
                       "ON g.id = c.grant_id WHERE c.id = $1",
                       conn, valid);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return xs_svc_fail(ctx, XS_ENOTFOUND, false, "no connection %s", conn);
    }
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(out->organisation_id, sizeof(out->organisation_id), "%s", xs_pg_res_get(r, 0, 1));
    const char *cstatus = xs_pg_res_get(r, 0, 2);
    const char *gid = xs_pg_res_get(r, 0, 4);
    const int at = 5;
    /* A paused connection is still connected: only the engine holds its work back, and a step
     * that began before the pause finishes with a token. */
    if ((strcmp(cstatus, "active") != 0 && strcmp(cstatus, "paused") != 0) || gid == NULL) {
        e = needs_person(ctx, conn, cstatus, xs_pg_res_get(r, 0, 3));
        xs_pg_res_free(r);
        return e;
    }
    snprintf(out->grant_id, sizeof(out->grant_id), "%s", gid);
    snprintf(out->status, sizeof(out->status), "%s", cstatus);
    if (strcmp(xs_pg_res_get(r, 0, at + G_STATUS), "active") != 0) {
        e = needs_person(ctx, conn, xs_pg_res_get(r, 0, at + G_STATUS),
                         xs_pg_res_get(r, 0, at + G_ERROR));
        xs_pg_res_free(r);
        return e;
    }
    bool fresh = false;
    xs_pg_res_bool(r, 0, at + G_FRESH, &fresh);
    if (fresh && !force) {
        e = open_access(ctx, r, at, out);
        xs_pg_res_free(r);
        return e;
    }
    xs_pg_res_free(r);
    r = NULL;

    /* Due: take the grant's lock. Whoever had it may have refreshed already. */
    char wait[24];
    snprintf(wait, sizeof(wait), "%lld", (long long)st->lock_wait_ms);
    xs_xero_call calls[REFRESH_ATTEMPTS];
    int ncalls = 0;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL, "SELECT set_config('lock_timeout', $1, true)", wait)) !=
            XS_OK) {
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    e = xs_pg_q(ctx->pg, &r, "SELECT " GRANT_COLS " FROM sync.grants g WHERE g.id = $1 FOR UPDATE",
                out->grant_id, valid);
    if (e != XS_OK) {
        bool busy = strcmp(xs_pg_sqlstate(ctx->pg), "55P03") == 0;
        xs_pg_rollback(ctx->pg);
        if (busy) {
            return xs_svc_fail(ctx, XS_EBUSY, true,
                               "another refresh of this connection's token is taking longer "
                               "than XS_TOKEN_LOCK_WAIT");
        }
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    if (xs_pg_res_nrows(r) == 0 || strcmp(xs_pg_res_get(r, 0, G_STATUS), "active") != 0) {
        e = needs_person(ctx, conn,
                         xs_pg_res_nrows(r) == 0 ? "disconnected" : xs_pg_res_get(r, 0, G_STATUS),
                         xs_pg_res_nrows(r) == 0 ? "" : xs_pg_res_get(r, 0, G_ERROR));
        xs_pg_res_free(r);
        xs_pg_rollback(ctx->pg);
        return e;
    }
    xs_pg_res_bool(r, 0, G_FRESH, &fresh);
    if (fresh && !force) {
        e = open_access(ctx, r, 0, out);
        xs_pg_res_free(r);
        xs_pg_rollback(ctx->pg);
        return e;
    }
    e = refresh_locked(ctx, r, out, calls, &ncalls);
    count_refresh(ctx, e);
    xs_pg_res_free(r);
    xs_pg_rollback(ctx->pg); /* a no-op after a commit */
    for (int i = 0; i < ncalls; i++) {
        auth_audit(ctx, conn, out->tenant_id, &calls[i]);
    }
    if (e == XS_EUNAVAILABLE || e == XS_ECRYPTO) {
        /* Visible in GET /v1/connections/{id} until a refresh succeeds. */
        xs_pg_q(ctx->pg, NULL,
                "UPDATE sync.grants SET last_error = $2, last_error_at = now() WHERE id = $1",
                out->grant_id, ctx->err);
    }
    if (e != XS_OK) {
        auth_secret_free(out->access_token);
        out->access_token = NULL;
    }
    return e;
}

xs_err auth_handle_token_get(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    auth_state *st = ctx->state;
    int64_t min_s = -1;
    bool force = false;
    xs_json_get_int(req->body, "min_valid_s", &min_s);
    xs_json_get_bool(req->body, "force_refresh", &force);
    auth_token t;
    xs_err e = auth_token_get(ctx, req->conn, min_s >= 0 ? min_s * 1000 : st->refresh_margin_ms,
                              force, &t);
    if (e != XS_OK) {
        return e;
    }
    *reply = json_pack("{s:s, s:s, s:s, s:b}", "access_token", t.access_token, "tenant_id",
                       t.tenant_id, "expires_at", t.expires_at, "refreshed", t.refreshed);
    auth_secret_free(t.access_token);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

/* tenant_listed tells whether the /connections list holds tenant. */
static bool tenant_listed(const json_t *list, const char *tenant)
{
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        if (strcasecmp(xs_json_str_or(c, "tenantId", ""), tenant) == 0) {
            return true;
        }
    }
    return false;
}

xs_err auth_handle_check(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    auth_state *st = ctx->state;
    bool force = false;
    xs_json_get_bool(req->body, "force_refresh", &force);
    auth_token t;
    xs_err e = auth_token_get(ctx, req->conn, st->refresh_margin_ms, force, &t);
    if (e == XS_EAUTH) {
        /* Not usable: that is the check's answer, not a failure of the check. */
        xs_pg_res *r = NULL;
        const char *status = "needs_reauth";
        if (xs_pg_q(ctx->pg, &r, "SELECT status FROM sync.connections WHERE id = $1", req->conn) ==
                XS_OK &&
            xs_pg_res_nrows(r) == 1) {
            status = xs_pg_res_get(r, 0, 0);
        }
        *reply = json_pack("{s:s, s:b, s:b, s:s}", "status", status, "tenant_connected", 0,
                           "refreshed", 0, "reason", ctx->err);
        xs_pg_res_free(r);
        ctx->err[0] = '\0';
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (e != XS_OK) {
        return e;
    }
    json_t *list = NULL;
    xs_xero_call call;
    e = xs_xero_connections(ctx->wstate, t.access_token, NULL, &list, &call);
    auth_audit(ctx, req->conn, t.tenant_id, &call);
    auth_secret_free(t.access_token);
    if (e == XS_EAUTH) {
        char reason[200];
        snprintf(reason, sizeof(reason), "Xero refused the access token (HTTP %ld)", call.status);
        auth_mark_needs_reauth(ctx, t.grant_id, reason);
        *reply = json_pack("{s:s, s:b, s:b, s:s}", "status", "needs_reauth", "tenant_connected", 0,
                           "refreshed", t.refreshed, "reason", reason);
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (e != XS_OK) {
        return xs_svc_fail(ctx, XS_EUNAVAILABLE, xs_xero_retryable(e, call.status),
                           "GET /connections failed: %s", call.error);
    }
    bool listed = tenant_listed(list, t.tenant_id);
    json_decref(list);
    const char *reason = NULL;
    if (!listed) {
        reason = "the tenant is no longer connected to the app in Xero (it was disconnected "
                 "there); connect it again";
        xs_pg_res *r = NULL;
        if (xs_pg_q(ctx->pg, &r,
                    "UPDATE sync.connections SET status = 'needs_reauth', last_error = $2, "
                    "last_error_at = now() WHERE id = $1 AND status IN ('active', 'paused') "
                    "RETURNING id",
                    req->conn, reason) == XS_OK &&
            xs_pg_res_nrows(r) == 1) {
            auth_publish_status(ctx, req->conn, t.organisation_id, t.tenant_id, "needs_reauth",
                                reason);
        }
        xs_pg_res_free(r);
    }
    *reply = json_pack("{s:s, s:b, s:s, s:b, s:s?}", "status", listed ? t.status : "needs_reauth",
                       "tenant_connected", listed, "expires_at", t.expires_at, "refreshed",
                       t.refreshed, "reason", reason);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}
