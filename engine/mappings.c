/* mappings.c: see mappings.h. */
#include "engine/mappings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#include "engine/kit.h"
#include "engine/step.h"

xs_err map_load(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *ids,
                bool by_xero, json_t **out)
{
    return map_load_sums(ctx, conn, entity, ids, NULL, by_xero, out);
}

/* SINCE is when the base of mapping m was agreed with the local row (ms): the row's
 * updated_at it was agreed on, or, when the local row differs from it on purpose (to be
 * pushed: '-infinity'), when the mapping was written. A field the host application wrote
 * after it (edited_fields, migration 0012) is a local change of that field whatever its
 * value. */
#define SINCE                                                                                      \
    "CASE WHEN m.local_updated_at > '-infinity' THEN " XS_DOMAIN_MS(                               \
        "m.local_updated_at") " ELSE " XS_DOMAIN_MS("m.last_synced_at") " END"

xs_err map_load_sums(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *ids,
                     const json_t *sums, bool by_xero, json_t **out)
{
    json_t *m = json_object();
    if (m == NULL) {
        return XS_ENOMEM;
    }
    if (json_array_size(ids) == 0) {
        *out = m;
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(ids);
    if (arr == NULL) {
        json_decref(m);
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    char *sarr = NULL;
    if (sums != NULL && (sarr = kit_fixed_array(sums, 2 * XS_SHA256_LEN, kit_is_hex_sum)) == NULL) {
        free(arr);
        json_decref(m);
        return XS_ENOMEM;
    }
    xs_err e =
        sums != NULL
            ? xs_pg_q(ctx->pg, &r,
                      "SELECT m.xero_id, m.local_id, CASE WHEN m.base_checksum = r.sum THEN "
                      "NULL ELSE m.base END, m.base_checksum, m.xero_raw_sum, NULL, " SINCE
                      " FROM (SELECT xero_id, local_id, base, base_checksum, xero_raw_sum, "
                      "local_updated_at, last_synced_at FROM sync.mappings "
                      "WHERE connection_id = $1 AND entity = $2 AND xero_id = ANY($3::uuid[])) m "
                      "JOIN unnest($3::uuid[], $4::text[]) AS r(xid, sum) ON r.xid = m.xero_id",
                      conn, entity, arr, sarr)
        : by_xero ? xs_pg_q(ctx->pg, &r,
                            "SELECT xero_id, local_id, base, base_checksum, NULL, "
                            "xero_parts, " SINCE " FROM sync.mappings m WHERE connection_id = "
                            "$1 AND entity = $2 AND xero_id = ANY($3::uuid[])",
                            conn, entity, arr)
                  : xs_pg_q(ctx->pg, &r,
                            "SELECT xero_id, local_id, base, base_checksum, NULL, "
                            "xero_parts, " SINCE " FROM sync.mappings m WHERE connection_id = "
                            "$1 AND entity = $2 AND local_id = ANY($3::uuid[])",
                            conn, entity, arr);
    free(arr);
    free(sarr);
    if (e != XS_OK) {
        json_decref(m);
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *basetext = xs_pg_res_get(r, i, 2);
        json_t *base = basetext != NULL ? xs_json_parse(basetext, strlen(basetext), NULL) : NULL;
        json_t *row =
            json_pack("{s:s, s:s, s:o, s:s?, s:s?}", "xero_id", xs_pg_res_get(r, i, 0), "local_id",
                      xs_pg_res_get(r, i, 1), "base", base != NULL ? base : json_null(), "checksum",
                      xs_pg_res_get(r, i, 3), "raw", sums != NULL ? xs_pg_res_get(r, i, 4) : NULL);
        const char *parts = xs_pg_res_get(r, i, 5);
        if (parts != NULL) {
            json_object_set_new(row, "parts", xs_json_parse(parts, strlen(parts), NULL));
        }
        int64_t since = 0;
        if (xs_pg_res_int(r, i, 6, &since) == XS_OK) {
            json_object_set_new(row, "since", json_integer((json_int_t)since));
        }
        json_object_set_new(m, xs_pg_res_get(r, i, by_xero ? 0 : 1), row);
    }
    xs_pg_res_free(r);
    *out = m;
    return XS_OK;
}

xs_err map_pending_conflicts(xs_svc_ctx *ctx, const char *conn, const char *entity,
                             const json_t *local_ids, json_t **out, json_t **ignored)
{
    json_t *set = json_object(), *ign = ignored != NULL ? json_object() : NULL;
    if (set == NULL || (ignored != NULL && ign == NULL)) {
        json_decref(set);
        json_decref(ign);
        return XS_ENOMEM;
    }
    *out = set;
    if (ignored != NULL) {
        *ignored = ign;
    }
    if (json_array_size(local_ids) == 0) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(local_ids);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    /* Each record's latest conflict: a pending one is always the latest (one per record, and
     * no decision is made on a record that has one); an ignored one counts while it is. */
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT DISTINCT ON (local_id) local_id, id, status, local_version::text, "
                       "xero_version::text FROM sync.conflicts WHERE connection_id = $1 AND "
                       "entity = $2 AND local_id = ANY($3::uuid[]) ORDER BY local_id, "
                       "detected_at DESC",
                       conn, entity, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *status = xs_pg_res_get(r, i, 2);
        if (strcmp(status, "PENDING") == 0) {
            json_object_set_new(set, xs_pg_res_get(r, i, 0), json_string(xs_pg_res_get(r, i, 1)));
        } else if (ign != NULL && strcmp(status, "IGNORED") == 0) {
            const char *lt = xs_pg_res_get(r, i, 3), *xt = xs_pg_res_get(r, i, 4);
            json_t *lv = lt != NULL ? xs_json_parse(lt, strlen(lt), NULL) : NULL;
            json_t *xv = xt != NULL ? xs_json_parse(xt, strlen(xt), NULL) : NULL;
            json_object_set_new(ign, xs_pg_res_get(r, i, 0),
                                json_pack("{s:o, s:o}", "local", lv != NULL ? lv : json_null(),
                                          "xero", xv != NULL ? xv : json_null()));
        }
    }
    xs_pg_res_free(r);
    return XS_OK;
}

bool map_ignored_holds(const json_t *ignored, const char *local_id, const json_t *local,
                       const json_t *xero)
{
    const json_t *c = json_object_get(ignored, local_id);
    return c != NULL && local != NULL && xs_json_equal(local, json_object_get(c, "local")) &&
           (xero == NULL || xs_json_equal(xero, json_object_get(c, "xero")));
}

void map_add_sum(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
                 const char *sum, xs_time xero_at, xs_time local_at)
{
    json_t *m = json_pack("{s:s, s:s, s:O, s:s}", "local_id", local_id, "xero_id", xero_id, "base",
                          base, "checksum", sum);
    if (xero_at > 0) {
        json_object_set_new(m, "xero_at", json_integer(xero_at));
    }
    if (local_at != 0) {
        /* -1: "not agreed": the local record differs from the base on purpose (it is to be
         * pushed), so a full scan must not take it as unchanged. */
        json_object_set_new(m, "local_at", json_integer(local_at));
    }
    json_array_append_new(list, m);
}

void map_add(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
             xs_time xero_at, xs_time local_at)
{
    char sum[2 * XS_SHA256_LEN + 1];
    xs_sync_checksum(base, sum);
    map_add_sum(list, local_id, xero_id, base, sum, xero_at, local_at);
}

/* How a mapping written again takes the new values (map_write, map_write_created). */
#define MAPPING_UPSERT                                                                             \
    "ON CONFLICT (connection_id, entity, xero_id) DO UPDATE SET local_id = EXCLUDED.local_id, "    \
    "base = EXCLUDED.base, base_checksum = EXCLUDED.base_checksum, xero_updated_at = "             \
    "coalesce(EXCLUDED.xero_updated_at, m.xero_updated_at), local_updated_at = "                   \
    "coalesce(EXCLUDED.local_updated_at, m.local_updated_at), last_synced_at = now(), "            \
    "sync_version = m.sync_version + 1, last_txid = EXCLUDED.last_txid, xero_raw_sum = "           \
    "CASE WHEN EXCLUDED.xero_raw_sum IS NULL THEN m.xero_raw_sum ELSE EXCLUDED.xero_raw_sum "      \
    "END, xero_raw_checksum = CASE WHEN EXCLUDED.xero_raw_sum IS NULL THEN "                       \
    "m.xero_raw_checksum ELSE EXCLUDED.xero_raw_checksum END, xero_parts = "                       \
    "coalesce(EXCLUDED.xero_parts, m.xero_parts)"

#define MAPPING_COLS                                                                               \
    "INSERT INTO sync.mappings AS m (connection_id, entity, local_id, xero_id, base, "             \
    "base_checksum, xero_updated_at, local_updated_at, last_synced_at, sync_version, last_txid, "  \
    "xero_raw_sum, xero_raw_checksum, xero_parts) "

xs_err map_write(xs_svc_ctx *ctx, const char *conn, const char *entity, const char *txid,
                 const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {conn, entity, txid};
    return step_exec_json(
        ctx->pg, NULL,
        "WITH w AS (" MAPPING_COLS
        "SELECT $1, $2, r.local_id, r.xero_id, r.base, r.checksum, 'epoch'::timestamptz + "
        "r.xero_at * interval '1 millisecond', CASE WHEN r.local_at = -1 THEN "
        "'-infinity'::timestamptz ELSE 'epoch'::timestamptz + r.local_at * interval '1 "
        "millisecond' END, now(), 1, $3, r.raw, r.raw_checksum, r.parts FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, base jsonb, checksum "
        "text, xero_at bigint, local_at bigint, raw text, raw_checksum text, parts "
        "jsonb) " MAPPING_UPSERT " RETURNING m.entity, m.local_id) "
        "DELETE FROM sync.unlinked_contacts u USING w WHERE w.entity = 'contact' AND "
        "u.connection_id = $1 AND u.contact_id = w.local_id",
        3, p, list);
}

xs_err map_write_created(xs_pg *pg, const xs_entity_ops *ops, const char *org, const char *conn,
                         const char *txid, const json_t *creates)
{
    if (json_array_size(creates) == 0) {
        return XS_OK;
    }
    char *insert = xs_domain_sql(ops->columns, XS_DOMAIN_SQL_INSERT_REC);
    if (insert == NULL) {
        return XS_ENOMEM;
    }
    static const char head[] =
        "WITH r AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($5::jsonb) AS r(id uuid, "
        "xero_id uuid, rec jsonb, checksum text, xero_at bigint, raw text, parts jsonb)), c AS (";
    static const char tail[] =
        ") " MAPPING_COLS "SELECT $2, $3, r.id, r.xero_id, r.rec, r.checksum, 'epoch'::timestamptz "
        "+ r.xero_at * interval '1 millisecond', " XS_DOMAIN_AT_MS(
            "now()") ", now(), 1, $4, r.raw, "
                     "CASE WHEN r.raw IS NOT NULL THEN r.checksum END, r.parts FROM "
                     "r " MAPPING_UPSERT;
    size_t cap = sizeof(head) + strlen(insert) + sizeof(tail);
    char *sql = malloc(cap);
    if (sql == NULL) {
        free(insert);
        return XS_ENOMEM;
    }
    snprintf(sql, cap, "%s%s%s", head, insert, tail);
    free(insert);
    const char *p[] = {org, conn, ops->info->name, txid};
    xs_err e = step_exec_json(pg, NULL, sql, 4, p, creates);
    free(sql);
    return e;
}

xs_err map_write_memos(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {conn, entity};
    return step_exec_json(
        ctx->pg, NULL,
        "UPDATE sync.mappings m SET xero_raw_sum = r.raw, xero_raw_checksum = "
        "r.checksum FROM jsonb_to_recordset($3::jsonb) AS r(xero_id uuid, raw text, "
        "checksum text) WHERE m.connection_id = $1 AND m.entity = $2 AND m.xero_id "
        "= r.xero_id",
        2, p, list);
}

void map_conflict_add(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
                      const json_t *local, const json_t *xero, const xs_sync_decision *d)
{
    bool held = d->action == XS_SYNC_HOLD;
    json_t *c = json_pack(
        "{s:s, s:s, s:O, s:O, s:O, s:s, s:s, s:s?, s:O?, s:s}", "local_id", local_id, "xero_id",
        xero_id, "base", base != NULL ? base : json_null(), "local", local, "xero", xero, "policy",
        xs_policy_name(d->policy), "status", held ? "PENDING" : "RESOLVED", "resolution",
        held ? NULL : "AUTO", "merged", held ? NULL : d->result, "reason", d->reason);
    json_array_append_new(list, c);
}

xs_err map_write_conflicts(xs_svc_ctx *ctx, const step_req *req, const char *entity,
                           const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {req->conn, entity, req->run_id};
    return step_exec_json(
        ctx->pg, NULL,
        "INSERT INTO sync.conflicts AS c (connection_id, entity, local_id, xero_id, base, "
        "local_version, xero_version, policy, status, resolution, resolved_by, resolved_at, "
        "merged_data, reason, run_id) SELECT $1, $2, r.local_id, r.xero_id, r.base, r.local, "
        "r.xero, r.policy, r.status, r.resolution, CASE WHEN r.status = 'RESOLVED' THEN 'engine' "
        "END, CASE WHEN r.status = 'RESOLVED' THEN now() END, r.merged, r.reason, $3 FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, base jsonb, local jsonb, "
        "xero jsonb, policy text, status text, resolution text, merged jsonb, reason text) "
        "ON CONFLICT (connection_id, entity, local_id) WHERE status = 'PENDING' DO UPDATE SET "
        "local_version = EXCLUDED.local_version, xero_version = EXCLUDED.xero_version, "
        "detected_at = now(), run_id = EXCLUDED.run_id",
        3, p, list);
}

xs_err map_queue_push(xs_svc_ctx *ctx, const char *org, const char *entity, const json_t *ids)
{
    if (json_array_size(ids) == 0) {
        return XS_OK;
    }
    const char *p[] = {org, entity};
    return step_exec_json(ctx->pg, NULL,
                          "SELECT sync.record_change($1, $2, value::uuid, 'update') FROM "
                          "jsonb_array_elements_text($3::jsonb)",
                          2, p, ids);
}
