/*
 * sim_identity_test.c: xero-sim's OAuth 2.0 identity service: the code flow with PKCE (good,
 * wrong verifier, wrong redirect, wrong client secret, replayed code), refresh rotation and
 * its grace window, revocation, /connections, the bearer and tenant checks of the
 * Accounting API, and the consent page a browser gets (its form: Allow with tenants ticked,
 * with none, Cancel, and tampered or garbage forms).
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

#define SCOPE        "openid offline_access accounting.contacts accounting.transactions"
#define REDIRECT_ENC "http%3A%2F%2F127.0.0.1%3A9%2Fcallback"

static st_reply exchange(st_sim *t, const char *code, const char *verifier, const char *redirect,
                         const char *secret)
{
    char form[1024];
    snprintf(form, sizeof(form), "grant_type=authorization_code&code=%s&redirect_uri=%s%s%s", code,
             redirect ? redirect : REDIRECT_ENC, verifier ? "&code_verifier=" : "",
             verifier ? verifier : "");
    return st_token(t, form, secret);
}

static st_reply refresh(st_sim *t, const char *rt)
{
    char form[512];
    snprintf(form, sizeof(form), "grant_type=refresh_token&refresh_token=%s", rt);
    return st_token(t, form, NULL);
}

static void test_code_flow_pkce(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    char v[64], c[64];
    st_pkce(v, c);
    long status;
    char *code = st_authorize(t, SCOPE, c, NULL, &status);
    assert_int_equal(status, 302);
    assert_non_null(code);
    st_reply r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    assert_string_equal(st_str(r.json, "token_type"), "Bearer");
    assert_int_equal(json_integer_value(json_object_get(r.json, "expires_in")), 1800);
    assert_true(strlen(st_str(r.json, "access_token")) > 100);
    assert_true(strlen(st_str(r.json, "refresh_token")) > 20);
    assert_true(strlen(st_str(r.json, "id_token")) > 20);
    assert_string_equal(st_str(r.json, "scope"), SCOPE);
    char cc[128];
    assert_non_null(st_header(&r, "Cache-Control", cc, sizeof(cc)));
    assert_string_equal(cc, "no-store");
    /* the access token works */
    snprintf(t->token, sizeof(t->token), "%s", st_str(r.json, "access_token"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);

    /* a replayed code is refused */
    r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    free(code);
    st_stop(t);
}

static void test_code_flow_refusals(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    char v[64], c[64], v2[64], c2[64];
    st_pkce(v, c);
    st_pkce(v2, c2);
    long status;

    /* wrong verifier */
    char *code = st_authorize(t, SCOPE, c, NULL, &status);
    st_reply r = exchange(t, code, v2, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    /* no verifier when a challenge was given */
    r = exchange(t, code, NULL, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    /* wrong redirect_uri at the exchange */
    r = exchange(t, code, v, "http%3A%2F%2F127.0.0.1%3A9%2Fother", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    /* wrong client secret */
    r = exchange(t, code, v, NULL, "not-the-secret");
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_client");
    st_reply_free(&r);
    /* the code is still good after refused attempts */
    r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    free(code);

    /* an unregistered redirect_uri is refused without redirecting */
    code = st_authorize(t, SCOPE, c, "http://evil.example/cb", &status);
    assert_null(code);
    assert_int_equal(status, 400);
    /* an unknown scope redirects with invalid_scope */
    code = st_authorize(t, "accounting.everything", c, NULL, &status);
    assert_null(code);
    assert_int_equal(status, 302);
    /* a plain PKCE method is refused */
    st_reply a = st_req(t, "GET",
                        "/identity/connect/authorize?response_type=code&client_id=xero-sim-client&"
                        "redirect_uri=" REDIRECT_ENC "&scope=openid&code_challenge=abc&"
                        "code_challenge_method=plain",
                        NULL, NULL, 0);
    char loc[1024];
    assert_int_equal(a.status, 302);
    assert_non_null(st_header(&a, "Location", loc, sizeof(loc)));
    assert_non_null(strstr(loc, "error=invalid_request"));
    st_reply_free(&a);
    /* an unknown client_id */
    a = st_req(
        t, "GET",
        "/identity/connect/authorize?response_type=code&client_id=nobody&redirect_uri=" REDIRECT_ENC
        "&scope=openid",
        NULL, NULL, 0);
    assert_int_equal(a.status, 400);
    st_reply_free(&a);
    /* unsupported grant type, missing client authentication */
    r = st_token(t, "grant_type=password&username=a&password=b", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "unsupported_grant_type");
    st_reply_free(&r);
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    r = st_req(t, "POST", "/connect/token", "grant_type=refresh_token&refresh_token=x", h, 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_client");
    st_reply_free(&r);
    st_stop(t);
}

static void test_code_expires(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_CODE_TTL=1s", NULL};
    st_sim *t = st_start(env);
    char v[64], c[64];
    st_pkce(v, c);
    long status;
    char *code = st_authorize(t, SCOPE, c, NULL, &status);
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":2000}", 200));
    st_reply r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    free(code);
    st_stop(t);
}

/* Rotation: T0 -> T1. Inside the grace period T0 works again while T1 is unused (and T1 gives
 * way to its replacement); once the current token has been used, T0 is dead. Outside the
 * grace period a rotated token is invalid_grant. */
static void test_refresh_rotation_and_grace(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    st_connect(t);
    char t0[256], t1[256], t2[256], t3[256];
    snprintf(t0, sizeof(t0), "%s", t->refresh);

    st_reply r = refresh(t, t0);
    assert_int_equal(r.status, 200);
    snprintf(t1, sizeof(t1), "%s", st_str(r.json, "refresh_token"));
    assert_string_not_equal(t0, t1);
    st_reply_free(&r);

    /* the reply carrying T1 was "lost": T0 works again and yields T2; T1 gives way */
    r = refresh(t, t0);
    assert_int_equal(r.status, 200);
    snprintf(t2, sizeof(t2), "%s", st_str(r.json, "refresh_token"));
    assert_string_not_equal(t2, t1);
    snprintf(t->token, sizeof(t->token), "%s", st_str(r.json, "access_token"));
    st_reply_free(&r);
    r = refresh(t, t1);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);

    /* T2 is used: from now on T0 is rotated out for good */
    r = refresh(t, t2);
    assert_int_equal(r.status, 200);
    snprintf(t3, sizeof(t3), "%s", st_str(r.json, "refresh_token"));
    st_reply_free(&r);
    r = refresh(t, t0);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);

    /* T2 (replaced by T3, which is unused) is inside its grace period ... */
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":1740000}", 200));
    r = refresh(t, t2);
    assert_int_equal(r.status, 200);
    snprintf(t3, sizeof(t3), "%s", st_str(r.json, "refresh_token"));
    st_reply_free(&r);
    /* ... and after 30 minutes it is not */
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":120000}", 200));
    r = refresh(t, t2);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    /* the current one still works */
    r = refresh(t, t3);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    st_stop(t);
}

static void test_refresh_expiry_and_access_expiry(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_ACCESS_TOKEN_TTL=2s", "XS_SIM_REFRESH_TTL=10s", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    st_reply r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":3000}", 200));
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(st_str(r.json, "Detail"), "TokenExpired"));
    assert_string_equal(st_str(r.json, "Title"), "Unauthorized");
    st_reply_free(&r);
    /* an unused refresh token dies after its lifetime */
    json_decref(st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":11000}", 200));
    r = refresh(t, t->refresh);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    st_stop(t);
}

static void test_no_offline_access_no_refresh_token(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    char v[64], c[64];
    st_pkce(v, c);
    long status;
    char *code = st_authorize(t, "accounting.contacts", c, NULL, &status);
    st_reply r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_null(json_object_get(r.json, "refresh_token"));
    assert_null(json_object_get(r.json, "id_token"));
    st_reply_free(&r);
    free(code);
    st_stop(t);
}

static void test_connections_and_revocation(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", NULL};
    st_sim *t = st_start(env);
    st_connect(t);
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    const char *h[] = {auth, NULL};
    st_reply r = st_req(t, "GET", "/connections", NULL, h, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    json_t *c0 = json_array_get(r.json, 0);
    assert_string_equal(st_str(c0, "tenantType"), "ORGANISATION");
    assert_string_equal(st_str(c0, "tenantName"), "Demo Company (NZ)");
    assert_true(strlen(st_str(c0, "createdDateUtc")) > 19);
    char conn_id[64], second_tenant[64];
    snprintf(conn_id, sizeof(conn_id), "%s", st_str(json_array_get(r.json, 1), "id"));
    snprintf(second_tenant, sizeof(second_tenant), "%s",
             st_str(json_array_get(r.json, 1), "tenantId"));
    st_reply_free(&r);

    /* disconnect the second tenant: 204, then 403 for it, 404 for a second delete */
    char path[128];
    snprintf(path, sizeof(path), "/connections/%s", conn_id);
    r = st_req(t, "DELETE", path, NULL, h, 0);
    assert_int_equal(r.status, 204);
    st_reply_free(&r);
    r = st_req(t, "DELETE", path, NULL, h, 0);
    assert_int_equal(r.status, 404);
    st_reply_free(&r);
    char first[64];
    snprintf(first, sizeof(first), "%s", t->tenant);
    snprintf(t->tenant, sizeof(t->tenant), "%s", second_tenant);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 403);
    assert_string_equal(st_str(r.json, "Detail"), "AuthenticationUnsuccessful");
    st_reply_free(&r);
    snprintf(t->tenant, sizeof(t->tenant), "%s", first);

    /* revoking the refresh token removes every connection and kills the tokens */
    char cred_form[512];
    snprintf(cred_form, sizeof(cred_form), "token=%s", t->refresh);
    char *b64 = NULL;
    const char *cred = "xero-sim-client:xero-sim-secret";
    xs_base64_encode(cred, strlen(cred), &b64);
    char basic[256];
    snprintf(basic, sizeof(basic), "Authorization: Basic %s", b64);
    free(b64);
    const char *rh[] = {basic, "Content-Type: application/x-www-form-urlencoded", NULL};
    r = st_req(t, "POST", "/connect/revocation", cred_form, rh, 0);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    r = refresh(t, t->refresh);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(r.json, "error"), "invalid_grant");
    st_reply_free(&r);
    json_t *id = st_ctl(t, "GET", "/_sim/identity", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(id, "connections")), 0);
    json_decref(id);
    st_stop(t);
}

static void test_bearer_and_tenant_checks(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    st_connect(t);
    /* no token */
    st_reply r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, NULL, 0);
    assert_int_equal(r.status, 401);
    char v[128];
    assert_non_null(st_header(&r, "WWW-Authenticate", v, sizeof(v)));
    assert_non_null(st_header(&r, "X-MinLimit-Remaining", v, sizeof(v)));
    st_reply_free(&r);
    /* a bad token */
    char real[4096];
    snprintf(real, sizeof(real), "%s", t->token);
    snprintf(t->token, sizeof(t->token), "not.a.token");
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(st_str(r.json, "Detail"), "AuthenticationUnsuccessful");
    st_reply_free(&r);
    snprintf(t->token, sizeof(t->token), "%s", real);
    /* missing and unknown tenant */
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    const char *h[] = {auth, NULL};
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, h, 0);
    assert_int_equal(r.status, 403);
    st_reply_free(&r);
    const char *h2[] = {auth, "xero-tenant-id: 00000000-0000-0000-0000-000000000001", NULL};
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, h2, 0);
    assert_int_equal(r.status, 403);
    assert_string_equal(st_str(r.json, "Title"), "Forbidden");
    st_reply_free(&r);
    /* a tenant created after consent is not connected until the user consents again */
    json_t *nt = st_ctl(t, "POST", "/_sim/tenants", "{\"name\":\"Later Ltd\"}", 201);
    char later[64];
    snprintf(later, sizeof(later), "%s", st_str(nt, "tenantId"));
    json_decref(nt);
    char th[128];
    snprintf(th, sizeof(th), "xero-tenant-id: %s", later);
    const char *h3[] = {auth, th, NULL};
    r = st_req(t, "GET", "/api.xro/2.0/Contacts", NULL, h3, 0);
    assert_int_equal(r.status, 403);
    st_reply_free(&r);
    /* scopes: a token without accounting.settings cannot read Accounts */
    char v2[64], c2[64];
    st_pkce(v2, c2);
    long status;
    char *code = st_authorize(t, "accounting.contacts.read", c2, NULL, &status);
    r = exchange(t, code, v2, NULL, NULL);
    snprintf(t->token, sizeof(t->token), "%s", st_str(r.json, "access_token"));
    st_reply_free(&r);
    free(code);
    r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(st_str(r.json, "Detail"), "AuthorizationUnsuccessful");
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Contacts", "{\"Contacts\":[{\"Name\":\"x\"}]}", NULL);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    st_stop(t);
}

/* tenant_id writes the id of the simulator's tenant at index i (in creation order). */
static void tenant_id(st_sim *t, size_t i, char out[64])
{
    json_t *ten = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    assert_true(i < json_array_size(ten));
    snprintf(out, 64, "%s", st_str(json_array_get(ten, i), "tenantId"));
    json_decref(ten);
}

/* consent_choose makes the tenant with id the only one the next consent offers. */
static void consent_choose(st_sim *t, const char *id)
{
    char body[200];
    snprintf(body, sizeof(body), "{\"tenants\":[\"%s\"]}", id);
    json_decref(st_ctl(t, "POST", "/_sim/consent", body, 200));
}

static void test_consent_selects_tenants(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=3", NULL};
    st_sim *t = st_start(env);
    char third[64];
    tenant_id(t, 2, third);
    consent_choose(t, third);
    st_connect(t);
    st_reply r = st_connections(t);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(st_str(json_array_get(r.json, 0), "tenantId"), third);
    st_reply_free(&r);
    st_stop(t);
}

/* Every scope the simulator allows by default (XS_SIM_SCOPES), the list an app asks for. */
#define ALL_SCOPES                                                                                 \
    "openid profile email offline_access accounting.contacts accounting.contacts.read "            \
    "accounting.transactions accounting.transactions.read accounting.invoices "                    \
    "accounting.invoices.read accounting.payments accounting.payments.read "                       \
    "accounting.banktransactions accounting.banktransactions.read accounting.settings "            \
    "accounting.settings.read files files.read practicemanager practicemanager.read "              \
    "practicemanager.job practicemanager.job.read practicemanager.client "                         \
    "practicemanager.client.read"

/* query_value finds name in the query of url and writes its decoded value into out (new),
 * or returns NULL. */
static char *query_value(const char *url, const char *name)
{
    const char *q = strchr(url, '?');
    size_t n = strlen(name);
    for (const char *p = q; p != NULL; p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, name, n) != 0 || p[1 + n] != '=') {
            continue;
        }
        const char *v = p + 2 + n;
        size_t len = strcspn(v, "&");
        char *out = malloc(len + 1);
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '%' && i + 2 < len) {
                char hx[3] = {v[i + 1], v[i + 2], '\0'};
                out[o++] = (char)strtol(hx, NULL, 16);
                i += 2;
            } else {
                out[o++] = v[i] == '+' ? ' ' : v[i];
            }
        }
        out[o] = '\0';
        return out;
    }
    return NULL;
}

/* authorize_with runs the authorize step with the given scope and state; it returns the
 * Location (new) of the 302. */
static char *authorize_with(st_sim *t, const char *scope, const char *state, const char *challenge)
{
    char *path = malloc(32768);
    snprintf(path, 32768,
             "/identity/connect/authorize?response_type=code&client_id=xero-sim-client"
             "&redirect_uri=%s&scope=",
             REDIRECT_ENC);
    st_urlenc(path, 32768, scope);
    strcat(path, "&state=");
    st_urlenc(path, 32768, state);
    strcat(path, "&code_challenge_method=S256&code_challenge=");
    st_urlenc(path, 32768, challenge);
    st_reply r = st_req(t, "GET", path, NULL, NULL, 0);
    free(path);
    assert_int_equal(r.status, 302);
    char *loc = malloc(65536);
    assert_non_null(st_header(&r, "Location", loc, 65536));
    st_reply_free(&r);
    return loc;
}

static void test_authorize_redirect_intact(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    /* a state as apps make them (random, with characters that need encoding), then a long one */
    char long_state[3001];
    memset(long_state, 's', 3000);
    long_state[3000] = '\0';
    const char *states[] = {"Xk3-9_q.Z~p7/aB+c=d&e f%g:h", long_state};
    for (size_t i = 0; i < 2; i++) {
        char v[64], c[64];
        st_pkce(v, c);
        char *loc = authorize_with(t, ALL_SCOPES, states[i], c);
        assert_int_equal(strncmp(loc, "http://127.0.0.1:9/callback?", 28), 0);
        char *code = query_value(loc, "code");
        char *scope = query_value(loc, "scope");
        char *st = query_value(loc, "state");
        char *ss = query_value(loc, "session_state");
        assert_non_null(code);
        assert_non_null(scope);
        assert_non_null(st);
        assert_non_null(ss);
        assert_string_equal(scope, ALL_SCOPES);
        assert_string_equal(st, states[i]);
        assert_int_equal(strlen(ss), 36);
        /* the code came through whole: it exchanges */
        st_reply r = exchange(t, code, v, NULL, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(st_str(r.json, "scope"), ALL_SCOPES);
        st_reply_free(&r);
        free(code);
        free(scope);
        free(st);
        free(ss);
        free(loc);
    }
    /* an error redirect keeps its state as well */
    char *loc = authorize_with(t, ALL_SCOPES " accounting.nope", long_state,
                               "0123456789012345678901234567890123456789abc");
    char *err = query_value(loc, "error"), *st = query_value(loc, "state");
    assert_non_null(err);
    assert_string_equal(err, "invalid_scope");
    assert_non_null(st);
    assert_string_equal(st, long_state);
    free(err);
    free(st);
    free(loc);
    st_stop(t);
}

static void test_authorize_connects_every_tenant(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    enum { EXTRA = 70 };
    for (int i = 0; i < EXTRA; i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"name\":\"Org %d\"}", i);
        json_decref(st_ctl(t, "POST", "/_sim/tenants", body, 201));
    }
    st_connect(t);
    st_reply r = st_connections(t);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), EXTRA + 1);
    /* and the last tenant created is usable */
    json_t *ten = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    snprintf(t->tenant, sizeof(t->tenant), "%s",
             st_str(json_array_get(ten, json_array_size(ten) - 1), "tenantId"));
    json_decref(ten);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Organisation", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "Organisations.0"), "Name"), "Org 69");
    st_reply_free(&r);
    st_stop(t);
}

/* ------------------------------------------------------------------ the consent page */

#define BROWSER_ACCEPT "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#define CONSENT_PATH   "/identity/connect/authorize/consent"

/* consent_get asks for the authorize URL as a browser does (Accept naming text/html), with
 * the given scope, state and PKCE challenge. */
static st_reply consent_get(st_sim *t, const char *scope, const char *state, const char *challenge)
{
    char path[8192];
    snprintf(path, sizeof(path),
             "/identity/connect/authorize?response_type=code&client_id=xero-sim-client"
             "&redirect_uri=%s&scope=",
             REDIRECT_ENC);
    st_urlenc(path, sizeof(path), scope);
    strcat(path, "&state=");
    st_urlenc(path, sizeof(path), state);
    strcat(path, "&code_challenge_method=S256&code_challenge=");
    st_urlenc(path, sizeof(path), challenge);
    const char *h[] = {BROWSER_ACCEPT, NULL};
    return st_req(t, "GET", path, NULL, h, 0);
}

/* html_unescape decodes the five escapes the simulator writes, in place. */
static void html_unescape(char *s)
{
    static const char *const esc[][2] = {
        {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}};
    char *o = s;
    while (*s != '\0') {
        size_t k = 0;
        while (k < 5 && strncmp(s, esc[k][0], strlen(esc[k][0])) != 0) {
            k++;
        }
        if (k < 5) {
            *o++ = esc[k][1][0];
            s += strlen(esc[k][0]);
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
}

/* page_form makes the body a browser posts from the consent page html: every hidden field
 * (read back from the page), then extra ("&action=allow&tenant=..."). New. */
static char *page_form(const char *html, const char *extra)
{
    size_t cap = 65536;
    char *form = calloc(1, cap);
    const char *mark = "<input type=\"hidden\" name=\"";
    for (const char *p = strstr(html, mark); p != NULL; p = strstr(p, mark)) {
        p += strlen(mark);
        const char *ne = strchr(p, '"');
        assert_non_null(ne);
        assert_int_equal(strncmp(ne, "\" value=\"", 9), 0);
        const char *v = ne + 9, *ve = strchr(v, '"');
        assert_non_null(ve);
        char *value = strndup(v, (size_t)(ve - v));
        html_unescape(value);
        if (form[0] != '\0') {
            strcat(form, "&");
        }
        strncat(form, p, (size_t)(ne - p));
        strcat(form, "=");
        st_urlenc(form, cap, value);
        free(value);
        p = ve;
    }
    strcat(form, extra);
    return form;
}

/* consent_post posts a consent form. */
static st_reply consent_post(st_sim *t, const char *form)
{
    const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    return st_req(t, "POST", CONSENT_PATH, form, h, 0);
}

/* connections_made counts the connections the simulator holds. */
static size_t connections_made(st_sim *t)
{
    json_t *id = st_ctl(t, "GET", "/_sim/identity", NULL, 200);
    size_t n = json_array_size(json_object_get(id, "connections"));
    json_decref(id);
    return n;
}

/* A state with every character HTML must escape, and some a URL must. */
#define TRICKY_STATE "a\"b<c>&d'e f/g+h=i%j"

/* A browser gets the consent page, consenting to nothing yet; other clients are still
 * answered at once. */
static void test_consent_page_for_browser(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", "XS_SIM_SCOPES=" SCOPE " acme.<widgets>", NULL};
    st_sim *t = st_start(env);
    json_t *nt = st_ctl(t, "POST", "/_sim/tenants", "{\"name\":\"Smith & <Jones>\"}", 201);
    json_decref(nt);
    char v[64], c[64];
    st_pkce(v, c);
    st_reply r = consent_get(t, SCOPE, TRICKY_STATE, c);
    assert_int_equal(r.status, 200);
    char ct[128], loc[64];
    assert_non_null(st_header(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "text/html; charset=utf-8");
    assert_null(st_header(&r, "Location", loc, sizeof(loc)));
    assert_non_null(st_header(&r, "Cache-Control", ct, sizeof(ct)));
    assert_string_equal(ct, "no-store");
    assert_non_null(st_header(&r, "X-Frame-Options", ct, sizeof(ct)));
    assert_string_equal(ct, "DENY");
    assert_non_null(strstr(r.body, "<title>Xero — Allow access</title>"));
    assert_non_null(strstr(r.body, "<p>Signed in as test.user@example.com</p>"));
    assert_non_null(strstr(r.body, "<main>"));
    assert_non_null(strstr(r.body, "<h1>"));
    assert_non_null(strstr(r.body, "<form method=\"post\" action=\"" CONSENT_PATH "\">"));
    assert_non_null(strstr(r.body, ">xero-sync<"));
    assert_non_null(strstr(r.body, "<li>View and manage your contacts</li>"));
    assert_non_null(strstr(r.body, "<li>View and manage your business transactions</li>"));
    assert_non_null(strstr(r.body, "<li>Keep access to your data when you are not using the app"));
    /* one ticked checkbox per tenant, labelled with its name (escaped) */
    for (size_t i = 0; i < 3; i++) {
        char tid[64], want[512];
        tenant_id(t, i, tid);
        snprintf(want, sizeof(want),
                 "<input type=\"checkbox\" id=\"tenant-%s\" name=\"tenant\" value=\"%s\" checked> "
                 "<label for=\"tenant-%s\">",
                 tid, tid, tid);
        assert_non_null(strstr(r.body, want));
    }
    assert_non_null(strstr(r.body, ">Demo Company (NZ)</label>"));
    assert_non_null(strstr(r.body, ">Demo Company (NZ) 2</label>"));
    assert_non_null(strstr(r.body, ">Smith &amp; &lt;Jones&gt;</label>"));
    assert_null(strstr(r.body, "<Jones>"));
    /* the request rides along in hidden fields, escaped */
    assert_non_null(strstr(r.body, "<input type=\"hidden\" name=\"state\" "
                                   "value=\"a&quot;b&lt;c&gt;&amp;d&#39;e f/g+h=i%j\">"));
    assert_null(strstr(r.body, "a\"b<c>"));
    assert_non_null(strstr(r.body, "name=\"code_challenge\" value=\""));
    assert_non_null(strstr(r.body, "<button type=\"submit\" id=\"allow\""));
    assert_non_null(strstr(r.body, "<button type=\"submit\" id=\"cancel\""));
    assert_null(strstr(r.body, "<script"));
    st_reply_free(&r);
    assert_int_equal(connections_made(t), 0);

    /* a scope without words is shown by its name */
    r = consent_get(t, "openid acme.<widgets>", "s", c);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "<li>Confirm who you are with your Xero sign-in</li>\n"
                                   "<li>acme.&lt;widgets&gt;</li>"));
    st_reply_free(&r);

    /* with a /_sim/consent choice, only the tenant chosen is offered */
    char second[64];
    tenant_id(t, 1, second);
    consent_choose(t, second);
    r = consent_get(t, SCOPE, "s", c);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, ">Demo Company (NZ) 2</label>"));
    assert_null(strstr(r.body, ">Demo Company (NZ)</label>"));
    assert_null(strstr(r.body, "Smith"));
    st_reply_free(&r);

    /* a client accepting anything is answered at once, as before */
    const char *any[] = {"Accept: */*", NULL};
    r = st_req(t, "GET",
               "/identity/connect/authorize?response_type=code&client_id=xero-sim-client&"
               "redirect_uri=" REDIRECT_ENC "&scope=openid&state=s",
               NULL, any, 0);
    assert_int_equal(r.status, 302);
    st_reply_free(&r);
    assert_int_equal(connections_made(t), 1);
    /* and a browser's request that is not valid gets the same refusals */
    const char *browser[] = {BROWSER_ACCEPT, NULL};
    r = st_req(t, "GET",
               "/identity/connect/authorize?response_type=code&client_id=nobody&"
               "redirect_uri=" REDIRECT_ENC "&scope=openid",
               NULL, browser, 0);
    assert_int_equal(r.status, 400);
    assert_null(st_header(&r, "Location", loc, sizeof(loc)));
    st_reply_free(&r);
    r = st_req(t, "GET",
               "/identity/connect/authorize?response_type=code&client_id=xero-sim-client&"
               "redirect_uri=" REDIRECT_ENC "&scope=accounting.everything&state=s",
               NULL, browser, 0);
    assert_int_equal(r.status, 302);
    char eloc[512];
    assert_non_null(st_header(&r, "Location", eloc, sizeof(eloc)));
    assert_non_null(strstr(eloc, "error=invalid_scope"));
    st_reply_free(&r);
    st_stop(t);
}

/* Allow with one of two tenants ticked connects that one only, under a code that
 * exchanges, and the redirect carries the state whole. */
static void test_consent_allow_one_tenant(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", NULL};
    st_sim *t = st_start(env);
    char first[64], second[64];
    tenant_id(t, 0, first);
    tenant_id(t, 1, second);
    char v[64], c[64];
    st_pkce(v, c);
    st_reply r = consent_get(t, SCOPE, TRICKY_STATE, c);
    assert_int_equal(r.status, 200);
    char extra[128];
    snprintf(extra, sizeof(extra), "&action=allow&tenant=%s", second);
    char *form = page_form(r.body, extra);
    st_reply_free(&r);
    r = consent_post(t, form);
    free(form);
    assert_int_equal(r.status, 302);
    char loc[4096];
    assert_non_null(st_header(&r, "Location", loc, sizeof(loc)));
    st_reply_free(&r);
    assert_int_equal(strncmp(loc, "http://127.0.0.1:9/callback?", 28), 0);
    char *code = query_value(loc, "code"), *st = query_value(loc, "state");
    char *scope = query_value(loc, "scope"), *ss = query_value(loc, "session_state");
    assert_non_null(code);
    assert_non_null(st);
    assert_non_null(scope);
    assert_non_null(ss);
    assert_string_equal(st, TRICKY_STATE);
    assert_string_equal(scope, SCOPE);
    assert_int_equal(strlen(ss), 36);
    r = exchange(t, code, v, NULL, NULL);
    assert_int_equal(r.status, 200);
    snprintf(t->token, sizeof(t->token), "%s", st_str(r.json, "access_token"));
    st_reply_free(&r);
    r = st_connections(t);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 1);
    assert_string_equal(st_str(json_array_get(r.json, 0), "tenantId"), second);
    assert_string_equal(st_str(json_array_get(r.json, 0), "authEventId"), ss);
    st_reply_free(&r);
    /* the tenant not ticked is refused to the token */
    snprintf(t->tenant, sizeof(t->tenant), "%s", first);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 403);
    st_reply_free(&r);
    snprintf(t->tenant, sizeof(t->tenant), "%s", second);
    r = st_api(t, "GET", "/Contacts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    free(code);
    free(st);
    free(scope);
    free(ss);
    st_stop(t);
}

/* Allow with nothing ticked shows the page again with an error; Cancel redirects with
 * access_denied. Neither connects anything. */
static void test_consent_none_and_cancel(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", NULL};
    st_sim *t = st_start(env);
    char v[64], c[64];
    st_pkce(v, c);
    st_reply r = consent_get(t, SCOPE, TRICKY_STATE, c);
    assert_int_equal(r.status, 200);
    char *page = strdup(r.body);
    st_reply_free(&r);

    char *form = page_form(page, "&action=allow");
    r = consent_post(t, form);
    free(form);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_non_null(st_header(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, "<p class=\"error\" id=\"error\" role=\"alert\">Choose at least "
                                   "one organisation to allow access to.</p>"));
    assert_non_null(strstr(r.body, ">Demo Company (NZ)</label>"));
    assert_null(strstr(r.body, " checked>"));
    assert_non_null(strstr(r.body, "value=\"a&quot;b&lt;c&gt;&amp;d&#39;e f/g+h=i%j\""));
    /* the page shown again posts as the first did */
    char *again = page_form(r.body, "&action=cancel");
    st_reply_free(&r);
    assert_int_equal(connections_made(t), 0);

    r = consent_post(t, again);
    free(again);
    assert_int_equal(r.status, 302);
    char loc[4096];
    assert_non_null(st_header(&r, "Location", loc, sizeof(loc)));
    st_reply_free(&r);
    char *err = query_value(loc, "error"), *st = query_value(loc, "state");
    assert_non_null(err);
    assert_string_equal(err, "access_denied");
    assert_non_null(st);
    assert_string_equal(st, TRICKY_STATE);
    assert_null(strstr(loc, "code="));
    free(err);
    free(st);
    assert_int_equal(connections_made(t), 0);
    free(page);
    st_stop(t);
}

/* A consent form that was tampered with or is not one is refused without redirecting, and
 * the simulator carries on. */
static void test_consent_refusals(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_TENANTS=2", NULL};
    st_sim *t = st_start(env);
    char first[64], tick[128];
    tenant_id(t, 0, first);
    snprintf(tick, sizeof(tick), "&action=allow&tenant=%s", first);
    char v[64], c[64];
    st_pkce(v, c);
    st_reply r = consent_get(t, SCOPE, "s", c);
    assert_int_equal(r.status, 200);
    char *form = page_form(r.body, tick);
    st_reply_free(&r);

    /* each form: a tampered client_id or redirect_uri, a tenant not offered, a missing or
     * unknown action, bad escapes, garbage */
    char *tampered[] = {strdup(form), strdup(form), strdup(form)};
    memcpy(strstr(tampered[0], "client_id=xero-sim-client") + 10, "evil", 4);
    memcpy(strstr(tampered[1], "127.0.0.1%3A9"), "127.0.0.2", 9);
    char *not_offered = malloc(strlen(form) + 64);
    sprintf(not_offered, "%s&tenant=00000000-0000-0000-0000-000000000001", form);
    char *no_action = strdup(form);
    *strstr(no_action, "&action=allow") = '\0';
    char *bad_action = strdup(form);
    memcpy(strstr(bad_action, "&action=allow") + 8, "xyzzy", 5);
    const char *bodies[] = {tampered[0], tampered[1],
                            not_offered, no_action,
                            bad_action,  "client_id=%zz&action=allow",
                            "state=%4",  "\x01\x02\xff=&&==%%%&tenant=&action",
                            "",          NULL};
    free(tampered[2]);
    for (size_t i = 0; bodies[i] != NULL; i++) {
        r = consent_post(t, bodies[i]);
        assert_int_equal(r.status, 400);
        char loc[64];
        assert_null(st_header(&r, "Location", loc, sizeof(loc)));
        assert_non_null(strstr(r.body, "Error: "));
        st_reply_free(&r);
    }
    /* not a form, not a POST */
    const char *json[] = {"Content-Type: application/json", NULL};
    r = st_req(t, "POST", CONSENT_PATH, "{\"action\":\"allow\"}", json, 0);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = st_req(t, "GET", CONSENT_PATH, NULL, NULL, 0);
    assert_int_equal(r.status, 405);
    st_reply_free(&r);
    assert_int_equal(connections_made(t), 0);
    /* the good form still works */
    r = consent_post(t, form);
    assert_int_equal(r.status, 302);
    st_reply_free(&r);
    assert_int_equal(connections_made(t), 1);
    free(tampered[0]);
    free(tampered[1]);
    free(not_offered);
    free(no_action);
    free(bad_action);
    free(form);
    st_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_flow_pkce),
        cmocka_unit_test(test_code_flow_refusals),
        cmocka_unit_test(test_code_expires),
        cmocka_unit_test(test_refresh_rotation_and_grace),
        cmocka_unit_test(test_refresh_expiry_and_access_expiry),
        cmocka_unit_test(test_no_offline_access_no_refresh_token),
        cmocka_unit_test(test_connections_and_revocation),
        cmocka_unit_test(test_bearer_and_tenant_checks),
        cmocka_unit_test(test_consent_selects_tenants),
        cmocka_unit_test(test_authorize_redirect_intact),
        cmocka_unit_test(test_authorize_connects_every_tenant),
        cmocka_unit_test(test_consent_page_for_browser),
        cmocka_unit_test(test_consent_allow_one_tenant),
        cmocka_unit_test(test_consent_none_and_cancel),
        cmocka_unit_test(test_consent_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
