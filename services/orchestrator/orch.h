/*
 * orch.h: the orchestrator's one context, made in main and handed to its modules.
 */
#ifndef ORCH_H
#define ORCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <pthread.h>

#include "budget.h"
#include "metrics.h"
#include "proto.h"
#include "replicas.h"
#include "xs/bus.h"
#include "xs/crypto.h"
#include "xs/http.h"
#include "xs/pg.h"
#include "xs/proc.h"

/* Connections are spread over this many shards (sync.shard_of, migration 0020; lease.h). */
#define ORCH_SHARDS 256
/* The scheduler starts up to this many windows' worth of the app-wide budget's calls in runs
 * per window (sched.c). */
#define ORCH_START_WINDOWS 10

typedef struct orch_lease orch_lease;

typedef struct orch {
    xs_proc proc;            /* configuration and log */
    xs_pg_pool *pool;        /* PostgreSQL */
    xs_bus_hub *hub;         /* the bus to the domain services */
    orch_replicas *replicas; /* live replicas, from heartbeats */
    xs_http_server *http;    /* the REST API */
    /* the SHA-256 of each accepted bearer key (owned): a presented key is hashed over its
     * full length and its sum compared with each in constant time, so neither a key's
     * content nor its length shows in the time a check takes */
    uint8_t (*api_key_sums)[XS_SHA256_LEN];
    size_t napi_keys;
    /* the same of each scrape-only key (XS_METRICS_KEYS; owned, may be none): a key that
     * opens GET /metrics and nothing else */
    uint8_t (*metrics_key_sums)[XS_SHA256_LEN];
    size_t nmetrics_keys;
    orch_metrics *metrics; /* the orchestrator's own counters (metrics.h) */
    /* the Xero app's webhook keys (owned; webhooks.c): the current one, and the one before it
     * during a rotation; bytes NULL when not set */
    struct {
        uint8_t *bytes;
        size_t len;
    } webhook_keys[2];
    int64_t bus_timeout_ms;
    atomic_bool stop;

    /* lease.c: the shards this orchestrator acts for (owned; NULL until the engine starts) */
    orch_lease *lease;
    int64_t lease_ttl_ms; /* XS_LEASE_TTL */

    /* The run engine (engine.c). */
    orch_budget *budget;
    /* the app's limit shared with the other orchestrators through PostgreSQL, or NULL */
    orch_appbudget *appbudget;
    orch_budget_limits budget_limits; /* as the budget was made with */
    pthread_mutex_t disp_mu; /* the dispatcher: one thread chooses the next step at a time */
    pthread_cond_t disp_cv;  /* signalled when steps become ready */
    json_t *busy;            /* "connection/entity" with a step running (disp_mu) */
    json_t *round;           /* priority -> the connection last served at it (disp_mu): the
                              * claim goes round the connections from there (engine.c) */
    json_t *refused; /* tenant -> when the budget first refused its ready step, until one of its
                      * steps gets permits (disp_mu): xs_budget_wait_seconds */
    pthread_t *executors;
    int nexec, nexec_started;
    pthread_t scheduler, realtime, inbox, retention;
    bool scheduler_started, realtime_started, inbox_started, retention_started;
    /* Configuration, read once. */
    int64_t step_max_attempts, backoff_ms, backoff_max_ms, page_size, pull_pages, pull_step_ms,
        lookback_ms;
    int64_t push_delay_ms, push_poll_ms, jitter_ms, incremental_every_ms, reread_after_ms;
    int64_t push_every_ms, push_parallel; /* XS_PUSH_EVERY, XS_PUSH_PARALLEL */
    int64_t webhook_delay_ms; /* inbox.c: how long events of a connection gather into one run */
    /* hookwatch.c: the webhook entities' relaxed poll interval (0: never relaxed), and how long
     * without an event a tenant's webhooks count as stopped */
    int64_t webhook_poll_every_ms, webhook_silence_ms;
    int full_at_minutes;
    /* sched.c: the daily full runs of connections without a time of their own are spread over
     * full_window_ms from full_at_minutes (0: all at it, plus the jitter); the scheduler
     * starts at most start_limit runs per start_window_ms (ORCH_START_WINDOWS times
     * XS_BUDGET_APP_MINUTE per XS_BUDGET_MINUTE_WINDOW, sched.c says why) */
    int64_t full_window_ms, start_limit, start_window_ms;
    int64_t poll_max_every_ms; /* polling.c: the longest adaptive poll interval (0: no back-off) */
    bool scheduler_on;
    const char *app_name;        /* XS_APP_NAME: names the default Xero Files folder */
    const char *files_types;     /* XS_FILES_TYPES: the file extensions Xero Files takes */
    int64_t documents_max_bytes; /* XS_DOCUMENTS_MAX_BYTES: POST /v1/documents' limit */
    /* jobhooks.c: the job events' deliveries to the host application's webhooks: the secret
     * they are signed with (XS_JOB_WEBHOOK_SECRET; NULL when not set: no webhook_url may be
     * set) and how long one may take; its thread */
    struct {
        const char *secret;
        size_t secret_len;
        int64_t timeout_ms;
    } jobhook;
    pthread_t jobhooks;
    bool jobhooks_started;
    /* retention.c: how long history is kept (ms; 0: forever) and how it is pruned */
    struct {
        int64_t runs_ms, runs_failed_ms, api_calls_ms, changes_ms, webhook_events_ms;
        int64_t every_ms, pause_ms, batch;
        int64_t calls_floor_ms;  /* the budget's day window, at least a day */
        int64_t events_floor_ms; /* a day, or XS_WEBHOOK_SILENCE when longer */
    } retain;
} orch;

#endif
