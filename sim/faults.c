/*
 * faults.c: injected latency and faults.
 *
 * Scripted faults come first: each script entry names a method (or "*"), a path prefix (or
 * "*"), a fault kind, how many matching requests to let through first (skip) and how many
 * to fault (times). Otherwise, with rates set, each request draws its fate from a hash of
 * the seed, the request (method, path, tenant, body) and how many times that same request
 * has been seen: the k-th sending of a given request meets the same fate in every run, how
 * ever the calls interleave, and a retry (k+1) draws again. Latency jitter is drawn the
 * same way. The counts live in a sim_counts, so memory stays bounded however many distinct
 * requests arrive: a request keeps its count while fewer than SIM_COUNTS_CAP other distinct
 * requests have been seen since its last sending (a retry comes long before that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "faults.h"
#include "context.h"
#include "reply.h"
#include "settings.h"
#include "stats.h"
#include "util.h"
#include "xs/crypto.h"

static uint64_t request_hash(sim_call *c, const char *body, size_t len)
{
    uint64_t h = sim__hash64(c->method, strlen(c->method), 1);
    h = sim__hash64(c->path, strlen(c->path), h);
    /* the query parameters that make two reads different requests */
    static const char *const params[] = {
        "page",     "pageSize",        "where",       "order",           "IDs",    "ContactIDs",
        "Statuses", "includeArchived", "summaryOnly", "summarizeErrors", "unitdp", "from",
        "to",       "modifiedSince",   "detailed",    "fields",          NULL};
    for (size_t i = 0; params[i] != NULL; i++) {
        const char *v = xs_http_req_query(c->req, params[i]);
        if (v != NULL) {
            h = sim__hash64(params[i], strlen(params[i]), h);
            h = sim__hash64(v, strlen(v), h);
        }
    }
    const char *tid = xs_http_req_header(c->req, "xero-tenant-id");
    if (tid != NULL) {
        h = sim__hash64(tid, strlen(tid), h);
    }
    return sim__hash64(body, len, h);
}

static bool rates_on(const sim_settings *set)
{
    for (int k = 1; k < SIM_FAULT_NKINDS; k++) {
        if (set->fault_ppm[k] > 0) {
            return true;
        }
    }
    return false;
}

/* occurrence counts how often this request was seen (fault_mu held). */
static uint64_t occurrence(sim *s, uint64_t h)
{
    return sim__counts_bump(&s->occurrences, h);
}

sim_fault_kind sim__fault_pick(sim_call *c, const char *body, size_t len, bool rates)
{
    sim *s = c->s;
    sim_fault_kind kind = SIM_FAULT_NONE;
    uint64_t h = request_hash(c, body, len);
    pthread_mutex_lock(&s->fault_mu);
    for (sim_script **pp = &s->script; *pp != NULL; pp = &(*pp)->next) {
        sim_script *e = *pp;
        bool m = (strcmp(e->method, "*") == 0 || strcasecmp(e->method, c->method) == 0) &&
                 (strcmp(e->path, "*") == 0 || strncasecmp(c->path, e->path, strlen(e->path)) == 0);
        if (!m) {
            continue;
        }
        if (e->skip > 0) {
            e->skip--;
            break;
        }
        kind = e->kind;
        if (--e->times <= 0) {
            *pp = e->next;
            free(e);
        }
        break;
    }
    if (kind == SIM_FAULT_NONE && rates && rates_on(&c->set)) {
        uint64_t n = occurrence(s, h);
        uint64_t u =
            sim__mix64(h ^ sim__mix64(c->set.seed + n * UINT64_C(0x9e3779b97f4a7c15))) % 1000000;
        uint64_t acc = 0;
        for (int k = 1; k < SIM_FAULT_NKINDS; k++) {
            acc += c->set.fault_ppm[k];
            if (u < acc) {
                kind = (sim_fault_kind)k;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->fault_mu);
    /* nil_id acts only on a write with items: it is counted where it acts (api.c) */
    if (kind != SIM_FAULT_NONE && kind != SIM_FAULT_NIL_ID) {
        sim__stats_fault(s, kind);
    }
    return kind;
}

void sim__latency(sim_call *c, const char *body, size_t len)
{
    int64_t ms = c->set.latency_ms;
    if (c->set.jitter_ms > 0) {
        sim *s = c->s;
        uint64_t h = request_hash(c, body, len) ^ UINT64_C(0x6a6974746572);
        pthread_mutex_lock(&s->fault_mu);
        uint64_t n = occurrence(s, h);
        pthread_mutex_unlock(&s->fault_mu);
        ms += (int64_t)(sim__mix64(h ^ sim__mix64(c->set.seed + n)) %
                        (uint64_t)(c->set.jitter_ms + 1));
    }
    c->latency_ms = ms;
    if (ms > 0) {
        sim__hang(c->s, ms);
    }
}

xs_err sim__faults_script_add(sim *s, const json_t *script, char *why)
{
    if (!json_is_array(script)) {
        snprintf(why, 256, "script must be an array");
        return XS_EINVAL;
    }
    sim_script *head = NULL, **tail = &head;
    size_t i;
    json_t *e;
    json_array_foreach(script, i, e)
    {
        const char *method = xs_json_str_or(e, "method", "*");
        const char *path = xs_json_str_or(e, "path", "*");
        const char *fault = xs_json_str_or(e, "fault", "");
        int64_t times = 1, skip = 0;
        xs_json_get_int(e, "times", &times);
        xs_json_get_int(e, "skip", &skip);
        sim_fault_kind k = sim__fault_parse(fault);
        if (!json_is_object(e) || k == SIM_FAULT_NONE || times < 1 || skip < 0 ||
            strlen(method) >= sizeof(head->method) || strlen(path) >= sizeof(head->path)) {
            snprintf(why, 256,
                     "script[%zu]: needs fault (" SIM_FAULT_KIND_LIST
                     "), times >= 1, skip >= 0, method and path",
                     i);
            while (head != NULL) {
                sim_script *n = head->next;
                free(head);
                head = n;
            }
            return XS_EINVAL;
        }
        sim_script *sc = calloc(1, sizeof(*sc));
        if (sc == NULL) {
            while (head != NULL) {
                sim_script *n = head->next;
                free(head);
                head = n;
            }
            return XS_ENOMEM;
        }
        snprintf(sc->method, sizeof(sc->method), "%s", method);
        snprintf(sc->path, sizeof(sc->path), "%s", path);
        sc->kind = k;
        sc->times = times;
        sc->skip = skip;
        *tail = sc;
        tail = &sc->next;
    }
    pthread_mutex_lock(&s->fault_mu);
    sim_script **end = &s->script;
    while (*end != NULL) {
        end = &(*end)->next;
    }
    *end = head;
    pthread_mutex_unlock(&s->fault_mu);
    return XS_OK;
}

json_t *sim__faults_json(sim *s)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&s->fault_mu);
    for (sim_script *e = s->script; e != NULL; e = e->next) {
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:I,s:I}", "method", e->method, "path",
                                             e->path, "fault", sim__fault_name(e->kind), "times",
                                             (json_int_t)e->times, "skip", (json_int_t)e->skip));
    }
    pthread_mutex_unlock(&s->fault_mu);
    return arr;
}

void sim__faults_reset(sim *s)
{
    pthread_mutex_lock(&s->fault_mu);
    while (s->script != NULL) {
        sim_script *n = s->script->next;
        free(s->script);
        s->script = n;
    }
    sim__counts_free(&s->occurrences);
    pthread_mutex_unlock(&s->fault_mu);
}
