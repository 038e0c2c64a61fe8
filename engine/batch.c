/* batch.c: see batch.h. */
#include "engine/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

#include "engine/mappings.h"
#include "engine/step.h"

xs_err batch_candidates(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                        const char *org, json_t **ids, char *next_scan, bool *scan)
{
    json_t *given = ask->local_ids;
    const char *after = ask->scan_after;
    next_scan[0] = '\0';
    *scan = given == NULL && after != NULL;
    if (given != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(given, i, v)
        {
            if (!xs_uuid_valid(xs_json_string_value(v, NULL))) {
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
    xs_err e = ops->list_ids(ctx->pg, org, ask->req->conn, after, SCAN_READ, ids, next_scan);
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

void batch_take(batch *b, batch_kind k, json_t *item, json_t *x)
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

/* batch_put_off adds the local ids of items to the batch's again. */
static void batch_put_off(batch *b, const json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_array_append_new(b->again, json_string(xs_json_str_or(it, "local_id", "")));
    }
}

void batch_defer(batch *b)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        batch_put_off(b, b->by_kind[k]);
        json_array_clear(b->by_kind[k]);
        json_array_clear(b->x_by_kind[k]);
    }
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
        batch_put_off(b, b->by_kind[k]);
    }
}

/* take_retire adds the retirement in Xero of local record id (a delete, or an immutable
 * record's edit made by deleting it first), counting what cannot go. */
static void take_retire(const xs_entity_ops *ops, batch *b, const char *id, const char *xid,
                        const json_t *base, bool recreate, int64_t at, json_t *counts,
                        json_t *errors)
{
    json_t *x = retire_of(ops, id, xid, base, counts, errors);
    if (x == NULL) {
        return;
    }
    json_t *item = json_pack("{s:s, s:s, s:b}", "local_id", id, "xero_id", xid, "retire", 1);
    if (recreate) {
        json_object_set_new(item, "recreate", json_true());
        json_object_set_new(item, "at", json_integer((json_int_t)at));
    }
    batch_take(b, ops->delete_one ? BATCH_DELETE : BATCH_UPDATE, item, x);
}

/* What batch_build reads of the records it looks at. */
typedef struct batch_rows {
    xs_local_rows local; /* load_local's rows */
    json_t *maps;        /* their mappings, by local id */
    json_t *pending;     /* those with a conflict pending, by local id */
    json_t *ignored;     /* those whose latest conflict a person ignored (mappings.h) */
    json_t *xrecs;       /* {local id: the record as Xero is to be sent it}; absent: it waits */
    json_t *on;          /* what those waiting wait for (refs_translate's on) */
} batch_rows;

/* batch_rows_fini lets go of what batch_rows_read read (any part may be NULL). */
static void batch_rows_fini(batch_rows *r)
{
    xs_local_rows_fini(&r->local);
    json_decref(r->maps);
    json_decref(r->pending);
    json_decref(r->ignored);
    json_decref(r->xrecs);
    json_decref(r->on);
}

/* batch_xrecs fills r->xrecs with the local records as Xero is to be sent them: what Xero is
 * sent names other records by their Xero ids, so a record one of whose references is not in
 * Xero yet waits for it (xrecs has no entry for it; r->on says what it waits for). */
static xs_err batch_xrecs(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                          batch_rows *r)
{
    size_t n = 0, cap = r->local.n + 1;
    json_t **rs = calloc(cap, sizeof(json_t *));
    bool *bl = calloc(cap, sizeof(bool));
    xs_err e = XS_OK;
    if (r->xrecs == NULL || r->on == NULL || rs == NULL || bl == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    for (; n < r->local.n; n++) {
        json_t *rec = r->local.rows[n].rec;
        rs[n] = ops->refs != NULL ? json_deep_copy(rec) : json_incref(rec);
    }
    if (ops->refs != NULL &&
        (e = refs_translate(ctx->pg, ask->req->conn, ops, rs, n, false, bl, r->on)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read what the records refer to");
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        if (!bl[k]) {
            json_object_set(r->xrecs, r->local.rows[k].id, rs[k]);
        }
    }
out:
    for (size_t i = 0; rs != NULL && i < n; i++) {
        json_decref(rs[i]);
    }
    free(rs);
    free(bl);
    return e;
}

/* batch_rows_read reads the local rows of ids, their mappings and pending conflicts, and the
 * records as Xero is to be sent them (batch_xrecs) into *r. */
static xs_err batch_rows_read(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                              const char *org, const json_t *ids, batch_rows *r)
{
    const char *conn = ask->req->conn;
    xs_err e;
    *r = (batch_rows){.xrecs = json_object(), .on = json_object()};
    if ((e = ops->load_local(ctx->pg, org, ids, &r->local)) != XS_OK ||
        (e = map_load(ctx, conn, ops->info->name, ids, false, &r->maps)) != XS_OK ||
        (e = map_pending_conflicts(ctx, conn, ops->info->name, ids, &r->pending, &r->ignored)) !=
            XS_OK) {
        return step_db_fail(ctx, e, "cannot read local records");
    }
    return batch_xrecs(ctx, ops, ask, r);
}

/* batch_immutable deals with the edit of a record Xero never changes once made (m: its
 * mapping, l: its local row): a retire when it was deleted, or, when the connection asks for it
 * (recreate), a delete and a create; otherwise it fails, saying why. */
static void batch_immutable(const xs_entity_ops *ops, const push_ask *ask, batch *b, const char *id,
                            const json_t *m, const xs_local_row *l, json_t *counts, json_t *errors)
{
    const char *xid = xs_json_str_or(m, "xero_id", NULL);
    json_t *base = json_object_get(m, "base");
    base = json_is_object(base) ? base : NULL;
    json_t *rec = l->rec;
    bool retired = ops->retired_status != NULL &&
                   strcmp(xs_json_str_or(rec, "status", ""), ops->retired_status) == 0;
    if (!retired && !ask->recreate) {
        char why[XS_DOMAIN_WHY_MAX];
        snprintf(why, sizeof(why),
                 "Xero never changes a %s once it is made: delete it and make a new one, "
                 "or set the connection's edits.%s setting to recreate",
                 ops->info->name, ops->info->name);
        step_item_error(errors, id, xid, why);
        step_count(counts, "failed", 1);
        return;
    }
    take_retire(ops, b, id, xid, base, !retired, l->at, counts, errors);
}

/* batch_waits deals with local record id (rec) whose references are not all in Xero yet: on
 * the records' last chance (final) it fails, naming what it waits for; otherwise it waits
 * (blocked). */
static xs_err batch_waits(const xs_entity_ops *ops, const push_ask *ask, const batch_rows *r,
                          const char *id, const char *xid, const json_t *rec, json_t *counts,
                          json_t *errors, blocked_ids *blocked)
{
    if (ask->req->final) {
        char why[XS_DOMAIN_WHY_MAX];
        refs_blocked_message(ops, rec, r->on, false, why, sizeof(why));
        step_item_error(errors, id, xid, why);
        step_count(counts, "failed", 1);
        return XS_OK;
    }
    if (!idlist_add(&blocked->self, id)) {
        return XS_ENOMEM;
    }
    step_count(counts, "deferred", 1);
    return XS_OK;
}

/* batch_one decides local record id: what goes to Xero joins the batch (a create, an update
 * or a retire); the rest is counted (skipped, unchanged, deferred or failed). */
static xs_err batch_one(const xs_entity_ops *ops, const push_ask *ask, const batch_rows *r,
                        const char *id, json_t *counts, batch *b, json_t *errors,
                        blocked_ids *blocked)
{
    json_t *m = json_object_get(r->maps, id);
    const xs_local_row *l = xs_local_rows_find(&r->local, id);
    const char *xid = m != NULL ? xs_json_str_or(m, "xero_id", NULL) : NULL;
    json_t *base = m != NULL ? json_object_get(m, "base") : NULL;
    base = json_is_object(base) ? base : NULL;
    if (json_object_get(r->pending, id) != NULL || (l == NULL && m == NULL) ||
        (l != NULL && map_ignored_holds(r->ignored, id, l->rec, NULL))) {
        /* Held for a person, gone on both sides, or a divergence a person ignored that the
         * local side has not changed since. */
        step_count(counts, "skipped", 1);
        return XS_OK;
    }
    if (l == NULL) {
        if (ops->retire_item == NULL) {
            step_count(counts, "skipped", 1);
        } else {
            take_retire(ops, b, id, xid, json_object_get(m, "base"), false, 0, counts, errors);
        }
        return XS_OK;
    }
    json_t *rec = l->rec;
    char sum[2 * XS_SHA256_LEN + 1];
    xs_sync_checksum(rec, sum);
    if (m != NULL && strcmp(xs_json_str_or(m, "checksum", ""), sum) == 0) {
        step_count(counts, "unchanged", 1);
        return XS_OK;
    }
    json_t *xrec = json_object_get(r->xrecs, id);
    if (xrec == NULL) {
        return batch_waits(ops, ask, r, id, xid, rec, counts, errors, blocked);
    }
    if (ops->info->immutable && xid != NULL) {
        /* In Xero, it can only be deleted. */
        batch_immutable(ops, ask, b, id, m, l, counts, errors);
        return XS_OK;
    }
    char why[XS_DOMAIN_WHY_MAX];
    if (ops->check_push != NULL && !ops->check_push(base, rec, l, why)) {
        step_item_error(errors, id, xid, why);
        step_count(counts, "failed", 1);
        return XS_OK;
    }
    json_t *x = ops->to_xero(xrec, xid, m != NULL ? json_object_get(m, "parts") : NULL);
    if (x == NULL) {
        return XS_ENOMEM;
    }
    batch_take(b, xid != NULL ? BATCH_UPDATE : BATCH_CREATE,
               json_pack("{s:s, s:s?, s:O, s:I}", "local_id", id, "xero_id", xid, "rec", rec, "at",
                         (json_int_t)l->at),
               x);
    return XS_OK;
}

xs_err batch_build(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask, const char *org,
                   const json_t *ids, json_t *counts, batch *b, json_t *errors,
                   blocked_ids *blocked, char *stop)
{
    batch_rows r;
    stop[0] = '\0';
    xs_err e = batch_rows_read(ctx, ops, ask, org, ids, &r);
    size_t i;
    json_t *v;
    json_array_foreach(e == XS_OK ? ids : NULL, i, v)
    {
        if (batch_full(b)) {
            snprintf(stop, XS_ID_MAX, "%s", xs_json_string_value(json_array_get(ids, i - 1), NULL));
            break;
        }
        if ((e = batch_one(ops, ask, &r, xs_json_string_value(v, NULL), counts, b, errors,
                           blocked)) != XS_OK) {
            break;
        }
    }
    if (e == XS_OK) {
        e = ask->req->final || blocked_take(blocked, ops, r.on) ? XS_OK : XS_ENOMEM;
    }
    batch_rows_fini(&r);
    return e;
}
