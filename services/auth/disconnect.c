/*
 * disconnect.c: disconnecting a tenant. At Xero: remove the tenant connection, and revoke
 * the refresh token once no other tenant of the same consent is still connected (revoking
 * would disconnect them too). Here: the row becomes `disconnected`, keeping its mappings and
 * history, unless purge deletes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "xs/json.h"

/* revoke_grant revokes the grant's refresh token at Xero and forgets its tokens. Returns
 * whether it was revoked; a failure is described in warn. */
static bool revoke_grant(xs_svc_ctx *ctx, const char *conn, const char *tenant, const char *grant,
                         char *warn, size_t cap)
{
    auth_state *st = ctx->state;
    xs_pg_res *r = NULL;
    char *refresh = NULL;
    bool revoked = false;
    xs_xero_call call;
    bool called = false;
    if (xs_pg_begin(ctx->pg) != XS_OK ||
        xs_pg_q(ctx->pg, &r,
                "SELECT key_id, refresh_token_sealed FROM sync.grants WHERE id = $1 AND "
                "refresh_token_sealed IS NOT NULL FOR UPDATE",
                grant) != XS_OK) {
        snprintf(warn, cap, "the refresh token could not be read: %s", xs_pg_error(ctx->pg));
        goto out;
    }
    if (xs_pg_res_nrows(r) == 1) {
        char aad[128];
        auth_aad(aad, sizeof(aad), "grant", grant, "refresh");
        if (auth_open(&st->keys, xs_pg_res_get(r, 0, 0), xs_pg_res_get(r, 0, 1), aad, &refresh) !=
            XS_OK) {
            snprintf(warn, cap, "the refresh token cannot be opened, so it was not revoked");
            goto forget;
        }
        xs_err e = xs_xero_revoke(ctx->wstate, refresh, &call);
        called = true;
        if (e == XS_OK) {
            revoked = true;
        } else {
            snprintf(warn, cap, "Xero did not revoke the refresh token: %s", call.error);
            if (e != XS_EAUTH) {
                goto out; /* keep the tokens: a later disconnect can still revoke them */
            }
        }
    }
forget:
    if (xs_pg_q(ctx->pg, NULL,
                "UPDATE sync.grants SET status = 'revoked', access_token_sealed = NULL, "
                "refresh_token_sealed = NULL, key_id = NULL WHERE id = $1",
                grant) != XS_OK ||
        xs_pg_commit(ctx->pg) != XS_OK) {
        snprintf(warn, cap, "the revoked tokens could not be forgotten: %s", xs_pg_error(ctx->pg));
    }
out:
    xs_pg_res_free(r);
    auth_secret_free(refresh);
    xs_pg_rollback(ctx->pg);
    if (called) {
        auth_audit(ctx, conn, tenant, &call);
    }
    return revoked;
}

xs_err auth_handle_disconnect(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    auth_state *st = ctx->state;
    const char *conn = req->conn;
    bool purge = false;
    xs_json_get_bool(req->body, "purge", &purge);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT status, grant_id, xero_connection_id, organisation_id, tenant_id "
                       "FROM sync.connections WHERE id = $1",
                       conn);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return xs_svc_fail(ctx, XS_ENOTFOUND, false, "no connection %s", conn);
    }
    char status[32], grant[40] = "", xcid[40] = "", org[40], tenant[40];
    snprintf(status, sizeof(status), "%s", xs_pg_res_get(r, 0, 0));
    if (xs_pg_res_get(r, 0, 1) != NULL) {
        snprintf(grant, sizeof(grant), "%s", xs_pg_res_get(r, 0, 1));
    }
    if (xs_pg_res_get(r, 0, 2) != NULL) {
        snprintf(xcid, sizeof(xcid), "%s", xs_pg_res_get(r, 0, 2));
    }
    snprintf(org, sizeof(org), "%s", xs_pg_res_get(r, 0, 3));
    snprintf(tenant, sizeof(tenant), "%s", xs_pg_res_get(r, 0, 4));
    xs_pg_res_free(r);
    r = NULL;

    bool removed = false, revoked = false;
    char warn[512] = "";
    if (strcmp(status, "disconnected") != 0 && grant[0] != '\0') {
        auth_token t;
        e = auth_token_get(ctx, conn, st->refresh_margin_ms, false, &t);
        if (e == XS_EAUTH) {
            snprintf(warn, sizeof(warn),
                     "Xero already refuses this connection's tokens, so it was disconnected "
                     "here only (%.400s)",
                     ctx->err);
            ctx->err[0] = '\0';
        } else if (e != XS_OK) {
            return e;
        } else {
            xs_xero_call call;
            e = xcid[0] != '\0'
                    ? xs_xero_connection_delete(ctx->wstate, t.access_token, xcid, &call)
                    : XS_ENOTFOUND;
            auth_secret_free(t.access_token);
            if (xcid[0] != '\0') {
                auth_audit(ctx, conn, tenant, &call);
            }
            if (e == XS_OK || e == XS_ENOTFOUND) {
                removed = true;
            } else if (e == XS_EAUTH) {
                snprintf(warn, sizeof(warn), "Xero refused to remove the tenant connection: %s",
                         call.error);
            } else {
                return xs_svc_fail(ctx, XS_EUNAVAILABLE, true,
                                   "Xero could not be reached to remove the tenant connection "
                                   "(%s); nothing was changed, try again",
                                   call.error);
            }
            e = xs_pg_q(ctx->pg, &r,
                        "SELECT count(*) FROM sync.connections WHERE grant_id = $1 AND id <> $2 "
                        "AND status IN ('active', 'paused')",
                        grant, conn);
            if (e != XS_OK) {
                return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
            }
            int64_t others = 0;
            xs_pg_res_int(r, 0, 0, &others);
            xs_pg_res_free(r);
            r = NULL;
            if (others == 0 && removed) {
                revoked = revoke_grant(ctx, conn, tenant, grant, warn, sizeof(warn));
            }
        }
    }

    if ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.connections SET status = 'disconnected', disconnected_at = "
                     "coalesce(disconnected_at, now()), last_error = NULL, last_error_at = NULL "
                     "WHERE id = $1",
                     conn)) != XS_OK) {
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    if (purge) {
        /* Mappings, runs and their steps, cursors, schedules and conflicts go with the row
         * (ON DELETE CASCADE); the API-call audit keeps its rows without the link. A grant no
         * other connection uses goes too. */
        e = xs_pg_q(ctx->pg, NULL, "DELETE FROM sync.connections WHERE id = $1", conn);
        if (e == XS_OK && grant[0] != '\0') {
            e = xs_pg_q(ctx->pg, NULL,
                        "DELETE FROM sync.grants g WHERE g.id = $1 AND NOT EXISTS (SELECT 1 FROM "
                        "sync.connections c WHERE c.grant_id = g.id)",
                        grant);
        }
        if (e != XS_OK) {
            xs_pg_rollback(ctx->pg);
            return xs_svc_fail(ctx, e, true, "cannot purge the connection: %s",
                               xs_pg_error(ctx->pg));
        }
    }
    if ((e = xs_pg_commit(ctx->pg)) != XS_OK) {
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    auth_publish_status(ctx, conn, org, tenant, "disconnected",
                        purge ? "disconnected and purged" : "disconnected");
    xs_log_info(ctx->proc->log, "auth.disconnected", "{s:s, s:b, s:b, s:b}", "connection", conn,
                "removed_at_xero", removed, "revoked", revoked, "purged", purge);
    *reply = json_pack("{s:s, s:b, s:b, s:b, s:s?}", "status", purge ? "purged" : "disconnected",
                       "removed_at_xero", removed, "revoked", revoked, "purged", purge, "warning",
                       warn[0] != '\0' ? warn : NULL);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}
