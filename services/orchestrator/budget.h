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
 * tenant (or the app) until it has passed. What a minute's remaining count said holds until
 * that fixed window starts again, where replies showed it (a count higher than the one before:
 * the window started again by then, so the next start is never guessed early), else for a
 * sliding minute. Beyond tenant_burst calls at once, a tenant's calls are paced at its minute
 * limit, so a busy tenant does not spend its minute in a burst and then wait most of a
 * minute. Safe to use from many threads.
 *
 * The day limit. Xero's day window is rolling and its end is not known to us, so no length is
 * assumed: a 429 with X-Rate-Limit-Problem: day blocks the tenant exactly until its
 * Retry-After has passed. A reply that says no calls are left today (X-DayLimit-Remaining: 0,
 * not a 429), or our own count of what the last reply said is left reaching 0, *holds* the
 * tenant: after probe_ms one step (a probe, of at most two calls) goes; its 429 sets the
 * exact block, its success with calls left lifts the hold, and anything else holds the tenant
 * for another probe_ms. Only replies to calls that left after a hold began change it. Our own
 * count of the last day window reaching tenant_day blocks the tenant until its oldest calls
 * leave the window. These are the tenant's *day block*: orch_budget_day_next reports when one
 * begins, moves or ends (the orchestrator logs it and keeps it in
 * sync.connections.rate_limited_until), and orch_budget_day_restore puts a kept one back after
 * a restart, as a hold whose probe waits until the kept time.
 */
#ifndef ORCH_BUDGET_H
#define ORCH_BUDGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "appbudget.h"
#include "xs/err.h"

typedef struct orch_budget_limits {
    int64_t tenant_concurrent; /* Xero: 5 */
    int64_t tenant_minute;     /* Xero: 60 */
    int64_t tenant_day;        /* Xero: 5000 */
    int64_t app_minute;        /* Xero: 10000 */
    int64_t minute_ms;         /* window lengths: 60 s and 24 h, shorter in tests */
    int64_t day_ms;
    int64_t margin_ms;    /* added to each window: the time a call may take to arrive */
    int64_t probe_ms;     /* a held tenant's next probe after this long (XS_BUDGET_DAY_PROBE) */
    int64_t tenant_burst; /* calls a tenant may make at once; beyond them its calls are paced
                           * at tenant_minute per minute_ms (XS_BUDGET_TENANT_BURST); 0, or
                           * tenant_minute or more: not paced */
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
 * `used` calls, the last of which said `seen` (NULL when no reply came). A call refused
 * before it left keeps its window slot (erring on the safe side: the caller counts it, and
 * counts every permit when it does not know). The first call counts from acquired_ms, the
 * others from now_ms (they went out in between), and the permits not used are given back:
 * with used 0, all of them, as if never taken (seen is then ignored, and a probe that did
 * not go lets the next step be one). A step that took no permit (granted 0) has nothing to
 * give back. */
void orch_budget_release_n(orch_budget *b, const char *tenant, int64_t now_ms, int64_t acquired_ms,
                           int64_t granted, int64_t used, const orch_budget_seen *seen);

/* orch_budget_cancel gives back, as if never taken, the `granted` permits a step took at
 * acquired_ms and will not use at all (it needs more than it got, and waits instead). */
void orch_budget_cancel(orch_budget *b, const char *tenant, int64_t acquired_ms, int64_t granted);

/* orch_budget_share makes b take the app's permits also from shared (borrowed; NULL: no
 * more), the pool of the app budget the orchestrators share (appbudget.h): a step gets
 * permits only when both b's own count of the app's calls and the pool allow them, and what a
 * step did not use goes back to both. Without it, b alone counts the app's calls (one
 * orchestrator). */
void orch_budget_share(orch_budget *b, orch_appbudget *shared);

/* orch_budget_seed counts a call made at at_ms (monotonic, in the past) against tenant,
 * e.g. from the audit after a restart. */
void orch_budget_seed(orch_budget *b, const char *tenant, int64_t at_ms);

/* orch_budget_json describes a tenant's budget now (new): in flight, left this minute and
 * today, how long it is blocked (a day block included), and what holds it by the day limit
 * ("day_block": "retry_after", "probe", "count" or null). */
json_t *orch_budget_json(orch_budget *b, const char *tenant, int64_t now_ms);

/* orch_budget_gauges describes every tenant's headroom now (new), for GET /metrics:
 * {"tenants": {tenant: {minute_left, day_left, in_flight}}, "app_minute_left",
 * "app_minute_limit"}, each left as orch_budget_json counts it (0 while blocked). */
json_t *orch_budget_gauges(orch_budget *b, int64_t now);

/* orch_budget_app_wait is 0 when the app-wide minute has room for a call at now (and, when
 * shared, the pool has permits), else how long until it may (ms, at least 1): no tenant's
 * step can have a permit before then. */
int64_t orch_budget_app_wait(orch_budget *b, int64_t now);

/* A change of a tenant's day block (orch_budget_day_next). */
typedef struct orch_budget_day {
    char tenant[64];
    bool blocked;      /* blocked by the day limit now */
    bool began, ended; /* it began, or ended, with this change (neither: it moved, or only
                        * its record must be written again after orch_budget_day_retry) */
    int64_t until_ms;  /* monotonic: when calls may go again (blocked), as far as known: the end
                        * Xero gave, when the next probe goes, or when our count frees a call */
} orch_budget_day;

/* orch_budget_day_next reports, at now_ms, one tenant whose day block began, moved or ended
 * since it was last reported, into *out, and counts it as reported: each change is handed
 * out once, to one caller. false when there is none. */
bool orch_budget_day_next(orch_budget *b, int64_t now_ms, orch_budget_day *out);

/* orch_budget_day_retry asks for tenant's state to be reported again by orch_budget_day_next
 * (its record could not be written); the log lines of began and ended are not repeated. */
void orch_budget_day_retry(orch_budget *b, const char *tenant);

/* orch_budget_day_restore holds tenant at now_ms, as a day block kept from before a restart,
 * until until_ms (monotonic; may be past), when one probe goes. It counts as reported. */
void orch_budget_day_restore(orch_budget *b, const char *tenant, int64_t now_ms, int64_t until_ms);

#endif
