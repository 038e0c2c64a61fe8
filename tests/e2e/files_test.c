/*
 * files_test.c: documents (issue 22, "Files") with the real processes: POST /v1/documents and
 * its refusals (not a form, no organisation, a type Xero Files does not take, over
 * XS_DOCUMENTS_MAX_BYTES, a contact and an invoice at once, an unknown organisation), the
 * document read back whole and listed, and xs-files skipping what Xero Files would refuse
 * (too large, a type it does not take) with its reason and no call, then retry putting it
 * back to pending and queued; against xero-sim's Files API: a document into the folder only,
 * the same bytes uploaded once, an applied upload answered 504 and a kill -9 of xs-files with
 * the association held each ending with exactly one file, associated with its contact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

#define BOUNDARY "xs-test-boundary"

static xst_engine *E;
static char CONN[40], TENANT[40];
static char *ORG;
/* xs-files' variables: a document whose upload is in doubt is tried again after a second, not
 * 30; documents stored by path are under DOCS. */
static char DOCS[256], DOCS_ENV[300];
static char *FILES_ENV[] = {"XS_FILES_RETRY_BASE=1s", DOCS_ENV, NULL};

/* upload posts a form of fields (name, value pairs, NULL-ended) and a file part (NULL: none). */
static xst_http upload(const char *ctype, const char *const *fields, const char *filename,
                       const char *file_ctype, const char *data)
{
    char body[16384];
    int n = 0;
    for (size_t i = 0; fields != NULL && fields[i] != NULL; i += 2) {
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n",
                      fields[i], fields[i + 1]);
    }
    if (filename != NULL) {
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"file\"; "
                      "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n%s\r\n",
                      filename, file_ctype, data);
    }
    snprintf(body + n, sizeof(body) - (size_t)n, "--" BOUNDARY "--\r\n");
    char url[256], ct[128];
    snprintf(url, sizeof(url), "%s/v1/documents", E->api);
    snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
    const char *hdr[] = {"Authorization: Bearer " XST_API_KEY, ct, NULL};
    return xst_http_do("POST", url, body, hdr, 60000);
}

static const char FORM[] = "multipart/form-data; boundary=" BOUNDARY;

/* expect_error checks r is the JSON error of status, code and field (NULL: none). */
static void expect_error(xst_http *r, long status, const char *code, const char *field)
{
    if (!xst_http_error_is(r, status, code, NULL)) {
        fail_msg("wanted %ld %s, got %ld %s", status, code, r->status, r->body);
    }
    json_t *f = json_object_get(json_object_get(r->json, "error"), "field");
    if (field != NULL) {
        assert_string_equal(json_string_value(f), field);
    }
    xst_http_free(r);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *org[] = {"organisation_id", ORG, NULL};
    xst_http r = upload("application/json", org, "a.pdf", "application/pdf", "x");
    expect_error(&r, 400, "invalid", NULL);
    r = upload(FORM, NULL, "a.pdf", "application/pdf", "x");
    expect_error(&r, 400, "invalid", "organisation_id");
    r = upload(FORM, org, "a.exe", "application/octet-stream", "MZ");
    expect_error(&r, 415, "unsupported_type", "file");
    char big[3000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    r = upload(FORM, org, "big.txt", "text/plain", big);
    expect_error(&r, 413, "body_too_large", "file");
    r = upload(FORM, org, NULL, NULL, NULL);
    expect_error(&r, 400, "invalid", "file");
    r = upload(FORM, org, "a.pdf", "pdf", "x");
    expect_error(&r, 400, "invalid", "file");
    const char *both[] = {"organisation_id",
                          ORG,
                          "contact_id",
                          "7d0f1c52-4bde-4b1e-9bb0-7a3cf8a0e001",
                          "invoice_id",
                          "7d0f1c52-4bde-4b1e-9bb0-7a3cf8a0e002",
                          NULL};
    r = upload(FORM, both, "a.pdf", "application/pdf", "x");
    expect_error(&r, 400, "invalid", "invoice_id");
    const char *nobody[] = {"organisation_id", "7d0f1c52-4bde-4b1e-9bb0-7a3cf8a0e003", NULL};
    r = upload(FORM, nobody, "a.pdf", "application/pdf", "x");
    expect_error(&r, 404, "not_found", "organisation_id");
    const char *stranger[] = {"organisation_id", ORG, "contact_id",
                              "7d0f1c52-4bde-4b1e-9bb0-7a3cf8a0e004", NULL};
    r = upload(FORM, stranger, "a.pdf", "application/pdf", "x");
    expect_error(&r, 400, "invalid", "contact_id");
    /* Nothing of the refused uploads was stored. */
    assert_int_equal(xst_engine_sql_longf(E, "SELECT count(*) FROM app.documents", 0), 0);
}

static void test_create_read_list(void **state)
{
    (void)state;
    const char *org[] = {"organisation_id", ORG, NULL};
    /* A Content-Type with parameters is stored as its media type. */
    xst_http r = upload(FORM, org, "notes.txt", "Text/Plain; charset=utf-8", "hello, Xero");
    if (r.status != 201) {
        fail_msg("POST /v1/documents: %ld %s", r.status, r.body);
    }
    const char *id = xs_json_str_or(r.json, "id", "");
    assert_string_equal(xs_json_str_or(r.json, "file_name", ""), "notes.txt");
    assert_string_equal(xs_json_str_or(r.json, "mime_type", ""), "text/plain");
    assert_int_equal(json_integer_value(json_object_get(r.json, "size_bytes")), 11);
    /* sha256("hello, Xero") */
    char *sum = xst_engine_sqlf(E, "SELECT encode(sha256('hello, Xero'::bytea), 'hex')", 0);
    assert_string_equal(xs_json_str_or(r.json, "sha256", ""), sum);
    free(sum);
    assert_string_equal(xs_json_str_or(r.json, "stored", ""), "database");
    char path[128];
    snprintf(path, sizeof(path), "/v1/documents/%s", id);
    xst_http g = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(g.status, 200);
    assert_string_equal(xs_json_str_or(g.json, "id", ""), id);
    xst_http_free(&g);
    snprintf(path, sizeof(path), "/v1/documents?organisation_id=%s&limit=10", ORG);
    g = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(g.status, 200);
    json_t *docs = json_object_get(g.json, "documents");
    bool seen = false;
    for (size_t i = 0; i < json_array_size(docs); i++) {
        seen = seen || strcmp(xs_json_str_or(json_array_get(docs, i), "id", ""), id) == 0;
    }
    assert_true(seen);
    xst_http_free(&g);
    g = xst_engine_api(E, "GET", "/v1/documents?status=lost", NULL);
    expect_error(&g, 400, "invalid", "status");
    g = xst_engine_api(E, "GET", "/v1/documents/7d0f1c52-4bde-4b1e-9bb0-7a3cf8a0e005", NULL);
    expect_error(&g, 404, "not_found", NULL);
    xst_http_free(&r);
}

/* wait_status waits until document id has status on the connection; its message (new). */
static char *wait_status(const char *id, const char *status)
{
    for (int i = 0; i < 300; i++) {
        char *msg = xst_engine_sqlf(E,
                                    "SELECT coalesce(message, '') FROM sync.document_pushes WHERE "
                                    "document_id = $1 AND connection_id = $2 AND status = $3",
                                    3, id, CONN, status);
        if (msg != NULL) {
            return msg;
        }
        usleep(100000);
    }
    fail_msg("document %s never became %s", id, status);
    return NULL;
}

/* files_calls counts the calls xero-sim saw that list folders or upload a file. */
static long files_calls(void)
{
    return xst_engine_sim_calls(E, "GET /Folders", 0) +
           xst_engine_sim_calls(E, "POST /Files/{FolderId}", 0);
}

/* sim_files_with counts the tenant's files in xero-sim whose sha256 is sum; *assoc (when not
 * NULL) the associations of the last one, as "Group:Type:ObjectId" in buf. */
static int sim_files_with(const char *sum, char *assoc, size_t cap)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/files?tenant=%s", TENANT);
    json_t *st = xst_engine_sim_json(E, "GET", path, NULL);
    json_t *files = json_object_get(st, "files");
    int n = 0;
    if (assoc != NULL) {
        assoc[0] = '\0';
    }
    for (size_t i = 0; i < json_array_size(files); i++) {
        json_t *f = json_array_get(files, i);
        if (strcmp(xs_json_str_or(f, "sha256", ""), sum) != 0) {
            continue;
        }
        n++;
        json_t *as = json_object_get(f, "associations");
        for (size_t k = 0; assoc != NULL && k < json_array_size(as); k++) {
            json_t *a = json_array_get(as, k);
            size_t len = strlen(assoc);
            snprintf(assoc + len, cap - len, "%s%s:%s:%s", len > 0 ? "," : "",
                     xs_json_str_or(a, "object_group", ""), xs_json_str_or(a, "object_type", ""),
                     xs_json_str_or(a, "object_id", ""));
        }
    }
    json_decref(st);
    return n;
}

/* sha_of is the hex SHA-256 of text (new). */
static char *sha_of(const char *text)
{
    return xst_engine_sqlf(E, "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", 1, text);
}

static void test_skipped_and_retry(void **state)
{
    (void)state;
    long calls = files_calls();
    char *big = xst_engine_sqlf(
        E,
        "INSERT INTO app.documents (organisation_id, file_name, mime_type, size_bytes, sha256, "
        "path) VALUES ($1, 'scan.pdf', 'application/pdf', 20000000, repeat('a', 64), "
        "'scans/scan.pdf') RETURNING id",
        1, ORG);
    char *exe = xst_engine_sqlf(
        E,
        "INSERT INTO app.documents (organisation_id, file_name, mime_type, size_bytes, sha256, "
        "content) VALUES ($1, 'setup.exe', 'application/octet-stream', 2, "
        "encode(sha256('MZ'::bytea), 'hex'), 'MZ'::bytea) RETURNING id",
        1, ORG);
    char *why = wait_status(big, "skipped");
    assert_non_null(strstr(why, "20000000 bytes, over the 10485760 bytes"));
    free(why);
    why = wait_status(exe, "skipped");
    assert_non_null(strstr(why, "does not take files of this type"));
    free(why);
    /* Skipped before any call to Xero Files. */
    assert_int_equal(files_calls(), calls);
    /* Retry: pending and queued at once, then skipped again (the limit is the same). */
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT attempts FROM sync.document_pushes WHERE "
                                          "document_id = $1",
                                          1, big),
                     0);
    char path[128];
    snprintf(path, sizeof(path), "/v1/documents/%s/retry", big);
    xst_http r = xst_engine_api(E, "POST", path, NULL);
    if (r.status != 200) {
        fail_msg("retry: %ld %s", r.status, r.body);
    }
    json_t *c = json_array_get(json_object_get(r.json, "connections"), 0);
    assert_string_equal(xs_json_str_or(c, "status", ""), "pending");
    xst_http_free(&r);
    why = wait_status(big, "skipped");
    free(why);
    /* A document neither failed nor skipped cannot be retried. */
    char *fresh = xst_engine_sqlf(
        E,
        "INSERT INTO sync.document_pushes (connection_id, document_id, status) SELECT $2, id, "
        "'pushed' FROM app.documents WHERE file_name = 'notes.txt' AND organisation_id = $1 "
        "ON CONFLICT (connection_id, document_id) DO UPDATE SET status = 'pushed' RETURNING "
        "document_id",
        2, ORG, CONN);
    snprintf(path, sizeof(path), "/v1/documents/%s/retry", fresh);
    r = xst_engine_api(E, "POST", path, NULL);
    expect_error(&r, 409, "conflict", NULL);
    free(fresh);
    free(big);
    free(exe);
}

/* A document with neither contact nor invoice goes into the folder (settings' default,
 * "<XS_APP_NAME> Uploads"), once, with no association. */
static void test_folder_only(void **state)
{
    (void)state;
    char *id = xst_engine_sqlf(E, "SELECT id FROM app.documents WHERE file_name = 'notes.txt'", 0);
    free(wait_status(id, "pushed"));
    char *sum = sha_of("hello, Xero");
    char assoc[256];
    assert_int_equal(sim_files_with(sum, assoc, sizeof(assoc)), 1);
    assert_string_equal(assoc, "");
    char path[128];
    snprintf(path, sizeof(path), "/_sim/files?tenant=%s", TENANT);
    json_t *st = xst_engine_sim_json(E, "GET", path, NULL);
    json_t *f = json_array_get(json_object_get(st, "files"), 0);
    char *folder = xst_engine_sqlf(E,
                                   "SELECT xero_id FROM sync.document_folders WHERE "
                                   "connection_id = $1 AND name = 'xero-sync Uploads'",
                                   1, CONN);
    assert_non_null(folder);
    assert_string_equal(xs_json_str_or(f, "folder_id", ""), folder);
    char *fid = xst_engine_sqlf(E,
                                "SELECT xero_file_id FROM sync.document_pushes WHERE "
                                "document_id = $1",
                                1, id);
    assert_string_equal(xs_json_str_or(f, "id", ""), fid);
    json_decref(st);
    free(fid);
    free(folder);
    free(sum);
    free(id);
}

/* doc_for posts a text document of text for contact (NULL: none); its id (new). */
static char *doc_for(const char *name, const char *text, const char *contact)
{
    const char *fields[] = {"organisation_id", ORG, contact != NULL ? "contact_id" : NULL, contact,
                            NULL};
    xst_http r = upload(FORM, fields, name, "text/plain", text);
    if (r.status != 201) {
        fail_msg("POST /v1/documents: %ld %s", r.status, r.body);
    }
    char *id = strdup(xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    return id;
}

/* new_contact writes a local contact named name; its id (new). */
static char *new_contact(const char *name)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\",\"name\":\"%s\"}", ORG, name);
    xst_http r = xst_engine_api(E, "POST", "/v1/contacts", body);
    if (r.status != 201) {
        fail_msg("POST /v1/contacts: %ld %s", r.status, r.body);
    }
    char *id = strdup(xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    return id;
}

/* wait_mapped waits until local record id has its mapping (it is in Xero). */
static void wait_mapped(const char *id)
{
    for (int i = 0; i < 300; i++) {
        if (xst_engine_sql_longf(E, "SELECT count(*) FROM sync.mappings WHERE local_id = $1", 1,
                                 id) > 0) {
            return;
        }
        usleep(100000);
    }
    fail_msg("%s never reached Xero", id);
}

static void script(const char *json)
{
    xst_http f = xst_engine_simctl(E, "POST", "/_sim/faults", json);
    if (f.status != 200) {
        fail_msg("/_sim/faults: %ld %s", f.status, f.body);
    }
    xst_http_free(&f);
}

static void unscript(void)
{
    xst_http d = xst_engine_simctl(E, "DELETE", "/_sim/faults", NULL);
    xst_http_free(&d);
}

/* expect_associated_with checks document id is pushed once, associated with the Xero record
 * of local record local of entity as "Group:Type:<its Xero id>" (what: "Contact:Business"). */
static void expect_associated_with(const char *id, const char *text, const char *entity,
                                   const char *local, const char *what)
{
    free(wait_status(id, "pushed"));
    char *xid = xst_engine_sqlf(E,
                                "SELECT xero_id FROM sync.mappings WHERE connection_id = $1 "
                                "AND entity = $2 AND local_id = $3",
                                3, CONN, entity, local);
    assert_non_null(xid);
    char want[128], assoc[256];
    snprintf(want, sizeof(want), "%s:%s", what, xid);
    char *sum = sha_of(text);
    assert_int_equal(sim_files_with(sum, assoc, sizeof(assoc)), 1);
    assert_string_equal(assoc, want);
    free(sum);
    free(xid);
}

/* expect_associated checks document id is pushed once, associated with contact's Xero id. */
static void expect_associated(const char *id, const char *text, const char *contact)
{
    expect_associated_with(id, text, "contact", contact, "Contact:Business");
}

/* A document whose contact Xero has not got (Xero refuses the contact's e-mail address) waits,
 * pending and blocked on it, with nothing uploaded; once the contact is fixed and reaches
 * Xero, its new mapping puts the document back in the outbox, and it is pushed and
 * associated. */
static void test_waits_for_its_contact(void **state)
{
    (void)state;
    char *contact = xst_engine_sqlf(E,
                                    "INSERT INTO app.contacts (organisation_id, name, email) "
                                    "VALUES ($1, 'Kauri Builders', 'office at kauri') RETURNING id",
                                    1, ORG);
    const char *text = "Kauri Builders: building consent";
    char *id = doc_for("kauri.txt", text, contact);
    for (int i = 0; i < 300 && xst_engine_sql_longf(E,
                                                    "SELECT count(*) FROM sync.document_pushes "
                                                    "WHERE document_id = $1 AND status = "
                                                    "'pending' AND blocked_entity = 'contact' AND "
                                                    "blocked_on = $2",
                                                    2, id, contact) == 0;
         i++) {
        usleep(100000);
    }
    assert_true(xst_engine_settle(E, 60000));
    /* Still waiting once every run has ended, and nothing of it in Xero. */
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.document_pushes WHERE "
                                          "document_id = $1 AND status = 'pending' AND "
                                          "blocked_on = $2 AND xero_file_id IS NULL",
                                          2, id, contact),
                     1);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.mappings WHERE "
                                          "connection_id = $1 AND local_id = $2",
                                          2, CONN, contact),
                     0);
    char *sum = sha_of(text);
    assert_int_equal(sim_files_with(sum, NULL, 0), 0);
    xst_http g;
    char path[128];
    snprintf(path, sizeof(path), "/v1/documents/%s", id);
    g = xst_engine_api(E, "GET", path, NULL);
    json_t *c0 = json_array_get(json_object_get(g.json, "connections"), 0);
    assert_string_equal(xs_json_str_or(c0, "status", ""), "pending");
    assert_string_equal(xs_json_str_or(json_object_get(c0, "blocked_on"), "id", ""), contact);
    xst_http_free(&g);
    /* The host application fixes the address: the contact goes, then the document. */
    free(xst_engine_sqlf(E,
                         "UPDATE app.contacts SET email = 'office@kauri.example' WHERE id = $1 "
                         "RETURNING id",
                         1, contact));
    expect_associated(id, text, contact);
    assert_int_equal(sim_files_with(sum, NULL, 0), 1);
    free(sum);
    free(id);
    free(contact);
}

/* write_file writes text into the file at path. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        fail_msg("cannot write %s", path);
    }
}

/* path_doc records a document of the organisation stored at path under XS_DOCUMENTS_DIR,
 * whose bytes are text (its SHA-256 and size); its id (new). */
static char *path_doc(const char *name, const char *path, const char *text)
{
    char size[24];
    snprintf(size, sizeof(size), "%zu", strlen(text));
    return xst_engine_sqlf(E,
                           "INSERT INTO app.documents (organisation_id, file_name, mime_type, "
                           "size_bytes, sha256, path) VALUES ($1, $2, 'text/plain', $3, "
                           "encode(sha256(convert_to($4, 'UTF8')), 'hex'), $5) RETURNING id",
                           5, ORG, name, size, text, path);
}

/* Documents the host application stores as files under XS_DOCUMENTS_DIR: one is pushed with
 * its bytes; one whose path leads out of the folder (a link) and one whose bytes are not
 * those its SHA-256 says fail with their reason, and nothing of them reaches Xero. */
static void test_documents_from_the_folder(void **state)
{
    (void)state;
    char dir[300], file[400];
    snprintf(dir, sizeof(dir), "%s/letters", DOCS);
    assert_int_equal(mkdir(dir, 0700), 0);
    const char *text = "Kowhai Dental: engagement letter, from the folder";
    snprintf(file, sizeof(file), "%s/kowhai.txt", dir);
    write_file(file, text);
    char *id = path_doc("kowhai.txt", "letters/kowhai.txt", text);
    free(wait_status(id, "pushed"));
    char *sum = sha_of(text);
    assert_int_equal(sim_files_with(sum, NULL, 0), 1);
    free(sum);
    free(id);

    /* A link inside the folder to a file outside it. */
    const char *secret = "not for Xero";
    char outside[400];
    snprintf(outside, sizeof(outside), "%s/secret.txt", E->dir);
    write_file(outside, secret);
    snprintf(file, sizeof(file), "%s/outside.txt", DOCS);
    assert_int_equal(symlink(outside, file), 0);
    id = path_doc("outside.txt", "outside.txt", secret);
    char *msg = wait_status(id, "failed");
    if (strstr(msg, "leads out of XS_DOCUMENTS_DIR") == NULL) {
        fail_msg("the reason: %s", msg);
    }
    free(msg);
    free(id);
    sum = sha_of(secret);
    assert_int_equal(sim_files_with(sum, NULL, 0), 0);
    free(sum);

    /* The file changed after its row was written. */
    snprintf(file, sizeof(file), "%s/changed.txt", dir);
    write_file(file, "Kowhai Dental: tampered");
    id = path_doc("changed.txt", "letters/changed.txt", "Kowhai Dental: original");
    msg = wait_status(id, "failed");
    if (strstr(msg, "SHA-256") == NULL) {
        fail_msg("the reason: %s", msg);
    }
    free(msg);
    free(id);
}

/* A document of an invoice: associated with the invoice's Xero record (Invoice, AccRec). */
static void test_invoice_document(void **state)
{
    (void)state;
    char *contact = new_contact("Matai Joinery");
    char body[768];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\","
             "\"reference\":\"DOC-1\",\"status\":\"DRAFT\",\"date\":\"2026-12-01\","
             "\"due_date\":\"2026-12-31\",\"lines\":[{\"description\":\"Joinery\","
             "\"quantity\":1,\"unit_amount\":\"450.00\",\"account_code\":\"200\"}]}",
             ORG, contact);
    xst_http r = xst_engine_api(E, "POST", "/v1/invoices", body);
    if (r.status != 201) {
        fail_msg("POST /v1/invoices: %ld %s", r.status, r.body);
    }
    char *invoice = strdup(xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    const char *text = "Matai Joinery: signed quote";
    const char *fields[] = {"organisation_id", ORG, "invoice_id", invoice, NULL};
    r = upload(FORM, fields, "quote.txt", "text/plain", text);
    if (r.status != 201) {
        fail_msg("POST /v1/documents: %ld %s", r.status, r.body);
    }
    char *id = strdup(xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    expect_associated_with(id, text, "invoice", invoice, "Invoice:AccRec");
    free(id);
    free(invoice);
    free(contact);
}

/* Two documents of the same bytes on one connection: one upload, one file id. */
static void test_same_bytes_once(void **state)
{
    (void)state;
    long uploads = xst_engine_sim_calls(E, "POST /Files/{FolderId}", 0);
    char *a = doc_for("copy-a.txt", "the same bytes twice", NULL);
    char *b = doc_for("copy-b.txt", "the same bytes twice", NULL);
    free(wait_status(a, "pushed"));
    free(wait_status(b, "pushed"));
    assert_int_equal(xst_engine_sim_calls(E, "POST /Files/{FolderId}", 0) - uploads, 1);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(DISTINCT xero_file_id) FROM "
                                          "sync.document_pushes WHERE document_id IN ($1, $2)",
                                          2, a, b),
                     1);
    char *sum = sha_of("the same bytes twice");
    assert_int_equal(sim_files_with(sum, NULL, 0), 1);
    free(sum);
    free(a);
    free(b);
}

/* An upload Xero applied whose reply is a 504: one file in the end, associated. */
static void test_applied_5xx_upload(void **state)
{
    (void)state;
    char *contact = new_contact("Totara Vets");
    wait_mapped(contact);
    script("{\"script\":[{\"method\":\"POST\",\"path\":\"/files.xro/1.0/Files/\",\"fault\":"
           "\"applied_5xx\",\"times\":1}]}");
    long faults = xst_engine_sim_calls(E, "POST /Files/{FolderId}", 504);
    char *id = doc_for("totara.txt", "Totara Vets: invoice scan", contact);
    expect_associated(id, "Totara Vets: invoice scan", contact);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Files/{FolderId}", 504) - faults, 1);
    unscript();
    free(id);
    free(contact);
}

/* kill -9 of xs-files while the association's reply is held (applied, slow): after a
 * restart, exactly one file, associated once. */
static void test_crash_before_association(void **state)
{
    (void)state;
    char *contact = new_contact("Rimu Law");
    wait_mapped(contact);
    /* The upload goes through; the association after it is held. */
    script("{\"script\":[{\"method\":\"POST\",\"path\":\"/files.xro/1.0/Files/\",\"fault\":"
           "\"slow\",\"skip\":1,\"times\":1}]}");
    char *id = doc_for("rimu.txt", "Rimu Law: deed", contact);
    for (int i = 0; i < 300; i++) {
        if (xst_engine_sql_longf(E,
                                 "SELECT count(*) FROM sync.document_pushes WHERE "
                                 "document_id = $1 AND association_sent_at IS NOT NULL",
                                 1, id) == 1) {
            break;
        }
        if (i == 299) {
            fail_msg("the association of %s was never sent", id);
        }
        usleep(100000);
    }
    xst_proc *files = NULL;
    for (int i = 0; i < E->nprocs; i++) {
        if (strncmp(E->procs[i]->name, "files", 5) == 0) {
            files = E->procs[i];
        }
    }
    assert_non_null(files);
    xst_kill9(files);
    xst_engine_forget(E, files);
    xst_proc_free(files);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.document_pushes WHERE "
                                          "document_id = $1 AND associated_at IS NULL",
                                          1, id),
                     1);
    unscript();
    xst_engine_start_service(E, "files", "files-2", FILES_ENV);
    expect_associated(id, "Rimu Law: deed", contact);
    free(id);
    free(contact);
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("files");
    char *const sim[] = {"XS_SIM_HANG=4s", NULL};
    xst_engine_start_sim(E, sim);
    char *const extra[] = {"XS_DOCUMENTS_MAX_BYTES=2048", NULL};
    xst_engine_start_orchestrator(E, extra);
    snprintf(DOCS, sizeof(DOCS), "%s/docs", E->dir);
    snprintf(DOCS_ENV, sizeof(DOCS_ENV), "XS_DOCUMENTS_DIR=%s", DOCS);
    if (mkdir(DOCS, 0700) != 0) {
        fail_msg("mkdir %s", DOCS);
    }
    static const char *const names[] = {"auth",     "contacts", "invoices",
                                        "payments", "files",    "jobs"};
    for (size_t i = 0; i < 6; i++) {
        char replica[32];
        snprintf(replica, sizeof(replica), "%s-1", names[i]);
        xst_engine_start_service(E, names[i], replica,
                                 strcmp(names[i], "files") == 0 ? FILES_ENV : NULL);
    }
    for (size_t i = 0; i < 6; i++) {
        if (!xst_engine_wait_live(E, names[i], 1, 20000)) {
            fail_msg("%s did not come up", names[i]);
        }
    }
    ORG = xst_engine_connected(E, "Files Practice", CONN, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_create_read_list),
        cmocka_unit_test(test_folder_only),
        cmocka_unit_test(test_skipped_and_retry),
        cmocka_unit_test(test_waits_for_its_contact),
        cmocka_unit_test(test_documents_from_the_folder),
        cmocka_unit_test(test_invoice_document),
        cmocka_unit_test(test_same_bytes_once),
        cmocka_unit_test(test_applied_5xx_upload),
        cmocka_unit_test(test_crash_before_association),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
