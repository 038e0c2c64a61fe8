/*
 * metrics_api.h: GET /metrics, the Prometheus text exposition format 0.0.4 (docs/API.md
 * "Metrics"). One page of: the orchestrator's own counters (metrics.h); the counters domain
 * services report in their heartbeats, summed across replicas (replicas.h); the live
 * replicas; the rate budget's headroom (budget.h); and what PostgreSQL says at the scrape
 * (runs queued and running, the outbox, the conflicts pending), read in one read-only
 * transaction bounded by a statement time-out, on a pooled connection waited for briefly, so
 * a scrape never holds up sync work: when the database does not answer in time the page
 * comes without those figures and says so (xs_metrics_database_up 0).
 */
#ifndef ORCH_METRICS_API_H
#define ORCH_METRICS_API_H

#include "xs/http.h"

/* orch_api_metrics answers GET /metrics (arg: the orch). */
void orch_api_metrics(xs_http_req *req, void *arg);

#endif
