/*
 * engine.c: the executors. Each executor thread takes the next step the budget allows,
 * gets a live access token from xs-auth (not for a step that holds no permit: it makes no
 * call), hands the step to its domain service, and records the outcome (runs.c). A step makes one
 * call to Xero at a time and holds a permit of the budget for each call it may make: one, or for a
 * pull up to XS_PULL_PAGES_PER_STEP pages (read one after another, the next fetched while the one
 * before is written); the reply says how many it made and the permits left over go back. Choosing
 * the next step:
 *   - the highest priority first (realtime pushes, then manual pushes, single records,
 *     incremental runs, full runs);
 *   - within a priority, round the connections with ready work, one after another in id
 *     order from the one served last (a round-robin read from an index, at the same cost
 *     however long the queue): a tenant with a thousand steps waiting has one turn in each
 *     round, as a tenant with one; a turn is a turn to make calls: the step after one that
 *     ended, of its connection and priority, runs at once when it needs no permit (a scan's
 *     first pass: claim_follow), and spends no turn;
 *   - only a step whose tenant (and the app) has budget now (budget.c); a tenant whose step
 *     waits for permits gives none to its later steps meanwhile (a push that re-reads needs
 *     two: the permits that free up one at a time are not taken by pulls first);
 *   - never two steps of one connection and entity at once, so the order of pages and the
 *     mappings a push writes are never raced;
 *   - never a step of a paused connection (it waits for the resume), nor of a run whose
 *     cancel was asked for.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buscall.h"
#include "lease.h"
#include "runs.h"
#include "settings.h"
#include "worker.h"
#include "xs/clock.h"
#include "xs/json.h"
#include "engine/sync.h"

#define IDLE_MS 250

static void busy_key(const char *conn, const char *entity, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", conn, entity);
}

/* push_ids is the set of local ids a push step's input names ({id: true}, new), or NULL when
 * it names none (a scan, a lookup). */
static json_t *push_ids(const char *kind, const json_t *input)
{
    json_t *ids = json_object_get(input, "local_ids");
    if (strcmp(kind, "push") != 0 || !json_is_array(ids) || json_array_size(ids) == 0 ||
        json_object_get(input, "lookup_names") != NULL) {
        return NULL;
    }
    json_t *set = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (set == NULL || id == NULL || json_object_set_new(set, id, json_true()) != 0) {
            json_decref(set);
            return NULL;
        }
    }
    return set;
}

/* may_join tells whether a step (run, input, its input's push ids: NULL when not a push of
 * named records) may start while the steps in running (step id -> {run, ids}) of its connection and
 * entity are under way: only pushes of named records join pushes of named records, of other
 * runs, none of the same record, up to XS_PUSH_PARALLEL. A push holds its records while it
 * runs (sync.push_claims), so two pushes never write one record; a pull, a scan or a lookup
 * runs alone. The records it shares with them go into *shared (new, or NULL when none): it may
 * start without them (strip_shared) if it has others. */
static bool may_join(const orch *o, const json_t *running, const char *run, const json_t *input,
                     const json_t *ids, json_t **shared)
{
    *shared = NULL;
    if (ids == NULL || (int64_t)json_object_size(running) >= o->push_parallel) {
        return false;
    }
    const char *sid;
    json_t *r;
    json_object_foreach((json_t *)running, sid, r)
    {
        json_t *theirs = json_object_get(r, "ids");
        if (theirs == NULL || strcmp(xs_json_str_or(r, "run", ""), run) == 0) {
            json_decref(*shared);
            *shared = NULL;
            return false;
        }
        const char *id;
        json_t *unused;
        json_object_foreach((json_t *)ids, id, unused)
        {
            if (json_object_get(theirs, id) != NULL) {
                if (*shared == NULL) {
                    *shared = json_array();
                }
                json_array_append_new(*shared, json_string(id));
            }
        }
    }
    /* Records can leave only a step that has not begun its list ("from" 0). */
    return *shared == NULL || (json_integer_value(json_object_get(input, "from")) == 0 &&
                               json_array_size(*shared) < json_object_size(ids));
}

/* strip_shared takes the records in shared out of pending push step sid (input: its input, in
 * which local_ids is replaced) and puts them back in the outbox (org, entity): they leave in a
 * later push, once the push under way that holds them is done. Only a step that never ran is
 * changed; false when it was not. */
static bool strip_shared(orch *o, xs_pg *pg, const char *sid, const char *org, const char *entity,
                         json_t *input, const json_t *shared)
{
    json_t *set = json_object(), *keep = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(shared, i, v)
    {
        json_object_set_new(set, json_string_value(v), json_true());
    }
    json_array_foreach(json_object_get(input, "local_ids"), i, v)
    {
        if (json_object_get(set, json_string_value(v)) == NULL) {
            json_array_append(keep, v);
        }
    }
    json_decref(set);
    char *kt = xs_json_dump(keep, 0), *st = xs_json_dump(shared, 0);
    xs_pg_res *r = NULL;
    bool done = kt != NULL && st != NULL &&
                xs_pg_q(pg, &r,
                        "WITH u AS (UPDATE sync.run_steps SET input = jsonb_set(input, "
                        "'{local_ids}', $2::jsonb) WHERE id = $1 AND status = 'pending' AND "
                        "attempts = 0 RETURNING 1) SELECT count(sync.record_change($3::uuid, $4, "
                        "x::uuid, 'update')) FROM u, jsonb_array_elements_text($5::jsonb) x",
                        sid, kt, org, entity, st) == XS_OK &&
                xs_pg_res_nrows(r) == 1 && strcmp(xs_pg_res_get(r, 0, 0), "0") != 0;
    xs_pg_res_free(r);
    free(kt);
    free(st);
    if (done) {
        json_object_set_new(input, "local_ids", keep);
        xs_log_debug(o->proc.log, "engine.push_split", "{s:s, s:s, s:I}", "step", sid, "entity",
                     entity, "waiting", (json_int_t)json_array_size(shared));
    } else {
        json_decref(keep);
    }
    return done;
}

/* The claim goes round the connections with ready work (round-robin), per priority: the next
 * CANDIDATES connections after the one it served last at that priority, read from the index
 * run_steps_claim (one probe each), each with its STEPS_EACH oldest ready steps. One busy
 * tenant has one place in the round however many steps it has, and a claim costs the same at
 * 50 or 100,000 pending steps. */
#define CANDIDATES 64
#define CHUNK      16
#define STEPS_EACH 3
/* The first and last ids in uuid order: a round from the start, or to the end. */
#define FIRST_ID "00000000-0000-0000-0000-000000000000"
#define LAST_ID  "ffffffff-ffff-ffff-ffff-ffffffffffff"

/* The candidates of one priority ($1): the connections after $2 up to and including $3, at
 * most $4, in id order, each once (n: its place),
 * with its oldest ready steps, or one row of NULLs when it has none ready (paused, backing
 * off, its run cancelled, or its tenant of a shard this orchestrator does not hold: $6). */
static const char CANDIDATES_SQL[] =
    "WITH RECURSIVE c(conn, n) AS ((SELECT connection_id, 1 FROM sync.run_steps WHERE status = "
    "'pending' AND priority = $1::int AND connection_id > $2::uuid AND connection_id <= "
    "$3::uuid ORDER BY connection_id LIMIT 1) UNION ALL SELECT (SELECT x.connection_id FROM "
    "sync.run_steps x WHERE x.status = 'pending' AND x.priority = $1::int AND x.connection_id > "
    "c.conn AND x.connection_id <= $3::uuid ORDER BY x.connection_id LIMIT 1), c.n + 1 FROM c "
    "WHERE c.conn IS NOT NULL AND c.n < $4::int) "
    "SELECT c.conn, s.id, s.run_id, k.tenant_id, k.organisation_id, s.entity, s.kind, s.input, "
    "k.settings, s.reread, s.again, s.attempts, s.calls FROM c LEFT JOIN sync.connections k ON "
    "k.id = "
    "c.conn AND "
    "k.status <> 'paused' AND sync.shard_of(k.tenant_id) = ANY ($6::int[]) "
    "LEFT JOIN LATERAL (SELECT s.id, s.run_id, s.entity, s.kind, s.input, s.attempts, "
    "s.input->>'calls' AS calls, "
    /* A push re-reads what it updates when it retries, or when its run's pull of the
     * entity ended XS_PUSH_REREAD_AFTER ago or more (or never happened). */
    "s.kind IN ('push', 'scan') AND (s.attempts > 0 OR coalesce((SELECT max(p.finished_at) "
    "FROM sync.run_steps p WHERE p.run_id = s.run_id AND p.entity = s.entity AND p.kind = "
    "'pull' AND p.status = 'done'), '-infinity') <= now() - $5::bigint * interval '1 "
    "millisecond') AS reread, jsonb_array_length(coalesce(r.params->'again'->(s.phase::text)->"
    "'ids', '[]')) > 0 AS again FROM sync.run_steps s JOIN sync.runs r ON r.id = s.run_id WHERE "
    "k.id IS NOT NULL AND s.status = 'pending' AND s.priority = $1::int AND s.connection_id = "
    "c.conn AND (s.not_before IS NULL OR s.not_before <= now()) AND r.status IN ('queued', "
    "'running') AND r.cancel_requested_at IS NULL ORDER BY s.id LIMIT $7::int) s ON true WHERE "
    "c.conn IS NOT NULL ORDER BY c.n, s.id";

/* The priorities with pending steps, highest first (a skip scan of run_steps_claim). */
static const char LEVELS_SQL[] =
    "WITH RECURSIVE p(pri) AS (SELECT max(priority) FROM sync.run_steps WHERE status = 'pending' "
    "UNION ALL SELECT (SELECT max(priority) FROM sync.run_steps WHERE status = 'pending' AND "
    "priority < p.pri) FROM p WHERE p.pri IS NOT NULL) SELECT pri FROM p WHERE pri IS NOT NULL";

/* The soonest end of a back-off of a pending step, ms from now (-1: none). */
static const char BACKOFF_SQL[] =
    "SELECT coalesce(extract(epoch FROM min(not_before) - now()) * 1000, -1)::bigint FROM "
    "sync.run_steps WHERE status = 'pending' AND not_before > now()";

/* A claimed step starts ($1), and its run ($2) with it when it was queued: one statement. */
static const char START_SQL[] =
    "WITH s AS (UPDATE sync.run_steps SET status = 'running', started_at = now(), attempts = "
    "attempts + 1 WHERE id = $1::bigint AND status = 'pending' RETURNING attempts), r AS "
    "(UPDATE sync.runs SET status = 'running', started_at = coalesce(started_at, now()) WHERE "
    "id = $2::uuid AND status = 'queued' AND EXISTS (SELECT 1 FROM s)) SELECT attempts FROM s";

/* A claim in progress. */
typedef struct claim_ctx {
    int64_t now;
    int64_t soonest; /* how soon a refused permit may free up */
    bool ready;      /* a ready step was seen */
    /* > 0: the app-wide minute is full for this long; only steps that need no permit can
     * go, and only the first chunk of each priority is read for them. */
    int64_t app_wait;
    /* The step just tried was refused for the app-wide budget, not for anything of its own
     * (try_step sets it, claim_pass reads it). */
    bool app_refused;
    /* Tenants whose step could not have its permits: their later (lower or equal priority)
     * steps do not take the permits that free up first, so a ready push needing two is not
     * starved by pulls needing one. */
    json_t *waiting;
    bool free_only; /* only a step that needs no permit (claim_follow) */
} claim_ctx;

/* step_need is how many permits a candidate step (its kind, attempts so far and its input's
 * "calls", -1 when it has none) must hold before it starts: a pull may read several pages, one call
 * after another; a push that re-reads makes two calls, and waits until it may; any other push or
 * scan one. A scan's first attempt needs none unless its input says "calls" (the scan before it met
 * records to send, and how many calls they need: 1 for creates, which never re-read): it walks
 * local records, and most of a full run's scans find nothing to send; sent with max_calls 0 it
 * makes no call, and when it meets a batch to send it stops with calls_needed, writing
 * nothing, and goes on from there in a step that holds permits (runs.c). A retried scan
 * holds permits: it may have a stored request to send. */
static int64_t step_need(const orch *o, const char *kind, bool reread, int64_t attempts,
                         int64_t calls)
{
    if (strcmp(kind, "pull") == 0) {
        return o->pull_pages;
    }
    int64_t need = reread ? 2 : 1;
    if (strcmp(kind, "scan") != 0 || attempts > 0) {
        return need;
    }
    return calls < need ? (calls > 0 ? calls : 0) : need;
}

/* try_step tries to claim row i of candidates r (its connection ready, of priority pri). */
static bool try_step(orch *o, xs_pg *pg, claim_ctx *cx, xs_pg_res *r, int i, int pri,
                     orch_step *out)
{
    const char *conn = xs_pg_res_get(r, i, 0), *sid = xs_pg_res_get(r, i, 1);
    const char *run = xs_pg_res_get(r, i, 2), *tenant = xs_pg_res_get(r, i, 3);
    const char *entity = xs_pg_res_get(r, i, 5), *kind = xs_pg_res_get(r, i, 6);
    int64_t now = cx->now, attempts = 0;
    bool reread = false;
    xs_pg_res_bool(r, i, 9, &reread);
    xs_pg_res_int(r, i, 11, &attempts);
    int64_t calls = -1; /* the input's "calls", read by the query: no parse of the input */
    xs_pg_res_int(r, i, 12, &calls);
    int64_t need = step_need(o, kind, reread, attempts, calls);
    if (need > 0 && cx->free_only) {
        return false;
    }
    char key[96];
    busy_key(conn, entity, key, sizeof(key));
    if (need > 0 && cx->app_wait > 0) {
        cx->soonest = cx->app_wait < cx->soonest ? cx->app_wait : cx->soonest;
        cx->app_refused = true;
        return false;
    }
    if (need > 0 && json_object_get(cx->waiting, tenant) != NULL) {
        return false; /* a step that needs no permit is not held back by the tenant's wait */
    }
    json_t *running = json_object_get(o->busy, key), *shared = NULL, *input = NULL;
    if (running != NULL &&
        (strcmp(kind, "push") != 0 || (int64_t)json_object_size(running) >= o->push_parallel)) {
        return false; /* known without reading the step's input */
    }
    if (running != NULL) {
        const char *in = xs_pg_res_get(r, i, 7);
        input = xs_json_parse(in, strlen(in), NULL);
        json_t *ids = push_ids(kind, input);
        bool join = may_join(o, running, run, input, ids, &shared);
        json_decref(ids);
        if (!join) {
            json_decref(input);
            json_decref(shared);
            return false;
        }
    }
    int64_t wait = 0;
    int64_t permits = need > 0 ? orch_budget_acquire_n(o->budget, tenant, now, need, &wait) : 0;
    if (permits > 0 && reread && permits < need) {
        orch_budget_cancel(o->budget, tenant, now, permits);
        permits = 0;
        wait = 50;
    }
    if (need > 0 && permits == 0 && (cx->app_wait = orch_budget_app_wait(o->budget, now)) > 0) {
        /* Refused for the app-wide minute (or the shared pool): no other step needing a permit
         * can have one either, and this one keeps its turn. */
        cx->soonest = cx->app_wait < cx->soonest ? cx->app_wait : cx->soonest;
        cx->app_refused = true;
        json_decref(input);
        json_decref(shared);
        return false;
    }
    if (need > 0 && permits == 0) {
        cx->soonest = wait < cx->soonest ? wait : cx->soonest;
        json_object_set_new(cx->waiting, tenant, json_true());
        if (json_object_get(o->refused, tenant) == NULL) {
            json_object_set_new(o->refused, tenant, json_integer(now));
        }
        json_decref(input);
        json_decref(shared);
        return false;
    }
    if (shared != NULL &&
        !strip_shared(o, pg, sid, xs_pg_res_get(r, i, 4), entity, input, shared)) {
        orch_budget_cancel(o->budget, tenant, now, permits);
        json_decref(input);
        json_decref(shared);
        return false;
    }
    json_decref(shared);
    xs_pg_res *c = NULL;
    if (xs_pg_qp(pg, &c, START_SQL, sid, run) != XS_OK || xs_pg_res_nrows(c) == 0) {
        xs_pg_res_free(c);
        orch_budget_cancel(o->budget, tenant, now, permits);
        json_decref(input);
        return false;
    }
    memset(out, 0, sizeof(*out));
    xs_pg_res_int(r, i, 1, &out->id);
    snprintf(out->sid, sizeof(out->sid), "%s", sid);
    snprintf(out->run, sizeof(out->run), "%s", run);
    snprintf(out->conn, sizeof(out->conn), "%s", conn);
    snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
    snprintf(out->org, sizeof(out->org), "%s", xs_pg_res_get(r, i, 4));
    snprintf(out->entity, sizeof(out->entity), "%s", entity);
    snprintf(out->kind, sizeof(out->kind), "%s", kind);
    out->permits = permits;
    out->reread = reread;
    xs_pg_res_bool(r, i, 10, &out->defer_partial);
    out->acquired_ms = now;
    xs_pg_res_int(c, 0, 0, &out->attempts);
    out->priority = pri;
    const char *in = xs_pg_res_get(r, i, 7), *st = xs_pg_res_get(r, i, 8);
    out->input = input != NULL ? input : xs_json_parse(in, strlen(in), NULL);
    out->settings = xs_json_parse(st, strlen(st), NULL);
    xs_pg_res_free(c);
    running = json_object_get(o->busy, key);
    if (running == NULL) {
        running = json_object();
        json_object_set_new(o->busy, key, running);
    }
    json_t *mine = json_pack("{s:s}", "run", out->run);
    json_t *named = push_ids(kind, out->input);
    if (named != NULL) {
        json_object_set_new(mine, "ids", named);
    }
    json_object_set_new(running, out->sid, mine);
    json_t *since = json_object_get(o->refused, tenant);
    if (since != NULL) {
        orch_metrics_budget_wait(o->metrics, now - json_integer_value(since));
        json_object_del(o->refused, tenant);
    }
    return true;
}

/* Where the round of a priority stands in a claim: judged is the last connection whose turn
 * passed on its own account (claimed, or refused for itself: its tenant's budget, busy,
 * nothing ready); frozen once one was refused for the app-wide budget, whose turn is kept:
 * the round does not move past it. */
typedef struct round_pos {
    char judged[40];
    bool frozen;
} round_pos;

/* claim_pass tries the candidates of priority pri after `after` up to `upto`, at most limit;
 * *visited counts the connections read, *last is the last of them; *pos moves with them. */
static bool claim_pass(orch *o, xs_pg *pg, claim_ctx *cx, int pri, const char *after,
                       const char *upto, int limit, const char *shards, int *visited, char last[40],
                       round_pos *pos, orch_step *out)
{
    char p[16], lim[16], each[16], reread_ms[24];
    snprintf(p, sizeof(p), "%d", pri);
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(each, sizeof(each), "%d", STEPS_EACH);
    snprintf(reread_ms, sizeof(reread_ms), "%lld", (long long)o->reread_after_ms);
    xs_pg_res *r = NULL;
    if (xs_pg_qp(pg, &r, CANDIDATES_SQL, p, after, upto, lim, reread_ms, shards, each) != XS_OK) {
        xs_log_warn(o->proc.log, "engine.poll_failed", "{s:s}", "error", xs_pg_error(pg));
        return false;
    }
    bool got = false, kept = false; /* kept: the connection in hand keeps its turn */
    for (int i = 0; i < xs_pg_res_nrows(r) && !got; i++) {
        const char *conn = xs_pg_res_get(r, i, 0);
        if (strcmp(conn, last) != 0) {
            if (last[0] != '\0' && !kept && !pos->frozen) {
                snprintf(pos->judged, sizeof(pos->judged), "%s", last);
            }
            pos->frozen = pos->frozen || kept;
            kept = false;
            snprintf(last, 40, "%s", conn);
            (*visited)++;
        }
        if (xs_pg_res_get(r, i, 1) == NULL) {
            continue;
        }
        cx->ready = true;
        cx->app_refused = false;
        got = try_step(o, pg, cx, r, i, pri, out);
        kept = kept || cx->app_refused;
    }
    if (got && !pos->frozen && !(cx->app_wait > 0)) {
        snprintf(pos->judged, sizeof(pos->judged), "%s", out->conn);
    } else if (!got && last[0] != '\0' && !kept && !pos->frozen) {
        snprintf(pos->judged, sizeof(pos->judged), "%s", last);
    }
    pos->frozen = pos->frozen || kept;
    xs_pg_res_free(r);
    return got;
}

/* claim_level tries priority pri, from the connection after the one where its round stands
 * round to that one again, CHUNK connections at a time up to CANDIDATES (most claims end in
 * the first chunk; while the app-wide minute is full, one chunk's worth only, for steps that
 * need no permit), and moves the round on past the connections whose turn passed on their own
 * account (round_pos): a connection refused for the app-wide budget keeps its turn. */
static bool claim_level(orch *o, xs_pg *pg, claim_ctx *cx, int pri, const char *shards,
                        orch_step *out)
{
    char key[16], last[40] = "", from[40] = FIRST_ID, upto[40] = LAST_ID, start[40] = "";
    snprintf(key, sizeof(key), "%d", pri);
    const char *cursor = json_string_value(json_object_get(o->round, key));
    if (cursor != NULL) {
        snprintf(start, sizeof(start), "%s", cursor);
        snprintf(from, sizeof(from), "%s", start);
    }
    round_pos pos = {.judged = "", .frozen = false};
    bool got = false, wrapped = start[0] == '\0';
    int seen = 0;
    while (!got && seen < CANDIDATES) {
        int want = CANDIDATES - seen < CHUNK ? CANDIDATES - seen : CHUNK, visited = 0;
        last[0] = '\0';
        got = claim_pass(o, pg, cx, pri, from, upto, want, shards, &visited, last, &pos, out);
        seen += visited;
        if (got || !xs_pg_is_ok(pg) || (cx->app_wait > 0 && seen >= CHUNK)) {
            break;
        }
        if (visited == want) {
            snprintf(from, sizeof(from), "%s", last); /* the round goes on after them */
        } else if (!wrapped) {
            /* The end of the ids: on from the first, up to where this round began. */
            wrapped = true;
            snprintf(upto, sizeof(upto), "%s", start);
            snprintf(from, sizeof(from), "%s", FIRST_ID);
        } else {
            break;
        }
    }
    if (pos.judged[0] != '\0') {
        json_object_set_new(o->round, key, json_string(pos.judged));
    }
    return got;
}

/* claim picks and claims the next step (disp_mu held): the highest priority first, round the
 * connections within it; false when none can run now, with *wait_ms a hint of when to look
 * again. */
static bool claim(orch *o, xs_pg *pg, orch_step *out, int64_t *wait_ms)
{
    *wait_ms = IDLE_MS;
    xs_pg_res *lv = NULL;
    if (xs_pg_exec_prepared(pg, &lv, LEVELS_SQL, 0, NULL) != XS_OK) {
        xs_log_warn(o->proc.log, "engine.poll_failed", "{s:s}", "error", xs_pg_error(pg));
        return false;
    }
    /* Only the connections of the tenants of the shards this orchestrator holds (lease.h). */
    char shards[ORCH_LEASE_SHARDS_MAX];
    if (!orch_lease_shards(o, shards, sizeof(shards))) {
        xs_pg_res_free(lv);
        return false;
    }
    claim_ctx cx = {.now = xs_clock_mono_ms(), .soonest = IDLE_MS, .waiting = json_object()};
    cx.app_wait = orch_budget_app_wait(o->budget, cx.now);
    bool got = false;
    for (int i = 0; i < xs_pg_res_nrows(lv) && !got && xs_pg_is_ok(pg); i++) {
        int64_t pri = 0;
        xs_pg_res_int(lv, i, 0, &pri);
        got = claim_level(o, pg, &cx, (int)pri, shards, out);
    }
    xs_pg_res_free(lv);
    json_decref(cx.waiting);
    if (!got && cx.ready) {
        *wait_ms = cx.soonest > 0 ? cx.soonest : 1;
    } else if (!got) {
        int64_t next = 0;
        /* Nothing ready: sleep until the earliest back-off ends (or a wake-up). */
        xs_pg_res *w = NULL;
        if (xs_pg_exec_prepared(pg, &w, BACKOFF_SQL, 0, NULL) == XS_OK &&
            xs_pg_res_int(w, 0, 0, &next) == XS_OK && next >= 0 && next < IDLE_MS) {
            *wait_ms = next + 1;
        }
        xs_pg_res_free(w);
    }
    return got;
}

/* id_before writes into out the uuid just before id (in the order the claim compares them):
 * with it, a claim pass reads one connection alone. False for the first uuid, or not a uuid. */
static bool id_before(const char *id, char out[40])
{
    size_t n = strlen(id);
    if (n != 36) {
        return false;
    }
    memcpy(out, id, n + 1);
    for (size_t i = n; i-- > 0;) {
        if (out[i] == '-') {
            continue;
        }
        if (out[i] == '0') {
            out[i] = 'f'; /* borrow */
            continue;
        }
        out[i] = out[i] == 'a' || out[i] == 'A' ? '9' : (char)(out[i] - 1);
        return true;
    }
    return false;
}

/* claim_follow claims (disp_mu held) the next step of prev's connection at prev's priority when
 * it needs no permit (a scan's first pass, which the finished pull before it made ready), to run
 * at once on the same executor, outside the round: a round turn is a tenant's turn to make
 * calls, and a step that makes none does not spend it. Without this a tenant whose next step
 * was a scan lost a whole round of calls for each, and in a mass import calls stopped being
 * shared in step (Jain's index over calls fell below what whole calls allow). */
static bool claim_follow(orch *o, xs_pg *pg, const orch_step *prev, orch_step *out)
{
    char before[40], last[40] = "", shards[ORCH_LEASE_SHARDS_MAX];
    if (!id_before(prev->conn, before) || !orch_lease_shards(o, shards, sizeof(shards))) {
        return false;
    }
    claim_ctx cx = {
        .now = xs_clock_mono_ms(), .soonest = IDLE_MS, .waiting = json_object(), .free_only = true};
    round_pos pos = {.judged = "", .frozen = false}; /* the round is not moved */
    int visited = 0;
    bool got = claim_pass(o, pg, &cx, prev->priority, before, prev->conn, 1, shards, &visited, last,
                          &pos, out);
    json_decref(cx.waiting);
    return got;
}

/* seen_of reads a domain reply's call into the budget's terms. */
static bool seen_of(const json_t *call, orch_budget_seen *s)
{
    if (!json_is_object(call)) {
        return false;
    }
    int64_t v;
    *s = (orch_budget_seen){
        .min_remaining = -1, .day_remaining = -1, .app_min_remaining = -1, .retry_after_s = -1};
    if (xs_json_get_int(call, "status", &v) == XS_OK) {
        s->status = (long)v;
    }
    if (xs_json_get_int(call, "min_remaining", &v) == XS_OK) {
        s->min_remaining = v;
    }
    if (xs_json_get_int(call, "day_remaining", &v) == XS_OK) {
        s->day_remaining = v;
    }
    if (xs_json_get_int(call, "app_min_remaining", &v) == XS_OK) {
        s->app_min_remaining = v;
    }
    if (xs_json_get_int(call, "retry_after_s", &v) == XS_OK) {
        s->retry_after_s = v;
    }
    const char *p = xs_json_str_or(call, "problem", "");
    s->problem = p[0] != '\0' ? p : NULL;
    return s->status > 0;
}

/* finish records the outcome, retrying the bookkeeping itself when the database blinks. */
static void finish(orch *o, xs_pg *pg, const orch_step *s, const char *outcome, const json_t *reply,
                   const char *error, int64_t retry_ms)
{
    for (int attempt = 0; attempt < 50 && !atomic_load(&o->stop); attempt++) {
        xs_err e = orch_step_finish(o, pg, s, outcome, reply, error, retry_ms);
        if (e == XS_OK) {
            return;
        }
        xs_log_warn(o->proc.log, "engine.finish_failed", "{s:s, s:s, s:s}", "step", s->sid, "err",
                    xs_err_name(e), "error", xs_pg_error(pg));
        xs_clock_sleep_ms(200);
        if (!xs_pg_is_ok(pg)) {
            xs_pg_reconnect(pg);
        }
    }
    /* Left running: the next holder of its shard makes it runnable again (orch_recover). */
}

/* domain_of is the bus domain serving entity. */
static xs_bus_domain domain_of(const char *entity)
{
    const xs_entity_info *e = xs_entity_find(entity);
    xs_bus_domain d = XS_BUS_DOMAIN_NONE;
    if (e != NULL) {
        xs_bus_domain_parse(e->domain, &d);
    }
    return d;
}

/* release ends a step's hold on the budget: it made `calls` calls (the reply says, 0 when
 * none: its permits go back; all its permits when unknown), the last of which said seen. A
 * step that held no permit and still made calls (it must not) has them counted now. */
static void release(orch *o, const orch_step *s, int64_t now, int64_t calls,
                    const orch_budget_seen *seen)
{
    if (s->permits == 0) {
        orch_metrics_unpermitted(o->metrics, s->kind);
        if (calls > 0) {
            xs_log_error(o->proc.log, "engine.unpermitted_calls", "{s:s, s:s, s:I}", "step", s->sid,
                         "kind", s->kind, "calls", (json_int_t)calls);
        }
        for (int64_t k = 0; k < calls; k++) {
            orch_budget_seed(o->budget, s->tenant, now);
        }
        return;
    }
    calls = calls < 0 ? s->permits : calls;
    orch_metrics_permits(o->metrics, s->permits, calls);
    orch_budget_release_n(o->budget, s->tenant, now, s->acquired_ms, s->permits, calls, seen);
}

/* execute runs one claimed step to its outcome. */
static void execute(orch *o, xs_pg *pg, orch_step *s)
{
    int64_t t0 = xs_clock_mono_ms();
    bool force = json_is_true(json_object_get(s->input, "force_refresh"));
    xs_msg *tok = NULL, *rep = NULL;
    orch_call_error err;
    /* A step that holds no permit makes no call (a scan's first pass, max_calls 0): it needs
     * no access token, and does not ask xs-auth for one. */
    json_t *tb =
        s->permits > 0 ? json_pack("{s:b, s:i}", "force_refresh", force, "min_valid_s", 120) : NULL;
    if (tb != NULL &&
        orch_call(o, XS_BUS_DOMAIN_AUTH, "token.get", s->conn, tb, &tok, &err) != XS_OK) {
        release(o, s, xs_clock_mono_ms(), 0, NULL); /* the step never reached Xero */
        if (err.code == XS_EAUTH || err.code == XS_ENOTFOUND) {
            finish(o, pg, s, "fatal", NULL, err.message, 0);
        } else {
            finish(o, pg, s, "retry", NULL, err.message, 0);
        }
        return;
    }
    const char *type =
        strcmp(s->kind, "pull") == 0 || strcmp(s->kind, "fetch") == 0 ? "sync.pull" : "sync.push";
    json_t *body =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "entity", s->entity, "run_id", s->run,
                  "step_id", (json_int_t)s->id, "tenant_id", s->tenant, "organisation_id", s->org,
                  "settings", orch_settings_for_step(s->settings, s->entity));
    if (tok != NULL) {
        json_object_set(body, "access_token", json_object_get(tok->body, "access_token"));
        xs_msg_free(tok);
    }
    const char *pass[] = {"cursor",       "ids",   "local_ids", "scan_after",
                          "lookup_names", "final", "filter"};
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        json_t *v = json_object_get(s->input, pass[i]);
        if (v != NULL) {
            json_object_set(body, pass[i], v);
        }
    }
    if (strcmp(type, "sync.push") == 0 && s->reread) {
        json_object_set_new(body, "reread", json_true());
    }
    if (strcmp(type, "sync.push") == 0) {
        json_object_set_new(body, "max_calls", json_integer(s->permits));
        if (s->defer_partial) {
            json_object_set_new(body, "defer_partial", json_true());
        }
    }
    if (strcmp(type, "sync.pull") == 0) {
        json_object_set_new(body, "page_size", json_integer(o->page_size));
        json_object_set_new(body, "max_pages", json_integer(s->permits));
        json_object_set_new(body, "max_ms", json_integer(o->pull_step_ms));
    }
    xs_err e = orch_call(o, domain_of(s->entity), type, s->conn, body, &rep, &err);
    int64_t now = xs_clock_mono_ms();
    if (e != XS_OK) {
        /* An error reply says the calls the step made; with no answer (a replica died, a
         * time-out) or a reply that did not say, every permit may have been used. */
        release(o, s, now, err.calls, NULL);
        bool retry = err.transport || err.retryable;
        xs_log_warn(o->proc.log, "engine.step_error", "{s:s, s:s, s:s, s:s}", "step", s->sid,
                    "kind", s->kind, "err", xs_err_name(err.code), "error", err.message);
        finish(o, pg, s, retry ? "retry" : "failed", NULL, err.message, 0);
        return;
    }
    orch_budget_seen seen;
    bool saw = seen_of(json_object_get(rep->body, "call"), &seen);
    int64_t calls = -1; /* a reply that does not say: every permit may have been used */
    xs_json_get_int(rep->body, "calls", &calls);
    release(o, s, now, calls, saw ? &seen : NULL);
    const char *outcome = xs_json_str_or(rep->body, "outcome", "failed");
    const char *msg = xs_json_str_or(rep->body, "message", "");
    xs_log_debug(o->proc.log, "engine.step", "{s:s, s:s, s:s, s:s, s:I, s:I}", "step", s->sid,
                 "kind", s->kind, "entity", s->entity, "outcome", outcome, "status",
                 (json_int_t)(saw ? seen.status : 0), "duration_ms", (json_int_t)(now - t0));
    if (strcmp(outcome, "done") == 0) {
        finish(o, pg, s, "done", rep->body, NULL, 0);
    } else if (strcmp(outcome, "token_rejected") == 0) {
        json_t *hint = json_pack("{s:b}", "force_refresh", 1);
        finish(o, pg, s, "retry", hint, "Xero refused the access token; refreshing it", 100);
        json_decref(hint);
    } else if (strcmp(outcome, "retry") == 0) {
        int64_t wait = 0;
        if (saw && seen.retry_after_s > 0) {
            wait = seen.retry_after_s * 1000;
        }
        char why[400];
        snprintf(why, sizeof(why), "%s%s%.300s", saw && seen.status > 0 ? "HTTP " : "",
                 saw && seen.status == 429 ? "429 (rate limited): " : "", msg);
        finish(o, pg, s, "retry", NULL, why, wait);
    } else {
        finish(o, pg, s, "failed", rep->body, msg[0] != '\0' ? msg : "the step failed", 0);
    }
    xs_msg_free(rep);
}

/* day_record writes a change of a tenant's day block (budget.h) to its connections and logs
 * its beginning and end, once each; a write that fails is tried again later. */
static void day_record(orch *o, xs_pg *pg, const orch_budget_day *d, int64_t now)
{
    char left[24];
    snprintf(left, sizeof(left), "%lld", (long long)(d->until_ms - now));
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "UPDATE sync.connections SET rate_limited_until = CASE WHEN $2::bigint IS "
                       "NULL THEN NULL ELSE now() + $2::bigint * interval '1 millisecond' END, "
                       "rate_limited_problem = CASE WHEN $2::bigint IS NULL THEN NULL ELSE 'day' "
                       "END WHERE tenant_id = $1::uuid RETURNING id, sync.iso(rate_limited_until)",
                       d->tenant, d->blocked ? left : NULL);
    if (e != XS_OK) {
        xs_log_warn(o->proc.log, "budget.record_failed", "{s:s, s:s}", "tenant_id", d->tenant,
                    "error", xs_pg_error(pg));
        orch_budget_day_retry(o->budget, d->tenant);
    }
    json_t *conns = json_array();
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        json_array_append_new(conns, json_string(xs_pg_res_get(r, i, 0)));
    }
    const char *until = e == XS_OK && xs_pg_res_nrows(r) > 0 ? xs_pg_res_get(r, 0, 1) : NULL;
    if (d->began) {
        xs_log_warn(o->proc.log, "budget.exhausted", "{s:s, s:O, s:s?, s:I, s:s}", "tenant_id",
                    d->tenant, "connections", conns, "until", until, "in_ms",
                    (json_int_t)(d->until_ms - now), "reason", "day");
    } else if (d->ended) {
        xs_log_info(o->proc.log, "budget.restored", "{s:s, s:O, s:s}", "tenant_id", d->tenant,
                    "connections", conns, "reason", "day");
    }
    json_decref(conns);
    xs_pg_res_free(r);
}

/* day_watch records every change of the tenants' day blocks (an executor between steps). */
static void day_watch(orch *o, xs_pg *pg)
{
    orch_budget_day d;
    int64_t now = xs_clock_mono_ms();
    while (!atomic_load(&o->stop) && orch_budget_day_next(o->budget, now, &d)) {
        day_record(o, pg, &d, now);
        if (!xs_pg_is_ok(pg)) {
            break;
        }
    }
}

/* step_over ends the executor's hold on step s (disp_mu taken here) and claims the next step
 * of its connection when it needs no permit (claim_follow): true with it in *next, which the
 * executor runs at once, stopping or not, as any step it has claimed. */
static bool step_over(orch *o, xs_pg *pg, orch_step *s, orch_step *next)
{
    char key[96];
    busy_key(s->conn, s->entity, key, sizeof(key));
    pthread_mutex_lock(&o->disp_mu);
    json_t *running = json_object_get(o->busy, key);
    json_object_del(running, s->sid);
    if (json_object_size(running) == 0) {
        json_object_del(o->busy, key);
    }
    /* Only after a pull: what needs no permit (a scan's first pass) comes after one. */
    bool more = strcmp(s->kind, "pull") == 0 && !atomic_load(&o->stop) && xs_pg_is_ok(pg) &&
                claim_follow(o, pg, s, next);
    pthread_cond_broadcast(&o->disp_cv);
    pthread_mutex_unlock(&o->disp_mu);
    json_decref(s->input);
    json_decref(s->settings);
    return more;
}

static void *executor_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    while (!atomic_load(&o->stop)) {
        if ((pg == NULL || !xs_pg_is_ok(pg)) &&
            !orch_pg_open(o, &pg, "xs-orchestrator engine", NULL, 500)) {
            continue;
        }
        orch_step s;
        int64_t wait = IDLE_MS;
        pthread_mutex_lock(&o->disp_mu);
        int64_t t0 = xs_clock_mono_us();
        bool got = claim(o, pg, &s, &wait);
        orch_metrics_claim(o->metrics, got, xs_clock_mono_us() - t0);
        if (!got && !atomic_load(&o->stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (wait % 1000) * 1000000;
            ts.tv_sec += wait / 1000 + ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&o->disp_cv, &o->disp_mu, &ts);
        }
        pthread_mutex_unlock(&o->disp_mu);
        day_watch(o, pg);
        while (got) {
            execute(o, pg, &s);
            orch_step next;
            if ((got = step_over(o, pg, &s, &next))) {
                s = next;
            }
        }
    }
    xs_pg_close(pg);
    return NULL;
}

/* seed_budget counts into b the calls of the last day made for the tenants of the shards
 * listed (an int array literal; NULL: any), or for tenant alone (NULL: every tenant of them),
 * from the audit, so a restart or a takeover does not forget what was spent; a shard in since
 * (shard -> time, JSON) counts only the calls made since then. */
static void seed_budget(orch *o, orch_budget *b, xs_pg *pg, const char *shards, const char *since,
                        const char *tenant)
{
    char day[24];
    snprintf(day, sizeof(day), "%lld", (long long)o->budget_limits.day_ms);
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT a.tenant_id, (extract(epoch FROM now() - a.at) * 1000)::bigint FROM "
                "sync.api_calls a JOIN (SELECT c.tenant_id, min(coalesce(($3::jsonb ->> "
                "sync.shard_of(c.tenant_id)::text)::timestamptz, '-infinity')) AS since FROM "
                "sync.connections c WHERE ($2::int[] IS NULL OR sync.shard_of(c.tenant_id) = "
                "ANY($2::int[])) AND ($4::uuid IS NULL OR c.tenant_id = $4::uuid) GROUP BY "
                "c.tenant_id) t ON t.tenant_id = a.tenant_id WHERE a.path LIKE '/api.xro/%' AND "
                "a.at > now() - $1::bigint * interval '1 millisecond' AND a.at > t.since ORDER BY "
                "a.at",
                day, shards, since != NULL ? since : "{}", tenant) == XS_OK) {
        int64_t now = xs_clock_mono_ms();
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            int64_t ago = 0;
            xs_pg_res_int(r, i, 1, &ago);
            orch_budget_seed(b, xs_pg_res_get(r, i, 0), now - ago);
        }
        if (tenant == NULL) {
            xs_log_info(o->proc.log, "budget.seeded", "{s:i, s:s}", "calls", xs_pg_res_nrows(r),
                        "shards", shards);
        }
    } else {
        xs_log_warn(o->proc.log, "budget.seed_failed", "{s:s}", "error", xs_pg_error(pg));
    }
    xs_pg_res_free(r);
}

/* restore_blocks holds again in b the tenants (of the shards listed, or tenant alone, as
 * seed_budget) whose day block sync.connections kept (day_record, by this or an earlier
 * holder), so no call goes into a known block; each is held until its kept time, when one
 * probe goes. */
static void restore_blocks(orch *o, orch_budget *b, xs_pg *pg, const char *shards,
                           const char *tenant)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT tenant_id, (extract(epoch FROM max(rate_limited_until) - now()) * "
                "1000)::bigint FROM sync.connections WHERE rate_limited_until IS NOT NULL AND "
                "($1::int[] IS NULL OR sync.shard_of(tenant_id) = ANY($1::int[])) AND ($2::uuid IS "
                "NULL "
                "OR tenant_id = $2::uuid) GROUP BY tenant_id",
                shards, tenant) == XS_OK) {
        int64_t now = xs_clock_mono_ms();
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            int64_t left = 0;
            xs_pg_res_int(r, i, 1, &left);
            orch_budget_day_restore(b, xs_pg_res_get(r, i, 0), now, now + left);
        }
        if (tenant == NULL) {
            xs_log_info(o->proc.log, "budget.blocks_restored", "{s:i}", "tenants",
                        xs_pg_res_nrows(r));
        }
    }
    xs_pg_res_free(r);
}

/* seed_shards fills the budget of the tenants of the shards this orchestrator just took
 * (an orch_lease_seed_fn, lease.h): their calls of the last day from the audit (for a shard
 * held before, only those made since it was given back), and the day blocks
 * sync.connections kept. */
static void seed_shards(orch *o, xs_pg *pg, const char *shards, const char *since)
{
    seed_budget(o, o->budget, pg, shards, since, NULL);
    restore_blocks(o, o->budget, pg, shards, NULL);
}

json_t *orch_engine_budget_json(orch *o, xs_pg *pg, const char *tenant)
{
    if (orch_lease_holds(o, tenant)) {
        return orch_budget_json(o->budget, tenant, xs_clock_mono_ms());
    }
    /* Another orchestrator holds the tenant: its budget as the audit and the kept day block
     * give it (what that one knows beyond them, the calls in flight and Xero's latest
     * headers, is not here). */
    orch_budget *b = NULL;
    if (orch_budget_create(&b, &o->budget_limits) != XS_OK) {
        return NULL;
    }
    seed_budget(o, b, pg, NULL, NULL, tenant);
    restore_blocks(o, b, pg, NULL, tenant);
    json_t *j = orch_budget_json(b, tenant, xs_clock_mono_ms());
    orch_budget_destroy(b);
    return j;
}

/* wake_executors wakes the executors waiting for a step: the shared pool was just filled. */
static void wake_executors(void *arg)
{
    orch_executors_wake(arg);
}

/* share_budget makes the app's limit (lim) one the orchestrators on this database share
 * (XS_BUDGET_SHARED; appbudget.h) and starts its thread. */
static xs_err share_budget(orch *o, const orch_budget_limits *lim)
{
    const xs_config *cfg = o->proc.cfg;
    if (!xs_config_bool(cfg, "XS_BUDGET_SHARED")) {
        return XS_OK;
    }
    char host[128] = "", holder[200];
    gethostname(host, sizeof(host) - 1);
    snprintf(holder, sizeof(holder), "%s-%ld", host[0] != '\0' ? host : "orchestrator",
             (long)getpid());
    int64_t chunk = xs_config_int(cfg, "XS_BUDGET_SHARED_CHUNK");
    chunk = chunk > 0 ? chunk : (lim->app_minute + 99) / 100;
    /* A push that re-reads needs two permits at once, from one chunk: a chunk of one would
     * never give them (seen as re-reading pushes waiting for ever under a limit of 10). */
    chunk = chunk < 2 ? 2 : chunk;
    chunk = chunk > lim->app_minute ? lim->app_minute : chunk;
    int64_t ttl = xs_config_int(cfg, "XS_BUDGET_SHARED_TTL");
    orch_appbudget_opts ao = {.db_url = xs_config_str(cfg, "XS_DATABASE_URL"),
                              .holder = holder,
                              .limit = lim->app_minute,
                              /* A step spends its permits while it runs: a pull asks for
                               * pages until XS_PULL_STEP_TIME has passed, so a permit taken
                               * from a chunk may reach Xero that long after; the chunk
                               * counts for everyone that much longer (seen as the
                               * simulator's app-wide 429s in e2e_multi, pages at 400 ms). */
                              .window_ms = lim->minute_ms + lim->margin_ms + o->pull_step_ms,
                              .chunk = chunk,
                              .ttl_ms = ttl > 0                    ? ttl
                                        : lim->minute_ms / 60 > 10 ? lim->minute_ms / 60
                                                                   : 10,
                              .log = o->proc.log,
                              .granted = wake_executors,
                              .arg = o};
    xs_err e = orch_appbudget_create(&o->appbudget, &ao);
    if (e == XS_OK && (e = orch_appbudget_start(o->appbudget)) == XS_OK) {
        orch_budget_share(o->budget, o->appbudget);
    }
    return e;
}

xs_err orch_engine_start(orch *o)
{
    const xs_config *cfg = o->proc.cfg;
    orch_budget_limits lim = {
        .tenant_concurrent = xs_config_int(cfg, "XS_BUDGET_TENANT_CONCURRENT"),
        .tenant_minute = xs_config_int(cfg, "XS_BUDGET_TENANT_MINUTE"),
        .tenant_day = xs_config_int(cfg, "XS_BUDGET_TENANT_DAY"),
        .app_minute = xs_config_int(cfg, "XS_BUDGET_APP_MINUTE"),
        .minute_ms = xs_config_int(cfg, "XS_BUDGET_MINUTE_WINDOW"),
        .day_ms = xs_config_int(cfg, "XS_BUDGET_DAY_WINDOW"),
        .margin_ms = xs_config_int(cfg, "XS_BUDGET_MARGIN"),
        .probe_ms = xs_config_int(cfg, "XS_BUDGET_DAY_PROBE"),
        .tenant_burst = xs_config_int(cfg, "XS_BUDGET_TENANT_BURST"),
    };
    o->budget_limits = lim; /* for the budgets of tenants held elsewhere */
    xs_err e = orch_budget_create(&o->budget, &lim);
    if (e != XS_OK || (e = share_budget(o, &lim)) != XS_OK) {
        return e;
    }
    pthread_mutex_init(&o->disp_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_cond_init(&o->disp_cv, &ca);
    pthread_condattr_destroy(&ca);
    o->busy = json_object();
    o->round = json_object();
    o->refused = json_object();
    /* The shards this orchestrator acts for: taking them over seeds their budgets and makes
     * the steps their previous holder left running runnable again (lease.h). */
    if ((e = orch_lease_start(o, seed_shards)) != XS_OK) {
        return e;
    }
    o->nexec = (int)xs_config_int(cfg, "XS_EXECUTORS");
    o->executors = calloc((size_t)o->nexec, sizeof(pthread_t));
    if (o->executors == NULL) {
        return XS_ENOMEM;
    }
    for (int i = 0; i < o->nexec; i++) {
        if (pthread_create(&o->executors[i], NULL, executor_main, o) != 0) {
            return XS_ENOMEM;
        }
        o->nexec_started++;
    }
    xs_log_info(o->proc.log, "engine.ready", "{s:i, s:I, s:I}", "executors", o->nexec,
                "tenant_minute", (json_int_t)lim.tenant_minute, "minute_window_ms",
                (json_int_t)lim.minute_ms);
    return XS_OK;
}

void orch_engine_stop(orch *o)
{
    if (o->executors == NULL && o->budget == NULL) {
        return;
    }
    atomic_store(&o->stop, true);
    if (o->executors != NULL) {
        orch_executors_wake(o);
        for (int i = 0; i < o->nexec_started; i++) {
            pthread_join(o->executors[i], NULL);
        }
        free(o->executors);
        o->executors = NULL;
        pthread_cond_destroy(&o->disp_cv);
        pthread_mutex_destroy(&o->disp_mu);
    }
    /* No step of this orchestrator runs any more: its shards go back to the others. */
    orch_lease_stop(o);
    json_decref(o->busy);
    json_decref(o->round);
    json_decref(o->refused);
    orch_budget_share(o->budget, NULL);
    orch_appbudget_destroy(o->appbudget);
    o->appbudget = NULL;
    orch_budget_destroy(o->budget);
    o->budget = NULL;
}
