/* lookup.c: see lookup.h. */
#include "engine/lookup.h"

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
#include "engine/kit.h"
#include "engine/mappings.h"
#include "engine/step.h"

void lookup_item_message(const json_t *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *errs = json_object_get(r, "ValidationErrors");
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(errs, i, v)
    {
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n > 0 ? "; " : "",
                              xs_json_str_or(v, "Message", "?"));
        if (n >= cap) {
            break;
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, cap, "Xero refused the record without saying why");
    }
}

xs_err push_lookup(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, json_t **reply)
{
    json_t *names = json_object_get(req->msg->body, "lookup_names");
    json_t *counts = step_counts_new(STEP_PUSH_COUNTS);
    json_t *keys = json_array(), *errors = json_array(), *maps = json_array(),
           *requeue = json_array(), *xids = json_array(), *found = json_array();
    json_t *mappings = NULL;
    xs_xero_resp resp = {0};
    xs_pg_res *r = NULL;
    char *where = NULL, *ew = NULL;
    xs_err e = XS_OK;
    size_t i;
    json_t *v;
    if (ops->lookup_query == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "%s has no lookup", ops->info->name);
        goto out;
    }
    json_array_foreach(names, i, v)
    {
        if (xs_json_str_or(v, "name", NULL) == NULL ||
            !xs_uuid_valid(xs_json_str_or(v, "local_id", ""))) {
            e = xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "items are {name, local_id}");
            goto out;
        }
        json_array_append_new(keys, json_string(xs_json_str_or(v, "name", "")));
    }
    where = ops->lookup_query(keys);
    if (where == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    /* Percent-encode the filter for the query string. */
    size_t wl = strlen(where);
    ew = malloc(3 * wl + 1);
    if (ew == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    size_t o = 0;
    for (size_t k = 0; k < wl; k++) {
        unsigned char c = (unsigned char)where[k];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            ew[o++] = (char)c;
        } else {
            o += (size_t)sprintf(ew + o, "%%%02X", c);
        }
    }
    ew[o] = '\0';
    size_t plen = strlen(ops->xero_path) + o + 64;
    char *path = malloc(plen);
    if (path == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    snprintf(path, plen, "%s?where=%s%s%s", ops->xero_path, ew, ops->pull_query ? "&" : "",
             ops->pull_query ? ops->pull_query : "");
    xs_xero_req xr = {.method = "GET",
                      .path = path,
                      .bearer = step_or_empty(req->bearer),
                      .tenant_id = step_or_empty(req->tenant_id)};
    xs_xero_call call;
    e = xs_xero_request(step_xero(ctx), &xr, &resp, &call);
    free(path);
    step_audit(ctx, req, &call);
    const char *outcome = step_call_outcome(e, resp.status, false);
    if (outcome == NULL && !json_is_array(json_object_get(resp.json, ops->xero_list))) {
        outcome = "failed";
    }
    if (outcome != NULL) {
        e = step_outcome_reply(outcome, json_incref(counts), &call, call.error, reply);
        goto out;
    }
    json_t *list = json_object_get(resp.json, ops->xero_list);
    json_array_foreach(list, i, v)
    {
        json_t *rec = NULL;
        char xid[XS_ID_MAX] = "", why[XS_DOMAIN_WHY_MAX];
        xs_time at = 0;
        if (xs_domain_from_xero(ops, v, &rec, xid, &at, why) == XS_OK && kit_xero_id_ok(xid)) {
            json_array_append_new(found, json_pack("{s:s, s:o, s:I, s:s}", "xero_id", xid, "rec",
                                                   rec, "at", (json_int_t)at, "name",
                                                   xs_domain_text_or_empty(rec, "name")));
            json_array_append_new(xids, json_string(xid));
        } else {
            json_decref(rec);
        }
    }
    if ((e = map_load(ctx, req->conn, ops->info->name, xids, true, &mappings)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read mappings");
        goto out;
    }
    /* Compare names as Xero does (case and spacing aside), in the database's own rule. */
    json_t *pairs = json_array();
    json_array_foreach(names, i, v)
    {
        size_t j;
        json_t *f;
        json_array_foreach(found, j, f)
        {
            json_array_append_new(pairs,
                                  json_pack("{s:I, s:I, s:s, s:s}", "i", (json_int_t)i, "j",
                                            (json_int_t)j, "a", xs_json_str_or(v, "name", ""), "b",
                                            xs_json_str_or(f, "name", "")));
        }
    }
    e = step_exec_json(
        ctx->pg, &r,
        "SELECT r.i, r.j FROM jsonb_to_recordset($1::jsonb) AS r(i int, j int, a text, b "
        "text) WHERE sync.normalise_name(r.a) = sync.normalise_name(r.b)",
        0, NULL, pairs);
    json_decref(pairs);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot compare names");
        goto out;
    }
    json_t *match_of = json_object();
    for (int k = 0; k < xs_pg_res_nrows(r); k++) {
        json_object_set_new(match_of, xs_pg_res_get(r, k, 0),
                            json_integer(atoll(xs_pg_res_get(r, k, 1))));
    }
    json_array_foreach(names, i, v)
    {
        char ik[24];
        snprintf(ik, sizeof(ik), "%zu", i);
        json_t *jm = json_object_get(match_of, ik);
        const char *lid = xs_json_str_or(v, "local_id", "");
        char msg[600];
        if (jm == NULL) {
            snprintf(msg, sizeof(msg),
                     "Xero refused the name \"%.200s\" as taken, but no record by that name "
                     "can be found there",
                     xs_json_str_or(v, "name", ""));
            step_item_error(errors, lid, NULL, msg);
            step_count(counts, "failed", 1);
            continue;
        }
        json_t *f = json_array_get(found, (size_t)json_integer_value(jm));
        const char *xid = xs_json_str_or(f, "xero_id", "");
        json_t *m = json_object_get(mappings, xid);
        if (m != NULL && strcmp(xs_json_str_or(m, "local_id", ""), lid) != 0) {
            snprintf(msg, sizeof(msg),
                     "Xero requires unique names: \"%.200s\" is already the name of the Xero "
                     "record linked to local record %s; rename one of them",
                     xs_json_str_or(v, "name", ""), xs_json_str_or(m, "local_id", ""));
            step_item_error(errors, lid, xid, msg);
            step_count(counts, "failed", 1);
            continue;
        }
        int64_t at = 0;
        xs_json_get_int(f, "at", &at);
        map_add(maps, lid, xid, json_object_get(f, "rec"), at, 0);
        json_array_append_new(requeue, json_string(lid));
        step_count(counts, "linked", 1);
    }
    json_decref(match_of);
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = map_write(ctx, req->conn, ops->info->name, txid, maps)) != XS_OK ||
        (e = step_item_errors(ctx, req, ops->info->name, errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot link records");
        goto out;
    }
    *reply = json_pack("{s:s, s:O, s:o, s:O}", "outcome", "done", "counts", counts, "call",
                       step_call_json(&call), "requeue", requeue);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    xs_pg_res_free(r);
    xs_xero_resp_fini(&resp);
    free(where);
    free(ew);
    json_decref(counts);
    json_decref(keys);
    json_decref(errors);
    json_decref(maps);
    json_decref(requeue);
    json_decref(xids);
    json_decref(found);
    json_decref(mappings);
    return e;
}
