/*
 * identity.h: Xero's identity service and connections: authorize, token (codes, refresh
 * rotation with a grace period), revocation, GET/DELETE /connections, and the Bearer and
 * tenant checks accounting calls pass first. Owns the codes, grants, tokens and connections
 * in the context (under id_mu).
 */
#ifndef XS_SIM_IDENTITY_H
#define XS_SIM_IDENTITY_H

#include "reply.h"

/* sim__h_authorize serves GET /identity/connect/authorize: it validates the request, then
 * shows a browser (Accept naming text/html) the consent page and answers any other client
 * by consenting at once and redirecting (world_lock held for reading). */
void sim__h_authorize(sim_call *c);
/* sim__h_authorize_consent serves POST /identity/connect/authorize/consent, the consent
 * page's form: it validates the request again, then grants the tenants ticked (Allow),
 * shows the page again with an error (Allow with none ticked) or redirects with
 * access_denied (Cancel) (world_lock held for reading). */
void sim__h_authorize_consent(sim_call *c);
/* sim__h_token serves POST /connect/token. */
void sim__h_token(sim_call *c);
/* sim__h_revoke serves POST /connect/revocation. */
void sim__h_revoke(sim_call *c);
/* sim__h_connections serves GET /connections. */
void sim__h_connections(sim_call *c);
/* sim__h_connection_delete serves DELETE /connections/{id}. */
void sim__h_connection_delete(sim_call *c, const char *id);
/* sim__auth_bearer checks the Authorization header; on success it fills c->grant and
 * c->scope and returns true, otherwise it has replied 401. */
bool sim__auth_bearer(sim_call *c);
/* sim__auth_tenant checks xero-tenant-id against the caller's connections and sets
 * c->tenant (world_lock held for reading); otherwise it replies 403 and returns false. */
bool sim__auth_tenant(sim_call *c);
/* sim__scope_has tells whether the space-separated scope list holds any of the names in
 * the NULL-terminated list. */
bool sim__scope_has(const char *scope, const char *const *any);
/* sim__revoke_all revokes every grant of the test user and removes its connections
 * (id_mu taken inside). */
void sim__revoke_all(sim *s);
/* sim__identity_json describes grants and connections for /_sim (new). */
json_t *sim__identity_json(sim *s);
/* sim__identity_reset drops every code, token, grant and connection (id_mu taken inside). */
void sim__identity_reset(sim *s);
/* sim__expire_access makes every access token expired now (id_mu inside). */
void sim__expire_access(sim *s);

#endif
