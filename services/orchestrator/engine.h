/* engine.h: the executors (engine.c), which run the steps of runs.c within the rate budget.
 * Steps made elsewhere wake them through orch_executors_wake (worker.h). */
#ifndef ORCH_ENGINE_H
#define ORCH_ENGINE_H

#include <jansson.h>

#include "orch.h"
#include "xs/err.h"

/* orch_engine_start makes the budget, takes this orchestrator's shards (lease.h) and starts
 * XS_EXECUTORS executors; orch_engine_stop joins them (o->stop set first) and gives the
 * shards back. */
xs_err orch_engine_start(orch *o);
void orch_engine_stop(orch *o);

/* orch_engine_budget_json describes tenant's budget now (new; orch_budget_json), for a
 * connection's stats: this orchestrator's own when it holds the tenant's shard, otherwise one
 * counted afresh from the audit and the day block kept, as the holder seeded it (without the
 * holder's calls in flight). NULL when out of memory. pg is borrowed. */
json_t *orch_engine_budget_json(orch *o, xs_pg *pg, const char *tenant);

#endif
