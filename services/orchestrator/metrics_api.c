/* metrics_api.c: GET /metrics (see metrics_api.h). */
#include "metrics_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "orch.h"
#include "xs/clock.h"
#include "xs/json.h"
#include "engine/sync.h"

/* How long a scrape waits for a pooled connection, and for each of its queries. */
#define DB_WAIT_MS    500
#define DB_TIMEOUT    "1000ms"
#define CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define OUTBOX_ENTITY 0 /* the column of the entity in the database's figures */

/* A counter the domain services report (heartbeat "counters", engine/svc.h), as exposed. */
typedef struct reported {
    const char *counter; /* its name in heartbeats */
    const char *name, *help;
    const char *labels[3]; /* the labels taken from the replicas, NULL-terminated */
} reported;

static const reported REPORTED[] = {
    {"xero_requests",
     "xs_xero_requests_total",
     "Calls the domain services made to Xero, by endpoint (\"GET /Contacts\", \"POST "
     "/connect/token\", ...; \"other\" for anything else) and HTTP status (\"error\": no reply).",
     {"endpoint", "status", NULL}},
    {"xero_rate_limited",
     "xs_xero_rate_limited_total",
     "Calls Xero answered 429, by X-Rate-Limit-Problem (minute, day, appminute, concurrent, "
     "unknown).",
     {"problem", NULL}},
    {"job_pull_steps",
     "xs_job_pull_steps_total",
     "Pull steps of XPM jobs xs-jobs answered, by outcome (done, retry, token_rejected, failed; "
     "error: its database failed).",
     {"outcome", NULL}},
    {"job_events",
     "xs_job_events_total",
     "Job events xs-jobs recorded, by type (job.needs_documents, job.documents_done).",
     {"type", NULL}},
    {"documents",
     "xs_documents_total",
     "Document statuses xs-files recorded, by status (pushed; pending: waiting for its contact "
     "or invoice, or for a retry after a failure that may pass; failed; skipped).",
     {"status", NULL}},
    {"token_refreshes",
     "xs_token_refreshes_total",
     "Access tokens xs-auth refreshed with Xero and stored.",
     {NULL}},
    {"token_refresh_failures",
     "xs_token_refresh_failures_total",
     "Token refreshes that failed, by reason (refused: Xero refused the refresh token and the "
     "connection needs a person; unavailable: no usable answer from Xero; error: ours).",
     {"reason", NULL}},
};

/* write_reported writes the counters of the domain services, summed over their replicas. */
static void write_reported(orch *o, orch_metrics_page *p)
{
    json_t *sums = orch_replicas_counters(o->replicas);
    for (size_t f = 0; f < sizeof(REPORTED) / sizeof(REPORTED[0]); f++) {
        const reported *r = &REPORTED[f];
        orch_metrics_page_family(p, r->name, "counter", r->help);
        bool any = false;
        const char *k;
        json_t *s;
        json_object_foreach(sums, k, s)
        {
            if (strcmp(xs_json_str_or(s, "name", ""), r->counter) != 0) {
                continue;
            }
            const char *labels[7];
            size_t n = 0;
            bool ok = true;
            for (size_t i = 0; r->labels[i] != NULL; i++) {
                const char *v = xs_json_str_or(json_object_get(s, "labels"), r->labels[i], NULL);
                ok = ok && v != NULL;
                labels[n++] = r->labels[i];
                labels[n++] = v;
            }
            labels[n] = NULL;
            if (ok) {
                orch_metrics_page_sample(p, r->name, labels,
                                         (double)json_integer_value(json_object_get(s, "value")));
                any = true;
            }
        }
        if (!any && r->labels[0] == NULL) {
            orch_metrics_page_sample(p, r->name, NULL, 0);
        }
    }
    json_decref(sums);
}

/* write_replicas writes the live replicas of every domain. */
static void write_replicas(orch *o, orch_metrics_page *p)
{
    orch_metrics_page_family(p, "xs_replicas_live", "gauge",
                             "Replicas of each domain service whose heartbeat is younger than "
                             "three intervals.");
    int64_t now = xs_clock_mono_ms();
    for (int d = 0; d < XS_BUS_DOMAIN_COUNT; d++) {
        const char *l[] = {"domain", xs_bus_domain_name((xs_bus_domain)d), NULL};
        orch_metrics_page_sample(p, "xs_replicas_live", l,
                                 orch_replicas_live(o->replicas, (xs_bus_domain)d, now));
    }
}

/* write_budget writes the rate budget's headroom: per tenant and for the whole app. */
static void write_budget(orch *o, orch_metrics_page *p)
{
    json_t *g = orch_budget_gauges(o->budget, xs_clock_mono_ms());
    json_t *tenants = json_object_get(g, "tenants");
    const char *tenant;
    json_t *t;
    orch_metrics_page_family(p, "xs_budget_remaining", "gauge",
                             "Calls a tenant may still make to Xero this minute and today, as the "
                             "rate budget counts them (0 while it is blocked).");
    json_object_foreach(tenants, tenant, t)
    {
        const char *m[] = {"scope", "minute", "tenant", tenant, NULL};
        const char *d[] = {"scope", "day", "tenant", tenant, NULL};
        orch_metrics_page_sample(p, "xs_budget_remaining", m,
                                 (double)json_integer_value(json_object_get(t, "minute_left")));
        orch_metrics_page_sample(p, "xs_budget_remaining", d,
                                 (double)json_integer_value(json_object_get(t, "day_left")));
    }
    orch_metrics_page_family(p, "xs_budget_in_flight", "gauge",
                             "Steps of a tenant holding permits of the rate budget now.");
    json_object_foreach(tenants, tenant, t)
    {
        const char *l[] = {"tenant", tenant, NULL};
        orch_metrics_page_sample(p, "xs_budget_in_flight", l,
                                 (double)json_integer_value(json_object_get(t, "in_flight")));
    }
    orch_metrics_page_family(p, "xs_budget_app_remaining", "gauge",
                             "Calls the Xero app may still make this minute across tenants.");
    orch_metrics_page_sample(p, "xs_budget_app_remaining", NULL,
                             (double)json_integer_value(json_object_get(g, "app_minute_left")));
    json_decref(g);
}

/* The database's figures, read at the scrape. */
typedef struct db_figures {
    xs_pg_res *runs;      /* mode, trigger, status, count */
    xs_pg_res *outbox;    /* entity, pending, oldest age (ms) */
    xs_pg_res *conflicts; /* entity, pending */
} db_figures;

/* db_read reads the figures in one read-only transaction bounded by DB_TIMEOUT a statement;
 * false when the database did not answer (nothing is kept then). */
static bool db_read(orch *o, db_figures *f)
{
    xs_pg *pg = NULL;
    if (xs_pg_pool_acquire(o->pool, DB_WAIT_MS, &pg) != XS_OK) {
        return false;
    }
    /* The partial indexes runs_queue, changes_one_pending and conflicts_one_pending hold only
     * the rows asked for, so each query reads what is pending, not the tables. */
    xs_err e = xs_pg_q0(pg, NULL, "BEGIN READ ONLY");
    if (e == XS_OK) {
        e = xs_pg_q0(pg, NULL, "SET LOCAL statement_timeout = '" DB_TIMEOUT "'");
    }
    if (e == XS_OK) {
        e = xs_pg_q0(pg, &f->runs,
                     "SELECT mode, trigger, status, count(*) FROM sync.runs WHERE status IN "
                     "('queued', 'running') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
    }
    if (e == XS_OK) {
        e = xs_pg_q0(pg, &f->outbox,
                     "SELECT entity, count(*), (extract(epoch FROM now() - min(changed_at)) * "
                     "1000)::bigint FROM sync.changes WHERE processed_at IS NULL GROUP BY 1");
    }
    if (e == XS_OK) {
        e = xs_pg_q0(pg, &f->conflicts,
                     "SELECT entity, count(*) FROM sync.conflicts WHERE status = 'PENDING' GROUP "
                     "BY 1");
    }
    if (e != XS_OK) {
        xs_log_warn(o->proc.log, "metrics.db_failed", "{s:s}", "error", xs_pg_error(pg));
    }
    xs_pg_rollback(pg);
    xs_pg_pool_release(o->pool, pg);
    return e == XS_OK;
}

static void db_free(db_figures *f)
{
    xs_pg_res_free(f->runs);
    xs_pg_res_free(f->outbox);
    xs_pg_res_free(f->conflicts);
}

/* find_row returns the row of r whose first column is entity, or -1. */
static int find_row(const xs_pg_res *r, const char *entity)
{
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        if (strcmp(xs_pg_res_get(r, i, OUTBOX_ENTITY), entity) == 0) {
            return i;
        }
    }
    return -1;
}

/* figure reads column col of the row of entity in r (0 when there is none). */
static double figure(const xs_pg_res *r, const char *entity, int col)
{
    int i = find_row(r, entity);
    int64_t v = 0;
    if (i >= 0) {
        xs_pg_res_int(r, i, col, &v);
    }
    return (double)v;
}

/* write_db writes the database's figures, every entity named (0 when it has none). */
static void write_db(orch_metrics_page *p, const db_figures *f, bool ok)
{
    orch_metrics_page_family(p, "xs_metrics_database_up", "gauge",
                             "1 when this scrape read the database's figures (runs active, "
                             "outbox, conflicts), 0 when the database did not answer in time.");
    orch_metrics_page_sample(p, "xs_metrics_database_up", NULL, ok ? 1 : 0);
    orch_metrics_page_family(p, "xs_runs_active", "gauge",
                             "Runs queued or running now, by mode, trigger and status.");
    for (int i = 0; ok && i < xs_pg_res_nrows(f->runs); i++) {
        const char *l[] = {
            "mode",   xs_pg_res_get(f->runs, i, 0), "trigger", xs_pg_res_get(f->runs, i, 1),
            "status", xs_pg_res_get(f->runs, i, 2), NULL};
        int64_t n = 0;
        xs_pg_res_int(f->runs, i, 3, &n);
        orch_metrics_page_sample(p, "xs_runs_active", l, (double)n);
    }
    size_t nent = 0;
    const xs_entity_info *ents = xs_entities(&nent);
    static const char *const outbox[] = {"xs_outbox_pending", "xs_outbox_oldest_age_seconds"};
    static const char *const outbox_help[] = {
        "Local changes waiting in the outbox (sync.changes) to go to Xero, by entity.",
        "Age of the oldest change waiting in the outbox, by entity (0 when none waits)."};
    for (int k = 0; k < 2; k++) {
        orch_metrics_page_family(p, outbox[k], "gauge", outbox_help[k]);
        for (size_t i = 0; ok && i < nent; i++) {
            if (!ents[i].push) {
                continue; /* the read-only entities have no outbox */
            }
            const char *l[] = {"entity", ents[i].name, NULL};
            double v = figure(f->outbox, ents[i].name, k + 1);
            orch_metrics_page_sample(p, outbox[k], l, k == 0 ? v : v / 1000.0);
        }
    }
    orch_metrics_page_family(p, "xs_conflicts_pending", "gauge",
                             "Conflicts waiting for a person (status PENDING), by entity.");
    for (size_t i = 0; ok && i < nent; i++) {
        const char *l[] = {"entity", ents[i].name, NULL};
        orch_metrics_page_sample(p, "xs_conflicts_pending", l,
                                 figure(f->conflicts, ents[i].name, 1));
    }
}

void orch_api_metrics(xs_http_req *req, void *arg)
{
    orch *o = arg;
    db_figures f = {0};
    bool ok = db_read(o, &f);
    orch_metrics_page *p = orch_metrics_page_new();
    if (p == NULL) {
        db_free(&f);
        xs_http_reply_error(req, 500, "internal", NULL, "out of memory");
        return;
    }
    orch_metrics_page_write(o->metrics, p);
    write_reported(o, p);
    write_replicas(o, p);
    write_budget(o, p);
    write_db(p, &f, ok);
    db_free(&f);
    size_t len = 0;
    char *text = orch_metrics_page_take(p, &len);
    if (text == NULL) {
        xs_http_reply_error(req, 500, "internal", NULL, "out of memory");
        return;
    }
    xs_http_add_header(req, "Cache-Control", "no-store");
    xs_http_reply(req, 200, CONTENT_TYPE, text, len);
    free(text);
}
