/* resolve.c: see resolve.h. */
#include "engine/resolve.h"

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

xs_err xs_domain_resolve(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req sr;
    if (step_req_read(ctx, msg, &sr) != XS_OK) {
        return XS_EINVAL;
    }
    const step_req *req = &sr;
    const xs_entity_ops *ops = req->ops;
    const char *cid = xs_json_str_or(req->msg->body, "conflict_id", "");
    const char *res = xs_json_str_or(req->msg->body, "resolution", "");
    const char *by = xs_json_str_or(req->msg->body, "by", "api");
    json_t *data = json_object_get(req->msg->body, "data");
    bool keep_local = strcmp(res, "KEEP_LOCAL") == 0, keep_xero = strcmp(res, "KEEP_XERO") == 0,
         merged = strcmp(res, "MERGED") == 0;
    if (!keep_local && !keep_xero && !merged) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "resolution",
                                 "resolution must be KEEP_LOCAL, KEEP_XERO or MERGED");
    }
    if (merged != (data != NULL)) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "data",
                                 merged ? "MERGED needs the merged record in data"
                                        : "data goes only with MERGED");
    }
    xs_pg_res *r = NULL;
    json_t *xver = NULL, *rec = NULL, *maps = json_array(), *at = NULL, *queue = json_array(),
           *local = NULL, *ids = NULL;
    xs_err e = xs_pg_begin(ctx->pg);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot begin");
        goto out;
    }
    e = xs_pg_q(ctx->pg, &r,
                "SELECT k.local_id, k.xero_id, k.xero_version, k.status, c.organisation_id FROM "
                "sync.conflicts k JOIN sync.connections c ON c.id = k.connection_id WHERE k.id = "
                "$1 AND k.connection_id = $2 AND k.entity = $3 FOR UPDATE OF k",
                cid, req->conn, ops->info->name);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read the conflict");
        goto out;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "conflict_id", "no conflict %s", cid);
        goto out;
    }
    if (strcmp(xs_pg_res_get(r, 0, 3), "PENDING") != 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s is already %s", cid,
                        xs_pg_res_get(r, 0, 3));
        goto out;
    }
    char lid[XS_ID_MAX], xid[XS_ID_MAX], org[XS_ID_MAX];
    snprintf(lid, sizeof(lid), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(xid, sizeof(xid), "%s", xs_pg_res_get(r, 0, 1) ? xs_pg_res_get(r, 0, 1) : "");
    snprintf(org, sizeof(org), "%s", xs_pg_res_get(r, 0, 4));
    const char *xt = xs_pg_res_get(r, 0, 2);
    xver = xt != NULL ? xs_json_parse(xt, strlen(xt), NULL) : NULL;
    if (!json_is_object(xver) || !xs_uuid_valid(xid)) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s has no Xero version to settle", cid);
        goto out;
    }
    if (merged) {
        ids = json_pack("[s]", lid);
        if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK) {
            e = step_db_fail(ctx, e, "cannot read the local record");
            goto out;
        }
        char field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
        json_t *cur = json_object_get(json_object_get(local, lid), "rec");
        if (ops->validate(data, cur, false, &rec, field, why) != XS_OK) {
            xs_pg_rollback(ctx->pg);
            char f[300];
            snprintf(f, sizeof(f), "data.%s", field);
            e = xs_svc_fail_field(ctx, XS_EINVAL, f, "%s", why);
            goto out;
        }
    }
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    if ((e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot mark the write");
        goto out;
    }
    /* The base becomes Xero's version: what stays different locally is then pushed. */
    if (keep_xero || merged) {
        json_t *upd = json_pack("[{s:s, s:O}]", "id", lid, "rec", keep_xero ? xver : rec);
        json_t *none = json_array();
        e = ops->write_local(ctx->pg, org, none, upd, &at);
        json_decref(upd);
        json_decref(none);
        if (e != XS_OK) {
            e = step_db_fail(ctx, e, "cannot write the local record");
            goto out;
        }
    }
    json_t *lat = json_object_get(at, lid);
    map_add(maps, lid, xid, xver, 0, lat != NULL ? json_integer_value(lat) : 0);
    bool push = keep_local || (merged && !xs_json_equal(rec, xver));
    if (push) {
        json_array_append_new(queue, json_string(lid));
    }
    char *mtext = merged ? xs_json_dump(rec, 0) : NULL;
    const char *p[] = {cid, res, by, mtext};
    if ((e = map_write(ctx, req->conn, ops->info->name, txid, maps)) != XS_OK ||
        (e = map_queue_push(ctx, org, ops->info->name, queue)) != XS_OK ||
        (e = xs_pg_exec(ctx->pg, NULL,
                        "UPDATE sync.conflicts SET status = 'RESOLVED', resolution = $2, "
                        "resolved_by = $3, resolved_at = now(), merged_data = $4::jsonb WHERE id "
                        "= $1",
                        4, p)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        free(mtext);
        e = step_db_fail(ctx, e, "cannot settle the conflict");
        goto out;
    }
    free(mtext);
    xs_log_info(ctx->proc->log, "sync.conflict_resolved", "{s:s, s:s, s:s}", "conflict", cid,
                "resolution", res, "by", by);
    *reply = json_pack("{s:s, s:s, s:s, s:b}", "status", "RESOLVED", "resolution", res, "local_id",
                       lid, "push", push);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    xs_pg_res_free(r);
    json_decref(xver);
    json_decref(rec);
    json_decref(maps);
    json_decref(at);
    json_decref(queue);
    json_decref(local);
    json_decref(ids);
    return e;
}

xs_err xs_domain_local_upsert(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req sr;
    if (step_req_read(ctx, msg, &sr) != XS_OK) {
        return XS_EINVAL;
    }
    const step_req *req = &sr;
    const xs_entity_ops *ops = req->ops;
    if (ops->validate == NULL) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only",
                                 ops->info->name);
    }
    const char *org = req->org;
    const char *id = xs_json_str_or(req->msg->body, "id", NULL);
    bool partial = false;
    xs_json_get_bool(req->msg->body, "partial", &partial);
    json_t *ids = NULL, *local = NULL, *rec = NULL, *at = NULL, *rows = NULL;
    json_t *cur = NULL;
    char nid[XS_ID_MAX], field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
    xs_err e = XS_OK;
    if (id != NULL) {
        ids = json_pack("[s]", id);
        if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK) {
            e = step_db_fail(ctx, e, "cannot read the record");
            goto out;
        }
        json_t *row = json_object_get(local, id);
        if (row == NULL) {
            e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "id", "no %s %s", ops->info->name, id);
            goto out;
        }
        cur = json_object_get(row, "rec");
        org = xs_json_str_or(row, "org", org);
    } else if (org == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "organisation_id", "organisation_id is required");
        goto out;
    }
    if (ops->validate(json_object_get(req->msg->body, "record"), cur, partial, &rec, field, why) !=
        XS_OK) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, field, "%s", why);
        goto out;
    }
    if (id == NULL && (e = xs_uuid_random_text(nid)) != XS_OK) {
        goto out;
    }
    const char *rid = id != NULL ? id : nid;
    /* Not marked as the engine's: the change trigger puts it in the outbox for every
     * connection of the organisation. */
    rows = json_pack("[{s:s, s:O}]", "id", rid, "rec", rec);
    json_t *none = json_array();
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
        (e = ops->write_local(ctx->pg, org, id != NULL ? none : rows, id != NULL ? rows : none,
                              &at)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        json_decref(none);
        if (strcmp(xs_pg_sqlstate(ctx->pg), "23503") == 0) {
            /* A foreign key: the organisation, or a record referred to (an invoice's contact),
             * which must be the organisation's. */
            const char *bad = "organisation_id";
            for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
                char col[64];
                snprintf(col, sizeof(col), "%s_id", ref->field);
                if (strstr(xs_pg_error(ctx->pg), col) != NULL) {
                    bad = ref->field;
                }
            }
            xs_pg_rollback(ctx->pg);
            e = strcmp(bad, "organisation_id") == 0
                    ? xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such organisation")
                    : xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such %s in this organisation",
                                        bad);
        } else {
            e = step_db_fail(ctx, e, "cannot write the record");
        }
        goto out;
    }
    json_decref(none);
    *reply = json_pack("{s:s, s:b, s:O}", "id", rid, "created", id == NULL, "record", rec);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    json_decref(ids);
    json_decref(local);
    json_decref(rec);
    json_decref(at);
    json_decref(rows);
    return e;
}
