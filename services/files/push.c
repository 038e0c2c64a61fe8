/* push.c: a sync.push step of documents (files.h). The documents the step names (local_ids)
 * or the next ones a scan finds (scan_after) are taken in turn, each as far as the step's
 * permits (max_calls) allow; those a step could not finish go again in a step of their own
 * (requeue), the rest of a window in the next window (consumed). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "files.h"
#include "xs/json.h"

/* At most this many documents a scan step lists, and a step sends on (requeue). */
#define FILES_SCAN_LIMIT 50

bool files_call_begin(files_step *s)
{
    if (s->left <= 0 || s->token_rejected) {
        return false;
    }
    s->left--;
    s->calls++;
    return true;
}

void files_call_end(files_step *s, const xs_xero_call *call)
{
    step_audit(s->ctx, s->req, call);
    s->last = *call;
    if (call->err == XS_OK && call->status == 401) {
        s->token_rejected = true;
    }
}

/* folder_name writes the step's folder name into s->folder: settings files.folder, else
 * "<XS_APP_NAME> Uploads". */
static void folder_name(files_step *s)
{
    const json_t *set = json_object_get(s->req->msg->body, "settings");
    const char *name = xs_json_str_or(json_object_get(set, "files"), "folder", NULL);
    if (name != NULL) {
        snprintf(s->folder, sizeof(s->folder), "%s", name);
    } else {
        snprintf(s->folder, sizeof(s->folder), "%s Uploads",
                 s->st->app != NULL ? s->st->app : "xero-sync");
    }
}

/* scan_ids lists into *ids (new) the next documents of the step's organisation after `after`
 * that may need work on its connection: never looked at, pending and due, or changed since
 * their status was decided; *next where the scan goes on ("" when it is over). */
static xs_err scan_ids(files_step *s, const char *after, json_t **ids, char *next)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", FILES_SCAN_LIMIT);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        s->ctx->pg, &r,
        "SELECT d.id FROM app.documents d LEFT JOIN sync.document_pushes p ON p.document_id = "
        "d.id AND p.connection_id = $2 WHERE d.organisation_id = $1 AND ($3 = '' OR d.id > "
        "$3::uuid) AND (p.document_id IS NULL OR p.document_updated_at IS DISTINCT FROM "
        "d.updated_at OR (p.status = 'pending' AND coalesce(p.next_attempt_at <= now(), true))) "
        "ORDER BY d.id LIMIT $4::int",
        step_or_empty(s->req->org), s->req->conn, after, lim);
    if (e != XS_OK) {
        return step_db_fail(s->ctx, e, "cannot list the documents");
    }
    int n = xs_pg_res_nrows(r);
    *ids = json_array();
    for (int i = 0; i < n; i++) {
        json_array_append_new(*ids, json_string(xs_pg_res_get(r, i, 0)));
    }
    snprintf(next, XS_ID_MAX, "%s", n == FILES_SCAN_LIMIT ? xs_pg_res_get(r, n - 1, 0) : "");
    xs_pg_res_free(r);
    return XS_OK;
}

/* step_reply makes the step's reply (new) from what it did. */
static json_t *step_reply(files_step *s, json_t *requeue, int64_t consumed, const char *next)
{
    const char *outcome = s->token_rejected ? "token_rejected" : "done";
    json_t *out = json_pack("{s:s, s:O, s:I}", "outcome", outcome, "counts", s->counts, "calls",
                            (json_int_t)s->calls);
    if (out == NULL) {
        return NULL;
    }
    if (s->calls > 0) {
        json_object_set_new(out, "call", step_call_json(&s->last));
    }
    if (s->token_rejected) {
        json_object_set_new(out, "message", json_string("Xero refused the access token"));
        return out;
    }
    if (json_array_size(requeue) > 0) {
        json_object_set(out, "requeue", requeue);
    }
    if (consumed >= 0) {
        json_object_set_new(out, "consumed", json_integer(consumed));
    }
    if (next != NULL) {
        json_object_set_new(out, "next_scan", json_string(next));
    }
    if (s->blocked != NULL) {
        json_object_set(out, "blocked", s->blocked);
    }
    return out;
}

/* work takes the documents ids in turn; those it could not finish (at most FILES_SCAN_LIMIT)
 * go into requeue, and *consumed counts the ids dealt with, requeued ones included. */
static xs_err work(files_step *s, const json_t *ids, json_t *requeue, int64_t *consumed)
{
    size_t n = json_array_size(ids), i = 0;
    for (; i < n && !s->token_rejected; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id == NULL || strlen(id) >= XS_ID_MAX) {
            continue;
        }
        if (json_array_size(requeue) > 0 && s->left <= 0) {
            if (json_array_size(requeue) >= FILES_SCAN_LIMIT) {
                break;
            }
            json_array_append_new(requeue, json_string(id));
            continue;
        }
        files_doc_end end;
        xs_err e = files_doc_push(s, id, &end);
        if (e != XS_OK) {
            return e;
        }
        if (end == FILES_DOC_UNFINISHED) {
            if (json_array_size(requeue) >= FILES_SCAN_LIMIT) {
                break;
            }
            json_array_append_new(requeue, json_string(id));
        }
    }
    *consumed = (int64_t)i;
    return XS_OK;
}

xs_err files_handle_push(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    step_req req;
    xs_err e = step_req_read(ctx, msg, &req);
    if (e != XS_OK) {
        return e;
    }
    if (req.org == NULL || req.conn[0] == '\0') {
        return xs_svc_fail_field(ctx, XS_EINVAL, "organisation_id",
                                 "a push of documents names its organisation and connection");
    }
    files_step s = {.ctx = ctx,
                    .req = &req,
                    .st = ctx->state,
                    .who = {.bearer = req.bearer, .tenant_id = req.tenant_id},
                    .left = 1,
                    .counts = step_counts_new(STEP_PUSH_COUNTS),
                    .errors = json_array()};
    xs_json_get_int(msg->body, "max_calls", &s.left);
    folder_name(&s);
    const char *after = xs_json_str_or(msg->body, "scan_after", NULL);
    json_t *ids = json_object_get(msg->body, "local_ids"), *listed = NULL;
    json_t *requeue = json_array();
    char next[XS_ID_MAX] = "";
    int64_t consumed = 0;
    if (after != NULL) {
        e = scan_ids(&s, after, &listed, next);
        ids = listed;
    }
    if (e == XS_OK) {
        e = work(&s, ids, requeue, &consumed);
    }
    if (e == XS_OK && after != NULL && (size_t)consumed < json_array_size(ids)) {
        /* The scan stopped early: it goes on after the last document it dealt with. */
        snprintf(next, sizeof(next), "%s",
                 consumed > 0 ? json_string_value(json_array_get(ids, (size_t)consumed - 1))
                              : after);
    }
    if (e == XS_OK && (e = step_item_errors(ctx, &req, "document", s.errors)) != XS_OK) {
        e = step_db_fail(ctx, e, "cannot record the documents' errors");
    }
    if (e == XS_OK) {
        /* A scan goes on after what it listed; a window after what it dealt with. */
        *reply =
            step_reply(&s, requeue, after != NULL ? -1 : consumed, after != NULL ? next : NULL);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    json_decref(listed);
    json_decref(requeue);
    json_decref(s.counts);
    json_decref(s.errors);
    json_decref(s.blocked);
    return e;
}
