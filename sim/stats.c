/*
 * stats.c: what the simulator saw, for tests and benchmarks: calls by endpoint and status,
 * rate-limit refusals by problem, the most calls in flight (per tenant and for the app),
 * injected faults, idempotent replays and conflicts, If-Modified-Since headers used and
 * ignored, duplicate creations, and a ring buffer of the latest calls. Endpoints are the
 * routes' names ("GET /Contacts/{id}"), never raw paths: everything unknown counts as
 * "other", and past SIM_STATS_EPS_MAX (endpoint, status) pairs new pairs count as "other"
 * too, so no stream of requests can grow the counters without bound.
 *
 * A duplicate creation is a record created from an item whose content (the item's JSON,
 * keys sorted) equals that of an item which created an earlier record of the same kind in
 * the same tenant through a different request: e.g. a retried PUT of a bill without an
 * Idempotency-Key. An idempotent replay creates nothing and so is never one; two identical
 * items inside one request are not counted either.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"
#include "context.h"
#include "reply.h"
#include "settings.h"
#include "store.h"
#include "util.h"

static const char *const problems[4] = {"concurrent", "minute", "day", "appminute"};
static const char *const kind_names[SIM_NKINDS] = {"Contacts", "Invoices", "Payments", "Accounts",
                                                   "BankTransactions"};

xs_err sim__stats_init(sim *s)
{
    s->calls = calloc((size_t)s->call_log_cap, sizeof(*s->calls));
    return s->calls != NULL ? XS_OK : XS_ENOMEM;
}

void sim__stats_fini(sim *s)
{
    sim__stats_reset(s);
    free(s->calls);
    s->calls = NULL;
}

/* ep_find returns the counter of (endpoint, status), made when new (stats_mu held); past
 * SIM_STATS_EPS_MAX counters, new pairs share "other". NULL only when out of memory. */
static sim_stat_ep *ep_find(sim *s, const char *endpoint, int status)
{
    char key[96];
    snprintf(key, sizeof(key), "%d %s", status, endpoint);
    sim_stat_ep *e = sim__smap_get(&s->eps, key);
    if (e != NULL) {
        return e;
    }
    if (s->eps.n >= SIM_STATS_EPS_MAX && strcmp(endpoint, "other") != 0) {
        return ep_find(s, "other", status);
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    snprintf(e->key, sizeof(e->key), "%s", endpoint);
    e->status = status;
    if (sim__smap_put(&s->eps, key, e, NULL) != XS_OK) {
        free(e);
        return NULL;
    }
    return e;
}

uint64_t sim__stats_begin(sim *s)
{
    pthread_mutex_lock(&s->stats_mu);
    uint64_t id = ++s->req_seq;
    pthread_mutex_unlock(&s->stats_mu);
    return id;
}

void sim__stats_end(sim_call *c)
{
    sim *s = c->s;
    int64_t ms = xs_clock_mono_ms() - c->t0;
    pthread_mutex_lock(&s->stats_mu);
    s->calls_total++;
    sim_stat_ep *e = ep_find(s, c->endpoint, c->status);
    if (e != NULL) {
        e->n++;
    }
    if (s->call_log_cap > 0) {
        uint64_t seq = ++s->call_seq;
        sim_logline *l = &s->calls[(seq - 1) % (uint64_t)s->call_log_cap];
        memset(l, 0, sizeof(*l));
        l->seq = seq;
        l->at = sim__now(s);
        snprintf(l->method, sizeof(l->method), "%s", c->method);
        snprintf(l->endpoint, sizeof(l->endpoint), "%.63s", c->endpoint);
        snprintf(l->path, sizeof(l->path), "%.199s", c->path);
        if (c->tenant != NULL) {
            snprintf(l->tenant, sizeof(l->tenant), "%s", c->tenant->ids);
        }
        snprintf(l->idem, sizeof(l->idem), "%.47s", c->idem);
        snprintf(l->problem, sizeof(l->problem), "%s", c->problem);
        l->status = c->status;
        l->ms = (int32_t)ms;
        l->latency_ms = (int32_t)c->latency_ms;
        l->fault = (uint8_t)c->fault;
    }
    pthread_mutex_unlock(&s->stats_mu);
}

void sim__stats_limited(sim *s, const char *problem)
{
    pthread_mutex_lock(&s->stats_mu);
    for (int k = 0; k < 4; k++) {
        if (strcmp(problem, problems[k]) == 0) {
            s->limited[k]++;
        }
    }
    pthread_mutex_unlock(&s->stats_mu);
}

void sim__stats_fault(sim *s, sim_fault_kind k)
{
    pthread_mutex_lock(&s->stats_mu);
    s->faults[k]++;
    pthread_mutex_unlock(&s->stats_mu);
}

void sim__stats_count(sim *s, const char *what)
{
    pthread_mutex_lock(&s->stats_mu);
    if (strcmp(what, "idem_replay") == 0) {
        s->idem_replays++;
    } else if (strcmp(what, "idem_conflict") == 0) {
        s->idem_conflicts++;
    } else if (strcmp(what, "ims_ignored") == 0) {
        s->ims_ignored++;
    } else if (strcmp(what, "ims_used") == 0) {
        s->ims_used++;
    }
    pthread_mutex_unlock(&s->stats_mu);
}

void sim__stats_dup(sim *s, const sim_dup *d)
{
    pthread_mutex_lock(&s->stats_mu);
    s->dup_count[d->kind]++;
    if (s->ndups == s->capdups) {
        size_t cap = s->capdups ? s->capdups * 2 : 16;
        sim_dup *n = realloc(s->dups, cap * sizeof(*n));
        if (n != NULL) {
            s->dups = n;
            s->capdups = cap;
        }
    }
    if (s->ndups < s->capdups) {
        s->dups[s->ndups++] = *d;
    }
    pthread_mutex_unlock(&s->stats_mu);
}

/* ep_json adds one counter to the by_endpoint object at arg (keeps it). */
static bool ep_json(const char *key, void *val, void *arg)
{
    (void)key;
    const sim_stat_ep *e = val;
    json_t *by = arg;
    json_t *m = json_object_get(by, e->key);
    if (m == NULL) {
        m = json_object();
        json_object_set_new(by, e->key, m);
    }
    char st[16];
    snprintf(st, sizeof(st), "%d", e->status);
    json_object_set_new(m, st, json_integer((json_int_t)e->n));
    return false;
}

json_t *sim__stats_json(sim *s, const sim_tenant *only)
{
    json_t *o = json_object();
    pthread_mutex_lock(&s->stats_mu);
    json_t *by = json_object();
    sim__smap_each(&s->eps, ep_json, by);
    json_object_set_new(o, "calls_total", json_integer((json_int_t)s->calls_total));
    json_object_set_new(o, "by_endpoint", by);
    json_t *lim = json_object();
    uint64_t ltotal = 0;
    for (int k = 0; k < 4; k++) {
        json_object_set_new(lim, problems[k], json_integer((json_int_t)s->limited[k]));
        ltotal += s->limited[k];
    }
    json_object_set_new(lim, "total", json_integer((json_int_t)ltotal));
    json_object_set_new(o, "rate_limited", lim);
    json_t *f = json_object();
    for (int k = 1; k < SIM_FAULT_NKINDS; k++) {
        json_object_set_new(f, sim__fault_name((sim_fault_kind)k),
                            json_integer((json_int_t)s->faults[k]));
    }
    json_object_set_new(o, "faults", f);
    json_object_set_new(o, "idempotency",
                        json_pack("{s:I,s:I}", "replays", (json_int_t)s->idem_replays, "conflicts",
                                  (json_int_t)s->idem_conflicts));
    json_object_set_new(o, "if_modified_since",
                        json_pack("{s:I,s:I}", "used", (json_int_t)s->ims_used, "ignored",
                                  (json_int_t)s->ims_ignored));
    json_t *dk = json_object(), *items = json_array();
    uint64_t dtotal = 0;
    for (size_t i = 0; i < s->ndups; i++) {
        const sim_dup *d = &s->dups[i];
        if (only != NULL && strcmp(d->tenant, only->ids) != 0) {
            continue;
        }
        json_array_append_new(items,
                              json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "tenantId", d->tenant, "kind",
                                        kind_names[d->kind], "first", d->first, "duplicate", d->dup,
                                        "first_request", (json_int_t)d->first_req,
                                        "duplicate_request", (json_int_t)d->dup_req));
    }
    for (int k = 0; k < SIM_NKINDS; k++) {
        uint64_t n = 0;
        for (size_t i = 0; i < s->ndups; i++) {
            if ((int)s->dups[i].kind == k &&
                (only == NULL || strcmp(s->dups[i].tenant, only->ids) == 0)) {
                n++;
            }
        }
        json_object_set_new(dk, kind_names[k], json_integer((json_int_t)n));
        dtotal += n;
    }
    json_object_set_new(
        o, "duplicates",
        json_pack("{s:I,s:o,s:o}", "total", (json_int_t)dtotal, "by_kind", dk, "items", items));
    pthread_mutex_unlock(&s->stats_mu);

    json_t *mif = json_object();
    pthread_mutex_lock(&s->lim_mu);
    json_object_set_new(mif, "app", json_integer((json_int_t)s->app_max_in_flight));
    json_t *per = json_object();
    for (size_t i = 0; i < s->ntenants; i++) {
        const sim_tenant *t = s->tenants[i];
        if (only == NULL || only == t) {
            json_object_set_new(per, t->ids, json_integer((json_int_t)t->max_in_flight));
        }
    }
    json_object_set_new(mif, "tenants", per);
    pthread_mutex_unlock(&s->lim_mu);
    json_object_set_new(o, "max_in_flight", mif);
    return o;
}

json_t *sim__calls_json(sim *s, uint64_t since, size_t limit, const char *tenant)
{
    json_t *arr = json_array();
    if (s->call_log_cap <= 0) {
        return arr;
    }
    pthread_mutex_lock(&s->stats_mu);
    uint64_t last = s->call_seq;
    uint64_t first = last > (uint64_t)s->call_log_cap ? last - (uint64_t)s->call_log_cap + 1 : 1;
    if (since + 1 > first) {
        first = since + 1;
    }
    for (uint64_t q = first; q <= last && json_array_size(arr) < limit; q++) {
        const sim_logline *l = &s->calls[(q - 1) % (uint64_t)s->call_log_cap];
        if (tenant != NULL && strcmp(l->tenant, tenant) != 0) {
            continue;
        }
        char at[XS_TIME_ISO_MAX];
        xs_time_format_iso(l->at, at);
        json_t *e = json_pack("{s:I,s:s,s:s,s:s,s:s,s:i,s:i}", "seq", (json_int_t)l->seq, "at", at,
                              "method", l->method, "endpoint", l->endpoint, "path", l->path,
                              "status", l->status, "ms", (int)l->ms);
        if (l->tenant[0] != '\0') {
            json_object_set_new(e, "tenantId", json_string(l->tenant));
        }
        if (l->idem[0] != '\0') {
            json_object_set_new(e, "idempotency_key", json_string(l->idem));
        }
        if (l->problem[0] != '\0') {
            json_object_set_new(e, "rate_limit_problem", json_string(l->problem));
        }
        if (l->latency_ms > 0) {
            json_object_set_new(e, "latency_ms", json_integer(l->latency_ms));
        }
        if (l->fault != SIM_FAULT_NONE) {
            json_object_set_new(e, "fault", json_string(sim__fault_name((sim_fault_kind)l->fault)));
        }
        json_array_append_new(arr, e);
    }
    pthread_mutex_unlock(&s->stats_mu);
    return arr;
}

void sim__stats_reset(sim *s)
{
    pthread_mutex_lock(&s->stats_mu);
    sim__smap_free(&s->eps, free);
    s->calls_total = 0;
    memset(s->limited, 0, sizeof(s->limited));
    memset(s->faults, 0, sizeof(s->faults));
    s->idem_replays = s->idem_conflicts = s->ims_ignored = s->ims_used = 0;
    memset(s->dup_count, 0, sizeof(s->dup_count));
    free(s->dups);
    s->dups = NULL;
    s->ndups = s->capdups = 0;
    s->call_seq = 0;
    pthread_mutex_unlock(&s->stats_mu);
}
