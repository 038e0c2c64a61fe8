/*
 * jobs.h: the jobs domain service (xs-jobs): a pull-only mirror of Xero Practice Manager
 * (XPM) jobs and clients (docs/MAPPING.md, "XPM jobs"). It serves sync.pull of entity "job"
 * as the orchestrator plans it: pull.c walks the stages of a pull within the step's permits
 * (one XPM call each) and store.c writes what each call read, one transaction per call.
 */
#ifndef XS_JOBS_H
#define XS_JOBS_H

#include <jansson.h>

#include "engine/step.h"
#include "engine/svc.h"

/* The service's state (ctx->state). */
typedef struct jobs_state {
    xs_xero_opts xero;   /* for each worker's client */
    int64_t window_days; /* XS_XPM_JOB_WINDOW_DAYS: a full pull lists the jobs created this many
                            days before today up to today */
} jobs_state;

/* jobs_handle_pull answers a sync.pull of entity "job" (pull.c). */
xs_err jobs_handle_pull(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply);

/* --- store.c: what a pull writes; each function is one transaction (or one statement). --- */

/* What the step writes under: its connection, organisation and the connection's settings. */
typedef struct jobs_scope {
    const char *conn, *org;
    const json_t *mapped; /* xpm.needs_documents: the states that mean "needs documents" */
    bool webhook;         /* xpm.webhook_url is set: events are to be delivered */
} jobs_scope;

/* jobs_store_has_xpm_scope sets *ok to whether the grant of connection conn holds a scope
 * that reads XPM jobs and clients. */
xs_err jobs_store_has_xpm_scope(xs_pg *pg, const char *conn, bool *ok);

/* jobs_store_clients_mark reads the connection's clients mark (XPM's modifiedSince form) into
 * mark (XS_TIME_ISO_MAX bytes; "" when there is none). */
xs_err jobs_store_clients_mark(xs_pg *pg, const char *conn, char *mark);

/* jobs_store_clients writes clients (an array of XPM clients, borrowed), each linked to a
 * local contact of the organisation by e-mail, then name, when exactly one matches; relinks
 * the connection's jobs of those clients; and records mark as the next modifiedSince, all in
 * one transaction. counts gets created, updated and linked. */
xs_err jobs_store_clients(xs_pg *pg, const jobs_scope *sc, const json_t *clients, const char *mark,
                          json_t *counts);

/* jobs_store_jobs writes jobs (an array of valid XPM jobs, borrowed) in one transaction
 * (app.xpm_job_apply: history and events decided under each job's lock). current: the array
 * is job.api/current, so every job that was current and is not among them is marked to be
 * read again (recheck); false leaves the marks as they are. counts gets created, updated and
 * unchanged; events the events made, by type. */
xs_err jobs_store_jobs(xs_pg *pg, const jobs_scope *sc, const json_t *jobs, bool current,
                       json_t *counts, json_t *events);

/* jobs_store_rechecks reads up to max numbers of the connection's jobs still to read again,
 * in number order, into *out (new JSON array of strings). */
xs_err jobs_store_rechecks(xs_pg *pg, const char *conn, int64_t max, json_t **out);

/* jobs_store_recheck_drop clears the recheck mark of job number (XPM no longer has it). */
xs_err jobs_store_recheck_drop(xs_pg *pg, const char *conn, const char *number);

#endif
