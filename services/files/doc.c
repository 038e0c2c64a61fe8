/* doc.c: one document of a step (files.h): its limits, its folder, its contact's or invoice's
 * Xero id, its upload (once per connection and SHA-256) and its association, each written
 * down before and after the call that makes it, so a reply lost after Xero applied the call
 * is looked up in Xero before the call is made again. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "files.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "xs/uuid.h"

/* A document as a step reads it. */
typedef struct doc {
    char id[XS_ID_MAX];
    char name[256], mime[128], sha[2 * XS_SHA256_LEN + 1], path[1025], at[64];
    int64_t size;
    bool in_db;                    /* the bytes are in app.documents.content */
    const char *entity;            /* "contact", "invoice", or NULL: only into the folder */
    char local[XS_ID_MAX];         /* the local record it belongs to */
    char xero[XS_ID_MAX];          /* that record's Xero id, "" without a mapping */
    const char *group, *type;      /* the association's ObjectGroup and ObjectType */
    bool has_push, changed, later; /* a status row; changed since it; not due yet */
    char status[16], object_id[XS_ID_MAX];
    char file_id[XS_ID_MAX]; /* the Xero file its association is (or is about to be) of */
    bool assoc_sent, associated;
} doc;

/* How a stage of a document went. */
typedef enum stage {
    STAGE_OK,    /* go on */
    STAGE_WAIT,  /* no permit left (or the token was refused): the document is unfinished */
    STAGE_ENDED, /* its status is recorded for this step */
} stage;

/* How a status write changes the attempts. */
typedef enum tries {
    TRIES_KEEP,    /* as they are */
    TRIES_FAILED,  /* one more, no next attempt */
    TRIES_BACKOFF, /* one more, the next after the back-off */
} tries;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static bool col_bool(const xs_pg_res *r, int col)
{
    bool b = false;
    xs_pg_res_bool(r, 0, col, &b);
    return b;
}

/* doc_load reads document id with its status on the step's connection; *found false when the
 * organisation has no such document (deleted since). */
static xs_err doc_load(files_step *s, const char *id, doc *d, bool *found)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        s->ctx->pg, &r,
        "SELECT d.file_name, d.mime_type, d.size_bytes, d.sha256, d.path, d.content IS NOT NULL, "
        "d.updated_at::text, d.contact_id, d.invoice_id, i.type, mc.xero_id, mi.xero_id, "
        "p.status, p.object_id, p.association_sent_at IS NOT NULL, p.associated_at IS NOT NULL, "
        "coalesce(p.next_attempt_at > now(), false), p.document_updated_at IS DISTINCT FROM "
        "d.updated_at, p.document_id IS NOT NULL, p.xero_file_id FROM app.documents d LEFT JOIN "
        "app.invoices i "
        "ON i.id = d.invoice_id LEFT JOIN sync.mappings mc ON mc.connection_id = $2 AND "
        "mc.entity = 'contact' AND mc.local_id = d.contact_id LEFT JOIN sync.mappings mi ON "
        "mi.connection_id = $2 AND mi.entity = 'invoice' AND mi.local_id = d.invoice_id LEFT "
        "JOIN sync.document_pushes p ON p.connection_id = $2 AND p.document_id = d.id WHERE "
        "d.id = $1 AND d.organisation_id = $3",
        id, s->req->conn, s->req->org);
    if (e != XS_OK) {
        return step_db_fail(s->ctx, e, "cannot read the document");
    }
    *found = xs_pg_res_nrows(r) == 1;
    if (*found) {
        memset(d, 0, sizeof(*d));
        copy(d->id, sizeof(d->id), id);
        copy(d->name, sizeof(d->name), xs_pg_res_get(r, 0, 0));
        copy(d->mime, sizeof(d->mime), xs_pg_res_get(r, 0, 1));
        xs_pg_res_int(r, 0, 2, &d->size);
        copy(d->sha, sizeof(d->sha), xs_pg_res_get(r, 0, 3));
        copy(d->path, sizeof(d->path), xs_pg_res_get(r, 0, 4));
        d->in_db = col_bool(r, 5);
        copy(d->at, sizeof(d->at), xs_pg_res_get(r, 0, 6));
        if (xs_pg_res_get(r, 0, 7) != NULL) {
            d->entity = "contact";
            d->group = "Contact";
            d->type = "Business";
            copy(d->local, sizeof(d->local), xs_pg_res_get(r, 0, 7));
            copy(d->xero, sizeof(d->xero), xs_pg_res_get(r, 0, 10));
        } else if (xs_pg_res_get(r, 0, 8) != NULL) {
            d->entity = "invoice";
            d->group = "Invoice";
            /* The spec's ObjectType of a sales invoice and of a bill. */
            const char *t = xs_pg_res_get(r, 0, 9);
            d->type = t != NULL && strcmp(t, "ACCPAY") == 0 ? "Accpay" : "AccRec";
            copy(d->local, sizeof(d->local), xs_pg_res_get(r, 0, 8));
            copy(d->xero, sizeof(d->xero), xs_pg_res_get(r, 0, 11));
        }
        copy(d->status, sizeof(d->status), xs_pg_res_get(r, 0, 12));
        copy(d->object_id, sizeof(d->object_id), xs_pg_res_get(r, 0, 13));
        d->assoc_sent = col_bool(r, 14);
        d->associated = col_bool(r, 15);
        d->later = col_bool(r, 16);
        d->changed = col_bool(r, 17);
        d->has_push = col_bool(r, 18);
        copy(d->file_id, sizeof(d->file_id), xs_pg_res_get(r, 0, 19));
    }
    xs_pg_res_free(r);
    return XS_OK;
}

/* doc_status records where d stands on the connection: status, message (NULL: none), what it
 * waits for (NULL: nothing), the attempts, and, once pushed, its bytes and Xero file. */
static xs_err doc_status(files_step *s, const doc *d, const char *status, const char *message,
                         tries t, const char *file_id)
{
    static const char *const names[] = {"keep", "failed", "backoff"};
    char base[24], max[24];
    snprintf(base, sizeof(base), "%lld", (long long)s->st->retry_base_ms);
    snprintf(max, sizeof(max), "%lld", (long long)s->st->retry_max_ms);
    bool waits = strcmp(status, "pending") == 0 && d->entity != NULL && d->xero[0] == '\0';
    const char *pushed = strcmp(status, "pushed") == 0 ? "t" : "f";
    xs_err e = xs_pg_q(
        s->ctx->pg, NULL,
        "INSERT INTO sync.document_pushes AS p (connection_id, document_id, status, message, "
        "blocked_entity, blocked_on, attempts, next_attempt_at, document_updated_at, sha256, "
        "xero_file_id, pushed_at) VALUES ($1, $2, $3, $4, $5, $6::uuid, CASE WHEN $7 = 'keep' "
        "THEN 0 ELSE 1 END, CASE WHEN $7 = 'backoff' THEN now() + $8::bigint * interval '1 "
        "millisecond' END, $10::timestamptz, CASE WHEN $11::boolean THEN $12 END, $13::uuid, "
        "CASE WHEN $11::boolean THEN now() END) ON CONFLICT (connection_id, document_id) DO "
        "UPDATE SET status = excluded.status, message = excluded.message, blocked_entity = "
        "excluded.blocked_entity, blocked_on = excluded.blocked_on, attempts = p.attempts + "
        "CASE WHEN $7 = 'keep' THEN 0 ELSE 1 END, next_attempt_at = CASE WHEN $7 = 'backoff' "
        "THEN now() + least($9::bigint, $8::bigint * (2 ^ least(p.attempts, 20))::bigint) * "
        "interval '1 millisecond' END, document_updated_at = excluded.document_updated_at, "
        "sha256 = coalesce(excluded.sha256, p.sha256), xero_file_id = "
        "coalesce(excluded.xero_file_id, p.xero_file_id), pushed_at = coalesce(excluded.pushed_at, "
        "p.pushed_at)",
        s->req->conn, d->id, status, message, waits ? d->entity : NULL, waits ? d->local : NULL,
        names[t], base, max, d->at, pushed, d->sha, file_id);
    if (e != XS_OK) {
        return step_db_fail(s->ctx, e, "cannot record the document's status");
    }
    const char *labels[] = {"status", status, NULL};
    xs_svc_count(s->ctx, "documents", labels, 1);
    return XS_OK;
}

/* doc_end records a final status (skipped, failed) with its reason, as an item error too. */
static stage doc_end(files_step *s, const doc *d, const char *status, const char *why, xs_err *e)
{
    *e = doc_status(s, d, status, why, strcmp(status, "failed") == 0 ? TRIES_FAILED : TRIES_KEEP,
                    NULL);
    step_count(s->counts, status, 1);
    step_item_error(s->errors, d->id, NULL, why);
    return STAGE_ENDED;
}

/* call_failed ends document d after a call that did not give a usable reply (what: the
 * operation, for the message): a refused token stops the step; a failure that may pass (no
 * or a garbled reply, 429, 5xx, 409 of a keyed write still being applied) leaves it pending
 * until its back-off has passed; anything else Xero refused fails it with Xero's message. */
static stage call_failed(files_step *s, const doc *d, const xs_xero_call *call, const char *what,
                         xs_err *e)
{
    *e = XS_OK;
    if (s->token_rejected) {
        return STAGE_WAIT;
    }
    char msg[XS_XERO_ERROR_MAX + 128];
    snprintf(msg, sizeof(msg), "%s: %s", what,
             call->error[0] != '\0' ? call->error : xs_strerror(call->err));
    if (call->err != XS_OK || xs_xero_retryable(call->err, call->status) || call->status == 409) {
        *e = doc_status(s, d, "pending", msg, TRIES_BACKOFF, NULL);
        step_count(s->counts, "deferred", 1);
        return STAGE_ENDED;
    }
    return doc_end(s, d, "failed", msg, e);
}

/* key writes the Idempotency-Key of an operation on the step's connection (parts: what it is
 * about) into buf (128 bytes, Xero's maximum). */
static void key(const files_step *s, const char *op, const char *a, const char *b, char *buf)
{
    snprintf(buf, 129, "xs-%s-%s-%s%s%s", op, s->req->conn, a, b != NULL ? "-" : "",
             b != NULL ? b : "");
}

/* folder_remember keeps the folder's Xero id for the connection. */
static xs_err folder_remember(files_step *s, const char *id)
{
    copy(s->folder_id, sizeof(s->folder_id), id);
    xs_err e = xs_pg_q(s->ctx->pg, NULL,
                       "INSERT INTO sync.document_folders (connection_id, name, xero_id) VALUES "
                       "($1, $2, $3) ON CONFLICT (connection_id, name) DO UPDATE SET xero_id = "
                       "excluded.xero_id",
                       s->req->conn, s->folder, id);
    return e != XS_OK ? step_db_fail(s->ctx, e, "cannot remember the folder") : XS_OK;
}

/* folder_find looks the folder up among Xero's (the Inbox aside) into s->folder_id. */
static stage folder_find(files_step *s, const doc *d, xs_err *e)
{
    json_t *all = NULL;
    xs_xero_call call;
    *e = XS_OK;
    if (!files_call_begin(s)) {
        return STAGE_WAIT;
    }
    xs_xero_files_folders(step_xero(s->ctx), &s->who, &all, &call);
    files_call_end(s, &call);
    if (all == NULL) {
        return call_failed(s, d, &call, "Xero did not list its folders", e);
    }
    size_t i;
    json_t *f;
    json_array_foreach(all, i, f)
    {
        const char *id = xs_json_str_or(f, "Id", NULL);
        if (id != NULL && xs_uuid_valid(id) && !json_is_true(json_object_get(f, "IsInbox")) &&
            strcasecmp(xs_json_str_or(f, "Name", ""), s->folder) == 0) {
            *e = folder_remember(s, id);
            break;
        }
    }
    json_decref(all);
    return STAGE_OK;
}

/* folder_ensure finds the step's folder: remembered, else found in Xero, else created. */
static stage folder_ensure(files_step *s, const doc *d, xs_err *e)
{
    *e = XS_OK;
    if (s->folder_id[0] != '\0') {
        return STAGE_OK;
    }
    char why[XS_XERO_ERROR_MAX];
    if (!xs_xero_files_folder_ok(s->folder, why)) {
        char msg[XS_XERO_ERROR_MAX + 64];
        snprintf(msg, sizeof(msg), "the folder name in setting files.folder: %s", why);
        return doc_end(s, d, "failed", msg, e);
    }
    xs_pg_res *r = NULL;
    if ((*e = xs_pg_q(s->ctx->pg, &r,
                      "SELECT xero_id FROM sync.document_folders WHERE connection_id = $1 AND "
                      "name = $2",
                      s->req->conn, s->folder)) != XS_OK) {
        *e = step_db_fail(s->ctx, *e, "cannot read the folder");
        return STAGE_ENDED;
    }
    if (xs_pg_res_nrows(r) == 1) {
        copy(s->folder_id, sizeof(s->folder_id), xs_pg_res_get(r, 0, 0));
    }
    xs_pg_res_free(r);
    if (s->folder_id[0] != '\0') {
        return STAGE_OK;
    }
    stage st = folder_find(s, d, e);
    if (st != STAGE_OK || *e != XS_OK || s->folder_id[0] != '\0') {
        return st;
    }
    char k[129], sum[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(s->folder, strlen(s->folder), sum);
    sum[32] = '\0';
    key(s, "folder", sum, NULL, k);
    if (!files_call_begin(s)) {
        return STAGE_WAIT;
    }
    json_t *made = NULL;
    xs_xero_call call;
    xs_xero_files_folder_create(step_xero(s->ctx), &s->who, s->folder, k, &made, &call);
    files_call_end(s, &call);
    const char *id = xs_json_str_or(made, "Id", NULL);
    if (id == NULL || !xs_uuid_valid(id)) {
        json_decref(made);
        if (call.err == XS_OK && call.status >= 200 && call.status <= 299) {
            call.err = XS_EPROTO;
            snprintf(call.error, sizeof(call.error), "the new folder has no Id");
        }
        return call_failed(s, d, &call, "Xero did not create the folder", e);
    }
    *e = folder_remember(s, id);
    json_decref(made);
    return STAGE_OK;
}

/* read_file reads d's file under dir into *out (new) and *len, refusing a path that leads out
 * of dir (after links) and a file larger than d says; false with why (256 bytes). */
static bool read_file(const char *dir, const doc *d, uint8_t **out, size_t *len, char *why)
{
    char root[PATH_MAX], full[PATH_MAX + 1100], real[PATH_MAX];
    if (dir == NULL || realpath(dir, root) == NULL) {
        snprintf(why, 256, "the document's file %.100s cannot be read: XS_DOCUMENTS_DIR %s",
                 d->path, dir == NULL ? "is not set" : "does not exist");
        return false;
    }
    snprintf(full, sizeof(full), "%s/%s", root, d->path);
    if (realpath(full, real) == NULL) {
        snprintf(why, 256, "the document's file %.100s cannot be read: %s", d->path,
                 strerror(errno));
        return false;
    }
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0 || real[n] != '/') {
        snprintf(why, 256, "the document's path %.100s leads out of XS_DOCUMENTS_DIR", d->path);
        return false;
    }
    FILE *f = fopen(real, "rb");
    uint8_t *buf = f != NULL ? malloc((size_t)d->size + 1) : NULL;
    size_t got = buf != NULL ? fread(buf, 1, (size_t)d->size + 1, f) : 0;
    bool err = f == NULL || buf == NULL || ferror(f);
    if (f != NULL) {
        fclose(f);
    }
    if (err || got != (size_t)d->size) {
        snprintf(why, 256, "the document's file %.100s %s", d->path,
                 err ? "cannot be read" : "does not have the document's size");
        free(buf);
        return false;
    }
    *out = buf;
    *len = got;
    return true;
}

/* doc_bytes reads d's bytes (new) and checks them against its SHA-256; XS_EINVAL with why
 * (256 bytes) for a local problem, else a database error. */
static xs_err doc_bytes(files_step *s, const doc *d, uint8_t **out, size_t *len, char *why)
{
    *out = NULL;
    *len = 0;
    if (d->in_db) {
        xs_pg_res *r = NULL;
        xs_err e = xs_pg_q(s->ctx->pg, &r,
                           "SELECT encode(content, 'hex') FROM app.documents WHERE id = $1", d->id);
        if (e != XS_OK) {
            return step_db_fail(s->ctx, e, "cannot read the document's bytes");
        }
        const char *hex = xs_pg_res_get(r, 0, 0);
        e = hex != NULL ? xs_hex_decode(hex, strlen(hex), out, len) : XS_ENOTFOUND;
        xs_pg_res_free(r);
        if (e != XS_OK) {
            snprintf(why, 256, "the document's bytes are gone");
            return XS_EINVAL;
        }
    } else if (!read_file(s->st->dir, d, out, len, why)) {
        return XS_EINVAL;
    }
    char sum[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(*out, *len, sum);
    if (strcmp(sum, d->sha) != 0) {
        snprintf(why, 256, "the document's bytes do not have its SHA-256 (they have %.16s...)",
                 sum);
        free(*out);
        *out = NULL;
        return XS_EINVAL;
    }
    return XS_OK;
}

/* upload_find looks for a file an upload in doubt may have made: among Xero's newest, one in
 * the folder with the name and size sent. *found (XS_ID_MAX bytes) its id, or "". */
static stage upload_find(files_step *s, const doc *d, const char *name, int64_t size, char *found,
                         xs_err *e)
{
    *e = XS_OK;
    found[0] = '\0';
    if (!files_call_begin(s)) {
        return STAGE_WAIT;
    }
    json_t *list = NULL;
    xs_xero_call call;
    xs_xero_files_recent(step_xero(s->ctx), &s->who, &list, &call);
    files_call_end(s, &call);
    json_t *items = json_object_get(list, "Items");
    if (list == NULL || !json_is_array(items)) {
        json_decref(list);
        return call_failed(s, d, &call, "Xero did not list its files", e);
    }
    size_t i;
    json_t *f;
    json_array_foreach(items, i, f)
    {
        json_int_t n = -1;
        json_t *sz = json_object_get(f, "Size");
        if (json_is_integer(sz)) {
            n = json_integer_value(sz);
        }
        const char *id = xs_json_str_or(f, "Id", "");
        if (n == size && xs_uuid_valid(id) &&
            strcmp(xs_json_str_or(f, "FolderId", ""), s->folder_id) == 0 &&
            strcmp(xs_json_str_or(f, "Name", ""), name) == 0) {
            copy(found, XS_ID_MAX, id);
            break;
        }
    }
    json_decref(list);
    return STAGE_OK;
}

/* upload_record writes the Xero file id of the connection's upload of d's bytes. */
static xs_err upload_record(files_step *s, const doc *d, const char *file_id)
{
    xs_err e = xs_pg_q(s->ctx->pg, NULL,
                       "UPDATE sync.document_uploads SET xero_file_id = $3 WHERE connection_id = "
                       "$1 AND sha256 = $2",
                       s->req->conn, d->sha, file_id);
    return e != XS_OK ? step_db_fail(s->ctx, e, "cannot record the upload") : XS_OK;
}

/* upload_send uploads d's bytes: the intent is committed first (sent, no file id), then the
 * call; Xero's file id is recorded, a refusal forgets the intent (nothing was made). */
static stage upload_send(files_step *s, const doc *d, char *file_id, xs_err *e)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    char why[256], k[129], size[24];
    if ((*e = doc_bytes(s, d, &bytes, &len, why)) != XS_OK) {
        return *e == XS_EINVAL ? doc_end(s, d, "failed", why, e) : STAGE_ENDED;
    }
    if (!files_call_begin(s)) {
        free(bytes);
        return STAGE_WAIT;
    }
    key(s, "upload", d->sha, NULL, k);
    snprintf(size, sizeof(size), "%lld", (long long)d->size);
    *e =
        xs_pg_q(s->ctx->pg, NULL,
                "INSERT INTO sync.document_uploads (connection_id, sha256, folder_id, file_name, "
                "size_bytes, idempotency_key, sent_at) VALUES ($1, $2, $3, $4, $5, $6, now()) ON "
                "CONFLICT (connection_id, sha256) DO UPDATE SET folder_id = excluded.folder_id, "
                "file_name = excluded.file_name, size_bytes = excluded.size_bytes, sent_at = now()",
                s->req->conn, d->sha, s->folder_id, d->name, size, k);
    if (*e != XS_OK) {
        s->left++;
        s->calls--;
        free(bytes);
        *e = step_db_fail(s->ctx, *e, "cannot record the upload's intent");
        return STAGE_ENDED;
    }
    xs_xero_upload up = {.name = d->name, .mime_type = d->mime, .bytes = bytes, .len = len};
    json_t *made = NULL;
    xs_xero_call call;
    xs_xero_files_upload(step_xero(s->ctx), &s->who, s->folder_id, &up, k, &made, &call);
    free(bytes);
    files_call_end(s, &call);
    const char *id = xs_json_str_or(made, "Id", NULL);
    if (id != NULL && xs_uuid_valid(id)) {
        copy(file_id, XS_ID_MAX, id);
        json_decref(made);
        step_count(s->counts, "created", 1);
        *e = upload_record(s, d, file_id);
        return STAGE_OK;
    }
    json_decref(made);
    if (call.err == XS_OK && call.status >= 200 && call.status <= 299) {
        call.err = XS_EPROTO; /* a success without a file id: in doubt like a lost reply */
        snprintf(call.error, sizeof(call.error), "the uploaded file has no Id");
    }
    if (call.err == XS_OK && !xs_xero_retryable(XS_OK, call.status) && call.status != 409 &&
        call.status != 401) {
        /* Refused: nothing was made, the intent goes. */
        if ((*e = xs_pg_q(s->ctx->pg, NULL,
                          "DELETE FROM sync.document_uploads WHERE connection_id = $1 AND sha256 "
                          "= $2 AND xero_file_id IS NULL",
                          s->req->conn, d->sha)) != XS_OK) {
            *e = step_db_fail(s->ctx, *e, "cannot forget the refused upload");
            return STAGE_ENDED;
        }
    } else if (call.err != XS_OK || call.status >= 500) {
        step_count(s->counts, "in_doubt", 1);
    }
    return call_failed(s, d, &call, "Xero did not take the upload", e);
}

/* upload_ensure gives the Xero file of d's bytes on the connection (file_id, XS_ID_MAX bytes):
 * uploaded before, found in Xero after an upload in doubt, or uploaded now. */
static stage upload_ensure(files_step *s, const doc *d, char *file_id, xs_err *e)
{
    xs_pg_res *r = NULL;
    if ((*e = xs_pg_q(s->ctx->pg, &r,
                      "SELECT xero_file_id, sent_at IS NOT NULL, file_name, size_bytes, folder_id "
                      "FROM sync.document_uploads WHERE connection_id = $1 AND sha256 = $2",
                      s->req->conn, d->sha)) != XS_OK) {
        *e = step_db_fail(s->ctx, *e, "cannot read the upload");
        return STAGE_ENDED;
    }
    bool known = xs_pg_res_nrows(r) == 1, in_doubt = known && col_bool(r, 1);
    copy(file_id, XS_ID_MAX, known ? xs_pg_res_get(r, 0, 0) : NULL);
    char name[256];
    int64_t size = 0;
    copy(name, sizeof(name), known ? xs_pg_res_get(r, 0, 2) : NULL);
    xs_pg_res_int(r, 0, 3, &size);
    bool same_folder = known && strcmp(xs_pg_res_get(r, 0, 4), s->folder_id) == 0;
    xs_pg_res_free(r);
    if (file_id[0] != '\0') {
        step_count(s->counts, "unchanged", 1);
        return STAGE_OK;
    }
    if (in_doubt && same_folder) {
        stage st = upload_find(s, d, name, size, file_id, e);
        if (st != STAGE_OK || *e != XS_OK) {
            return st;
        }
        if (file_id[0] != '\0') {
            xs_log_info(s->ctx->proc->log, "files.upload_found", "{s:s, s:s, s:s}", "document",
                        d->id, "connection", s->req->conn, "file", file_id);
            *e = upload_record(s, d, file_id);
            return STAGE_OK;
        }
    }
    return upload_send(s, d, file_id, e);
}

/* assoc_mark writes the association d is about to get (sent, not yet recorded), or, done,
 * that it has it. */
static xs_err assoc_mark(files_step *s, const doc *d, const char *file_id, bool done)
{
    xs_err e = xs_pg_q(
        s->ctx->pg, NULL,
        "INSERT INTO sync.document_pushes AS p (connection_id, document_id, xero_file_id, "
        "object_group, object_id, association_sent_at, associated_at) VALUES ($1, $2, $3, $4, "
        "$5, now(), CASE WHEN $6::boolean THEN now() END) ON CONFLICT (connection_id, "
        "document_id) DO UPDATE SET xero_file_id = excluded.xero_file_id, object_group = "
        "excluded.object_group, object_id = excluded.object_id, association_sent_at = CASE WHEN "
        "$6::boolean THEN coalesce(p.association_sent_at, now()) ELSE now() END, associated_at = "
        "excluded.associated_at",
        s->req->conn, d->id, file_id, d->group, d->xero, done ? "t" : "f");
    return e != XS_OK ? step_db_fail(s->ctx, e, "cannot record the association") : XS_OK;
}

/* assoc_check asks Xero whether file_id is associated with d's record already (*has). */
static stage assoc_check(files_step *s, const doc *d, const char *file_id, bool *has, xs_err *e)
{
    *has = false;
    *e = XS_OK;
    if (!files_call_begin(s)) {
        return STAGE_WAIT;
    }
    json_t *all = NULL;
    xs_xero_call call;
    xs_xero_files_associations(step_xero(s->ctx), &s->who, file_id, &all, &call);
    files_call_end(s, &call);
    if (all == NULL) {
        return call_failed(s, d, &call, "Xero did not list the file's associations", e);
    }
    size_t i;
    json_t *a;
    json_array_foreach(all, i, a)
    {
        if (strcasecmp(xs_json_str_or(a, "ObjectId", ""), d->xero) == 0) {
            *has = true;
        }
    }
    json_decref(all);
    return STAGE_OK;
}

/* assoc_ensure associates file_id with d's record: recorded before, found in Xero after an
 * association in doubt, or made now. */
static stage assoc_ensure(files_step *s, const doc *d, const char *file_id, xs_err *e)
{
    *e = XS_OK;
    /* The same record and the same file: a document whose bytes changed has a new file, which
     * its record gets too. */
    bool same = strcasecmp(d->object_id, d->xero) == 0 && strcasecmp(d->file_id, file_id) == 0;
    if (same && d->associated) {
        return STAGE_OK;
    }
    if (same && d->assoc_sent) {
        bool has = false;
        stage st = assoc_check(s, d, file_id, &has, e);
        if (st != STAGE_OK || *e != XS_OK) {
            return st;
        }
        if (has) {
            *e = assoc_mark(s, d, file_id, true);
            step_count(s->counts, "linked", 1);
            return STAGE_OK;
        }
    }
    if (!files_call_begin(s)) {
        return STAGE_WAIT;
    }
    if ((*e = assoc_mark(s, d, file_id, false)) != XS_OK) {
        return STAGE_ENDED;
    }
    char k[129];
    key(s, "assoc", file_id, d->xero, k);
    json_t *made = NULL;
    xs_xero_call call;
    xs_xero_files_associate(step_xero(s->ctx), &s->who, file_id, d->xero, d->group, d->type, k,
                            &made, &call);
    files_call_end(s, &call);
    if (made == NULL) {
        return call_failed(s, d, &call, "Xero did not take the association", e);
    }
    json_decref(made);
    *e = assoc_mark(s, d, file_id, true);
    step_count(s->counts, "linked", 1);
    return STAGE_OK;
}

/* doc_limits ends d as skipped when Xero Files would refuse it: too large, a type it does
 * not take. */
static stage doc_limits(files_step *s, const doc *d, xs_err *e)
{
    char why[512];
    if (d->size > s->st->max_bytes) {
        snprintf(why, sizeof(why),
                 "the file is %lld bytes, over the %lld bytes Xero Files takes "
                 "(XS_FILES_MAX_BYTES)",
                 (long long)d->size, (long long)s->st->max_bytes);
        return doc_end(s, d, "skipped", why, e);
    }
    if (!xs_xero_files_type_ok(d->name, s->st->types)) {
        snprintf(why, sizeof(why),
                 "Xero Files does not take files of this type (%.100s; XS_FILES_TYPES: %.300s)",
                 d->name, s->st->types != NULL ? s->st->types : "");
        return doc_end(s, d, "skipped", why, e);
    }
    return STAGE_OK;
}

/* doc_blocked leaves d pending until its contact or invoice has a Xero id; a step that is not
 * the records' last chance reports it blocked, so the orchestrator pushes that record first. */
static xs_err doc_blocked(files_step *s, const doc *d)
{
    char why[160];
    snprintf(why, sizeof(why), "waits for its %s %s to be in Xero", d->entity, d->local);
    xs_err e = doc_status(s, d, "pending", why, TRIES_KEEP, NULL);
    step_count(s->counts, "held", 1);
    if (e != XS_OK || s->req->final) {
        return e;
    }
    if (s->blocked == NULL) {
        s->blocked = json_pack("{s:[], s:{}}", "ids", "on");
    }
    json_t *on = json_object_get(s->blocked, "on");
    json_t *list = json_object_get(on, d->entity);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(on, d->entity, list);
    }
    json_array_append_new(json_object_get(s->blocked, "ids"), json_string(d->id));
    json_array_append_new(list, json_string(d->local));
    return XS_OK;
}

xs_err files_doc_push(files_step *s, const char *id, files_doc_end *end)
{
    *end = FILES_DOC_DONE;
    doc d;
    bool found = false;
    xs_err e = XS_OK;
    if (!xs_uuid_valid(id) || (e = doc_load(s, id, &d, &found)) != XS_OK || !found) {
        return e; /* not a document (deleted since): nothing to do */
    }
    bool settled = strcmp(d.status, "pushed") == 0 || strcmp(d.status, "failed") == 0 ||
                   strcmp(d.status, "skipped") == 0;
    if (d.has_push && !d.changed && settled) {
        step_count(s->counts, "unchanged", 1);
        return XS_OK;
    }
    if (d.has_push && !d.changed && d.later) {
        step_count(s->counts, "deferred", 1); /* its back-off has not passed */
        return XS_OK;
    }
    stage st = doc_limits(s, &d, &e);
    if (st != STAGE_OK || e != XS_OK) {
        return e;
    }
    if (d.entity != NULL && d.xero[0] == '\0') {
        return doc_blocked(s, &d);
    }
    char file_id[XS_ID_MAX] = "";
    if ((st = folder_ensure(s, &d, &e)) == STAGE_OK && e == XS_OK) {
        st = upload_ensure(s, &d, file_id, &e);
    }
    if (st == STAGE_OK && e == XS_OK && d.entity != NULL) {
        st = assoc_ensure(s, &d, file_id, &e);
    }
    if (e != XS_OK || st == STAGE_ENDED) {
        return e;
    }
    if (st == STAGE_WAIT) {
        *end = FILES_DOC_UNFINISHED;
        return XS_OK;
    }
    step_count(s->counts, "sent", 1);
    return doc_status(s, &d, "pushed", NULL, TRIES_KEEP, file_id);
}
