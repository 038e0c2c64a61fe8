/* replicas.c: live replicas from heartbeats. */
#include "replicas.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

/* Entries not heard from for this many intervals are forgotten altogether. */
#define FORGET_AFTER 30

typedef struct entry {
    struct entry *next;
    xs_bus_domain domain;
    char replica[129];
    int64_t last_seen;
    bool stopping;
    json_t *hb; /* the last heartbeat's body */
} entry;

struct orch_replicas {
    pthread_mutex_t mu;
    int64_t heartbeat_ms;
    entry *head;
    json_t *retired; /* the counters of replicas gone (orch_replicas_counters' form) */
    /* the last heartbeat of each replica run forgotten (run_key -> body), so that its
     * counters leave `retired` again should that very run be heard from once more */
    json_t *tombs;
};

/* At most this many forgotten runs are remembered (the oldest make room). */
#define TOMBS_MAX 1024

/* counters_add adds (sign 1) or takes away (-1) the counters a heartbeat body (borrowed)
 * carries into sums (that form). A malformed sample is skipped: the codec checked only that
 * they are an array. */
static void counters_add(json_t *sums, const json_t *hb, int sign)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(hb, "counters"), i, c)
    {
        const char *name = xs_json_str_or(c, "name", NULL);
        json_t *labels = json_object_get(c, "labels"), *v = json_object_get(c, "value");
        if (name == NULL || name[0] == '\0' || !json_is_integer(v) || json_integer_value(v) < 0 ||
            (labels != NULL && !json_is_object(labels))) {
            continue;
        }
        char *lt = labels != NULL ? json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
        char key[1024];
        snprintf(key, sizeof(key), "%s\x1f%s", name, lt != NULL ? lt : "{}");
        free(lt);
        json_t *sum = json_object_get(sums, key);
        if (sum == NULL) {
            json_object_set_new(sums, key,
                                json_pack("{s:s, s:o, s:I}", "name", name, "labels",
                                          labels != NULL ? json_deep_copy(labels) : json_object(),
                                          "value", (json_int_t)(sign * json_integer_value(v))));
        } else {
            json_t *sv = json_object_get(sum, "value");
            json_integer_set(sv, json_integer_value(sv) + sign * json_integer_value(v));
        }
    }
}

xs_err orch_replicas_create(orch_replicas **out, int64_t heartbeat_ms)
{
    orch_replicas *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return XS_ENOMEM;
    }
    r->retired = json_object();
    r->tombs = json_object();
    if (r->retired == NULL || r->tombs == NULL) {
        json_decref(r->retired);
        json_decref(r->tombs);
        free(r);
        return XS_ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->heartbeat_ms = heartbeat_ms;
    *out = r;
    return XS_OK;
}

void orch_replicas_destroy(orch_replicas *r)
{
    if (r == NULL) {
        return;
    }
    entry *e = r->head;
    while (e != NULL) {
        entry *next = e->next;
        json_decref(e->hb);
        free(e);
        e = next;
    }
    json_decref(r->retired);
    json_decref(r->tombs);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* run_key names one run of a replica: its domain, id, pid and start time. */
static void run_key(char *buf, size_t cap, xs_bus_domain d, const char *rid, const json_t *hb)
{
    snprintf(buf, cap, "%d\x1f%s\x1f%lld\x1f%s", (int)d, rid,
             (long long)json_integer_value(json_object_get(hb, "pid")),
             xs_json_str_or(hb, "started_at", ""));
}

/* retire moves the counters of e's last heartbeat into the retired sums; r->mu held. */
static void retire(orch_replicas *r, const entry *e)
{
    if (e->hb == NULL) {
        return;
    }
    counters_add(r->retired, e->hb, 1);
    if (json_object_size(r->tombs) >= TOMBS_MAX) {
        void *it = json_object_iter(r->tombs);
        json_object_del(r->tombs, json_object_iter_key(it));
    }
    char key[256];
    run_key(key, sizeof(key), e->domain, e->replica, e->hb);
    json_object_set(r->tombs, key, e->hb);
}

/* prune forgets long-silent entries; r->mu held. */
static void prune(orch_replicas *r, int64_t now_ms)
{
    entry **pp = &r->head;
    while (*pp != NULL) {
        entry *e = *pp;
        if (now_ms - e->last_seen > FORGET_AFTER * r->heartbeat_ms) {
            *pp = e->next;
            retire(r, e);
            json_decref(e->hb);
            free(e);
        } else {
            pp = &e->next;
        }
    }
}

static bool is_live(const orch_replicas *r, const entry *e, int64_t now_ms)
{
    return !e->stopping && now_ms - e->last_seen < 3 * r->heartbeat_ms;
}

/* same_run tells whether two heartbeats come from one run of a replica: the same pid and
 * start time. */
static bool same_run(const json_t *a, const json_t *b)
{
    return json_equal(json_object_get(a, "pid"), json_object_get(b, "pid")) &&
           json_equal(json_object_get(a, "started_at"), json_object_get(b, "started_at"));
}

xs_err orch_replicas_observe(orch_replicas *r, const xs_msg *hb, int64_t now_ms)
{
    xs_bus_domain d;
    const char *dname = xs_json_str_or(hb->body, "domain", "");
    const char *rid = xs_json_str_or(hb->body, "replica", "");
    if (xs_bus_domain_parse(dname, &d) != XS_OK || rid[0] == '\0') {
        return XS_EINVAL;
    }
    bool stopping = false;
    xs_json_get_bool(hb->body, "stopping", &stopping);
    pthread_mutex_lock(&r->mu);
    prune(r, now_ms);
    entry *e = r->head;
    while (e != NULL && !(e->domain == d && strcmp(e->replica, rid) == 0)) {
        e = e->next;
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            pthread_mutex_unlock(&r->mu);
            return XS_ENOMEM;
        }
        e->domain = d;
        strncpy(e->replica, rid, sizeof(e->replica) - 1);
        e->next = r->head;
        r->head = e;
    }
    if (e->hb == NULL) {
        /* A run forgotten while silent is heard from again: its counters are its own again. */
        char key[256];
        run_key(key, sizeof(key), d, rid, hb->body);
        json_t *tomb = json_object_get(r->tombs, key);
        if (tomb != NULL) {
            counters_add(r->retired, tomb, -1);
            json_object_del(r->tombs, key);
        }
    } else if (!same_run(e->hb, hb->body)) {
        retire(r, e); /* started again under the same id */
    }
    e->last_seen = now_ms;
    e->stopping = stopping;
    json_decref(e->hb);
    e->hb = json_incref(hb->body);
    pthread_mutex_unlock(&r->mu);
    return XS_OK;
}

int orch_replicas_live(orch_replicas *r, xs_bus_domain domain, int64_t now_ms)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (entry *e = r->head; e != NULL; e = e->next) {
        if (e->domain == domain && is_live(r, e, now_ms)) {
            n++;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

json_t *orch_replicas_counters(orch_replicas *r)
{
    pthread_mutex_lock(&r->mu);
    json_t *sums = json_deep_copy(r->retired);
    for (entry *e = r->head; sums != NULL && e != NULL; e = e->next) {
        counters_add(sums, e->hb, 1);
    }
    pthread_mutex_unlock(&r->mu);
    return sums;
}

json_t *orch_replicas_json(orch_replicas *r, xs_bus_domain domain, int64_t now_ms)
{
    static const char *copied[] = {"pid",  "version", "started_at", "workers",
                                   "busy", "handled", "failed"};
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    for (entry *e = r->head; e != NULL; e = e->next) {
        if (e->domain != domain || !is_live(r, e, now_ms)) {
            continue;
        }
        json_t *o = json_pack("{s:s, s:I}", "replica", e->replica, "last_seen_ms",
                              (json_int_t)(now_ms - e->last_seen));
        if (o == NULL) {
            continue;
        }
        for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
            json_t *v = json_object_get(e->hb, copied[i]);
            if (v != NULL) {
                json_object_set(o, copied[i], v);
            }
        }
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&r->mu);
    return arr;
}
