/* lookup.c: see lookup.h. */
#include "engine/lookup.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* lookup_path writes the path of the GET that finds ops's records by keys (new string), or
 * NULL when memory runs out. */
static char *lookup_path(const xs_entity_ops *ops, const json_t *keys)
{
    char *where = ops->lookup_query(keys);
    if (where == NULL) {
        return NULL;
    }
    /* Percent-encode the filter for the query string. */
    size_t wl = strlen(where);
    char *ew = malloc(3 * wl + 1);
    if (ew == NULL) {
        free(where);
        return NULL;
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
    free(where);
    size_t plen = strlen(ops->xero_path) + o + 64;
    char *path = malloc(plen);
    if (path != NULL) {
        snprintf(path, plen, "%s?where=%s%s%s", ops->xero_path, ew, ops->pull_query ? "&" : "",
                 ops->pull_query ? ops->pull_query : "");
    }
    free(ew);
    return path;
}

/* lookup_found reads the records of Xero's list (those it can read, with a valid id) into found
 * ([{xero_id, rec, at, name}]) and their Xero ids into xids. */
static void lookup_found(const xs_entity_ops *ops, const json_t *list, json_t *found, json_t *xids)
{
    size_t i;
    json_t *v;
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
}

/* lookup_match pairs each name asked (names[i]) with a record found by that name (found[j]),
 * comparing names as Xero does (case and spacing aside), in the database's own rule: *match_of
 * (new) is {"<i>": j}. */
static xs_err lookup_match(xs_svc_ctx *ctx, const json_t *names, const json_t *found,
                           json_t **match_of)
{
    json_t *pairs = json_array();
    size_t i;
    json_t *v;
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
    xs_pg_res *r = NULL;
    xs_err e = step_exec_json(
        ctx->pg, &r,
        "SELECT r.i, r.j FROM jsonb_to_recordset($1::jsonb) AS r(i int, j int, a text, b "
        "text) WHERE sync.normalise_name(r.a) = sync.normalise_name(r.b)",
        0, NULL, pairs);
    json_decref(pairs);
    if (e != XS_OK) {
        xs_pg_res_free(r);
        return step_db_fail(ctx, e, "cannot compare names");
    }
    *match_of = json_object();
    for (int k = 0; k < xs_pg_res_nrows(r); k++) {
        json_object_set_new(*match_of, xs_pg_res_get(r, k, 0),
                            json_integer(atoll(xs_pg_res_get(r, k, 1))));
    }
    xs_pg_res_free(r);
    return XS_OK;
}

/* What a lookup found and decides: the records Xero holds by the names asked, and what comes of
 * each name. */
typedef struct lookup_state {
    json_t *found;    /* [{xero_id, rec, at, name}]: Xero's records by those names */
    json_t *mappings; /* the mappings of those records, by Xero id */
    json_t *match_of; /* {"<i>": j}: names[i] is the name of found[j] */
    json_t *maps;     /* the links to write */
    json_t *requeue;  /* local ids linked, to push again */
    json_t *errors;   /* the names that fail */
    json_t *counts;
} lookup_state;

/* lookup_link decides each name asked: its local record is linked to the record Xero holds by
 * that name when that record is free; a name no record has, or whose record is linked to
 * another local record, fails with an item error. */
static void lookup_link(const json_t *names, lookup_state *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        char ik[24];
        snprintf(ik, sizeof(ik), "%zu", i);
        json_t *jm = json_object_get(s->match_of, ik);
        const char *lid = xs_json_str_or(v, "local_id", "");
        char msg[600];
        if (jm == NULL) {
            snprintf(msg, sizeof(msg),
                     "Xero refused the name \"%.200s\" as taken, but no record by that name "
                     "can be found there",
                     xs_json_str_or(v, "name", ""));
            step_item_error(s->errors, lid, NULL, msg);
            step_count(s->counts, "failed", 1);
            continue;
        }
        json_t *f = json_array_get(s->found, (size_t)json_integer_value(jm));
        const char *xid = xs_json_str_or(f, "xero_id", "");
        json_t *m = json_object_get(s->mappings, xid);
        if (m != NULL && strcmp(xs_json_str_or(m, "local_id", ""), lid) != 0) {
            snprintf(msg, sizeof(msg),
                     "Xero requires unique names: \"%.200s\" is already the name of the Xero "
                     "record linked to local record %s; rename one of them",
                     xs_json_str_or(v, "name", ""), xs_json_str_or(m, "local_id", ""));
            step_item_error(s->errors, lid, xid, msg);
            step_count(s->counts, "failed", 1);
            continue;
        }
        int64_t at = 0;
        xs_json_get_int(f, "at", &at);
        map_add(s->maps, lid, xid, json_object_get(f, "rec"), at, 0);
        json_array_append_new(s->requeue, json_string(lid));
        step_count(s->counts, "linked", 1);
    }
}

/* lookup_keys checks the names asked ([{name, local_id}]) and lists them in keys. */
static xs_err lookup_keys(xs_svc_ctx *ctx, const json_t *names, json_t *keys)
{
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        if (xs_json_str_or(v, "name", NULL) == NULL ||
            !xs_uuid_valid(xs_json_str_or(v, "local_id", ""))) {
            return xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "items are {name, local_id}");
        }
        json_array_append_new(keys, json_string(xs_json_str_or(v, "name", "")));
    }
    return XS_OK;
}

/* lookup_fetch GETs the records by the names asked (keys) into resp; *outcome is NULL when the
 * reply lists them, else the call's outcome ("retry", "failed", ...). */
static xs_err lookup_fetch(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                           const json_t *keys, xs_xero_resp *resp, xs_xero_call *call,
                           const char **outcome)
{
    char *path = lookup_path(ops, keys);
    if (path == NULL) {
        return XS_ENOMEM;
    }
    xs_xero_req xr = {.method = "GET",
                      .path = path,
                      .bearer = step_or_empty(req->bearer),
                      .tenant_id = step_or_empty(req->tenant_id)};
    xs_err e = xs_xero_request(step_xero(ctx), &xr, resp, call);
    free(path);
    step_audit(ctx, req, call);
    *outcome = step_call_outcome(e, resp->status, false);
    if (*outcome == NULL && !json_is_array(json_object_get(resp->json, ops->xero_list))) {
        *outcome = "failed";
    }
    return XS_OK;
}

/* lookup_record writes the links and the refusals of a lookup in one transaction marked as the
 * engine's. */
static xs_err lookup_record(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                            const lookup_state *s)
{
    char txid[64];
    step_new_txid(req, txid, sizeof(txid));
    xs_err e;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = map_write(ctx, req->conn, ops->info->name, txid, s->maps)) != XS_OK ||
        (e = step_item_errors(ctx, req, ops->info->name, s->errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        return step_db_fail(ctx, e, "cannot link records");
    }
    return XS_OK;
}

xs_err push_lookup(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask, json_t **reply)
{
    const step_req *req = ask->req;
    const json_t *names = ask->lookup_names;
    lookup_state s = {.found = json_array(),
                      .maps = json_array(),
                      .requeue = json_array(),
                      .errors = json_array(),
                      .counts = step_counts_new(STEP_PUSH_COUNTS)};
    json_t *keys = json_array(), *xids = json_array();
    xs_xero_resp resp = {0};
    xs_xero_call call;
    const char *outcome = NULL;
    xs_err e;
    if (ops->lookup_query == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "%s has no lookup", ops->info->name);
        goto out;
    }
    if ((e = lookup_keys(ctx, names, keys)) != XS_OK ||
        (e = lookup_fetch(ctx, ops, req, keys, &resp, &call, &outcome)) != XS_OK) {
        goto out;
    }
    if (outcome != NULL) {
        e = step_outcome_reply(outcome, json_incref(s.counts), &call, call.error, reply);
        goto out;
    }
    lookup_found(ops, json_object_get(resp.json, ops->xero_list), s.found, xids);
    if ((e = map_load(ctx, req->conn, ops->info->name, xids, true, &s.mappings)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read mappings");
        goto out;
    }
    if ((e = lookup_match(ctx, names, s.found, &s.match_of)) != XS_OK) {
        goto out;
    }
    lookup_link(names, &s);
    if ((e = lookup_record(ctx, ops, req, &s)) != XS_OK) {
        goto out;
    }
    *reply = json_pack("{s:s, s:O, s:o, s:O}", "outcome", "done", "counts", s.counts, "call",
                       step_call_json(&call), "requeue", s.requeue);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    xs_xero_resp_fini(&resp);
    json_decref(keys);
    json_decref(xids);
    json_decref(s.found);
    json_decref(s.mappings);
    json_decref(s.match_of);
    json_decref(s.maps);
    json_decref(s.requeue);
    json_decref(s.errors);
    json_decref(s.counts);
    return e;
}
