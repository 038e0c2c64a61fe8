/* api.c: the orchestrator's REST routes (the table), health, API keys and the system routes. */
#include "api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buscall.h"
#include "connections.h"
#include "documents.h"
#include "jobs_api.h"
#include "lease.h"
#include "mapping_api.h"
#include "metrics_api.h"
#include "organisations.h"
#include "rest.h"
#include "sync_api.h"
#include "ui.h"
#include "webhooks.h"
#include "proto.h"
#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"

/* How long /health waits for a database connection before calling the database down. */
#define HEALTH_DB_WAIT_MS 1000
#define PING_MAX          100

xs_err orch_api_keys_parse(const char *var, const char *text, bool optional,
                           uint8_t (**sums)[XS_SHA256_LEN], size_t *n, char *err)
{
    size_t cap = 1, got = 0;
    for (const char *c = text; *c; c++) {
        cap += *c == ',';
    }
    uint8_t(*out)[XS_SHA256_LEN] = calloc(cap, sizeof(*out));
    if (out == NULL) {
        return XS_ENOMEM;
    }
    const char *p = text;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (len > 0) {
            if (len < 16) {
                snprintf(err, 160, "%s: key %zu is shorter than 16 characters", var, got + 1);
                xs_crypto_wipe(out, cap * sizeof(*out));
                free(out);
                return XS_ECONFIG;
            }
            xs_sha256(p, len, out[got++]);
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    if (got == 0 && !optional) {
        snprintf(err, 160, "%s: no key given", var);
        free(out);
        return XS_ECONFIG;
    }
    *sums = out;
    *n = got;
    return XS_OK;
}

/* key_among tells whether sum is one of the n sums, comparing with every one of them so that
 * timing does not tell which one nearly matched. */
static bool key_among(const uint8_t *sum, uint8_t (*sums)[XS_SHA256_LEN], size_t n)
{
    bool ok = false;
    for (size_t i = 0; i < n; i++) {
        ok |= xs_crypto_equal(sum, sums[i], XS_SHA256_LEN);
    }
    return ok;
}

bool orch_api_authorised(xs_http_req *req, const xs_http_route *route, void *arg)
{
    orch *o = arg;
    if (route->flags & ORCH_ROUTE_PUBLIC) {
        return true;
    }
    const char *h = xs_http_req_header(req, "Authorization");
    bool ok = false;
    /* The scheme's name is case-insensitive (RFC 9110, 11.1). */
    if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
        /* The whole value: the server refuses a header with a NUL, so nothing hides behind
         * one. */
        uint8_t sum[XS_SHA256_LEN];
        xs_sha256(h + 7, strlen(h + 7), sum);
        ok = key_among(sum, o->api_key_sums, o->napi_keys);
        if (route->flags & ORCH_ROUTE_METRICS) {
            ok |= key_among(sum, o->metrics_key_sums, o->nmetrics_keys);
        }
        xs_crypto_wipe(sum, sizeof(sum));
    }
    if (!ok) {
        xs_http_add_header(req, "WWW-Authenticate", "Bearer");
        xs_http_reply_error(req, 401, "unauthorized", NULL,
                            "an API key is required: Authorization: Bearer <key>");
    }
    return ok;
}

/* health: GET /health. 200 when PostgreSQL answers and every domain has a live replica,
 * 503 otherwise; the body says what is up, and which shards this orchestrator acts for
 * (lease.h). */
static void health(xs_http_req *req, void *arg)
{
    orch *o = arg;
    bool ok = true;
    json_t *db = json_object();
    int64_t t0 = xs_clock_mono_ms();
    xs_pg *pg = NULL;
    xs_err e = xs_pg_pool_acquire(o->pool, HEALTH_DB_WAIT_MS, &pg);
    if (e == XS_OK) {
        e = xs_pg_ping(pg);
        xs_pg_pool_release(o->pool, pg);
    }
    json_object_set_new(db, "ok", json_boolean(e == XS_OK));
    if (e == XS_OK) {
        json_object_set_new(db, "latency_ms", json_integer(xs_clock_mono_ms() - t0));
    } else {
        json_object_set_new(db, "error", json_string(xs_strerror(e)));
        ok = false;
    }

    json_t *domains = json_object();
    int64_t now = xs_clock_mono_ms();
    for (int d = 0; d < XS_BUS_DOMAIN_COUNT; d++) {
        int live = orch_replicas_live(o->replicas, (xs_bus_domain)d, now);
        json_t *entry =
            json_pack("{s:i, s:i, s:o, s:b}", "live", live, "connected",
                      xs_bus_peers(o->hub, (xs_bus_domain)d), "replicas",
                      orch_replicas_json(o->replicas, (xs_bus_domain)d, now), "ok", live > 0);
        json_object_set_new(domains, xs_bus_domain_name((xs_bus_domain)d), entry);
        ok = ok && live > 0;
    }
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "status", ok ? "ok" : "unavailable", "version",
                  XS_VERSION, "uptime_s", (json_int_t)((xs_clock_now() - o->proc.started) / 1000),
                  "database", db, "domains", domains, "leases", orch_lease_json(o));
    xs_http_add_header(req, "Cache-Control", "no-store");
    xs_http_reply_json(req, ok ? 200 : 503, body);
}

typedef struct ping_job {
    orch *o;
    xs_bus_domain domain;
    int64_t delay_ms;
    pthread_t thread;
    bool started;
    xs_err err;
    char replica[129];
    char message[256];
} ping_job;

/* ping_one sends one sys.ping and records which replica answered. */
static void *ping_one(void *arg)
{
    ping_job *j = arg;
    xs_msg *m = NULL;
    orch_call_error err;
    json_t *body = json_pack("{s:I}", "delay_ms", (json_int_t)j->delay_ms);
    j->err = orch_call(j->o, j->domain, "sys.ping", NULL, body, &m, &err);
    if (j->err != XS_OK) {
        snprintf(j->message, sizeof(j->message), "%.255s", err.message);
        return NULL;
    }
    snprintf(j->replica, sizeof(j->replica), "%s", xs_json_str_or(m->body, "replica", "?"));
    xs_msg_free(m);
    return NULL;
}

/* system_ping: POST /v1/system/ping {"domain":..., "count":1-100, "delay_ms":0-10000}. Sends
 * count pings at once and reports which replicas answered: a check that work reaches every
 * replica of a domain. */
static void system_ping(xs_http_req *req, void *arg)
{
    orch *o = arg;
    json_t *in = NULL;
    if (!orch_api_object(req, &in)) {
        return;
    }
    const char *dname = NULL;
    xs_bus_domain domain;
    int64_t count = 1, delay = 0;
    if (xs_json_get_str(in, "domain", &dname) != XS_OK ||
        xs_bus_domain_parse(dname, &domain) != XS_OK) {
        xs_http_reply_error(req, 400, "invalid", "domain",
                            "domain must be one of auth, contacts, invoices, payments");
        goto out;
    }
    xs_err e = xs_json_get_int(in, "count", &count);
    if ((e != XS_OK && e != XS_ENOTFOUND) || count < 1 || count > PING_MAX) {
        xs_http_reply_error(req, 400, "invalid", "count", "count must be an integer from 1 to %d",
                            PING_MAX);
        goto out;
    }
    e = xs_json_get_int(in, "delay_ms", &delay);
    if ((e != XS_OK && e != XS_ENOTFOUND) || delay < 0 || delay > 10000) {
        xs_http_reply_error(req, 400, "invalid", "delay_ms",
                            "delay_ms must be an integer from 0 to 10000");
        goto out;
    }
    ping_job *jobs = calloc((size_t)count, sizeof(ping_job));
    if (jobs == NULL) {
        xs_http_reply_error(req, 500, "internal", NULL, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < count; i++) {
        jobs[i] = (ping_job){.o = o, .domain = domain, .delay_ms = delay};
        jobs[i].started = pthread_create(&jobs[i].thread, NULL, ping_one, &jobs[i]) == 0;
        if (!jobs[i].started) {
            jobs[i].err = XS_ENOMEM;
            snprintf(jobs[i].message, sizeof(jobs[i].message), "cannot start a thread");
        }
    }
    json_t *by = json_object();
    json_t *errors = json_array();
    int answered = 0;
    for (int64_t i = 0; i < count; i++) {
        if (jobs[i].started) {
            pthread_join(jobs[i].thread, NULL);
        }
        if (jobs[i].err == XS_OK) {
            answered++;
            json_t *n = json_object_get(by, jobs[i].replica);
            json_object_set_new(by, jobs[i].replica,
                                json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
        } else {
            json_array_append_new(errors, json_pack("{s:s, s:s}", "code", xs_err_name(jobs[i].err),
                                                    "message", jobs[i].message));
        }
    }
    free(jobs);
    json_t *out = json_pack("{s:s, s:I, s:i, s:I, s:o, s:o}", "domain", xs_bus_domain_name(domain),
                            "sent", (json_int_t)count, "answered", answered, "failed",
                            (json_int_t)(count - answered), "by_replica", by, "errors", errors);
    xs_http_reply_json(req, answered == count ? 200 : 502, out);
out:
    json_decref(in);
}

static const xs_http_route routes[] = {
    {"GET", "/health", health, ORCH_ROUTE_PUBLIC},
    {"GET", "/metrics", orch_api_metrics, ORCH_ROUTE_METRICS},
    {"GET", "/ui/*", orch_ui_file, ORCH_ROUTE_PUBLIC},
    {"POST", "/v1/system/ping", system_ping, 0},
    {"POST", "/v1/connections/authorize", orch_connections_authorize, 0},
    {"GET", "/v1/oauth/callback", orch_oauth_callback, ORCH_ROUTE_PUBLIC},
    {"POST", "/v1/webhooks/xero", orch_webhooks_xero, ORCH_ROUTE_PUBLIC},
    {"POST", "/v1/organisations", orch_organisations_create, 0},
    {"GET", "/v1/organisations", orch_organisations_list, 0},
    {"GET", "/v1/organisations/{id}", orch_organisations_get, 0},
    {"GET", "/v1/connections", orch_connections_list, 0},
    {"GET", "/v1/connections/{id}", orch_connections_get, 0},
    {"DELETE", "/v1/connections/{id}", orch_connections_delete, 0},
    {"POST", "/v1/connections/{id}/check", orch_connections_check, 0},
    {"POST", "/v1/connections/{id}/pause", orch_connections_pause, 0},
    {"POST", "/v1/connections/{id}/resume", orch_connections_resume, 0},
    {"POST", "/v1/connections/{id}/sync", orch_api_sync, 0},
    {"POST", "/v1/connections/{id}/sync/entity", orch_api_sync_entity, 0},
    {"GET", "/v1/connections/{id}/stats", orch_api_stats, 0},
    {"GET", "/v1/connections/{id}/settings", orch_api_settings_get, 0},
    {"PUT", "/v1/connections/{id}/settings", orch_api_settings_put, 0},
    {"GET", "/v1/runs", orch_api_runs, 0},
    {"GET", "/v1/runs/{id}", orch_api_run, 0},
    {"POST", "/v1/runs/{id}/cancel", orch_api_run_cancel, 0},
    {"GET", "/v1/jobs", orch_jobs_list, 0},
    {"GET", "/v1/jobs/{id}", orch_jobs_get, 0},
    {"GET", "/v1/job-events", orch_job_events_list, 0},
    {"GET", "/v1/connections/{id}/xpm-clients", orch_xpm_clients_list, 0},
    {"GET", "/v1/mappings", orch_api_mappings, 0},
    {"GET", "/v1/conflicts", orch_api_conflicts, 0},
    {"POST", "/v1/conflicts/{id}/resolve", orch_api_conflict_resolve, 0},
    {"POST", "/v1/contacts", orch_api_local_write, 0},
    {"PATCH", "/v1/contacts/{id}", orch_api_local_write, 0},
    {"POST", "/v1/invoices", orch_api_local_write, 0},
    {"PATCH", "/v1/invoices/{id}", orch_api_local_write, 0},
    {"POST", "/v1/payments", orch_api_local_write, 0},
    {"PATCH", "/v1/payments/{id}", orch_api_local_write, 0},
    {"POST", "/v1/documents", orch_documents_create, 0},
    {"GET", "/v1/documents", orch_documents_list, 0},
    {"GET", "/v1/documents/{id}", orch_documents_get, 0},
    {"POST", "/v1/documents/{id}/retry", orch_documents_retry, 0},
};

const xs_http_route *orch_api_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
