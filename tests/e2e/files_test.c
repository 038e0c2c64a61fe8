/*
 * files_test.c: documents (issue 22, "Files") with the real processes: POST /v1/documents and
 * its refusals (not a form, no organisation, a type Xero Files does not take, over
 * XS_DOCUMENTS_MAX_BYTES, a contact and an invoice at once, an unknown organisation), the
 * document read back whole and listed, and xs-files skipping what Xero Files would refuse
 * (too large, a type it does not take) with its reason and no call, then retry putting it
 * back to pending and queued.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

#define BOUNDARY "xs-test-boundary"

static xst_engine *E;
static char CONN[40], TENANT[40];
static char *ORG;

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
    xst_http r = upload(FORM, org, "notes.txt", "text/plain", "hello, Xero");
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

static void test_skipped_and_retry(void **state)
{
    (void)state;
    long calls = xst_engine_sim_calls(E, "GET /files/Folders", 0);
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
    assert_int_equal(xst_engine_sim_calls(E, "GET /files/Folders", 0), calls);
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

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("files");
    xst_engine_start_sim(E, NULL);
    char *const extra[] = {"XS_DOCUMENTS_MAX_BYTES=2048", NULL};
    xst_engine_start_orchestrator(E, extra);
    xst_engine_start_services(E);
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
        cmocka_unit_test(test_skipped_and_retry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
