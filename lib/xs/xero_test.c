/*
 * xero_test.c: the Xero client against xero-sim (in-process, real HTTP): the code exchange
 * with PKCE, refresh and rotation, revocation, /connections, the rate-limit headers of every
 * reply and of a 429, each way a call can fail (time-out, reset, garbled or truncated reply,
 * a reply too big, nothing listening), and list replies parsed around their records.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "xs/xero.h"

static st_sim *T;
static xs_xero_opts O;
static xs_xero *X;

static int setup(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_REQUIRE_PKCE=true", "XS_SIM_HANG=3s", NULL};
    T = st_start(env);
    O = (xs_xero_opts){.login_url = T->base,
                       .identity_url = T->base,
                       .api_url = T->base,
                       .client_id = "xero-sim-client",
                       .client_secret = "xero-sim-secret",
                       .timeout_ms = 1500};
    assert_int_equal(xs_xero_create(&X, &O), XS_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    xs_xero_destroy(X);
    st_stop(T);
    return 0;
}

/* connect runs authorize at the simulator and exchanges the code through the client. */
static void connect(xs_xero_tokens *t)
{
    char *verifier = NULL, *challenge = NULL, *url = NULL;
    assert_int_equal(xs_crypto_random_token(48, &verifier), XS_OK);
    assert_int_equal(xs_xero_pkce_challenge(verifier, &challenge), XS_OK);
    const char *redirect = "http://127.0.0.1:9/callback"; /* registered by simtest */
    assert_int_equal(xs_xero_authorize_url(X, redirect, "offline_access accounting.contacts",
                                           "st4te", challenge, &url),
                     XS_OK);
    assert_non_null(strstr(url, "code_challenge_method=S256"));
    assert_non_null(strstr(url, "scope=offline_access%20accounting.contacts"));
    assert_non_null(strstr(url, "state=st4te"));
    assert_non_null(strstr(url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback"));
    long status = 0;
    char *code =
        st_authorize(T, "offline_access accounting.contacts", challenge, redirect, &status);
    assert_non_null(code);

    /* A wrong verifier is refused by Xero as invalid_grant. */
    xs_xero_call call;
    char oerr[64];
    assert_int_equal(xs_xero_token_code(X, code, "not-the-verifier-not-the-verifier-not-the-v",
                                        redirect, t, oerr, &call),
                     XS_EAUTH);
    assert_string_equal(oerr, "invalid_grant");
    assert_int_equal(call.status, 400);
    assert_string_equal(call.path, "/connect/token");

    assert_int_equal(xs_xero_token_code(X, code, verifier, redirect, t, oerr, &call), XS_OK);
    assert_non_null(t->access_token);
    assert_non_null(t->refresh_token);
    assert_non_null(t->auth_event_id);
    assert_non_null(t->xero_user_id);
    assert_int_equal(t->expires_in_s, 1800);
    assert_non_null(strstr(t->scope, "offline_access"));
    /* No secret in what the call describes. */
    assert_null(strstr(call.path, verifier));
    free(code);
    free(url);
    free(challenge);
    xs_crypto_wipe(verifier, strlen(verifier));
    free(verifier);
}

static void test_code_refresh_connections_revoke(void **state)
{
    (void)state;
    xs_xero_tokens t = {0};
    connect(&t);
    json_t *list = NULL;
    xs_xero_call call;
    assert_int_equal(xs_xero_connections(X, t.access_token, t.auth_event_id, &list, &call), XS_OK);
    assert_int_equal(json_array_size(list), 1);
    assert_non_null(strstr(call.path, "/connections?authEventId="));
    const char *tenant = xs_json_str_or(json_array_get(list, 0), "tenantId", "");
    assert_string_equal(tenant, T->tenant);
    json_decref(list);
    assert_int_equal(xs_xero_connections(X, "not-a-token", NULL, &list, &call), XS_EAUTH);
    assert_int_equal(call.status, 401);

    /* Refresh rotates; the new refresh token works, the old one is then refused. */
    xs_xero_tokens t2 = {0}, t3 = {0}, t4 = {0};
    char oerr[64];
    assert_int_equal(xs_xero_token_refresh(X, t.refresh_token, &t2, oerr, &call), XS_OK);
    assert_string_not_equal(t2.refresh_token, t.refresh_token);
    assert_int_equal(xs_xero_token_refresh(X, t2.refresh_token, &t3, oerr, &call), XS_OK);
    assert_int_equal(xs_xero_token_refresh(X, t.refresh_token, &t4, oerr, &call), XS_EAUTH);
    assert_string_equal(oerr, "invalid_grant");

    /* Revocation ends the grant. */
    assert_int_equal(xs_xero_revoke(X, t3.refresh_token, &call), XS_OK);
    assert_int_equal(xs_xero_token_refresh(X, t3.refresh_token, &t4, oerr, &call), XS_EAUTH);
    xs_xero_tokens_fini(&t);
    xs_xero_tokens_fini(&t2);
    xs_xero_tokens_fini(&t3);
    xs_xero_tokens_fini(&t4);
}

/* Every accounting reply reports the rate limits; a 429 says which and for how long. */
static void test_rate_headers(void **state)
{
    (void)state;
    st_connect(T);
    json_decref(st_ctl(T, "POST", "/_sim/config", "{\"limits\":{\"minute\":2}}", 200));
    xs_xero_req req = {.method = "GET",
                       .path = "/api.xro/2.0/Contacts?page=1",
                       .bearer = T->token,
                       .tenant_id = T->tenant};
    xs_xero_resp resp;
    xs_xero_call call;
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_OK);
    assert_int_equal(resp.status, 200);
    assert_true(json_is_object(resp.json));
    assert_true(call.rate.min_remaining >= 0);
    assert_true(call.rate.day_remaining >= 0);
    assert_true(call.rate.app_min_remaining >= 0);
    assert_int_equal(call.rate.retry_after_s, -1);
    assert_true(call.correlation_id[0] != '\0');
    xs_xero_resp_fini(&resp);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_OK);
        xs_xero_resp_fini(&resp);
    }
    assert_int_equal(call.status, 429);
    assert_true(call.rate.retry_after_s >= 1);
    assert_string_equal(call.rate.problem, "minute");
    assert_int_equal(call.rate.min_remaining, 0);
    assert_true(xs_xero_retryable(XS_OK, call.status));
    json_decref(st_ctl(T, "POST", "/_sim/config", "{\"limits\":{\"minute\":100000}}", 200));
}

/* script_fault makes the next call to path fail with kind. */
static void script_fault(const char *path, const char *kind)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"script\":[{\"path\":\"%s\",\"fault\":\"%s\",\"times\":1}]}",
             path, kind);
    json_decref(st_ctl(T, "POST", "/_sim/faults", body, 200));
}

/* Each failure comes back as the right error, with nothing half-read. */
static void test_failures(void **state)
{
    (void)state;
    st_connect(T);
    xs_xero_req req = {.method = "GET",
                       .path = "/api.xro/2.0/Contacts",
                       .bearer = T->token,
                       .tenant_id = T->tenant};
    xs_xero_resp resp;
    xs_xero_call call;

    script_fault("/api.xro/2.0/Contacts", "hang");
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_ETIMEDOUT);
    assert_int_equal(call.err, XS_ETIMEDOUT);
    assert_int_equal(call.status, 0);
    assert_null(resp.body);
    assert_true(xs_xero_retryable(call.err, call.status));

    script_fault("/api.xro/2.0/Contacts", "reset");
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_EHTTP);

    script_fault("/api.xro/2.0/Contacts", "garbled");
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_EPROTO);
    assert_non_null(strstr(call.error, "not valid JSON"));

    script_fault("/api.xro/2.0/Contacts", "truncated");
    xs_err e = xs_xero_request(X, &req, &resp, &call);
    assert_true(e == XS_EHTTP || e == XS_EPROTO);

    script_fault("/api.xro/2.0/Contacts", "503");
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_OK);
    assert_int_equal(resp.status, 503);
    assert_true(xs_xero_retryable(XS_OK, resp.status));
    xs_xero_resp_fini(&resp);

    /* After all that, the handle still works. */
    assert_int_equal(xs_xero_request(X, &req, &resp, &call), XS_OK);
    assert_int_equal(resp.status, 200);
    xs_xero_resp_fini(&resp);

    /* A reply larger than allowed is refused. */
    xs_xero_opts small = O;
    small.max_reply = 64;
    xs_xero *x2 = NULL;
    assert_int_equal(xs_xero_create(&x2, &small), XS_OK);
    assert_int_equal(xs_xero_request(x2, &req, &resp, &call), XS_ETOOBIG);
    xs_xero_destroy(x2);

    /* Nobody listening. */
    xs_xero_opts none = O;
    none.api_url = "http://127.0.0.1:1";
    assert_int_equal(xs_xero_create(&x2, &none), XS_OK);
    assert_int_equal(xs_xero_request(x2, &req, &resp, &call), XS_EHTTP);
    xs_xero_destroy(x2);

    /* Bad arguments. */
    xs_xero_req bad = {.method = "GET", .path = "no-slash"};
    assert_int_equal(xs_xero_request(X, &bad, &resp, &call), XS_EINVAL);
    xs_xero_opts nourl = {0};
    assert_int_equal(xs_xero_create(&x2, &nourl), XS_EINVAL);
    json_decref(st_ctl(T, "DELETE", "/_sim/faults", NULL, 200));
}

/* With list_key, a list reply is parsed but for its records, whose spans come back in
 * order; each parses to what a whole parse holds. Other replies are parsed whole. */
static void test_list_key(void **state)
{
    (void)state;
    st_connect(T);
    char seed[128];
    snprintf(seed, sizeof(seed), "/_sim/tenants/%s/seed", T->tenant);
    json_decref(st_ctl(T, "POST", seed, "{\"contacts\":30,\"seed\":3}", 200));
    xs_xero_resp whole, split;
    xs_xero_call call;
    xs_xero_req get = {.method = "GET",
                       .path = "/api.xro/2.0/Contacts?page=1&order=UpdatedDateUTC%20ASC",
                       .bearer = T->token,
                       .tenant_id = T->tenant};
    assert_int_equal(xs_xero_request(X, &get, &whole, &call), XS_OK);
    get.list_key = "Contacts";
    assert_int_equal(xs_xero_request(X, &get, &split, &call), XS_OK);
    assert_null(whole.items);
    json_t *all = json_object_get(whole.json, "Contacts");
    assert_true(json_array_size(all) >= 30);
    assert_non_null(split.items);
    assert_int_equal(split.nitems, json_array_size(all));
    assert_int_equal(json_array_size(json_object_get(split.json, "Contacts")), 0);
    for (size_t i = 0; i < split.nitems; i++) {
        assert_true(split.items[i].off + split.items[i].len <= split.len);
        json_t *rec = xs_json_parse(split.body + split.items[i].off, split.items[i].len, NULL);
        assert_non_null(rec);
        json_t *w = json_array_get(all, i);
        assert_true(xs_json_equal(rec, w));
        json_decref(rec);
    }
    /* The envelope is the rest of the reply (but for what differs between two calls). */
    json_object_set_new(whole.json, "Contacts", json_array());
    const char *per_call[] = {"Id", "DateTimeUTC"};
    for (size_t i = 0; i < 2; i++) {
        assert_non_null(json_object_get(split.json, per_call[i]));
        json_object_del(whole.json, per_call[i]);
        json_object_del(split.json, per_call[i]);
    }
    assert_true(xs_json_equal(whole.json, split.json));
    xs_xero_resp_fini(&whole);
    xs_xero_resp_fini(&split);
    /* No such list: parsed whole. */
    get.list_key = "Invoices";
    assert_int_equal(xs_xero_request(X, &get, &split, &call), XS_OK);
    assert_null(split.items);
    assert_true(json_array_size(json_object_get(split.json, "Contacts")) >= 30);
    xs_xero_resp_fini(&split);
    /* A garbled reply is refused, or (when the damage lies inside records' strings) one of
     * its records does not parse. */
    get.list_key = "Contacts";
    for (int round = 0; round < 4; round++) {
        script_fault("/api.xro/2.0/Contacts", "garbled");
        xs_err e = xs_xero_request(X, &get, &split, &call);
        if (e == XS_OK) {
            bool bad = false;
            for (size_t i = 0; i < split.nitems; i++) {
                json_t *rec =
                    xs_json_parse(split.body + split.items[i].off, split.items[i].len, NULL);
                bad = bad || rec == NULL;
                json_decref(rec);
            }
            assert_true(bad);
            xs_xero_resp_fini(&split);
        } else {
            assert_int_equal(e, XS_EPROTO);
            assert_non_null(strstr(call.error, "not valid JSON"));
            assert_null(split.items);
        }
    }
    json_decref(st_ctl(T, "DELETE", "/_sim/faults", NULL, 200));
}

/* Writes carry the Idempotency-Key; the same key and body replay the first reply. */
static void test_idempotent_write(void **state)
{
    (void)state;
    st_connect(T);
    const char *body = "{\"Contacts\":[{\"Name\":\"Idempotent Ltd\"}]}";
    xs_xero_req req = {.method = "PUT",
                       .path = "/api.xro/2.0/Contacts?summarizeErrors=false",
                       .bearer = T->token,
                       .tenant_id = T->tenant,
                       .idempotency_key = "xs-test-key-1",
                       .body = body,
                       .body_len = strlen(body)};
    xs_xero_resp r1, r2;
    xs_xero_call call;
    assert_int_equal(xs_xero_request(X, &req, &r1, &call), XS_OK);
    assert_int_equal(r1.status, 200);
    assert_int_equal(xs_xero_request(X, &req, &r2, &call), XS_OK);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r1.body, r2.body);
    xs_xero_resp_fini(&r1);
    xs_xero_resp_fini(&r2);
    /* If-Modified-Since goes out in Xero's form and is honoured. */
    xs_xero_req get = {.method = "GET",
                       .path = "/api.xro/2.0/Contacts",
                       .bearer = T->token,
                       .tenant_id = T->tenant,
                       .if_modified_since = xs_clock_now() + 3600 * 1000};
    assert_int_equal(xs_xero_request(X, &get, &r1, &call), XS_OK);
    assert_int_equal(json_array_size(json_object_get(r1.json, "Contacts")), 0);
    xs_xero_resp_fini(&r1);
    json_t *st = st_ctl(T, "GET", "/_sim/stats", NULL, 200);
    assert_true(json_integer_value(st_path(st, "if_modified_since.used")) >= 1);
    assert_int_equal(json_integer_value(st_path(st, "if_modified_since.ignored")), 0);
    assert_int_equal(json_integer_value(st_path(st, "idempotency.replays")), 1);
    json_decref(st);
}

/* Calls are named as the simulator names its routes, from a fixed set: ids and queries never
 * reach the name, and anything unexpected is "other". */
static void test_endpoint(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path, *want;
    } cases[] = {
        {"GET", "/api.xro/2.0/Contacts?page=1&order=UpdatedDateUTC%20ASC", "GET /Contacts"},
        {"", "/api.xro/2.0/Contacts", "GET /Contacts"},
        {"POST", "/api.xro/2.0/Invoices?summarizeErrors=false", "POST /Invoices"},
        {"POST", "/api.xro/2.0/Payments/0f0e2c9e-5b1a-4b8e-9d7b-2a8a6f0b7c11",
         "POST /Payments/{id}"},
        {"GET", "/api.xro/2.0/Contacts/abc?x=1", "GET /Contacts/{id}"},
        {"GET", "/api.xro/2.0/Contacts/abc/History", "other"},
        {"GET", "/api.xro/2.0/Contacts/", "other"},
        {"GET", "/api.xro/2.0/Con-tacts", "other"},
        {"GET", "/api.xro/2.0/", "other"},
        {"POST", "/connect/token", "POST /connect/token"},
        {"POST", "/connect/revocation", "POST /connect/revocation"},
        {"POST", "/connect/tokens", "other"},
        {"GET", "/connections?authEventId=1234", "GET /connections"},
        {"DELETE", "/connections/5d1c", "DELETE /connections/{id}"},
        {"DELETE", "/connections/5d1c/x", "other"},
        {"GET", "/connectionsx", "other"},
        {"PATCH", "/api.xro/2.0/Contacts", "other"},
        {"GET", "/elsewhere", "other"},
        {"GET", "/files.xro/1.0/Folders", "GET /Folders"},
        {"POST", "/files.xro/1.0/Files/0f0e2c9e", "POST /Files/{FolderId}"},
        {"GET", "/files.xro/1.0/Files/0f0e2c9e", "GET /Files/{FileId}"},
        {"DELETE", "/files.xro/1.0/Folders/0f0e2c9e", "DELETE /Folders/{FolderId}"},
        {"GET", "/files.xro/1.0/Files?pagesize=100&sort=CreatedDateUTC", "GET /Files"},
        {"POST", "/files.xro/1.0/Files/0f0e/Associations", "POST /Files/{FileId}/Associations"},
        {"GET", "/files.xro/1.0/Files/0f0e/Associations/", "other"},
        {"GET", "/files.xro/1.0/Files/0f0e/Associations/1a/x", "other"},
        {"GET", "/files.xro/1.0/Files//Associations", "other"},
        {"GET", "/files.xro/1.0/Fi-les", "other"},
        {"GET", "/files.xro/1.0/", "other"},
        {"GET", "/practicemanager/v3.1/job.api/current",
         "GET /practicemanager/v3.1/job.api/current"},
        {"GET", "/practicemanager/v3.1/job.api/list?from=20240101&to=20241231",
         "GET /practicemanager/v3.1/job.api/list"},
        {"GET", "/practicemanager/v3.1/job.api/get/J000123",
         "GET /practicemanager/v3.1/job.api/get/{id}"},
        {"GET", "/practicemanager/v3.1/client.api/list?modifiedSince=2024-01-01T00:00:00",
         "GET /practicemanager/v3.1/client.api/list"},
        {"GET", "/practicemanager/v3.1/job.api/get/J1/x", "other"},
        {"GET", "/practicemanager/v3.1/job/current", "other"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xs_xero_call call;
        memset(&call, 0, sizeof(call));
        snprintf(call.method, sizeof(call.method), "%s", cases[i].method);
        snprintf(call.path, sizeof(call.path), "%s", cases[i].path);
        char name[XS_XERO_ENDPOINT_MAX];
        xs_xero_endpoint(&call, name);
        if (strcmp(name, cases[i].want) != 0) {
            fail_msg("%s %s: %s, not %s", cases[i].method, cases[i].path, name, cases[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_refresh_connections_revoke),
        cmocka_unit_test(test_rate_headers),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_idempotent_write),
        cmocka_unit_test(test_list_key),
        cmocka_unit_test(test_endpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
