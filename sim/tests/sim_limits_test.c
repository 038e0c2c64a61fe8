/*
 * sim_limits_test.c: xero-sim's rate limits (calls in flight, per minute, per day, per app
 * per minute) with the X-*-Remaining headers on every reply and 429 + Retry-After +
 * X-Rate-Limit-Problem past a limit; windows configurable and per tenant; latency with
 * deterministic jitter.
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

#include "simtest.h"
#include "xs/clock.h"

static long header_num(const st_reply *r, const char *name)
{
    char v[64];
    if (st_header(r, name, v, sizeof(v)) == NULL) {
        fprintf(stderr, "missing header %s\n", name);
        fail();
    }
    return strtol(v, NULL, 10);
}

/* align advances the simulator's clock to just after the start of a fresh window (which is
 * "minute_window_ms_left" or "day_window_ms_left"), so a test never straddles a boundary. */
static void align(st_sim *t, const char *which)
{
    char path[128], body[96];
    snprintf(path, sizeof(path), "/_sim/tenants/%s", t->tenant);
    json_t *j = st_ctl(t, "GET", path, NULL, 200);
    json_int_t left = json_integer_value(st_path(j, which));
    json_decref(j);
    snprintf(body, sizeof(body), "{\"advance_ms\":%lld}", (long long)left + 5);
    json_decref(st_ctl(t, "POST", "/_sim/clock", body, 200));
}

static void test_minute_and_day_limits(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_LIMIT_MINUTE=5", "XS_SIM_LIMIT_DAY=8", "XS_SIM_MINUTE_WINDOW=2s",
                         "XS_SIM_DAY_WINDOW=60s", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    align(t, "limits.day_window_ms_left");
    align(t, "limits.minute_window_ms_left");
    for (int i = 0; i < 5; i++) {
        st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(header_num(&r, "X-MinLimit-Remaining"), 4 - i);
        assert_int_equal(header_num(&r, "X-DayLimit-Remaining"), 7 - i);
        assert_int_equal(header_num(&r, "X-AppMinLimit-Remaining"), 9999 - i);
        st_reply_free(&r);
    }
    st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 429);
    char v[64];
    assert_string_equal(st_header(&r, "X-Rate-Limit-Problem", v, sizeof(v)), "minute");
    long retry = header_num(&r, "Retry-After");
    assert_true(retry >= 1 && retry <= 2);
    assert_int_equal(header_num(&r, "X-MinLimit-Remaining"), 0);
    assert_string_equal(st_str(r.json, "Title"), "Too Many Requests");
    st_reply_free(&r);
    /* a refused call does not count; the next window lets calls through again */
    align(t, "limits.minute_window_ms_left");
    for (int i = 0; i < 3; i++) {
        r = st_api(t, "GET", "/Contacts", NULL, NULL);
        assert_int_equal(r.status, 200);
        st_reply_free(&r);
    }
    /* the day limit (8) is reached inside the new minute window */
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(st_header(&r, "X-Rate-Limit-Problem", v, sizeof(v)), "day");
    retry = header_num(&r, "Retry-After");
    assert_true(retry >= 1 && retry <= 60);
    assert_int_equal(header_num(&r, "X-DayLimit-Remaining"), 0);
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "rate_limited.minute")), 1);
    assert_int_equal(json_integer_value(st_path(st, "rate_limited.day")), 1);
    assert_int_equal(json_integer_value(st_path(st, "by_endpoint.GET /Contacts.429")), 2);
    json_decref(st);
    /* limits change at run time */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"day\":1000}}", 200));
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    st_stop(t);
}

static void test_app_limit_across_tenants_and_headers_everywhere(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", "XS_SIM_LIMIT_APP_MINUTE=4", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    json_t *ten = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    char a[64], b[64];
    snprintf(a, sizeof(a), "%s", st_str(json_array_get(ten, 0), "tenantId"));
    snprintf(b, sizeof(b), "%s", st_str(json_array_get(ten, 1), "tenantId"));
    json_decref(ten);
    for (int i = 0; i < 4; i++) {
        snprintf(t->tenant, sizeof(t->tenant), "%s", i % 2 ? b : a);
        st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
        assert_int_equal(r.status, 200);
        st_reply_free(&r);
    }
    st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 429);
    char v[64];
    assert_string_equal(st_header(&r, "X-Rate-Limit-Problem", v, sizeof(v)), "appminute");
    assert_int_equal(header_num(&r, "X-AppMinLimit-Remaining"), 0);
    st_reply_free(&r);
    /* every accounting reply carries the three headers: 404, 401 and 403 too */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"app_minute\":100}}", 200));
    r = st_api(t, "GET", "/Contacts/00000000-0000-0000-0000-000000000009", NULL, NULL);
    assert_int_equal(r.status, 404);
    header_num(&r, "X-MinLimit-Remaining");
    header_num(&r, "X-DayLimit-Remaining");
    header_num(&r, "X-AppMinLimit-Remaining");
    st_reply_free(&r);
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    header_num(&r, "X-MinLimit-Remaining");
    header_num(&r, "X-AppMinLimit-Remaining");
    st_reply_free(&r);
    st_stop(t);
}

typedef struct par {
    st_sim *t;
    long status;
    char problem[32];
    char retry[16];
} par;

static void *one_call(void *arg)
{
    par *p = arg;
    CURL *h = curl_easy_init();
    char url[256], auth[4200], ten[128];
    snprintf(url, sizeof(url), "%s/api.xro/2.0/Contacts", p->t->base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", p->t->tenant);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    hl = curl_slist_append(hl, ten);
    FILE *devnull = fopen("/dev/null", "w");
    char *hdrs = NULL;
    size_t hlen = 0;
    FILE *hf = open_memstream(&hdrs, &hlen);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, devnull);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &p->status);
    }
    fclose(hf);
    const char *x = hdrs ? strcasestr(hdrs, "X-Rate-Limit-Problem: ") : NULL;
    if (x != NULL) {
        sscanf(x + 22, "%31s", p->problem);
    }
    x = hdrs ? strcasestr(hdrs, "Retry-After: ") : NULL;
    if (x != NULL) {
        sscanf(x + 13, "%15s", p->retry);
    }
    free(hdrs);
    fclose(devnull);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return NULL;
}

static void test_concurrent_limit(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_LIMIT_CONCURRENT=2", "XS_SIM_LATENCY=400ms", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    enum { N = 6 };
    par ps[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&ps[i], 0, sizeof(ps[i]));
        ps[i].t = t;
        pthread_create(&th[i], NULL, one_call, &ps[i]);
    }
    int ok = 0, limited = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (ps[i].status == 200) {
            ok++;
        } else if (ps[i].status == 429) {
            limited++;
            assert_string_equal(ps[i].problem, "concurrent");
            assert_string_equal(ps[i].retry, "1");
        }
    }
    assert_int_equal(ok + limited, N);
    assert_true(ok >= 2);
    assert_true(limited >= 1);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    char key[128];
    snprintf(key, sizeof(key), "max_in_flight.tenants.%s", t->tenant);
    assert_int_equal(json_integer_value(st_path(st, key)), 2);
    assert_int_equal(json_integer_value(st_path(st, "max_in_flight.app")), 2);
    assert_int_equal(json_integer_value(st_path(st, "rate_limited.concurrent")), limited);
    json_decref(st);
    st_stop(t);
}

/* latencies returns the latency drawn for each of n identical-sequence calls. */
static void latencies(const char *seed, long *out, int n)
{
    char s[64];
    snprintf(s, sizeof(s), "XS_SIM_SEED=%s", seed);
    const char *env[] = {s, "XS_SIM_LATENCY=5ms", "XS_SIM_LATENCY_JITTER=40ms", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    for (int i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/Contacts?page=%d", 1 + i % 3);
        st_reply r = st_api(t, "GET", path, NULL, NULL);
        assert_int_equal(r.status, 200);
        st_reply_free(&r);
    }
    json_t *calls = st_ctl(t, "GET", "/_sim/calls", NULL, 200);
    assert_int_equal(json_array_size(calls), n);
    for (int i = 0; i < n; i++) {
        out[i] = (long)json_integer_value(json_object_get(json_array_get(calls, i), "latency_ms"));
        assert_true(out[i] >= 5 && out[i] <= 45);
        assert_true(json_integer_value(json_object_get(json_array_get(calls, i), "ms")) >= 5);
    }
    json_decref(calls);
    st_stop(t);
}

static void test_latency_deterministic(void **state)
{
    (void)state;
    enum { N = 12 };
    long a[N], b[N], c[N];
    latencies("77", a, N);
    latencies("77", b, N);
    latencies("78", c, N);
    int same = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i], b[i]);
        same += a[i] == c[i];
    }
    assert_true(same < N);
    /* fixed latency is felt by the client */
    const char *env[] = {"XS_SIM_LATENCY=250ms", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    int64_t t0 = xs_clock_mono_ms();
    st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(xs_clock_mono_ms() - t0 >= 250);
    st_reply_free(&r);
    /* and can be switched off at run time */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":0}}", 200));
    t0 = xs_clock_mono_ms();
    r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_true(xs_clock_mono_ms() - t0 < 200);
    st_reply_free(&r);
    st_stop(t);
}

static void test_headers_on_unknown_resources_and_paths(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_SERVE_AT_ROOT=false", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    char auth[4200], ten[100];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *with[] = {auth, ten, NULL};
    const char *paths[] = {"/api.xro/2.0/Nothing", "/api.xro/2.0/Contacts/a/b",
                           "/api.xro/2.0/",        "/api.xro/2.0",
                           "/API.XRO/2.0/nothing", "/api.xro/2.0/Contacts/"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        for (int auth_given = 0; auth_given < 2; auth_given++) {
            st_reply r = st_req(t, "GET", paths[i], NULL, auth_given ? with : NULL, 0);
            if (r.status != 404 || strstr(r.headers, "X-AppMinLimit-Remaining") == NULL) {
                fprintf(stderr, "%s -> %ld\n%s\n", paths[i], r.status, r.headers);
            }
            assert_int_equal(r.status, 404);
            header_num(&r, "X-MinLimit-Remaining");
            header_num(&r, "X-DayLimit-Remaining");
            header_num(&r, "X-AppMinLimit-Remaining");
            char v[64];
            assert_non_null(st_header(&r, "Xero-Correlation-Id", v, sizeof(v)));
            st_reply_free(&r);
        }
    }
    /* the tenant's real numbers: a 404 does not count, and shows what is left */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"minute\":50,\"day\":70}}", 200));
    align(t, "minute_window_ms_left");
    st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(header_num(&r, "X-MinLimit-Remaining"), 49);
    st_reply_free(&r);
    r = st_req(t, "GET", "/api.xro/2.0/Nothing", NULL, with, 0);
    assert_int_equal(header_num(&r, "X-MinLimit-Remaining"), 49);
    assert_true(header_num(&r, "X-DayLimit-Remaining") < 70);
    st_reply_free(&r);
    st_stop(t);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minute_and_day_limits),
        cmocka_unit_test(test_app_limit_across_tenants_and_headers_everywhere),
        cmocka_unit_test(test_concurrent_limit),
        cmocka_unit_test(test_latency_deterministic),
        cmocka_unit_test(test_headers_on_unknown_resources_and_paths),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
