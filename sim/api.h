/*
 * api.h: the Accounting API: GET lists and records, PUT/POST batches with their item
 * errors, Idempotency-Key replays, duplicate-creation fingerprints. Owns each tenant's
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

#endif
