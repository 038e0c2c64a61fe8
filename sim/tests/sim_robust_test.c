/*
 * sim_robust_test.c: xero-sim never crashes and answers in Xero's shapes: malformed and
 * hostile JSON, oversized bodies, bad headers, odd paths and parameters, random bodies, and
 * concurrent writers and readers on one tenant; the HTTP layer's own refusals (a body over
 * its ceiling, a long URL, large headers) answered like Xero under /api.xro/2.0; a batch that
 * fails part-way reported truthfully. Run under ASan+UBSan in CI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "context.h"
#include "kinds.h"
#include "reply.h"
#include "store.h"
#include "util.h"
#include "simtest.h"
#include "xs/http.h"
#include "xs/json.h"

static st_sim *t;

static int setup(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_LIMIT_CONCURRENT=64", NULL};
    t = st_start(env);
    st_connect(t);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(t);
    return 0;
}

static void expect_xero_400(const char *method, const char *path, const char *body, int number)
{
    st_reply r = st_api(t, method, path, body, NULL);
    if (r.status != 400) {
        fprintf(stderr, "%s %s -> %ld %s\n", method, path, r.status, r.body);
    }
    assert_int_equal(r.status, 400);
    assert_non_null(r.json);
    assert_int_equal(json_integer_value(json_object_get(r.json, "ErrorNumber")), number);
    assert_true(strlen(st_str(r.json, "Message")) > 0);
    st_reply_free(&r);
}

static void test_malformed_bodies(void **state)
{
    (void)state;
    expect_xero_400("PUT", "/Contacts", "{\"Contacts\":[{\"Name\":", 14);
    expect_xero_400("PUT", "/Contacts", "", 14);
    expect_xero_400("PUT", "/Contacts", "[1,2,3]", 14);
    expect_xero_400("PUT", "/Contacts", "42", 14);
    expect_xero_400("PUT", "/Contacts", "{\"Contacts\":{}}", 14);
    expect_xero_400("PUT", "/Contacts", "{\"Contacts\":[7]}", 14);
    expect_xero_400("POST", "/Invoices", "{\"Invoices\":[{\"Type\":\"ACCREC\",\"LineItems\":{}}]}",
                    14);
    expect_xero_400("POST", "/Invoices",
                    "{\"Type\":\"ACCREC\",\"LineItems\":[{\"Quantity\":\"lots\"}]}", 14);
    expect_xero_400("POST", "/Invoices", "{\"Type\":\"ACCREC\",\"Date\":\"someday\"}", 14);
    expect_xero_400("POST", "/Invoices", "{\"Type\":\"ACCREC\",\"Contact\":\"x\"}", 14);
    expect_xero_400("PUT", "/Payments", "{\"Amount\":1e400}", 14);
    expect_xero_400("PUT", "/Payments", "{\"Amount\":\"12.3456789\"}", 14);
    expect_xero_400("PUT", "/Contacts", "{\"Name\":\"a\\u0000b\"}", 14);
    expect_xero_400("PUT", "/Contacts", "{\"Name\":\"dup\",\"Name\":\"dup\"}", 14);
    expect_xero_400("PUT", "/Contacts", "{\"Name\":\"\xff\xfe\"}", 14);
    expect_xero_400("PUT", "/Contacts", "{\"ContactID\":\"not-a-guid\",\"Name\":\"x\"}", 14);
    /* nesting far deeper than any record */
    char deep[4200];
    size_t n = 0;
    for (int i = 0; i < 2000; i++) {
        deep[n++] = '[';
    }
    deep[n] = '\0';
    expect_xero_400("PUT", "/Contacts", deep, 14);
    /* long values are validation errors, not crashes */
    char *longname = malloc(70000);
    strcpy(longname, "{\"Name\":\"");
    memset(longname + 9, 'x', 66000);
    strcpy(longname + 9 + 66000, "\"}");
    expect_xero_400("PUT", "/Contacts", longname, 10);
    free(longname);
}

static void test_oversized_body(void **state)
{
    (void)state;
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"max_body\":10000}", 200));
    char *big = malloc(30000);
    strcpy(big, "{\"Contacts\":[");
    size_t n = strlen(big);
    while (n < 20000) {
        n += (size_t)snprintf(big + n, 30000 - n, "{\"Name\":\"c%zu\"},", n);
    }
    strcpy(big + n - 1, "]}");
    st_reply r = st_api(t, "PUT", "/Contacts", big, NULL);
    assert_int_equal(r.status, 413);
    st_reply_free(&r);
    free(big);
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"max_body\":3670016}", 200));
}

static void test_bad_headers_and_params(void **state)
{
    (void)state;
    char longhdr[12000] = "xero-tenant-id: ";
    memset(longhdr + strlen(longhdr), 'a', 8000);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    const char *h1[] = {auth, longhdr, NULL};
    st_reply r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, h1, 0);
    assert_true(r.status == 403 || r.status == 431 || r.status == 400);
    st_reply_free(&r);
    const char *h2[] = {"Authorization: Bearer", NULL};
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, h2, 0);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    const char *h3[] = {"Authorization: Basic !!!",
                        "Content-Type: application/x-www-form-urlencoded", NULL};
    r = st_req(t, "POST", "/connect/token", "grant_type=refresh_token&refresh_token=%zz", h3, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_client");
    st_reply_free(&r);
    r = st_token(t, "grant_type=refresh_token&refresh_token=%zz%00", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = st_token(t, "&&&===&", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    const char *h4[] = {"Idempotency-Key: ", NULL};
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"k\"}", h4);
    assert_true(r.status == 400 || r.status == 200);
    st_reply_free(&r);
    /* odd parameters are tolerated like Xero tolerates them */
    const char *ok[] = {"/Contacts?page=-5",       "/Contacts?page=abc",
                        "/Contacts?pageSize=0",    "/Contacts?pageSize=99999999999999999999",
                        "/Contacts?order=",        "/Contacts?includeArchived=maybe",
                        "/Invoices?Statuses=NOPE", "/Contacts?summaryOnly=true&page=1"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        r = st_api(t, "GET", ok[i], NULL, NULL);
        assert_int_equal(r.status, 200);
        st_reply_free(&r);
    }
    const char *bad[] = {"/Contacts?order=Nope%20ASC", "/Contacts?order=Name%20SIDEWAYS",
                         "/Contacts?where=((((",       "/Contacts?where=Name%3D%3D",
                         "/Contacts?where=%22",        "/Contacts?where=Name.Explode(%22x%22)",
                         "/Invoices?ContactIDs=x,y",   "/Contacts?where=DateTime(1,2)"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = st_api(t, "GET", bad[i], NULL, NULL);
        if (r.status != 400) {
            fprintf(stderr, "%s -> %ld\n", bad[i], r.status);
        }
        assert_int_equal(r.status, 400);
        st_reply_free(&r);
    }
    /* a very long where */
    char *w = malloc(20000);
    strcpy(w, "/Contacts?where=");
    size_t n = strlen(w);
    for (int i = 0; i < 200; i++) { /* about 6 KB: within the client's URL buffer */
        n += (size_t)snprintf(w + n, 20000 - n, "Name%%3D%%3D%%22a%d%%22%%20OR%%20", i);
    }
    strcpy(w + n, "Name%3D%3D%22z%22");
    r = st_api(t, "GET", w, NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    free(w);
}

static void test_odd_paths(void **state)
{
    (void)state;
    const char *paths[] = {"/api.xro/2.0/Nothing", "/api.xro/2.0/Contacts/a/b",
                           "/api.xro/2.0/",        "/api.xro/2.0",
                           "/elsewhere",           "/"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char auth[4200], ten[100];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
        snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
        const char *h[] = {auth, ten, NULL};
        st_reply r = st_req(t, "GET", paths[i], NULL, h, 0);
        assert_int_equal(r.status, 404);
        st_reply_free(&r);
    }
    st_reply r = st_api(t, "DELETE", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 405);
    st_reply_free(&r);
    r = st_api(t, "PATCH", "/Invoices", "{}", NULL);
    assert_int_equal(r.status, 405);
    st_reply_free(&r);
    /* case does not matter to Xero's router */
    r = st_api(t, "GET", "/contacts?page=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    /* a path that tries to climb into the control API does not reach it */
    json_t *before = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    t->raw_path = true;
    r = st_api(t, "POST", "/../../_sim/reset", "{}", NULL);
    t->raw_path = false;
    assert_true(r.status == 404 || r.status == 400);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200); /* no reset happened: the token still works */
    st_reply_free(&r);
    json_t *after = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    assert_int_equal(json_array_size(before), json_array_size(after));
    json_decref(before);
    json_decref(after);
    /* control API errors are JSON */
    json_decref(st_ctl(t, "POST", "/_sim/faults", "{\"script\":[{\"fault\":\"meteor\"}]}", 400));
    json_decref(st_ctl(t, "POST", "/_sim/tenants/xyz/seed", "{}", 404));
}

static void test_random_bodies(void **state)
{
    (void)state;
    unsigned seed = 12345;
    const char *paths[] = {"/Contacts", "/Invoices", "/Payments", "/BankTransactions", "/Accounts"};
    const char *alphabet = "{}[]\":,0123456789.-eE truefalsnul\\\"NameTypeLineItems";
    for (int i = 0; i < 300; i++) {
        char body[300];
        int n = (int)(rand_r(&seed) % 250);
        for (int k = 0; k < n; k++) {
            body[k] = alphabet[rand_r(&seed) % strlen(alphabet)];
        }
        body[n] = '\0';
        st_reply r = st_api(t, i % 2 ? "PUT" : "POST", paths[i % 5], body, NULL);
        assert_true(r.status == 200 || r.status == 400);
        st_reply_free(&r);
    }
    json_t *h = st_ctl(t, "GET", "/_sim/health", NULL, 200);
    json_decref(h);
}

typedef struct worker {
    int id;
    int errors;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    char auth[4200], ten[100];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    hl = curl_slist_append(hl, ten);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    FILE *devnull = fopen("/dev/null", "w");
    for (int i = 0; i < 40; i++) {
        char url[256], body[256];
        bool write = i % 2 == 0;
        snprintf(url, sizeof(url), "%s/api.xro/2.0/%s", t->base,
                 write ? "Contacts" : "Contacts?page=1&order=UpdatedDateUTC");
        snprintf(body, sizeof(body), "{\"Name\":\"Worker %d item %d\"}", w->id, i);
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        if (write) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        }
        long status = 0;
        if (curl_easy_perform(h) == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        }
        w->errors += status != 200;
    }
    fclose(devnull);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    st_reply r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, NULL);
    size_t before = json_array_size(json_object_get(r.json, "Contacts"));
    st_reply_free(&r);
    enum { N = 8 };
    pthread_t th[N];
    worker ws[N];
    for (int i = 0; i < N; i++) {
        ws[i].id = i;
        ws[i].errors = 0;
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ws[i].errors, 0);
    }
    r = st_api(t, "GET", "/Contacts?includeArchived=true&order=UpdatedDateUTC", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Contacts")), before + N * 20);
    st_reply_free(&r);
}

/* ------------------------------------------------------------------ the HTTP layer's refusals */

/* expect_xero_refusal checks an Accounting API refusal: the status, Xero's shapes (never the
 * project's {"error":...} nor HTML), the correlation id and the rate-limit headers. */
static void expect_xero_refusal(const st_reply *r, long status)
{
    if (r->status != status) {
        fprintf(stderr, "status %ld (curl %d), want %ld: %.300s\n", r->status, r->curl_code, status,
                r->body);
    }
    assert_int_equal(r->status, status);
    assert_null(strstr(r->body, "\"error\""));
    assert_null(strcasestr(r->body, "<html"));
    static const char *const want[] = {"Xero-Correlation-Id", "X-MinLimit-Remaining",
                                       "X-DayLimit-Remaining", "X-AppMinLimit-Remaining"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char v[64];
        assert_non_null(st_header(r, want[i], v, sizeof(v)));
    }
    if (status == 413) {
        /* as for the 3.5 MB limit */
        assert_non_null(strstr(r->body, "The request is too large"));
    } else {
        assert_non_null(r->json);
        assert_int_equal(json_integer_value(json_object_get(r->json, "Status")), status);
        assert_true(json_is_null(json_object_get(r->json, "Type")));
        assert_non_null(json_object_get(r->json, "Title"));
        assert_non_null(json_object_get(r->json, "Instance"));
    }
}

static void test_http_layer_refusals_xero_style(void **state)
{
    (void)state;
    char auth[4200], ten[100];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *h[] = {auth, ten, "Content-Type: application/json", NULL};
    /* a body over the HTTP layer's 64 MiB ceiling (refused before it is read) */
    st_reply r = st_req_upload(t, "PUT", "/api.xro/2.0/Contacts", h, SIM_HARD_BODY_MAX + 1);
    expect_xero_refusal(&r, 413);
    st_reply_free(&r);
    /* a URL longer than the layer routes */
    char *url = malloc(12000);
    strcpy(url, "/api.xro/2.0/Contacts?where=Name%3D%3D%22");
    size_t at = strlen(url);
    memset(url + at, 'n', 9000);
    strcpy(url + at + 9000, "%22");
    r = st_req(t, "GET", url, NULL, h, 0);
    expect_xero_refusal(&r, 414);
    st_reply_free(&r);
    free(url);
    /* headers larger than the layer accepts */
    char *big = malloc(100100);
    strcpy(big, "X-Big: ");
    memset(big + 7, 'h', 100000);
    big[100007] = '\0';
    const char *hb[] = {auth, ten, big, NULL};
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, hb, 0);
    expect_xero_refusal(&r, 431);
    st_reply_free(&r);
    /* a target the layer refuses (a dot segment) */
    t->raw_path = true;
    r = st_req(t, "GET", "/api.xro/2.0/Contacts/%2e%2e/Invoices", NULL, h, 0);
    t->raw_path = false;
    expect_xero_refusal(&r, 400);
    st_reply_free(&r);
    /* the same refusals elsewhere keep the project's JSON errors */
    r = st_req_upload(t, "POST", "/_sim/tenants", NULL, SIM_HARD_BODY_MAX + 1);
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"body_too_large\""));
    st_reply_free(&r);
    const char *hx[] = {big, NULL};
    r = st_req(t, "GET", "/connections", NULL, hx, 0);
    assert_int_equal(r.status, 431);
    assert_non_null(strstr(r.body, "\"headers_too_large\""));
    st_reply_free(&r);
    free(big);
    /* the refusals are counted like other calls, under "other" */
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_true(json_integer_value(st_path(st, "by_endpoint.other.413")) >= 1);
    assert_true(json_integer_value(st_path(st, "by_endpoint.other.431")) >= 1);
    json_decref(st);
}

/* ------------------------------------------------------------------ a batch failing part-way */

static int apply_calls, apply_fail_at;

/* failing_apply applies contacts, but runs out of memory on the apply_fail_at-th item. */
static xs_err failing_apply(sim_batch *b, void *plan, sim_rec **out)
{
    if (++apply_calls == apply_fail_at) {
        return XS_ENOMEM;
    }
    return sim__contact_ops.apply(b, plan, out);
}

/* h_direct runs a PUT /Contacts body straight through sim__write_items with failing_apply,
 * in the simulator's first tenant, and answers with the reply it produced. */
static void h_direct(xs_http_req *req, void *arg)
{
    (void)arg;
    sim *s = t->s;
    sim_call c;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.req = req;
    c.method = "PUT";
    sim__settings(s, &c.set);
    snprintf(c.cid, sizeof(c.cid), "00000000-0000-0000-0000-00000000c0de");
    sim_kind_ops ops = sim__contact_ops;
    ops.apply = failing_apply;
    size_t len = 0;
    const char *raw = xs_http_req_body(req, &len);
    json_t *body = xs_json_parse(raw, len, NULL);
    const char *se = xs_http_req_query(req, "summarizeErrors");
    pthread_rwlock_rdlock(&s->world_lock);
    sim_tenant *tn = s->tenants[0];
    pthread_rwlock_wrlock(&tn->lock);
    sim_batch b;
    if (sim__batch_init(&b, &c, tn, false) == XS_OK) { /* no cmocka asserts off the main thread */
        sim__write_items(&c, &b, &ops, body, true, NULL, se == NULL);
        sim__batch_fini(&b);
    }
    pthread_rwlock_unlock(&tn->lock);
    pthread_rwlock_unlock(&s->world_lock);
    json_decref(body);
    xs_http_reply_json(req, c.status, c.json);
    free(c.text);
}

static size_t contacts_named(const char *prefix)
{
    st_reply r = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, NULL);
    size_t n = 0;
    json_t *a = json_object_get(r.json, "Contacts");
    for (size_t i = 0; i < json_array_size(a); i++) {
        n += strncmp(st_str(json_array_get(a, i), "Name"), prefix, strlen(prefix)) == 0;
    }
    st_reply_free(&r);
    return n;
}

static void test_partial_apply_reported_truthfully(void **state)
{
    (void)state;
    static const xs_http_route direct[] = {{"PUT", "/direct", h_direct, 0}};
    xs_http_opts o = {.routes = direct, .nroutes = 1};
    xs_http_server *srv = NULL;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    st_sim other = *t;
    snprintf(other.base, sizeof(other.base), "http://127.0.0.1:%u",
             (unsigned)xs_http_server_port(srv));
    other.curl = curl_easy_init();
    const char *three = "{\"Contacts\":[{\"Name\":\"Partial A\"},{\"Name\":\"Partial B\"},"
                        "{\"Name\":\"Partial C\"}]}";
    for (int summarize = 1; summarize >= 0; summarize--) {
        /* the second item fails: the first is saved, so the reply is 200 and says which */
        apply_calls = 0;
        apply_fail_at = 2;
        json_decref(st_ctl(t, "POST", "/_sim/reset", NULL, 200));
        st_connect(t);
        st_reply r = st_req(&other, "PUT", summarize ? "/direct" : "/direct?summarizeErrors=false",
                            three, (const char *[]){"Content-Type: application/json", NULL}, 0);
        assert_int_equal(r.status, 200);
        json_t *a = json_object_get(r.json, "Contacts");
        assert_int_equal(json_array_size(a), 3);
        json_t *ok = json_array_get(a, 0);
        assert_string_equal(st_str(ok, "Name"), "Partial A");
        assert_null(json_object_get(ok, "ValidationErrors"));
        assert_string_equal(st_str(ok, "StatusAttributeString"), "OK");
        for (size_t i = 1; i < 3; i++) {
            json_t *e = json_array_get(a, i);
            assert_string_equal(st_str(e, "StatusAttributeString"), "ERROR");
            assert_string_equal(st_str(e, "ContactID"), "00000000-0000-0000-0000-000000000000");
            assert_non_null(
                strstr(st_str(st_path(e, "ValidationErrors.0"), "Message"), "not saved"));
        }
        st_reply_free(&r);
        assert_int_equal(contacts_named("Partial A"), 1);
        assert_int_equal(contacts_named("Partial B"), 0);
        assert_int_equal(contacts_named("Partial C"), 0);
    }
    /* the first item fails: nothing is saved, and a 500 says so */
    apply_calls = 0;
    apply_fail_at = 1;
    json_decref(st_ctl(t, "POST", "/_sim/reset", NULL, 200));
    st_connect(t);
    st_reply r = st_req(&other, "PUT", "/direct", three,
                        (const char *[]){"Content-Type: application/json", NULL}, 0);
    assert_int_equal(r.status, 500);
    st_reply_free(&r);
    assert_int_equal(contacts_named("Partial"), 0);
    curl_easy_cleanup(other.curl);
    xs_http_server_destroy(srv);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_bodies),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_bad_headers_and_params),
        cmocka_unit_test(test_odd_paths),
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_http_layer_refusals_xero_style),
        cmocka_unit_test(test_partial_apply_reported_truthfully),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
