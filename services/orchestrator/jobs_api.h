/* jobs_api.h: the REST routes of the jobs domain (jobs_api.c): XPM jobs mirrored into
 * app.jobs, their history, the host application's feed of job events, and a connection's
 * XPM clients with how each was matched to a local contact. */
#ifndef ORCH_JOBS_API_H
#define ORCH_JOBS_API_H

#include "rest.h"

/* The routes (docs/API.md, "XPM jobs"): GET /v1/jobs, GET /v1/jobs/{id}, GET /v1/job-events
 * and GET /v1/connections/{id}/xpm-clients. */
orch_route orch_jobs_list, orch_jobs_get, orch_job_events_list, orch_xpm_clients_list;

#endif
