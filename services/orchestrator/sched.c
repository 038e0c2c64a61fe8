/*
 * sched.c: what starts runs without anyone asking.
 *
 * The scheduler: every active connection has two durable schedules (sync.schedules), a full
 * run daily and an incremental run every XS_SCHEDULE_INCREMENTAL_EVERY, each configurable per
 * connection. The full runs are spread over XS_SCHEDULE_FULL_WINDOW from XS_SCHEDULE_FULL_AT
 * (UTC): each connection's slot in the window comes from a hash of its id, so thousands of
 * tenants do not all start at 02:00 and each keeps its time from day to day; a connection
 * that sets its own time (schedule.full.at), and every one when the window is 0, runs at that
 * time plus a random jitter, as incremental runs are. A new connection's first full run (its
 * initial import) is due at once. A due schedule whose previous run is still going is moved
 * on without starting another. A due incremental run polls only the entities that are due
 * (adaptive polling, polling.h); while a connection's webhooks are healthy, contacts and
 * invoices only every XS_WEBHOOK_POLL_EVERY (hookwatch.h).
 *
 * Start rate: due schedules are taken in batches of BATCH, one transaction each, one batch
 * after another while more are due, up to ORCH_START_WINDOWS times XS_BUDGET_APP_MINUTE runs
 * in any XS_BUDGET_MINUTE_WINDOW (sliding, in sixteenths): a run makes one call at least, so
 * that many runs are at least ten windows of the app-wide budget's work. Runs waiting in the
 * queue cost a row each and nothing at the claim (its cost does not grow with the queue), and
 * a mass import whose runs all start at once has every tenant served from the claim's first
 * round: capped at one window's worth (as it was), 1,000 imports under 500 calls a window
 * were made over 11 s and the tenants made last finished last (bench/RESULTS.md).
 *
 * Realtime push: the change triggers NOTIFY xs_changes with the organisation's id; this
 * thread LISTENs and, XS_PUSH_DELAY after an organisation's first change since its last drain
 * (so a burst within the delay goes together), drains its outbox into one push run per active
 * connection (orch_drain). A connection has one pending push at most: a realtime push run that
 * has not started yet is merged into the new one. The thread also polls every XS_PUSH_POLL, so
 * a notification lost while it was away costs only a delay.
 *
 * Retention: a third thread prunes history older than its XS_RETAIN_* period in small
 * batches (retention.h); it runs whether or not XS_SCHEDULER starts runs.
 *
 * A paused connection gets neither: no schedule fires for it (a due one fires at its resume),
 * and the changes of the entities it syncs stay in the outbox until its resume drains them.
 */
#include "sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hookwatch.h"
#include "polling.h"
#include "documents.h"
#include "jobhooks.h"
#include "retention.h"
#include "runs.h"
#include "settings.h"
#include "worker.h"
#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "engine/sync.h"

#define TICK_MS 1000
#define MAX_IDS 20000
#define BATCH   250 /* due schedules taken in one transaction */

static int64_t jitter(const orch *o)
{
    if (o->jitter_ms <= 0) {
        return 0;
    }
    uint32_t r = 0;
    xs_crypto_random(&r, sizeof(r));
    return (int64_t)(r % (uint32_t)(o->jitter_ms + 1));
}

/* full_window is how long the daily full runs of a connection whose settings are settings
 * are spread over: XS_SCHEDULE_FULL_WINDOW, or 0 when it fixes its own time. */
static int64_t full_window(const orch *o, const json_t *settings)
{
    return orch_settings_full_at_fixed(settings) ? 0 : o->full_window_ms;
}

/* full_slot is connection conn's place in a full-run window of window_ms (ms from its start):
 * from a hash of its id, so the same every day and after every restart, and spread evenly
 * over the window, as the hash's values are. */
static int64_t full_slot(const char *conn, int64_t window_ms)
{
    if (window_ms <= 0) {
        return 0;
    }
    char id[40];
    size_t n = 0;
    for (; conn[n] != '\0' && n < sizeof(id) - 1; n++) {
        id[n] = (char)(conn[n] >= 'A' && conn[n] <= 'F' ? conn[n] - 'A' + 'a' : conn[n]);
    }
    uint8_t sum[XS_SHA256_LEN];
    xs_sha256(id, n, sum);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) {
        h = h << 8 | sum[i];
    }
    return (int64_t)(h % (uint64_t)window_ms);
}

/* move_add appends to moves the move of schedule kind of conn to its next time (see
 * schedules_move): every and at from the connection's settings, window its full runs'. */
static void move_add(const orch *o, json_t *moves, const char *conn, const char *kind,
                     int64_t every_ms, int at, int64_t window_ms)
{
    bool full = strcmp(kind, "full") == 0;
    int64_t slot = full ? full_slot(conn, window_ms) : 0;
    int64_t jit = full && window_ms > 0 ? 0 : jitter(o);
    json_array_append_new(moves, json_pack("{s:s, s:s, s:I, s:i, s:I, s:I, s:I}", "c", conn, "k",
                                           kind, "every", (json_int_t)every_ms, "at", at, "win",
                                           (json_int_t)window_ms, "slot", (json_int_t)slot, "jit",
                                           (json_int_t)jit));
}

/* schedules_move moves the schedules of moves (borrowed: [{c: connection, k: kind, every, at,
 * win, slot, jit}]) to their next times, in one statement: a full one to the next time of day
 * at minutes plus its slot (UTC), an incremental one every ms from now; both plus their jitter.
 * A schedule keeps what its time was made from (settings: every_ms, at_minutes, window_ms),
 * so that a change of them is seen (schedules_recompute). */
static xs_err schedules_move(xs_pg *pg, const json_t *moves)
{
    if (json_array_size(moves) == 0) {
        return XS_OK;
    }
    char *text = xs_json_dump(moves, 0);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    xs_err e = xs_pg_q(
        pg, NULL,
        "WITH m AS (SELECT m.*, date_trunc('day', now() AT TIME ZONE 'UTC') + ((m.at::bigint * "
        "60000 + m.slot) % 86400000) * interval '1 millisecond' AS today FROM "
        "jsonb_to_recordset($1::jsonb) AS m(c uuid, k text, every bigint, at int, win bigint, slot "
        "bigint, jit bigint)) UPDATE sync.schedules s SET next_run_at = CASE WHEN s.kind = 'full' "
        "THEN (m.today + CASE WHEN m.today <= now() AT TIME ZONE 'UTC' THEN interval '1 day' ELSE "
        "interval '0' END) AT TIME ZONE 'UTC' + m.jit * interval '1 millisecond' ELSE now() + "
        "(m.every + m.jit) * interval '1 millisecond' END, settings = s.settings || "
        "jsonb_build_object('every_ms', m.every, 'at_minutes', m.at, 'window_ms', m.win) FROM m "
        "WHERE s.connection_id = m.c AND s.kind = m.k",
        text);
    free(text);
    return e;
}

/* schedules_recompute moves, once at start, the schedules whose times were made from other
 * settings than a connection's now give (XS_SCHEDULE_FULL_AT, XS_SCHEDULE_FULL_WINDOW or
 * XS_SCHEDULE_INCREMENTAL changed while the orchestrator was down): to their next time under
 * the new ones, rather than after the old time fires. A schedule that never ran yet (a new
 * connection's initial import) keeps its time. */
static void schedules_recompute(orch *o, xs_pg *pg)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q0(pg, &r,
                 "SELECT s.connection_id, s.kind, s.settings::text, c.settings::text FROM "
                 "sync.schedules s JOIN sync.connections c ON c.id = s.connection_id WHERE "
                 "s.settings ? 'every_ms'") != XS_OK) {
        return;
    }
    int moved = 0;
    json_t *moves = json_array();
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *conn = xs_pg_res_get(r, i, 0), *kind = xs_pg_res_get(r, i, 1);
        const char *was_t = xs_pg_res_get(r, i, 2), *st = xs_pg_res_get(r, i, 3);
        json_t *was = xs_json_parse(was_t, strlen(was_t), NULL);
        json_t *settings = xs_json_parse(st, strlen(st), NULL);
        int64_t every_ms = 0, was_every = -1, was_at = -1, was_window = -1;
        int at = 0;
        orch_settings_schedule(settings, kind, o->incremental_every_ms, o->full_at_minutes,
                               &every_ms, &at);
        int64_t window = full_window(o, settings);
        xs_json_get_int(was, "every_ms", &was_every);
        xs_json_get_int(was, "at_minutes", &was_at);
        xs_json_get_int(was, "window_ms", &was_window);
        bool changed = strcmp(kind, "full") == 0 ? was_at != at || was_window != window
                                                 : was_every != every_ms;
        if (changed) {
            move_add(o, moves, conn, kind, every_ms, at, window);
            moved++;
        }
        json_decref(was);
        json_decref(settings);
        if (json_array_size(moves) >= BATCH || (i == xs_pg_res_nrows(r) - 1)) {
            if (schedules_move(pg, moves) != XS_OK) {
                xs_log_warn(o->proc.log, "schedule.recompute_failed", "{s:s}", "error",
                            xs_pg_error(pg));
            }
            json_array_clear(moves);
        }
    }
    json_decref(moves);
    xs_pg_res_free(r);
    if (moved > 0) {
        xs_log_info(o->proc.log, "schedule.recomputed", "{s:i}", "schedules", moved);
    }
}

/* incremental_entities is what the due incremental run of conn covers (new; NULL when the
 * database failed): the entities settings enable that adaptive polling finds due
 * (polling.h); of those, while the connection's webhooks are healthy and the entities Xero
 * sends them for were pulled less than XS_WEBHOOK_POLL_EVERY ago, the others only. The
 * webhook polling chosen is noted (hookwatch.h). */
static json_t *incremental_entities(orch *o, xs_pg *pg, const char *conn, const json_t *settings,
                                    int64_t every_ms)
{
    orch_hookwatch h;
    bool relax = false;
    if (orch_hookwatch_read(o, pg, conn, settings, &h) == XS_OK) {
        orch_hookwatch_note(o, pg, conn, &h);
        relax = h.relaxed && h.polled_lately;
    }
    json_t *cands = relax ? orch_hookwatch_others(settings) : orch_poll_entities(settings);
    json_t *due = orch_poll_due(o, pg, conn, cands, every_ms);
    json_decref(cands);
    return due;
}

/* A due schedule as schedule_batch reads it. */
typedef struct due_row {
    const char *conn, *kind;
    json_t *settings; /* new */
    bool running;     /* a run of its kind is queued or running */
} due_row;

/* schedule_one starts the run of due schedule d, when it is enabled and none of its kind is
 * under way, and adds its move to its next time to moves. */
static xs_err schedule_one(orch *o, xs_pg *pg, const due_row *d, json_t *moves, int *started)
{
    int64_t every_ms = 0;
    int at = 0;
    bool enabled = orch_settings_schedule(d->settings, d->kind, o->incremental_every_ms,
                                          o->full_at_minutes, &every_ms, &at);
    bool inc = strcmp(d->kind, "incremental") == 0;
    move_add(o, moves, d->conn, d->kind, every_ms, at, full_window(o, d->settings));
    if (!enabled || d->running) {
        return XS_OK;
    }
    json_t *only = inc ? incremental_entities(o, pg, d->conn, d->settings, every_ms) : NULL;
    if (inc && only == NULL) {
        return XS_EIO;
    }
    char run[40] = "";
    xs_err e = XS_OK;
    if (!inc || json_array_size(only) > 0) {
        e = orch_run_create(o, pg, d->conn, d->kind, "schedule", only, NULL, run);
        if (e == XS_OK && inc) {
            e = orch_poll_note(o, pg, d->conn, only, run);
        }
        if (e == XS_OK) {
            (*started)++;
            xs_log_info(o->proc.log, "schedule.run", "{s:s, s:s, s:s}", "connection", d->conn,
                        "kind", d->kind, "run", run);
        }
    }
    json_decref(only);
    return e;
}

/* schedule_batch starts, in one transaction, the runs of up to limit due schedules and moves
 * each to its next time. Returns how many due schedules it took (-1: the database failed);
 * *started counts the runs it made. Due schedules are taken in connection order, the order the
 * claim's round goes (engine.c): when many come due at once (a mass import, a restart after a
 * stop) and take several batches, the runs are made ahead of the round, not behind where it
 * has gone, where each would wait a whole round for its first call (taken in the order they
 * came due, 1,000 imports' first calls were shared with Jain's index 0.72-0.91 where 1.00 was
 * possible). A backlog lasts a few batches: the scheduler may start ten windows' worth of the
 * app's budget in runs a window (ORCH_START_WINDOWS). */
static int schedule_batch(orch *o, xs_pg *pg, int64_t limit, int *started)
{
    char lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)limit);
    if (xs_pg_begin(pg) != XS_OK) {
        return -1;
    }
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT s.connection_id, s.kind, c.settings, EXISTS (SELECT 1 FROM sync.runs r "
                "WHERE r.connection_id = s.connection_id AND r.mode = s.kind AND r.status IN "
                "('queued', 'running')) FROM sync.schedules s JOIN sync.connections c ON c.id = "
                "s.connection_id WHERE c.status = 'active' AND s.next_run_at <= now() ORDER BY "
                "s.connection_id, s.kind LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
                lim) != XS_OK) {
        xs_pg_rollback(pg);
        return -1;
    }
    int n = xs_pg_res_nrows(r), made = 0;
    json_t *moves = json_array();
    xs_err e = XS_OK;
    for (int i = 0; i < n && e == XS_OK; i++) {
        const char *st = xs_pg_res_get(r, i, 2);
        due_row d = {.conn = xs_pg_res_get(r, i, 0),
                     .kind = xs_pg_res_get(r, i, 1),
                     .settings = xs_json_parse(st, strlen(st), NULL)};
        xs_pg_res_bool(r, i, 3, &d.running);
        e = schedule_one(o, pg, &d, moves, &made);
        if (e != XS_OK) {
            xs_log_warn(o->proc.log, "schedule.run_failed", "{s:s, s:s, s:s}", "connection", d.conn,
                        "kind", d.kind, "error", xs_pg_error(pg));
        }
        json_decref(d.settings);
    }
    xs_pg_res_free(r);
    if (e == XS_OK) {
        e = schedules_move(pg, moves);
    }
    json_decref(moves);
    if (e != XS_OK || xs_pg_commit(pg) != XS_OK) {
        xs_pg_rollback(pg);
        return -1;
    }
    *started += made;
    orch_executors_wake(o);
    return n;
}

/* The scheduler's start allowance: the runs it started in each of the last START_SLOTS
 * slots of a window (XS_BUDGET_MINUTE_WINDOW / START_SLOTS each), a sliding window to within
 * a slot, so no window holds more than XS_BUDGET_APP_MINUTE starts wherever it begins. */
#define START_SLOTS 16
typedef struct starts {
    int64_t slot_ms;
    int64_t at[START_SLOTS]; /* the slot (monotonic ms / slot_ms) a count is of; -1: none */
    int64_t n[START_SLOTS];
} starts;

/* starts_recent counts the starts of the slots within the window that ends at now. */
static int64_t starts_recent(const starts *s, int64_t now)
{
    int64_t cur = now / s->slot_ms, sum = 0;
    for (int i = 0; i < START_SLOTS; i++) {
        sum += s->at[i] > cur - START_SLOTS ? s->n[i] : 0;
    }
    return sum;
}

/* starts_add counts n starts at now. */
static void starts_add(starts *s, int64_t now, int64_t n)
{
    int64_t cur = now / s->slot_ms;
    int i = (int)(cur % START_SLOTS);
    if (s->at[i] != cur) {
        s->at[i] = cur;
        s->n[i] = 0;
    }
    s->n[i] += n;
}

/* schedule_tick makes the schedules of new connections and starts the runs that are due: in
 * batches of BATCH, one after another while more are due, up to o->start_limit
 * (ORCH_START_WINDOWS times XS_BUDGET_APP_MINUTE) runs in any XS_BUDGET_MINUTE_WINDOW.
 * Returns true when due schedules were left for want of allowance. */
static bool schedule_tick(orch *o, xs_pg *pg, starts *s)
{
    char every[24], jit[24];
    snprintf(every, sizeof(every), "%lld", (long long)o->incremental_every_ms);
    snprintf(jit, sizeof(jit), "%lld", (long long)jitter(o));
    /* A new connection: the initial full import now, the first incremental one interval on. */
    xs_pg_q(pg, NULL,
            "INSERT INTO sync.schedules (connection_id, kind, next_run_at) SELECT c.id, k.kind, "
            "CASE k.kind WHEN 'full' THEN now() ELSE now() + ($1::bigint + $2::bigint) * "
            "interval '1 millisecond' END FROM sync.connections c CROSS JOIN (VALUES ('full'), "
            "('incremental')) AS k(kind) WHERE c.status = 'active' AND NOT EXISTS (SELECT 1 FROM "
            "sync.schedules s WHERE s.connection_id = c.id AND s.kind = k.kind) ON CONFLICT DO "
            "NOTHING",
            every, jit);
    for (;;) {
        int64_t left = o->start_limit - starts_recent(s, xs_clock_mono_ms());
        if (left <= 0) {
            return true;
        }
        int64_t limit = left < BATCH ? left : BATCH;
        int made = 0;
        int n = schedule_batch(o, pg, limit, &made);
        starts_add(s, xs_clock_mono_ms(), made);
        if (n < limit || atomic_load(&o->stop)) {
            return false;
        }
    }
}

static void *scheduler_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    bool recomputed = false;
    starts s = {.slot_ms =
                    o->start_window_ms / START_SLOTS > 0 ? o->start_window_ms / START_SLOTS : 1};
    for (int i = 0; i < START_SLOTS; i++) {
        s.at[i] = -1;
    }
    while (!atomic_load(&o->stop)) {
        if ((pg == NULL || !xs_pg_is_ok(pg)) &&
            !orch_pg_open(o, &pg, "xs-orchestrator scheduler", NULL, TICK_MS)) {
            continue;
        }
        if (!recomputed) {
            schedules_recompute(o, pg);
            recomputed = true;
        }
        bool held = schedule_tick(o, pg, &s);
        orch_documents_requeue(o, pg);
        /* Held back by the allowance: the next tick comes when the next slot begins. */
        int64_t wait = held ? s.slot_ms - xs_clock_mono_ms() % s.slot_ms : TICK_MS;
        wait = wait < TICK_MS / 10 ? TICK_MS / 10 : wait > TICK_MS ? TICK_MS : wait;
        for (int64_t slept = 0; slept < wait && !atomic_load(&o->stop); slept += TICK_MS / 10) {
            xs_clock_sleep_ms(TICK_MS / 10);
        }
    }
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_drain(orch *o, xs_pg *pg, const char *org, const char *conn, char run_of[40])
{
    if (run_of != NULL) {
        run_of[0] = '\0';
    }
    xs_err e = xs_pg_begin(pg);
    /* One drain of an organisation at a time, across orchestrators: a second one waits, then
     * finds the changes processed (a connection keeps one pending push). */
    if (e == XS_OK) {
        e = xs_pg_q(pg, NULL, "SELECT pg_advisory_xact_lock(hashtext('xs_drain'), hashtext($1))",
                    org);
    }
    if (e != XS_OK) {
        xs_pg_rollback(pg);
        return e;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", MAX_IDS);
    xs_pg_res *ch = NULL, *cs = NULL;
    json_t *ids = NULL;
    /* Only changes of entities the engine pushes; others wait for a release that does. */
    size_t ne;
    const xs_entity_info *all = xs_entities(&ne);
    json_t *pushable = json_array();
    for (size_t i = 0; i < ne; i++) {
        if (all[i].push) {
            json_array_append_new(pushable, json_string(all[i].name));
        }
    }
    char *pt = xs_json_dump(pushable, 0);
    json_decref(pushable);
    e = xs_pg_q(pg, &ch,
                "SELECT id, entity, local_id FROM sync.changes WHERE organisation_id = $1 AND "
                "processed_at IS NULL AND entity IN (SELECT jsonb_array_elements_text($3::jsonb)) "
                "ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED",
                org, lim, pt);
    free(pt);
    if (e != XS_OK) {
        goto fail;
    }
    if (xs_pg_res_nrows(ch) == 0) {
        xs_pg_res_free(ch);
        return xs_pg_commit(pg);
    }
    ids = json_object();
    json_t *rows = json_array();
    for (int i = 0; i < xs_pg_res_nrows(ch); i++) {
        const char *entity = xs_pg_res_get(ch, i, 1);
        json_t *list = json_object_get(ids, entity);
        if (list == NULL) {
            list = json_array();
            json_object_set_new(ids, entity, list);
        }
        json_array_append_new(list, json_string(xs_pg_res_get(ch, i, 2)));
        json_array_append_new(
            rows, json_pack("{s:s, s:s}", "id", xs_pg_res_get(ch, i, 0), "entity", entity));
    }
    /* Entities some active connection has not imported yet: their changes wait (that
     * connection's initial import, and its scan, come first); so do those a paused connection
     * syncs, in the outbox until its resume. */
    json_t *waiting = json_object();
    e = xs_pg_q(pg, &cs,
                "SELECT id, settings, status = 'paused' FROM sync.connections WHERE "
                "organisation_id = $1 AND status IN ('active', 'paused') ORDER BY id",
                org);
    if (e != XS_OK) {
        json_decref(rows);
        json_decref(waiting);
        goto fail;
    }
    for (int i = 0; i < xs_pg_res_nrows(cs); i++) {
        const char *cid = xs_pg_res_get(cs, i, 0);
        const char *st = xs_pg_res_get(cs, i, 1);
        bool paused = false;
        xs_pg_res_bool(cs, i, 2, &paused);
        json_t *settings = xs_json_parse(st, strlen(st), NULL);
        /* Only what this connection syncs and can push, and only once its initial import
         * of the entity is done: it has a cursor (before that, a local record may match one
         * in Xero that is not yet linked), and its first full run has ended, scan and all
         * (the scan sends every local record that differs; a push run beside it would send
         * some of the same records, splitting batches between the two). */
        json_t *mine = json_object();
        const char *ent;
        json_t *list;
        json_object_foreach(ids, ent, list)
        {
            const xs_entity_info *info = xs_entity_find(ent);
            xs_pg_res *cur = NULL;
            /* An entity never pulled (documents) has no cursor: only the first full run's
             * end counts. */
            bool imported =
                !paused &&
                xs_pg_q(pg, &cur,
                        "SELECT 1 WHERE (NOT $3::boolean OR EXISTS (SELECT 1 FROM sync.cursors "
                        "WHERE connection_id = $1 AND entity = $2 AND high_water IS NOT NULL)) "
                        "AND NOT (EXISTS (SELECT 1 FROM sync.runs r WHERE "
                        "r.connection_id = $1 AND r.mode = 'full' AND r.status IN ('queued', "
                        "'running') AND (r.entities = '{}' OR $2 = ANY (r.entities))) AND NOT "
                        "EXISTS (SELECT 1 FROM sync.runs r WHERE r.connection_id = $1 AND r.mode "
                        "= 'full' AND r.status IN ('succeeded', 'partial') AND (r.entities = '{}' "
                        "OR $2 = ANY (r.entities))))",
                        cid, ent, info != NULL && info->pull ? "true" : "false") == XS_OK &&
                xs_pg_res_nrows(cur) > 0;
            xs_pg_res_free(cur);
            bool enabled =
                info != NULL && info->push && orch_settings_entity_enabled(settings, ent);
            if (enabled && imported) {
                json_object_set(mine, ent, list);
            } else if (enabled) {
                json_object_set_new(waiting, ent, json_true());
            }
        }
        json_decref(settings);
        char run[40] = "";
        if (json_object_size(mine) > 0 && conn == NULL) {
            e = orch_run_absorb(o, pg, cid, "push", "realtime", "push", mine);
        }
        if (e == XS_OK &&
            (json_object_size(mine) > 0 || (conn != NULL && strcmp(cid, conn) == 0 && !paused))) {
            e = orch_run_create(o, pg, cid, "push", conn != NULL ? "api" : "realtime", NULL, mine,
                                run);
        }
        json_decref(mine);
        if (e != XS_OK) {
            json_decref(rows);
            json_decref(waiting);
            goto fail;
        }
        if (run_of != NULL && conn != NULL && strcmp(cid, conn) == 0) {
            snprintf(run_of, 40, "%s", run);
        }
    }
    /* Every connection now has durable steps for these changes: they are processed. A
     * record changed again meanwhile has a new pending row (the trigger waits for this
     * transaction's row locks, then inserts afresh). */
    json_t *done = json_array();
    size_t ri;
    json_t *row;
    json_array_foreach(rows, ri, row)
    {
        if (json_object_get(waiting, xs_json_str_or(row, "entity", "")) == NULL) {
            json_array_append_new(done, json_string(xs_json_str_or(row, "id", "")));
        }
    }
    json_decref(waiting);
    char *rt = xs_json_dump(done, 0);
    json_decref(rows);
    json_decref(done);
    e = xs_pg_q(pg, NULL,
                "UPDATE sync.changes SET processed_at = now() WHERE id IN (SELECT value::bigint "
                "FROM jsonb_array_elements_text($1::jsonb))",
                rt);
    free(rt);
    if (e != XS_OK) {
        goto fail;
    }
    e = xs_pg_commit(pg);
    xs_log_info(o->proc.log, "push.drained", "{s:s, s:i, s:i}", "organisation", org, "changes",
                xs_pg_res_nrows(ch), "connections", xs_pg_res_nrows(cs));
    xs_pg_res_free(ch);
    xs_pg_res_free(cs);
    json_decref(ids);
    orch_executors_wake(o);
    return e;
fail:
    xs_pg_res_free(ch);
    xs_pg_res_free(cs);
    json_decref(ids);
    xs_pg_rollback(pg);
    return e;
}

/* The realtime thread's memory: seen holds the organisations notified since their last drain
 * (id -> when they are due, monotonic ms), last when each was last drained (kept while it
 * still bounds the next). */
typedef struct drains {
    json_t *seen, *last;
} drains;

/* drain_one drains org, forgets its notification and remembers when (a failure is logged;
 * the poll tries again). */
static void drain_one(orch *o, xs_pg *pg, const char *org, drains *d, int64_t now)
{
    if (orch_drain(o, pg, org, NULL, NULL) != XS_OK) {
        xs_log_warn(o->proc.log, "push.drain_failed", "{s:s, s:s}", "organisation", org, "error",
                    xs_pg_error(pg));
    }
    json_object_set_new(d->last, org, json_integer(now));
    json_object_del(d->seen, org);
}

/* drain_noted takes a notification of org's changes at now: due XS_PUSH_DELAY after the
 * first since its last drain, and not before XS_PUSH_EVERY after that drain. */
static void drain_noted(const orch *o, drains *d, const char *org, int64_t now)
{
    if (json_object_get(d->seen, org) != NULL) {
        return;
    }
    json_t *last = json_object_get(d->last, org);
    int64_t due = now + o->push_delay_ms;
    if (last != NULL && json_integer_value(last) + o->push_every_ms > due) {
        due = json_integer_value(last) + o->push_every_ms;
    }
    json_object_set_new(d->seen, org, json_integer(due));
}

/* drain_due drains every organisation whose oldest pending change waited the delay: the
 * safety net for notifications lost while the thread was away (it runs every XS_PUSH_POLL). */
static void drain_due(orch *o, xs_pg *pg, drains *d)
{
    char delay[24];
    snprintf(
        delay, sizeof(delay), "%lld",
        (long long)(o->push_delay_ms > o->push_every_ms ? o->push_delay_ms : o->push_every_ms));
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT organisation_id FROM sync.changes c WHERE processed_at IS NULL AND EXISTS "
                "(SELECT 1 FROM sync.connections k WHERE k.organisation_id = c.organisation_id "
                "AND k.status = 'active') GROUP BY organisation_id HAVING min(changed_at) <= "
                "now() - $1::bigint * interval '1 millisecond' LIMIT 100",
                delay) != XS_OK) {
        return;
    }
    for (int i = 0; i < xs_pg_res_nrows(r) && !atomic_load(&o->stop); i++) {
        drain_one(o, pg, xs_pg_res_get(r, i, 0), d, xs_clock_mono_ms());
    }
    xs_pg_res_free(r);
}

/* drain_notified drains the organisations of d->seen that are due, and returns how long
 * until the next of the others is (at most cap). Drains older than the delay bound nothing
 * any more and are forgotten. */
static int64_t drain_notified(orch *o, xs_pg *pg, drains *d, int64_t now, int64_t cap)
{
    int64_t next = cap;
    const char *org;
    json_t *at, *tmp;
    json_object_foreach_safe(d->seen, tmp, org, at)
    {
        int64_t due = json_integer_value(at);
        if (due > now) {
            next = due - now < next ? due - now : next;
            continue;
        }
        drain_one(o, pg, org, d, now);
    }
    json_object_foreach_safe(d->last, tmp, org, at)
    {
        if (json_integer_value(at) + o->push_every_ms <= now) {
            json_object_del(d->last, org);
        }
    }
    return next;
}

/* realtime_main waits for the notifications of local changes and drains each organisation
 * XS_PUSH_DELAY after its first change since its last drain (0 by default: at once), and at
 * most every XS_PUSH_EVERY: the changes that come within it go together when it ends. So a
 * single edit leaves without waiting, a burst goes as few pushes, and a steady stream of
 * edits leaves every XS_PUSH_EVERY, never later. */
static void *realtime_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    drains d = {.seen = json_object(), .last = json_object()};
    int64_t last_poll = 0, wait = 200;
    while (!atomic_load(&o->stop)) {
        if (pg == NULL || !xs_pg_is_ok(pg)) {
            if (!orch_pg_open(o, &pg, "xs-orchestrator realtime", "xs_changes", 500)) {
                continue;
            }
            last_poll = 0;
        }
        char *channel = NULL, *payload = NULL;
        xs_err e = xs_pg_wait(pg, (int)(wait > 0 ? wait : 1), &channel, &payload);
        int64_t now = xs_clock_mono_ms();
        if (e == XS_OK && payload != NULL) {
            drain_noted(o, &d, payload, now);
        }
        free(channel);
        free(payload);
        if (e == XS_ECLOSED) {
            continue;
        }
        if (now - last_poll >= o->push_poll_ms) {
            drain_due(o, pg, &d);
            last_poll = now;
        }
        wait = drain_notified(o, pg, &d, now, 200);
    }
    json_decref(d.seen);
    json_decref(d.last);
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_schedule_reset(orch *o, xs_pg *pg, const char *conn, const json_t *settings)
{
    int64_t every = 0, unused = 0;
    int at = 0, unused_at = 0;
    orch_settings_schedule(settings, "incremental", o->incremental_every_ms, o->full_at_minutes,
                           &every, &unused_at);
    orch_settings_schedule(settings, "full", o->incremental_every_ms, o->full_at_minutes, &unused,
                           &at);
    json_t *moves = json_array();
    move_add(o, moves, conn, "incremental", every, at, 0);
    move_add(o, moves, conn, "full", every, at, full_window(o, settings));
    xs_err e = schedules_move(pg, moves);
    json_decref(moves);
    return e;
}

xs_err orch_sched_start(orch *o)
{
    if (orch_retention_start(o) != XS_OK || orch_jobhooks_start(o) != XS_OK) {
        return XS_ENOMEM;
    }
    if (o->scheduler_on) {
        if (pthread_create(&o->scheduler, NULL, scheduler_main, o) != 0) {
            return XS_ENOMEM;
        }
        o->scheduler_started = true;
    }
    if (pthread_create(&o->realtime, NULL, realtime_main, o) != 0) {
        return XS_ENOMEM;
    }
    o->realtime_started = true;
    return XS_OK;
}

void orch_sched_stop(orch *o)
{
    atomic_store(&o->stop, true);
    if (o->scheduler_started) {
        pthread_join(o->scheduler, NULL);
        o->scheduler_started = false;
    }
    if (o->realtime_started) {
        pthread_join(o->realtime, NULL);
        o->realtime_started = false;
    }
    orch_retention_stop(o);
    orch_jobhooks_stop(o);
}
