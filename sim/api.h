/*
 * api.h: the Accounting API: GET lists and records, PUT/POST batches with their item
 * errors, Idempotency-Key replays, duplicate-creation fingerprints, and the call steps the
 * Files API shares with it (faults, idempotency, the end of a call). Owns each tenant's
 * idempotency cache (under idem_mu).
 */
#ifndef XS_SIM_API_H
#define XS_SIM_API_H

#include "kinds.h"

/* sim__h_accounting serves /api.xro/2.0/<rest> (rest starts after the prefix). */
void sim__h_accounting(sim_call *c, const char *rest);
/* sim__batch_init / fini prepare a batch context. */
xs_err sim__batch_init(sim_batch *b, sim_call *c, sim_tenant *t, bool user);
/* sim__batch_fini frees a batch context. */
void sim__batch_fini(sim_batch *b);
/* sim__write_items runs a PUT/POST body against a kind (tenant write lock held); it sets the
 * call's reply. existing_id: the {id} from the path, or NULL. */
void sim__write_items(sim_call *c, sim_batch *b, const sim_kind_ops *ops, json_t *body, bool is_put,
                      const char *existing_id, bool summarize);
/* sim__list serves a GET list or GET by id (tenant read lock held by the caller). */
void sim__list(sim_call *c, sim_tenant *t, const sim_kind_ops *ops, const char *id);
/* sim__idem_free frees one idempotency record (a tenant's idem map value). */
void sim__idem_free(void *p);

/* The steps every Xero API call (Accounting, Files) shares after authorisation and rate
 * limits, in this order: sim__api_admit, sim__api_faults, sim__idem_open (writes), the work,
 * sim__idem_close, sim__api_finish. */

/* sim__api_admit checks the bearer token (401), the xero-tenant-id (403, else c->tenant is
 * set), that the token holds one of scopes (401 AuthorizationUnsuccessful) and the rate
 * limits (429): false when the call is over. The caller holds world_lock for reading. */
bool sim__api_admit(sim_call *c, const char *const *scopes);
/* sim__api_faults picks the call's injected fault and carries out those that end the call
 * before it is applied (500, 503, revoked, hang, reset, 429; applied_5xx on a GET, which has
 * nothing to apply), then sleeps the injected latency. It returns false when the call is
 * over. *nil_id tells whether a nil_id fault was drawn (c->fault is then NONE: only a
 * write with items can act on it). */
bool sim__api_faults(sim_call *c, bool is_get, const char *body, size_t blen, bool *nil_id);
/* sim__idem_open registers the request's Idempotency-Key, when it has one, for tenant t
 * (body hashed as bytes): false when the call is over (a bad key, a key in use by another
 * request or still in progress, or a replay, whose reply is set). *on tells whether
 * sim__idem_close must follow. A slow fault then waits hang_ms, the key held. */
bool sim__idem_open(sim_call *c, sim_tenant *t, const char *body, size_t blen, bool *on);
/* sim__idem_close records the call's reply under its key; keep false (or a 5xx reply)
 * forgets the key instead. */
void sim__idem_close(sim_call *c, sim_tenant *t, bool keep);
/* sim__api_finish ends a Xero API call: the gateway's 504 for an applied_5xx, the rate-limit
 * headers, and the release of its in-flight count. */
void sim__api_finish(sim_call *c);

#endif
