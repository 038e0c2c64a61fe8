/* decide.c: see decide.h. */
#include "engine/decide.h"

#include <stdio.h>
#include <string.h>

#include "xs/json.h"

/* edit_view is what conflict decisions compare of rec (new; NULL for NULL): the entity's
 * edits view, or rec without its computed fields, or rec itself. */
static json_t *edit_view(const xs_entity_ops *ops, const json_t *rec)
{
    if (rec == NULL) {
        return NULL;
    }
    if (ops->edits != NULL) {
        return ops->edits(rec);
    }
    if (ops->computed == NULL) {
        return json_incref((json_t *)rec);
    }
    json_t *v = json_copy((json_t *)rec);
    for (size_t k = 0; v != NULL && ops->computed[k] != NULL; k++) {
        json_object_del(v, ops->computed[k]);
    }
    return v;
}

/* full_record lays Xero's computed values (from its record xero) over view, a decided edits
 * view (new). */
static json_t *full_record(const xs_entity_ops *ops, const json_t *view, const json_t *xero)
{
    if (ops->with_computed != NULL) {
        return ops->with_computed(view, xero);
    }
    if (ops->computed == NULL) {
        return json_incref((json_t *)view);
    }
    json_t *r = json_copy((json_t *)view);
    for (size_t k = 0; r != NULL && ops->computed[k] != NULL; k++) {
        json_t *v = json_object_get(xero, ops->computed[k]);
        json_object_set(r, ops->computed[k], v != NULL ? v : json_null());
    }
    return r;
}

xs_err decide_record(const xs_entity_ops *ops, const json_t *base, const json_t *local,
                     const json_t *xero, int64_t local_at, xs_time xero_at,
                     const xs_sync_edits *edits, const settings *set, xs_sync_decision *d,
                     json_t **fix)
{
    *fix = NULL;
    if (ops->final != NULL && ops->final(xero) && !xs_json_equal(local, xero)) {
        /* Xero will never change it again: whatever differs here cannot reach it. */
        json_t *lv = edit_view(ops, local), *bv = edit_view(ops, base);
        memset(d, 0, sizeof(*d));
        d->action = XS_SYNC_TO_LOCAL;
        d->result = json_incref((json_t *)xero);
        d->policy = set->policy;
        d->conflict = bv == NULL || !xs_json_equal(lv, bv);
        snprintf(d->reason, sizeof(d->reason),
                 "Xero holds it %.20s, which is final there: Xero's version is kept%s",
                 xs_json_str_or(xero, "status", "final"),
                 d->conflict ? " and the local change undone" : "");
        json_decref(lv);
        json_decref(bv);
        return XS_OK;
    }
    if (ops->computed == NULL && ops->edits == NULL) {
        return xs_sync_decide_edits(base, local, xero, local_at, xero_at, edits, set->policy,
                                    set->fallback, d);
    }
    json_t *bv = edit_view(ops, base), *lv = edit_view(ops, local), *xv = edit_view(ops, xero);
    xs_err e = lv != NULL && xv != NULL ? xs_sync_decide_edits(bv, lv, xv, local_at, xero_at, edits,
                                                               set->policy, set->fallback, d)
                                        : XS_ENOMEM;
    if (e == XS_OK && d->result != NULL) {
        json_t *full = full_record(ops, d->result, xero);
        json_decref(d->result);
        d->result = full;
    }
    if (e == XS_OK && (d->action == XS_SYNC_NONE || d->action == XS_SYNC_TO_XERO)) {
        json_t *mine = full_record(ops, lv, xero);
        if (mine != NULL && !xs_json_equal(mine, local)) {
            *fix = mine;
        } else {
            json_decref(mine);
        }
    }
    json_decref(bv);
    json_decref(lv);
    json_decref(xv);
    return e;
}

bool decide_sent_matches(const xs_entity_ops *ops, const json_t *sent, const json_t *rec)
{
    json_t *sv = edit_view(ops, sent), *rv = edit_view(ops, rec);
    bool same = sv != NULL && rv != NULL;
    const char *k;
    json_t *v;
    json_object_foreach(same ? sv : NULL, k, v)
    {
        if (!xs_sync_is_empty(v) && !xs_json_equal(v, json_object_get(rv, k))) {
            same = false;
            break;
        }
    }
    json_decref(sv);
    json_decref(rv);
    return same;
}

bool decide_holds_sent(const xs_entity_ops *ops, const json_t *sent, const json_t *rec)
{
    json_t *sv = edit_view(ops, sent), *rv = edit_view(ops, rec);
    bool same = sv != NULL && rv != NULL && xs_json_equal(sv, rv);
    json_decref(sv);
    json_decref(rv);
    return same;
}
