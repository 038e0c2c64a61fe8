/* retention.c: old history pruned in small batches (see retention.h). */
#include "retention.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"
#include "xs/clock.h"
#include "xs/json.h"

#define HOUR_MS (3600 * 1000LL)
#define DAY_MS  (24 * HOUR_MS)
/* How long the thread sleeps at a time, so a stop is seen soon. */
#define NAP_MS 100
/* One key for every orchestrator: one pass at a time across them all. */
#define LOCK_KEY "7863011920140001"

/* A run that may go ($1: the cut-off of succeeded runs, $2: of failed, partial and canceled
 * ones; NULL: kept forever): finished before its cut-off; no PENDING conflict points at it;
 * none of its steps is unfinished or holds a push claim (a create in doubt outlives its
 * step); and a later run of its kind (connection, mode, entities, status) exists both by
 * start and by end, so every "latest run" the engine asks for keeps its answer. Deleting it
 * then cascades only into its own steps and item errors, and a settled conflict that named it
 * loses the link (ON DELETE SET NULL). */
#define PRUNABLE_RUN                                                                               \
    "((r.status = 'succeeded' AND r.finished_at < $1::timestamptz) OR (r.status IN ('failed', "    \
    "'partial', 'canceled') AND r.finished_at < $2::timestamptz)) AND NOT EXISTS (SELECT 1 FROM "  \
    "sync.conflicts c WHERE c.run_id = r.id AND c.status = 'PENDING') AND NOT EXISTS (SELECT 1 "   \
    "FROM sync.run_steps s WHERE s.run_id = r.id AND (s.status IN ('pending', 'running') OR "      \
    "EXISTS (SELECT 1 FROM sync.push_claims p WHERE p.step_id = s.id))) AND EXISTS (SELECT 1 "     \
    "FROM sync.runs n WHERE n.connection_id = r.connection_id AND n.mode = r.mode AND "            \
    "n.entities = r.entities AND n.status = r.status AND n.created_at > r.created_at) AND EXISTS " \
    "(SELECT 1 FROM sync.runs n WHERE n.connection_id = r.connection_id AND n.mode = r.mode AND "  \
    "n.entities = r.entities AND n.status = r.status AND n.finished_at > r.finished_at)"

/* The runs of a batch ($3, a uuid[] literal) that may still go. */
#define BATCH_RUNS "SELECT r.id FROM sync.runs r WHERE r.id = ANY ($3::uuid[]) AND " PRUNABLE_RUN

/* The next batch of runs that may go, oldest first, after the cursor ($3, $4): id and
 * finished_at (exact text). */
static const char PICK_RUNS[] =
    "SELECT r.id, r.finished_at::text FROM sync.runs r WHERE r.finished_at < "
    "greatest($1::timestamptz, $2::timestamptz) AND (r.finished_at, r.id) > ($3::timestamptz, "
    "$4::uuid) AND " PRUNABLE_RUN " ORDER BY r.finished_at, r.id LIMIT $5";

/* A batch's item errors, then its steps, then the runs ($4: most rows). */
static const char DELETE_ITEM_ERRORS[] =
    "DELETE FROM sync.run_item_errors WHERE id IN (SELECT e.id FROM sync.run_item_errors e WHERE "
    "e.run_id IN (" BATCH_RUNS ") LIMIT $4 FOR UPDATE SKIP LOCKED)";
static const char DELETE_STEPS[] =
    "DELETE FROM sync.run_steps WHERE id IN (SELECT s.id FROM sync.run_steps s WHERE s.run_id IN "
    "(" BATCH_RUNS ") LIMIT $4 FOR UPDATE SKIP LOCKED)";
static const char DELETE_RUNS[] = "DELETE FROM sync.runs WHERE id IN (" BATCH_RUNS ")";

/* Calls older than the cut-off ($1) and than the budget's window ($2 ms, the database's
 * clock: the budget counts the window's calls with it after a restart); $3: most rows. */
static const char DELETE_CALLS[] =
    "DELETE FROM sync.api_calls WHERE id IN (SELECT id FROM sync.api_calls WHERE at < "
    "least($1::timestamptz, now() - $2::bigint * interval '1 millisecond') ORDER BY at LIMIT $3 "
    "FOR UPDATE SKIP LOCKED)";

/* Changes handed to push runs before the cut-off ($1); $2: most rows. */
static const char DELETE_CHANGES[] =
    "DELETE FROM sync.changes WHERE id IN (SELECT id FROM sync.changes WHERE processed_at < "
    "$1::timestamptz ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)";

/* Events done, failed or ignored before the cut-off ($1), received before the window ($2 ms,
 * the database's clock: Xero redelivers for a day, and the safety net asks whether the tenant
 * was heard within XS_WEBHOOK_SILENCE), and not the tenant's latest (the statistics show when
 * that came); $3: most rows. */
static const char DELETE_EVENTS[] =
    "DELETE FROM sync.webhook_events WHERE id IN (SELECT e.id FROM sync.webhook_events e WHERE "
    "e.status IN ('done', 'failed', 'ignored') AND coalesce(e.processed_at, e.received_at) < "
    "$1::timestamptz AND e.received_at < now() - $2::bigint * interval '1 millisecond' AND EXISTS "
    "(SELECT 1 FROM sync.webhook_events n WHERE n.tenant_id = e.tenant_id AND n.received_at > "
    "e.received_at) ORDER BY coalesce(e.processed_at, e.received_at) LIMIT $3 FOR UPDATE SKIP "
    "LOCKED)";

/* What one pass deleted, for its log line. */
typedef struct pass {
    int64_t runs, steps, item_errors, calls, changes, events, statements;
    xs_time now;
} pass;

xs_err orch_retention_read(orch *o, const xs_config *cfg, char *err)
{
    const struct {
        const char *var;
        int64_t *ms;
    } periods[] = {
        {"XS_RETAIN_RUNS", &o->retain.runs_ms},
        {"XS_RETAIN_RUNS_FAILED", &o->retain.runs_failed_ms},
        {"XS_RETAIN_API_CALLS", &o->retain.api_calls_ms},
        {"XS_RETAIN_CHANGES", &o->retain.changes_ms},
        {"XS_RETAIN_WEBHOOK_EVENTS", &o->retain.webhook_events_ms},
    };
    for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
        int64_t ms = xs_config_int(cfg, periods[i].var);
        if (ms != 0 && ms < HOUR_MS) {
            snprintf(err, XS_CONFIG_ERR_MAX,
                     "%s: must be 0 (kept forever) or at least 1h, got \"%s\"", periods[i].var,
                     xs_config_str(cfg, periods[i].var));
            return XS_ECONFIG;
        }
        *periods[i].ms = ms;
    }
    o->retain.every_ms = xs_config_int(cfg, "XS_RETAIN_EVERY");
    o->retain.pause_ms = xs_config_int(cfg, "XS_RETAIN_PAUSE");
    o->retain.batch = xs_config_int(cfg, "XS_RETAIN_BATCH");
    int64_t day = xs_config_int(cfg, "XS_BUDGET_DAY_WINDOW");
    int64_t silence = xs_config_int(cfg, "XS_WEBHOOK_SILENCE");
    o->retain.calls_floor_ms = day > DAY_MS ? day : DAY_MS;
    o->retain.events_floor_ms = silence > DAY_MS ? silence : DAY_MS;
    return XS_OK;
}

/* nap sleeps ms in short naps; false when the orchestrator is stopping. */
static bool nap(orch *o, int64_t ms)
{
    for (int64_t slept = 0; slept < ms && !atomic_load(&o->stop); slept += NAP_MS) {
        xs_clock_sleep_ms(ms - slept < NAP_MS ? ms - slept : NAP_MS);
    }
    return !atomic_load(&o->stop);
}

/* cutoff writes the time period ms before p's clock into buf (XS_TIME_ISO_MAX bytes) and
 * returns it, or NULL (SQL NULL: nothing is old enough) for a period of 0. */
static const char *cutoff(const pass *p, int64_t ms, char *buf)
{
    if (ms == 0) {
        return NULL;
    }
    xs_time_format_iso(p->now - ms, buf);
    return buf;
}

/* run_sql runs one pruning statement and adds the rows it deleted to *count (and to the
 * pass's statements), pausing XS_RETAIN_PAUSE after it. */
static xs_err run_sql(orch *o, xs_pg *pg, pass *p, const char *sql, int n,
                      const char *const *params, int64_t *count, int64_t *deleted)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_exec(pg, &r, sql, n, params);
    if (e != XS_OK) {
        return e;
    }
    int64_t d = xs_pg_res_affected(r);
    xs_pg_res_free(r);
    *count += d;
    *deleted = d;
    p->statements++;
    return nap(o, o->retain.pause_ms) ? XS_OK : XS_ECANCELED;
}

/* prune_simple deletes, batch after batch, what sql selects with the cut-off of period ms
 * ($1), the window floor_ms ($2; none when negative) and the batch (last), until a batch comes
 * back short. */
static xs_err prune_simple(orch *o, xs_pg *pg, pass *p, const char *sql, int64_t ms,
                           int64_t floor_ms, int64_t *count)
{
    char cut[XS_TIME_ISO_MAX], floor_t[24], lim[24];
    if (cutoff(p, ms, cut) == NULL) {
        return XS_OK;
    }
    snprintf(floor_t, sizeof(floor_t), "%lld", (long long)floor_ms);
    snprintf(lim, sizeof(lim), "%lld", (long long)o->retain.batch);
    const char *params[] = {cut, floor_ms >= 0 ? floor_t : lim, lim};
    int n = floor_ms >= 0 ? 3 : 2;
    int64_t deleted = o->retain.batch;
    xs_err e = XS_OK;
    while (e == XS_OK && deleted == o->retain.batch) {
        e = run_sql(o, pg, p, sql, n, params, count, &deleted);
    }
    return e;
}

/* drain_children deletes, batch after batch, what sql selects of the runs in ids (a uuid[]
 * literal) that may still go, until a batch comes back short. */
static xs_err drain_children(orch *o, xs_pg *pg, pass *p, const char *const cuts[2],
                             const char *ids, const char *sql, int64_t *count)
{
    char lim[24];
    snprintf(lim, sizeof(lim), "%lld", (long long)o->retain.batch);
    const char *params[] = {cuts[0], cuts[1], ids, lim};
    int64_t deleted = o->retain.batch;
    xs_err e = XS_OK;
    while (e == XS_OK && deleted == o->retain.batch) {
        e = run_sql(o, pg, p, sql, 4, params, count, &deleted);
    }
    return e;
}

/* prune_runs deletes the runs that may go, a batch at a time, oldest first: their item
 * errors, then their steps, each in statements of at most XS_RETAIN_BATCH rows, then the
 * runs themselves. The cursor moves past the runs seen, so runs kept are read once a pass. */
static xs_err prune_runs(orch *o, xs_pg *pg, pass *p)
{
    char ok[XS_TIME_ISO_MAX], bad[XS_TIME_ISO_MAX], lim[24];
    const char *cuts[2] = {cutoff(p, o->retain.runs_ms, ok),
                           cutoff(p, o->retain.runs_failed_ms, bad)};
    if (cuts[0] == NULL && cuts[1] == NULL) {
        return XS_OK;
    }
    snprintf(lim, sizeof(lim), "%lld", (long long)o->retain.batch);
    char *after_t = strdup("-infinity"), *after_id = strdup("00000000-0000-0000-0000-000000000000");
    xs_err e = after_t != NULL && after_id != NULL ? XS_OK : XS_ENOMEM;
    int n = (int)o->retain.batch;
    while (e == XS_OK && n == o->retain.batch) {
        xs_pg_res *r = NULL;
        e = xs_pg_q(pg, &r, PICK_RUNS, cuts[0], cuts[1], after_t, after_id, lim);
        if (e != XS_OK) {
            break;
        }
        n = xs_pg_res_nrows(r);
        json_t *list = json_array();
        for (int i = 0; i < n; i++) {
            json_array_append_new(list, json_string(xs_pg_res_get(r, i, 0)));
        }
        if (n > 0) {
            free(after_t);
            free(after_id);
            after_t = strdup(xs_pg_res_get(r, n - 1, 1));
            after_id = strdup(xs_pg_res_get(r, n - 1, 0));
        }
        xs_pg_res_free(r);
        /* A PostgreSQL array literal of the ids: {"…","…"} (uuids need no escaping). */
        char *ids = xs_json_dump(list, 0);
        json_decref(list);
        if (ids == NULL || after_t == NULL || after_id == NULL) {
            free(ids);
            e = XS_ENOMEM;
            break;
        }
        ids[0] = '{';
        ids[strlen(ids) - 1] = '}';
        int64_t deleted = 0;
        if (n > 0) {
            e = drain_children(o, pg, p, cuts, ids, DELETE_ITEM_ERRORS, &p->item_errors);
        }
        if (e == XS_OK && n > 0) {
            e = drain_children(o, pg, p, cuts, ids, DELETE_STEPS, &p->steps);
        }
        if (e == XS_OK && n > 0) {
            const char *params[] = {cuts[0], cuts[1], ids};
            e = run_sql(o, pg, p, DELETE_RUNS, 3, params, &p->runs, &deleted);
        }
        free(ids);
    }
    free(after_t);
    free(after_id);
    return e;
}

/* prune runs one pass over every kind of history, holding the advisory lock; logs
 * retention.pruned with what it deleted (and retention.failed when a statement failed: the
 * next pass carries on). */
static void prune(orch *o, xs_pg *pg)
{
    xs_pg_res *r = NULL;
    bool mine = false;
    if (xs_pg_q(pg, &r, "SELECT pg_try_advisory_lock($1::bigint)", LOCK_KEY) == XS_OK) {
        xs_pg_res_bool(r, 0, 0, &mine);
    }
    xs_pg_res_free(r);
    if (!mine) {
        xs_log_debug(o->proc.log, "retention.busy", NULL);
        return;
    }
    int64_t t0 = xs_clock_mono_ms();
    pass p = {.now = xs_clock_now()};
    const char *table = "runs";
    xs_err e = prune_runs(o, pg, &p);
    if (e == XS_OK) {
        table = "api_calls";
        e = prune_simple(o, pg, &p, DELETE_CALLS, o->retain.api_calls_ms, o->retain.calls_floor_ms,
                         &p.calls);
    }
    if (e == XS_OK) {
        table = "changes";
        e = prune_simple(o, pg, &p, DELETE_CHANGES, o->retain.changes_ms, -1, &p.changes);
    }
    if (e == XS_OK) {
        table = "webhook_events";
        e = prune_simple(o, pg, &p, DELETE_EVENTS, o->retain.webhook_events_ms,
                         o->retain.events_floor_ms, &p.events);
    }
    if (e != XS_OK && e != XS_ECANCELED) {
        xs_log_warn(o->proc.log, "retention.failed", "{s:s, s:s}", "table", table, "error",
                    xs_pg_error(pg));
    }
    char now[XS_TIME_ISO_MAX];
    xs_time_format_iso(p.now, now);
    xs_log_info(o->proc.log, "retention.pruned",
                "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b}", "runs", (json_int_t)p.runs,
                "run_steps", (json_int_t)p.steps, "run_item_errors", (json_int_t)p.item_errors,
                "api_calls", (json_int_t)p.calls, "changes", (json_int_t)p.changes,
                "webhook_events", (json_int_t)p.events, "statements", (json_int_t)p.statements,
                "ms", (json_int_t)(xs_clock_mono_ms() - t0), "clock", now, "complete", e == XS_OK);
    if (xs_pg_is_ok(pg)) {
        xs_pg_q(pg, NULL, "SELECT pg_advisory_unlock($1::bigint)", LOCK_KEY);
    }
}

/* retention_main prunes at start, then every XS_RETAIN_EVERY, on a connection of its own
 * whose statements give up on a lock rather than wait behind sync work. */
static void *retention_main(void *arg)
{
    orch *o = arg;
    xs_pg *pg = NULL;
    while (!atomic_load(&o->stop)) {
        if (pg == NULL || !xs_pg_is_ok(pg)) {
            if (!orch_pg_open(o, &pg, "xs-orchestrator retention", NULL, 1000) ||
                xs_pg_q0(pg, NULL, "SET lock_timeout = '2s'") != XS_OK ||
                xs_pg_q0(pg, NULL, "SET statement_timeout = '60s'") != XS_OK) {
                continue;
            }
        }
        prune(o, pg);
        nap(o, o->retain.every_ms);
    }
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_retention_start(orch *o)
{
    if (pthread_create(&o->retention, NULL, retention_main, o) != 0) {
        return XS_ENOMEM;
    }
    o->retention_started = true;
    return XS_OK;
}

void orch_retention_stop(orch *o)
{
    if (o->retention_started) {
        pthread_join(o->retention, NULL);
        o->retention_started = false;
    }
}
