/* push_reply.c: see push_reply.h. */
#include "engine/push_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#include "engine/kit.h"
#include "engine/lookup.h"
#include "engine/mappings.h"
#include "engine/refs.h"
#include "engine/step.h"

json_t *push_reply(const char *outcome, const json_t *counts, const xs_xero_call *call,
                   int64_t calls, const push_req *p)
{
    json_t *out = json_pack("{s:s, s:O, s:I}", "outcome", outcome, "counts", counts, "calls",
                            (json_int_t)calls);
    if (out == NULL) {
        return NULL;
    }
    if (call != NULL) {
        json_object_set_new(out, "call", step_call_json(call));
    }
    if (p->next_scan[0] != '\0') {
        json_object_set_new(out, "next_scan", json_string(p->next_scan));
    }
    if (p->consumed >= 0) {
        json_object_set_new(out, "consumed", json_integer(p->consumed));
    }
    if (p->blocked != NULL) {
        /* The orchestrator pushes what they refer to, then them (in a final step). */
        json_object_set(out, "blocked", p->blocked);
    }
    if (p->again != NULL) {
        /* Other kinds of write met on the way: the next step sends them. */
        json_object_set(out, "again", p->again);
    }
    return out;
}

int64_t push_resend_window(xs_svc_ctx *ctx)
{
    return xs_config_int(ctx->proc->cfg, "XS_PUSH_RESEND_WINDOW");
}

xs_err push_leave_in_doubt(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                           json_t *counts, push_req *p, json_t **reply)
{
    const char *step = req->step;
    xs_err e = xs_pg_begin(ctx->pg);
    if (e == XS_OK &&
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE "
                     "id = $1",
                     step)) == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    if (e != XS_OK) {
        return step_db_fail(ctx, e, "cannot end the step");
    }
    json_t *ids = push_items_ids(p->items, false);
    char *arr = xs_domain_uuid_array(ids);
    xs_log_warn(ctx->proc->log, "sync.create_in_doubt", "{s:s, s:s, s:s, s:s}", "entity",
                ops->info->name, "step", step, "local_ids", arr != NULL ? arr : "", "effect",
                "not sent again (past XS_PUSH_RESEND_WINDOW): the next pull links them if Xero "
                "made them, else they are sent anew");
    free(arr);
    json_decref(ids);
    step_count(counts, "in_doubt", (json_int_t)json_array_size(p->items));
    *reply = push_reply("done", counts, NULL, 0, p);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

/* remove_own_copy deletes local record copy, which a pull imported from our own create before
 * the push's reply came, when nothing changed it since (its mapping's local_updated_at), in a
 * savepoint of the open transaction: *gone is how many rows went (0 when it stays, say because
 * another record names it). */
static xs_err remove_own_copy(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                              const char *copy, int64_t *gone)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "WITH d AS (DELETE FROM %s t USING sync.mappings m WHERE t.id = $1 AND "
             "m.connection_id = $2 AND m.entity = $3 AND m.local_id = t.id AND "
             "m.local_updated_at = " XS_DOMAIN_AT_MS("t.updated_at") " RETURNING t.id) "
                                                                     "SELECT count(*) FROM d",
             ops->table);
    xs_pg_res *d = NULL;
    xs_err e = xs_pg_q0(ctx->pg, NULL, "SAVEPOINT own_copy");
    if (e == XS_OK) {
        if (xs_pg_q(ctx->pg, &d, sql, copy, req->conn, ops->info->name) == XS_OK) {
            xs_pg_res_int(d, 0, 0, gone);
            e = xs_pg_q0(ctx->pg, NULL, "RELEASE SAVEPOINT own_copy");
        } else {
            e = xs_pg_q0(ctx->pg, NULL, "ROLLBACK TO SAVEPOINT own_copy");
        }
    }
    xs_pg_res_free(d);
    return e;
}

/* own_copies checks, in the open transaction, the mappings a push's creates are about to get
 * (maps, of which created: the local ids made new in Xero) against those already written:
 *   - a local record already linked to another Xero record: Xero made a second one from it.
 *     Nothing links the new one; an error names both.
 *   - a Xero record already linked to another local record: a pull imported our own create
 *     before its reply came. The link moves to the record that caused it, and the imported
 *     copy is removed when the engine made it and nothing changed or names it since; else an
 *     error names both, for a person to merge. */
static xs_err own_copies(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                         json_t *maps, const json_t *created, json_t *errors)
{
    json_t *rows = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(maps, i, m)
    {
        const char *lid = xs_json_str_or(m, "local_id", "");
        size_t k;
        json_t *c;
        json_array_foreach(created, k, c)
        {
            if (xs_json_string_value(c, NULL) != NULL &&
                strcmp(xs_json_string_value(c, NULL), lid) == 0) {
                json_array_append_new(rows, json_pack("{s:s, s:s}", "local_id", lid, "xero_id",
                                                      xs_json_str_or(m, "xero_id", "")));
            }
        }
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return XS_OK;
    }
    const char *p[] = {req->conn, ops->info->name};
    xs_pg_res *r = NULL;
    xs_err e =
        step_exec_json(ctx->pg, &r,
                       "SELECT r.local_id::text, r.xero_id::text, ml.xero_id::text, "
                       "mx.local_id::text FROM jsonb_to_recordset($3::jsonb) AS r(local_id "
                       "uuid, xero_id uuid) LEFT JOIN sync.mappings ml ON ml.connection_id = $1 "
                       "AND ml.entity = $2 AND ml.local_id = r.local_id LEFT JOIN sync.mappings "
                       "mx ON mx.connection_id = $1 AND mx.entity = $2 AND mx.xero_id = "
                       "r.xero_id WHERE ml.xero_id <> r.xero_id OR mx.local_id <> r.local_id",
                       2, p, rows);
    json_decref(rows);
    for (int k = 0; e == XS_OK && k < xs_pg_res_nrows(r); k++) {
        const char *lid = xs_pg_res_get(r, k, 0), *xid = xs_pg_res_get(r, k, 1);
        const char *other_x = xs_pg_res_get(r, k, 2), *copy = xs_pg_res_get(r, k, 3);
        char msg[400];
        if (other_x != NULL) {
            snprintf(msg, sizeof(msg),
                     "Xero made %s %s from this record, which is already linked to Xero's %s: "
                     "one of them is a duplicate in Xero",
                     ops->info->name, xid, other_x);
            xs_log_error(ctx->proc->log, "sync.duplicate_in_xero", "{s:s, s:s, s:s, s:s}", "entity",
                         ops->info->name, "local_id", lid, "xero_id", xid, "linked_xero_id",
                         other_x);
            step_item_error(errors, lid, xid, msg);
            for (size_t j = json_array_size(maps); j > 0; j--) {
                if (strcmp(xs_json_str_or(json_array_get(maps, j - 1), "local_id", ""), lid) == 0) {
                    json_array_remove(maps, j - 1);
                }
            }
            continue;
        }
        int64_t gone = 0;
        if (ops->table != NULL) {
            e = remove_own_copy(ctx, ops, req, copy, &gone);
        }
        if (gone > 0) {
            xs_log_warn(ctx->proc->log, "sync.own_copy_removed", "{s:s, s:s, s:s, s:s}", "entity",
                        ops->info->name, "local_id", lid, "xero_id", xid, "copy", copy);
            continue;
        }
        snprintf(msg, sizeof(msg),
                 "a copy of local record %s: Xero's %s %s, which our push made from it, was "
                 "imported as this record before the push's reply came; merge the two",
                 lid, ops->info->name, xid);
        xs_log_error(ctx->proc->log, "sync.duplicate_local", "{s:s, s:s, s:s, s:s}", "entity",
                     ops->info->name, "local_id", lid, "xero_id", xid, "copy", copy);
        step_item_error(errors, copy, NULL, msg);
    }
    xs_pg_res_free(r);
    return e;
}

/* The outcome of a reply, item by item, before it is written. */
typedef struct push_result {
    json_t *maps;      /* mappings to write */
    xs_rows computed;  /* by local id, Xero's computed fields to keep locally */
    json_t *recreated; /* deleted in Xero to be made again: unlinked, requeued */
    json_t *created;   /* local ids made new in Xero */
    json_t *lookups;   /* [{name, local_id}]: names Xero said are taken, to look up */
} push_result;

/* push_result_fini lets go of what r holds. */
static void push_result_fini(push_result *r)
{
    json_decref(r->maps);
    xs_rows_fini(&r->computed);
    json_decref(r->recreated);
    json_decref(r->created);
    json_decref(r->lookups);
}

/* item_message says why Xero's answer res for one item is not a record it saved (into msg):
 * it names the item by the nil id, or says ERROR with Xero's messages (error), or cannot be
 * read (why: xs_domain_from_xero's reason, or ""). */
static void item_message(const json_t *res, bool nil, bool error, const char *why, char *msg,
                         size_t cap)
{
    if (nil) {
        char detail[900] = "";
        if (error) {
            lookup_item_message(res, detail, sizeof(detail));
        }
        snprintf(msg, cap, "Xero did not save it: its reply names it by the nil id%s%s",
                 detail[0] != '\0' ? ": " : "", detail);
    } else if (error) {
        lookup_item_message(res, msg, cap);
    } else {
        snprintf(msg, cap, "Xero's reply for this record cannot be read: %s",
                 why[0] != '\0' ? why : "it names no record by a valid id");
    }
}

/* item_refused takes a sent item it Xero did not save (msg: why): a create whose key another
 * record holds (ops->lookup_key) waits for a lookup of that record (pr->lookups); anything
 * else fails with msg. */
static void item_refused(const xs_entity_ops *ops, const json_t *it, const char *msg,
                         push_result *pr, json_t *counts, json_t *errors)
{
    const char *lid = xs_json_str_or(it, "local_id", "");
    const char *had = xs_json_str_or(it, "xero_id", NULL);
    bool retire = json_is_true(json_object_get(it, "retire"));
    char lk[256];
    if (!retire && had == NULL && ops->lookup_key != NULL &&
        ops->lookup_key(json_object_get(it, "rec"), msg, lk)) {
        json_array_append_new(pr->lookups, json_pack("{s:s, s:s}", "name", lk, "local_id", lid));
        step_count(counts, "deferred", 1);
    } else {
        step_item_error(errors, lid, had, msg);
        step_count(counts, "failed", 1);
    }
}

/* read_item takes Xero's answer res for one sent item it. */
static void read_item(xs_svc_ctx *ctx, const step_req *req, const xs_entity_ops *ops,
                      const json_t *it, const json_t *res, push_result *pr, json_t *counts,
                      json_t *errors)
{
    const char *lid = xs_json_str_or(it, "local_id", "");
    const char *had = xs_json_str_or(it, "xero_id", NULL);
    bool retire = json_is_true(json_object_get(it, "retire"));
    const char *st = xs_json_str_or(res, "StatusAttributeString", "OK");
    json_t *xrec = NULL;
    char xid[XS_ID_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
    xs_time xat = 0;
    /* The nil id: Xero's mark of an item it did not save, whatever else it says. */
    bool nil = kit_is_nil_id(xs_json_str_or(res, ops->id_field, ""));
    bool ok = !nil && strcmp(st, "ERROR") != 0 &&
              xs_domain_from_xero(ops, res, &xrec, xid, &xat, why) == XS_OK && kit_xero_id_ok(xid);
    if (!ok) {
        char msg[1024];
        item_message(res, nil, strcmp(st, "ERROR") == 0, why, msg, sizeof(msg));
        item_refused(ops, it, msg, pr, counts, errors);
        json_decref(xrec);
        return;
    }
    /* The base is what was sent: if Xero wrote it differently, the next pull sees a change
     * in Xero and takes Xero's form once. A retired record's is Xero's, its references made
     * local ids again. */
    json_t *base = retire ? xrec : json_object_get(it, "rec");
    json_t *own = NULL; /* base with Xero's computed fields */
    json_t *row = NULL; /* those fields, for the local row */
    if (!retire && ops->computed != NULL && json_is_object(base) &&
        (own = json_deep_copy(base)) != NULL && (row = json_object()) != NULL) {
        for (size_t k = 0; ops->computed[k] != NULL; k++) {
            json_t *cv = json_object_get(xrec, ops->computed[k]);
            if (cv != NULL) {
                json_object_set(own, ops->computed[k], cv);
                json_object_set(row, ops->computed[k], cv);
            }
        }
        base = own;
        xs_rows_add(&pr->computed, lid, row);
    }
    bool bl = false;
    json_t *on = json_object();
    if (retire && ops->refs != NULL &&
        (refs_translate(ctx->pg, req->conn, ops, &xrec, 1, true, &bl, on) != XS_OK || bl)) {
        base = NULL; /* unknown: the next pull decides against no base */
    }
    json_decref(on);
    int64_t lat = 0;
    xs_json_get_int(it, "at", &lat);
    if (json_is_true(json_object_get(it, "recreate"))) {
        json_array_append_new(pr->recreated, json_string(lid));
        step_count(counts, "retired", 1);
    } else {
        map_add(pr->maps, lid, xid, base, xat, base != NULL ? lat : -1);
        json_t *parts = ops->read_parts != NULL ? ops->read_parts(res) : NULL;
        if (parts != NULL) {
            json_object_set_new(json_array_get(pr->maps, json_array_size(pr->maps) - 1), "parts",
                                parts);
        }
        if (had == NULL && !retire) {
            json_array_append_new(pr->created, json_string(lid));
        }
        step_count(counts, retire ? "retired" : had != NULL ? "updated" : "created", 1);
    }
    json_decref(own);
    json_decref(xrec);
}

/* record_reply writes what Xero's reply says, in one transaction marked as the engine's:
 * the mappings (the base is what was sent), Xero's computed fields, the records deleted to be
 * made again unlinked, the refusals, and the step's claims let go (but, when the reply did
 * not say item by item, those of creates Xero may hold). A failure is an error naming what
 * Xero accepted: the step runs again and sends the same request, which Xero answers from its
 * memory of the key. */
static xs_err record_reply(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                           push_result *pr, json_t *errors, bool per_item)
{
    const char *step = req->step;
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    char *unlink = json_array_size(pr->recreated) > 0 ? xs_domain_uuid_array(pr->recreated) : NULL;
    xs_err e;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = own_copies(ctx, ops, req, pr->maps, pr->created, errors)) != XS_OK ||
        (e = map_write(ctx, req->conn, ops->info->name, txid, pr->maps)) != XS_OK ||
        (pr->computed.n > 0 && (e = ops->write_computed(ctx->pg, &pr->computed)) != XS_OK) ||
        (unlink != NULL &&
         (e = xs_pg_q(ctx->pg, NULL,
                      "DELETE FROM sync.mappings WHERE connection_id = $1 AND entity = $2 AND "
                      "local_id = ANY($3::uuid[])",
                      req->conn, ops->info->name, unlink)) != XS_OK) ||
        (e = step_item_errors(ctx, req, ops->info->name, errors)) != XS_OK ||
        (e = push_release_claims(ctx, req, !per_item)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE "
                     "id = $1",
                     step)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        char *what = xs_json_dump(pr->maps, 0);
        xs_log_error(ctx->proc->log, "sync.accepted_unrecorded", "{s:s, s:s, s:s, s:s, s:s}",
                     "entity", ops->info->name, "step", step, "error", xs_pg_error(ctx->pg),
                     "accepted", what != NULL ? what : "", "effect",
                     "the step runs again and sends the same request and key");
        free(what);
        free(unlink);
        return step_db_fail(ctx, e, "cannot record what Xero accepted");
    }
    free(unlink);
    step_refresh_stats(ctx, ops, json_array_size(pr->maps) * 10);
    return XS_OK;
}

/* push_call POSTs the step's stored request (p) with its Idempotency-Key into resp (call:
 * what the call was), and records the call. A delete Xero takes alone names its record in the
 * path; any other write asks for a result item by item (summarizeErrors=false). */
static xs_err push_call(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                        const push_req *p, xs_xero_resp *resp, xs_xero_call *call)
{
    char path[XS_XERO_PATH_MAX];
    const char *xid = xs_json_str_or(json_array_get(p->items, 0), "xero_id", "");
    if (p->kind == BATCH_DELETE) {
        snprintf(path, sizeof(path), "%s/%s", ops->xero_path, xid);
    } else {
        snprintf(path, sizeof(path), "%s?summarizeErrors=false%s%s", ops->xero_path,
                 ops->push_query != NULL ? "&" : "",
                 ops->push_query != NULL ? ops->push_query : "");
    }
    xs_xero_req xr = {.method = "POST",
                      .path = path,
                      .bearer = step_or_empty(req->bearer),
                      .tenant_id = step_or_empty(req->tenant_id),
                      .idempotency_key = p->key,
                      .body = p->body,
                      .body_len = strlen(p->body)};
    xs_err e = xs_xero_request(step_xero(ctx), &xr, resp, call);
    step_audit(ctx, req, call);
    return e;
}

/* push_refused records a request Xero refused whole (resp, not 200: nothing made): each of its
 * items fails with Xero's message, which the call's error says too. */
static void push_refused(const push_req *p, const xs_xero_resp *resp, json_t *counts,
                         json_t *errors, xs_xero_call *call)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "Xero refused the %s (HTTP %ld): %s",
             p->kind == BATCH_DELETE ? "request" : "batch", resp->status,
             xs_json_str_or(resp->json, "Message", resp->body != NULL ? resp->body : ""));
    size_t i;
    json_t *it;
    json_array_foreach(p->items, i, it)
    {
        step_item_error(errors, xs_json_str_or(it, "local_id", NULL),
                        xs_json_str_or(it, "xero_id", NULL), msg);
    }
    step_count(counts, "failed", (json_int_t)json_array_size(p->items));
    snprintf(call->error, sizeof(call->error), "%.250s", msg);
}

xs_err push_send(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, push_req *p,
                 json_t *counts, json_t *errors, int64_t calls, json_t **reply)
{
    xs_xero_call call;
    xs_xero_resp resp = {0};
    int64_t t0 = xs_clock_mono_ms();
    xs_err e = push_call(ctx, ops, req, p, &resp, &call);
    calls++;
    size_t nitems = json_array_size(p->items);
    step_count(counts, "sent", (json_int_t)nitems);
    const char *outcome = step_call_outcome(e, resp.status, true);
    json_t *results = json_object_get(resp.json, ops->xero_list);
    bool per_item = true;
    if (outcome == NULL && resp.status == 200 && json_array_size(results) != nitems) {
        /* An answer that does not say item by item: creates may be in Xero, in doubt. */
        outcome = "failed";
        per_item = false;
        snprintf(call.error, sizeof(call.error), "Xero answered %zu items for %zu sent",
                 json_array_size(results), nitems);
    }
    if (outcome == NULL && resp.status != 200) {
        /* The whole request was refused (e.g. 400 PostDataInvalidException): nothing made. */
        push_refused(p, &resp, counts, errors, &call);
        outcome = "failed";
    }
    if (outcome != NULL && strcmp(outcome, "failed") != 0) {
        /* Not applied, or not known to be: the stored request and the claims stay for the
         * retry. */
        xs_xero_resp_fini(&resp);
        *reply = push_reply(outcome, counts, &call, calls, p);
        if (*reply != NULL) {
            json_object_set_new(*reply, "message", json_string(call.error));
        }
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    int64_t t1 = xs_clock_mono_ms();
    push_result pr = {.maps = json_array(),
                      .recreated = json_array(),
                      .created = json_array(),
                      .lookups = json_array()};
    size_t i;
    json_t *it;
    json_array_foreach(outcome == NULL ? p->items : NULL, i, it)
    {
        read_item(ctx, req, ops, it, json_array_get(results, i), &pr, counts, errors);
    }
    xs_xero_resp_fini(&resp);
    e = record_reply(ctx, ops, req, &pr, errors, per_item);
    if (e == XS_OK) {
        xs_log_debug(ctx->proc->log, "sync.push_timing", "{s:I, s:I, s:I}", "items",
                     (json_int_t)nitems, "call_ms", (json_int_t)(t1 - t0), "apply_ms",
                     (json_int_t)(xs_clock_mono_ms() - t1));
        *reply = push_reply(outcome != NULL ? outcome : "done", counts, &call, calls, p);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (e == XS_OK && json_array_size(pr.lookups) > 0) {
        json_object_set(*reply, "lookups", pr.lookups);
    }
    if (e == XS_OK && json_array_size(pr.recreated) > 0) {
        /* Deleted in Xero, no longer linked: the next step makes them anew. */
        json_object_set(*reply, "requeue", pr.recreated);
    }
    if (e == XS_OK && outcome != NULL) {
        json_object_set_new(*reply, "message", json_string(call.error));
    }
    push_result_fini(&pr);
    return e;
}
