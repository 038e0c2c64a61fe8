/*
 * budget.h: the rate budget for Xero calls, held by the orchestrator for every replica of
 * every domain service. A step runs only with permits: one per call to Xero it may make
 * (a pull step may read several pages, one after another, so it may hold several).
 *
 * Per tenant: calls in flight, calls per minute, calls per day; per app: calls per minute
 * across tenants. Xero counts in fixed windows whose phase differs per tenant and is not
 * known to us; counting in *sliding* windows of the same length (plus a margin for the time
 * a call takes to reach Xero) never lets more than the limit into any fixed window. Each
 * reply's X-MinLimit-Remaining, X-DayLimit-Remaining and X-AppMinLimit-Remaining correct the
 * count (another process may share the app or the tenant), and a 429's Retry-After stops the
 * tenant (or the app) until it has passed. Safe to use from many threads.
 */
#ifndef ORCH_BUDGET_H
#define ORCH_BUDGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "xs/err.h"

typedef struct orch_budget_limits {
    int64_t tenant_concurrent; /* Xero: 5 */
    int64_t tenant_minute;     /* Xero: 60 */
    int64_t tenant_day;        /* Xero: 5000 */
    int64_t app_minute;        /* Xero: 10000 */
    int64_t minute_ms;         /* window lengths: 60 s and 24 h, shorter in tests */
    int64_t day_ms;
    int64_t margin_ms; /* added to each window: the time a call may take to arrive */
} orch_budget_limits;

/* What a reply said about the limits (-1: absent). */
typedef struct orch_budget_seen {
    long status;
    int64_t min_remaining, day_remaining, app_min_remaining, retry_after_s;
    const char *problem; /* X-Rate-Limit-Problem, or NULL */
} orch_budget_seen;

typedef struct orch_budget orch_budget;

xs_err orch_budget_create(orch_budget **out, const orch_budget_limits *limits);
void orch_budget_destroy(orch_budget *b);

/* orch_budget_acquire_n takes up to max permits, one per call, for one step of tenant at
 * now_ms (monotonic) that makes its calls one after another (one call in flight): as many as
 * every limit allows now. It returns how many; 0 when none, with *wait_ms (when not NULL) how
 * long until one may free up (an estimate, at least 1 ms). */
int64_t orch_budget_acquire_n(orch_budget *b, const char *tenant, int64_t now_ms, int64_t max,
                              int64_t *wait_ms);

/* orch_budget_release_n ends a step that took `granted` permits at acquired_ms and made
 * `used` calls, the last of which said `seen` (NULL when no reply came). At least one call
 * is counted: a call refused before it left keeps its window slot (erring on the safe side).
 * The first call counts from acquired_ms, the others from now_ms (they went out in between),
 * and the permits not used are given back. */
void orch_budget_release_n(orch_budget *b, const char *tenant, int64_t now_ms, int64_t acquired_ms,
                           int64_t granted, int64_t used, const orch_budget_seen *seen);

/* orch_budget_cancel gives back, as if never taken, the `granted` permits a step took at
 * acquired_ms and will not use at all (it needs more than it got, and waits instead). */
void orch_budget_cancel(orch_budget *b, const char *tenant, int64_t acquired_ms, int64_t granted);

/* orch_budget_seed counts a call made at at_ms (monotonic, in the past) against tenant,
 * e.g. from the audit after a restart. */
void orch_budget_seed(orch_budget *b, const char *tenant, int64_t at_ms);

/* orch_budget_json describes a tenant's budget now (new): in flight, left this minute and
 * today, blocked until. */
json_t *orch_budget_json(orch_budget *b, const char *tenant, int64_t now_ms);

#endif
