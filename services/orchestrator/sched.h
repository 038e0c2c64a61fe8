/* sched.h: what starts runs without anyone asking (sched.c): the scheduler and the realtime
 * push of local changes. */
#ifndef ORCH_SCHED_H
#define ORCH_SCHED_H

#include <jansson.h>

#include "orch.h"
#include "xs/err.h"
#include "xs/pg.h"

xs_err orch_sched_start(orch *o);
void orch_sched_stop(orch *o);

/* orch_schedule_reset moves a connection's schedules to the next times its settings give. */
xs_err orch_schedule_reset(orch *o, xs_pg *pg, const char *conn, const json_t *settings);

/* orch_drain turns the pending local changes of organisation org into push runs, one per
 * active connection, in one transaction; run_of (may be NULL) receives the run made for
 * connection conn (NULL: none), "" when there was nothing to push. */
xs_err orch_drain(orch *o, xs_pg *pg, const char *org, const char *conn, char run_of[40]);

#endif
