/* replicas.c: live replicas from heartbeats. */
#include "replicas.h"

#include <pthread.h>
#include <stdbool.h>
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
};

xs_err orch_replicas_create(orch_replicas **out, int64_t heartbeat_ms)
{
    orch_replicas *r = calloc(1, sizeof(*r));
    if (r == NULL) {
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
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* prune forgets long-silent entries; r->mu held. */
static void prune(orch_replicas *r, int64_t now_ms)
{
    entry **pp = &r->head;
    while (*pp != NULL) {
        entry *e = *pp;
        if (now_ms - e->last_seen > FORGET_AFTER * r->heartbeat_ms) {
            *pp = e->next;
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
