/* inbox.c: Xero's webhook events turned into runs (see inbox.h). */
#include "inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs.h"
#include "worker.h"
#include "xs/clock.h"
#include "xs/json.h"

/* The most events one pass takes (the rest wait for the next). */
#define TAKE_MAX "5000"

/* The categories of Xero's webhook events the engine syncs, and their entities (Xero sends
 * CONTACT and INVOICE events; none for payments). */
static const struct {
    const char *category, *entity;
} realtime[] = {{"CONTACT", "contact"}, {"INVOICE", "invoice"}};

const char *orch_inbox_entity_of(const char *category)
{
    for (size_t i = 0; i < sizeof(realtime) / sizeof(realtime[0]); i++) {
        if (strcmp(category, realtime[i].category) == 0) {
            return realtime[i].entity;
        }
    }
    return NULL;
}

bool orch_inbox_realtime(const char *entity)
{
    for (size_t i = 0; i < sizeof(realtime) / sizeof(realtime[0]); i++) {
        if (strcmp(entity, realtime[i].entity) == 0) {
            return true;
        }
    }
    return false;
}

/* add_id appends id to fetch[entity] unless seen (entity "/" id -> true, for the same fetch)
 * holds it already: a pass takes up to TAKE_MAX events, so no scan of the list per id. */
static void add_id(json_t *fetch, json_t *seen, const char *entity, const char *id)
{
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", entity, id);
    if (json_object_get(seen, key) != NULL) {
        return;
    }
    json_object_set_new(seen, key, json_true());
    json_t *list = json_object_get(fetch, entity);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(fetch, entity, list);
    }
    json_array_append_new(list, json_string(id));
}

/* tally_rows appends [result, lag in ms] to tally for each row of r (a lag in column 0). */
static void tally_rows(json_t *tally, const xs_pg_res *r, const char *result)
{
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        int64_t lag = 0;
        xs_pg_res_int(r, i, 0, &lag);
        json_array_append_new(tally, json_pack("[s, I]", result, (json_int_t)lag));
    }
}

/* mark sets the status of the events ids (a JSON array of their ids) to status, and tallies
 * each as result (for the metrics, once the transaction committed). */
static xs_err mark(xs_pg *pg, const json_t *ids, const char *status, json_t *tally,
                   const char *result)
{
    if (json_array_size(ids) == 0) {
        return XS_OK;
    }
    char *text = xs_json_dump(ids, 0);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "UPDATE sync.webhook_events SET status = $2, processed_at = now(), "
                       "attempts = attempts + 1 WHERE id IN (SELECT jsonb_array_elements_text("
                       "$1::jsonb)::bigint) RETURNING (extract(epoch FROM processed_at - "
                       "received_at) * 1000)::bigint",
                       text, status);
    free(text);
    if (e == XS_OK) {
        tally_rows(tally, r, result);
    }
    xs_pg_res_free(r);
    return e;
}

/* run_for makes the webhook run of connection conn over fetch; its events (ids) are done, or
 * ignored when no entity of them is one the connection syncs. */
static xs_err run_for(orch *o, xs_pg *pg, const char *conn, json_t *fetch, const json_t *ids,
                      int *runs, json_t *tally)
{
    char run[40];
    /* One webhook run waits per connection at most: a waiting one's records join this one. */
    xs_err e = json_object_size(fetch) > 0
                   ? orch_run_absorb(o, pg, conn, "entity", "webhook", "fetch", fetch)
                   : XS_OK;
    if (e != XS_OK) {
        return e;
    }
    json_t *in = json_pack("{s:O}", "fetch", fetch);
    e = json_object_size(fetch) > 0
            ? orch_run_create(o, pg, conn, "entity", "webhook", NULL, in, run)
            : XS_ENOTFOUND;
    json_decref(in);
    if (e == XS_OK) {
        (*runs)++;
        return mark(pg, ids, "done", tally, "run");
    }
    return e == XS_ENOTFOUND ? mark(pg, ids, "ignored", tally, "ignored") : e;
}

/* take_rows turns the rows of r (event id, category, resource id, connection, known; ordered
 * by connection) into one run per connection; the events of versions the connection holds
 * already are done without a call. */
static xs_err take_rows(orch *o, xs_pg *pg, const xs_pg_res *r, int *runs, json_t *tally)
{
    xs_err e = XS_OK;
    json_t *fetch = json_object(), *ids = json_array(), *ignored = json_array();
    json_t *known = json_array(), *seen = json_object();
    char conn[40] = "";
    for (int i = 0; e == XS_OK && i <= xs_pg_res_nrows(r); i++) {
        const char *c = i < xs_pg_res_nrows(r) ? xs_pg_res_get(r, i, 3) : NULL;
        if (conn[0] != '\0' && (c == NULL || strcmp(c, conn) != 0)) {
            e = run_for(o, pg, conn, fetch, ids, runs, tally);
            json_object_clear(fetch);
            json_object_clear(seen);
            json_array_clear(ids);
        }
        if (c == NULL) {
            break;
        }
        snprintf(conn, sizeof(conn), "%s", c);
        json_t *id = json_string(xs_pg_res_get(r, i, 0));
        const char *entity = orch_inbox_entity_of(xs_pg_res_get(r, i, 1));
        const char *have = xs_pg_res_get(r, i, 4);
        if (entity != NULL && have != NULL && strcmp(have, "t") == 0) {
            json_array_append_new(known, id); /* e.g. the echo of our own push */
        } else if (entity != NULL) {
            add_id(fetch, seen, entity, xs_pg_res_get(r, i, 2));
            json_array_append_new(ids, id);
        } else {
            json_array_append_new(ignored, id);
        }
    }
    if (e == XS_OK) {
        e = mark(pg, ignored, "ignored", tally, "ignored");
    }
    if (e == XS_OK && json_array_size(known) > 0) {
        xs_log_debug(o->proc.log, "webhook.known", "{s:i}", "events", (int)json_array_size(known));
        e = mark(pg, known, "done", tally, "known");
    }
    json_decref(known);
    json_decref(seen);
    json_decref(fetch);
    json_decref(ids);
    json_decref(ignored);
    return e;
}

xs_err orch_inbox_take(orch *o, xs_pg *pg, int *runs)
{
    *runs = 0;
    char delay[24];
    snprintf(delay, sizeof(delay), "%lld", (long long)o->webhook_delay_ms);
    xs_pg_res *r = NULL;
    json_t *tally = json_array(); /* [result, lag ms] of each event finished with */
    xs_err e = xs_pg_begin(pg);
    /* Events of a tenant with no active connection are kept, but nothing acts on them; those
     * of a paused one wait, pending, for its resume (the join below takes active ones only). */
    if (e == XS_OK) {
        e = xs_pg_q0(pg, &r,
                     "UPDATE sync.webhook_events e SET status = 'ignored', processed_at = now() "
                     "WHERE e.status = 'pending' AND NOT EXISTS (SELECT 1 FROM sync.connections "
                     "c WHERE c.tenant_id = e.tenant_id AND c.status IN ('active', 'paused')) "
                     "RETURNING (extract(epoch FROM processed_at - received_at) * 1000)::bigint");
        if (e == XS_OK) {
            tally_rows(tally, r, "ignored");
        }
        xs_pg_res_free(r);
        r = NULL;
    }
    if (e == XS_OK) {
        e = xs_pg_q(pg, &r,
                    /* known: the connection holds that record's version of the event's
                     * time or a later one (the echo of its own push, or an event a pull
                     * overtook); the entities Xero sends events for are named as their
                     * categories, in lower case. */
                    "SELECT e.id::text, e.event_category, e.resource_id::text, c.id::text, "
                    "EXISTS (SELECT 1 FROM sync.mappings m WHERE m.connection_id = c.id AND "
                    "m.entity = lower(e.event_category) AND m.xero_id = e.resource_id AND "
                    "m.xero_updated_at >= e.event_date_utc) FROM "
                    "sync.webhook_events e JOIN sync.connections c ON c.tenant_id = e.tenant_id "
                    "AND c.status = 'active' WHERE e.status = 'pending' AND e.tenant_id IN "
                    "(SELECT tenant_id FROM sync.webhook_events WHERE status = 'pending' GROUP BY "
                    "tenant_id HAVING min(received_at) <= now() - $1::bigint * interval '1 "
                    "millisecond') ORDER BY c.id, e.id LIMIT " TAKE_MAX " FOR UPDATE OF e SKIP "
                    "LOCKED",
                    delay);
    }
    if (e == XS_OK) {
        e = take_rows(o, pg, r, runs, tally);
    }
    xs_pg_res_free(r);
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    if (e != XS_OK) {
        xs_pg_rollback(pg);
        *runs = 0;
    } else {
        size_t i;
        json_t *t;
        json_array_foreach(tally, i, t)
        {
            orch_metrics_webhook_processed(o->metrics, json_string_value(json_array_get(t, 0)),
                                           json_integer_value(json_array_get(t, 1)));
        }
    }
    json_decref(tally);
    return e;
}

/* inbox_main takes what is due every quarter of the delay (at most every 250 ms). */
static void *inbox_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    int64_t tick = o->webhook_delay_ms / 4;
    tick = tick < 20 ? 20 : tick > 250 ? 250 : tick;
    while (!atomic_load(&o->stop)) {
        if ((pg == NULL || !xs_pg_is_ok(pg)) &&
            !orch_pg_open(o, &pg, "xs-orchestrator webhooks", NULL, 500)) {
            continue;
        }
        int runs = 0;
        xs_err e = orch_inbox_take(o, pg, &runs);
        if (e != XS_OK) {
            xs_log_warn(o->proc.log, "webhook.take_failed", "{s:s, s:s}", "err", xs_err_name(e),
                        "error", xs_pg_error(pg));
        } else if (runs > 0) {
            xs_log_info(o->proc.log, "webhook.runs", "{s:i}", "runs", runs);
            orch_executors_wake(o);
        }
        xs_clock_sleep_ms(tick);
    }
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_inbox_start(orch *o)
{
    if (pthread_create(&o->inbox, NULL, inbox_main, o) != 0) {
        return XS_ENOMEM;
    }
    o->inbox_started = true;
    return XS_OK;
}

void orch_inbox_stop(orch *o)
{
    if (o->inbox_started) {
        pthread_join(o->inbox, NULL);
        o->inbox_started = false;
    }
}
