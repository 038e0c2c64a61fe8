/*
 * auth_test.c: OAuth 2.0 connections end to end. A real PostgreSQL, a real xero-sim, the
 * orchestrator and two xs-auth replicas over nng: the whole connect flow; refused states
 * (missing, wrong, expired, replayed) and a tampered PKCE verifier; 50 concurrent token
 * requests across both replicas causing exactly one refresh at the simulator; a lost refresh
 * reply recovered inside the grace window; a revoked grant becoming needs_reauth; key
 * rotation; tokens unreadable without the key; a tampered ciphertext refused; disconnect.
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
#include <unistd.h>

#include "engine.h"
#include "xs/crypto.h"

static xst_engine *E;
static char *ORG;
static char CONN1[40], CONN2[40];
static xst_proc *AUTH1, *AUTH2;

/* The access and refresh tokens read back from the store in test_store_is_sealed, searched
 * for in every log at the end. */
static char *SEEN_ACCESS, *SEEN_REFRESH;

static const char *err_field(const xst_http *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "field"));
}

static const char *err_message(const xst_http *r)
{
    const char *m =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
    return m != NULL ? m : "";
}

static char *sql1(const char *sql, const char *p1)
{
    const char *p[] = {p1};
    return xst_engine_sql(E, sql, p1 != NULL ? 1 : 0, p);
}

static long token_calls(void)
{
    return xst_engine_sim_calls(E, "POST /connect/token", 0);
}

/* key_of reads a base64 key as the service does. */
static xs_aead_key key_of(const char *b64)
{
    xs_aead_key k;
    assert_int_equal(xs_aead_key_from_base64(b64, &k), XS_OK);
    return k;
}

/* open_sealed opens a bytea "\x..." read from the store, or returns NULL. */
static char *open_sealed(const char *b64key, const char *hex, const char *aad)
{
    xs_aead_key k = key_of(b64key);
    uint8_t *ct = NULL, *pt = NULL;
    size_t n = 0, ptn = 0;
    assert_int_equal(xs_hex_decode(hex + 2, strlen(hex + 2), &ct, &n), XS_OK);
    xs_err e = xs_aead_open(&k, ct, n, aad, strlen(aad), &pt, &ptn);
    free(ct);
    return e == XS_OK ? (char *)pt : NULL;
}

static xst_http check(const char *conn, bool force)
{
    char path[200];
    snprintf(path, sizeof(path), "/v1/connections/%s/check%s", conn,
             force ? "?force_refresh=true" : "");
    return xst_engine_api(E, "POST", path, NULL);
}

static void expire_access_token(void)
{
    free(sql1("UPDATE sync.grants SET access_expires_at = now() WHERE id = (SELECT grant_id FROM "
              "sync.connections WHERE id = $1)",
              CONN1));
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    E = xst_engine_new("auth");
    char *sim_env[] = {"XS_SIM_TENANTS=2", "XS_SIM_REQUIRE_PKCE=true", NULL};
    xst_engine_start_sim(E, sim_env);
    xst_engine_start_orchestrator(E, NULL);
    AUTH1 = xst_engine_start_service(E, "auth", "auth-1", NULL);
    AUTH2 = xst_engine_start_service(E, "auth", "auth-2", NULL);
    if (!xst_engine_wait_live(E, "auth", 2, 20000)) {
        xst_log_dump(AUTH1);
        xst_die("two auth replicas did not come up");
    }
    ORG = xst_engine_org(E, "Acme Coaching");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = xst_engine_free(E);
    free(ORG);
    free(SEEN_ACCESS);
    free(SEEN_REFRESH);
    return bad == 0 ? 0 : -1;
}

/* The REST API refuses bad connect requests, naming the field, and needs its key. */
static void test_authorize_validation(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/connections/authorize", E->api);
    xst_http r = xst_http_do("POST", url, "{}", NULL, 5000);
    assert_int_equal(r.status, 401);
    xst_http_free(&r);

    r = xst_engine_api(E, "POST", "/v1/connections/authorize", "{\"organisation_id\":\"acme\"}");
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "organisation_id");
    xst_http_free(&r);

    r = xst_engine_api(E, "POST", "/v1/connections/authorize",
                       "{\"organisation_id\":\"6c1d2a1e-0000-4000-8000-000000000000\"}");
    assert_int_equal(r.status, 404);
    assert_string_equal(err_field(&r), "organisation_id");
    xst_http_free(&r);

    char body[512];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"redirect_uri\":\"https://evil.example/cb\"}", ORG);
    r = xst_engine_api(E, "POST", "/v1/connections/authorize", body);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "redirect_uri");
    xst_http_free(&r);

    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\",\"scopes\":\"accounting.contacts\"}",
             ORG);
    r = xst_engine_api(E, "POST", "/v1/connections/authorize", body);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "scopes");
    xst_http_free(&r);

    /* A good request: Xero's authorize URL with S256 PKCE and a state. */
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\"}", ORG);
    r = xst_engine_api(E, "POST", "/v1/connections/authorize", body);
    assert_int_equal(r.status, 201);
    const char *u = json_string_value(json_object_get(r.json, "authorize_url"));
    assert_non_null(u);
    assert_non_null(strstr(u, "/identity/connect/authorize?"));
    assert_non_null(strstr(u, "code_challenge_method=S256"));
    assert_non_null(strstr(u, "code_challenge="));
    assert_non_null(strstr(u, "state="));
    assert_non_null(strstr(u, "offline_access"));
    assert_non_null(json_object_get(r.json, "state_expires_at"));
    xst_http_free(&r);
}

/* The whole flow: two tenants consented, two connections stored, no token shown anywhere. */
static void test_connect_flow(void **state)
{
    (void)state;
    xst_http cb = xst_engine_connect(E, ORG);
    if (cb.status != 200) {
        fprintf(stderr, "callback: %ld %s\n", cb.status, cb.body);
    }
    assert_int_equal(cb.status, 200);
    assert_string_equal(json_string_value(json_object_get(cb.json, "organisation_id")), ORG);
    json_t *conns = json_object_get(cb.json, "connections");
    assert_int_equal(json_array_size(conns), 2);
    snprintf(CONN1, sizeof(CONN1), "%s",
             json_string_value(json_object_get(json_array_get(conns, 0), "id")));
    snprintf(CONN2, sizeof(CONN2), "%s",
             json_string_value(json_object_get(json_array_get(conns, 1), "id")));
    assert_true(json_is_true(json_object_get(json_array_get(conns, 0), "created")));
    assert_null(strstr(cb.body, "token"));

    /* The tenants are the simulator's. */
    xst_http t = xst_engine_simctl(E, "GET", "/_sim/tenants", NULL);
    assert_int_equal(json_array_size(t.json), 2);
    for (size_t i = 0; i < 2; i++) {
        const char *tid = json_string_value(json_object_get(json_array_get(t.json, i), "tenantId"));
        assert_non_null(tid);
        assert_non_null(strstr(cb.body, tid));
    }
    xst_http_free(&t);
    xst_http_free(&cb);

    char path[256];
    snprintf(path, sizeof(path), "/v1/connections?organisation_id=%s", ORG);
    xst_http l = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(l.status, 200);
    json_t *items = json_object_get(l.json, "connections");
    assert_int_equal(json_array_size(items), 2);
    json_t *c = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(c, "status")), "active");
    assert_non_null(json_string_value(json_object_get(c, "access_expires_at")));
    assert_non_null(json_string_value(json_object_get(c, "tenant_name")));
    json_t *scopes = json_object_get(c, "scopes");
    bool offline = false;
    for (size_t i = 0; i < json_array_size(scopes); i++) {
        offline |= strcmp(json_string_value(json_array_get(scopes, i)), "offline_access") == 0;
    }
    assert_true(offline);
    assert_null(strstr(l.body, "token\""));
    assert_null(strstr(l.body, "sealed"));
    xst_http_free(&l);

    snprintf(path, sizeof(path), "/v1/connections/%s", CONN1);
    xst_http g = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(g.status, 200);
    assert_string_equal(json_string_value(json_object_get(g.json, "id")), CONN1);
    xst_http_free(&g);
    g = xst_engine_api(E, "GET", "/v1/connections/not-a-uuid", NULL);
    assert_int_equal(g.status, 400);
    xst_http_free(&g);
    g = xst_engine_api(E, "GET", "/v1/connections/6c1d2a1e-0000-4000-8000-000000000000", NULL);
    assert_int_equal(g.status, 404);
    xst_http_free(&g);

    /* Both tenants share one grant, sealed with key A. */
    char *n = sql1("SELECT count(DISTINCT grant_id) FROM sync.connections", NULL);
    assert_string_equal(n, "1");
    free(n);
    xs_aead_key a = key_of(XST_TOKEN_KEY_A);
    char *kid = sql1("SELECT key_id FROM sync.grants", NULL);
    assert_string_equal(kid, a.id);
    free(kid);

    xst_http ck = check(CONN1, false);
    assert_int_equal(ck.status, 200);
    assert_true(json_is_true(json_object_get(ck.json, "tenant_connected")));
    assert_false(json_is_true(json_object_get(ck.json, "refreshed")));
    xst_http_free(&ck);
}

/* authorize_and_consent returns the callback URL Xero redirected to (new). */
static char *authorize_and_consent(void)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\"}", ORG);
    xst_http a = xst_engine_api(E, "POST", "/v1/connections/authorize", body);
    assert_int_equal(a.status, 201);
    xst_http c = xst_http_do("GET", json_string_value(json_object_get(a.json, "authorize_url")),
                             NULL, NULL, 10000);
    assert_int_equal(c.status, 302);
    assert_non_null(c.location);
    char *loc = strdup(c.location);
    xst_http_free(&a);
    xst_http_free(&c);
    return loc;
}

/* query_value copies parameter name of url into buf (percent-decoding not needed: states and
 * codes are base64url). */
static void query_value(const char *url, const char *name, char *buf, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "%s=", name);
    const char *p = strstr(url, key);
    while (p != NULL && p[-1] != '?' && p[-1] != '&') {
        p = strstr(p + 1, key);
    }
    assert_non_null(p);
    p += strlen(key);
    size_t n = strcspn(p, "&");
    snprintf(buf, cap, "%.*s", (int)n, p);
}

/* Missing, unknown, expired and replayed states are refused; so is a declined consent. */
static void test_state_refusals(void **state)
{
    (void)state;
    char url[1024];
    snprintf(url, sizeof(url), "%s/v1/oauth/callback?code=abc", E->api);
    xst_http r = xst_http_do("GET", url, NULL, NULL, 10000);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "state");
    xst_http_free(&r);

    snprintf(url, sizeof(url), "%s/v1/oauth/callback?code=abc&state=not-a-state-we-made", E->api);
    r = xst_http_do("GET", url, NULL, NULL, 10000);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "state");
    assert_non_null(strstr(err_message(&r), "unknown"));
    xst_http_free(&r);

    /* Replayed: the first use connects, the second is refused. */
    char *loc = authorize_and_consent();
    r = xst_http_do("GET", loc, NULL, NULL, 30000);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    r = xst_http_do("GET", loc, NULL, NULL, 30000);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(err_message(&r), "already used"));
    xst_http_free(&r);
    free(loc);

    /* Expired. */
    loc = authorize_and_consent();
    free(sql1("UPDATE sync.oauth_states SET expires_at = now() - interval '1 second' WHERE "
              "used_at IS NULL",
              NULL));
    r = xst_http_do("GET", loc, NULL, NULL, 30000);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(err_message(&r), "expired"));
    xst_http_free(&r);
    free(loc);

    /* Declined at Xero: the state is spent, nothing is stored. */
    loc = authorize_and_consent();
    char st[256];
    query_value(loc, "state", st, sizeof(st));
    snprintf(url, sizeof(url), "%s/v1/oauth/callback?state=%s&error=access_denied", E->api, st);
    r = xst_http_do("GET", url, NULL, NULL, 30000);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(err_message(&r), "access_denied"));
    xst_http_free(&r);
    free(loc);
}

/* browser_consent goes through Xero's consent as a person's browser does: the authorize URL
 * answers the consent page, whose form is posted with `action` (allow or cancel) and the
 * first of the simulator's tenants; returns where Xero redirected (new). */
static char *browser_consent(const char *action)
{
    static const char *const html[] = {"Accept: text/html,application/xhtml+xml", NULL};
    char body[128];
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\"}", ORG);
    xst_http a = xst_engine_api(E, "POST", "/v1/connections/authorize", body);
    assert_int_equal(a.status, 201);
    const char *url = json_string_value(json_object_get(a.json, "authorize_url"));
    xst_http page = xst_http_do("GET", url, NULL, html, 10000);
    assert_int_equal(page.status, 200);
    assert_non_null(strstr(page.body, "id=\"allow\""));
    xst_http t = xst_engine_simctl(E, "GET", "/_sim/tenants", NULL);
    const char *tid = json_string_value(json_object_get(json_array_get(t.json, 0), "tenantId"));
    assert_non_null(tid);
    /* The form carries the authorize request's own parameters (hidden fields). */
    char form[4096], post[512];
    snprintf(form, sizeof(form), "%s&action=%s&tenant=%s", strchr(url, '?') + 1, action, tid);
    snprintf(post, sizeof(post), "%.*s/consent", (int)(strchr(url, '?') - url), url);
    const char *ct[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    xst_http c = xst_http_do("POST", post, form, ct, 10000);
    assert_int_equal(c.status, 302);
    assert_non_null(c.location);
    char *loc = strdup(c.location);
    xst_http_free(&c);
    xst_http_free(&t);
    xst_http_free(&page);
    xst_http_free(&a);
    return loc;
}

/* expect_sent_to follows Xero's redirect loc as a browser and checks that the callback sends
 * it on (303) to a place starting with `want` (after the origin). */
static void expect_sent_to(const char *loc, const char *want)
{
    static const char *const html[] = {"Accept: text/html,application/xhtml+xml", NULL};
    xst_http r = xst_http_do("GET", loc, NULL, html, 30000);
    assert_int_equal(r.status, 303);
    if (r.location == NULL || strstr(r.location, want) == NULL) {
        fail_msg("callback sent the browser to %s, not %s",
                 r.location != NULL ? r.location : "nowhere", want);
    }
    xst_http_free(&r);
}

/* The dashboard's connect button: Xero brings the person's browser (Accept: text/html) back to
 * the callback, which completes the connection and sends the browser on to the dashboard with
 * what happened (303); a browser is never shown the API's JSON. */
static void test_browser_callback_to_dashboard(void **state)
{
    (void)state;
    char *loc = browser_consent("allow");
    char want[160];
    snprintf(want, sizeof(want), "/ui/#/connections?connected=1&organisation=%s", ORG);
    expect_sent_to(loc, want);
    /* Used once: the same redirect again is an expired link, told to the dashboard. */
    expect_sent_to(loc, "/ui/#/connections?oauth_error=expired");
    free(loc);

    /* The person cancels at Xero: declined, and nothing more is connected. */
    long before = xst_engine_sql_longf(E, "SELECT count(*) FROM sync.connections", 0);
    loc = browser_consent("cancel");
    assert_non_null(strstr(loc, "error=access_denied"));
    expect_sent_to(loc, "/ui/#/connections?oauth_error=declined");
    free(loc);
    assert_int_equal(xst_engine_sql_longf(E, "SELECT count(*) FROM sync.connections", 0), before);
}

/* A verifier that does not match the challenge is refused by Xero, and nothing is stored. */
static void test_tampered_verifier(void **state)
{
    (void)state;
    char *before = sql1("SELECT count(*) FROM sync.grants", NULL);
    char *loc = authorize_and_consent();
    char st[256];
    query_value(loc, "state", st, sizeof(st));
    char hash[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(st, strlen(st), hash);
    /* Seal another, well-formed verifier in its place, exactly as the service would. */
    char aad[160];
    snprintf(aad, sizeof(aad), "xs:state:%s:verifier", hash);
    const char *other = "an-entirely-different-verifier-of-the-right-length-0123456789abcd";
    xs_aead_key a = key_of(XST_TOKEN_KEY_A);
    uint8_t *ct = NULL;
    size_t n = 0;
    assert_int_equal(xs_aead_seal(&a, other, strlen(other), aad, strlen(aad), &ct, &n), XS_OK);
    char *hex = malloc(2 * n + 3);
    hex[0] = '\\';
    hex[1] = 'x';
    xs_hex_encode(ct, n, hex + 2);
    free(ct);
    const char *p[] = {hex, hash};
    free(xst_engine_sql(E,
                        "UPDATE sync.oauth_states SET code_verifier_sealed = $1 WHERE state_hash "
                        "= $2 RETURNING 1",
                        2, p));
    free(hex);
    xst_http r = xst_http_do("GET", loc, NULL, NULL, 30000);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(err_message(&r), "invalid_grant"));
    xst_http_free(&r);
    free(loc);
    char *after = sql1("SELECT count(*) FROM sync.grants", NULL);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

typedef struct job {
    pthread_t t;
    long status;
    bool refreshed;
} job;

static void *check_one(void *arg)
{
    job *j = arg;
    xst_http r = check(CONN1, false);
    j->status = r.status;
    j->refreshed = json_is_true(json_object_get(r.json, "refreshed"));
    xst_http_free(&r);
    return NULL;
}

/* 50 concurrent requests for an expiring token, across two auth replicas: one refresh. */
static void test_concurrent_refresh_is_single(void **state)
{
    (void)state;
    expire_access_token();
    long before = token_calls();
    enum { N = 50 };
    job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){0};
        assert_int_equal(pthread_create(&jobs[i].t, NULL, check_one, &jobs[i]), 0);
    }
    int refreshed = 0, ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(jobs[i].t, NULL);
    }
    for (int i = 0; i < N; i++) {
        if (jobs[i].status != 200) {
            fprintf(stderr, "check %d: status %ld\n", i, jobs[i].status);
        }
        ok += jobs[i].status == 200;
        refreshed += jobs[i].refreshed;
    }
    assert_int_equal(ok, N);
    assert_int_equal(refreshed, 1);
    assert_int_equal(token_calls() - before, 1);
    /* Both replicas took part. */
    assert_true(xst_log_contains(AUTH1, "\"type\":\"auth.check\""));
    assert_true(xst_log_contains(AUTH2, "\"type\":\"auth.check\""));
    /* Every refresh is in the audit, without a token. */
    char *n = sql1("SELECT count(*) FROM sync.api_calls WHERE path = '/connect/token' AND "
                   "status = 200",
                   NULL);
    assert_true(atoi(n) >= 2);
    free(n);
}

/* A refresh whose reply is lost is retried with the same refresh token and works. */
static void test_lost_refresh_reply_recovers(void **state)
{
    (void)state;
    xst_http f = xst_engine_simctl(
        E, "POST", "/_sim/faults",
        "{\"script\":[{\"method\":\"POST\",\"path\":\"/connect/token\",\"fault\":\"lost\","
        "\"times\":1}]}");
    assert_int_equal(f.status, 200);
    xst_http_free(&f);
    expire_access_token();
    long before = token_calls();
    xst_http r = check(CONN1, false);
    if (r.status != 200) {
        fprintf(stderr, "check: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "refreshed")));
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "active");
    xst_http_free(&r);
    assert_true(token_calls() - before >= 2);
    /* The token now stored is the live one: refreshing again works. */
    r = check(CONN1, true);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "refreshed")));
    assert_true(json_is_true(json_object_get(r.json, "tenant_connected")));
    xst_http_free(&r);
    xst_http d = xst_engine_simctl(E, "DELETE", "/_sim/faults", NULL);
    xst_http_free(&d);
}

/* The store holds ciphertext only; the key opens it; a tampered byte is refused cleanly. */
static void test_store_is_sealed(void **state)
{
    (void)state;
    char *grant = sql1("SELECT grant_id FROM sync.connections WHERE id = $1", CONN1);
    char *access = sql1("SELECT access_token_sealed FROM sync.grants WHERE id = $1", grant);
    char *refresh = sql1("SELECT refresh_token_sealed FROM sync.grants WHERE id = $1", grant);
    char aad_a[128], aad_r[128];
    snprintf(aad_a, sizeof(aad_a), "xs:grant:%s:access", grant);
    snprintf(aad_r, sizeof(aad_r), "xs:grant:%s:refresh", grant);
    SEEN_ACCESS = open_sealed(XST_TOKEN_KEY_A, access, aad_a);
    SEEN_REFRESH = open_sealed(XST_TOKEN_KEY_A, refresh, aad_r);
    assert_non_null(SEEN_ACCESS);
    assert_non_null(SEEN_REFRESH);
    /* It is the real token: the simulator accepts it. */
    char hdr[8192];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", SEEN_ACCESS);
    const char *h[] = {hdr, NULL};
    char url[256];
    snprintf(url, sizeof(url), "%s/connections", E->sim);
    xst_http r = xst_http_do("GET", url, NULL, h, 10000);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    /* Not readable without the key, nor with another one, nor moved to another row. */
    assert_null(strstr(access, SEEN_ACCESS));
    char hexed[16384];
    xs_hex_encode(SEEN_ACCESS, strlen(SEEN_ACCESS) < 8000 ? strlen(SEEN_ACCESS) : 8000, hexed);
    assert_null(strstr(access, hexed));
    assert_null(open_sealed(XST_TOKEN_KEY_B, access, aad_a));
    assert_null(open_sealed(XST_TOKEN_KEY_A, access, aad_r));

    /* Flip one byte of the ciphertext: the check fails with a clear error, nothing crashes. */
    free(sql1("UPDATE sync.grants SET access_token_sealed = set_byte(access_token_sealed, 20, "
              "get_byte(access_token_sealed, 20) # 1) WHERE id = $1",
              grant));
    r = check(CONN1, false);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(err_message(&r), "cannot be opened"));
    xst_http_free(&r);
    const char *p[] = {access, grant};
    free(xst_engine_sql(E, "UPDATE sync.grants SET access_token_sealed = $1 WHERE id = $2", 2, p));
    r = check(CONN1, false);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    free(grant);
    free(access);
    free(refresh);
}

/* run_rotate runs `xs-auth rotate-key` to the end and returns its exit code. */
static int run_rotate(void)
{
    char old[300];
    snprintf(old, sizeof(old), "XS_TOKEN_OLD_KEYS=%s", XST_TOKEN_KEY_A);
    char key[300];
    snprintf(key, sizeof(key), "XS_TOKEN_KEY=%s", XST_TOKEN_KEY_B);
    char *extra[] = {key, old, NULL};
    char *argv[] = {(char *)xst_bin("xs-auth"), "rotate-key", NULL};
    xst_proc *p = xst_spawn("rotate-key", xst_bin("xs-auth"), argv, xst_engine_env(E, extra));
    int64_t end = xst_now_ms() + 30000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    int code = xst_stop(p, 1000);
    if (code != 0 || !xst_log_contains(p, "\"grants_resealed\"")) {
        xst_log_dump(p);
    }
    assert_true(xst_log_contains(p, "auth.rotate_key"));
    xst_proc_free(p);
    return code;
}

/* restart_auth stops both replicas and starts them again with the engine's current keys. */
static void restart_auth(void)
{
    xst_proc *old[] = {AUTH1, AUTH2};
    for (size_t i = 0; i < 2 && SEEN_ACCESS != NULL; i++) {
        assert_false(xst_log_contains(old[i], SEEN_ACCESS));
        assert_false(xst_log_contains(old[i], SEEN_REFRESH));
    }
    assert_int_equal(xst_stop(AUTH1, 10000), 0);
    assert_int_equal(xst_stop(AUTH2, 10000), 0);
    xst_engine_forget(E, AUTH1);
    xst_engine_forget(E, AUTH2);
    xst_proc_free(AUTH1);
    xst_proc_free(AUTH2);
    AUTH1 = xst_engine_start_service(E, "auth", "auth-1", NULL);
    AUTH2 = xst_engine_start_service(E, "auth", "auth-2", NULL);
    assert_true(xst_engine_wait_live(E, "auth", 2, 20000));
}

/* A new key with the old one kept opens everything; rotate-key re-seals; then the old key
 * can go. Without the right key the service refuses to start and says why. */
static void test_key_rotation(void **state)
{
    (void)state;
    /* Only the new key: refused at start, naming the missing key. */
    char key[300];
    snprintf(key, sizeof(key), "XS_TOKEN_KEY=%s", XST_TOKEN_KEY_B);
    char *only_b[] = {key, NULL};
    xst_proc *p = xst_spawn("auth-wrong-key", xst_bin("xs-auth"), NULL, xst_engine_env(E, only_b));
    int64_t end = xst_now_ms() + 20000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_int_equal(xst_stop(p, 100), 2);
    assert_true(xst_log_contains(p, "XS_TOKEN_OLD_KEYS"));
    assert_false(xst_log_contains(p, XST_TOKEN_KEY_B));
    xst_proc_free(p);

    /* A malformed key: refused before anything else, without echoing it. */
    char *bad[] = {"XS_TOKEN_KEY=c2hvcnQ=", NULL};
    p = xst_spawn("auth-bad-key", xst_bin("xs-auth"), NULL, xst_engine_env(E, bad));
    end = xst_now_ms() + 20000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_int_equal(xst_stop(p, 100), 2);
    assert_true(xst_log_contains(p, "XS_TOKEN_KEY: must be the base64 of exactly 32 bytes"));
    assert_false(xst_log_contains(p, "c2hvcnQ="));
    xst_proc_free(p);

    /* New key, old kept: usable. */
    snprintf(E->token_key, sizeof(E->token_key), "%s", XST_TOKEN_KEY_B);
    snprintf(E->token_old_keys, sizeof(E->token_old_keys), "%s", XST_TOKEN_KEY_A);
    restart_auth();
    xst_http r = check(CONN1, false);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);

    assert_int_equal(run_rotate(), 0);
    xs_aead_key b = key_of(XST_TOKEN_KEY_B);
    char *n =
        sql1("SELECT count(*) FROM sync.grants WHERE key_id IS NOT NULL AND key_id <> $1", b.id);
    assert_string_equal(n, "0");
    free(n);

    /* The old key gone: everything still opens, and refreshes. */
    E->token_old_keys[0] = '\0';
    restart_auth();
    r = check(CONN2, true);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "refreshed")));
    assert_true(json_is_true(json_object_get(r.json, "tenant_connected")));
    xst_http_free(&r);
}

/* The user revokes the app in Xero: the refresh fails with invalid_grant, both connections of
 * the grant need a person, and the reason shows. Connecting again restores them. */
static void test_revoked_grant_needs_reauth(void **state)
{
    (void)state;
    xst_http v = xst_engine_simctl(E, "POST", "/_sim/revoke", "{}");
    assert_int_equal(v.status, 200);
    xst_http_free(&v);
    xst_http r = check(CONN1, true);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "needs_reauth");
    assert_false(json_is_true(json_object_get(r.json, "tenant_connected")));
    xst_http_free(&r);
    const char *ids[] = {CONN1, CONN2};
    for (int i = 0; i < 2; i++) {
        char path[200];
        snprintf(path, sizeof(path), "/v1/connections/%s", ids[i]);
        xst_http g = xst_engine_api(E, "GET", path, NULL);
        assert_string_equal(json_string_value(json_object_get(g.json, "status")), "needs_reauth");
        assert_non_null(
            strstr(json_string_value(json_object_get(g.json, "last_error")), "invalid_grant"));
        xst_http_free(&g);
    }
    assert_true(xst_log_contains(E->orch, "connection.status"));

    xst_http cb = xst_engine_connect(E, ORG);
    assert_int_equal(cb.status, 200);
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    assert_false(json_is_true(json_object_get(c0, "created")));
    assert_string_equal(json_string_value(json_object_get(c0, "status")), "active");
    xst_http_free(&cb);
    r = check(CONN1, false);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "active");
    xst_http_free(&r);
}

/* Disconnect one tenant (its grant still serves the other: no revocation), then the other
 * with purge (the grant is revoked, the row and its data deleted). */
static void test_disconnect(void **state)
{
    (void)state;
    char path[200];
    snprintf(path, sizeof(path), "/v1/connections/%s?purge=maybe", CONN1);
    xst_http r = xst_engine_api(E, "DELETE", path, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(err_field(&r), "purge");
    xst_http_free(&r);

    long dels = xst_engine_sim_calls(E, "DELETE /connections/{id}", 204);
    snprintf(path, sizeof(path), "/v1/connections/%s", CONN1);
    r = xst_engine_api(E, "DELETE", path, NULL);
    if (r.status != 200) {
        fprintf(stderr, "delete: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "removed_at_xero")));
    assert_false(json_is_true(json_object_get(r.json, "revoked")));
    xst_http_free(&r);
    assert_int_equal(xst_engine_sim_calls(E, "DELETE /connections/{id}", 204) - dels, 1);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "disconnected");
    xst_http_free(&r);
    /* A disconnected connection hands out no token. */
    r = check(CONN1, false);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "disconnected");
    xst_http_free(&r);

    snprintf(path, sizeof(path), "/v1/connections/%s?purge=true", CONN2);
    r = xst_engine_api(E, "DELETE", path, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "revoked")));
    assert_true(json_is_true(json_object_get(r.json, "purged")));
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/connections/%s", CONN2);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 404);
    xst_http_free(&r);
}

/* No process of the engine ever wrote a token to its log. */
static void test_no_token_in_logs(void **state)
{
    (void)state;
    assert_non_null(SEEN_ACCESS);
    xst_proc *procs[] = {E->orch, AUTH1, AUTH2};
    for (size_t i = 0; i < 3; i++) {
        assert_false(xst_log_contains(procs[i], SEEN_ACCESS));
        assert_false(xst_log_contains(procs[i], SEEN_REFRESH));
        assert_false(xst_log_contains(procs[i], "xero-sim-secret"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authorize_validation),
        cmocka_unit_test(test_connect_flow),
        cmocka_unit_test(test_state_refusals),
        cmocka_unit_test(test_tampered_verifier),
        cmocka_unit_test(test_concurrent_refresh_is_single),
        cmocka_unit_test(test_lost_refresh_reply_recovers),
        cmocka_unit_test(test_store_is_sealed),
        cmocka_unit_test(test_key_rotation),
        cmocka_unit_test(test_revoked_grant_needs_reauth),
        cmocka_unit_test(test_disconnect),
        cmocka_unit_test(test_no_token_in_logs),
        /* Last: connecting one tenant anew changes the grants the tests above reason about. */
        cmocka_unit_test(test_browser_callback_to_dashboard),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
