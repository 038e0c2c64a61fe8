/*
 * sim_files_test.c: the Files API (files.xro/1.0) of xero-sim over real HTTP: folders and
 * the Inbox, multipart uploads as the SDKs send them, reading, renaming, moving and deleting
 * files, the bytes stored exactly, associations checked against the tenant's accounting
 * records, the limits (size, type, empty, names), scopes and the order of the checks, the
 * rate limits shared with the Accounting API, Idempotency-Key replays, injected faults (an
 * applied_5xx or a lost reply leaves exactly one file), /_sim/files and /_sim/reset, the
 * configuration's validation, and garbage bodies that must not crash it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "simtest.h"
#include "xs/config.h"
#include "xs/crypto.h"
#include "xs/json.h"

#define FILES_SCOPE                                                                                \
    "openid profile email offline_access accounting.contacts accounting.transactions "             \
    "accounting.settings files"
#define BOUNDARY "----xsFilesTestBoundary7MA4YWxkTrZu0gW"

static st_sim *t;

static int setup(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_FILES_MAX_SIZE=4096", NULL};
    t = st_start(env);
    st_connect_scope(t, FILES_SCOPE);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(t);
    return 0;
}

/* reset returns the simulator to its start and connects again with the Files scope. */
static void reset(void)
{
    json_decref(st_ctl(t, "POST", "/_sim/reset", NULL, 200));
    st_connect_scope(t, FILES_SCOPE);
}

/* files_req calls the Files API (path after /files.xro/1.0) with the token and tenant; body
 * of len bytes (SIZE_MAX: text) with content type ctype (NULL: none); extra may be NULL. */
static st_reply files_req(const char *method, const char *path, const char *body, size_t len,
                          const char *ctype, const char *const *extra)
{
    char auth[4200], ten[80], ct[200], full[1024];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *h[16] = {auth, ten, "Accept: application/json"};
    size_t n = 3;
    if (ctype != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h[n++] = ct;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++) {
        h[n++] = extra[i];
    }
    h[n] = NULL;
    snprintf(full, sizeof(full), "/files.xro/1.0%s", path);
    if (body == NULL) {
        return st_req(t, method, full, NULL, h, 0);
    }
    return st_req_bytes(t, method, full, body, len == SIZE_MAX ? strlen(body) : len, h, 0);
}

/* expect makes a Files API call without a body and checks its status. */
static void expect(const char *method, const char *path, long status)
{
    st_reply r = files_req(method, path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, status);
    st_reply_free(&r);
}

static st_reply files_json(const char *method, const char *path, const char *json)
{
    return files_req(method, path, json, SIZE_MAX, "application/json", NULL);
}

/* multipart builds an upload body as the SDKs send it: the "body" part with its filename
 * and content type, then the "name" and "filename" fields (name NULL: left out). New, its
 * length in *len. */
static char *multipart(const char *name, const char *filename, const char *ctype, const char *data,
                       size_t dlen, size_t *len)
{
    size_t cap = dlen + 2048;
    char *b = malloc(cap);
    assert_non_null(b);
    int n = snprintf(b, cap,
                     "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"body\"; "
                     "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n",
                     filename, ctype);
    memcpy(b + n, data, dlen);
    size_t o = (size_t)n + dlen;
    if (name != NULL) {
        o += (size_t)snprintf(b + o, cap - o,
                              "\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; "
                              "name=\"name\"\r\n\r\n%s",
                              name);
    }
    o += (size_t)snprintf(b + o, cap - o,
                          "\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; "
                          "name=\"filename\"\r\n\r\n%s\r\n--" BOUNDARY "--\r\n",
                          filename);
    *len = o;
    return b;
}

/* upload posts a file to path ("/Files" or "/Files/{FolderId}"); extra may be NULL. */
static st_reply upload(const char *path, const char *name, const char *data, size_t dlen,
                       const char *const *extra)
{
    size_t len;
    char *b = multipart(name, name, "application/octet-stream", data, dlen, &len);
    st_reply r = files_req("POST", path, b, len, "multipart/form-data; boundary=" BOUNDARY, extra);
    free(b);
    return r;
}

/* detail returns the detail of a Files API refusal ([{type, title, detail}]), or "". */
static const char *detail(const st_reply *r)
{
    return st_str(json_array_get(r->json, 0), "detail");
}

/* upload_refused uploads a file to the Inbox and checks the 400 whose detail contains want
 * (NULL: any). */
static void upload_refused(const char *name, const char *data, size_t len, const char *want)
{
    st_reply r = upload("/Files", name, data, len, NULL);
    assert_int_equal(r.status, 400);
    if (want != NULL) {
        assert_non_null(strstr(detail(&r), want));
    }
    st_reply_free(&r);
}

/* sim_files returns /_sim/files for the tenant (new). */
static json_t *sim_files(void)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/files?tenant=%s", t->tenant);
    return st_ctl(t, "GET", path, NULL, 200);
}

static size_t files_named(const char *name)
{
    json_t *all = sim_files();
    size_t n = 0, i;
    json_t *f;
    json_array_foreach(json_object_get(all, "files"), i, f)
    {
        n += strcmp(st_str(f, "name"), name) == 0;
    }
    json_decref(all);
    return n;
}

static void test_folders(void **state)
{
    (void)state;
    reset();
    st_reply r = files_req("GET", "/Inbox", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "Name"), "Inbox");
    assert_true(json_is_true(json_object_get(r.json, "IsInbox")));
    assert_non_null(strstr(st_str(r.json, "Email"), "@xerofiles.com"));
    char inbox[64];
    snprintf(inbox, sizeof(inbox), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);

    r = files_json("POST", "/Folders", "{\"Name\":\"Contracts\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "Name"), "Contracts");
    assert_int_equal(json_integer_value(json_object_get(r.json, "FileCount")), 0);
    assert_null(json_object_get(r.json, "Email"));
    char id[64], path[128];
    snprintf(id, sizeof(id), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);

    /* the names Xero refuses: taken (any case), bad characters, empty, too long */
    const char *bad[] = {"{\"Name\":\"contracts\"}",
                         "{\"Name\":\"inbox\"}",
                         "{\"Name\":\"a/b\"}",
                         "{\"Name\":\"what?\"}",
                         "{\"Name\":\"\"}",
                         "{\"Name\":7}",
                         "{}",
                         "[1]",
                         "not json",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        r = files_json("POST", "/Folders", bad[i]);
        assert_int_equal(r.status, 400);
        assert_string_equal(st_str(json_array_get(r.json, 0), "type"), "Validation");
        st_reply_free(&r);
    }
    r = files_json("POST", "/Folders", "{\"Name\":\"a/b\"}");
    assert_string_equal(detail(&r), "Name contains one or more bad characters");
    st_reply_free(&r);
    char longname[400] = "{\"Name\":\"";
    memset(longname + 9, 'n', 256);
    strcpy(longname + 265, "\"}");
    r = files_json("POST", "/Folders", longname);
    assert_int_equal(r.status, 400);
    assert_string_equal(detail(&r), "Name is too long");
    st_reply_free(&r);

    snprintf(path, sizeof(path), "/Folders/%s", id);
    r = files_json("PUT", path, "{\"Name\":\"Signed contracts\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "Name"), "Signed contracts");
    st_reply_free(&r);
    r = files_req("GET", path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "Name"), "Signed contracts");
    st_reply_free(&r);

    char ipath[128];
    snprintf(ipath, sizeof(ipath), "/Folders/%s", inbox);
    r = files_json("PUT", ipath, "{\"Name\":\"Outbox\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(detail(&r), "The Inbox cannot be renamed");
    st_reply_free(&r);
    expect("DELETE", ipath, 400);

    /* GET /Folders: the Inbox first, then by name when asked */
    json_decref(st_ctl(t, "GET", "/_sim/health", NULL, 200));
    r = files_json("POST", "/Folders", "{\"Name\":\"Archive\"}");
    st_reply_free(&r);
    r = files_req("GET", "/Folders", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 3);
    assert_string_equal(st_str(json_array_get(r.json, 0), "Name"), "Inbox");
    st_reply_free(&r);
    r = files_req("GET", "/Folders?sort=Name%20DESC", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(json_array_get(r.json, 0), "Name"), "Signed contracts");
    assert_string_equal(st_str(json_array_get(r.json, 2), "Name"), "Archive");
    st_reply_free(&r);
    expect("GET", "/Folders?sort=Colour", 400);

    /* a folder holding a file cannot be deleted; empty, it can */
    char fpath[128];
    snprintf(fpath, sizeof(fpath), "/Files/%s", id);
    r = upload(fpath, "kept.pdf", "%PDF-1.4", 8, NULL);
    assert_int_equal(r.status, 201);
    assert_string_equal(st_str(r.json, "FolderId"), id);
    char file[64], filepath[128];
    snprintf(file, sizeof(file), "%s", st_str(r.json, "Id"));
    snprintf(filepath, sizeof(filepath), "/Files/%s", file);
    st_reply_free(&r);
    r = files_req("DELETE", path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(detail(&r), "holds 1 file"));
    st_reply_free(&r);
    expect("DELETE", filepath, 204);
    r = files_req("DELETE", path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    st_reply_free(&r);
    r = files_req("GET", path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(st_str(json_array_get(r.json, 0), "type"), "NotFound");
    st_reply_free(&r);
    expect("GET", "/Folders/not-an-id", 404);
}

static void test_files(void **state)
{
    (void)state;
    reset();
    /* bytes with NULs and high bytes come back exactly */
    char data[300];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char)(i * 7);
    }
    st_reply r = upload("/Files", "receipt.PNG", data, sizeof(data), NULL);
    assert_int_equal(r.status, 201);
    assert_string_equal(st_str(r.json, "Name"), "receipt.PNG");
    assert_string_equal(st_str(r.json, "MimeType"), "image/png");
    assert_int_equal(json_integer_value(json_object_get(r.json, "Size")), sizeof(data));
    assert_string_equal(st_str(json_object_get(r.json, "User"), "Name"), "test.user@example.com");
    char id[64], path[160], content[200];
    snprintf(id, sizeof(id), "%s", st_str(r.json, "Id"));
    char created[64];
    snprintf(created, sizeof(created), "%s", st_str(r.json, "CreatedDateUtc"));
    assert_int_equal(strlen(created), 27); /* 2021-02-10T16:02:54.9930000 */
    st_reply_free(&r);
    r = files_req("GET", "/Inbox", NULL, 0, NULL, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "FileCount")), 1);
    char inbox[64];
    snprintf(inbox, sizeof(inbox), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);

    snprintf(content, sizeof(content), "/Files/%s/Content", id);
    r = files_req("GET", content, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, sizeof(data));
    assert_memory_equal(r.body, data, sizeof(data));
    char ct[128];
    assert_string_equal(st_header(&r, "Content-Type", ct, sizeof(ct)), "application/octet-stream");
    st_reply_free(&r);

    /* the stored bytes' SHA-256 in /_sim/files */
    char sha[65];
    xs_sha256_hex(data, sizeof(data), sha);
    json_t *all = sim_files();
    json_t *f0 = json_array_get(json_object_get(all, "files"), 0);
    assert_string_equal(st_str(f0, "sha256"), sha);
    assert_string_equal(st_str(f0, "folder_id"), inbox);
    assert_int_equal(json_integer_value(json_object_get(f0, "size")), sizeof(data));
    json_decref(all);

    /* a mimeType field wins; the part's own content type next */
    size_t len;
    char *b = multipart("notes.txt", "notes.txt", "text/plain; charset=utf-8", "hello", 5, &len);
    r = files_req("POST", "/Files", b, len, "multipart/form-data; boundary=\"" BOUNDARY "\"", NULL);
    free(b);
    assert_int_equal(r.status, 201);
    assert_string_equal(st_str(r.json, "MimeType"), "text/plain");
    char id2[64];
    snprintf(id2, sizeof(id2), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);
    r = upload("/Files", "big.csv", "a,b,c\n1,2,3\n1,2,3\n", 18, NULL);
    assert_int_equal(r.status, 201);
    st_reply_free(&r);

    /* GET /Files: paging and sorting */
    r = files_req("GET", "/Files", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "TotalCount")), 3);
    assert_int_equal(json_integer_value(json_object_get(r.json, "Page")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "PerPage")), 100);
    assert_string_equal(st_str(st_path(r.json, "Items.0"), "Name"), "receipt.PNG");
    st_reply_free(&r);
    r = files_req("GET", "/Files?sort=Size&direction=DESC&pagesize=2&page=1", NULL, 0, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Items")), 2);
    assert_string_equal(st_str(st_path(r.json, "Items.0"), "Name"), "receipt.PNG");
    assert_string_equal(st_str(st_path(r.json, "Items.1"), "Name"), "big.csv");
    st_reply_free(&r);
    r = files_req("GET", "/Files?sort=Name&pagesize=2&page=2", NULL, 0, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Items")), 1);
    assert_string_equal(st_str(st_path(r.json, "Items.0"), "Name"), "receipt.PNG");
    assert_int_equal(json_integer_value(json_object_get(r.json, "TotalCount")), 3);
    st_reply_free(&r);
    const char *badq[] = {"/Files?pagesize=101",
                          "/Files?pagesize=0",
                          "/Files?page=0",
                          "/Files?page=x",
                          "/Files?sort=Colour",
                          "/Files?direction=UP",
                          NULL};
    for (size_t i = 0; badq[i] != NULL; i++) {
        expect("GET", badq[i], 400);
    }

    /* PUT: rename and move; a name without an allowed extension fails as Xero's rename does */
    r = files_json("POST", "/Folders", "{\"Name\":\"Receipts\"}");
    char folder[64];
    snprintf(folder, sizeof(folder), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);
    snprintf(path, sizeof(path), "/Files/%s", id);
    char body[200];
    snprintf(body, sizeof(body), "{\"Name\":\"receipt-1.png\",\"FolderId\":\"%s\"}", folder);
    r = files_json("PUT", path, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "Name"), "receipt-1.png");
    assert_string_equal(st_str(r.json, "FolderId"), folder);
    st_reply_free(&r);
    r = files_json("PUT", path, "{\"Name\":\"FooBar\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(json_array_get(r.json, 0), "type"), "Rename");
    char want[200];
    snprintf(want, sizeof(want), "Unable to rename %s to FooBar", id);
    assert_string_equal(detail(&r), want);
    st_reply_free(&r);
    r = files_json("PUT", path, "{\"FolderId\":\"00000000-0000-0000-0000-000000000001\"}");
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = files_req("GET", path, NULL, 0, NULL, NULL);
    assert_string_equal(st_str(r.json, "Name"), "receipt-1.png");
    st_reply_free(&r);

    /* DELETE, then every route of it is 404 */
    expect("DELETE", path, 204);
    const char *gone[] = {"", "/Content", "/Associations", NULL};
    for (size_t i = 0; gone[i] != NULL; i++) {
        char p[200];
        snprintf(p, sizeof(p), "%s%s", path, gone[i]);
        expect("GET", p, 404);
    }
    r = upload("/Files/00000000-0000-0000-0000-000000000001", "x.pdf", "x", 1, NULL);
    assert_int_equal(r.status, 404);
    st_reply_free(&r);
    /* a method a route does not have, and a path the API does not have */
    r = files_req("PATCH", "/Files", "{}", SIZE_MAX, "application/json", NULL);
    assert_int_equal(r.status, 405);
    st_reply_free(&r);
    expect("GET", "/Nothing/Here", 404);
}

static void test_limits(void **state)
{
    (void)state;
    reset();
    static char big[4097];
    memset(big, 'z', sizeof(big));
    upload_refused("big.pdf", big, 4097, "4097 bytes, over the largest file size of 4096 bytes");
    st_reply r;
    r = upload("/Files", "edge.pdf", big, 4096, NULL);
    assert_int_equal(r.status, 201);
    st_reply_free(&r);
    upload_refused("virus.exe", "MZ", 2, "Extension: exe is not a valid File extension.");
    upload_refused("noextension", "x", 1, NULL);
    upload_refused("empty.pdf", "", 0, "The file empty.pdf is empty");
    upload_refused("a:b.pdf", "x", 1, "bad characters");

    /* malformed multipart: each is a 400 that says why, and nothing is stored */
    const char *ctypes[] = {"application/json", "multipart/form-data",
                            "multipart/form-data; boundary=" BOUNDARY, NULL};
    const char *bodies[] = {
        "{\"Name\":\"x.pdf\"}",
        "--" BOUNDARY
        "\r\nContent-Disposition: form-data; name=\"body\"; filename=\"x.pdf\"\r\n\r\n"
        "abc\r\n--" BOUNDARY "--\r\n",
        "--" BOUNDARY
        "\r\nContent-Disposition: form-data; name=\"body\"; filename=\"x.pdf\"\r\n\r\n"
        "abc",
        "--" BOUNDARY "\r\nContent-Type: text/plain\r\n\r\nabc\r\n--" BOUNDARY "--\r\n",
        "--" BOUNDARY
        "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx.pdf\r\n--" BOUNDARY "--\r\n",
        "--" BOUNDARY
        "\r\nContent-Disposition: form-data; name=\"body\"; filename=\"x.pdf\"\r\nabc",
        "",
        NULL};
    for (size_t i = 0; bodies[i] != NULL; i++) {
        const char *ct = i < 2 ? ctypes[i] : ctypes[2];
        r = files_req("POST", "/Files", bodies[i], SIZE_MAX, ct, NULL);
        assert_int_equal(r.status, 400);
        assert_string_equal(st_str(json_array_get(r.json, 0), "type"), "Validation");
        st_reply_free(&r);
    }
    r = files_req("POST", "/Files", bodies[1], SIZE_MAX, "application/json", NULL);
    assert_non_null(strstr(detail(&r), "not multipart/form-data"));
    st_reply_free(&r);
    json_t *all = sim_files();
    assert_int_equal(json_array_size(json_object_get(all, "files")), 1);
    json_decref(all);
}

static void test_scopes_and_order(void **state)
{
    (void)state;
    reset();
    /* no token: 401; a tenant not connected: 403 */
    st_reply r = st_req(t, "GET", "/files.xro/1.0/Files", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    r = st_req(t, "GET", "/files.xro/1.0/Files", NULL,
               (const char *[]){auth, "xero-tenant-id: 00000000-0000-0000-0000-000000000001", NULL},
               0);
    assert_int_equal(r.status, 403);
    st_reply_free(&r);

    /* files.read: reads only */
    st_connect_scope(t, "openid offline_access accounting.contacts files.read");
    expect("GET", "/Files", 200);
    r = upload("/Files", "a.pdf", "x", 1, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(st_str(r.json, "Detail"), "AuthorizationUnsuccessful");
    st_reply_free(&r);
    r = files_json("POST", "/Folders", "{\"Name\":\"X\"}");
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    /* no Files scope at all: reads refused too */
    st_connect_scope(t, "openid offline_access accounting.contacts");
    expect("GET", "/Inbox", 401);
    st_connect_scope(t, FILES_SCOPE);

    /* the consent page says what the Files scopes allow */
    char path[512] = "/identity/connect/authorize?response_type=code&client_id=xero-sim-client"
                     "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=s&scope=";
    st_urlenc(path, sizeof(path), "openid files files.read");
    r = st_req(t, "GET", path, NULL, (const char *[]){"Accept: text/html", NULL}, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<li>View and manage your files and folders</li>"));
    assert_non_null(strstr(r.body, "<li>View your files and folders</li>"));
    st_reply_free(&r);
}

static void test_rate_limits_shared(void **state)
{
    (void)state;
    reset();
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"minute\":3}}", 200));
    st_reply r = st_api(t, "GET", "/Organisation", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = files_req("GET", "/Inbox", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    char v[32];
    assert_string_equal(st_header(&r, "X-MinLimit-Remaining", v, sizeof(v)), "1");
    st_reply_free(&r);
    expect("GET", "/Files", 200);
    /* the fourth call of the minute, whichever API it is for */
    r = st_api(t, "GET", "/Organisation", NULL, NULL);
    assert_int_equal(r.status, 429);
    st_reply_free(&r);
    r = upload("/Files", "a.pdf", "x", 1, NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(st_header(&r, "X-Rate-Limit-Problem", v, sizeof(v)), "minute");
    st_reply_free(&r);
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"minute\":1000000}}", 200));
    assert_int_equal(files_named("a.pdf"), 0);
}

static void test_idempotency(void **state)
{
    (void)state;
    reset();
    const char *key[] = {"Idempotency-Key: upload-1", NULL};
    st_reply a = upload("/Files", "once.pdf", "%PDF", 4, key);
    assert_int_equal(a.status, 201);
    st_reply b = upload("/Files", "once.pdf", "%PDF", 4, key);
    assert_int_equal(b.status, 201);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.body, b.body, a.len);
    st_reply_free(&b);
    assert_int_equal(files_named("once.pdf"), 1);
    /* the same key with other bytes is refused */
    b = upload("/Files", "once.pdf", "%PDX", 4, key);
    assert_int_equal(b.status, 400);
    st_reply_free(&b);
    /* folders and associations take keys too */
    const char *fk[] = {"Idempotency-Key: folder-1", NULL};
    b = files_req("POST", "/Folders", "{\"Name\":\"Keyed\"}", SIZE_MAX, "application/json", fk);
    assert_int_equal(b.status, 200);
    st_reply_free(&b);
    b = files_req("POST", "/Folders", "{\"Name\":\"Keyed\"}", SIZE_MAX, "application/json", fk);
    assert_int_equal(b.status, 200); /* replayed, not "already exists" */
    st_reply_free(&b);
    st_reply_free(&a);
}

/* script scripts one fault for method on the Files API path. */
static void script(const char *method, const char *path, const char *fault)
{
    char body[400];
    snprintf(body, sizeof(body),
             "{\"script\":[{\"method\":\"%s\",\"path\":\"/files.xro/1.0%s\",\"fault\":\"%s\","
             "\"times\":1}]}",
             method, path, fault);
    json_decref(st_ctl(t, "POST", "/_sim/faults", body, 200));
}

/* lost_then_replayed scripts fault on the next upload, which must be answered with status
 * (0: no reply) yet store the file; the retry with the same Idempotency-Key gets the 201 and
 * the tenant still holds exactly one file of that name. */
static void lost_then_replayed(const char *fault, const char *name, long status)
{
    char key[80];
    snprintf(key, sizeof(key), "Idempotency-Key: %s", name);
    const char *extra[] = {key, NULL};
    script("POST", "/Files", fault);
    st_reply r = upload("/Files", name, "%PDF", 4, extra);
    assert_int_equal(r.status, status);
    st_reply_free(&r);
    assert_int_equal(files_named(name), 1);
    r = upload("/Files", name, "%PDF", 4, extra);
    assert_int_equal(r.status, 201);
    st_reply_free(&r);
    assert_int_equal(files_named(name), 1);
}

static void test_faults(void **state)
{
    (void)state;
    reset();
    /* applied_5xx: the upload is applied, a 504 answered; the retry with its key replays */
    lost_then_replayed("applied_5xx", "gateway.pdf", 504);
    /* a lost reply (connection reset after applying), then the retry */
    t->fresh = true;
    lost_then_replayed("lost", "lost.pdf", 0);
    st_reply r;

    /* truncated and garbled replies: applied, the body unreadable */
    script("POST", "/Folders", "truncated");
    r = files_json("POST", "/Folders", "{\"Name\":\"Cut\"}");
    assert_null(r.json);
    st_reply_free(&r);
    script("GET", "/Inbox", "garbled");
    r = files_req("GET", "/Inbox", NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(r.json);
    st_reply_free(&r);
    /* a 500 and a reset before applying: nothing stored */
    script("POST", "/Files", "500");
    r = upload("/Files", "never.pdf", "%PDF", 4, NULL);
    assert_int_equal(r.status, 500);
    st_reply_free(&r);
    script("POST", "/Files", "reset");
    r = upload("/Files", "never.pdf", "%PDF", 4, NULL);
    assert_int_equal(r.status, 0);
    st_reply_free(&r);
    assert_int_equal(files_named("never.pdf"), 0);
    t->fresh = false;
    json_t *all = sim_files();
    size_t i;
    json_t *d;
    bool cut = false;
    json_array_foreach(json_object_get(all, "folders"), i, d)
    {
        cut = cut || strcmp(st_str(d, "name"), "Cut") == 0;
    }
    assert_true(cut);
    json_decref(all);
}

static void test_associations(void **state)
{
    (void)state;
    reset();
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Filed Co\"}", NULL);
    assert_int_equal(r.status, 200);
    char contact[64];
    snprintf(contact, sizeof(contact), "%s", st_str(st_path(r.json, "Contacts.0"), "ContactID"));
    st_reply_free(&r);
    char inv_body[600];
    snprintf(inv_body, sizeof(inv_body),
             "{\"Type\":\"ACCPAY\",\"Contact\":{\"ContactID\":\"%s\"},\"LineItems\":[{"
             "\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":5,\"AccountCode\":\"429\"}]}",
             contact);
    r = st_api(t, "PUT", "/Invoices", inv_body, NULL);
    assert_int_equal(r.status, 200);
    char invoice[64];
    snprintf(invoice, sizeof(invoice), "%s", st_str(st_path(r.json, "Invoices.0"), "InvoiceID"));
    st_reply_free(&r);

    r = upload("/Files", "bill.pdf", "%PDF", 4, NULL);
    char file[64], path[200], body[300];
    snprintf(file, sizeof(file), "%s", st_str(r.json, "Id"));
    st_reply_free(&r);
    snprintf(path, sizeof(path), "/Files/%s/Associations", file);

    snprintf(body, sizeof(body), "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Contact\"}", contact);
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(st_str(r.json, "ObjectType"), "Business");
    assert_string_equal(st_str(r.json, "FileId"), file);
    st_reply_free(&r);
    /* a second association of the same file and object */
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(detail(&r), "already associated"));
    st_reply_free(&r);
    /* an invoice: its type found; a wrong type, group or object refused */
    snprintf(body, sizeof(body), "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Invoice\"}", contact);
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 400);
    assert_string_equal(detail(&r), "Object is not a Invoice");
    st_reply_free(&r);
    snprintf(body, sizeof(body),
             "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Invoice\",\"ObjectType\":\"AccRec\"}",
             invoice);
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    const char *bad[] = {"{\"ObjectId\":\"x\",\"ObjectGroup\":\"Invoice\"}",
                         "{\"ObjectGroup\":\"Invoice\"}",
                         "{\"ObjectId\":\"%s\"}",
                         "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Widget\"}",
                         "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Invoice\",\"ObjectType\":\"Odd\"}",
                         "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Quote\"}",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        snprintf(body, sizeof(body), bad[i], invoice);
        r = files_json("POST", path, body);
        assert_int_equal(r.status, 400);
        st_reply_free(&r);
    }
    snprintf(body, sizeof(body), "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"invoice\"}", invoice);
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 201);
    assert_string_equal(st_str(r.json, "ObjectType"), "Accpay");
    assert_string_equal(st_str(r.json, "ObjectGroup"), "Invoice");
    st_reply_free(&r);

    r = files_req("GET", path, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    assert_null(json_object_get(json_array_get(r.json, 0), "Name"));
    st_reply_free(&r);
    char opath[200];
    snprintf(opath, sizeof(opath), "/Associations/%s", invoice);
    r = files_req("GET", opath, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(st_str(json_array_get(r.json, 0), "Name"), "bill.pdf");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r.json, 0), "Size")), 4);
    st_reply_free(&r);
    char cpath[300];
    snprintf(cpath, sizeof(cpath), "/Associations/Count?ObjectIds=%s,%s,%s", invoice, contact,
             "00000000-0000-0000-0000-000000000009");
    r = files_req("GET", cpath, NULL, 0, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, invoice)), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, contact)), 1);
    assert_int_equal(
        json_integer_value(json_object_get(r.json, "00000000-0000-0000-0000-000000000009")), 0);
    st_reply_free(&r);
    expect("GET", "/Associations/Count?ObjectIds=nope", 400);
    expect("GET", "/Associations/Count", 400);

    /* /_sim/files shows them; DELETE removes one; again is 404 */
    json_t *all = sim_files();
    assert_int_equal(json_array_size(st_path(all, "files.0.associations")), 2);
    json_decref(all);
    char dpath[300];
    snprintf(dpath, sizeof(dpath), "%s/%s", path, contact);
    expect("DELETE", dpath, 204);
    expect("DELETE", dpath, 404);
    /* applied_5xx on an association: applied once */
    snprintf(body, sizeof(body), "{\"ObjectId\":\"%s\",\"ObjectGroup\":\"Contact\"}", contact);
    script("POST", "/Files/", "applied_5xx");
    r = files_json("POST", path, body);
    assert_int_equal(r.status, 504);
    st_reply_free(&r);
    all = sim_files();
    assert_int_equal(json_array_size(st_path(all, "files.0.associations")), 2);
    json_decref(all);
}

static void test_reset_and_control(void **state)
{
    (void)state;
    reset();
    st_reply r = upload("/Files", "gone.pdf", "%PDF", 4, NULL);
    assert_int_equal(r.status, 201);
    st_reply_free(&r);
    assert_int_equal(files_named("gone.pdf"), 1);
    reset();
    json_t *all = sim_files();
    assert_int_equal(json_array_size(json_object_get(all, "files")), 0);
    assert_int_equal(json_array_size(json_object_get(all, "folders")), 1);
    json_decref(all);
    json_decref(st_ctl(t, "GET", "/_sim/files", NULL, 400));
    json_decref(
        st_ctl(t, "GET", "/_sim/files?tenant=00000000-0000-0000-0000-000000000001", NULL, 404));
}

static void test_config_validated(void **state)
{
    (void)state;
    const char *bad[] = {"XS_SIM_FILES_TYPES=pdf,,png", "XS_SIM_FILES_TYPES=p-d-f",
                         "XS_SIM_FILES_TYPES=abcdefghijk", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        char *env[] = {"XS_LOG_LEVEL=error", "XS_SIM_PORT=0", (char *)bad[i], NULL};
        xs_config *cfg = NULL;
        char err[XS_CONFIG_ERR_MAX];
        assert_int_equal(xs_config_load_from(&cfg, XS_PROC_SIM, env, err), XS_OK);
        sim *s = NULL;
        assert_int_equal(sim_create(&s, cfg, NULL), XS_ECONFIG);
        xs_config_destroy(cfg);
    }
    char *env[] = {"XS_LOG_LEVEL=error", "XS_SIM_PORT=0", "XS_SIM_FILES_MAX_SIZE=0", NULL};
    xs_config *cfg = NULL;
    assert_int_equal(xs_config_load_from(&cfg, XS_PROC_SIM, env, NULL), XS_ECONFIG);
    xs_config_destroy(cfg);
    /* a configured list replaces Xero's */
    const char *only[] = {"XS_SIM_FILES_TYPES=.XML, pdf", NULL};
    st_sim *o = st_start(only);
    st_sim *keep = t;
    t = o;
    st_connect_scope(t, FILES_SCOPE);
    st_reply r = upload("/Files", "data.xml", "<a/>", 4, NULL);
    assert_int_equal(r.status, 201);
    st_reply_free(&r);
    upload_refused("photo.png", "x", 1, NULL);
    t = keep;
    st_stop(o);
}

/* test_garbage: random and hostile bodies and paths never crash the simulator and are
 * answered with a status. */
static void test_garbage(void **state)
{
    (void)state;
    reset();
    uint64_t x = 0x9e3779b97f4a7c15u;
    char body[2048];
    for (int round = 0; round < 150; round++) {
        size_t n = (size_t)(x % sizeof(body));
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body[i] = (char)(x & 0xff);
        }
        /* half of them start like a real upload */
        if (round % 2 == 0 && n > 80) {
            memcpy(body,
                   "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"body\"; filename=\"",
                   strlen("--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"body\"; "
                          "filename=\""));
        }
        const char *paths[] = {"/Files", "/Folders", "/Files/x/Associations",
                               "/Associations/Count"};
        st_reply r = files_req(
            "POST", paths[round % 4], body, n,
            round % 3 == 0 ? "multipart/form-data; boundary=" BOUNDARY : "application/json", NULL);
        assert_true(r.status >= 200 && r.status < 500);
        st_reply_free(&r);
    }
    const char *odd[] = {"/Files//Content",
                         "/Folders/a/b",
                         "/Associations",
                         "/Files/a/Associations/b/c",
                         "",
                         "/",
                         "/Inbox/x",
                         NULL};
    for (size_t i = 0; odd[i] != NULL; i++) {
        st_reply r = files_req("GET", odd[i], NULL, 0, NULL, NULL);
        if (r.status != 404) {
            fprintf(stderr, "GET %s: %ld\n", odd[i], r.status);
        }
        assert_int_equal(r.status, 404);
        st_reply_free(&r);
    }
    /* a NUL in the path: the HTTP layer refuses the target, in Xero's problem form */
    st_reply nul = files_req("GET", "/Files/%00", NULL, 0, NULL, NULL);
    assert_int_equal(nul.status, 400);
    assert_int_equal(json_integer_value(json_object_get(nul.json, "Status")), 400);
    st_reply_free(&nul);
    expect("GET", "/Health", 404);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folders),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_scopes_and_order),
        cmocka_unit_test(test_rate_limits_shared),
        cmocka_unit_test(test_idempotency),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_associations),
        cmocka_unit_test(test_reset_and_control),
        cmocka_unit_test(test_config_validated),
        cmocka_unit_test(test_garbage),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
