/* push_store.c: see push_store.h. */
#include "engine/push_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#include "engine/kit.h"
#include "engine/page.h"
#include "engine/pull_write.h"
#include "engine/refs.h"
#include "engine/runtime.h"

void push_req_fini(push_req *p)
{
    free(p->body);
    json_decref(p->items);
    json_decref(p->blocked);
    json_decref(p->again);
    memset(p, 0, sizeof(*p));
}

xs_err push_req_read(xs_svc_ctx *ctx, const char *step, push_req *p)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT request_body, idempotency_key, request_items FROM sync.run_steps "
                       "WHERE id = $1",
                       step);
    if (e != XS_OK) {
        return step_db_fail(ctx, e, "cannot read the step");
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return xs_svc_fail_field(ctx, XS_ENOTFOUND, "step_id", "no step %s", step);
    }
    p->consumed = -1;
    if (xs_pg_res_get(r, 0, 0) != NULL) {
        const char *it = xs_pg_res_get(r, 0, 2);
        json_t *stored = it != NULL ? xs_json_parse(it, strlen(it), NULL) : NULL;
        p->stored = true;
        p->body = strdup(xs_pg_res_get(r, 0, 0));
        snprintf(p->key, sizeof(p->key), "%s", xs_pg_res_get(r, 0, 1));
        p->items = json_incref(json_object_get(stored, "items"));
        p->kind = batch_kind_parse(xs_json_str_or(stored, "kind", NULL));
        snprintf(p->next_scan, sizeof(p->next_scan), "%s", xs_json_str_or(stored, "next_scan", ""));
        xs_json_get_int(stored, "consumed", &p->consumed);
        xs_json_get_int(stored, "first_ms", &p->first_ms);
        p->blocked = json_incref(json_object_get(stored, "blocked"));
        p->again = json_incref(json_object_get(stored, "again"));
        json_decref(stored);
        if (p->body == NULL || !json_is_array(p->items) || p->kind == BATCH_NONE) {
            e = xs_svc_fail(ctx, XS_EPROTO, false, "step %s holds a damaged request", step);
        }
    }
    xs_pg_res_free(r);
    return e;
}

int64_t push_settle_ms(xs_svc_ctx *ctx)
{
    const domain_worker *w = ctx->wstate;
    return w->svc->xero.timeout_ms + XS_DOMAIN_RESUME_MARGIN_MS;
}

/* claim_batch claims, in the open transaction, the batch's records for this step
 * (sync.push_claims, migration 0009): a record held by another live step, or a create of an
 * ended step that may be in Xero, stays with it (marked wanted, so it is queued again when
 * let go) and leaves the batch. */
static xs_err claim_batch(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                          const char *step, batch *b, json_t *counts)
{
    json_t *rows = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(b->items, i, it)
    {
        bool retire = json_is_true(json_object_get(it, "retire"));
        bool create = b->kind == BATCH_CREATE;
        json_array_append_new(rows, json_pack("{s:s, s:s, s:O?}", "local_id",
                                              xs_json_str_or(it, "local_id", ""), "op",
                                              create   ? "create"
                                              : retire ? "retire"
                                                       : "update",
                                              "sent", retire ? NULL : json_object_get(it, "rec")));
    }
    char settle[24];
    snprintf(settle, sizeof(settle), "%lld", (long long)push_settle_ms(ctx));
    const char *p[] = {req->conn, ops->info->name, step, settle};
    xs_pg_res *r = NULL;
    xs_err e = step_exec_json(
        ctx->pg, &r,
        "INSERT INTO sync.push_claims AS c (connection_id, entity, local_id, step_id, op, sent, "
        "settled_by) SELECT $1, $2, r.local_id, $3, r.op, r.sent, now() + $4::bigint * "
        "interval '1 millisecond' FROM jsonb_to_recordset($5::jsonb) AS r(local_id uuid, op "
        "text, sent jsonb) ON CONFLICT (connection_id, entity, local_id) DO UPDATE SET step_id "
        "= EXCLUDED.step_id, op = EXCLUDED.op, sent = EXCLUDED.sent, settled_by = "
        "EXCLUDED.settled_by, wanted = false, claimed_at = now() WHERE c.step_id = "
        "EXCLUDED.step_id OR (NOT EXISTS (SELECT 1 FROM sync.run_steps s JOIN sync.runs r ON "
        "r.id = s.run_id WHERE s.id = c.step_id AND s.status IN ('pending', 'running') AND "
        "r.status IN ('queued', 'running')) AND NOT (c.op = 'create' AND c.settled_by IS NOT "
        "NULL)) RETURNING c.local_id::text",
        4, p, rows);
    json_decref(rows);
    if (e != XS_OK) {
        return e;
    }
    json_t *got = json_object(), *held = json_array();
    for (int k = 0; k < xs_pg_res_nrows(r); k++) {
        json_object_set_new(got, xs_pg_res_get(r, k, 0), json_true());
    }
    xs_pg_res_free(r);
    json_t *items = json_array(), *xitems = json_array();
    json_array_foreach(b->items, i, it)
    {
        const char *lid = xs_json_str_or(it, "local_id", "");
        if (json_object_get(got, lid) != NULL) {
            json_array_append(items, it);
            json_array_append(xitems, json_array_get(b->xitems, i));
        } else {
            json_array_append_new(held, json_string(lid));
        }
    }
    json_decref(got);
    json_decref(b->items);
    json_decref(b->xitems);
    b->items = items;
    b->xitems = xitems;
    if (json_array_size(held) > 0) {
        /* Another push holds them: it sends them, or queues them again when it lets go. */
        step_count(counts, "held", (json_int_t)json_array_size(held));
        char *arr = xs_domain_uuid_array(held);
        e = arr != NULL ? xs_pg_q(ctx->pg, NULL,
                                  "UPDATE sync.push_claims SET wanted = true WHERE connection_id "
                                  "= $1 AND entity = $2 AND local_id = ANY($3::uuid[])",
                                  req->conn, ops->info->name, arr)
                        : XS_ENOMEM;
        free(arr);
    }
    json_decref(held);
    return e;
}

char *push_request_body(const xs_entity_ops *ops, const batch *b)
{
    if (b->kind == BATCH_DELETE) {
        json_t *x = json_copy(json_array_get(b->xitems, 0));
        json_object_del(x, ops->id_field);
        char *text = xs_json_dump(x, 0);
        json_decref(x);
        return text;
    }
    json_t *doc = json_pack("{s:O}", ops->xero_list, b->xitems);
    char *text = xs_json_dump(doc, 0);
    json_decref(doc);
    return text;
}

xs_err push_request_key(const step_req *req, const json_t *items, const char *body, char key[64])
{
    size_t blen = strlen(body) + strlen(req->conn) + json_array_size(items) * 2 * XS_ID_MAX + 2;
    char *keyed = malloc(blen);
    if (keyed == NULL) {
        return XS_ENOMEM;
    }
    size_t kn = (size_t)snprintf(keyed, blen, "%s\n", req->conn);
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        kn += (size_t)snprintf(keyed + kn, blen - kn, "%s:%s,", xs_json_str_or(v, "local_id", ""),
                               xs_json_str_or(v, "xero_id", ""));
    }
    snprintf(keyed + kn, blen - kn, "\n%s", body);
    char seed[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(keyed, strlen(keyed), seed);
    free(keyed);
    snprintf(key, 64, "xs-%.40s", seed);
    return XS_OK;
}

xs_err push_store_request(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, batch *b,
                          json_t *errors, json_t *counts, push_req *p)
{
    const char *step = req->step;
    xs_err e = xs_pg_begin(ctx->pg);
    if (e == XS_OK && json_array_size(b->items) > 0) {
        e = claim_batch(ctx, ops, req, step, b, counts);
    }
    char *itext = NULL;
    if (e == XS_OK && json_array_size(b->items) > 0) {
        free(p->body); /* a retry's, rebuilt */
        p->body = push_request_body(ops, b);
        e = p->body != NULL ? push_request_key(req, b->items, p->body, p->key) : XS_ENOMEM;
        p->kind = b->kind;
        json_decref(p->items);
        p->items = json_incref(b->items);
        if (p->first_ms == 0) {
            p->first_ms = xs_clock_now();
        }
        json_t *stored = json_pack("{s:O, s:s, s:s, s:I, s:I}", "items", p->items, "kind",
                                   BATCH_NAMES[p->kind], "next_scan", p->next_scan, "consumed",
                                   (json_int_t)p->consumed, "first_ms", (json_int_t)p->first_ms);
        if (p->blocked != NULL) {
            json_object_set(stored, "blocked", p->blocked);
        }
        if (p->again != NULL) {
            json_object_set(stored, "again", p->again);
        }
        itext = stored != NULL ? xs_json_dump(stored, 0) : NULL;
        json_decref(stored);
        const char *q[] = {step, p->body, p->key, itext};
        if (e == XS_OK) {
            e = itext == NULL ? XS_ENOMEM
                              : xs_pg_exec(ctx->pg, NULL,
                                           "UPDATE sync.run_steps SET request_body = $2, "
                                           "idempotency_key = $3, request_items = $4::jsonb WHERE "
                                           "id = $1",
                                           4, q);
        }
    } else if (e == XS_OK) {
        /* Nothing left to send: a request stored before (a retry's) is done with. */
        free(p->body);
        p->body = NULL;
        e = xs_pg_q(ctx->pg, NULL,
                    "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE id "
                    "= $1",
                    step);
    }
    free(itext);
    if (e == XS_OK && (e = step_item_errors(ctx, req, ops->info->name, errors)) == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    json_array_clear(errors);
    return e != XS_OK ? step_db_fail(ctx, e, "cannot store the request before sending it") : XS_OK;
}

xs_err push_reread(xs_svc_ctx *ctx, const step_req *req, const settings *set,
                   const xs_entity_ops *ops, const json_t *xids, json_t *counts, xs_xero_call *call,
                   const char **outcome)
{
    domain_worker *w = ctx->wstate;
    pull_ask ask = {.ops = ops,
                    .ids = xids,
                    .page_size = 50,
                    .bearer = step_or_empty(req->bearer),
                    .tenant_id = step_or_empty(req->tenant_id),
                    .conn = req->conn};
    page p = {.number = 1, .x = w->x, .db = ctx->pg, .w = w, .ask = &ask};
    page_fetch(&p);
    step_audit(ctx, req, &p.call);
    *call = p.call;
    *outcome = p.outcome;
    xs_err e = XS_OK;
    if (p.outcome == NULL) {
        json_t *pc = step_counts_new(STEP_PULL_COUNTS);
        blocked_ids b = {0};
        e = page_read(&p);
        if (e == XS_OK) {
            e = apply_page(ctx, req, set, &p, pc, &b, false);
        }
        step_count(counts, "reread", json_integer_value(json_object_get(pc, "fetched")));
        step_count(counts, "conflicts", json_integer_value(json_object_get(pc, "conflicts")));
        json_decref(pc);
        blocked_fini(&b);
    }
    page_fini(&p);
    return e;
}

json_t *push_items_ids(const json_t *items, bool xero)
{
    json_t *ids = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *id = xs_json_str_or(it, xero ? "xero_id" : "local_id", NULL);
        if (id != NULL) {
            json_array_append_new(ids, json_string(id));
        }
    }
    return ids;
}

xs_err push_release_claims(xs_svc_ctx *ctx, const step_req *req, bool keep_creates)
{
    return xs_pg_q(ctx->pg, NULL,
                   "WITH gone AS (DELETE FROM sync.push_claims WHERE step_id = $1 AND (op <> "
                   "'create' OR NOT $2::boolean) RETURNING entity, local_id, wanted) SELECT "
                   "count(sync.record_change($3::uuid, entity, local_id, 'update')) FROM gone "
                   "WHERE wanted",
                   req->step, keep_creates ? "true" : "false", step_or_empty(req->org));
}

/* push_scan_on reads on with a scan that stopped at the end of what it read: the next SCAN_READ
 * ids, until a batch of one kind is full or SCAN_MAX records were read (scanned so far) or the
 * records end (p->next_scan: where it goes on). */
static xs_err push_scan_on(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                           int scanned, json_t *counts, batch *b, json_t *errors, push_req *p,
                           blocked_ids *bids, char *stop)
{
    const char *org = step_or_empty(ask->req->org);
    xs_err e = XS_OK;
    while (e == XS_OK && stop[0] == '\0' && p->next_scan[0] != '\0' && !batch_full(b) &&
           scanned < SCAN_MAX) {
        json_t *more = NULL;
        char after[XS_ID_MAX];
        snprintf(after, sizeof(after), "%s", p->next_scan);
        if ((e = ops->list_ids(ctx->pg, org, ask->req->conn, after, SCAN_READ, &more,
                               p->next_scan)) != XS_OK) {
            return step_db_fail(ctx, e, "cannot list local records");
        }
        scanned += SCAN_READ;
        e = batch_build(ctx, ops, ask, org, more, counts, b, errors, bids, stop);
        json_decref(more);
    }
    return e;
}

/* push_consumed is how many of the given ids (ids) a step dealt with: all, or those up to the
 * one a full batch stopped at (stop); -1 for a scan. */
static int64_t push_consumed(const json_t *ids, bool scan, const char *stop)
{
    if (scan) {
        return -1;
    }
    size_t k;
    json_t *v;
    json_array_foreach(stop[0] != '\0' ? ids : NULL, k, v)
    {
        if (xs_json_string_value(v, NULL) != NULL &&
            strcmp(xs_json_string_value(v, NULL), stop) == 0) {
            return (int64_t)k + 1;
        }
    }
    return (int64_t)json_array_size(ids);
}

xs_err push_build_fresh(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                        json_t *counts, batch *b, json_t *errors, push_req *p)
{
    const char *org = step_or_empty(ask->req->org);
    json_t *ids = NULL;
    char stop[XS_ID_MAX] = "";
    bool scan = false;
    blocked_ids bids = {0};
    xs_err e = batch_candidates(ctx, ops, ask, org, &ids, p->next_scan, &scan);
    if (e == XS_OK) {
        e = batch_build(ctx, ops, ask, org, ids, counts, b, errors, &bids, stop);
    }
    if (e == XS_OK && scan) {
        e = push_scan_on(ctx, ops, ask, (int)json_array_size(ids), counts, b, errors, p, &bids,
                         stop);
    }
    if (e == XS_OK && stop[0] == '\0' && !batch_full(b) && ask->defer_partial) {
        /* The last records, not a whole request: they join those of the phase waiting to go
         * in a step of their own (again), which makes fuller requests of them. */
        batch_defer(b);
    }
    if (e == XS_OK) {
        batch_finish(b);
        if (scan && stop[0] != '\0') {
            snprintf(p->next_scan, sizeof(p->next_scan), "%s", stop);
        }
        /* Given ids: those up to the last one taken are consumed; the orchestrator sends the
         * rest in the next step, so every call carries a full batch. */
        p->consumed = push_consumed(ids, scan, stop);
        p->blocked = blocked_json(&bids);
        p->again = json_array_size(b->again) > 0 ? json_incref(b->again) : NULL;
    }
    blocked_fini(&bids);
    json_decref(ids);
    return e;
}
