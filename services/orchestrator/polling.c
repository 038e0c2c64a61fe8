/* polling.c: adaptive polling of each connection's entities (see polling.h). */
#include "polling.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "settings.h"
#include "xs/json.h"
#include "engine/sync.h"

/* cap is the longest interval of a connection whose incremental interval is base_ms: no
 * back-off when XS_POLL_MAX_EVERY is 0 or shorter than it. */
static int64_t cap(const orch *o, int64_t base_ms)
{
    return o->poll_max_every_ms > base_ms ? o->poll_max_every_ms : base_ms;
}

json_t *orch_poll_entities(const json_t *settings)
{
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        if (all[i].pull && orch_settings_entity_enabled(settings, all[i].name)) {
            json_array_append_new(list, json_string(all[i].name));
        }
    }
    return list;
}

/* The state of one entity as orch_poll_due reads it, times in ms since the epoch (-1: none). */
typedef struct poll_row {
    bool known; /* it has a row */
    int64_t every, next, empty, polled;
    const char *run; /* the last poll's run, not judged yet (borrowed; NULL: none) */
    const char *ran; /* that run's status (NULL: gone) */
    bool pulled;     /* that run has counts of the entity's pull */
    bool found;      /* and they show a change */
    bool stirred;    /* a webhook, a push or another pull's change since it was last weighed */
} poll_row;

/* weigh moves p to what it says now (ms since the epoch): the last poll judged, a stir taken
 * in. Returns the run id to keep (borrowed from p; NULL when judged). */
static const char *weigh(const orch *o, poll_row *p, int64_t base_ms, int64_t now)
{
    int64_t top = cap(o, base_ms);
    if (!p->known) {
        p->every = base_ms;
        p->next = now;
        p->empty = 0;
        return NULL;
    }
    p->every = p->every < base_ms ? base_ms : p->every > top ? top : p->every;
    const char *keep = p->run;
    bool ended = p->ran != NULL && strcmp(p->ran, "queued") != 0 && strcmp(p->ran, "running") != 0;
    if (p->run != NULL && (p->ran == NULL || ended)) {
        keep = NULL;
        if (p->found) {
            p->every = base_ms;
            p->empty = 0;
        } else if (p->pulled) {
            /* Found nothing: twice as long until the next poll, up to the cap. */
            p->every = p->every > top / 2 ? top : p->every * 2;
            p->empty++;
        } else if (p->ran != NULL) {
            p->next = now; /* the pull did not end: it says nothing, poll again */
        }
        if (p->polled >= 0 && p->ran != NULL && (p->found || p->pulled)) {
            p->next = p->polled + p->every;
        }
    }
    if (p->stirred) {
        p->every = base_ms;
        p->empty = 0;
        int64_t back = p->polled >= 0 ? p->polled + base_ms : now;
        p->next = back < p->next ? back : p->next;
    }
    return keep;
}

/* The entities' state with what their last poll found and what stirred them since: one row
 * per entity of $2, in its order. */
static const char *const DUE_SQL =
    "SELECT e.entity, p.entity IS NOT NULL, p.every_ms, (extract(epoch FROM p.next_at) * "
    "1000)::bigint, p.empty_polls, (extract(epoch FROM p.polled_at) * 1000)::bigint, p.run_id, "
    "r.status, r.counts -> e.entity -> 'pull' IS NOT NULL, sync.pull_found(r.counts -> e.entity "
    "-> 'pull'), EXISTS (SELECT 1 FROM sync.runs x WHERE x.connection_id = $1 AND x.created_at "
    "> p.checked_at AND x.mode IN ('push', 'entity') AND e.entity = ANY (x.entities)) OR EXISTS "
    "(SELECT 1 FROM sync.runs x WHERE x.connection_id = $1 AND x.created_at > p.checked_at - "
    "interval '1 day' AND x.finished_at > p.checked_at AND x.id IS DISTINCT FROM p.run_id AND "
    "x.mode IN ('full', 'incremental') AND sync.pull_found(x.counts -> e.entity -> 'pull')), "
    "(extract(epoch FROM now()) * 1000)::bigint FROM jsonb_array_elements_text($2::jsonb) WITH "
    "ORDINALITY AS e(entity, n) LEFT JOIN sync.poll_state p ON p.connection_id = $1 AND "
    "p.entity = e.entity LEFT JOIN sync.runs r ON r.id = p.run_id ORDER BY e.n";

/* Writes back what orch_poll_due weighed ($2: [{entity, every, next, empty, run}]). */
static const char *const WEIGHED_SQL =
    "INSERT INTO sync.poll_state AS p (connection_id, entity, every_ms, next_at, empty_polls, "
    "run_id, checked_at) SELECT $1, m.entity, m.every, timestamptz 'epoch' + m.next * interval "
    "'1 millisecond', m.empty, m.run, now() FROM jsonb_to_recordset($2::jsonb) AS m(entity text, "
    "every bigint, next bigint, empty int, run uuid) ON CONFLICT (connection_id, entity) DO "
    "UPDATE SET every_ms = EXCLUDED.every_ms, next_at = EXCLUDED.next_at, empty_polls = "
    "EXCLUDED.empty_polls, run_id = EXCLUDED.run_id, checked_at = now()";

json_t *orch_poll_due(orch *o, xs_pg *pg, const char *conn, const json_t *entities, int64_t base_ms)
{
    char *list = xs_json_dump(entities, 0);
    xs_pg_res *r = NULL;
    if (list == NULL || xs_pg_q(pg, &r, DUE_SQL, conn, list) != XS_OK) {
        free(list);
        return NULL;
    }
    free(list);
    json_t *due = json_array(), *rows = json_array();
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        poll_row p = {.every = base_ms, .next = -1, .polled = -1};
        int64_t now = 0;
        xs_pg_res_bool(r, i, 1, &p.known);
        xs_pg_res_int(r, i, 2, &p.every);
        xs_pg_res_int(r, i, 3, &p.next);
        xs_pg_res_int(r, i, 4, &p.empty);
        xs_pg_res_int(r, i, 5, &p.polled);
        p.run = xs_pg_res_get(r, i, 6);
        p.ran = xs_pg_res_get(r, i, 7);
        xs_pg_res_bool(r, i, 8, &p.pulled);
        xs_pg_res_bool(r, i, 9, &p.found);
        xs_pg_res_bool(r, i, 10, &p.stirred);
        xs_pg_res_int(r, i, 11, &now);
        const char *entity = xs_pg_res_get(r, i, 0);
        const char *keep = weigh(o, &p, base_ms, now);
        json_t *row =
            json_pack("{s:s, s:I, s:I, s:I}", "entity", entity, "every", (json_int_t)p.every,
                      "next", (json_int_t)p.next, "empty", (json_int_t)p.empty);
        json_object_set_new(row, "run", keep != NULL ? json_string(keep) : json_null());
        json_array_append_new(rows, row);
        if (p.next <= now) {
            json_array_append_new(due, json_string(entity));
        }
    }
    xs_pg_res_free(r);
    char *text = xs_json_dump(rows, 0);
    json_decref(rows);
    xs_err e = text != NULL ? xs_pg_q(pg, NULL, WEIGHED_SQL, conn, text) : XS_ENOMEM;
    free(text);
    if (e != XS_OK) {
        json_decref(due);
        return NULL;
    }
    return due;
}

xs_err orch_poll_note(orch *o, xs_pg *pg, const char *conn, const json_t *entities, const char *run)
{
    (void)o;
    char *list = xs_json_dump(entities, 0);
    xs_err e = list != NULL
                   ? xs_pg_q(pg, NULL,
                             "UPDATE sync.poll_state SET polled_at = now(), run_id = $3, next_at "
                             "= now() + every_ms * interval '1 millisecond', polls = polls + 1 "
                             "WHERE connection_id = $1 AND entity IN (SELECT "
                             "jsonb_array_elements_text($2::jsonb))",
                             conn, list, run)
                   : XS_ENOMEM;
    free(list);
    return e;
}

/* effective is how often entity is polled at interval every_ms on a connection whose
 * incremental schedule fires every base_ms: at the first firing once the interval has passed,
 * and, while h says its webhooks relax the polling, not more often than XS_WEBHOOK_POLL_EVERY
 * for the entities Xero sends webhooks for. */
static int64_t effective(const orch *o, const char *entity, int64_t every_ms, int64_t base_ms,
                         const orch_hookwatch *h)
{
    if (h != NULL && h->relaxed && orch_inbox_realtime(entity) &&
        o->webhook_poll_every_ms > every_ms) {
        every_ms = o->webhook_poll_every_ms;
    }
    return (every_ms + base_ms - 1) / base_ms * base_ms;
}

json_t *orch_poll_json(orch *o, xs_pg *pg, const char *conn, const json_t *settings,
                       const orch_hookwatch *h)
{
    int64_t base = 0;
    int at = 0;
    bool enabled = orch_settings_schedule(settings, "incremental", o->incremental_every_ms,
                                          o->full_at_minutes, &base, &at);
    bool scheduled = o->scheduler_on && enabled;
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT count(*) FROM sync.api_calls a JOIN sync.runs r ON r.id = a.run_id WHERE "
                "a.connection_id = $1 AND a.at > now() - interval '1 hour' AND r.mode = "
                "'incremental' AND r.trigger = 'schedule'",
                conn) != XS_OK) {
        return NULL;
    }
    int64_t calls = 0;
    xs_pg_res_int(r, 0, 0, &calls);
    xs_pg_res_free(r);
    json_t *names = orch_poll_entities(settings);
    char *list = xs_json_dump(names, 0);
    json_decref(names);
    if (list == NULL ||
        xs_pg_q(pg, &r,
                "SELECT e.entity, p.every_ms, p.empty_polls, sync.iso(p.polled_at), "
                "sync.iso(p.next_at) FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY "
                "AS e(entity, n) LEFT JOIN sync.poll_state p ON p.connection_id = $1 AND "
                "p.entity = e.entity ORDER BY e.n",
                conn, list) != XS_OK) {
        free(list);
        return NULL;
    }
    free(list);
    json_t *ents = json_object();
    int64_t hundredths = 0; /* calls per hour, in hundredths: one call a poll finding nothing */
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *entity = xs_pg_res_get(r, i, 0);
        int64_t every = base, empty = 0;
        xs_pg_res_int(r, i, 1, &every);
        xs_pg_res_int(r, i, 2, &empty);
        if (scheduled) {
            int64_t eff = effective(o, entity, every, base, h);
            hundredths += (360000000 + eff / 2) / eff;
        }
        json_t *e = json_pack("{s:I, s:I}", "every_ms", (json_int_t)every, "empty_polls",
                              (json_int_t)empty);
        const char *polled = xs_pg_res_get(r, i, 3), *next = xs_pg_res_get(r, i, 4);
        json_object_set_new(e, "polled_at", polled != NULL ? json_string(polled) : json_null());
        json_object_set_new(e, "next_at", next != NULL ? json_string(next) : json_null());
        json_object_set_new(ents, entity, e);
    }
    xs_pg_res_free(r);
    char est[32];
    snprintf(est, sizeof(est), "%lld.%02lld", (long long)(hundredths / 100),
             (long long)(hundredths % 100));
    return json_pack("{s:I, s:o, s:I, s:o}", "calls_last_hour", (json_int_t)calls,
                     "calls_per_hour_estimate", xs_json_decimal(est), "max_every_ms",
                     (json_int_t)cap(o, base), "entities", ents);
}
