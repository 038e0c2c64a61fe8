/* batch.c: see batch.h. */
#include "engine/batch.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xs/audit.h"
#include "xs/json.h"
#include "xs/uuid.h"
#include "engine/mappings.h"
#include "engine/step.h"

xs_err batch_candidates(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                        const char *org, json_t **ids, char *next_scan, bool *scan)
{
    json_t *given = json_object_get(req->msg->body, "local_ids");
    const char *after = xs_json_str_or(req->msg->body, "scan_after", NULL);
    next_scan[0] = '\0';
    *scan = given == NULL && after != NULL;
    if (given != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(given, i, v)
        {
            if (!xs_uuid_valid(json_string_value(v))) {
                return xs_svc_fail_field(ctx, XS_EINVAL, "local_ids", "local ids must be UUIDs");
            }
        }
        *ids = json_incref(given);
        return XS_OK;
    }
    if (after == NULL) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "local_ids",
                                 "a push names local_ids, scan_after or lookup_names");
    }
    xs_err e = ops->list_ids(ctx->pg, org, req->conn, after, SCAN_READ, ids, next_scan);
    if (e != XS_OK) {
        return step_db_fail(ctx, e, "cannot list local records");
    }
    return XS_OK;
}

/* retire_of gives the item retiring local record id (Xero's xid) from its base (retire_item),
 * or NULL, the record then counted: failed, with retire_item's reason, or skipped (nothing to
 * do). */
static json_t *retire_of(const xs_entity_ops *ops, const char *id, const char *xid,
                         const json_t *base, json_t *counts, json_t *errors)
{
    char why[XS_DOMAIN_WHY_MAX] = "";
    json_t *x = ops->retire_item(xid, base, why);
    if (x == NULL && why[0] != '\0') {
        step_item_error(errors, id, xid, why);
        step_count(counts, "failed", 1);
    } else if (x == NULL) {
        step_count(counts, "skipped", 1);
    }
    return x;
}

const char *const BATCH_NAMES[] = {"none", "create", "update", "delete"};

batch_kind batch_kind_parse(const char *s)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (s != NULL && strcmp(s, BATCH_NAMES[k]) == 0) {
            return (batch_kind)k;
        }
    }
    return BATCH_NONE;
}

/* How many records of each kind one request takes. */
static const size_t BATCH_CAP[] = {0, 50, 50, 1};

void batch_init(batch *b)
{
    memset(b, 0, sizeof(*b));
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        b->by_kind[k] = json_array();
        b->x_by_kind[k] = json_array();
    }
    b->items = json_array();
    b->xitems = json_array();
    b->again = json_array();
}

void batch_fini(batch *b)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        json_decref(b->by_kind[k]);
        json_decref(b->x_by_kind[k]);
    }
    json_decref(b->items);
    json_decref(b->xitems);
    json_decref(b->again);
    memset(b, 0, sizeof(*b));
}

/* batch_take adds a record of kind k (item, its Xero item x; both taken over). */
static void batch_take(batch *b, batch_kind k, json_t *item, json_t *x)
{
    json_array_append_new(b->by_kind[k], item);
    json_array_append_new(b->x_by_kind[k], x);
}

bool batch_full(const batch *b)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (json_array_size(b->by_kind[k]) >= BATCH_CAP[k]) {
            return true;
        }
    }
    return false;
}

void batch_finish(batch *b)
{
    batch_kind best = BATCH_NONE;
    for (int k = BATCH_CREATE; k <= BATCH_DELETE && best == BATCH_NONE; k++) {
        if (json_array_size(b->by_kind[k]) >= BATCH_CAP[k]) {
            best = (batch_kind)k;
        }
    }
    for (int k = BATCH_CREATE; k <= BATCH_DELETE && best == BATCH_NONE; k++) {
        size_t n = json_array_size(b->by_kind[k]);
        for (int j = BATCH_CREATE; n > 0 && j <= BATCH_DELETE; j++) {
            n = json_array_size(b->by_kind[j]) > n ? 0 : n; /* another kind has more */
        }
        best = n > 0 ? (batch_kind)k : BATCH_NONE;
    }
    b->kind = best;
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (k == (int)best) {
            json_array_extend(b->items, b->by_kind[k]);
            json_array_extend(b->xitems, b->x_by_kind[k]);
            continue;
        }
        size_t i;
        json_t *it;
        json_array_foreach(b->by_kind[k], i, it)
        {
            json_array_append_new(b->again, json_string(xs_json_str_or(it, "local_id", "")));
        }
    }
}

/* take_retire adds the retirement in Xero of local record id (a delete, or an immutable
 * record's edit made by deleting it first), counting what cannot go. */
static void take_retire(const xs_entity_ops *ops, batch *b, const char *id, const char *xid,
                        const json_t *base, bool recreate, const json_t *at, json_t *counts,
                        json_t *errors)
{
    json_t *x = retire_of(ops, id, xid, base, counts, errors);
    if (x == NULL) {
        return;
    }
    json_t *item = json_pack("{s:s, s:s, s:b}", "local_id", id, "xero_id", xid, "retire", 1);
    if (recreate) {
        json_object_set_new(item, "recreate", json_true());
        json_object_set(item, "at", (json_t *)at);
    }
    batch_take(b, ops->delete_one ? BATCH_DELETE : BATCH_UPDATE, item, x);
}

xs_err batch_build(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, const char *org,
                   const json_t *ids, json_t *counts, batch *b, json_t *errors,
                   blocked_ids *blocked, char *stop)
{
    json_t *local = NULL, *maps = NULL, *pending = NULL, *xrecs = json_object(),
           *on = json_object();
    json_t **rs = NULL;
    bool *bl = NULL;
    bool final = req->final;
    bool recreating =
        strcmp(xs_json_str_or(json_object_get(req->msg->body, "settings"), "edits", "refuse"),
               "recreate") == 0;
    xs_err e;
    stop[0] = '\0';
    if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK ||
        (e = map_load(ctx, req->conn, ops->info->name, ids, false, &maps)) != XS_OK ||
        (e = map_pending_conflicts(ctx, req->conn, ops->info->name, ids, &pending)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read local records");
        goto out;
    }
    size_t i, n = 0;
    json_t *v;
    /* What Xero is sent names other records by their Xero ids: a record one of whose
     * references is not in Xero yet waits for it (xrecs has no entry for it). */
    rs = calloc(json_object_size(local) + 1, sizeof(json_t *));
    bl = calloc(json_object_size(local) + 1, sizeof(bool));
    if (xrecs == NULL || on == NULL || rs == NULL || bl == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    const char *lk;
    json_t *lv;
    json_object_foreach(local, lk, lv)
    {
        json_t *rec = json_object_get(lv, "rec");
        rs[n++] = ops->refs != NULL ? json_deep_copy(rec) : json_incref(rec);
    }
    if (ops->refs != NULL &&
        (e = refs_translate(ctx->pg, req->conn, ops, rs, n, false, bl, on)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read what the records refer to");
        goto out;
    }
    n = 0;
    json_object_foreach(local, lk, lv)
    {
        if (!bl[n]) {
            json_object_set(xrecs, lk, rs[n]);
        }
        n++;
    }
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (batch_full(b)) {
            snprintf(stop, XS_ID_MAX, "%s", json_string_value(json_array_get(ids, i - 1)));
            break;
        }
        json_t *m = json_object_get(maps, id);
        json_t *l = json_object_get(local, id);
        const char *xid = m != NULL ? xs_json_str_or(m, "xero_id", NULL) : NULL;
        json_t *base = m != NULL ? json_object_get(m, "base") : NULL;
        base = json_is_object(base) ? base : NULL;
        if (json_object_get(pending, id) != NULL || (l == NULL && m == NULL)) {
            step_count(counts, "skipped", 1);
            continue;
        }
        if (l == NULL) {
            if (ops->retire_item == NULL) {
                step_count(counts, "skipped", 1);
            } else {
                take_retire(ops, b, id, xid, json_object_get(m, "base"), false, NULL, counts,
                            errors);
            }
            continue;
        }
        json_t *rec = json_object_get(l, "rec");
        char sum[2 * XS_SHA256_LEN + 1];
        xs_sync_checksum(rec, sum);
        if (m != NULL && strcmp(xs_json_str_or(m, "checksum", ""), sum) == 0) {
            step_count(counts, "unchanged", 1);
            continue;
        }
        json_t *xrec = json_object_get(xrecs, id);
        char why[XS_DOMAIN_WHY_MAX];
        if (xrec == NULL) {
            if (final) {
                refs_blocked_message(ops, rec, on, false, why, sizeof(why));
                step_item_error(errors, id, xid, why);
                step_count(counts, "failed", 1);
            } else if (idlist_add(&blocked->self, id)) {
                step_count(counts, "deferred", 1);
            } else {
                e = XS_ENOMEM;
                goto out;
            }
            continue;
        }
        if (ops->info->immutable && xid != NULL) {
            /* In Xero, it can only be deleted. */
            bool retired = ops->retired_status != NULL &&
                           strcmp(xs_json_str_or(rec, "status", ""), ops->retired_status) == 0;
            if (!retired && !recreating) {
                snprintf(why, sizeof(why),
                         "Xero never changes a %s once it is made: delete it and make a new one, "
                         "or set the connection's edits.%s setting to recreate",
                         ops->info->name, ops->info->name);
                step_item_error(errors, id, xid, why);
                step_count(counts, "failed", 1);
                continue;
            }
            take_retire(ops, b, id, xid, base, !retired, json_object_get(l, "at"), counts, errors);
            continue;
        }
        if (ops->check_push != NULL && !ops->check_push(base, rec, l, why)) {
            step_item_error(errors, id, xid, why);
            step_count(counts, "failed", 1);
            continue;
        }
        json_t *x = ops->to_xero(xrec, xid, m != NULL ? json_object_get(m, "parts") : NULL);
        if (x == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        batch_take(b, xid != NULL ? BATCH_UPDATE : BATCH_CREATE,
                   json_pack("{s:s, s:s?, s:O, s:O}", "local_id", id, "xero_id", xid, "rec", rec,
                             "at", json_object_get(l, "at")),
                   x);
    }
    e = final || blocked_take(blocked, ops, on) ? XS_OK : XS_ENOMEM;
out:
    for (i = 0; rs != NULL && i < n; i++) {
        json_decref(rs[i]);
    }
    free(rs);
    free(bl);
    json_decref(local);
    json_decref(maps);
    json_decref(pending);
    json_decref(xrecs);
    json_decref(on);
    return e;
}
