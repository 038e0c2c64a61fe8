/*
 * engine/resolve.h: the two handlers a person or the host application drives. sync.resolve
 * settles a conflict held for a person (keep local, keep Xero, a merge, or ignore it) and queues
 * what must reach Xero; local.upsert validates and writes one record of the host application
 * through the REST API. Neither calls Xero.
 */
#ifndef XS_ENGINE_RESOLVE_H
#define XS_ENGINE_RESOLVE_H

#include "engine/domain.h"

/* xs_domain_resolve serves sync.resolve and xs_domain_local_upsert local.upsert
 * (proto/README.md). */
xs_err xs_domain_resolve(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);
xs_err xs_domain_local_upsert(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

#endif
