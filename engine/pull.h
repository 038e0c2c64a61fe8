/*
 * engine/pull.h: the sync.pull handler. A step's pages, one after another (the next fetched
 * on the read-ahead thread while one is written), until its page budget, the end of the
 * list, or a failure; the reply with its counts, cursor and the last call's rate-limit
 * headers. It holds only the request; every stage is another room's.
 */
#ifndef XS_ENGINE_PULL_H
#define XS_ENGINE_PULL_H

#include "engine/domain.h"

/* xs_domain_pull serves sync.pull (proto/README.md). */
xs_err xs_domain_pull(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

#endif
