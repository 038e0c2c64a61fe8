/*
 * runs.c: runs, their phases and their steps, kept in PostgreSQL so that a run survives any
 * process being killed: every state change of a step, and what follows from it (the next
 * page, the next phase, the run's end), is one transaction with the run's row locked.
 *
 * A run is a list of phases: the pulls of its entities in dependency order, then their
 * pushes in dependency order. A phase is one or more steps, each of one call to Xero but for
 * pulls:
 *   pull    up to max_pages pages of records changed since the cursor, one call after
 *           another (what follows comes as a new step)
 *   fetch   up to 50 records by Xero id
 *   push    up to 50 local records
 *   scan    a full run's push: walks every local record and sends those that differ
 *   lookup  finds by name the Xero records a push collided with, and links them
 * A phase starts when every step of the one before has ended.
 */
#include "runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"
#include "settings.h"
#include "worker.h"
#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "engine/sync.h"

#define CHUNK       50
#define PUSH_WINDOW 500

static int mode_priority(const char *mode, const char *trigger)
{
    if (strcmp(mode, "push") == 0) {
        return strcmp(trigger, "realtime") == 0 ? 40 : 30;
    }
    if (strcmp(mode, "entity") == 0) {
        /* what Xero said changed (a webhook) comes before other runs but local changes */
        return strcmp(trigger, "webhook") == 0 ? 35 : 20;
    }
    if (strcmp(mode, "incremental") == 0) {
        return 10;
    }
    return 0;
}

/* add_step inserts one step of phase into run (whose row the transaction holds or made). */
static xs_err add_step(xs_pg *pg, const char *run, int phase, const char *entity, const char *kind,
                       json_t *input)
{
    char *text = xs_json_dump(input, 0);
    json_decref(input);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", phase);
    xs_err e = xs_pg_q(pg, NULL,
                       "INSERT INTO sync.run_steps (run_id, seq, phase, entity, kind, input) "
                       "VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM sync.run_steps WHERE "
                       "run_id = $1), $2, $3, $4, $5::jsonb)",
                       run, ph, entity, kind, text);
    free(text);
    return e;
}

/* add_chunks adds one step of kind per 50 ids, under key. */
static xs_err add_chunks(xs_pg *pg, const char *run, int phase, const char *entity,
                         const char *kind, const char *key, const json_t *ids, bool final,
                         int *created)
{
    size_t n = json_array_size(ids);
    for (size_t i = 0; i < n; i += CHUNK) {
        json_t *chunk = json_array();
        for (size_t j = i; j < n && j < i + CHUNK; j++) {
            json_array_append(chunk, json_array_get(ids, j));
        }
        json_t *in = json_pack("{s:o}", key, chunk);
        if (final) {
            json_object_set_new(in, "final", json_true());
        }
        xs_err e = add_step(pg, run, phase, entity, kind, in);
        if (e != XS_OK) {
            return e;
        }
        (*created)++;
    }
    return XS_OK;
}

/* window is the input of a push step of phase: ids [from, from + PUSH_WINDOW) of the phase,
 * and from; "final" when the phase is the last chance of records that waited for others. */
static json_t *window(const json_t *phase, size_t from)
{
    const json_t *ids = json_object_get(phase, "ids");
    json_t *w = json_array();
    for (size_t j = from; j < json_array_size(ids) && j < from + PUSH_WINDOW; j++) {
        json_array_append(w, json_array_get(ids, j));
    }
    json_t *in = json_pack("{s:o, s:I}", "local_ids", w, "from", (json_int_t)from);
    if (json_is_true(json_object_get(phase, "final"))) {
        json_object_set_new(in, "final", json_true());
    }
    return in;
}

/* phase_start creates the first steps of phase idx; *created counts them (0: nothing to do). */
static xs_err phase_start(orch *o, xs_pg *pg, const char *run, const char *conn, int idx,
                          const json_t *phase, int *created)
{
    *created = 0;
    const char *entity = xs_json_str_or(phase, "entity", "");
    const char *op = xs_json_str_or(phase, "op", "");
    if (strcmp(op, "pull") == 0) {
        json_t *cursor = json_pack("{s:i}", "page", 1);
        if (!json_is_true(json_object_get(phase, "full"))) {
            char lb[24];
            snprintf(lb, sizeof(lb), "%lld", (long long)o->lookback_ms);
            xs_pg_res *r = NULL;
            xs_err e = xs_pg_q(pg, &r,
                               "SELECT sync.iso(coalesce((SELECT date_trunc('second', high_water) "
                               "FROM sync.cursors WHERE connection_id = $1 AND entity = $2), "
                               "date_trunc('second', now() - $3::bigint * interval '1 "
                               "millisecond')))",
                               conn, entity, lb);
            if (e != XS_OK) {
                json_decref(cursor);
                return e;
            }
            json_object_set_new(cursor, "since", json_string(xs_pg_res_get(r, 0, 0)));
            xs_pg_res_free(r);
        }
        *created = 1;
        json_t *in = json_pack("{s:o}", "cursor", cursor);
        json_t *filter = json_object_get(phase, "filter");
        if (filter != NULL) {
            json_object_set(in, "filter", filter);
        }
        return add_step(pg, run, idx, entity, "pull", in);
    }
    if (strcmp(op, "fetch") == 0) {
        return add_chunks(pg, run, idx, entity, "fetch", "ids", json_object_get(phase, "ids"),
                          json_is_true(json_object_get(phase, "final")), created);
    }
    if (strcmp(op, "push") == 0) {
        /* One window of ids at a time: the domain service sends the first 50 that changed
         * and says how many it consumed; the next window starts there. */
        json_t *ids = json_object_get(phase, "ids");
        if (json_array_size(ids) == 0) {
            return XS_OK;
        }
        *created = 1;
        return add_step(pg, run, idx, entity, "push", window(phase, 0));
    }
    if (strcmp(op, "scan") == 0) {
        *created = 1;
        return add_step(pg, run, idx, entity, "scan", json_pack("{s:s}", "scan_after", ""));
    }
    return XS_EINVAL;
}

/* How a run ended, for the metrics once its transaction committed. */
typedef orch_run_end run_end;

/* finish_run ends a run: succeeded, partial (some records or steps failed) or failed; how,
 * into *end when not NULL. */
static xs_err finish_run(xs_pg *pg, const char *run, const char *status, const char *error,
                         run_end *end)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "UPDATE sync.runs SET status = CASE WHEN $2 = 'failed' THEN 'failed' WHEN "
                       "EXISTS (SELECT 1 FROM sync.run_steps WHERE run_id = $1 AND status = "
                       "'failed') OR EXISTS (SELECT 1 FROM sync.run_item_errors WHERE run_id = "
                       "$1) THEN 'partial' ELSE 'succeeded' END, error = coalesce($3, error), "
                       "finished_at = now(), started_at = coalesce(started_at, now()) WHERE id = "
                       "$1 RETURNING mode, trigger, status",
                       run, status, error);
    if (e == XS_OK && end != NULL && xs_pg_res_nrows(r) == 1) {
        end->ended = true;
        snprintf(end->mode, sizeof(end->mode), "%s", xs_pg_res_get(r, 0, 0));
        snprintf(end->trigger, sizeof(end->trigger), "%s", xs_pg_res_get(r, 0, 1));
        snprintf(end->status, sizeof(end->status), "%s", xs_pg_res_get(r, 0, 2));
    }
    xs_pg_res_free(r);
    return e;
}

/* advance starts the first phase from idx on that has work, or ends the run (how, into *end
 * when not NULL). */
static xs_err advance(orch *o, xs_pg *pg, const char *run, const char *conn, const json_t *phases,
                      int idx, run_end *end)
{
    int n = (int)json_array_size(phases);
    int created = 0;
    for (; idx < n; idx++) {
        xs_err e = phase_start(o, pg, run, conn, idx, json_array_get(phases, idx), &created);
        if (e != XS_OK) {
            return e;
        }
        if (created > 0) {
            break;
        }
    }
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", idx);
    xs_err e = xs_pg_q(pg, NULL, "UPDATE sync.runs SET phase = $2 WHERE id = $1", run, ph);
    if (e == XS_OK && idx >= n) {
        e = finish_run(pg, run, "done", NULL, end);
    }
    return e;
}

/* add_phase appends {entity, op, ...} when the entity does op and is enabled. */
static void add_phase(json_t *phases, const xs_entity_info *e, const char *op, bool full,
                      const json_t *ids)
{
    json_t *p = json_pack("{s:s, s:s}", "entity", e->name, "op", op);
    if (full) {
        json_object_set_new(p, "full", json_true());
    }
    if (ids != NULL) {
        json_object_set(p, "ids", (json_t *)ids);
    }
    json_array_append_new(phases, p);
}

/* wanted tells whether a run covers entity e. */
static bool wanted(const json_t *entities, const json_t *settings, const xs_entity_info *e)
{
    if (strcmp(e->name, "job") == 0 && !orch_settings_xpm_enabled(settings)) {
        return false; /* asked for or not, XPM only where the connection enabled it */
    }
    if (entities == NULL) {
        return orch_settings_entity_enabled(settings, e->name);
    }
    size_t i;
    json_t *v;
    json_array_foreach(entities, i, v)
    {
        const char *name = xs_json_string_value(v, NULL);
        if (name != NULL && strcmp(name, e->name) == 0) {
            return true;
        }
    }
    return false;
}

/* months_ago writes the date `months` calendar months before now ("YYYY-MM-DD"; the 31st
 * of a shorter month is its last day). */
static void months_ago(xs_time now, int months, char out[32])
{
    char today[16];
    xs_time_format_date(now, today);
    int y = 0, m = 0, d = 0;
    if (sscanf(today, "%d-%d-%d", &y, &m, &d) != 3) {
        snprintf(out, 32, "%s", today);
        return;
    }
    int total = y * 12 + (m - 1) - months;
    y = total / 12;
    m = total % 12 + 1;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int last = days[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    snprintf(out, 32, "%04d-%02d-%02d", y, m, d > last ? last : d);
}

/* linked counts how many of the local records ids (a JSON array of local ids) of entity are
 * linked on conn; -1 when that cannot be told. */
static int64_t linked(xs_pg *pg, const char *conn, const char *entity, const json_t *ids)
{
    char *text = xs_json_dump(ids, 0);
    xs_pg_res *r = NULL;
    int64_t n = -1;
    if (text != NULL &&
        xs_pg_q(pg, &r,
                "SELECT count(DISTINCT local_id) FROM sync.mappings WHERE connection_id = $1 AND "
                "entity = $2 AND local_id IN (SELECT x::uuid FROM "
                "jsonb_array_elements_text($3::jsonb) AS x)",
                conn, entity, text) == XS_OK &&
        xs_pg_res_int(r, 0, 0, &n) != XS_OK) {
        n = -1;
    }
    xs_pg_res_free(r);
    free(text);
    return n;
}

/* pull_first tells whether a push run of trigger reads what changed in entity ent before it
 * sends the records pids. The read decides conflicts and links new records on first sight.
 * Its two exceptions: new records Xero never edits and nothing matches (conflict with nothing,
 * link to nothing); and a realtime push of records all linked already, whose steps read just
 * the records they update, by id, and decide them on that (the claim gives a push of a run
 * without a pull of its entity the permits to re-read, engine.c), one call for the edit either
 * way but never a page of everything else that changed, and never a wait for it. */
static bool pull_first(xs_pg *pg, const char *conn, const char *trigger, const xs_entity_info *ent,
                       const json_t *pids)
{
    int64_t n = linked(pg, conn, ent->name, pids);
    if (ent->immutable && ent->match_keys == NULL && n == 0) {
        return false;
    }
    return !(strcmp(trigger, "realtime") == 0 && n == (int64_t)json_array_size(pids));
}

xs_err orch_run_create(orch *o, xs_pg *pg, const char *conn, const char *mode, const char *trigger,
                       const json_t *entities, const json_t *ids, char run_id[40])
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, "SELECT settings FROM sync.connections WHERE id = $1", conn);
    if (e != XS_OK) {
        return e;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return XS_ENOTFOUND;
    }
    const char *st = xs_pg_res_get(r, 0, 0);
    json_t *settings = xs_json_parse(st, strlen(st), NULL);
    xs_pg_res_free(r);
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    json_t *phases = json_array(), *covered = json_array();
    bool full = strcmp(mode, "full") == 0, push = strcmp(mode, "push") == 0;
    if (strcmp(mode, "entity") == 0 && json_is_object(json_object_get(ids, "fetch"))) {
        /* Records Xero named (a webhook run): each entity's, in dependency order. */
        const json_t *fetch = json_object_get(ids, "fetch");
        for (size_t i = 0; i < n; i++) {
            const json_t *xids = json_object_get(fetch, all[i].name);
            if (json_array_size(xids) == 0 || !all[i].pull || !wanted(NULL, settings, &all[i])) {
                continue;
            }
            add_phase(phases, &all[i], "fetch", false, xids);
            json_array_append_new(covered, json_string(all[i].name));
        }
        if (json_array_size(phases) == 0) {
            e = XS_ENOTFOUND; /* none of them is of an entity the connection syncs */
            goto out;
        }
    } else if (strcmp(mode, "entity") == 0) {
        const xs_entity_info *ent = xs_entity_find(xs_json_str_or(ids, "entity", ""));
        const char *lid = xs_json_str_or(ids, "local_id", NULL);
        const char *xid = xs_json_str_or(ids, "xero_id", NULL);
        if (ent == NULL) {
            e = XS_EINVAL;
            goto out;
        }
        json_t *one = json_pack("[s]", lid != NULL ? lid : xid);
        add_phase(phases, ent, lid != NULL ? "push" : "fetch", false, one);
        json_decref(one);
        json_array_append_new(covered, json_string(ent->name));
    } else {
        /* Pulls in dependency order, then pushes in dependency order; a full run scans each
         * entity right after its pull (the records it depends on were scanned before it, as
         * pushes in dependency order would have them), so after its last pull a run has one
         * scan left, not one per entity: in a mass import, where the claim's round brings every
         * tenant's last pull near the end, the scans no longer all wait until then. */
        for (size_t i = 0; i < n; i++) {
            const xs_entity_info *ent = &all[i];
            const json_t *pids = push ? json_object_get(ids, ent->name) : NULL;
            if (!ent->pull || !wanted(entities, settings, ent) ||
                (push && json_array_size(pids) == 0)) {
                continue;
            }
            if (push && !pull_first(pg, conn, trigger, ent, pids)) {
                json_array_append_new(covered, json_string(ent->name));
                continue;
            }
            int64_t months = 0;
            xs_json_get_int(json_object_get(json_object_get(settings, "import"), ent->name),
                            "months", &months);
            if (full && ent->two_phase && months > 0) {
                /* Two-phase: what is dated in the last `months` months, then every record
                 * still AUTHORISED, whatever its date. */
                add_phase(phases, ent, "pull", full, NULL);
                char from[32];
                months_ago(xs_clock_now(), (int)months, from);
                json_object_set_new(json_array_get(phases, json_array_size(phases) - 1), "filter",
                                    json_pack("{s:s}", "date_from", from));
                add_phase(phases, ent, "pull", full, NULL);
                json_object_set_new(json_array_get(phases, json_array_size(phases) - 1), "filter",
                                    json_pack("{s:[s]}", "statuses", "AUTHORISED"));
            } else {
                add_phase(phases, ent, "pull", full, NULL);
            }
            if (full && ent->push) {
                add_phase(phases, ent, "scan", false, NULL);
            }
            json_array_append_new(covered, json_string(ent->name));
        }
        for (size_t i = 0; i < n && (full || push); i++) {
            const xs_entity_info *ent = &all[i];
            const json_t *pids = push ? json_object_get(ids, ent->name) : NULL;
            if (!ent->push || !wanted(entities, settings, ent) ||
                (push && json_array_size(pids) == 0) || (full && ent->pull)) {
                continue;
            }
            add_phase(phases, ent, full ? "scan" : "push", false, pids);
            if (!ent->pull) {
                /* A push-only entity (documents) has no pull to name it in the run. */
                json_array_append_new(covered, json_string(ent->name));
            }
        }
    }
    char *ptext = xs_json_dump(phases, 0), *etext = xs_json_dump(covered, 0);
    char pri[16];
    snprintf(pri, sizeof(pri), "%d", mode_priority(mode, trigger));
    const char *dir = full ? "both" : push ? "push" : strcmp(mode, "entity") == 0 ? "both" : "pull";
    const char *p[] = {conn, mode, dir, trigger, etext, pri, ptext};
    e = ptext != NULL && etext != NULL
            ? xs_pg_exec(
                  pg, &r,
                  "INSERT INTO sync.runs (connection_id, mode, direction, trigger, entities, "
                  "priority, phases) VALUES ($1, $2, $3, $4, ARRAY(SELECT "
                  "jsonb_array_elements_text($5::jsonb)), $6, $7::jsonb) RETURNING id",
                  7, p)
            : XS_ENOMEM;
    free(ptext);
    free(etext);
    if (e != XS_OK) {
        goto out;
    }
    snprintf(run_id, 40, "%s", xs_pg_res_get(r, 0, 0));
    xs_pg_res_free(r);
    r = NULL;
    /* A run with nothing to do ends here, in its maker's transaction: the metrics do not
     * count it (they count what the orchestrator knows committed). */
    e = advance(o, pg, run_id, conn, phases, 0, NULL);
out:
    xs_pg_res_free(r);
    json_decref(settings);
    json_decref(phases);
    json_decref(covered);
    return e;
}

xs_err orch_run_absorb(orch *o, xs_pg *pg, const char *conn, const char *mode, const char *trigger,
                       const char *op, json_t *ids)
{
    xs_pg_res *r = NULL, *st = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT id, phases FROM sync.runs WHERE connection_id = $1 AND mode = $2 "
                       "AND trigger = $3 AND status = 'queued' ORDER BY created_at LIMIT 1 FOR "
                       "UPDATE SKIP LOCKED",
                       conn, mode, trigger);
    if (e != XS_OK || xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return e;
    }
    const char *run = xs_pg_res_get(r, 0, 0);
    /* Its steps locked: an executor claiming one meanwhile either won (the run started:
     * nothing is absorbed) or finds it gone. */
    e = xs_pg_q(pg, &st,
                "SELECT bool_and(status = 'pending' AND attempts = 0) FROM (SELECT status, "
                "attempts FROM sync.run_steps WHERE run_id = $1 FOR UPDATE) s",
                run);
    bool untouched = e == XS_OK && xs_pg_res_nrows(st) == 1 && xs_pg_res_get(st, 0, 0) != NULL &&
                     strcmp(xs_pg_res_get(st, 0, 0), "t") == 0;
    xs_pg_res_free(st);
    if (!untouched) {
        xs_pg_res_free(r);
        return e;
    }
    const char *pt = xs_pg_res_get(r, 0, 1);
    json_t *phases = xs_json_parse(pt, strlen(pt), NULL);
    size_t i;
    json_t *ph;
    int absorbed = 0;
    json_array_foreach(phases, i, ph)
    {
        const char *ent = xs_json_str_or(ph, "entity", "");
        if (strcmp(xs_json_str_or(ph, "op", ""), op) != 0) {
            continue;
        }
        /* a copy: the caller's lists may be shared */
        json_t *list = json_object_get(ids, ent);
        list = list != NULL ? json_copy(list) : json_array();
        json_object_set_new(ids, ent, list);
        absorbed += orch_ids_merge(list, json_object_get(ph, "ids"));
    }
    json_decref(phases);
    e = xs_pg_q(pg, NULL, "DELETE FROM sync.runs WHERE id = $1", run);
    if (e == XS_OK) {
        xs_log_debug(o->proc.log, "run.absorbed", "{s:s, s:s, s:s, s:i}", "connection", conn, "run",
                     run, "trigger", trigger, "records", absorbed);
    }
    xs_pg_res_free(r);
    return e;
}

/* counts_merge adds a step's counts into the run's counts[entity][direction]. */
static void counts_merge(json_t *counts, const char *entity, const char *dir, const json_t *add)
{
    json_t *ent = json_object_get(counts, entity);
    if (ent == NULL) {
        ent = json_object();
        json_object_set_new(counts, entity, ent);
    }
    json_t *d = json_object_get(ent, dir);
    if (d == NULL) {
        d = json_object();
        json_object_set_new(ent, dir, d);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)add, k, v)
    {
        if (json_is_integer(v)) {
            json_t *cur = json_object_get(d, k);
            json_object_set_new(
                d, k,
                json_integer((cur != NULL ? json_integer_value(cur) : 0) + json_integer_value(v)));
        }
    }
}

/* backoff is the wait before attempt n+1: doubling from the base, capped, with jitter. */
static int64_t backoff(const orch *o, int64_t attempts)
{
    int64_t d = o->backoff_ms;
    for (int64_t i = 1; i < attempts && d < o->backoff_max_ms; i++) {
        d *= 2;
    }
    if (d > o->backoff_max_ms) {
        d = o->backoff_max_ms;
    }
    uint32_t r = 0;
    xs_crypto_random(&r, sizeof(r));
    return d + (d / 4 > 0 ? (int64_t)(r % (uint32_t)(d / 4 + 1)) : 0);
}

int orch_ids_merge(json_t *to, const json_t *from)
{
    /* A set of what `to` holds: a push may carry thousands of ids (a drain takes up to
     * 20,000), so no scan of `to` per id. */
    json_t *have = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(to, i, v)
    {
        if (json_is_string(v)) {
            json_object_set_new(have, json_string_value(v), json_true());
        }
    }
    int added = 0;
    json_array_foreach(from, i, v)
    {
        const char *id = json_string_value(v);
        if (id != NULL && json_object_get(have, id) == NULL) {
            json_object_set_new(have, id, json_true());
            json_array_append(to, v);
            added++;
        }
    }
    json_decref(have);
    return added;
}

/* phase_entry returns params[key][phase] (borrowed), made from init (taken over) when it is
 * not there yet; init is freed otherwise. */
static json_t *phase_entry(json_t *params, const char *key, int phase, json_t *init)
{
    json_t *all = json_object_get(params, key);
    if (all == NULL) {
        all = json_object();
        json_object_set_new(params, key, all);
    }
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", phase);
    json_t *e = json_object_get(all, ph);
    if (e == NULL) {
        json_object_set_new(all, ph, init);
        return init;
    }
    json_decref(init);
    return e;
}

/* note_blocked keeps, in params.blocked[phase], the records of a step that wait for others
 * ({"ids", "on": {entity: ids}}, as the domain service said): when the phase ends, what they
 * wait for is pulled (fetched) or pushed first, then they are, once more and finally. */
static void note_blocked(json_t *params, int phase, const orch_step *s, const json_t *blocked)
{
    bool pulling = strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0;
    json_t *b = phase_entry(params, "blocked", phase,
                            json_pack("{s:s, s:s, s:[], s:{}}", "entity", s->entity, "op",
                                      pulling ? "fetch" : "push", "ids", "on"));
    orch_ids_merge(json_object_get(b, "ids"), json_object_get(blocked, "ids"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(blocked, "on"), k, v)
    {
        if (xs_entity_find(k) == NULL) {
            continue; /* not an entity: nothing to do for it */
        }
        json_t *on = json_object_get(json_object_get(b, "on"), k);
        if (on == NULL) {
            on = json_array();
            json_object_set_new(json_object_get(b, "on"), k, on);
        }
        orch_ids_merge(on, v);
    }
}

/* splice_blocked inserts after phase idx, when records of it waited for others, a phase per
 * entity they wait for (in dependency order), then one of the waiting records themselves,
 * final (one that still waits then fails). Those first phases may wait in turn, one entity
 * further down the dependencies each time. true when phases changed. */
static bool splice_blocked(json_t *phases, json_t *params, int idx)
{
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", idx);
    json_t *all = json_object_get(params, "blocked");
    json_t *b = json_object_get(all, ph);
    if (b == NULL) {
        return false;
    }
    const char *op = xs_json_str_or(b, "op", "push");
    size_t at = (size_t)idx + 1, n;
    const xs_entity_info *ents = xs_entities(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *ids = json_object_get(json_object_get(b, "on"), ents[i].name);
        if (json_array_size(ids) > 0) {
            json_array_insert_new(
                phases, at++,
                json_pack("{s:s, s:s, s:O}", "entity", ents[i].name, "op", op, "ids", ids));
        }
    }
    json_array_insert_new(phases, at,
                          json_pack("{s:s, s:s, s:O, s:b}", "entity",
                                    xs_json_str_or(b, "entity", ""), "op", op, "ids",
                                    json_object_get(b, "ids"), "final", 1));
    json_object_del(all, ph);
    return true;
}

/* A request holds one kind of write (creates, or updates): the records of the other kind a
 * push step met on the way gather in params.again[phase] and go in steps of 50 of their own,
 * as soon as 50 are waiting and, for the rest, when the phase's other steps are done; so a
 * scan of creates and updates mixed still sends full batches. */

/* again_flush adds a push step for each 50 records waiting in params.again[phase] (all of
 * them when all), keeping the rest; *made counts the steps. */
static xs_err again_flush(xs_pg *pg, const char *run, int phase, const char *entity, json_t *params,
                          bool all, int *made)
{
    char ph[16];
    snprintf(ph, sizeof(ph), "%d", phase);
    json_t *waiting = json_object_get(json_object_get(params, "again"), ph);
    json_t *ids = json_object_get(waiting, "ids");
    size_t n = json_array_size(ids);
    size_t take = all ? n : n - n % CHUNK;
    *made = 0;
    if (take == 0) {
        return XS_OK;
    }
    json_t *now = json_array(), *rest = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append(i < take ? now : rest, json_array_get(ids, i));
    }
    xs_err e = add_chunks(pg, run, phase, entity, "push", "local_ids", now,
                          json_is_true(json_object_get(waiting, "final")), made);
    json_decref(now);
    json_object_set_new(waiting, "ids", rest);
    return e;
}

/* again_add gathers the records of another kind a push step of phase met (again). */
static xs_err again_add(xs_pg *pg, const orch_step *s, int phase, json_t *params,
                        const json_t *again)
{
    json_t *waiting = phase_entry(
        params, "again", phase,
        json_pack("{s:[], s:b}", "ids", "final", json_is_true(json_object_get(s->input, "final"))));
    orch_ids_merge(json_object_get(waiting, "ids"), again);
    int made = 0;
    return again_flush(pg, s->run, phase, s->entity, params, false, &made);
}

/* scan_on adds the step that goes on with scan step s after its reply, if the scan is not
 * over: from where it stands, or, when it held no permit and met records to send
 * (calls_needed), from where it began. That step holds permits (its input's "calls": up to
 * how many, engine.c) when the records met wait for it (as many as they need), or when this
 * one made calls (the scan is sending: another pass without permits would likely stop
 * again; up to two, for updates that re-read); else it goes without. */
static xs_err scan_on(xs_pg *pg, const orch_step *s, int phase, const json_t *reply)
{
    int64_t needed = 0, calls = 0;
    xs_json_get_int(reply, "calls_needed", &needed);
    xs_json_get_int(reply, "calls", &calls);
    const char *after = needed > 0 ? xs_json_str_or(s->input, "scan_after", "")
                                   : xs_json_str_or(reply, "next_scan", "");
    if (needed <= 0 && after[0] == '\0') {
        return XS_OK;
    }
    json_t *in = json_pack("{s:s}", "scan_after", after);
    if (in != NULL && (needed > 0 || calls > 0)) {
        json_object_set_new(in, "calls", json_integer(needed > 0 ? needed : 2));
    }
    return add_step(pg, s->run, phase, s->entity, "scan", in);
}

/* follow_ups adds the steps a finished step calls for. */
static xs_err follow_ups(xs_pg *pg, const orch_step *s, int phase, const json_t *phases,
                         const json_t *reply, json_t *params)
{
    xs_err e = XS_OK;
    int64_t consumed = 0, from = 0;
    if (strcmp(s->kind, "push") == 0 && xs_json_get_int(s->input, "from", &from) == XS_OK &&
        xs_json_get_int(reply, "consumed", &consumed) == XS_OK && consumed > 0) {
        const json_t *ph = json_array_get(phases, (size_t)phase);
        size_t next = (size_t)(from + consumed);
        if (next < json_array_size(json_object_get(ph, "ids"))) {
            e = add_step(pg, s->run, phase, s->entity, "push", window(ph, next));
        }
    }
    if (strcmp(s->kind, "pull") == 0) {
        json_t *next = json_object_get(reply, "next");
        if (json_is_object(next)) {
            json_t *in = json_pack("{s:O}", "cursor", next);
            json_t *filter = json_object_get(s->input, "filter");
            if (filter != NULL) {
                json_object_set(in, "filter", filter); /* the next page of the same pull */
            }
            e = add_step(pg, s->run, phase, s->entity, "pull", in);
        }
    }
    const char *resume = xs_json_str_or(reply, "resume", NULL);
    if (resume != NULL && strcmp(s->kind, "pull") == 0) {
        /* Only the last page says where the next pull may start. */
        json_t *rs = json_object_get(params, "resume");
        if (rs == NULL) {
            rs = json_object();
            json_object_set_new(params, "resume", rs);
        }
        json_object_set_new(rs, s->entity, json_string(resume));
    }
    if (e == XS_OK && strcmp(s->kind, "scan") == 0) {
        e = scan_on(pg, s, phase, reply);
    }
    json_t *lookups = json_object_get(reply, "lookups");
    if (e == XS_OK && json_array_size(lookups) > 0) {
        e = add_step(pg, s->run, phase, s->entity, "lookup",
                     json_pack("{s:O}", "lookup_names", lookups));
    }
    json_t *blocked = json_object_get(reply, "blocked");
    if (json_array_size(json_object_get(blocked, "ids")) > 0) {
        note_blocked(params, phase, s, blocked);
    }
    json_t *requeue = json_object_get(reply, "requeue");
    if (e == XS_OK && json_array_size(requeue) > 0) {
        e = add_step(pg, s->run, phase, s->entity, "push",
                     json_pack("{s:O}", "local_ids", requeue));
    }
    json_t *again = json_object_get(reply, "again");
    if (e == XS_OK && json_array_size(again) > 0) {
        e = again_add(pg, s, phase, params, again);
    }
    return e;
}

/* release_claims lets go of the records the ended steps of run held for their pushes
 * (sync.push_claims, migration 0009), but the creates that may be in Xero, whose claims stay
 * until a pull finds them or shows they are not there (release_in_doubt); a record another
 * push wanted meanwhile is queued again. */
static xs_err release_claims(xs_pg *pg, const char *run)
{
    return xs_pg_q(pg, NULL,
                   "WITH gone AS (DELETE FROM sync.push_claims c USING sync.run_steps s WHERE "
                   "c.step_id = s.id AND s.run_id = $1 AND s.status IN ('done', 'failed') AND NOT "
                   "(c.op = 'create' AND c.settled_by IS NOT NULL) RETURNING c.connection_id, "
                   "c.entity, c.local_id, c.wanted) SELECT count(sync.record_change("
                   "k.organisation_id, g.entity, g.local_id, 'update')) FROM gone g JOIN "
                   "sync.connections k ON k.id = g.connection_id WHERE g.wanted",
                   run);
}

/* release_in_doubt, when a pull of entity has read everything Xero changed up to high_water,
 * lets go of the creates in doubt of ended steps that any send of had settled before it: had
 * Xero made one, the pull would have found it and linked it (find_own_creates in
 * engine/push_reply.c). They are queued to be sent anew. */
static xs_err release_in_doubt(xs_pg *pg, const char *conn, const char *entity,
                               const char *high_water)
{
    return xs_pg_q(pg, NULL,
                   "WITH gone AS (DELETE FROM sync.push_claims c WHERE c.connection_id = $1 AND "
                   "c.entity = $2 AND c.op = 'create' AND c.settled_by < $3::timestamptz AND NOT "
                   "EXISTS (SELECT 1 FROM sync.run_steps s JOIN sync.runs r ON r.id = s.run_id "
                   "WHERE s.id = c.step_id AND s.status IN ('pending', 'running') AND r.status IN "
                   "('queued', 'running')) RETURNING c.local_id) SELECT count(sync.record_change("
                   "k.organisation_id, $2, g.local_id, 'update')) FROM gone g JOIN "
                   "sync.connections k ON k.id = $1",
                   conn, entity, high_water);
}

void orch_run_end_count(orch *o, const orch_run_end *end)
{
    if (end->ended) {
        orch_metrics_run_ended(o->metrics, end->mode, end->trigger, end->status);
    }
}

/* count_step counts, once its transaction committed, a step's recorded outcome, the counts
 * its run took in (NULL: none) and the run's end (when it ended). */
static void count_step(orch *o, const orch_step *s, const char *outcome, const json_t *merged,
                       const run_end *end)
{
    orch_metrics_step(o->metrics, s->kind, s->entity, outcome, xs_clock_mono_ms() - s->acquired_ms);
    if (merged != NULL) {
        bool pulling = strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0;
        orch_metrics_records(o->metrics, s->entity, pulling ? "pull" : "push", merged);
    }
    orch_run_end_count(o, end);
}

/* The error of a canceled run, and of its steps that never ran. */
#define CANCELED "canceled by the API"

/* requeue_pushes puts back in the outbox every local record a push of run was to send: the
 * ids of its push phases, of its push steps, and those waiting in its params (again, blocked):
 * a later push sends what it did not; what it sent already reads as unchanged then. */
static xs_err requeue_pushes(xs_pg *pg, const char *run)
{
    return xs_pg_q(
        pg, NULL,
        "WITH r AS (SELECT r.phases, r.params, k.organisation_id FROM sync.runs r JOIN "
        "sync.connections k ON k.id = r.connection_id WHERE r.id = $1), ids AS (SELECT "
        "p->>'entity' AS entity, x AS id FROM r, jsonb_array_elements(r.phases) p, "
        "jsonb_array_elements_text(CASE WHEN jsonb_typeof(p->'ids') = 'array' THEN p->'ids' ELSE "
        "'[]' END) x WHERE p->>'op' = 'push' UNION SELECT s.entity, x FROM sync.run_steps s, "
        "jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.input->'local_ids') = 'array' THEN "
        "s.input->'local_ids' ELSE '[]' END) x WHERE s.run_id = $1 AND s.kind = 'push' UNION "
        "SELECT r.phases->(a.key::int)->>'entity', x FROM r, jsonb_each(CASE WHEN "
        "jsonb_typeof(r.params->'again') = 'object' THEN r.params->'again' ELSE '{}' END) a, "
        "jsonb_array_elements_text(a.value->'ids') x UNION SELECT b.value->>'entity', x FROM r, "
        "jsonb_each(CASE WHEN jsonb_typeof(r.params->'blocked') = 'object' THEN "
        "r.params->'blocked' ELSE '{}' END) b, jsonb_array_elements_text(b.value->'ids') x WHERE "
        "b.value->>'op' = 'push') SELECT count(sync.record_change(r.organisation_id, ids.entity, "
        "ids.id::uuid, 'update')) FROM r, ids WHERE ids.entity IN ('contact', 'invoice', "
        "'payment')",
        run);
}

/* cancel_end ends run, whose row the caller's transaction holds, as canceled once no step of
 * it runs: its steps not done fail (they never ran), the records its pushes held are let go,
 * and those it was to send go back to the outbox. How it ended goes into *end (not NULL). */
static xs_err cancel_end(xs_pg *pg, const char *run, run_end *end)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND status = "
                       "'running'",
                       run);
    int64_t running = 0;
    if (e == XS_OK) {
        xs_pg_res_int(r, 0, 0, &running);
    }
    xs_pg_res_free(r);
    if (e != XS_OK || running > 0) {
        return e;
    }
    e = xs_pg_q(pg, NULL,
                "UPDATE sync.run_steps SET status = 'failed', error = $2, finished_at = now() "
                "WHERE run_id = $1 AND status = 'pending'",
                run, CANCELED);
    if (e == XS_OK) {
        e = release_claims(pg, run);
    }
    if (e == XS_OK) {
        e = requeue_pushes(pg, run);
    }
    if (e == XS_OK) {
        e = xs_pg_q(pg, &r,
                    "UPDATE sync.runs SET status = 'canceled', error = coalesce(error, $2), "
                    "finished_at = now() WHERE id = $1 RETURNING mode, trigger",
                    run, CANCELED);
    }
    if (e == XS_OK && xs_pg_res_nrows(r) == 1) {
        end->ended = true;
        snprintf(end->mode, sizeof(end->mode), "%s", xs_pg_res_get(r, 0, 0));
        snprintf(end->trigger, sizeof(end->trigger), "%s", xs_pg_res_get(r, 0, 1));
        snprintf(end->status, sizeof(end->status), "canceled");
    }
    xs_pg_res_free(r);
    return e;
}

xs_err orch_run_cancel(xs_pg *pg, const char *run, bool *waiting, char status[16],
                       orch_run_end *end)
{
    *waiting = false;
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, "SELECT status FROM sync.runs WHERE id = $1 FOR UPDATE", run);
    if (e != XS_OK) {
        return e;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return XS_ENOTFOUND;
    }
    snprintf(status, 16, "%s", xs_pg_res_get(r, 0, 0));
    xs_pg_res_free(r);
    r = NULL;
    if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0) {
        return XS_ESTATE;
    }
    /* From here no step of it starts (claim in engine.c skips it); pending ones fail now. */
    e = xs_pg_q(pg, NULL,
                "UPDATE sync.runs SET cancel_requested_at = coalesce(cancel_requested_at, now()) "
                "WHERE id = $1",
                run);
    if (e == XS_OK) {
        e = xs_pg_q(pg, NULL,
                    "UPDATE sync.run_steps SET status = 'failed', error = $2, finished_at = now() "
                    "WHERE run_id = $1 AND status = 'pending'",
                    run, CANCELED);
    }
    if (e == XS_OK) {
        e = cancel_end(pg, run, end);
    }
    if (e == XS_OK) {
        e = xs_pg_q(pg, &r, "SELECT status FROM sync.runs WHERE id = $1", run);
    }
    if (e == XS_OK) {
        snprintf(status, 16, "%s", xs_pg_res_get(r, 0, 0));
        *waiting = strcmp(status, "canceled") != 0;
    }
    xs_pg_res_free(r);
    return e;
}

/* step_record_late records the outcome of a step whose run ended (over) or is being canceled
 * while it ran, in the open transaction: its writes are whole, so a done step's counts join
 * the run's (counts, then stored); then a canceled run ends once no step of it runs. */
static xs_err step_record_late(xs_pg *pg, const orch_step *s, const char *outcome,
                               const json_t *reply, const char *error, bool canceling,
                               json_t *counts, run_end *end)
{
    char *rtext = reply != NULL ? xs_json_dump(reply, 0) : NULL;
    xs_err e = xs_pg_q(pg, NULL,
                       "UPDATE sync.run_steps SET status = CASE WHEN $2 = 'done' THEN 'done' ELSE "
                       "'failed' END, result = $3::jsonb, error = $4, finished_at = now() WHERE "
                       "id = $1",
                       s->sid, outcome, rtext, error);
    free(rtext);
    if (e == XS_OK && canceling && strcmp(outcome, "done") == 0) {
        bool pulling = strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0;
        counts_merge(counts, s->entity, pulling ? "pull" : "push",
                     json_object_get(reply, "counts"));
        char *ct = xs_json_dump(counts, 0);
        e = ct != NULL ? xs_pg_q(pg, NULL, "UPDATE sync.runs SET counts = $2::jsonb WHERE id = $1",
                                 s->run, ct)
                       : XS_ENOMEM;
        free(ct);
    }
    if (e == XS_OK) {
        e = release_claims(pg, s->run);
    }
    if (e == XS_OK && canceling) {
        e = cancel_end(pg, s->run, end);
    }
    return e;
}

xs_err orch_step_finish(orch *o, xs_pg *pg, const orch_step *s, const char *outcome,
                        const json_t *reply, const char *error, int64_t retry_ms)
{
    xs_pg_res *r = NULL;
    json_t *phases = NULL, *counts = NULL, *params = NULL;
    run_end end = {0};
    const json_t *merged = NULL; /* the step's counts the run's took in (borrowed from reply) */
    xs_err e = xs_pg_begin(pg);
    if (e != XS_OK) {
        return e;
    }
    e = xs_pg_q(pg, &r,
                "SELECT r.status, r.phase, r.phases, r.counts, r.params, s.phase, "
                "r.cancel_requested_at IS NOT NULL FROM sync.runs r "
                "JOIN sync.run_steps s ON s.run_id = r.id WHERE r.id = $1 AND s.id = $2 FOR UPDATE "
                "OF r",
                s->run, s->sid);
    if (e != XS_OK || xs_pg_res_nrows(r) == 0) {
        e = e != XS_OK ? e : XS_ENOTFOUND;
        goto fail;
    }
    const char *rstatus = xs_pg_res_get(r, 0, 0);
    int64_t run_phase = 0, step_phase = 0;
    xs_pg_res_int(r, 0, 1, &run_phase);
    xs_pg_res_int(r, 0, 5, &step_phase);
    phases = xs_json_parse(xs_pg_res_get(r, 0, 2), strlen(xs_pg_res_get(r, 0, 2)), NULL);
    counts = xs_json_parse(xs_pg_res_get(r, 0, 3), strlen(xs_pg_res_get(r, 0, 3)), NULL);
    params = xs_json_parse(xs_pg_res_get(r, 0, 4), strlen(xs_pg_res_get(r, 0, 4)), NULL);
    bool over = strcmp(rstatus, "queued") != 0 && strcmp(rstatus, "running") != 0;
    bool canceling = false;
    xs_pg_res_bool(r, 0, 6, &canceling);
    xs_pg_res_free(r);
    r = NULL;
    if (phases == NULL || counts == NULL || params == NULL) {
        e = XS_EPROTO;
        goto fail;
    }
    bool retry = strcmp(outcome, "retry") == 0;
    if (retry && s->attempts >= o->step_max_attempts) {
        retry = false;
        outcome = "failed";
    }
    if (over || canceling) {
        /* The run ended (e.g. stopped) or is being canceled while the step ran: record it
         * (a retry is not made) and stop here; a canceled run ends now. */
        e = step_record_late(pg, s, outcome, reply,
                             canceling && strcmp(outcome, "done") != 0 ? CANCELED : error,
                             canceling && !over, counts, &end);
        if (canceling && !over && strcmp(outcome, "done") == 0) {
            merged = json_object_get(reply, "counts");
        }
        if (e == XS_OK) {
            e = xs_pg_commit(pg);
        }
        goto done;
    }
    char *rtext = reply != NULL ? xs_json_dump(reply, 0) : NULL;
    if (strcmp(outcome, "done") == 0) {
        e = xs_pg_q(pg, NULL,
                    "UPDATE sync.run_steps SET status = 'done', result = $2::jsonb, error = NULL, "
                    "finished_at = now() WHERE id = $1",
                    s->sid, rtext);
        bool pulling = strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0;
        counts_merge(counts, s->entity, pulling ? "pull" : "push",
                     json_object_get(reply, "counts"));
        merged = json_object_get(reply, "counts");
        orch_progress_note(params, (int)step_phase, s->kind, s->input, reply);
        if (e == XS_OK) {
            e = follow_ups(pg, s, (int)step_phase, phases, reply, params);
        }
    } else if (retry) {
        char ms[24];
        snprintf(ms, sizeof(ms), "%lld",
                 (long long)(retry_ms > 0 ? retry_ms : backoff(o, s->attempts)));
        e = xs_pg_q(pg, NULL,
                    "UPDATE sync.run_steps SET status = 'pending', not_before = now() + "
                    "$2::bigint * interval '1 millisecond', error = $3, input = input || "
                    "$4::jsonb WHERE id = $1",
                    s->sid, ms, error,
                    reply != NULL && json_is_true(json_object_get(reply, "force_refresh"))
                        ? "{\"force_refresh\": true}"
                        : "{\"force_refresh\": false}");
    } else {
        char msg[1200];
        snprintf(msg, sizeof(msg), "%s%.1100s",
                 strcmp(outcome, "failed") == 0 && s->attempts >= o->step_max_attempts &&
                         strcmp(outcome, "fatal") != 0
                     ? "gave up after the last attempt: "
                     : "",
                 error != NULL ? error : "failed");
        e = xs_pg_q(pg, NULL,
                    "UPDATE sync.run_steps SET status = 'failed', result = $2::jsonb, error = $3, "
                    "finished_at = now() WHERE id = $1",
                    s->sid, rtext, msg);
        if (e == XS_OK && reply != NULL) {
            bool pulling = strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0;
            counts_merge(counts, s->entity, pulling ? "pull" : "push",
                         json_object_get(reply, "counts"));
            merged = json_object_get(reply, "counts");
        }
        if (e == XS_OK && strcmp(outcome, "fatal") == 0) {
            e = xs_pg_q(pg, NULL,
                        "UPDATE sync.run_steps SET status = 'failed', error = $2, finished_at = "
                        "now() WHERE run_id = $1 AND status IN ('pending', 'running')",
                        s->run, msg);
            char *ct = xs_json_dump(counts, 0);
            if (e == XS_OK) {
                e = xs_pg_q(pg, NULL, "UPDATE sync.runs SET counts = $2::jsonb WHERE id = $1",
                            s->run, ct);
            }
            free(ct);
            if (e == XS_OK) {
                e = finish_run(pg, s->run, "failed", msg, &end);
            }
            if (e == XS_OK) {
                e = release_claims(pg, s->run);
            }
            free(rtext);
            if (e == XS_OK) {
                e = xs_pg_commit(pg);
            }
            goto done;
        }
    }
    free(rtext);
    if (e == XS_OK && !retry && (strcmp(s->kind, "push") == 0 || strcmp(s->kind, "scan") == 0)) {
        e = release_claims(pg, s->run); /* only pushes and scans claim records */
    }
    if (e != XS_OK) {
        goto fail;
    }
    char *ct = xs_json_dump(counts, 0), *pt = xs_json_dump(params, 0);
    e = xs_pg_q(pg, NULL,
                "UPDATE sync.runs SET counts = $2::jsonb, params = $3::jsonb WHERE id = $1", s->run,
                ct, pt);
    free(ct);
    free(pt);
    if (e != XS_OK) {
        goto fail;
    }

    /* Has the phase ended? */
    char ph[16];
    snprintf(ph, sizeof(ph), "%lld", (long long)step_phase);
    e = xs_pg_q(pg, &r,
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'running')), count(*) FILTER "
                "(WHERE status = 'failed'), string_agg(error, '; ') FILTER (WHERE status = "
                "'failed') FROM sync.run_steps WHERE run_id = $1 AND phase = $2",
                s->run, ph);
    if (e != XS_OK) {
        goto fail;
    }
    int64_t active = 0, failed = 0;
    xs_pg_res_int(r, 0, 0, &active);
    xs_pg_res_int(r, 0, 1, &failed);
    char why[600];
    snprintf(why, sizeof(why), "%.590s", xs_pg_res_get(r, 0, 2) ? xs_pg_res_get(r, 0, 2) : "");
    xs_pg_res_free(r);
    r = NULL;
    int flushed = 0;
    if (active == 0 && step_phase == run_phase) {
        /* The last records of another kind the phase's pushes met go before it ends. */
        e = again_flush(pg, s->run, (int)run_phase, s->entity, params, true, &flushed);
        char *pa = e == XS_OK && flushed > 0 ? xs_json_dump(params, 0) : NULL;
        if (pa != NULL) {
            e = xs_pg_q(pg, NULL, "UPDATE sync.runs SET params = $2::jsonb WHERE id = $1", s->run,
                        pa);
            free(pa);
        }
    }
    if (e == XS_OK && active == 0 && step_phase == run_phase && flushed == 0) {
        json_t *phase = json_array_get(phases, (size_t)run_phase);
        bool pull = strcmp(xs_json_str_or(phase, "op", ""), "pull") == 0;
        const char *hw = xs_json_str_or(json_object_get(params, "resume"), s->entity, NULL);
        if (pull && failed == 0 && hw != NULL) {
            /* Every page of the pull committed: the cursor moves. */
            e = xs_pg_q(pg, NULL,
                        "INSERT INTO sync.cursors AS c (connection_id, entity, high_water) VALUES "
                        "($1, $2, $3::timestamptz) ON CONFLICT (connection_id, entity) DO UPDATE "
                        "SET high_water = greatest(c.high_water, EXCLUDED.high_water)",
                        s->conn, s->entity, hw);
            if (e == XS_OK && json_object_get(phase, "filter") == NULL) {
                e = release_in_doubt(pg, s->conn, s->entity, hw);
            }
        }
        if (e == XS_OK && pull && failed > 0) {
            char msg[700];
            snprintf(msg, sizeof(msg), "the pull of %s did not complete: %s", s->entity, why);
            e = finish_run(pg, s->run, "failed", msg, &end);
        } else if (e == XS_OK) {
            if (splice_blocked(phases, params, (int)run_phase)) {
                char *pt2 = xs_json_dump(phases, 0), *pa2 = xs_json_dump(params, 0);
                e = pt2 != NULL && pa2 != NULL
                        ? xs_pg_q(pg, NULL,
                                  "UPDATE sync.runs SET phases = $2::jsonb, params = $3::jsonb "
                                  "WHERE id = $1",
                                  s->run, pt2, pa2)
                        : XS_ENOMEM;
                free(pt2);
                free(pa2);
            }
            if (e == XS_OK) {
                e = advance(o, pg, s->run, s->conn, phases, (int)run_phase + 1, &end);
            }
        }
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
done:
    json_decref(phases);
    json_decref(counts);
    json_decref(params);
    if (e == XS_OK) {
        count_step(o, s, over ? (strcmp(outcome, "done") == 0 ? "done" : "failed") : outcome,
                   merged, &end);
        orch_executors_wake(o);
    } else {
        xs_pg_rollback(pg);
    }
    return e;
fail:
    xs_pg_res_free(r);
    xs_pg_rollback(pg);
    json_decref(phases);
    json_decref(counts);
    json_decref(params);
    return e;
}

/* cancel_runs cancels each run whose id is in the first column of r (orch_run_cancel, one
 * transaction each; one that ended meanwhile is left), logging at (what asked). */
static xs_err cancel_runs(orch *o, xs_pg *pg, const xs_pg_res *r, const char *at)
{
    xs_err e = XS_OK;
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        bool waiting = false;
        char status[16];
        orch_run_end end = {0};
        e = xs_pg_begin(pg);
        if (e == XS_OK) {
            e = orch_run_cancel(pg, xs_pg_res_get(r, i, 0), &waiting, status, &end);
            e = e == XS_ESTATE ? XS_OK : e; /* ended meanwhile */
        }
        e = e == XS_OK ? xs_pg_commit(pg) : e;
        if (e != XS_OK) {
            xs_pg_rollback(pg);
        } else {
            orch_run_end_count(o, &end);
            xs_log_info(o->proc.log, waiting ? "run.cancel_requested" : "run.canceled",
                        "{s:s, s:s}", "run", xs_pg_res_get(r, i, 0), "at", at);
        }
    }
    return e;
}

xs_err orch_runs_cancel_connection(orch *o, xs_pg *pg, const char *conn)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT id FROM sync.runs WHERE connection_id = $1 AND status IN "
                       "('queued', 'running') ORDER BY created_at",
                       conn);
    if (e == XS_OK) {
        e = cancel_runs(o, pg, r, "disconnect");
    }
    xs_pg_res_free(r);
    return e;
}

xs_err orch_recover(orch *o, xs_pg *pg, const char *holder, const char *shards, int64_t inflight_ms)
{
    char wait[24];
    snprintf(wait, sizeof(wait), "%lld", (long long)inflight_ms);
    xs_pg_res *r = NULL;
    /* Running for longer than any orchestrator runs a step or a domain service works on one
     * for it: left by a holder that died or gave the shard back, so run again. Not sooner, so
     * one step never runs twice at once (its push claims are its own: they would not stop it).
     * A step of a run whose cancel was asked for, left by a previous holder (it started before
     * this one took the shard), is never run again: it fails with its run below, at once. */
    xs_err e = xs_pg_q(pg, &r,
                       "UPDATE sync.run_steps s SET status = 'pending', not_before = NULL FROM "
                       "sync.runs r, sync.connections c, sync.shard_leases l WHERE s.status = "
                       "'running' AND r.id = s.run_id AND c.id = r.connection_id AND l.shard = "
                       "sync.shard_of(c.tenant_id) AND l.holder = $1 "
                       "AND l.shard = ANY($2::int[]) AND (s.started_at <= now() - $3::bigint * "
                       "interval '1 millisecond' OR (r.cancel_requested_at IS NOT NULL AND "
                       "s.started_at < l.taken_at)) RETURNING s.id",
                       holder, shards, wait);
    if (e == XS_OK && xs_pg_res_nrows(r) > 0) {
        xs_log_info(o->proc.log, "engine.recovered", "{s:i}", "steps", xs_pg_res_nrows(r));
    }
    xs_pg_res_free(r);
    r = NULL;
    /* A run whose cancel was asked for, not ended, with no step running: its holder stopped
     * before it could end it. */
    if (e == XS_OK) {
        e = xs_pg_q(pg, &r,
                    "SELECT id FROM sync.runs r WHERE cancel_requested_at IS NOT NULL AND status "
                    "IN ('queued', 'running') AND sync.shard_of((SELECT c.tenant_id FROM "
                    "sync.connections c WHERE c.id = r.connection_id)) = ANY($1::int[]) "
                    "AND NOT EXISTS (SELECT 1 FROM sync.run_steps s WHERE s.run_id = r.id AND "
                    "s.status = 'running')",
                    shards);
    }
    if (e == XS_OK) {
        e = cancel_runs(o, pg, r, "takeover");
    }
    xs_pg_res_free(r);
    return e;
}
