/* documents.c: see documents.h. */
#include "documents.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/crypto.h"
#include "xs/xero.h"

#define LIST_DEFAULT 50
#define LIST_MAX     200

/* A document as the API shows it, with its status on each connection that looked at it. */
#define DOC_SELECT                                                                                 \
    "SELECT jsonb_build_object('id', d.id, 'organisation_id', d.organisation_id, 'file_name', "    \
    "d.file_name, 'mime_type', d.mime_type, 'size_bytes', d.size_bytes, 'sha256', d.sha256, "      \
    "'stored', CASE WHEN d.content IS NULL THEN 'path' ELSE 'database' END, 'path', d.path, "      \
    "'contact_id', d.contact_id, 'invoice_id', d.invoice_id, 'created_at', "                       \
    "sync.iso(d.created_at), "                                                                     \
    "'updated_at', sync.iso(d.updated_at), 'connections', coalesce((SELECT "                       \
    "jsonb_agg(jsonb_build_object('connection_id', p.connection_id, 'status', p.status, "          \
    "'message', p.message, 'attempts', p.attempts, 'next_attempt_at', "                            \
    "sync.iso(p.next_attempt_at), 'xero_file_id', p.xero_file_id, 'association', CASE WHEN "       \
    "p.object_id IS NULL THEN NULL ELSE jsonb_build_object('object_group', p.object_group, "       \
    "'object_id', p.object_id, 'associated', p.associated_at IS NOT NULL) END, 'blocked_on', "     \
    "CASE WHEN p.blocked_on IS NULL THEN NULL ELSE jsonb_build_object('entity', "                  \
    "p.blocked_entity, 'id', p.blocked_on) END, 'pushed_at', sync.iso(p.pushed_at)) ORDER BY "     \
    "p.connection_id) FROM sync.document_pushes p WHERE p.document_id = d.id), '[]'))::text, "     \
    "d.id FROM app.documents d "

static json_t *doc_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    const char *t = xs_pg_res_get(r, i, 0);
    return t != NULL ? xs_json_parse(t, strlen(t), NULL) : NULL;
}

/* reply_doc answers status with document id. */
static void reply_doc(orch *o, xs_http_req *req, xs_pg *pg, const char *id, int status)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, DOC_SELECT "WHERE d.id = $1", id);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read the document", doc_json);
    if (items == NULL) {
        return;
    }
    json_t *one = json_array_get(items, 0);
    if (one == NULL) {
        xs_http_reply_error(req, 404, "not_found", NULL, "no document %s", id);
    } else {
        xs_http_reply_json(req, status, json_incref(one));
    }
    json_decref(items);
}

/* An upload's form, read. */
typedef struct upload {
    const char *org, *contact, *invoice; /* NUL-terminated copies in text */
    const xs_http_part *file;
    char text[3][40];
} upload;

/* part_uuid copies form field p (a UUID) into buf; false with a 400 answered. */
static bool part_uuid(xs_http_req *req, const xs_http_part *p, char *buf)
{
    if (p->len != 36 || p->filename != NULL) {
        xs_http_reply_error(req, 400, "invalid", p->name, "%s must be a UUID", p->name);
        return false;
    }
    memcpy(buf, p->data, 36);
    buf[36] = '\0';
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? buf[i] != '-' : xs_hex_digit(buf[i]) < 0) {
            xs_http_reply_error(req, 400, "invalid", p->name, "%s must be a UUID", p->name);
            return false;
        }
    }
    return true;
}

/* upload_read reads the form's fields; false with the refusal answered. */
static bool upload_read(orch *o, xs_http_req *req, const xs_http_part *parts, size_t n, upload *u)
{
    memset(u, 0, sizeof(*u));
    static const char *const names[] = {"organisation_id", "contact_id", "invoice_id"};
    const char **slots[] = {&u->org, &u->contact, &u->invoice};
    for (size_t i = 0; i < n; i++) {
        const xs_http_part *p = &parts[i];
        bool known = strcmp(p->name, "file") == 0;
        if (known && u->file != NULL) {
            xs_http_reply_error(req, 400, "invalid", "file", "give one file");
            return false;
        }
        if (known) {
            u->file = p;
        }
        for (size_t k = 0; k < 3 && !known; k++) {
            if (strcmp(p->name, names[k]) == 0) {
                known = true;
                if (*slots[k] != NULL || !part_uuid(req, p, u->text[k])) {
                    if (*slots[k] != NULL) {
                        xs_http_reply_error(req, 400, "invalid", names[k], "%s is given twice",
                                            names[k]);
                    }
                    return false;
                }
                *slots[k] = u->text[k];
            }
        }
        if (!known) {
            xs_http_reply_error(req, 400, "invalid", p->name,
                                "unknown field %.64s: give organisation_id, contact_id or "
                                "invoice_id, and file",
                                p->name);
            return false;
        }
    }
    if (u->org == NULL) {
        xs_http_reply_error(req, 400, "invalid", "organisation_id", "organisation_id is required");
        return false;
    }
    if (u->contact != NULL && u->invoice != NULL) {
        xs_http_reply_error(req, 400, "invalid", "invoice_id",
                            "a document belongs to a contact or to an invoice, not both");
        return false;
    }
    const xs_http_part *f = u->file;
    if (f == NULL || f->filename == NULL || f->filename[0] == '\0' || strlen(f->filename) > 255 ||
        strpbrk(f->filename, "/\\") != NULL) {
        xs_http_reply_error(req, 400, "invalid", "file",
                            f == NULL ? "file is required: a part with a filename"
                                      : "the file needs a file name of 1 to 255 characters "
                                        "without / or \\");
        return false;
    }
    if ((int64_t)f->len > o->documents_max_bytes) {
        xs_http_reply_error(req, 413, "body_too_large", "file",
                            "the file is %zu bytes, over XS_DOCUMENTS_MAX_BYTES (%lld)", f->len,
                            (long long)o->documents_max_bytes);
        return false;
    }
    if (!xs_xero_files_type_ok(f->filename, o->files_types)) {
        xs_http_reply_error(req, 415, "unsupported_type", "file",
                            "Xero Files does not take files of this type; XS_FILES_TYPES: %.300s",
                            o->files_types);
        return false;
    }
    return true;
}

/* media_type writes the media type of a part's Content-Type (NULL: a file's default) into out
 * (128 bytes), lower-case and without its parameters ("text/plain; charset=utf-8" is
 * "text/plain"); false when it is not type/subtype of token characters. */
static bool media_type(const char *ctype, char *out)
{
    const char *s = ctype != NULL ? ctype : "application/octet-stream";
    s += strspn(s, " \t");
    size_t n = strcspn(s, ";");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || n > 127) {
        return false;
    }
    int slash = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        bool tok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$&^_.+-", c);
        if (c == '/' && i > 0 && i + 1 < n) {
            slash++;
        } else if (!tok || c == '\0') {
            return false;
        }
        out[i] = c;
    }
    out[n] = '\0';
    return slash == 1;
}

/* insert_doc stores the upload u in one statement; false with the refusal answered. */
static bool insert_doc(orch *o, xs_http_req *req, xs_pg *pg, const upload *u, char *id)
{
    const xs_http_part *f = u->file;
    char mime[128];
    if (!media_type(f->ctype, mime)) {
        xs_http_reply_error(req, 400, "invalid", "file",
                            "the file part's Content-Type is not a media type (type/subtype)");
        return false;
    }
    char sum[2 * XS_SHA256_LEN + 1], size[24];
    xs_sha256_hex(f->data, f->len, sum);
    snprintf(size, sizeof(size), "%zu", f->len);
    char *hex = malloc(2 * f->len + 1);
    if (hex == NULL) {
        xs_http_reply_error(req, 503, "unavailable", NULL, "out of memory");
        return false;
    }
    xs_hex_encode(f->data, f->len, hex);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "INSERT INTO app.documents (organisation_id, file_name, mime_type, "
                       "size_bytes, sha256, content, contact_id, invoice_id) SELECT $1, $2, "
                       "lower($3), $4, $5, decode($6, 'hex'), $7, $8 FROM app.organisations WHERE "
                       "id = $1 RETURNING id",
                       u->org, f->filename, mime, size, sum, hex, u->contact, u->invoice);
    free(hex);
    if (e != XS_OK) {
        const char *state = xs_pg_sqlstate(pg);
        if (strcmp(state, "23503") == 0) {
            xs_http_reply_error(
                req, 400, "invalid", u->contact != NULL ? "contact_id" : "invoice_id",
                "no such %s in this organisation", u->contact != NULL ? "contact" : "invoice");
        } else if (strcmp(state, "23514") == 0) {
            xs_http_reply_error(req, 400, "invalid", "file",
                                "the file's name or content type is not one a document can have");
        } else {
            orch_api_db_error(o, req, pg, "cannot store the document");
        }
        return false;
    }
    bool made = xs_pg_res_nrows(r) == 1;
    if (made) {
        snprintf(id, 40, "%s", xs_pg_res_get(r, 0, 0));
    } else {
        xs_http_reply_error(req, 404, "not_found", "organisation_id", "no organisation %s", u->org);
    }
    xs_pg_res_free(r);
    return made;
}

void orch_documents_create(xs_http_req *req, void *arg)
{
    orch *o = arg;
    size_t len = 0, n = 0;
    const char *body = xs_http_req_body(req, &len);
    xs_http_part parts[XS_HTTP_PARTS_MAX];
    char why[256];
    if (xs_http_multipart(xs_http_req_header(req, "Content-Type"), body, len, parts, &n, why) !=
        XS_OK) {
        xs_http_reply_error(req, 400, "invalid", NULL, "%s", why);
        return;
    }
    upload u;
    xs_pg *pg = NULL;
    char id[40];
    if (upload_read(o, req, parts, n, &u) && (pg = orch_api_pg(o, req)) != NULL) {
        if (insert_doc(o, req, pg, &u, id)) {
            xs_log_info(o->proc.log, "document.created", "{s:s, s:s, s:I}", "document", id,
                        "organisation", u.org, "size", (json_int_t)u.file->len);
            reply_doc(o, req, pg, id, 201);
        } else {
            xs_pg_pool_release(o->pool, pg);
        }
    }
    xs_http_multipart_free(parts, n);
}

void orch_documents_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    static const char *const statuses[] = {"pending", "pushed", "failed", "skipped", NULL};
    const char *org = NULL, *status = NULL, *after = NULL;
    long limit = LIST_DEFAULT;
    if (!orch_arg_uuid(req, "organisation_id", &org) ||
        !orch_arg_enum(req, "status", statuses, &status) || !orch_arg_uuid(req, "after", &after) ||
        !orch_arg_long(req, "limit", 1, LIST_MAX, &limit)) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    char ls[24];
    snprintf(ls, sizeof(ls), "%ld", limit);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       DOC_SELECT "WHERE ($1::uuid IS NULL OR d.organisation_id = $1) AND "
                                  "($2::text IS NULL OR EXISTS (SELECT 1 FROM "
                                  "sync.document_pushes p WHERE p.document_id = d.id AND "
                                  "p.status = $2)) AND ($3::uuid IS NULL OR d.id > $3) ORDER BY "
                                  "d.id LIMIT $4",
                       org, status, after, ls);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read documents", doc_json);
    if (items == NULL) {
        return;
    }
    orch_api_list_reply(req, items, "documents", limit, "id");
}

void orch_documents_get(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "the document id", &id);
    if (pg != NULL) {
        reply_doc(o, req, pg, id, 200);
    }
}

void orch_documents_retry(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "the document id", &id);
    if (pg == NULL) {
        return;
    }
    /* Back to pending, its tries forgotten, looked at anew (document_updated_at), queued now. */
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "WITH d AS (SELECT id, organisation_id FROM app.documents WHERE id = $1), "
                       "u AS (UPDATE sync.document_pushes p SET status = 'pending', message = "
                       "NULL, attempts = 0, next_attempt_at = NULL, document_updated_at = NULL "
                       "FROM d WHERE p.document_id = d.id AND p.status IN ('failed', 'skipped') "
                       "RETURNING p.connection_id) SELECT (SELECT count(*) FROM d), (SELECT "
                       "count(*) FROM u), (SELECT count(sync.record_change(d.organisation_id, "
                       "'document', d.id, 'update')) FROM d WHERE EXISTS (SELECT 1 FROM u))",
                       id);
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot retry the document");
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    int64_t found = 0, retried = 0;
    xs_pg_res_int(r, 0, 0, &found);
    xs_pg_res_int(r, 0, 1, &retried);
    xs_pg_res_free(r);
    if (found == 0) {
        xs_http_reply_error(req, 404, "not_found", NULL, "no document %s", id);
    } else if (retried == 0) {
        xs_http_reply_error(req, 409, "conflict", NULL,
                            "document %s is neither failed nor skipped on any connection", id);
    } else {
        xs_log_info(o->proc.log, "document.retry", "{s:s, s:I}", "document", id, "connections",
                    (json_int_t)retried);
        reply_doc(o, req, pg, id, 200);
        return;
    }
    xs_pg_pool_release(o->pool, pg);
}

void orch_documents_requeue(orch *o, xs_pg *pg)
{
    xs_pg_res *r = NULL;
    /* One requeue at a time across orchestrators (the lock lasts the statement): two at once
     * would both see no pending change and queue one each. */
    xs_err e = xs_pg_q0(
        pg, &r,
        "WITH l AS MATERIALIZED (SELECT "
        "pg_try_advisory_xact_lock(hashtext('xs_documents_requeue')) "
        "AS got) SELECT count(sync.record_change(d.organisation_id, 'document', d.id, 'update')) "
        "FROM l, sync.document_pushes p JOIN app.documents d ON d.id = p.document_id JOIN "
        "sync.connections c ON c.id = p.connection_id WHERE l.got AND p.status = 'pending' AND "
        "p.next_attempt_at <= now() AND c.status = 'active' AND NOT EXISTS (SELECT 1 FROM "
        "sync.changes x WHERE x.organisation_id = d.organisation_id AND x.entity = 'document' AND "
        "x.local_id = d.id AND x.processed_at IS NULL)");
    if (e != XS_OK) {
        xs_log_warn(o->proc.log, "documents.requeue_failed", "{s:s}", "error", xs_pg_error(pg));
    } else if (strcmp(xs_pg_res_get(r, 0, 0), "0") != 0) {
        xs_log_info(o->proc.log, "documents.requeued", "{s:s}", "count", xs_pg_res_get(r, 0, 0));
    }
    xs_pg_res_free(r);
}
