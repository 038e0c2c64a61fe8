/*
 * metrics.h: the orchestrator's own counters and histograms, counted in memory where it sees
 * the event (a run ends, a step ends, a step waits for the rate budget, webhook events arrive
 * and are turned into runs), and the writer of Prometheus' text exposition format 0.0.4 in
 * which GET /metrics (metrics_api.h) shows them beside what it reads at scrape. Counters
 * start at 0 with the process. Safe to use from many threads; below every module that
 * counts, it includes none of them. The counting functions accept a NULL registry and count
 * nothing (tests of the modules that count, without an orchestrator).
 */
#ifndef ORCH_METRICS_H
#define ORCH_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "xs/err.h"

typedef struct orch_metrics orch_metrics;

/* orch_metrics_create makes the registry, every counter at 0. */
xs_err orch_metrics_create(orch_metrics **out);

/* orch_metrics_destroy frees m; NULL accepted. */
void orch_metrics_destroy(orch_metrics *m);

/* orch_metrics_run_ended counts a run that ended (xs_runs_total{mode, trigger, status}). */
void orch_metrics_run_ended(orch_metrics *m, const char *mode, const char *trigger,
                            const char *status);

/* orch_metrics_step counts a step's recorded outcome ("done", "retry", "failed", "fatal") and
 * its duration from its claim to its record (xs_steps_total, xs_step_duration_seconds). */
void orch_metrics_step(orch_metrics *m, const char *kind, const char *entity, const char *outcome,
                       int64_t duration_ms);

/* orch_metrics_records adds the counts of a step (a domain reply's "counts", borrowed) that
 * went into its run's counts[entity][direction] (xs_records_total{entity, direction,
 * outcome}, for the outcomes created, updated, unchanged, failed and conflicts). */
void orch_metrics_records(orch_metrics *m, const char *entity, const char *direction,
                          const json_t *counts);

/* orch_metrics_budget_wait observes how long a tenant's ready step waited for permits of the
 * rate budget (xs_budget_wait_seconds). */
void orch_metrics_budget_wait(orch_metrics *m, int64_t waited_ms);

/* orch_metrics_claim observes one claim of an executor that took us microseconds and got a
 * step or not (xs_claim_duration_seconds). */
void orch_metrics_claim(orch_metrics *m, bool claimed, int64_t us);
/* orch_metrics_permits counts the granted permits of a step that ended: charged of them were
 * calls to Xero, the rest went back unused (xs_budget_permits_total{outcome}). */
void orch_metrics_permits(orch_metrics *m, int64_t granted, int64_t charged);

/* orch_metrics_unpermitted counts a step of kind that ran holding no permit
 * (xs_steps_unpermitted_total{kind}). */
void orch_metrics_unpermitted(orch_metrics *m, const char *kind);

/* orch_metrics_webhooks_received counts the events of a verified webhook delivery, and how
 * many of them were new (xs_webhook_events_received_total, ..._stored_total). */
void orch_metrics_webhooks_received(orch_metrics *m, int64_t events, int64_t stored);

/* orch_metrics_webhook_processed counts one stored event the inbox finished with, as result
 * ("run": its records went into a run; "known": we hold that version already; "ignored"),
 * lag_ms after it was received (xs_webhook_events_processed_total{result},
 * xs_webhook_lag_seconds). */
void orch_metrics_webhook_processed(orch_metrics *m, const char *result, int64_t lag_ms);

/* --- the text exposition format --- */

/* One page of metrics being written. */
typedef struct orch_metrics_page orch_metrics_page;

/* orch_metrics_page_new starts an empty page (new; NULL when out of memory). */
orch_metrics_page *orch_metrics_page_new(void);

/* orch_metrics_page_family starts the metric family name: its HELP and TYPE ("counter",
 * "gauge", "histogram") lines. Every family is written once, its samples right after. */
void orch_metrics_page_family(orch_metrics_page *p, const char *name, const char *type,
                              const char *help);

/* orch_metrics_page_sample writes one sample of the family begun last: its name (the
 * family's, or with a histogram's suffix), labels (pairs of a label's name and value,
 * NULL-terminated, may be NULL; values escaped here) and value. */
void orch_metrics_page_sample(orch_metrics_page *p, const char *name, const char *const *labels,
                              double value);

/* orch_metrics_page_write writes m's own families to p. */
void orch_metrics_page_write(orch_metrics *m, orch_metrics_page *p);

/* orch_metrics_page_take ends p and returns its text (new, free with free(); NULL when
 * writing it ran out of memory) and length; p is freed either way. */
char *orch_metrics_page_take(orch_metrics_page *p, size_t *len);

#endif
