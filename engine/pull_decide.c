/* pull_decide.c: see pull_decide.h. */
#include "engine/pull_decide.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

#include "engine/decide.h"
#include "engine/kit.h"
#include "engine/mappings.h"
#include "engine/match.h"

bool page_out_init(page_out *o)
{
    memset(o, 0, sizeof(*o));
    o->maps = json_array();
    o->created = json_array();
    o->conflicts = json_array();
    o->queue = json_array();
    o->memos = json_array();
    o->linked = json_array();
    o->counts = step_counts_new(STEP_PULL_COUNTS);
    return o->maps != NULL && o->created != NULL && o->conflicts != NULL && o->queue != NULL &&
           o->memos != NULL && o->linked != NULL && o->counts != NULL;
}

void page_out_fini(page_out *o)
{
    json_decref(o->maps);
    xs_rows_fini(&o->creates);
    json_decref(o->created);
    xs_rows_fini(&o->updates);
    json_decref(o->conflicts);
    json_decref(o->queue);
    json_decref(o->memos);
    json_decref(o->linked);
    json_decref(o->counts);
    blocked_fini(&o->blocked);
}

void page_known_fini(page_known *k)
{
    json_decref(k->mappings);
    json_decref(k->claimed);
    json_decref(k->matched);
    xs_local_rows_fini(&k->local);
    json_decref(k->pending);
    json_decref(k->ignored);
    json_decref(k->sent);
    memset(k, 0, sizeof(*k));
}

/* page_claims reads, in one query, the claims (sync.push_claims) a page's decisions need:
 * the connection's creates in doubt whose local record no mapping knows yet, in the order
 * they were claimed (*creates, new: [{"local_id", "sent"}]), when want_creates; and what the
 * unrecorded updates of the page's mapped local records (mapped) sent (*updates, new: {local
 * id: canonical record}). */
static xs_err page_claims(xs_svc_ctx *ctx, const step_req *req, const xs_entity_ops *ops,
                          const json_t *mapped, bool want_creates, json_t **creates,
                          json_t **updates)
{
    *creates = json_array();
    *updates = json_object();
    if (*creates == NULL || *updates == NULL) {
        return XS_ENOMEM;
    }
    if (!ops->info->push || (!want_creates && json_array_size(mapped) == 0)) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(mapped);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT c.local_id::text, c.op, c.sent::text FROM sync.push_claims c WHERE "
                       "c.connection_id = $1 AND c.entity = $2 AND c.sent IS NOT NULL AND ((c.op = "
                       "'create' AND $4::boolean AND c.settled_by IS NOT NULL AND NOT EXISTS "
                       "(SELECT 1 FROM sync.mappings m WHERE m.connection_id = $1 AND m.entity = "
                       "$2 AND m.local_id = c.local_id)) OR (c.op = 'update' AND c.local_id = "
                       "ANY($3::uuid[]))) ORDER BY c.claimed_at, c.local_id",
                       req->conn, ops->info->name, arr, want_creates ? "true" : "false");
    free(arr);
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        const char *t = xs_pg_res_get(r, i, 2);
        json_t *sent = xs_json_parse(t, strlen(t), NULL);
        if (sent == NULL) {
            continue;
        }
        if (strcmp(xs_pg_res_get(r, i, 1), "create") == 0) {
            json_array_append_new(*creates, json_pack("{s:s, s:o}", "local_id",
                                                      xs_pg_res_get(r, i, 0), "sent", sent));
        } else {
            json_object_set_new(*updates, xs_pg_res_get(r, i, 0), sent);
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* find_own_creates looks, among a page's records no mapping knows (unmapped: [{"xero_id",
 * "rec"}]), for those one of our own pushes made while its reply was lost: each create in
 * doubt (creates, page_claims) can be at most one of them, in the order they were claimed.
 * *out (new): {xero_id: {"local_id", "sent"}}. */
static json_t *find_own_creates(const xs_entity_ops *ops, const json_t *unmapped,
                                const json_t *creates)
{
    json_t *out = json_object();
    size_t n = json_array_size(creates);
    bool *used = calloc(n + 1, sizeof(bool));
    if (out == NULL || used == NULL) {
        json_decref(out);
        free(used);
        return NULL;
    }
    size_t i;
    json_t *u;
    json_array_foreach(unmapped, i, u)
    {
        for (size_t c = 0; c < n; c++) {
            json_t *own = json_array_get(creates, c);
            if (!used[c] &&
                decide_sent_matches(ops, json_object_get(own, "sent"), json_object_get(u, "rec"))) {
                used[c] = true;
                json_object_set(out, xs_json_str_or(u, "xero_id", ""), own);
                break;
            }
        }
    }
    free(used);
    return out;
}

/* lookup_mapped reads the mappings of the page's parsed records into k->mappings, and sorts
 * those not blocked: no mapping (unmatched: [{"xero_id", "rec"}]), or a mapping whose local
 * row the decision needs (local_ids). */
static xs_err lookup_mapped(xs_svc_ctx *ctx, const step_req *req, const page *pg, page_known *k,
                            json_t *local_ids, json_t *unmatched)
{
    const pulled *recs = pg->recs;
    json_t *sums = json_array();
    xs_err e = sums != NULL ? XS_OK : XS_ENOMEM;
    size_t i;
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        json_array_append_new(sums, json_string(recs[i].sum));
    }
    if (e == XS_OK && (e = map_load_sums(ctx, req->conn, pg->ask->ops->info->name, pg->xids, sums,
                                         true, &k->mappings)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read mappings");
    }
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        json_t *m = json_object_get(k->mappings, recs[i].xero_id);
        if (recs[i].blocked) {
            continue;
        }
        if (m == NULL) {
            json_array_append_new(
                unmatched, json_pack("{s:s, s:O}", "xero_id", recs[i].xero_id, "rec", recs[i].rec));
        } else if (!json_is_null(json_object_get(m, "base")) ||
                   json_object_get(m, "checksum") == NULL) {
            /* An unchanged record (its checksum is the base's) needs nothing local. */
            json_array_append_new(local_ids, json_string(xs_json_str_or(m, "local_id", "")));
        }
    }
    json_decref(sums);
    return e;
}

/* lookup_own finds which of the unmatched records our own creates in doubt made (k->claimed)
 * and what our unrecorded updates of the mapped ones sent (k->sent): those records' local
 * rows join local_ids and leave *unmatched. */
static xs_err lookup_own(xs_svc_ctx *ctx, const step_req *req, const xs_entity_ops *ops,
                         page_known *k, json_t *local_ids, json_t **unmatched)
{
    json_t *creates = NULL;
    xs_err e =
        page_claims(ctx, req, ops, local_ids, json_array_size(*unmatched) > 0, &creates, &k->sent);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read the pushes in doubt");
    }
    if (e == XS_OK && (k->claimed = find_own_creates(ops, *unmatched, creates)) == NULL) {
        e = XS_ENOMEM;
    }
    json_decref(creates);
    if (e != XS_OK || json_object_size(k->claimed) == 0) {
        return e;
    }
    json_t *rest = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(*unmatched, i, u)
    {
        json_t *c = json_object_get(k->claimed, xs_json_str_or(u, "xero_id", ""));
        if (c != NULL) {
            json_array_append_new(local_ids, json_string(xs_json_str_or(c, "local_id", "")));
        } else {
            json_array_append(rest, u);
        }
    }
    json_decref(*unmatched);
    *unmatched = rest;
    return XS_OK;
}

/* lookup_matched matches the records still unmatched to local rows not yet linked, by the
 * step's match keys (k->matched); the rows matched join local_ids. */
static xs_err lookup_matched(xs_svc_ctx *ctx, const step_req *req, const settings *set,
                             const xs_entity_ops *ops, page_known *k, json_t *local_ids,
                             const json_t *unmatched)
{
    if (ops->match == NULL || json_array_size(unmatched) == 0 || json_array_size(set->keys) == 0) {
        return XS_OK;
    }
    size_t n = json_array_size(unmatched);
    xs_match_item *items = calloc(n, sizeof(*items));
    if (items == NULL) {
        return XS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *u = json_array_get(unmatched, i);
        items[i] = (xs_match_item){xs_json_str_or(u, "xero_id", ""), json_object_get(u, "rec")};
    }
    xs_match_pairs cands = {0};
    xs_err e = ops->match(ctx->pg, step_or_empty(req->org), req->conn, items, n, set->keys, &cands);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot match records");
    } else if ((k->matched = match_assign(&cands, set->keys)) == NULL) {
        e = XS_ENOMEM;
    }
    xs_match_pairs_fini(&cands);
    free(items);
    const char *key;
    json_t *v;
    json_object_foreach(e == XS_OK ? k->matched : NULL, key, v)
    {
        json_array_append_new(local_ids, json_string(xs_json_str_or(v, "local_id", "")));
    }
    return e;
}

xs_err page_lookup(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                   page_known *k)
{
    const xs_entity_ops *ops = pg->ask->ops;
    json_t *local_ids = json_array(), *unmatched = json_array();
    int64_t t0 = xs_clock_mono_ms(), tm = 0, tl = 0;
    xs_err e = local_ids != NULL && unmatched != NULL ? XS_OK : XS_ENOMEM;
    if (e == XS_OK) {
        e = lookup_mapped(ctx, req, pg, k, local_ids, unmatched);
    }
    /* Our own creates first: a record one of our pushes made is linked to the local row
     * that caused it, never matched to another nor imported. */
    if (e == XS_OK) {
        e = lookup_own(ctx, req, ops, k, local_ids, &unmatched);
    }
    tm = xs_clock_mono_ms();
    if (e == XS_OK) {
        e = lookup_matched(ctx, req, set, ops, k, local_ids, unmatched);
    }
    tl = xs_clock_mono_ms();
    if (e == XS_OK &&
        ((e = ops->load_local(ctx->pg, step_or_empty(req->org), local_ids, &k->local)) != XS_OK ||
         (e = map_pending_conflicts(ctx, req->conn, ops->info->name, local_ids, &k->pending,
                                    &k->ignored)) != XS_OK)) {
        e = step_db_fail(ctx, e, "cannot read local records");
    }
    xs_log_debug(ctx->proc->log, "sync.pull_lookup", "{s:I, s:I, s:I}", "mappings_ms",
                 (json_int_t)(tm - t0), "match_ms", (json_int_t)(tl - tm), "local_ms",
                 (json_int_t)(xs_clock_mono_ms() - tl));
    json_decref(local_ids);
    json_decref(unmatched);
    return e;
}

/* import_record makes a new local row of Xero's record p (new to this connection). */
static xs_err import_record(const xs_entity_ops *ops, const pulled *p, page_out *o)
{
    char nid[XS_ID_MAX];
    xs_err e = xs_uuid_random_text(nid);
    if (e != XS_OK) {
        return e;
    }
    if (ops->create_linked) {
        json_t *c = json_pack("{s:s, s:s, s:O, s:s}", "id", nid, "xero_id", p->xero_id, "rec",
                              p->rec, "checksum", p->sum);
        if (p->at > 0) {
            json_object_set_new(c, "xero_at", json_integer(p->at));
        }
        if (p->raw[0] != '\0') {
            json_object_set_new(c, "raw", json_string(p->raw)); /* reads as checksum */
        }
        if (p->parts != NULL) {
            json_object_set(c, "parts", p->parts);
        }
        json_array_append_new(o->created, c);
    } else {
        xs_rows_add(&o->creates, nid, json_incref(p->rec));
        map_add_sum(o->maps, nid, p->xero_id, p->rec, p->sum, p->at, 0);
    }
    step_count(o->counts, "created", 1);
    return XS_OK;
}

/* decide_mirror decides Xero's record p of a read-only mirror against the local row l (lid):
 * Xero's version is the record; a local edit is overwritten. */
static void decide_mirror(const pulled *p, const char *lid, const xs_local_row *l, page_out *o)
{
    json_t *lrec = l->rec;
    int64_t lat = l->at;
    bool same = xs_json_equal(lrec, p->rec);
    if (!same) {
        xs_rows_add(&o->updates, lid, json_incref(p->rec));
    }
    map_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, same ? lat : 0);
    step_count(o->counts, same ? "unchanged" : "updated", 1);
}

/* decide_fill_empty links Xero's record p to the local row l (lid), matched on first link
 * under fill_empty_only: Xero's values fill the local row's empty fields, and a local row
 * that then still differs goes to Xero. */
static void decide_fill_empty(const pulled *p, const char *lid, const xs_local_row *l, page_out *o)
{
    json_t *lrec = l->rec;
    json_t *filled = xs_sync_fill_empty(lrec, p->rec);
    bool changed = !xs_json_equal(filled, lrec), differs = !xs_json_equal(filled, p->rec);
    if (changed) {
        xs_rows_add(&o->updates, lid, json_incref(filled));
    }
    step_count(o->counts, changed ? "updated" : "unchanged", 1);
    map_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, differs ? -1 : 0);
    if (differs) {
        json_array_append_new(o->queue, json_string(lid));
        step_count(o->counts, "queued", 1);
    }
    json_decref(filled);
}

/* decision_apply gathers into o what decision d on Xero's record p and the local row lid
 * (last written at lat) comes to; m is its mapping, or NULL when this page links it; fix the
 * local row with Xero's computed values (taken over), when only they differ. queue: as
 * decide_pulled's. */
static void decision_apply(const xs_sync_decision *d, const pulled *p, const char *lid,
                           const json_t *m, int64_t lat, json_t *fix, bool queue, page_out *o)
{
    if (fix != NULL) {
        xs_rows_add(&o->updates, lid, fix);
    }
    switch (d->action) {
    case XS_SYNC_NONE:
        map_add(o->maps, lid, p->xero_id, d->result, p->at, fix != NULL ? 0 : lat);
        step_count(o->counts, fix != NULL ? "updated" : "unchanged", 1);
        break;
    case XS_SYNC_TO_LOCAL:
        xs_rows_add(&o->updates, lid, json_incref(d->result));
        map_add(o->maps, lid, p->xero_id, d->result, p->at, 0);
        step_count(o->counts, "updated", 1);
        break;
    case XS_SYNC_TO_XERO:
    case XS_SYNC_BOTH:
        if (d->action == XS_SYNC_BOTH) {
            xs_rows_add(&o->updates, lid, json_incref(d->result));
            step_count(o->counts, "updated", 1);
        }
        /* The base becomes Xero's version, so the local one reads as changed and the
         * outbox (or a full run's scan, or the push this re-read is for) sends it. */
        map_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, -1);
        if (queue) {
            json_array_append_new(o->queue, json_string(lid));
            step_count(o->counts, "queued", 1);
        }
        break;
    case XS_SYNC_HOLD:
        if (m == NULL) {
            json_array_append_new(o->maps, json_pack("{s:s, s:s, s:n, s:n, s:I}", "local_id", lid,
                                                     "xero_id", p->xero_id, "base", "checksum",
                                                     "xero_at", (json_int_t)p->at));
        }
        break;
    }
}

/* decide_pulled decides Xero's record p against the local row l (lid) and the base (NULL
 * on first link), under the step's settings; m is its mapping, or NULL when this page links
 * it. queue: a record to send to Xero goes into the outbox (a re-read before a push does
 * not: the push that follows sends it). */
static xs_err decide_pulled(xs_svc_ctx *ctx, const xs_entity_ops *ops, const settings *set,
                            const pulled *p, const char *lid, const json_t *m, const json_t *base,
                            const xs_local_row *l, bool queue, page_out *o, const page_known *k)
{
    if (!ops->info->push) {
        decide_mirror(p, lid, l, o);
        return XS_OK;
    }
    if (m == NULL && set->fill_empty_only) {
        decide_fill_empty(p, lid, l, o);
        return XS_OK;
    }
    json_t *lrec = l->rec;
    if (json_object_get(k->pending, lid) != NULL) {
        /* Held for a person: keep both versions current, write nothing. */
        xs_sync_decision held = {.action = XS_SYNC_HOLD, .policy = XS_POLICY_MANUAL};
        snprintf(held.reason, sizeof(held.reason), "held for a person");
        map_conflict_add(o->conflicts, lid, p->xero_id, base, lrec, p->rec, &held);
        step_count(o->counts, "skipped", 1);
        return XS_OK;
    }
    if (map_ignored_holds(k->ignored, lid, lrec, p->rec)) {
        /* A person ignored this divergence and neither side changed since: write nothing. */
        step_count(o->counts, "skipped", 1);
        return XS_OK;
    }
    xs_sync_decision d;
    json_t *fix = NULL; /* the local row with Xero's computed values, when only they differ */
    int64_t lat = l->at;
    int64_t edited = l->edited; /* when the host application last changed it */
    /* Its writes field by field, since the base was agreed (a linked record's only). */
    json_t *since = json_object_get(m, "since");
    xs_sync_edits edits = {.fields = l->touched, .since = json_integer_value(since)};
    xs_err e = decide_record(ops, base, lrec, p->rec, edited, p->at,
                             base != NULL && json_is_integer(since) ? &edits : NULL, set, &d, &fix);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, false, "cannot decide record %s", p->xero_id);
    }
    if (d.conflict) {
        map_conflict_add(o->conflicts, lid, p->xero_id, base, lrec, p->rec, &d);
        step_count(o->counts, "conflicts", 1);
    }
    decision_apply(&d, p, lid, m, lat, fix, queue, o);
    xs_sync_decision_fini(&d);
    return XS_OK;
}

xs_err decide_page(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                   const json_t *on, bool queue, const page_known *k, page_out *o)
{
    const xs_entity_ops *ops = pg->ask->ops;
    bool final = req->final;
    size_t nmaps = 0, i;
    xs_err e = XS_OK;
    for (i = 0; e == XS_OK && i < pg->nrec; page_memo_add(o->maps, &nmaps, &pg->recs[i]), i++) {
        pulled *p = &pg->recs[i];
        if (p->known) {
            step_count(o->counts, "unchanged", 1);
            continue;
        }
        if (p->blocked) {
            char msg[XS_DOMAIN_WHY_MAX];
            if (final) {
                refs_blocked_message(ops, p->rec, on, true, msg, sizeof(msg));
                step_item_error(pg->errors, NULL, p->xero_id, msg);
            } else if (!idlist_add(&o->blocked.self, p->xero_id)) {
                e = XS_ENOMEM;
            }
            step_count(o->counts, final ? "failed" : "deferred", 1);
            continue;
        }
        json_t *m = json_object_get(k->mappings, p->xero_id);
        json_t *own = json_object_get(k->claimed, p->xero_id);
        json_t *mt = json_object_get(k->matched, p->xero_id);
        const json_t *base = NULL;
        const char *lid = NULL;
        if (m != NULL && strcmp(xs_json_str_or(m, "checksum", ""), p->sum) == 0) {
            if (p->raw[0] != '\0' && strcmp(xs_json_str_or(m, "raw", ""), p->raw) != 0) {
                /* Unchanged, but sent as other text than last time: keep this text's sum,
                 * so it is known the next time it comes. */
                json_array_append_new(o->memos, json_pack("{s:s, s:s, s:s}", "xero_id", p->xero_id,
                                                          "raw", p->raw, "checksum", p->sum));
            }
            step_count(o->counts, "unchanged", 1);
            continue;
        }
        if (m != NULL) {
            lid = xs_json_str_or(m, "local_id", "");
            base = json_object_get(m, "base");
            json_t *sent = json_object_get(k->sent, lid);
            if (sent != NULL && decide_holds_sent(ops, sent, p->rec)) {
                /* Our own update, applied while its reply was lost: the base is what we sent,
                 * so our write does not read as a Xero edit newer than a later local one. */
                base = sent;
            }
        } else if (own != NULL) {
            /* Made by one of our pushes whose reply never came: what was sent is the base. */
            lid = xs_json_str_or(own, "local_id", "");
            base = json_object_get(own, "sent");
            json_array_append_new(o->linked, json_string(lid));
            step_count(o->counts, "linked", 1);
        } else if (mt != NULL) {
            lid = xs_json_str_or(mt, "local_id", "");
            step_count(o->counts, "linked", 1);
        } else {
            e = import_record(ops, p, o);
            continue;
        }
        base = json_is_object(base) ? base : NULL;
        const xs_local_row *l = xs_local_rows_find(&k->local, lid);
        if (l == NULL) {
            /* The local row was deleted by the host application: its removal goes to Xero
             * through the outbox; nothing comes back, but the base follows Xero, so that
             * what retires the record in Xero is decided against what Xero holds. */
            if (own != NULL || (base != NULL && ops->info->push)) {
                map_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, -1);
            }
            step_count(o->counts, "skipped", 1);
            continue;
        }
        e = decide_pulled(ctx, ops, set, p, lid, m, base, l, queue, o, k);
    }
    return e;
}
