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
#include "proto.h"
#include "replicas.h"
#include "xs/bus.h"
#include "xs/crypto.h"
#include "xs/http.h"
#include "xs/pg.h"
#include "xs/proc.h"

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
    int64_t bus_timeout_ms;
    atomic_bool stop;

    /* The run engine (engine.c). */
    orch_budget *budget;
    pthread_mutex_t disp_mu; /* the dispatcher: one thread chooses the next step at a time */
    pthread_cond_t disp_cv;  /* signalled when steps become ready */
    json_t *busy;            /* "connection/entity" with a step running (disp_mu) */
    json_t *served;          /* tenant -> when it last got a step (disp_mu), for fairness */
    pthread_t *executors;
    int nexec, nexec_started;
    pthread_t scheduler, realtime;
    bool scheduler_started, realtime_started;
    /* Configuration, read once. */
    int64_t step_max_attempts, backoff_ms, backoff_max_ms, page_size, pull_pages, pull_step_ms,
        lookback_ms;
    int64_t push_delay_ms, push_poll_ms, jitter_ms, incremental_every_ms, reread_after_ms;
    int full_at_minutes;
    bool scheduler_on;
} orch;

/* Why a bus request failed. */
typedef struct orch_call_error {
    xs_err code;     /* the service's error code, or the bus's */
    bool retryable;  /* the service says the same request may succeed later */
    bool transport;  /* no reply came (no replica, time-out) */
    char field[128]; /* the request field at fault, or "" */
    char message[4200];
} orch_call_error;

/* orch_call sends a request of `type` about connection conn (NULL: none) with body (taken
 * over) to one replica of domain and waits up to XS_BUS_TIMEOUT. On success *reply is its
 * reply (new; xs_msg_free), of the type the protocol declares. Otherwise err says why. */
xs_err orch_call(orch *o, xs_bus_domain domain, const char *type, const char *conn, json_t *body,
                 xs_msg **reply, orch_call_error *err);

/* orch_reply_call_error answers an HTTP request with the failure err describes (see
 * proto/README.md for the mapping); auth_status is the status for XS_EAUTH (401 or 409). */
void orch_reply_call_error(xs_http_req *req, const orch_call_error *err, int auth_status);

/* connections.c: the routes for connections and the OAuth callback. */
void orch_connections_authorize(xs_http_req *req, void *arg);
void orch_oauth_callback(xs_http_req *req, void *arg);
void orch_connections_list(xs_http_req *req, void *arg);
void orch_connections_get(xs_http_req *req, void *arg);
void orch_connections_check(xs_http_req *req, void *arg);
void orch_connections_delete(xs_http_req *req, void *arg);

/* orch_event_connection takes an event.connection (borrowed) from the bus. */
void orch_event_connection(orch *o, const xs_msg *m);

/* settings.c: a connection's sync settings. */
xs_err orch_settings_validate(const json_t *in, char *field, char *why);
json_t *orch_settings_merge(const json_t *stored, const json_t *in);
bool orch_settings_entity_enabled(const json_t *settings, const char *entity);
json_t *orch_settings_for_step(const json_t *settings, const char *entity);
bool orch_settings_schedule(const json_t *settings, const char *kind, int64_t dflt_every_ms,
                            int dflt_at_minutes, int64_t *every_ms, int *at_minutes);
bool orch_settings_parse_hhmm(const char *s, int *minutes);

/* runs.c: runs and their phases and steps, in PostgreSQL. */

/* orch_run_create makes a run of connection conn in the caller's open transaction: mode
 * "full", "incremental", "push" or "entity"; trigger "api", "schedule", "realtime", ...;
 * entities (array of names, NULL: the connection's enabled ones); ids (for push: {entity:
 * [local ids]}; for entity: {"entity", "local_id" or "xero_id"}; else NULL). The first phase
 * starts at once. The run's id goes to run_id. */
xs_err orch_run_create(orch *o, xs_pg *pg, const char *conn, const char *mode, const char *trigger,
                       const json_t *entities, const json_t *ids, char run_id[40]);

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

/* orch_recover makes steps left running by a stopped orchestrator runnable again. */
xs_err orch_recover(orch *o);

/* engine.c: the executors. */
xs_err orch_engine_start(orch *o);
void orch_engine_stop(orch *o);
/* orch_engine_wake tells the executors that steps became ready. */
void orch_engine_wake(orch *o);

/* sched.c: the scheduler and the realtime push of local changes. */
xs_err orch_sched_start(orch *o);
void orch_sched_stop(orch *o);

/* orch_schedule_reset moves a connection's schedules to the next times its settings give. */
xs_err orch_schedule_reset(orch *o, xs_pg *pg, const char *conn, const json_t *settings);

/* orch_drain turns the pending local changes of organisation org into push runs, one per
 * active connection, in one transaction; run_of (may be NULL) receives the run made for
 * connection conn (NULL: none), "" when there was nothing to push. */
xs_err orch_drain(orch *o, xs_pg *pg, const char *org, const char *conn, char run_of[40]);

/* sync_api.c: the REST routes of runs, syncs, stats, conflicts, settings, local records. */
void orch_api_sync(xs_http_req *req, void *arg);
void orch_api_sync_entity(xs_http_req *req, void *arg);
void orch_api_runs(xs_http_req *req, void *arg);
void orch_api_run(xs_http_req *req, void *arg);
void orch_api_stats(xs_http_req *req, void *arg);
void orch_api_conflicts(xs_http_req *req, void *arg);
void orch_api_conflict_resolve(xs_http_req *req, void *arg);
void orch_api_settings_get(xs_http_req *req, void *arg);
void orch_api_settings_put(xs_http_req *req, void *arg);
void orch_api_local_create(xs_http_req *req, void *arg);
void orch_api_local_update(xs_http_req *req, void *arg);
void orch_api_invoice_create(xs_http_req *req, void *arg);
void orch_api_invoice_update(xs_http_req *req, void *arg);
void orch_api_payment_create(xs_http_req *req, void *arg);
void orch_api_payment_update(xs_http_req *req, void *arg);

/* Route flags (xs_http_route.flags). */
#define ORCH_ROUTE_PUBLIC 0x1u /* no API key needed */

/* orch_api_routes returns the REST routes (static) and their count through *n. */
const xs_http_route *orch_api_routes(size_t *n);

/* orch_api_authorised is the HTTP `before` hook: it lets public routes through and otherwise
 * requires "Authorization: Bearer <key>" with one of the configured keys (401 otherwise). */
bool orch_api_authorised(xs_http_req *req, const xs_http_route *route, void *arg);

/* orch_api_keys_parse splits XS_API_KEYS (comma-separated, each at least 16 characters) into
 * o->api_key_sums. XS_ECONFIG with a message in err (160 bytes) when a key is too short. */
xs_err orch_api_keys_parse(orch *o, const char *text, char *err);

/* orch_api_pg lends a route a pooled connection (give it back with xs_pg_pool_release),
 * answering 503 itself and returning NULL when none is free in 5 s. */
xs_pg *orch_api_pg(orch *o, xs_http_req *req);

/* orch_api_db_error logs a failed query of pg and answers 500 with `what`. */
void orch_api_db_error(orch *o, xs_http_req *req, xs_pg *pg, const char *what);

/* Query-string arguments of the list routes. Each answers 400 naming the argument itself and
 * returns false when the value is bad; an absent argument leaves *out as it was. */
bool orch_arg_uuid(xs_http_req *req, const char *name, const char **out);
/* orch_arg_enum: one of values (NULL-terminated). */
bool orch_arg_enum(xs_http_req *req, const char *name, const char *const *values, const char **out);
/* orch_arg_long: a whole number from lo to hi. */
bool orch_arg_long(xs_http_req *req, const char *name, long lo, long hi, long *out);

/* orch_pg_open (re)opens a worker thread's own connection *pg (the old one closed) as
 * application app, LISTENing on channel unless it is NULL. False, after sleeping retry_ms,
 * when the database cannot be reached: the caller tries again on its next turn. */
bool orch_pg_open(orch *o, xs_pg **pg, const char *app, const char *channel, int64_t retry_ms);

#endif
