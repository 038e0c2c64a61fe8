/* step.c: see step.h. */
#include "engine/step.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/audit.h"
#include "xs/json.h"
#include "engine/runtime.h"

/* When a write is big enough to re-analyse the entity's table (step_refresh_stats). */
#define ANALYZE_MIN_ROWS 200
#define ANALYZE_MAX_ROWS 25000
#define ANALYZE_TARGET   "10"

xs_xero *step_xero(xs_svc_ctx *ctx)
{
    return ((domain_worker *)ctx->wstate)->x;
}

xs_err step_req_read(xs_svc_ctx *ctx, const xs_msg *msg, step_req *out)
{
    const xs_domain_svc *d = ctx->state;
    const json_t *body = msg->body;
    *out = (step_req){.msg = msg,
                      .conn = msg->conn,
                      .org = xs_json_str_or(body, "organisation_id", NULL),
                      .tenant_id = xs_json_str_or(body, "tenant_id", NULL),
                      .bearer = xs_json_str_or(body, "access_token", NULL),
                      .run_id = xs_json_str_or(body, "run_id", NULL)};
    if (xs_json_get_int(body, "step_id", &out->step_id) != XS_OK) {
        out->step_id = 0;
    }
    snprintf(out->step, sizeof(out->step), "%lld", (long long)out->step_id);
    out->final = json_is_true(json_object_get(body, "final"));
    const char *name = xs_json_str_or(body, "entity", "");
    for (size_t i = 0; d->entities[i] != NULL; i++) {
        if (strcmp(d->entities[i]->info->name, name) == 0) {
            out->ops = d->entities[i];
            return XS_OK;
        }
    }
    return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "the %s service does not sync entity %.32s",
                             ctx->service, name);
}

xs_err step_settings_read(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                          settings *s)
{
    memset(s, 0, sizeof(*s));
    json_t *in = json_object_get(req->msg->body, "settings");
    const char *p = xs_json_str_or(in, "policy", "last_write_wins");
    const char *f = xs_json_str_or(in, "fallback", "last_write_wins");
    if (xs_policy_parse(p, &s->policy) != XS_OK) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "settings.policy", "unknown policy %.32s", p);
    }
    if (xs_policy_parse(f, &s->fallback) != XS_OK || s->fallback == XS_POLICY_MERGE) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "settings.fallback",
                                 "the merge fallback must be a policy other than merge");
    }
    xs_json_get_bool(in, "fill_empty_only", &s->fill_empty_only);
    json_t *types = json_object_get(in, "types");
    if (types != NULL && !json_is_null(types)) {
        if (ops->type_field == NULL || xs_entity_types_check(types) != 0) {
            return xs_svc_fail_field(ctx, XS_EINVAL, "settings.types",
                                     ops->type_field == NULL
                                         ? "this entity has no types to filter on"
                                         : "types must be 1 to 16 Xero Type names (A-Z)");
        }
        s->types = types;
    }
    json_t *keys = json_object_get(in, "matching");
    if (json_is_array(keys)) {
        s->keys = keys;
    } else {
        s->keys = json_array();
        s->keys_owned = true;
        const xs_entity_info *info = ops->info;
        for (size_t i = 0; info != NULL && info->match_keys != NULL && info->match_keys[i]; i++) {
            json_array_append_new(s->keys, json_string(info->match_keys[i]));
        }
    }
    return XS_OK;
}

void step_settings_fini(settings *s)
{
    if (s->keys_owned) {
        json_decref(s->keys);
    }
}

void step_count(json_t *counts, const char *key, json_int_t n)
{
    json_t *v = json_object_get(counts, key);
    if (json_is_integer(v)) {
        json_integer_set(v, json_integer_value(v) + n);
    } else {
        json_object_set_new(counts, key, json_integer(n));
    }
}

json_t *step_counts_new(const char *const *keys)
{
    json_t *c = json_object();
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_object_set_new(c, keys[i], json_integer(0));
    }
    return c;
}

json_t *step_call_json(const xs_xero_call *c)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "status", (json_int_t)c->status, "duration_ms",
        (json_int_t)c->duration_ms, "min_remaining", (json_int_t)c->rate.min_remaining,
        "day_remaining", (json_int_t)c->rate.day_remaining, "app_min_remaining",
        (json_int_t)c->rate.app_min_remaining, "retry_after_s", (json_int_t)c->rate.retry_after_s,
        "problem", c->rate.problem, "error", c->error);
}

const char *step_call_outcome(xs_err e, long status, bool keyed)
{
    if (e != XS_OK) {
        /* No complete, readable reply: a write may have been applied, so it is sent again,
         * byte for byte with its key; a read is simply repeated. The orchestrator bounds the
         * attempts. */
        return "retry";
    }
    if (status == 401) {
        return "token_rejected";
    }
    if (status == 429 || status >= 500 || (keyed && status == 409)) {
        return "retry";
    }
    return NULL;
}

void step_audit(xs_svc_ctx *ctx, const step_req *req, const xs_xero_call *call)
{
    xs_audit_ctx who = {.connection_id = req->conn,
                        .tenant_id = req->tenant_id,
                        .run_id = req->run_id,
                        .step_id = req->step_id};
    xs_svc_count_call(ctx, call);
    if (xs_audit_call(ctx->pg, &who, call) != XS_OK) {
        xs_log_warn(ctx->proc->log, "audit.failed", "{s:s, s:s}", "path", call->path, "error",
                    xs_pg_error(ctx->pg));
    }
}

xs_err step_db_fail(xs_svc_ctx *ctx, xs_err e, const char *what)
{
    xs_pg_rollback(ctx->pg);
    return xs_svc_fail(ctx, e == XS_OK ? XS_EDB : e, true, "%s: %s", what, xs_pg_error(ctx->pg));
}

xs_err step_exec_json(xs_pg *pg, xs_pg_res **out, const char *sql, int n, const char **params,
                      const json_t *doc)
{
    char *text = xs_json_dump(doc, 0);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    const char *p[8];
    for (int i = 0; i < n && i < 7; i++) {
        p[i] = params[i];
    }
    p[n] = text;
    xs_err e = xs_pg_exec(pg, out, sql, n + 1, p);
    free(text);
    return e;
}

xs_err step_item_errors(xs_svc_ctx *ctx, const step_req *req, const char *entity,
                        const json_t *errors)
{
    if (json_array_size(errors) == 0 || req->run_id == NULL) {
        return XS_OK;
    }
    const char *p[] = {req->run_id, req->step_id > 0 ? req->step : NULL, entity};
    return step_exec_json(
        ctx->pg, NULL,
        "INSERT INTO sync.run_item_errors (run_id, step_id, entity, local_id, xero_id, "
        "message) SELECT $1, $2, $3, r.local_id, r.xero_id, r.message FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, message text)",
        3, p, errors);
}

void step_item_error(json_t *errors, const char *local_id, const char *xero_id, const char *msg)
{
    json_array_append_new(errors, json_pack("{s:s?, s:s?, s:s}", "local_id", local_id, "xero_id",
                                            xero_id, "message", msg));
}

void step_refresh_stats(xs_svc_ctx *ctx, const xs_entity_ops *ops, size_t written)
{
    static _Atomic int64_t since_last, before;
    if (written == 0 || ops->analyze == NULL) {
        return;
    }
    int64_t now = atomic_fetch_add(&since_last, (int64_t)written) + (int64_t)written;
    int64_t was = atomic_load(&before);
    if (now < ANALYZE_MIN_ROWS || (now < was && now < ANALYZE_MAX_ROWS)) {
        return;
    }
    int64_t expected = now;
    if (!atomic_compare_exchange_strong(&since_last, &expected, 0)) {
        return; /* another worker wrote meanwhile; it sees the sum */
    }
    atomic_store(&before, was + now);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "ANALYZE %s, sync.mappings (connection_id, entity, local_id, xero_id, "
             "local_updated_at)",
             ops->analyze);
    if (xs_pg_begin(ctx->pg) != XS_OK ||
        xs_pg_q0(ctx->pg, NULL, "SET LOCAL default_statistics_target = " ANALYZE_TARGET) != XS_OK ||
        xs_pg_q0(ctx->pg, NULL, sql) != XS_OK || xs_pg_commit(ctx->pg) != XS_OK) {
        xs_log_warn(ctx->proc->log, "sync.analyze_failed", "{s:s}", "error", xs_pg_error(ctx->pg));
        xs_pg_rollback(ctx->pg);
    }
}

void step_new_txid(const step_req *req, char *buf, size_t cap)
{
    char *tok = NULL;
    if (xs_crypto_random_token(6, &tok) != XS_OK) {
        tok = NULL;
    }
    snprintf(buf, cap, "s%lld.%s", (long long)req->step_id, tok != NULL ? tok : "x");
    free(tok);
}

xs_err step_outcome_reply(const char *outcome, json_t *counts, const xs_xero_call *call,
                          const char *message, json_t **reply)
{
    *reply = json_pack("{s:s, s:o, s:o, s:s}", "outcome", outcome, "counts", counts, "call",
                       step_call_json(call), "message", message != NULL ? message : "");
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

const char *const STEP_PULL_COUNTS[] = {"fetched",   "created", "updated",  "unchanged",
                                        "conflicts", "failed",  "skipped",  "linked",
                                        "queued",    "retired", "deferred", NULL};

const char *const STEP_PUSH_COUNTS[] = {"sent",     "created", "updated",  "unchanged", "failed",
                                        "skipped",  "retired", "deferred", "linked",    "held",
                                        "in_doubt", "reread",  NULL};
