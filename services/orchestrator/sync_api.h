/* sync_api.h: the REST routes of syncing (sync_api.c): runs, syncs, stats, conflicts,
 * settings, and the host application's writes of local records. */
#ifndef ORCH_SYNC_API_H
#define ORCH_SYNC_API_H

#include "rest.h"

/* The routes (docs/API.md). orch_api_local_write is the one route of the host application's
 * records: POST /v1/{contacts,invoices,payments} creates one, PATCH /v1/{...}/{id} updates
 * one, the entity read from the route's pattern. */
orch_route orch_api_sync, orch_api_sync_entity, orch_api_runs, orch_api_run, orch_api_run_cancel,
    orch_api_stats, orch_api_conflicts, orch_api_conflict_resolve, orch_api_settings_get,
    orch_api_settings_put, orch_api_local_write;

#endif
