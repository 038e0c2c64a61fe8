/* pull_write.c: see pull_write.h. */
#include "engine/pull_write.h"

#include <stdio.h>
#include <stdlib.h>

#include "xs/json.h"

#include "engine/kit.h"
#include "engine/mappings.h"
#include "engine/pull_decide.h"

/* lock_local locks, in the open transaction, the local rows the page writes over and tells
 * whether each is still as it was read (its updated_at, to the millisecond): false when the
 * host application wrote one since, so the page must be decided again. */
static xs_err lock_local(xs_svc_ctx *ctx, const xs_entity_ops *ops, const page_known *k,
                         const xs_rows *updates, bool *same)
{
    *same = true;
    if (ops->table == NULL || updates->n == 0) {
        return XS_OK;
    }
    json_t *ids = json_array();
    for (size_t i = 0; i < updates->n; i++) {
        json_array_append_new(ids, json_string(updates->v[i].id));
    }
    char *arr = xs_domain_uuid_array(ids);
    json_decref(ids);
    if (arr == NULL) {
        return XS_ENOMEM;
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id::text, " XS_DOMAIN_MS("updated_at") " FROM %s WHERE id = ANY($1::uuid[]) "
                                                            "ORDER BY id FOR UPDATE",
             ops->table);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r, sql, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    json_t *seen = json_object();
    for (int row = 0; row < xs_pg_res_nrows(r); row++) {
        int64_t now = 0, then = -1;
        xs_pg_res_int(r, row, 1, &now);
        const xs_local_row *l = xs_local_rows_find(&k->local, xs_pg_res_get(r, row, 0));
        if (l != NULL) {
            then = l->at;
        }
        json_object_set_new(seen, xs_pg_res_get(r, row, 0), json_true());
        *same = *same && now == then;
    }
    for (size_t i = 0; i < updates->n; i++) {
        *same = *same && json_object_get(seen, updates->v[i].id) != NULL;
    }
    json_decref(seen);
    xs_pg_res_free(r);
    return XS_OK;
}

/* release_linked lets go, in the open transaction, of the claims of in-doubt creates this
 * page found in Xero (linked), queueing those another push wanted meanwhile. */
static xs_err release_linked(xs_svc_ctx *ctx, const step_req *req, const xs_entity_ops *ops,
                             const json_t *linked)
{
    if (json_array_size(linked) == 0) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(linked);
    if (arr == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "WITH gone AS (DELETE FROM sync.push_claims WHERE connection_id = $1 AND "
                       "entity = $2 AND local_id = ANY($3::uuid[]) RETURNING local_id, wanted) "
                       "SELECT count(*), count(sync.record_change($4::uuid, $2, local_id, "
                       "'update')) FILTER (WHERE wanted) FROM gone",
                       req->conn, ops->info->name, arr, step_or_empty(req->org));
    if (e == XS_OK) {
        xs_log_info(ctx->proc->log, "sync.own_create_linked", "{s:s, s:s, s:s}", "entity",
                    ops->info->name, "local_ids", arr, "effect",
                    "a record one of our pushes made while its reply was lost is linked, not "
                    "imported");
    }
    free(arr);
    xs_pg_res_free(r);
    return e;
}

/* write_page writes what the page came to in one transaction, marked as the engine's own and
 * as this connection's pull (every local row it creates gets its mapping here, so none is
 * unlinked for it). XS_ECONFLICT, rolled back, when a local row it would write over changed
 * since it was read. */
static xs_err write_page(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                         const page_known *k, page_out *o)
{
    const xs_entity_ops *ops = pg->ask->ops;
    const char *org = step_or_empty(req->org);
    json_t *at = NULL;
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    bool same = true;
    xs_err e;
    int64_t t0 = xs_clock_mono_ms();
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL, "SELECT sync.mark_pull($1)", req->conn)) != XS_OK) {
        return step_db_fail(ctx, e, "cannot begin");
    }
    if ((e = lock_local(ctx, ops, k, &o->updates, &same)) != XS_OK) {
        return step_db_fail(ctx, e, "cannot lock local records");
    }
    if (!same) {
        xs_pg_rollback(ctx->pg);
        return XS_ECONFLICT;
    }
    if (o->creates.n + o->updates.n > 0 &&
        (e = xs_domain_write_local(ctx->pg, ops, org, &o->creates, &o->updates, &at)) != XS_OK) {
        return step_db_fail(ctx, e, "cannot write local records");
    }
    if (json_array_size(o->created) > 0 &&
        (e = map_write_created(ctx->pg, ops, org, req->conn, txid, o->created)) != XS_OK) {
        json_decref(at);
        return step_db_fail(ctx, e, "cannot write new local records");
    }
    if (ops->unpaged && ops->retire_missing != NULL && pg->ask->ids == NULL &&
        pg->ask->filter == NULL && pg->since == 0 && pg->nrec == pg->n) {
        /* A full pull of an entity Xero lists whole, every record read: what is linked here
         * and not in the list is gone from Xero. */
        int gone = 0;
        json_t *seen = json_copy(pg->xids);
        for (size_t i = pg->nparsed; seen != NULL && i < pg->nrec; i++) {
            json_array_append_new(seen, json_string(pg->recs[i].xero_id));
        }
        e = seen != NULL ? ops->retire_missing(ctx->pg, org, req->conn, seen, set->types, &gone)
                         : XS_ENOMEM;
        json_decref(seen);
        if (e != XS_OK) {
            json_decref(at);
            return step_db_fail(ctx, e, "cannot mark the records Xero no longer lists");
        }
        step_count(o->counts, "retired", gone);
    }
    int64_t t1 = xs_clock_mono_ms();
    size_t i;
    json_t *item;
    json_array_foreach(o->maps, i, item)
    {
        json_t *t = json_object_get(at, xs_json_str_or(item, "local_id", ""));
        if (t != NULL && json_integer_value(json_object_get(item, "local_at")) != -1) {
            json_object_set(item, "local_at", t);
        }
    }
    json_decref(at);
    if ((e = map_write(ctx, req->conn, ops->info->name, txid, o->maps)) != XS_OK ||
        (e = map_write_memos(ctx, req->conn, ops->info->name, o->memos)) != XS_OK ||
        (e = map_write_conflicts(ctx, req, ops->info->name, o->conflicts)) != XS_OK ||
        (e = release_linked(ctx, req, ops, o->linked)) != XS_OK ||
        (e = map_queue_push(ctx, org, ops->info->name, o->queue)) != XS_OK ||
        (e = step_item_errors(ctx, req, ops->info->name, pg->errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        return step_db_fail(ctx, e, "cannot apply the page");
    }
    step_refresh_stats(ctx, ops, json_array_size(o->maps) + json_array_size(o->created));
    xs_log_debug(ctx->proc->log, "sync.pull_timing", "{s:I, s:I, s:I, s:I, s:I}", "records",
                 (json_int_t)pg->nrec, "call_ms", (json_int_t)pg->call_ms, "read_ms",
                 (json_int_t)pg->read_ms, "write_local_ms", (json_int_t)(t1 - t0), "write_rest_ms",
                 (json_int_t)(xs_clock_mono_ms() - t1));
    return XS_OK;
}

/* translate_refs makes the references of a page's parsed records local ids, once per page;
 * a record whose reference is not here yet is blocked (on says on what). */
static xs_err translate_refs(xs_svc_ctx *ctx, const step_req *req, page *pg, json_t *on)
{
    const xs_entity_ops *ops = pg->ask->ops;
    if (ops->refs == NULL || pg->nparsed == 0) {
        return XS_OK;
    }
    json_t **rs = calloc(pg->nparsed, sizeof(json_t *));
    bool *bl = calloc(pg->nparsed, sizeof(bool));
    size_t i;
    for (i = 0; rs != NULL && i < pg->nparsed; i++) {
        rs[i] = pg->recs[i].rec;
    }
    xs_err e = rs != NULL && bl != NULL
                   ? refs_translate(ctx->pg, req->conn, ops, rs, pg->nparsed, true, bl, on)
                   : XS_ENOMEM;
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        pg->recs[i].blocked = bl[i];
        if (!bl[i]) {
            xs_sync_checksum(pg->recs[i].rec, pg->recs[i].sum);
        }
    }
    free(rs);
    free(bl);
    return e != XS_OK ? step_db_fail(ctx, e, "cannot read what the records refer to") : XS_OK;
}

#define APPLY_TRIES 4

xs_err apply_page(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                  json_t *counts, blocked_ids *blocked, bool queue)
{
    const xs_entity_ops *ops = pg->ask->ops;
    bool final = req->final;
    step_count(counts, "fetched", (json_int_t)pg->n);
    step_count(counts, "failed", (json_int_t)pg->unreadable);
    json_t *on = json_object(); /* what blocked records wait for */
    xs_err e = on != NULL ? translate_refs(ctx, req, pg, on) : XS_ENOMEM;
    size_t nerr = json_array_size(pg->errors);
    for (int t = 1; e == XS_OK; t++) {
        page_known k = {0};
        page_out o;
        e = page_out_init(&o) ? page_lookup(ctx, req, set, pg, &k) : XS_ENOMEM;
        if (e == XS_OK) {
            e = decide_page(ctx, req, set, pg, on, queue, &k, &o);
        }
        if (e == XS_OK) {
            e = write_page(ctx, req, set, pg, &k, &o);
        }
        if (e == XS_OK) {
            const char *key;
            json_t *v;
            json_object_foreach(o.counts, key, v)
            {
                step_count(counts, key, json_integer_value(v));
            }
            for (size_t i = 0; i < o.blocked.self.n; i++) {
                e = idlist_add(&blocked->self, o.blocked.self.v[i]) ? e : XS_ENOMEM;
            }
            if (!final && !blocked_take(blocked, ops, on)) {
                e = XS_ENOMEM;
            }
        }
        page_known_fini(&k);
        page_out_fini(&o);
        if (e != XS_ECONFLICT) {
            break;
        }
        while (json_array_size(pg->errors) > nerr) {
            json_array_remove(pg->errors, json_array_size(pg->errors) - 1);
        }
        if (t == APPLY_TRIES) {
            e = xs_svc_fail(ctx, XS_EDB, true,
                            "the local records of this page keep changing while it is written");
            break;
        }
        xs_log_debug(ctx->proc->log, "sync.local_raced", "{s:s, s:i}", "entity", ops->info->name,
                     "try", t);
    }
    json_decref(on);
    return e;
}
