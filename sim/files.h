/*
 * files.h: the Files API (files.xro/1.0): each tenant's folders (the Inbox from the start),
 * files with their bytes, and the files' associations with the tenant's accounting records.
 * Owns each tenant's Files state (sim_tenant.files, under the tenant's lock).
 */
#ifndef XS_SIM_FILES_H
#define XS_SIM_FILES_H

#include "reply.h"

/* Where the Files API is served (Xero: https://api.xero.com/files.xro/1.0/). */
#define SIM_FILES_PREFIX "/files.xro/1.0"

/* sim__h_files serves SIM_FILES_PREFIX<rest> (rest starts after the prefix), in the order
 * the Accounting API does: bearer token, tenant, scope, rate limits, faults and latency,
 * Idempotency-Key (writes), then the request. The caller (server.c) holds world_lock for
 * reading. */
void sim__h_files(sim_call *c, const char *rest);

/* sim__files_init gives a new tenant (not yet shared) its Files state: an empty Inbox.
 * XS_ENOMEM. */
xs_err sim__files_init(sim *s, sim_tenant *t);

/* sim__files_json describes every folder and file of t, with each file's size, type, the
 * SHA-256 of its bytes and its associations, for /_sim/files (new). The caller holds t's
 * lock for reading. */
json_t *sim__files_json(sim_tenant *t);

#endif
