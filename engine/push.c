/* push.c: see push.h. */
#include "engine/push.h"

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
#include "engine/batch.h"
#include "engine/lookup.h"
#include "engine/push_reply.h"
#include "engine/push_store.h"
#include "engine/refs.h"
#include "engine/step.h"

xs_err xs_domain_push(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req r;
    if (step_req_read(ctx, msg, &r) != XS_OK) {
        return XS_EINVAL;
    }
    const step_req *req = &r;
    const xs_entity_ops *ops = req->ops;
    if (!ops->info->push) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only",
                                 ops->info->name);
    }
    if (json_object_get(req->msg->body, "lookup_names") != NULL) {
        return push_lookup(ctx, ops, req, reply);
    }
    settings set;
    xs_err e = step_settings_read(ctx, ops, req, &set);
    if (e != XS_OK) {
        return e;
    }
    int64_t stepn = 0, max_calls = 1, calls = 0;
    xs_json_get_int(req->msg->body, "step_id", &stepn);
    xs_json_get_int(req->msg->body, "max_calls", &max_calls);
    char step[24];
    snprintf(step, sizeof(step), "%lld", (long long)stepn);
    json_t *counts = step_counts_new(STEP_PUSH_COUNTS), *errors = json_array();
    push_req p = {.consumed = -1};
    batch b;
    batch_init(&b);
    bool rebuild = false;
    if ((e = push_req_read(ctx, step, &p)) != XS_OK) {
        goto out;
    }
    if (!p.stored) {
        if ((e = push_build_fresh(ctx, ops, req, counts, &b, errors, &p)) != XS_OK) {
            goto out;
        }
        /* Updates decided at a pull a while ago are decided again on what Xero holds now. */
        rebuild = (b.kind == BATCH_UPDATE || b.kind == BATCH_DELETE) &&
                  json_is_true(json_object_get(req->msg->body, "reread"));
    } else if (p.kind == BATCH_CREATE && xs_clock_now() - p.first_ms > push_resend_window(ctx)) {
        e = push_leave_in_doubt(ctx, ops, step, counts, &p, reply);
        goto out;
    } else if (p.kind == BATCH_CREATE) {
        /* Sent again as it is: Xero answers a copy it already took from its memory of the
         * key. Until it is answered, the creates stay in doubt a while longer. */
        char settle[24];
        snprintf(settle, sizeof(settle), "%lld", (long long)push_settle_ms(ctx));
        if ((e = xs_pg_q(ctx->pg, NULL,
                         "UPDATE sync.push_claims SET settled_by = now() + $2::bigint * interval "
                         "'1 millisecond' WHERE step_id = $1",
                         step, settle)) != XS_OK) {
            e = step_db_fail(ctx, e, "cannot mark the creates sent again");
            goto out;
        }
    } else {
        /* An update whose send failed: what Xero holds now decides what is sent again. */
        rebuild = true;
        json_array_extend(b.items, p.items);
        b.kind = p.kind;
    }
    if (rebuild && max_calls >= 2) {
        json_t *xids = push_items_ids(b.items, true), *lids = push_items_ids(b.items, false);
        xs_xero_call call;
        const char *outcome = NULL;
        e = push_reread(ctx, req, &set, ops, xids, counts, &call, &outcome);
        calls++;
        json_decref(xids);
        if (e == XS_OK && outcome != NULL) {
            json_decref(lids);
            *reply = push_reply(outcome, counts, &call, calls, &p);
            if (*reply == NULL) {
                e = XS_ENOMEM;
            } else {
                json_object_set_new(*reply, "message", json_string(call.error));
            }
            goto out;
        }
        batch again;
        batch_init(&again);
        char stop[XS_ID_MAX];
        blocked_ids bids = {0};
        if (e == XS_OK) {
            e = batch_build(ctx, ops, req, step_or_empty(req->org), lids, counts, &again, errors,
                            &bids, stop);
        }
        blocked_fini(&bids);
        json_decref(lids);
        batch_finish(&again);
        batch_fini(&b);
        b = again;
        if (e == XS_OK && json_array_size(b.again) > 0) {
            json_t *all = p.again != NULL ? p.again : json_array();
            json_array_extend(all, b.again);
            p.again = all;
        }
    } else if (rebuild && p.stored) {
        /* No permit for a re-read: sent again as it is (an update applied twice is one). */
        rebuild = false;
    } else if (rebuild) {
        xs_log_debug(ctx->proc->log, "sync.reread_skipped", "{s:s, s:s}", "step", step, "reason",
                     "one permit");
        rebuild = false;
    }
    if (e == XS_OK && (!p.stored || rebuild)) {
        e = push_store_request(ctx, ops, req, step, &b, errors, counts, &p);
        if (e == XS_OK && p.body == NULL) {
            /* Nothing to send: what could not be sent is recorded; a retry's claims go. */
            if (p.stored && ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
                             (e = push_release_claims(ctx, req, step, false)) != XS_OK ||
                             (e = xs_pg_commit(ctx->pg)) != XS_OK)) {
                e = step_db_fail(ctx, e, "cannot let the records go");
                goto out;
            }
            *reply = push_reply("done", counts, NULL, calls, &p);
            e = *reply != NULL ? XS_OK : XS_ENOMEM;
            goto out;
        }
    }
    if (e == XS_OK) {
        e = push_send(ctx, ops, req, step, &p, counts, errors, calls, reply);
    }
out:
    json_decref(counts);
    json_decref(errors);
    batch_fini(&b);
    push_req_fini(&p);
    step_settings_fini(&set);
    return e;
}
