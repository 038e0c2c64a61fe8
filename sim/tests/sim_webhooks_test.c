/*
 * sim_webhooks_test.c: xero-sim's webhooks against a receiver run in the test: intent to
 * receive (correctly and deliberately mis-signed deliveries, and the report on whether the
 * receiver answered each right), CONTACT and INVOICE events signed over the raw body
 * (HMAC-SHA256 with the key, base64, x-xero-signature), retries of the same body, and
 * disabling after the retry period.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"
#include "xs/crypto.h"
#include "xs/http.h"
#include "xs/json.h"

#define KEY "test-webhook-key-0123456789"

typedef enum { R_CORRECT, R_ALWAYS_200, R_FAIL_FIRST, R_ALWAYS_500 } rmode;

typedef struct receiver {
    pthread_mutex_t mu;
    rmode mode;
    int fail_left;
    int calls;
    int good, bad;  /* signatures seen */
    json_t *bodies; /* raw bodies received, as strings */
    xs_http_server *srv;
} receiver;

static receiver rx;

static bool signature_ok(const char *body, size_t len, const char *sig)
{
    uint8_t mac[XS_SHA256_LEN];
    char *b64 = NULL;
    if (sig == NULL || xs_hmac_sha256(KEY, strlen(KEY), body, len, mac) != XS_OK ||
        xs_base64_encode(mac, sizeof(mac), &b64) != XS_OK) {
        return false;
    }
    bool ok = xs_crypto_equal_str(b64, sig);
    free(b64);
    return ok;
}

static void on_webhook(xs_http_req *req, void *arg)
{
    (void)arg;
    size_t len = 0;
    const char *body = xs_http_req_body(req, &len);
    bool ok = signature_ok(body, len, xs_http_req_header(req, "x-xero-signature"));
    pthread_mutex_lock(&rx.mu);
    rx.calls++;
    if (ok) {
        rx.good++;
    } else {
        rx.bad++;
    }
    json_array_append_new(rx.bodies, json_stringn(body, len));
    int status;
    switch (rx.mode) {
    case R_CORRECT:
        status = ok ? 200 : 401;
        break;
    case R_ALWAYS_200:
        status = 200;
        break;
    case R_FAIL_FIRST:
        status = rx.fail_left-- > 0 ? 500 : (ok ? 200 : 401);
        break;
    default:
        status = 500;
        break;
    }
    pthread_mutex_unlock(&rx.mu);
    xs_http_reply(req, status, NULL, NULL, 0);
}

static const xs_http_route rx_routes[] = {{"POST", "/hook", on_webhook, 0}};

static st_sim *start(rmode mode, const char *require_itr, const char *extra)
{
    pthread_mutex_init(&rx.mu, NULL);
    rx.mode = mode;
    rx.fail_left = 2;
    rx.calls = rx.good = rx.bad = 0;
    rx.bodies = json_array();
    xs_http_opts o = {0};
    o.routes = rx_routes;
    o.nroutes = 1;
    assert_int_equal(xs_http_server_create(&rx.srv, &o), XS_OK);
    static char url[128], itr[64];
    snprintf(url, sizeof(url), "XS_SIM_WEBHOOK_URL=http://127.0.0.1:%u/hook",
             (unsigned)xs_http_server_port(rx.srv));
    snprintf(itr, sizeof(itr), "XS_SIM_WEBHOOK_REQUIRE_ITR=%s", require_itr);
    const char *env[] = {url,
                         itr,
                         "XS_SIM_WEBHOOK_KEY=" KEY,
                         "XS_SIM_WEBHOOK_DELAY=30ms",
                         "XS_SIM_WEBHOOK_RETRY_BASE=50ms",
                         "XS_SIM_WEBHOOK_TIMEOUT=2s",
                         extra,
                         NULL};
    return st_start(env);
}

static void stop(st_sim *t)
{
    st_stop(t);
    xs_http_server_destroy(rx.srv);
    json_decref(rx.bodies);
    pthread_mutex_destroy(&rx.mu);
}

static void test_intent_to_receive(void **state)
{
    (void)state;
    st_sim *t = start(R_CORRECT, "true", NULL);
    json_t *rep = st_ctl(t, "POST", "/_sim/webhooks/itr", "{\"count\":6}", 200);
    assert_true(json_is_true(json_object_get(rep, "ok")));
    json_t *d = json_object_get(rep, "deliveries");
    assert_int_equal(json_array_size(d), 6);
    int correct = 0, incorrect = 0;
    size_t i;
    json_t *e;
    json_array_foreach(d, i, e)
    {
        assert_true(json_is_true(json_object_get(e, "ok")));
        if (strcmp(st_str(e, "signature"), "correct") == 0) {
            correct++;
            assert_int_equal(json_integer_value(json_object_get(e, "status")), 200);
        } else {
            incorrect++;
            assert_int_equal(json_integer_value(json_object_get(e, "status")), 401);
        }
    }
    assert_true(correct >= 1 && incorrect >= 1);
    assert_int_equal(rx.good, correct);
    assert_int_equal(rx.bad, incorrect);
    /* the payload is Xero's: no events, sequences 0, an entropy string */
    json_t *b0 = xs_json_parse(json_string_value(json_array_get(rx.bodies, 0)),
                               json_string_length(json_array_get(rx.bodies, 0)), NULL);
    assert_int_equal(json_array_size(json_object_get(b0, "events")), 0);
    assert_int_equal(json_integer_value(json_object_get(b0, "firstEventSequence")), 0);
    assert_int_equal(json_integer_value(json_object_get(b0, "lastEventSequence")), 0);
    assert_int_equal(strlen(st_str(b0, "entropy")), 20);
    json_decref(b0);
    json_decref(rep);
    json_t *st = st_ctl(t, "GET", "/_sim/webhooks", NULL, 200);
    assert_string_equal(st_str(st, "status"), "OK");
    json_decref(st);
    stop(t);

    /* a receiver that accepts everything fails intent to receive, and the report says which
     * delivery it got wrong */
    t = start(R_ALWAYS_200, "true", NULL);
    rep = st_ctl(t, "POST", "/_sim/webhooks/itr", NULL, 200);
    assert_true(json_is_false(json_object_get(rep, "ok")));
    json_array_foreach(json_object_get(rep, "deliveries"), i, e)
    {
        bool bad = strcmp(st_str(e, "signature"), "incorrect") == 0;
        assert_int_equal(json_is_true(json_object_get(e, "ok")), !bad);
        if (bad) {
            assert_int_equal(json_integer_value(json_object_get(e, "expected")), 401);
        }
    }
    json_decref(rep);
    /* so events are not delivered */
    st_connect(t);
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Unheard\"}", NULL);
    st_reply_free(&r);
    st = st_ctl(t, "GET", "/_sim/webhooks", NULL, 200);
    assert_string_equal(st_str(st, "status"), "AWAITING_INTENT_TO_RECEIVE");
    assert_int_equal(json_integer_value(json_object_get(st, "dropped_unverified")), 1);
    json_decref(st);
    stop(t);
}

static json_t *all_events(void)
{
    json_t *events = json_array();
    pthread_mutex_lock(&rx.mu);
    size_t i;
    json_t *b;
    json_array_foreach(rx.bodies, i, b)
    {
        json_t *doc = xs_json_parse(json_string_value(b), json_string_length(b), NULL);
        json_array_extend(events, json_object_get(doc, "events"));
        json_decref(doc);
    }
    pthread_mutex_unlock(&rx.mu);
    return events;
}

static void test_events(void **state)
{
    (void)state;
    st_sim *t = start(R_CORRECT, "false", NULL);
    st_connect(t);
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Hooked Ltd\"}", NULL);
    char cid[64];
    snprintf(cid, sizeof(cid), "%s", st_str(st_path(r.json, "Contacts.0"), "ContactID"));
    st_reply_free(&r);
    /* a user archives it in Xero */
    char path[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s/archive", t->tenant, cid);
    json_decref(st_ctl(t, "POST", path, NULL, 200));
    /* the user restores it; then an invoice, and a payment (which changes the invoice: there
     * are no PAYMENT events) */
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s/restore", t->tenant, cid);
    json_decref(st_ctl(t, "POST", path, NULL, 200));
    char body[600];
    snprintf(body, sizeof(body),
             "{\"Type\":\"ACCREC\",\"Status\":\"AUTHORISED\",\"Contact\":{\"ContactID\":\"%s\"},"
             "\"LineItems\":[{\"Description\":\"x\",\"Quantity\":1,\"UnitAmount\":10,"
             "\"AccountCode\":\"200\"}]}",
             cid);
    r = st_api(t, "PUT", "/Invoices", body, NULL);
    char iid[64];
    snprintf(iid, sizeof(iid), "%s", st_str(st_path(r.json, "Invoices.0"), "InvoiceID"));
    st_reply_free(&r);
    snprintf(body, sizeof(body),
             "{\"Invoice\":{\"InvoiceID\":\"%s\"},\"Account\":{\"Code\":\"090\"},\"Amount\":5}",
             iid);
    r = st_api(t, "PUT", "/Payments", body, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    json_t *fl = st_ctl(t, "POST", "/_sim/webhooks/flush", NULL, 200);
    assert_true(json_is_true(json_object_get(fl, "idle")));
    json_decref(fl);

    assert_true(rx.calls >= 1);
    assert_int_equal(rx.bad, 0); /* every delivery is signed over its raw body */
    json_t *ev = all_events();
    /* contact CREATE, UPDATE (archive), UPDATE (restore); invoice CREATE, UPDATE (payment) */
    assert_int_equal(json_array_size(ev), 5);
    const char *want[5][3] = {{"CONTACT", "CREATE", cid},
                              {"CONTACT", "UPDATE", cid},
                              {"CONTACT", "UPDATE", cid},
                              {"INVOICE", "CREATE", iid},
                              {"INVOICE", "UPDATE", iid}};
    for (size_t i = 0; i < 5; i++) {
        json_t *e = json_array_get(ev, i);
        assert_string_equal(st_str(e, "eventCategory"), want[i][0]);
        assert_string_equal(st_str(e, "eventType"), want[i][1]);
        assert_string_equal(st_str(e, "resourceId"), want[i][2]);
        assert_string_equal(st_str(e, "tenantId"), t->tenant);
        assert_string_equal(st_str(e, "tenantType"), "ORGANISATION");
        assert_non_null(strstr(st_str(e, "resourceUrl"), want[i][2]));
        assert_int_equal(strlen(st_str(e, "eventDateUtc")), 23);
    }
    json_decref(ev);
    /* sequences run on from one delivery to the next */
    json_t *b0 = xs_json_parse(json_string_value(json_array_get(rx.bodies, 0)),
                               json_string_length(json_array_get(rx.bodies, 0)), NULL);
    assert_int_equal(json_integer_value(json_object_get(b0, "firstEventSequence")), 1);
    json_decref(b0);
    stop(t);
}

static void test_retries_and_disable(void **state)
{
    (void)state;
    st_sim *t = start(R_FAIL_FIRST, "false", NULL);
    st_connect(t);
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Retry Ltd\"}", NULL);
    st_reply_free(&r);
    for (int i = 0; i < 100 && rx.good < 3; i++) {
        json_decref(st_ctl(t, "POST", "/_sim/webhooks/flush", "{\"timeout_ms\":200}", 200));
    }
    /* two failures, then delivered: the same body (same entropy, same signature) each time */
    assert_int_equal(rx.calls, 3);
    assert_string_equal(json_string_value(json_array_get(rx.bodies, 0)),
                        json_string_value(json_array_get(rx.bodies, 2)));
    json_t *st = st_ctl(t, "GET", "/_sim/webhooks", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(st, "events_delivered")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "failed_attempts")), 2);
    json_decref(st);
    stop(t);

    /* a receiver that never answers right: after the retry period the webhook is disabled */
    t = start(R_ALWAYS_500, "false", "XS_SIM_WEBHOOK_RETRY_FOR=300ms");
    st_connect(t);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Never Ltd\"}", NULL);
    st_reply_free(&r);
    const char *status = "";
    for (int i = 0; i < 100; i++) {
        json_decref(st_ctl(t, "POST", "/_sim/webhooks/flush", "{\"timeout_ms\":100}", 200));
        st = st_ctl(t, "GET", "/_sim/webhooks", NULL, 200);
        status = strcmp(st_str(st, "status"), "DISABLED") == 0 ? "DISABLED" : "";
        json_decref(st);
        if (status[0] != '\0') {
            break;
        }
    }
    assert_string_equal(status, "DISABLED");
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Dropped Ltd\"}", NULL);
    st_reply_free(&r);
    st = st_ctl(t, "GET", "/_sim/webhooks", NULL, 200);
    assert_true(json_integer_value(json_object_get(st, "dropped_disabled")) >= 1);
    json_decref(st);
    st = st_ctl(t, "POST", "/_sim/webhooks/enable", NULL, 200);
    assert_string_equal(st_str(st, "status"), "OK");
    json_decref(st);
    stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intent_to_receive),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_retries_and_disable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
