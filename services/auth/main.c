/*
 * xs-auth: the auth service. OAuth 2.0 + PKCE connections to Xero, the token store sealed
 * with AES-256-GCM, and live access tokens for the other services, refreshed once across
 * every replica. `xs-auth rotate-key` re-seals the store under a new key.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "xs/json.h"

/* check_config refuses a missing or malformed token key before anything else starts. */
static xs_err check_config(const xs_proc *proc, char *err)
{
    auth_keys k;
    xs_err e = auth_keys_load(proc->cfg, &k, err);
    xs_crypto_wipe(&k, sizeof(k));
    return e;
}

static xs_err init(const xs_proc *proc, xs_pg *pg, void **state)
{
    auth_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return XS_ENOMEM;
    }
    const xs_config *cfg = proc->cfg;
    char err[XS_CONFIG_ERR_MAX];
    xs_err e = auth_keys_load(cfg, &st->keys, err);
    if (e == XS_OK) {
        e = auth_keys_check(&st->keys, pg, err);
    }
    if (e != XS_OK) {
        xs_log_error(proc->log, "config.invalid", "{s:s}", "error", err);
        xs_crypto_wipe(st, sizeof(*st));
        free(st);
        return e;
    }
    st->xero = (xs_xero_opts){.login_url = xs_config_str(cfg, "XS_XERO_LOGIN_URL"),
                              .identity_url = xs_config_str(cfg, "XS_XERO_IDENTITY_URL"),
                              .api_url = xs_config_str(cfg, "XS_XERO_API_URL"),
                              .client_id = xs_config_str(cfg, "XS_XERO_CLIENT_ID"),
                              .client_secret = xs_config_str(cfg, "XS_XERO_CLIENT_SECRET"),
                              .timeout_ms = xs_config_int(cfg, "XS_XERO_TIMEOUT"),
                              .log = proc->log};
    st->scopes = xs_config_str(cfg, "XS_OAUTH_SCOPES");
    st->xpm_scopes = xs_config_str(cfg, "XS_OAUTH_XPM_SCOPES");
    st->redirects = xs_config_str(cfg, "XS_OAUTH_REDIRECT_URIS");
    st->state_ttl_ms = xs_config_int(cfg, "XS_OAUTH_STATE_TTL");
    st->refresh_margin_ms = xs_config_int(cfg, "XS_TOKEN_REFRESH_MARGIN");
    st->lock_wait_ms = xs_config_int(cfg, "XS_TOKEN_LOCK_WAIT");
    st->log = proc->log;
    xs_log_info(proc->log, "auth.keys", "{s:s, s:i}", "key_id", st->keys.current.id, "old_keys",
                st->keys.nold);
    *state = st;
    return XS_OK;
}

static void fini(void *state)
{
    auth_state *st = state;
    xs_crypto_wipe(&st->keys, sizeof(st->keys));
    free(st);
}

/* worker_init gives each worker its own Xero client (its own keep-alive connections). */
static xs_err worker_init(void *state, void **wstate)
{
    return xs_svc_xero_worker(&((auth_state *)state)->xero, wstate);
}

void auth_audit(xs_svc_ctx *ctx, const char *conn, const char *tenant, const xs_xero_call *call)
{
    xs_audit_ctx who = {.connection_id = conn, .tenant_id = tenant};
    xs_svc_count_call(ctx, call);
    if (xs_audit_call(ctx->pg, &who, call) != XS_OK) {
        xs_log_warn(ctx->proc->log, "audit.failed", "{s:s, s:s}", "path", call->path, "error",
                    xs_pg_error(ctx->pg));
    }
}

void auth_publish_status(xs_svc_ctx *ctx, const char *conn, const char *org, const char *tenant,
                         const char *status, const char *reason)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "connection", conn, "organisation_id",
                             org, "tenant_id", tenant, "status", status, "reason", reason);
    xs_svc_publish(ctx, "event.connection", conn, body);
}

static const xs_svc_route routes[] = {
    {"auth.authorize", auth_handle_authorize},   {"auth.callback", auth_handle_callback},
    {"token.get", auth_handle_token_get},        {"auth.check", auth_handle_check},
    {"auth.disconnect", auth_handle_disconnect},
};

static const xs_svc_def def = {
    .name = "xs-auth",
    .service = "auth",
    .procmask = XS_PROC_AUTH,
    .domain = XS_BUS_DOMAIN_AUTH,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-auth: OAuth 2.0 + PKCE connections to Xero, the token store (sealed with "
             "XS_TOKEN_KEY), and live access tokens for the other services, refreshed once per "
             "connection across every replica. It dials the orchestrator's bus (XS_BUS_URL). "
             "`xs-auth rotate-key` re-seals every stored token under XS_TOKEN_KEY. Start as many "
             "replicas as you like; stop with SIGTERM.",
    .check_config = check_config,
    .init = init,
    .fini = fini,
    .worker_init = worker_init,
    .worker_fini = xs_svc_xero_worker_fini,
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "rotate-key") == 0) {
        return auth_rotate_main(argc - 1, argv + 1);
    }
    return xs_svc_main(&def, argc, argv);
}
