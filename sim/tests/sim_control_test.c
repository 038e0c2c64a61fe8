/*
 * sim_control_test.c: xero-sim's control API: tenants, deterministic realistic seeding,
 * changes made as a Xero user (UpdatedDateUTC moves), configuration at run time, the clock,
 * counters and the call log, and reset.
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
#include "xs/clock.h"
#include "xs/json.h"
#include "xs/money.h"

static void test_tenants(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    json_t *j = st_ctl(t, "POST", "/_sim/tenants",
                       "{\"name\":\"Kiwi Traders\",\"tenantId\":\"0b8bb1c2-1111-4222-8333-"
                       "944444444444\",\"currency\":\"AUD\",\"seed\":{\"contacts\":7}}",
                       201);
    assert_string_equal(st_str(j, "tenantId"), "0b8bb1c2-1111-4222-8333-944444444444");
    assert_string_equal(st_str(j, "currency"), "AUD");
    assert_int_equal(json_integer_value(st_path(j, "counts.Contacts")), 7);
    assert_true(json_integer_value(st_path(j, "counts.Accounts")) >= 20);
    json_decref(j);
    /* the same id twice, a bad id, an unknown currency */
    json_decref(st_ctl(t, "POST", "/_sim/tenants",
                       "{\"tenantId\":\"0b8bb1c2-1111-4222-8333-944444444444\"}", 400));
    json_decref(st_ctl(t, "POST", "/_sim/tenants", "{\"tenantId\":\"nope\"}", 400));
    json_decref(st_ctl(t, "POST", "/_sim/tenants", "{\"currency\":\"XXX\"}", 400));
    j = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    j = st_ctl(t, "GET", "/_sim/tenants/0b8bb1c2-1111-4222-8333-944444444444", NULL, 200);
    assert_non_null(st_path(j, "limits.minute_window_ms_left"));
    json_decref(j);
    json_decref(st_ctl(t, "GET", "/_sim/tenants/0b8bb1c2-1111-4222-8333-000000000000", NULL, 404));
    json_decref(st_ctl(t, "GET", "/_sim/nowhere", NULL, 404));
    st_stop(t);
}

static char *page_of(st_sim *t, const char *kind)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/%s?page=1&pageSize=50", t->tenant, kind);
    json_t *j = st_ctl(t, "GET", path, NULL, 200);
    char *txt = xs_json_dump(json_object_get(j, kind), XS_JSON_SORT_KEYS);
    json_decref(j);
    return txt;
}

static void test_seeding_deterministic_and_realistic(void **state)
{
    (void)state;
    const char *body = "{\"records\":1000,\"seed\":5,\"now\":\"2024-06-30T12:00:00Z\"}";
    char *pages[2][4];
    const char *kinds[4] = {"Contacts", "Invoices", "Payments", "BankTransactions"};
    for (int run = 0; run < 2; run++) {
        st_sim *t = st_start(NULL);
        char path[128];
        snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", t->tenant);
        json_t *rep = st_ctl(t, "POST", path, body, 200);
        assert_int_equal(json_integer_value(st_path(rep, "created.Contacts")), 200);
        assert_int_equal(json_integer_value(st_path(rep, "created.Invoices")), 500);
        assert_int_equal(json_integer_value(st_path(rep, "created.Payments")), 200);
        assert_int_equal(json_integer_value(st_path(rep, "created.BankTransactions")), 100);
        json_decref(rep);
        for (int k = 0; k < 4; k++) {
            pages[run][k] = page_of(t, kinds[k]);
        }
        if (run == 0) {
            /* realism and consistency of every seeded invoice */
            snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices?page=1&pageSize=1000",
                     t->tenant);
            json_t *inv = st_ctl(t, "GET", path, NULL, 200);
            size_t i;
            json_t *v;
            int paid = 0, four_places = 0;
            json_array_foreach(json_object_get(inv, "Invoices"), i, v)
            {
                xs_money sub, tax, tot, due, pd, sum = {0};
                xs_json_to_money(json_object_get(v, "SubTotal"), &sub);
                xs_json_to_money(json_object_get(v, "TotalTax"), &tax);
                xs_json_to_money(json_object_get(v, "Total"), &tot);
                xs_json_to_money(json_object_get(v, "AmountDue"), &due);
                xs_json_to_money(json_object_get(v, "AmountPaid"), &pd);
                xs_money s2;
                xs_money_add(sub, tax, &s2);
                assert_int_equal(xs_money_cmp(s2, tot), 0);
                size_t nl = json_array_size(json_object_get(v, "LineItems"));
                assert_true(nl >= 1 && nl <= 5);
                size_t k;
                json_t *l;
                json_array_foreach(json_object_get(v, "LineItems"), k, l)
                {
                    xs_money la;
                    xs_json_to_money(json_object_get(l, "LineAmount"), &la);
                    xs_money_add(sum, la, &sum);
                }
                if (strcmp(st_str(v, "LineAmountTypes"), "Inclusive") == 0) {
                    assert_int_equal(xs_money_cmp(sum, tot), 0);
                } else {
                    assert_int_equal(xs_money_cmp(sum, sub), 0);
                }
                const char *st = st_str(v, "Status");
                if (strcmp(st, "PAID") == 0 || strcmp(st, "AUTHORISED") == 0) {
                    xs_money back;
                    xs_money_add(due, pd, &back);
                    assert_int_equal(xs_money_cmp(back, tot), 0);
                }
                paid += strcmp(st, "PAID") == 0;
                assert_non_null(strstr(st_str(v, "InvoiceNumber"), "-"));
            }
            assert_true(paid > 50);
            json_decref(inv);
            snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices/%s?unitdp=4", t->tenant,
                     "INV-00001");
            (void)four_places;
            json_t *one = st_ctl(t, "GET", path, NULL, 200);
            assert_string_equal(st_str(st_path(one, "Invoices.0"), "InvoiceNumber"), "INV-00001");
            json_decref(one);
            snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts?page=1", t->tenant);
            json_t *cs = st_ctl(t, "GET", path, NULL, 200);
            json_array_foreach(json_object_get(cs, "Contacts"), i, v)
            {
                assert_non_null(strchr(st_str(v, "EmailAddress"), '@'));
                assert_true(strlen(st_str(st_path(v, "Addresses.0"), "City")) > 0);
                assert_true(strlen(st_str(v, "Name")) > 3);
            }
            json_decref(cs);
        }
        st_stop(t);
    }
    for (int k = 0; k < 4; k++) {
        assert_string_equal(pages[0][k], pages[1][k]);
        free(pages[0][k]);
        free(pages[1][k]);
    }
}

static void test_user_changes_move_updated(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", t->tenant);
    json_decref(st_ctl(t, "POST", path,
                       "{\"contacts\":50,\"invoices\":80,\"payments\":20,"
                       "\"now\":\"2023-01-01T00:00:00Z\"}",
                       200));
    xs_time before = xs_clock_now();
    snprintf(path, sizeof(path), "/_sim/tenants/%s/touch", t->tenant);
    json_t *ch = st_ctl(t, "POST", path, "{\"kind\":\"Invoices\",\"count\":10}", 200);
    size_t nchanged = json_array_size(json_object_get(ch, "changed"));
    assert_int_equal(nchanged + json_array_size(json_object_get(ch, "skipped")), 10);
    assert_true(nchanged >= 5); /* voided and deleted invoices cannot be edited */
    /* exactly the changed ones are newer than `before` */
    snprintf(path, sizeof(path),
             "/_sim/tenants/%s/Invoices?where=UpdatedDateUTC%%3E%%3D"
             "DateTime(2024,1,1)",
             t->tenant);
    json_t *inv = st_ctl(t, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(inv, "Invoices")), nchanged);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(inv, "Invoices"), i, v)
    {
        xs_time u;
        xs_time_parse_xero(st_str(v, "UpdatedDateUTC"), &u);
        assert_true(u >= before - 1000);
        assert_non_null(strstr(st_str(v, "Reference"), "REF "));
    }
    json_decref(inv);
    json_decref(ch);
    /* actions a user takes: void an authorised invoice */
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices?Statuses=AUTHORISED", t->tenant);
    inv = st_ctl(t, "GET", path, NULL, 200);
    json_t *first = json_array_get(json_object_get(inv, "Invoices"), 0);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices/%s/void", t->tenant,
             st_str(first, "InvoiceID"));
    json_t *vo = st_ctl(t, "POST", path, NULL, 200);
    assert_string_equal(st_str(st_path(vo, "Invoices.0"), "Status"), "VOIDED");
    json_decref(vo);
    json_decref(inv);
    json_decref(st_ctl(t, "POST", path, NULL, 400)); /* VOIDED is final */
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Payments/nope/explode", t->tenant);
    json_decref(st_ctl(t, "POST", path, NULL, 404));
    st_stop(t);
}

static void test_config_clock_reset(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    json_t *c = st_ctl(t, "GET", "/_sim/config", NULL, 200);
    assert_int_equal(json_integer_value(st_path(c, "limits.concurrent")), 5);
    assert_int_equal(json_integer_value(st_path(c, "tokens.access_ttl_ms")), 1800000);
    assert_int_equal(json_integer_value(st_path(c, "tokens.refresh_grace_ms")), 1800000);
    assert_int_equal(json_integer_value(st_path(c, "limits.app_minute")), 10000);
    assert_true(json_is_false(st_path(c, "webhook.key_set")));
    json_decref(c);
    c = st_ctl(t, "POST", "/_sim/config",
               "{\"limits\":{\"concurrent\":9},\"latency\":{\"jitter_ms\":3},\"tokens\":{"
               "\"access_ttl_ms\":60000},\"serve_at_root\":true}",
               200);
    assert_int_equal(json_integer_value(st_path(c, "limits.concurrent")), 9);
    json_decref(c);
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"concurrent\":0}}", 400));
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"webhook\":{\"url\":\"ftp://x\"}}", 400));
    json_decref(st_ctl(t, "POST", "/_sim/config", "not json", 400));
    /* served at the root as well */
    st_connect(t);
    char auth[4200], ten[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *h[] = {auth, ten, NULL};
    st_reply r = st_req(t, "GET", "/Contacts", NULL, h, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(r.json, "Contacts"));
    st_reply_free(&r);
    /* the short access token lifetime took effect */
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":61000}", 200));
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    json_t *clk = st_ctl(t, "GET", "/_sim/clock", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(clk, "offset_ms")), 61000);
    json_decref(clk);
    /* reset: same tenant id, no records, no tokens, default config, clock back */
    char tenant[64];
    snprintf(tenant, sizeof(tenant), "%s", t->tenant);
    st_connect(t);
    r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Gone Soon\"}", NULL);
    st_reply_free(&r);
    json_decref(st_ctl(t, "POST", "/_sim/reset", NULL, 200));
    json_t *ts = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    assert_int_equal(json_array_size(ts), 1);
    assert_string_equal(st_str(json_array_get(ts, 0), "tenantId"), tenant);
    assert_int_equal(json_integer_value(st_path(ts, "0.counts.Contacts")), 0);
    json_decref(ts);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    c = st_ctl(t, "GET", "/_sim/config", NULL, 200);
    assert_int_equal(json_integer_value(st_path(c, "limits.concurrent")), 5);
    json_decref(c);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(st, "calls_total")), 1); /* the 401 */
    json_decref(st);
    json_t *id = st_ctl(t, "GET", "/_sim/identity", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(id, "grants")), 0);
    json_decref(id);
    json_decref(st_ctl(t, "GET", "/_sim/health", NULL, 200));
    st_stop(t);
}

static void test_call_log(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    st_connect(t);
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    const char *k[] = {"Idempotency-Key: log-key-1", NULL};
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Logged\"}", k);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?page=1", NULL, NULL);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Nope", NULL, NULL);
    st_reply_free(&r);
    json_t *calls = st_ctl(t, "GET", "/_sim/calls", NULL, 200);
    assert_int_equal(json_array_size(calls), 3);
    json_t *c0 = json_array_get(calls, 0);
    assert_string_equal(st_str(c0, "endpoint"), "PUT /Contacts");
    assert_string_equal(st_str(c0, "idempotency_key"), "log-key-1");
    assert_string_equal(st_str(c0, "tenantId"), t->tenant);
    assert_int_equal(json_integer_value(json_object_get(c0, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(calls, 2), "status")), 404);
    json_int_t seq = json_integer_value(json_object_get(json_array_get(calls, 1), "seq"));
    json_decref(calls);
    char path[64];
    snprintf(path, sizeof(path), "/_sim/calls?since=%lld", (long long)seq);
    calls = st_ctl(t, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(calls), 1);
    json_decref(calls);
    st_stop(t);
}

static void test_stats_do_not_grow_with_paths(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    st_connect(t);
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char path[96];
        snprintf(path, sizeof(path), i % 2 ? "/Nothing%d" : "/Contacts/%d/x", i);
        st_reply r = st_api(t, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 404);
        st_reply_free(&r);
        snprintf(path, sizeof(path), "/elsewhere/%d", i);
        r = st_req(t, i % 3 ? "GET" : "BREW", path, NULL, NULL, 0);
        assert_int_equal(r.status, 404);
        st_reply_free(&r);
    }
    st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    json_t *by = json_object_get(st, "by_endpoint");
    /* one bucket for everything unknown, next to the real endpoints */
    assert_int_equal(json_integer_value(st_path(by, "other.404")), 2 * N);
    assert_int_equal(json_integer_value(st_path(by, "GET /Contacts.200")), 1);
    assert_true(json_object_size(by) <= 3);
    assert_int_equal(json_integer_value(json_object_get(st, "calls_total")), 2 * N + 1);
    json_decref(st);
    /* a flood of distinct endpoint names (any method names a route) stays bounded too */
    for (int i = 0; i < 700; i++) {
        char m[32];
        snprintf(m, sizeof(m), "M%d", i);
        r = st_api(t, m, "/Contacts", NULL, NULL);
        assert_int_equal(r.status, 405);
        st_reply_free(&r);
    }
    st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    by = json_object_get(st, "by_endpoint");
    assert_true(json_object_size(by) <= 520);
    assert_true(json_integer_value(st_path(by, "other.405")) > 0);
    assert_int_equal(json_integer_value(json_object_get(st, "calls_total")), 2 * N + 1 + 700);
    json_decref(st);
    st_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_seeding_deterministic_and_realistic),
        cmocka_unit_test(test_user_changes_move_updated),
        cmocka_unit_test(test_config_clock_reset),
        cmocka_unit_test(test_call_log),
        cmocka_unit_test(test_stats_do_not_grow_with_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
