/* hookwatch.c: the safety net under Xero's webhooks (see hookwatch.h). */
#include "hookwatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "settings.h"
#include "xs/json.h"
#include "engine/sync.h"

/* realtime_list is the JSON array text (new) of the entities Xero sends webhooks for. */
static char *realtime_list(void)
{
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        if (orch_inbox_realtime(all[i].name)) {
            json_array_append_new(list, json_string(all[i].name));
        }
    }
    char *text = xs_json_dump(list, 0);
    json_decref(list);
    return text;
}

/* missed tells whether counts (a run's counts, text) show records of the webhook entities
 * that its pull created or updated here, or found in conflict: changes in Xero that no
 * webhook run had brought (one that had left them unchanged). */
static bool missed(const char *counts)
{
    if (counts == NULL) {
        return false;
    }
    json_t *c = xs_json_parse(counts, strlen(counts), NULL);
    bool found = false;
    const char *ent;
    json_t *dirs;
    json_object_foreach(c, ent, dirs)
    {
        json_t *pull = json_object_get(dirs, "pull");
        found |= orch_inbox_realtime(ent) &&
                 json_integer_value(json_object_get(pull, "created")) +
                         json_integer_value(json_object_get(pull, "updated")) +
                         json_integer_value(json_object_get(pull, "conflicts")) >
                     0;
    }
    json_decref(c);
    return found;
}

xs_err orch_hookwatch_read(orch *o, xs_pg *pg, const char *conn, const json_t *settings,
                           orch_hookwatch *out)
{
    char silence[24], *ents = realtime_list();
    snprintf(silence, sizeof(silence), "%lld", (long long)o->webhook_silence_ms);
    xs_pg_res *r = NULL;
    /* The last pull of the webhook entities that started (for the interval) and the last
     * that ended (for what it found); times in ms since the epoch. */
    xs_err e =
        ents == NULL
            ? XS_ENOMEM
            : xs_pg_q(
                  pg, &r,
                  "SELECT EXISTS (SELECT 1 FROM sync.webhook_events e WHERE "
                  "e.tenant_id = c.tenant_id AND e.received_at > now() - $2::bigint * interval "
                  "'1 millisecond'), (extract(epoch FROM p.created_at) * 1000)::bigint, "
                  "d.counts::text, (extract(epoch FROM s.next_run_at) * 1000)::bigint, "
                  "(extract(epoch FROM now()) * 1000)::bigint FROM sync.connections c LEFT JOIN "
                  "LATERAL (SELECT created_at FROM sync.runs r WHERE r.connection_id = c.id AND "
                  "r.mode = 'incremental' AND r.entities && ARRAY(SELECT "
                  "jsonb_array_elements_text($3::jsonb)) ORDER BY created_at DESC LIMIT 1) p ON "
                  "true LEFT JOIN LATERAL (SELECT counts FROM sync.runs r WHERE r.connection_id "
                  "= c.id AND r.mode = 'incremental' AND r.status IN ('succeeded', 'partial', "
                  "'failed') AND r.entities && ARRAY(SELECT jsonb_array_elements_text($3::jsonb)) "
                  "ORDER BY finished_at DESC LIMIT 1) d ON true LEFT JOIN sync.schedules s ON "
                  "s.connection_id = c.id AND s.kind = 'incremental' WHERE c.id = $1",
                  conn, silence, ents);
    free(ents);
    if (e == XS_OK && xs_pg_res_nrows(r) == 0) {
        e = XS_ENOTFOUND;
    }
    if (e != XS_OK) {
        xs_pg_res_free(r);
        return e;
    }
    int64_t every = 0, polled = -1, next = -1, now = 0;
    int at = 0;
    bool scheduled = orch_settings_schedule(settings, "incremental", o->incremental_every_ms,
                                            o->full_at_minutes, &every, &at);
    bool heard = strcmp(xs_pg_res_get(r, 0, 0), "t") == 0;
    xs_pg_res_int(r, 0, 1, &polled);
    xs_pg_res_int(r, 0, 3, &next);
    xs_pg_res_int(r, 0, 4, &now);
    bool lost = missed(xs_pg_res_get(r, 0, 2));
    xs_pg_res_free(r);

    orch_hookwatch h = {0};
    h.state = o->webhook_keys[0].bytes == NULL && o->webhook_keys[1].bytes == NULL
                  ? "not_configured"
              : !heard ? "silent"
              : lost   ? "missed"
                       : "healthy";
    h.relaxed = strcmp(h.state, "healthy") == 0 && o->webhook_poll_every_ms > every;
    h.polled_lately = polled >= 0 && now - polled < o->webhook_poll_every_ms;
    if (polled >= 0) {
        xs_time_format_iso(polled, h.polled_at);
    }
    if (scheduled && next >= 0) {
        /* Relaxed: the first time the schedule fires once the relaxed interval has passed
         * (its jitter aside). */
        int64_t due = polled + o->webhook_poll_every_ms;
        if (h.relaxed && polled >= 0 && due > next && every > 0) {
            next += (due - next + every - 1) / every * every;
        }
        xs_time_format_iso(next, h.next_poll_at);
    }
    *out = h;
    return XS_OK;
}

void orch_hookwatch_note(orch *o, xs_pg *pg, const char *conn, const orch_hookwatch *h)
{
    const char *polling = h->relaxed ? "relaxed" : "normal";
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "UPDATE sync.schedules s SET settings = s.settings || jsonb_build_object("
                "'webhooks', jsonb_build_object('state', $2::text, 'polling', $3::text, 'since', "
                "sync.iso(now()))) FROM sync.schedules w WHERE w.connection_id = s.connection_id "
                "AND w.kind = s.kind AND s.connection_id = $1 AND s.kind = 'incremental' AND "
                "(w.settings -> 'webhooks' ->> 'state' IS DISTINCT FROM $2 OR w.settings -> "
                "'webhooks' ->> 'polling' IS DISTINCT FROM $3) RETURNING coalesce(w.settings -> "
                "'webhooks' ->> 'polling', 'normal')",
                conn, h->state, polling) != XS_OK) {
        xs_log_warn(o->proc.log, "webhook.note_failed", "{s:s, s:s}", "connection", conn, "error",
                    xs_pg_error(pg));
        return;
    }
    if (xs_pg_res_nrows(r) > 0 && strcmp(xs_pg_res_get(r, 0, 0), polling) != 0) {
        xs_log_info(o->proc.log, h->relaxed ? "webhook.polling_relaxed" : "webhook.polling_normal",
                    "{s:s, s:s}", "connection", conn, "state", h->state);
    }
    xs_pg_res_free(r);
}

json_t *orch_hookwatch_others(const json_t *settings)
{
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        if (all[i].pull && !orch_inbox_realtime(all[i].name) &&
            orch_settings_entity_enabled(settings, all[i].name)) {
            json_array_append_new(list, json_string(all[i].name));
        }
    }
    return list;
}

void orch_hookwatch_put(const orch_hookwatch *h, json_t *block)
{
    json_object_set_new(block, "state", json_string(h->state));
    json_object_set_new(block, "polling", json_string(h->relaxed ? "relaxed" : "normal"));
    json_object_set_new(block, "polled_at",
                        h->polled_at[0] != '\0' ? json_string(h->polled_at) : json_null());
    json_object_set_new(block, "next_poll_at",
                        h->next_poll_at[0] != '\0' ? json_string(h->next_poll_at) : json_null());
}
