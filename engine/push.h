/*
 * engine/push.h: the sync.push handler. Decodes the request once (step_req and push_ask),
 * reads the stored request of a retried step or builds a fresh batch, sends it, records the
 * reply, and answers with counts, the scan's position and the records left for the next step.
 * It holds only the request; every stage is another room's.
 */
#ifndef XS_ENGINE_PUSH_H
#define XS_ENGINE_PUSH_H

#include "engine/domain.h"

/* xs_domain_push serves sync.push (proto/README.md). */
xs_err xs_domain_push(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

#endif
