/* resolve.c: see resolve.h. */
#include "engine/resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

#include "engine/mappings.h"
#include "engine/step.h"

/* A sync.resolve request's own fields, typed (borrowed from the message). */
typedef struct resolve_ask {
    const char *conflict_id; /* the conflict to settle ("" when absent) */
    const char *resolution;  /* KEEP_LOCAL, KEEP_XERO, MERGED or IGNORED ("" when absent) */
    const char *by;          /* who settles it ("api" unless given) */
    const json_t *data;      /* the merged record (MERGED only), or NULL */
    bool keep_local, keep_xero, merged, ignored;
} resolve_ask;

/* resolve_ask_read decodes sync.resolve request msg once, the common part into *req and its own
 * fields into *a, and checks them. */
static xs_err resolve_ask_read(xs_svc_ctx *ctx, const xs_msg *msg, step_req *req, resolve_ask *a)
{
    if (step_req_read(ctx, msg, req) != XS_OK) {
        return XS_EINVAL;
    }
    const json_t *body = msg->body;
    *a = (resolve_ask){.conflict_id = xs_json_str_or(body, "conflict_id", ""),
                       .resolution = xs_json_str_or(body, "resolution", ""),
                       .by = xs_json_str_or(body, "by", "api"),
                       .data = json_object_get(body, "data")};
    a->keep_local = strcmp(a->resolution, "KEEP_LOCAL") == 0;
    a->keep_xero = strcmp(a->resolution, "KEEP_XERO") == 0;
    a->merged = strcmp(a->resolution, "MERGED") == 0;
    a->ignored = strcmp(a->resolution, "IGNORED") == 0;
    if (!a->keep_local && !a->keep_xero && !a->merged && !a->ignored) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "resolution",
                                 "resolution must be KEEP_LOCAL, KEEP_XERO, MERGED or IGNORED");
    }
    if (a->merged != (a->data != NULL)) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "data",
                                 a->merged ? "MERGED needs the merged record in data"
                                           : "data goes only with MERGED");
    }
    return XS_OK;
}

/* A conflict being settled: its row, locked. */
typedef struct held_conflict {
    char lid[XS_ID_MAX], xid[XS_ID_MAX], org[XS_ID_MAX];
    json_t *xver; /* Xero's version (new) */
} held_conflict;

/* conflict_lock reads and locks, in the open transaction, the pending conflict a asks to settle
 * into *c; when there is none, it is settled already or it has no Xero version, the
 * transaction is rolled back and the request fails. */
static xs_err conflict_lock(xs_svc_ctx *ctx, const step_req *req, const resolve_ask *a,
                            held_conflict *c)
{
    const char *cid = a->conflict_id;
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT k.local_id, k.xero_id, k.xero_version, k.status, c.organisation_id "
                       "FROM sync.conflicts k JOIN sync.connections c ON c.id = k.connection_id "
                       "WHERE k.id = $1 AND k.connection_id = $2 AND k.entity = $3 FOR UPDATE OF k",
                       cid, req->conn, req->ops->info->name);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read the conflict");
    } else if (xs_pg_res_nrows(r) == 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "conflict_id", "no conflict %s", cid);
    } else if (strcmp(xs_pg_res_get(r, 0, 3), "PENDING") != 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s is already %s", cid,
                        xs_pg_res_get(r, 0, 3));
    } else {
        snprintf(c->lid, sizeof(c->lid), "%s", xs_pg_res_get(r, 0, 0));
        snprintf(c->xid, sizeof(c->xid), "%s",
                 xs_pg_res_get(r, 0, 1) ? xs_pg_res_get(r, 0, 1) : "");
        snprintf(c->org, sizeof(c->org), "%s", xs_pg_res_get(r, 0, 4));
        const char *xt = xs_pg_res_get(r, 0, 2);
        c->xver = xt != NULL ? xs_json_parse(xt, strlen(xt), NULL) : NULL;
        if (!json_is_object(c->xver) || !xs_uuid_valid(c->xid)) {
            xs_pg_rollback(ctx->pg);
            e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s has no Xero version to settle",
                            cid);
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* resolve_merged validates the merged record a person gave (a->data) over the local record of c
 * into *rec (new); a refusal rolls the transaction back and names the field (data.<field>). */
static xs_err resolve_merged(xs_svc_ctx *ctx, const xs_entity_ops *ops, const resolve_ask *a,
                             const held_conflict *c, json_t **rec)
{
    json_t *ids = json_pack("[s]", c->lid);
    xs_local_rows local = {0};
    xs_err e = ops->load_local(ctx->pg, c->org, ids, &local);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read the local record");
    } else {
        char field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
        const xs_local_row *row = xs_local_rows_find(&local, c->lid);
        json_t *cur = row != NULL ? row->rec : NULL;
        if (ops->validate(a->data, cur, false, rec, field, why) != XS_OK) {
            xs_pg_rollback(ctx->pg);
            char f[300];
            snprintf(f, sizeof(f), "data.%s", field);
            e = xs_svc_fail_field(ctx, XS_EINVAL, f, "%s", why);
        }
    }
    json_decref(ids);
    xs_local_rows_fini(&local);
    return e;
}

/* resolve_write settles c in the open transaction and commits: the local record becomes
 * Xero's version (KEEP_XERO) or the merged one (rec), the base becomes Xero's version, what
 * stays different locally is queued for a push (*push), and the conflict is marked resolved. */
static xs_err resolve_write(xs_svc_ctx *ctx, const step_req *req, const resolve_ask *a,
                            const held_conflict *c, const json_t *rec, bool *push)
{
    const xs_entity_ops *ops = req->ops;
    json_t *maps = json_array(), *at = NULL, *queue = json_array();
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    xs_err e = xs_pg_mark_engine(ctx->pg, txid);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot mark the write");
        goto out;
    }
    /* The base becomes Xero's version: what stays different locally is then pushed. */
    if (a->keep_xero || a->merged) {
        xs_rows upd = {0}, none = {0};
        e = xs_rows_add(&upd, c->lid, json_incref((json_t *)(a->keep_xero ? c->xver : rec)))
                ? xs_domain_write_local(ctx->pg, ops, c->org, &none, &upd, &at)
                : XS_ENOMEM;
        xs_rows_fini(&upd);
        if (e != XS_OK) {
            e = step_db_fail(ctx, e, "cannot write the local record");
            goto out;
        }
    }
    json_t *lat = json_object_get(at, c->lid);
    map_add(maps, c->lid, c->xid, c->xver, 0, lat != NULL ? json_integer_value(lat) : 0);
    *push = a->keep_local || (a->merged && !xs_json_equal(rec, c->xver));
    if (*push) {
        json_array_append_new(queue, json_string(c->lid));
    }
    char *mtext = a->merged ? xs_json_dump(rec, 0) : NULL;
    const char *p[] = {a->conflict_id, a->resolution, a->by, mtext};
    if ((e = map_write(ctx, req->conn, ops->info->name, txid, maps)) != XS_OK ||
        (e = map_queue_push(ctx, c->org, ops->info->name, queue)) != XS_OK ||
        (e = xs_pg_exec(ctx->pg, NULL,
                        "UPDATE sync.conflicts SET status = 'RESOLVED', resolution = $2, "
                        "resolved_by = $3, resolved_at = now(), merged_data = $4::jsonb WHERE id "
                        "= $1",
                        4, p)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot settle the conflict");
    }
    free(mtext);
out:
    json_decref(maps);
    json_decref(at);
    json_decref(queue);
    return e;
}

/* resolve_ignore settles c as IGNORED in the open transaction and commits: nothing is written
 * on either side and the mapping's base stays, so the record still differs both ways; the
 * conflict keeps the two versions it was ignored at, and while they are still the record's,
 * no run raises it again (map_ignored_conflicts). */
static xs_err resolve_ignore(xs_svc_ctx *ctx, const resolve_ask *a)
{
    const char *p[] = {a->conflict_id, a->by};
    xs_err e = xs_pg_exec(ctx->pg, NULL,
                          "UPDATE sync.conflicts SET status = 'IGNORED', resolution = 'IGNORED', "
                          "resolved_by = $2, resolved_at = now() WHERE id = $1",
                          2, p);
    if (e == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    return e != XS_OK ? step_db_fail(ctx, e, "cannot settle the conflict") : XS_OK;
}

xs_err xs_domain_resolve(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req req;
    resolve_ask a;
    xs_err e = resolve_ask_read(ctx, msg, &req, &a);
    if (e != XS_OK) {
        return e;
    }
    held_conflict c = {.xver = NULL};
    json_t *rec = NULL;
    bool push = false;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot begin");
    } else if ((e = conflict_lock(ctx, &req, &a, &c)) == XS_OK &&
               (!a.merged || (e = resolve_merged(ctx, req.ops, &a, &c, &rec)) == XS_OK) &&
               (e = a.ignored ? resolve_ignore(ctx, &a)
                              : resolve_write(ctx, &req, &a, &c, rec, &push)) == XS_OK) {
        xs_log_info(ctx->proc->log, "sync.conflict_resolved", "{s:s, s:s, s:s}", "conflict",
                    a.conflict_id, "resolution", a.resolution, "by", a.by);
        *reply = json_pack("{s:s, s:s, s:s, s:b}", "status", a.ignored ? "IGNORED" : "RESOLVED",
                           "resolution", a.resolution, "local_id", c.lid, "push", push);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    json_decref(c.xver);
    json_decref(rec);
    return e;
}

/* A local.upsert request's own fields, typed (borrowed from the message). */
typedef struct upsert_ask {
    const char *id;       /* the record to change, or NULL to make one */
    const json_t *record; /* the host application's record */
    bool partial;         /* record holds only the fields that change */
} upsert_ask;

/* upsert_ask_read decodes local.upsert request msg once, the common part into *req and its own
 * fields into *a. It refuses an entity the host application does not write. */
static xs_err upsert_ask_read(xs_svc_ctx *ctx, const xs_msg *msg, step_req *req, upsert_ask *a)
{
    if (step_req_read(ctx, msg, req) != XS_OK) {
        return XS_EINVAL;
    }
    if (req->ops->validate == NULL) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only",
                                 req->ops->info->name);
    }
    const json_t *body = msg->body;
    *a = (upsert_ask){.id = xs_json_str_or(body, "id", NULL),
                      .record = json_object_get(body, "record")};
    xs_json_get_bool(body, "partial", &a->partial);
    return XS_OK;
}

/* upsert_fk_fail answers a write a foreign key refused (in the failed transaction, rolled back
 * here): the organisation, or a record referred to (an invoice's contact), which must be the
 * organisation's. */
static xs_err upsert_fk_fail(xs_svc_ctx *ctx, const xs_entity_ops *ops)
{
    const char *bad = "organisation_id";
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        char col[64];
        snprintf(col, sizeof(col), "%s_id", ref->field);
        if (strstr(xs_pg_error(ctx->pg), col) != NULL) {
            bad = ref->field;
        }
    }
    xs_pg_rollback(ctx->pg);
    return strcmp(bad, "organisation_id") == 0
               ? xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such organisation")
               : xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such %s in this organisation", bad);
}

/* upsert_current reads the record a->id names into local (*cur its canonical record and *org
 * its organisation, borrowed from local), failing when there is none. */
static xs_err upsert_current(xs_svc_ctx *ctx, const xs_entity_ops *ops, const upsert_ask *a,
                             const char **org, xs_local_rows *local, json_t **cur)
{
    json_t *ids = json_pack("[s]", a->id);
    xs_err e = ops->load_local(ctx->pg, *org, ids, local);
    json_decref(ids);
    if (e != XS_OK) {
        return step_db_fail(ctx, e, "cannot read the record");
    }
    const xs_local_row *row = xs_local_rows_find(local, a->id);
    if (row == NULL) {
        return xs_svc_fail_field(ctx, XS_ENOTFOUND, "id", "no %s %s", ops->info->name, a->id);
    }
    *cur = row->rec;
    *org = row->org[0] != '\0' ? row->org : *org;
    return XS_OK;
}

xs_err xs_domain_local_upsert(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req req;
    upsert_ask a;
    xs_err e = upsert_ask_read(ctx, msg, &req, &a);
    if (e != XS_OK) {
        return e;
    }
    const xs_entity_ops *ops = req.ops;
    const char *org = req.org;
    xs_local_rows local = {0};
    json_t *rec = NULL, *at = NULL, *cur = NULL;
    xs_rows rows = {0}, none = {0};
    char nid[XS_ID_MAX], field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
    if (a.id != NULL) {
        if ((e = upsert_current(ctx, ops, &a, &org, &local, &cur)) != XS_OK) {
            goto out;
        }
    } else if (org == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "organisation_id", "organisation_id is required");
        goto out;
    }
    if (ops->validate(a.record, cur, a.partial, &rec, field, why) != XS_OK) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, field, "%s", why);
        goto out;
    }
    if (a.id == NULL && (e = xs_uuid_random_text(nid)) != XS_OK) {
        goto out;
    }
    const char *rid = a.id != NULL ? a.id : nid;
    /* Not marked as the engine's: the change trigger puts it in the outbox for every
     * connection of the organisation. */
    if (!xs_rows_add(&rows, rid, json_incref(rec))) {
        e = XS_ENOMEM;
        goto out;
    }
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
        (e = xs_domain_write_local(ctx->pg, ops, org, a.id != NULL ? &none : &rows,
                                   a.id != NULL ? &rows : &none, &at)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        e = strcmp(xs_pg_sqlstate(ctx->pg), "23503") == 0
                ? upsert_fk_fail(ctx, ops)
                : step_db_fail(ctx, e, "cannot write the record");
    } else {
        *reply = json_pack("{s:s, s:b, s:O}", "id", rid, "created", a.id == NULL, "record", rec);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
out:
    xs_local_rows_fini(&local);
    json_decref(rec);
    json_decref(at);
    xs_rows_fini(&rows);
    return e;
}
