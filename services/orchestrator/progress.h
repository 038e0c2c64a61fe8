/* progress.h: how far a run has come, entity by entity (progress.c): what each finished step
 * adds to its phase's tally in the run's params, and the `progress` object of GET /v1/runs
 * made from it. Pure: no database, no context. */
#ifndef ORCH_PROGRESS_H
#define ORCH_PROGRESS_H

#include <stdbool.h>

#include <jansson.h>

/* orch_progress_note adds to params.progress[phase] what a step of kind ("pull", "fetch",
 * "push", "scan", "lookup") with input (borrowed) and the domain service's reply (borrowed)
 * did: records done (a pull's fetched, a fetch's ids, a push window's consumed, a scan's
 * scan_done) and, when the service said, the records of the phase left after it. */
void orch_progress_note(json_t *params, int phase, const char *kind, const json_t *input,
                        const json_t *reply);

/* orch_progress_json makes a run's progress (new): {entity: {"phase", "state", "done",
 * "total"}} for each entity with a phase in phases (the run's, with their ids, borrowed), as
 * of its latest started phase: run_phase is the run's phase index, status its status, params
 * its params (borrowed). See docs/API.md, GET /v1/runs/{id}. */
json_t *orch_progress_json(const json_t *phases, int run_phase, const char *status,
                           const json_t *params);

#endif
