/* connect.c: connecting an organisation to Xero (OAuth 2.0 authorization code + PKCE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "xs/json.h"

/* list_has tells whether the separator-separated list holds item exactly. */
static bool list_has(const char *list, char sep, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == sep) {
            p++;
        }
        const char *end = strchr(p, sep);
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len == n && n > 0 && strncmp(p, item, n) == 0) {
            return true;
        }
        p = end;
    }
    return false;
}

/* first_of copies the first item of a comma-separated list into buf. */
static void first_of(const char *list, char *buf, size_t cap)
{
    while (*list == ' ') {
        list++;
    }
    size_t n = strcspn(list, ",");
    while (n > 0 && list[n - 1] == ' ') {
        n--;
    }
    snprintf(buf, cap, "%.*s", (int)n, list);
}

/* with_scopes appends to the space-separated list in buf (cap bytes) each scope of more it
 * does not hold yet. */
static void with_scopes(char *buf, size_t cap, const char *more)
{
    const char *p = more;
    while (p != NULL && *p != '\0') {
        while (*p == ' ') {
            p++;
        }
        size_t n = strcspn(p, " ");
        char one[256];
        if (n > 0 && n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = '\0';
            size_t len = strlen(buf);
            if (!list_has(buf, ' ', one) && len + 1 + n < cap) {
                snprintf(buf + len, cap - len, "%s%s", len > 0 ? " " : "", one);
            }
        }
        p += n;
    }
}

xs_err auth_handle_authorize(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    auth_state *st = ctx->state;
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    char redirect[2049];
    const char *given = xs_json_str_or(req->body, "redirect_uri", NULL);
    if (given != NULL) {
        if (!list_has(st->redirects, ',', given)) {
            return xs_svc_fail_field(ctx, XS_EINVAL, "redirect_uri",
                                     "redirect_uri is not one of XS_OAUTH_REDIRECT_URIS");
        }
        snprintf(redirect, sizeof(redirect), "%s", given);
    } else {
        first_of(st->redirects, redirect, sizeof(redirect));
    }
    char scopes[4200];
    snprintf(scopes, sizeof(scopes), "%s", xs_json_str_or(req->body, "scopes", st->scopes));
    if (json_is_true(json_object_get(req->body, "xpm"))) {
        /* Xero Practice Manager's scopes, asked for only by a connection that syncs its jobs */
        with_scopes(scopes, sizeof(scopes), st->xpm_scopes);
    }
    if (!list_has(scopes, ' ', "offline_access")) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "scopes",
                                 "scopes must include offline_access, or the connection could "
                                 "not refresh its token after 30 minutes");
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r, "SELECT 1 FROM app.organisations WHERE id = $1", org);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, true, "cannot read organisations: %s", xs_pg_error(ctx->pg));
    }
    int found = xs_pg_res_nrows(r);
    xs_pg_res_free(r);
    if (found == 0) {
        return xs_svc_fail_field(ctx, XS_ENOTFOUND, "organisation_id", "no organisation %s", org);
    }

    char *state = NULL, *verifier = NULL, *challenge = NULL, *sealed = NULL, *url = NULL;
    xs_xero *x = ctx->wstate;
    json_t *out = NULL;
    if ((e = xs_crypto_random_token(32, &state)) != XS_OK ||
        (e = xs_crypto_random_token(48, &verifier)) != XS_OK ||
        (e = xs_xero_pkce_challenge(verifier, &challenge)) != XS_OK) {
        goto fail;
    }
    char hash[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(state, strlen(state), hash);
    char aad[128];
    auth_aad(aad, sizeof(aad), "state", hash, "verifier");
    if ((e = auth_seal(&st->keys, verifier, aad, &sealed)) != XS_OK) {
        goto fail;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)st->state_ttl_ms);
    e = xs_pg_q(ctx->pg, &r,
                "INSERT INTO sync.oauth_states (state_hash, organisation_id, code_verifier_sealed, "
                "key_id, redirect_uri, scopes, expires_at) VALUES ($1, $2, $3, $4, $5, "
                "string_to_array($6, ' '), now() + $7::bigint * interval '1 millisecond') "
                "RETURNING sync.iso(expires_at)",
                hash, org, sealed, st->keys.current.id, redirect, scopes, ttl);
    if (e != XS_OK) {
        xs_svc_fail(ctx, e, true, "cannot store the OAuth state: %s", xs_pg_error(ctx->pg));
        goto fail;
    }
    char expires[XS_TIME_ISO_MAX];
    snprintf(expires, sizeof(expires), "%s", xs_pg_res_get(r, 0, 0));
    xs_pg_res_free(r);
    /* Expired states are kept a day (so a late callback is told "expired", not "unknown"). */
    xs_pg_q0(ctx->pg, NULL,
             "DELETE FROM sync.oauth_states WHERE expires_at < now() - interval '1 day'");
    if ((e = xs_xero_authorize_url(x, redirect, scopes, state, challenge, &url)) != XS_OK) {
        goto fail;
    }
    out = json_pack("{s:s, s:s, s:s, s:s}", "url", url, "state_expires_at", expires, "redirect_uri",
                    redirect, "scopes", scopes);
    if (out == NULL) {
        e = XS_ENOMEM;
        goto fail;
    }
    xs_log_info(ctx->proc->log, "auth.authorize", "{s:s, s:s}", "organisation_id", org,
                "expires_at", expires);
    *reply = out;
    e = XS_OK;
fail:
    auth_secret_free(state);
    auth_secret_free(verifier);
    free(challenge);
    free(sealed);
    free(url);
    return e;
}

/* The pending authorisation a callback consumes. */
typedef struct pending {
    char org[40];
    char redirect[2049];
    char *verifier; /* new */
} pending;

/* consume_state finds the state, refuses it when unknown, used or expired, and marks it used
 * (committed at once: a state works once, even if what follows fails). */
static xs_err consume_state(xs_svc_ctx *ctx, const char *state, pending *p)
{
    auth_state *st = ctx->state;
    char hash[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(state, strlen(state), hash);
    xs_err e = xs_pg_begin(ctx->pg);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    xs_pg_res *r = NULL;
    e = xs_pg_q(ctx->pg, &r,
                "SELECT organisation_id, code_verifier_sealed, key_id, redirect_uri, "
                "used_at IS NOT NULL, expires_at <= now() FROM sync.oauth_states "
                "WHERE state_hash = $1 FOR UPDATE",
                hash);
    if (e != XS_OK) {
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail_field(ctx, XS_EINVAL, "state",
                                 "unknown state: start again with POST /v1/connections/authorize");
    }
    bool used = false, expired = false;
    xs_pg_res_bool(r, 0, 4, &used);
    xs_pg_res_bool(r, 0, 5, &expired);
    if (used || expired) {
        xs_pg_res_free(r);
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail_field(ctx, XS_EINVAL, "state",
                                 "this state was %s: start again with POST "
                                 "/v1/connections/authorize",
                                 used ? "already used" : "made too long ago and has expired");
    }
    snprintf(p->org, sizeof(p->org), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(p->redirect, sizeof(p->redirect), "%s", xs_pg_res_get(r, 0, 3));
    char aad[128];
    auth_aad(aad, sizeof(aad), "state", hash, "verifier");
    e = auth_open(&st->keys, xs_pg_res_get(r, 0, 2), xs_pg_res_get(r, 0, 1), aad, &p->verifier);
    xs_pg_res_free(r);
    if (e != XS_OK) {
        xs_pg_rollback(ctx->pg);
        return xs_svc_fail(ctx, e, false,
                           "the stored PKCE verifier cannot be opened (wrong XS_TOKEN_KEY, or "
                           "the row was altered)");
    }
    e = xs_pg_q(ctx->pg, NULL, "UPDATE sync.oauth_states SET used_at = now() WHERE state_hash = $1",
                hash);
    if (e == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    if (e != XS_OK) {
        xs_pg_rollback(ctx->pg);
        auth_secret_free(p->verifier);
        p->verifier = NULL;
        return xs_svc_fail(ctx, e, true, "database: %s", xs_pg_error(ctx->pg));
    }
    return XS_OK;
}

/* store_grant stores the tokens and one connection per tenant, in one transaction, and
 * builds the reply's connection list into *list (new). */
static xs_err store_grant(xs_svc_ctx *ctx, const pending *p, const xs_xero_tokens *t,
                          const json_t *tenants, json_t **list)
{
    auth_state *st = ctx->state;
    char *sealed_a = NULL, *sealed_r = NULL;
    xs_pg_res *r = NULL;
    json_t *out = json_array();
    xs_err e = xs_pg_begin(ctx->pg);
    if (e != XS_OK || out == NULL) {
        goto fail;
    }
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)t->expires_in_s);
    e = xs_pg_q(ctx->pg, &r,
                "INSERT INTO sync.grants (organisation_id, xero_user_id, auth_event_id, scopes, "
                "access_expires_at, last_refresh_at) VALUES ($1, $2, $3, string_to_array($4, ' '), "
                "now() + $5::bigint * interval '1 second', now()) RETURNING id",
                p->org, t->xero_user_id, t->auth_event_id, t->scope, exp);
    if (e != XS_OK) {
        goto fail;
    }
    char grant[40];
    snprintf(grant, sizeof(grant), "%s", xs_pg_res_get(r, 0, 0));
    xs_pg_res_free(r);
    r = NULL;
    char aad_a[128], aad_r[128];
    auth_aad(aad_a, sizeof(aad_a), "grant", grant, "access");
    auth_aad(aad_r, sizeof(aad_r), "grant", grant, "refresh");
    if ((e = auth_seal(&st->keys, t->access_token, aad_a, &sealed_a)) != XS_OK ||
        (e = auth_seal(&st->keys, t->refresh_token, aad_r, &sealed_r)) != XS_OK) {
        goto fail;
    }
    e = xs_pg_q(ctx->pg, NULL,
                "UPDATE sync.grants SET access_token_sealed = $2, refresh_token_sealed = $3, "
                "key_id = $4 WHERE id = $1",
                grant, sealed_a, sealed_r, st->keys.current.id);
    if (e != XS_OK) {
        goto fail;
    }
    size_t i;
    json_t *c;
    json_array_foreach(tenants, i, c)
    {
        const char *tid = xs_json_str_or(c, "tenantId", "");
        const char *name = xs_json_str_or(c, "tenantName", NULL);
        const char *type = xs_json_str_or(c, "tenantType", NULL);
        const char *xcid = xs_json_str_or(c, "id", "");
        e = xs_pg_q(ctx->pg, &r,
                    "INSERT INTO sync.connections (organisation_id, tenant_id, tenant_name, "
                    "tenant_type, xero_connection_id, grant_id) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT (organisation_id, tenant_id) DO UPDATE SET tenant_name = "
                    "EXCLUDED.tenant_name, tenant_type = EXCLUDED.tenant_type, "
                    "xero_connection_id = EXCLUDED.xero_connection_id, grant_id = "
                    "EXCLUDED.grant_id, status = 'active', last_error = NULL, last_error_at = "
                    "NULL, disconnected_at = NULL, connected_at = now() "
                    "RETURNING id, status, (xmax = 0)",
                    p->org, tid, name, type, xcid, grant);
        if (e != XS_OK) {
            goto fail;
        }
        bool created = false;
        xs_pg_res_bool(r, 0, 2, &created);
        json_t *row = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:b}", "id", xs_pg_res_get(r, 0, 0),
                                "tenant_id", tid, "tenant_name", name, "tenant_type", type,
                                "status", xs_pg_res_get(r, 0, 1), "created", created);
        xs_pg_res_free(r);
        r = NULL;
        if (row == NULL || json_array_append_new(out, row) != 0) {
            e = XS_ENOMEM;
            goto fail;
        }
    }
    if ((e = xs_pg_commit(ctx->pg)) != XS_OK) {
        goto fail;
    }
    free(sealed_a);
    free(sealed_r);
    *list = out;
    return XS_OK;
fail:
    xs_pg_res_free(r);
    if (e == XS_EDB || e == XS_ECLOSED || e == XS_EEXIST || e == XS_ECONFLICT) {
        xs_svc_fail(ctx, e, true, "cannot store the connection: %s", xs_pg_error(ctx->pg));
    }
    xs_pg_rollback(ctx->pg);
    free(sealed_a);
    free(sealed_r);
    json_decref(out);
    return e != XS_OK ? e : XS_ENOMEM;
}

xs_err auth_handle_callback(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    const char *state = xs_json_str_or(req->body, "state", "");
    const char *code = xs_json_str_or(req->body, "code", NULL);
    const char *error = xs_json_str_or(req->body, "error", NULL);
    pending p = {0};
    xs_err e = consume_state(ctx, state, &p);
    if (e != XS_OK) {
        return e;
    }
    xs_xero *x = ctx->wstate;
    xs_xero_tokens t = {0};
    json_t *tenants = NULL, *list = NULL;
    if (error != NULL) {
        e = xs_svc_fail(ctx, XS_EAUTH, false, "Xero did not authorise the connection: %s%s%s",
                        error, xs_json_str_or(req->body, "error_description", NULL) ? ": " : "",
                        xs_json_str_or(req->body, "error_description", ""));
        goto out;
    }
    if (code == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "code", "the callback has no code");
        goto out;
    }
    xs_xero_call call;
    char oauth_error[64];
    e = xs_xero_token_code(x, code, p.verifier, p.redirect, &t, oauth_error, &call);
    auth_audit(ctx, NULL, NULL, &call);
    if (e == XS_EAUTH) {
        e = xs_svc_fail(ctx, XS_EAUTH, false,
                        "Xero refused the authorization code (%s): start again with POST "
                        "/v1/connections/authorize",
                        oauth_error);
        goto out;
    }
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, XS_EUNAVAILABLE, xs_xero_retryable(e, call.status),
                        "the token exchange with Xero failed: %s", call.error);
        goto out;
    }
    if (t.refresh_token == NULL) {
        e = xs_svc_fail(ctx, XS_EAUTH, false,
                        "Xero granted no refresh token: the scopes must include offline_access");
        goto out;
    }
    e = xs_xero_connections(x, t.access_token, t.auth_event_id, &tenants, &call);
    auth_audit(ctx, NULL, NULL, &call);
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, e == XS_EAUTH ? XS_EAUTH : XS_EUNAVAILABLE, false,
                        "cannot list the tenants of this consent (GET /connections): %s",
                        call.error);
        goto out;
    }
    if (json_array_size(tenants) == 0) {
        e = xs_svc_fail(ctx, XS_EAUTH, false,
                        "the consent connected no Xero organisation: choose at least one");
        goto out;
    }
    if ((e = store_grant(ctx, &p, &t, tenants, &list)) != XS_OK) {
        goto out;
    }
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        auth_publish_status(ctx, xs_json_str_or(c, "id", ""), p.org,
                            xs_json_str_or(c, "tenant_id", ""), "active", "connected");
    }
    xs_log_info(ctx->proc->log, "auth.connected", "{s:s, s:I}", "organisation_id", p.org, "tenants",
                (json_int_t)json_array_size(list));
    *reply = json_pack("{s:s, s:o}", "organisation_id", p.org, "connections", list);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    auth_secret_free(p.verifier);
    xs_xero_tokens_fini(&t);
    json_decref(tenants);
    return e;
}
