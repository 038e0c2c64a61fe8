/*
 * mapping_api.c: GET /v1/mappings, the Xero records a local record is linked to (one per
 * connection), or the local record a Xero record is, with when each side was last agreed and
 * where the link stands now. The mappings are read through the connections (few), so each
 * connection's unique index on (connection_id, entity, local_id | xero_id) finds its one row.
 */
#include "mapping_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

/* The columns of one mapping, as the API shows it. local_updated_at is null while the local
 * record is known to differ from what both sides last agreed (-infinity: queued for Xero).
 * status: "conflict" while a conflict of the record waits for a person, else "linked". */
#define MAPPING_SELECT                                                                             \
    "SELECT m.connection_id, m.entity, m.local_id, m.xero_id, sync.iso(m.xero_updated_at), "       \
    "CASE WHEN m.local_updated_at > '-infinity' THEN sync.iso(m.local_updated_at) END, "           \
    "sync.iso(m.last_synced_at), sync.iso(m.created_at), m.sync_version, k.id, CASE WHEN k.id "    \
    "IS NOT NULL THEN 'conflict' ELSE 'linked' END FROM sync.connections c JOIN sync.mappings m "  \
    "ON m.connection_id = c.id LEFT "                                                              \
    "JOIN sync.conflicts k ON k.connection_id = m.connection_id AND k.entity = m.entity AND "      \
    "k.local_id = m.local_id AND k.status = 'PENDING' "

/* mapping_json builds the API form of row i of a MAPPING_SELECT result (new; pg is not
 * used). */
static json_t *mapping_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    int64_t version = 0;
    xs_pg_res_int(r, i, 8, &version);
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:I, s:s?, s:s}", "connection_id",
                     xs_pg_res_get(r, i, 0), "entity", xs_pg_res_get(r, i, 1), "local_id",
                     xs_pg_res_get(r, i, 2), "xero_id", xs_pg_res_get(r, i, 3), "xero_updated_at",
                     xs_pg_res_get(r, i, 4), "local_updated_at", xs_pg_res_get(r, i, 5),
                     "last_synced_at", xs_pg_res_get(r, i, 6), "created_at", xs_pg_res_get(r, i, 7),
                     "sync_version", (json_int_t)version, "conflict_id", xs_pg_res_get(r, i, 9),
                     "status", xs_pg_res_get(r, i, 10));
}

void orch_api_mappings(xs_http_req *req, void *arg)
{
    orch *o = arg;
    static const char *const entities[] = {"contact", "invoice",          "payment",
                                           "account", "bank_transaction", NULL};
    const char *entity = NULL, *lid = NULL, *xid = NULL, *conn = NULL;
    if (!orch_arg_enum(req, "entity", entities, &entity) || !orch_arg_uuid(req, "local_id", &lid) ||
        !orch_arg_uuid(req, "xero_id", &xid) || !orch_arg_uuid(req, "connection_id", &conn)) {
        return;
    }
    if (entity == NULL) {
        xs_http_reply_error(req, 400, "invalid", "entity",
                            "entity is required: contact, invoice, payment, account or "
                            "bank_transaction");
        return;
    }
    if ((lid == NULL) == (xid == NULL)) {
        xs_http_reply_error(req, 400, "invalid", lid == NULL ? "local_id" : "xero_id",
                            "give exactly one of local_id and xero_id");
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       MAPPING_SELECT "WHERE m.entity = $1 AND ($2::uuid IS NULL OR m.local_id = "
                                      "$2::uuid) AND ($3::uuid IS NULL OR m.xero_id = $3::uuid) "
                                      "AND ($4::uuid IS NULL OR m.connection_id = $4::uuid) "
                                      "ORDER BY m.connection_id",
                       entity, lid, xid, conn);
    json_t *list = orch_api_rows(o, req, pg, e, r, "cannot read mappings", mapping_json);
    if (list != NULL) {
        xs_http_reply_json(req, 200, json_pack("{s:o}", "mappings", list));
    }
}
