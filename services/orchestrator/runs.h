/* runs.h: runs and their phases and steps, in PostgreSQL (runs.c). */
#ifndef ORCH_RUNS_H
#define ORCH_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "orch.h"
#include "xs/err.h"
#include "xs/pg.h"

/* orch_run_create makes a run of connection conn in the caller's open transaction: mode
 * "full", "incremental", "push" or "entity"; trigger "api", "schedule", "realtime", ...;
 * entities (array of names, NULL: the connection's enabled ones); ids (for push: {entity:
 * [local ids]}; for entity: {"entity", "local_id" or "xero_id"}, or {"fetch": {entity: [Xero
 * ids]}}, the records Xero named, of the enabled entities (XS_ENOTFOUND when none is); else
 * NULL). The first phase
 * starts at once. The run's id goes to run_id. */
xs_err orch_run_create(orch *o, xs_pg *pg, const char *conn, const char *mode, const char *trigger,
                       const json_t *entities, const json_t *ids, char run_id[40]);

/* orch_run_absorb keeps a connection to one waiting run of a kind: conn's oldest run of mode
 * and trigger that has not started (none of its steps ever claimed; they are locked to be
 * sure) is deleted, in the caller's transaction, and the ids of its phases of op ("push":
 * local ids, "fetch": Xero ids) are merged into ids ({entity: [ids]}, lists replaced by
 * copies), so the run the caller makes next does its work too, instead of queueing behind it.
 * XS_OK when there was none. */
xs_err orch_run_absorb(orch *o, xs_pg *pg, const char *conn, const char *mode, const char *trigger,
                       const char *op, json_t *ids);

/* A step handed to an executor. */
typedef struct orch_step {
    int64_t id;
    char sid[24];
    char run[40], conn[40], tenant[40], org[40];
    char entity[32], kind[16];
    int64_t attempts;
    int priority;
    int64_t permits;     /* of the rate budget, one per call it may make */
    int64_t acquired_ms; /* when they were taken (monotonic) */
    bool reread;         /* a push that reads what it updates again first (two permits) */
    bool defer_partial;  /* records of its phase wait to go in a step of their own (again) */
    json_t *input;       /* new */
    json_t *settings;    /* the connection's settings, new */
} orch_step;

/* orch_step_finish records what a step's execution came to, in one transaction with its
 * run locked: outcome "done" (reply is the domain service's reply body), "retry" (after
 * retry_ms, or the back-off when 0), "failed", or "fatal" (the run cannot go on: the
 * connection needs a person). New steps, the next phase, the run's end follow. */
xs_err orch_step_finish(orch *o, xs_pg *pg, const orch_step *s, const char *outcome,
                        const json_t *reply, const char *error, int64_t retry_ms);

/* orch_ids_merge appends to the array `to` the strings of `from` it does not hold yet, and
 * returns how many. */
int orch_ids_merge(json_t *to, const json_t *from);

/* How a run ended, when it did (ended false otherwise): what the metrics count once the
 * transaction that ended it has committed (orch_run_end_count). */
typedef struct orch_run_end {
    bool ended;
    char mode[16], trigger[16], status[16];
} orch_run_end;

/* orch_run_end_count counts end in the metrics when the run ended. */
void orch_run_end_count(orch *o, const orch_run_end *end);

/* orch_run_cancel asks run to stop, in the caller's open transaction (which it locks the run's
 * row in): its pending steps fail at once and none starts any more; when none of them runs,
 * the run ends canceled now (the records its pushes were to send back in the outbox), else
 * *waiting is set and it ends so once the step under way has finished (orch_step_finish).
 * status receives the run's status after, *end how it ended when it did. XS_ENOTFOUND when
 * there is no such run, XS_ESTATE when it had ended already (status: how). */
xs_err orch_run_cancel(xs_pg *pg, const char *run, bool *waiting, char status[16],
                       orch_run_end *end);

/* orch_runs_cancel_connection cancels every run of connection conn not ended yet (a
 * disconnected connection's: orch_run_cancel, each in its own transaction on pg). */
xs_err orch_runs_cancel_connection(orch *o, xs_pg *pg, const char *conn);

/* orch_recover, for the shards listed in shards (an int array literal) that holder (this
 * orchestrator's lease id, lease.h) holds, makes runnable again the steps running since
 * inflight_ms or longer (no orchestrator runs one that long: their holder died or gave the
 * shard back), fails those of runs whose cancel was asked for that a previous holder left,
 * and ends the runs whose cancel was asked for that have no step running (orch_run_cancel). */
xs_err orch_recover(orch *o, xs_pg *pg, const char *holder, const char *shards,
                    int64_t inflight_ms);

#endif
