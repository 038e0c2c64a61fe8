/*
 * auth.h: the auth service's parts. xs-auth holds the OAuth 2.0 connections: it starts and
 * finishes the consent flow (connect.c), keeps the tokens sealed at rest (keys.c), hands a
 * live access token to whoever asks, refreshing it once across every replica (tokens.c),
 * disconnects (disconnect.c), and re-seals every token under a new key (rotate.c).
 */
#ifndef AUTH_H
#define AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "xs/audit.h"
#include "xs/crypto.h"
#include "engine/svc.h"
#include "xs/xero.h"

#define AUTH_MAX_OLD_KEYS 8

/* The sealing keys: the current one seals, every one opens what it sealed. */
typedef struct auth_keys {
    xs_aead_key current;
    xs_aead_key old[AUTH_MAX_OLD_KEYS];
    int nold;
} auth_keys;

/* The service's state, made once at start and read-only afterwards. */
typedef struct auth_state {
    auth_keys keys;
    xs_xero_opts xero;      /* strings borrowed from the configuration */
    const char *scopes;     /* default scopes */
    const char *xpm_scopes; /* added for a connection that syncs XPM jobs */
    const char *redirects;  /* comma-separated allowed redirect URIs; the first is default */
    int64_t state_ttl_ms;
    int64_t refresh_margin_ms;
    int64_t lock_wait_ms;
    xs_log *log;
} auth_state;

/* --- keys.c --- */

/* auth_keys_load reads XS_TOKEN_KEY and XS_TOKEN_OLD_KEYS into k. XS_ECONFIG with a line
 * naming the variable in err (XS_CONFIG_ERR_MAX bytes) when one is not the base64 of 32
 * bytes. */
xs_err auth_keys_load(const xs_config *cfg, auth_keys *k, char *err);

/* auth_keys_find returns the key with id, or NULL. */
const xs_aead_key *auth_keys_find(const auth_keys *k, const char *id);

/* auth_keys_check refuses (XS_ECONFIG, err naming the key ids) a database holding tokens
 * sealed with a key that is neither current nor old. */
xs_err auth_keys_check(const auth_keys *k, xs_pg *pg, char *err);

/* auth_seal seals the string pt with the current key, bound to `aad`, into *hex: the
 * bytea text form "\x..." PostgreSQL takes as a parameter (new). */
xs_err auth_seal(const auth_keys *k, const char *pt, const char *aad, char **hex);

/* auth_open opens a sealed value read back from PostgreSQL (bytea text form "\x...") with
 * the key named key_id, checking it is bound to aad, into *pt (new; wipe and free with
 * auth_secret_free). XS_ECRYPTO when the key is unknown or the value was tampered with. */
xs_err auth_open(const auth_keys *k, const char *key_id, const char *hex, const char *aad,
                 char **pt);

/* auth_secret_free wipes and frees s; NULL accepted. */
void auth_secret_free(char *s);

/* auth_aad writes the additional data that binds a sealed value to its row:
 * "xs:grant:<id>:access", "xs:grant:<id>:refresh" or "xs:state:<hash>:verifier". */
void auth_aad(char *buf, size_t cap, const char *kind, const char *id, const char *what);

/* --- xero calls, audited --- */

/* Each worker's Xero client is ctx->wstate (an xs_xero, made by worker_init in main.c). */

/* auth_audit records call in sync.api_calls for connection conn (may be NULL), logging a
 * warning when it cannot: the audit never fails the work it describes. */
void auth_audit(xs_svc_ctx *ctx, const char *conn, const char *tenant, const xs_xero_call *call);

/* auth_publish_status publishes event.connection for connection id. */
void auth_publish_status(xs_svc_ctx *ctx, const char *conn, const char *org, const char *tenant,
                         const char *status, const char *reason);

/* --- connect.c --- */
xs_err auth_handle_authorize(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);
xs_err auth_handle_callback(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

/* --- tokens.c --- */

/* A live token for one connection. */
typedef struct auth_token {
    char *access_token; /* new; auth_secret_free */
    char tenant_id[40];
    char organisation_id[40];
    char grant_id[40];
    char status[16]; /* the connection's: active, or paused (still connected) */
    char expires_at[XS_TIME_ISO_MAX];
    bool refreshed;
} auth_token;

/* auth_token_get returns a token valid for at least min_valid_ms (refreshing when needed or
 * when force is set) for connection conn. Errors are described in ctx (xs_svc_fail). */
xs_err auth_token_get(xs_svc_ctx *ctx, const char *conn, int64_t min_valid_ms, bool force,
                      auth_token *out);

/* auth_mark_needs_reauth sets the grant (and its active connections) to needs_reauth with
 * reason, and publishes the change. */
void auth_mark_needs_reauth(xs_svc_ctx *ctx, const char *grant, const char *reason);

xs_err auth_handle_token_get(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);
xs_err auth_handle_check(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

/* --- disconnect.c --- */
xs_err auth_handle_disconnect(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

/* --- rotate.c --- */

/* auth_rotate_main is `xs-auth rotate-key`: re-seal every stored token and pending verifier
 * under XS_TOKEN_KEY; returns the exit code. */
int auth_rotate_main(int argc, char **argv);

#endif
