/* push.c: see push.h. */
#include "engine/push.h"

#include <stdio.h>
#include <string.h>

#include "xs/json.h"

#include "engine/batch.h"
#include "engine/lookup.h"
#include "engine/push_reply.h"
#include "engine/push_store.h"
#include "engine/refs.h"
#include "engine/step.h"

/* push_ask_read decodes sync.push request msg once: the common part into *req, the fields only
 * a push has into *ask (which points at req). It refuses an entity that is not pushed. */
static xs_err push_ask_read(xs_svc_ctx *ctx, const xs_msg *msg, step_req *req, push_ask *ask)
{
    if (step_req_read(ctx, msg, req) != XS_OK) {
        return XS_EINVAL;
    }
    if (!req->ops->info->push) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only",
                                 req->ops->info->name);
    }
    const json_t *body = msg->body;
    *ask = (push_ask){.req = req,
                      .lookup_names = json_object_get(body, "lookup_names"),
                      .local_ids = json_object_get(body, "local_ids"),
                      .scan_after = xs_json_str_or(body, "scan_after", NULL),
                      .max_calls = 1,
                      .reread = json_is_true(json_object_get(body, "reread")),
                      .defer_partial = json_is_true(json_object_get(body, "defer_partial"))};
    xs_json_get_int(body, "max_calls", &ask->max_calls);
    if (req->bearer == NULL && ask->max_calls > 0) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "access_token",
                                 "a push that may call Xero (max_calls %lld) needs an access_token",
                                 (long long)ask->max_calls);
    }
    const char *edits = xs_json_str_or(json_object_get(body, "settings"), "edits", "refuse");
    ask->recreate = strcmp(edits, "recreate") == 0;
    return XS_OK;
}

/* push_resend_creates keeps a stored create's records in doubt a while longer: it is sent
 * again as it is, and Xero answers a copy it already took from its memory of the key. */
static xs_err push_resend_creates(xs_svc_ctx *ctx, const step_req *req)
{
    char settle[24];
    snprintf(settle, sizeof(settle), "%lld", (long long)push_settle_ms(ctx));
    xs_err e = xs_pg_q(ctx->pg, NULL,
                       "UPDATE sync.push_claims SET settled_by = now() + $2::bigint * interval "
                       "'1 millisecond' WHERE step_id = $1",
                       req->step, settle);
    return e != XS_OK ? step_db_fail(ctx, e, "cannot mark the creates sent again") : XS_OK;
}

/* push_redecide re-reads from Xero the records b updates (one call, counted in *calls) and
 * builds the batch again from what Xero holds now (*b replaced; the records of other kinds
 * it meets join p->again). When the re-read gave no usable reply, *reply (new) is the step's
 * answer and b is left as it was. */
static xs_err push_redecide(xs_svc_ctx *ctx, const push_ask *ask, const settings *set, batch *b,
                            push_req *p, json_t *counts, json_t *errors, int64_t *calls,
                            json_t **reply)
{
    const step_req *req = ask->req;
    json_t *xids = push_items_ids(b->items, true), *lids = push_items_ids(b->items, false);
    xs_xero_call call;
    const char *outcome = NULL;
    xs_err e = push_reread(ctx, req, set, req->ops, xids, counts, &call, &outcome);
    (*calls)++;
    json_decref(xids);
    if (e == XS_OK && outcome != NULL) {
        json_decref(lids);
        *reply = push_reply(outcome, counts, &call, *calls, p);
        if (*reply == NULL) {
            return XS_ENOMEM;
        }
        json_object_set_new(*reply, "message", json_string(call.error));
        return XS_OK;
    }
    batch again;
    batch_init(&again);
    char stop[XS_ID_MAX];
    blocked_ids bids = {0};
    if (e == XS_OK) {
        e = batch_build(ctx, req->ops, ask, step_or_empty(req->org), lids, counts, &again, errors,
                        &bids, stop);
    }
    blocked_fini(&bids);
    json_decref(lids);
    batch_finish(&again);
    batch_fini(b);
    *b = again;
    if (e == XS_OK && json_array_size(b->again) > 0) {
        json_t *all = p->again != NULL ? p->again : json_array();
        json_array_extend(all, b->again);
        p->again = all;
    }
    return e;
}

/* push_store_or_end stores the step's request (b) before it is sent; when nothing is left to
 * send, the step ends here: a retry's claims go, and *reply (new) says done. */
static xs_err push_store_or_end(xs_svc_ctx *ctx, const step_req *req, batch *b, push_req *p,
                                json_t *counts, json_t *errors, int64_t calls, json_t **reply)
{
    xs_err e = push_store_request(ctx, req->ops, req, b, errors, counts, p);
    if (e != XS_OK || p->body != NULL) {
        return e;
    }
    /* Nothing to send: what could not be sent is recorded; a retry's claims go. */
    if (p->stored && ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
                      (e = push_release_claims(ctx, req, false)) != XS_OK ||
                      (e = xs_pg_commit(ctx->pg)) != XS_OK)) {
        return step_db_fail(ctx, e, "cannot let the records go");
    }
    *reply = push_reply("done", counts, NULL, calls, p);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

/* push_no_permit refuses a step sent without permits (max_calls 0) that would have to call
 * Xero (what: for what): retryable, so it runs again once it holds one. */
static xs_err push_no_permit(xs_svc_ctx *ctx, const char *what)
{
    xs_err e = xs_svc_fail(ctx, XS_ERATELIMIT, true,
                           "the step holds no permit and %s needs a call to Xero", what);
    snprintf(ctx->field, sizeof(ctx->field), "max_calls");
    return e;
}

/* push_step serves a push of records (not a lookup): the step's stored request or a fresh
 * batch, decided again on Xero's current version when it updates, stored, then sent. */
static xs_err push_step(xs_svc_ctx *ctx, const push_ask *ask, const settings *set, json_t **reply)
{
    const step_req *req = ask->req;
    const xs_entity_ops *ops = req->ops;
    int64_t calls = 0;
    json_t *answer = NULL; /* the step's reply, once one is made */
    json_t *counts = step_counts_new(STEP_PUSH_COUNTS), *errors = json_array();
    push_req p = {.consumed = -1};
    batch b;
    batch_init(&b);
    bool rebuild = false;
    xs_err e = push_req_read(ctx, req->step, &p);
    if (e != XS_OK) {
        goto out;
    }
    if (p.stored && ask->max_calls < 1) {
        e = push_no_permit(ctx, "its stored request");
        goto out;
    }
    if (!p.stored) {
        if ((e = push_build_fresh(ctx, ops, ask, counts, &b, errors, &p)) != XS_OK) {
            goto out;
        }
        if (ask->max_calls < 1 && json_array_size(b.items) > 0) {
            /* No permit, and something to send: nothing is written or counted here; the
             * orchestrator goes on from the same place in a step that holds the permits it
             * needs: one for creates (sent as they are), two for updates (re-read first). */
            answer = json_pack("{s:s, s:o, s:i, s:i}", "outcome", "done", "counts",
                               step_counts_new(STEP_PUSH_COUNTS), "calls", 0, "calls_needed",
                               b.kind == BATCH_CREATE ? 1 : 2);
            e = answer != NULL ? XS_OK : XS_ENOMEM;
            goto out;
        }
        /* Updates decided at a pull a while ago are decided again on what Xero holds now. */
        rebuild = (b.kind == BATCH_UPDATE || b.kind == BATCH_DELETE) && ask->reread;
    } else if (p.kind == BATCH_CREATE && xs_clock_now() - p.first_ms > push_resend_window(ctx)) {
        e = push_leave_in_doubt(ctx, ops, req, counts, &p, &answer);
        goto out;
    } else if (p.kind == BATCH_CREATE) {
        /* Until it is answered, the creates stay in doubt a while longer. */
        if ((e = push_resend_creates(ctx, req)) != XS_OK) {
            goto out;
        }
    } else {
        /* An update whose send failed: what Xero holds now decides what is sent again. */
        rebuild = true;
        json_array_extend(b.items, p.items);
        b.kind = p.kind;
    }
    if (rebuild && ask->max_calls >= 2) {
        e = push_redecide(ctx, ask, set, &b, &p, counts, errors, &calls, &answer);
        if (e != XS_OK || answer != NULL) {
            goto out;
        }
    } else if (rebuild && !p.stored) {
        xs_log_debug(ctx->proc->log, "sync.reread_skipped", "{s:s, s:s}", "step", req->step,
                     "reason", "one permit");
        rebuild = false;
    } else {
        /* No permit for a re-read: a retry is sent again as it is (an update applied twice
         * is one). */
        rebuild = false;
    }
    if (!p.stored || rebuild) {
        e = push_store_or_end(ctx, req, &b, &p, counts, errors, calls, &answer);
        if (e != XS_OK || answer != NULL) {
            goto out;
        }
    }
    e = push_send(ctx, ops, req, &p, counts, errors, calls, &answer);
out:
    if (answer != NULL) {
        *reply = answer;
    }
    json_decref(counts);
    json_decref(errors);
    batch_fini(&b);
    push_req_fini(&p);
    return e;
}

/* scan_position adds to a scan step's reply, when done, where the scan stands for the run's
 * progress: scan_done (the local records it has passed) and left (those after them). Only
 * progress: a failure to count is logged and the reply goes without. */
static void scan_position(xs_svc_ctx *ctx, const step_req *req, json_t *reply)
{
    const char *org = step_or_empty(req->org);
    if (reply == NULL || req->ops->table == NULL || org[0] == '\0' ||
        strcmp(xs_json_str_or(reply, "outcome", ""), "done") != 0 ||
        json_object_get(reply, "calls_needed") != NULL) {
        return;
    }
    int64_t done = 0, left = 0;
    xs_err e = xs_domain_scan_position(ctx->pg, req->ops->table, org,
                                       xs_json_str_or(reply, "next_scan", ""), &done, &left);
    if (e != XS_OK) {
        xs_log_warn(ctx->proc->log, "sync.scan_position", "{s:s, s:s}", "entity",
                    req->ops->info->name, "error", xs_strerror(e));
        return;
    }
    json_object_set_new(reply, "scan_done", json_integer(done));
    json_object_set_new(reply, "left", json_integer(left));
}

xs_err xs_domain_push(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req req;
    push_ask ask;
    xs_err e = push_ask_read(ctx, msg, &req, &ask);
    if (e != XS_OK) {
        return e;
    }
    if (ask.lookup_names != NULL) {
        return ask.max_calls < 1 ? push_no_permit(ctx, "a lookup")
                                 : push_lookup(ctx, req.ops, &ask, reply);
    }
    settings set;
    if ((e = step_settings_read(ctx, req.ops, &req, &set)) == XS_OK) {
        e = push_step(ctx, &ask, &set, reply);
    }
    step_settings_fini(&set);
    if (e == XS_OK && ask.scan_after != NULL) {
        scan_position(ctx, &req, *reply);
    }
    return e;
}
