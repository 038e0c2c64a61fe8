/* engine.h: the executors (engine.c), which run the steps of runs.c within the rate budget.
 * Steps made elsewhere wake them through orch_executors_wake (worker.h). */
#ifndef ORCH_ENGINE_H
#define ORCH_ENGINE_H

#include "orch.h"
#include "xs/err.h"

/* orch_engine_start starts XS_EXECUTORS executors after making steps left running by a
 * stopped orchestrator runnable again; orch_engine_stop joins them (o->stop set first). */
xs_err orch_engine_start(orch *o);
void orch_engine_stop(orch *o);

#endif
