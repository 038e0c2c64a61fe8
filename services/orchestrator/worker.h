/*
 * worker.h: what the orchestrator's worker threads share, below every module that runs one
 * (engine.c's executors, sched.c's scheduler and realtime push) or wakes the executors
 * (runs.c, sched.c, sync_api.c): a thread's own database connection, and the signal that
 * steps became ready. It includes none of those modules.
 */
#ifndef ORCH_WORKER_H
#define ORCH_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "orch.h"
#include "xs/pg.h"

/* orch_pg_open (re)opens a worker thread's own connection *pg (the old one closed) as
 * application app, LISTENing on channel unless it is NULL. False, after sleeping retry_ms,
 * when the database cannot be reached: the caller tries again on its next turn. */
bool orch_pg_open(orch *o, xs_pg **pg, const char *app, const char *channel, int64_t retry_ms);

/* orch_executors_wake tells the executors (engine.c) that steps became ready: they look for
 * one at once instead of at their next turn. */
void orch_executors_wake(orch *o);

#endif
