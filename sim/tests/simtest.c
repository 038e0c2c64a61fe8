/* simtest.c: the simulator tests' shared helpers (see simtest.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"
#include "xs/buf.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "xs/money.h"

#define REDIRECT "http://127.0.0.1:9/callback"

static void die(const char *what)
{
    fprintf(stderr, "simtest: %s\n", what);
    abort();
}

st_sim *st_start(const char *const *env)
{
    static const char *const defaults[] = {
        "XS_LOG_LEVEL=error", "XS_SIM_PORT=0",
        "XS_SIM_REDIRECT_URIS=" REDIRECT ",http://127.0.0.1:9/other",
        "XS_SIM_WEBHOOK_REQUIRE_ITR=false", "XS_SIM_CALL_LOG=10000",
        /* functional tests make more than Xero's 60 calls a minute; the limits test sets
         * Xero's ratios explicitly */
        "XS_SIM_LIMIT_MINUTE=1000000", "XS_SIM_LIMIT_DAY=1000000", NULL};
    const char *envp[128];
    size_t n = 0;
    for (size_t i = 0; defaults[i] != NULL; i++) {
        envp[n++] = defaults[i];
    }
    /* overrides come after the defaults; the loader takes the first match, so put them
     * first */
    const char *merged[128];
    size_t m = 0;
    for (size_t i = 0; env != NULL && env[i] != NULL && m < 100; i++) {
        merged[m++] = env[i];
    }
    for (size_t i = 0; i < n; i++) {
        merged[m++] = envp[i];
    }
    merged[m] = NULL;
    st_sim *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        die("out of memory");
    }
    char err[XS_CONFIG_ERR_MAX];
    if (xs_config_load_from(&t->cfg, XS_PROC_SIM, (char *const *)merged, err) != XS_OK) {
        fprintf(stderr, "simtest: config: %s\n", err);
        abort();
    }
    if (sim_create(&t->s, t->cfg, NULL) != XS_OK) {
        die("sim_create failed");
    }
    snprintf(t->base, sizeof(t->base), "http://127.0.0.1:%u", (unsigned)sim_port(t->s));
    t->curl = curl_easy_init();
    json_t *ten = st_ctl(t, "GET", "/_sim/tenants", NULL, 200);
    if (json_array_size(ten) > 0) {
        snprintf(t->tenant, sizeof(t->tenant), "%s", st_str(json_array_get(ten, 0), "tenantId"));
    }
    json_decref(ten);
    return t;
}

void st_stop(st_sim *t)
{
    if (t == NULL) {
        return;
    }
    sim_destroy(t->s);
    xs_config_destroy(t->cfg);
    curl_easy_cleanup(t->curl);
    free(t);
}

/* collect appends a received chunk to the xs_buf arg. */
static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    size_t add = size * nmemb;
    return xs_buf_append(arg, data, add) == XS_OK ? add : 0;
}

/* upload_fill is the body of st_req_upload: as many 'x' as curl asks for. */
static size_t upload_fill(char *data, size_t size, size_t nmemb, void *arg)
{
    (void)arg;
    memset(data, 'x', size * nmemb);
    return size * nmemb;
}

/* perform is st_req (blen SIZE_MAX: the body is text), st_req_bytes, and st_req_upload when
 * upload is above 0. */
static st_reply perform(st_sim *t, const char *method, const char *path, const char *body,
                        size_t blen, curl_off_t upload, const char *const *headers, long timeout_ms)
{
    st_reply r = {0};
    CURL *h = t->curl;
    curl_easy_reset(h);
    size_t ulen = strlen(t->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (url == NULL) {
        die("out of memory");
    }
    snprintf(url, ulen, "%s%s", t->base, path);
    xs_buf b = {0}, hb = {0};
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, headers[i]);
    }
    /* an upload waits for the server's go-ahead, so a refusal is read before the body */
    hl = curl_slist_append(hl, upload > 0 ? "Expect: 100-continue" : "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (upload > 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, upload);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, upload_fill);
        curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 10000L);
    } else if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(blen == SIZE_MAX ? strlen(body) : blen));
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 20000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (t->raw_path) {
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    }
    if (t->fresh) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    CURLcode cc = curl_easy_perform(h);
    r.curl_code = (int)cc;
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    }
    curl_slist_free_all(hl);
    free(url);
    r.body = xs_buf_take(&b, &r.len);
    r.body = r.body != NULL ? r.body : strdup("");
    r.headers = xs_buf_take(&hb, NULL);
    r.headers = r.headers != NULL ? r.headers : strdup("");
    if (r.len > 0 && (r.body[0] == '{' || r.body[0] == '[')) {
        r.json = xs_json_parse(r.body, r.len, NULL);
    }
    return r;
}

st_reply st_req(st_sim *t, const char *method, const char *path, const char *body,
                const char *const *headers, long timeout_ms)
{
    return perform(t, method, path, body, SIZE_MAX, 0, headers, timeout_ms);
}

st_reply st_req_bytes(st_sim *t, const char *method, const char *path, const char *body, size_t len,
                      const char *const *headers, long timeout_ms)
{
    return perform(t, method, path, body, len, 0, headers, timeout_ms);
}

st_reply st_req_upload(st_sim *t, const char *method, const char *path, const char *const *headers,
                       int64_t size)
{
    return perform(t, method, path, NULL, 0, (curl_off_t)size, headers, 0);
}

const char *st_header(const st_reply *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = r->headers;
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') {
                v++;
            }
            size_t vl = len - (size_t)(v - p);
            snprintf(out, cap, "%.*s", (int)vl, v);
            return out;
        }
        p = eol ? eol + 2 : NULL;
    }
    return NULL;
}

void st_reply_free(st_reply *r)
{
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

st_reply st_api(st_sim *t, const char *method, const char *path, const char *body,
                const char *const *extra)
{
    char auth[4200], ten[80], full[8192];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *h[24] = {auth, ten, "Accept: application/json", "Content-Type: application/json"};
    size_t n = 4;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 23; i++) {
        h[n++] = extra[i];
    }
    h[n] = NULL;
    snprintf(full, sizeof(full), "/api.xro/2.0%s", path);
    return st_req(t, method, full, body, h, 0);
}

void st_api_replayed(st_sim *t, const st_reply *first, const char *method, const char *path,
                     const char *body, const char *const *extra)
{
    st_reply again = st_api(t, method, path, body, extra);
    assert_int_equal(first->status, 200);
    assert_int_equal(again.status, 200);
    assert_int_equal(again.len, first->len);
    assert_memory_equal(again.body, first->body, first->len);
    st_reply_free(&again);
}

json_t *st_ctl(st_sim *t, const char *method, const char *path, const char *body, long want)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    st_reply r = st_req(t, method, path, body, h, 120000);
    if (r.status != want) {
        fprintf(stderr, "st_ctl %s %s: status %ld, want %ld: %s\n", method, path, r.status, want,
                r.body);
        fail();
    }
    json_t *j = json_incref(r.json);
    st_reply_free(&r);
    return j != NULL ? j : json_null();
}

void st_pkce(char verifier[64], char challenge[64])
{
    char *v = NULL, *c = NULL;
    if (xs_crypto_random_token(32, &v) != XS_OK) {
        die("random");
    }
    uint8_t h[XS_SHA256_LEN];
    xs_sha256(v, strlen(v), h);
    if (xs_base64url_encode(h, sizeof(h), &c) != XS_OK) {
        die("base64url");
    }
    snprintf(verifier, 64, "%s", v);
    snprintf(challenge, 64, "%s", c);
    free(v);
    free(c);
}

void st_urlenc(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = strlen(out);
    for (; *s && o + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

char *st_authorize(st_sim *t, const char *scope, const char *challenge, const char *redirect,
                   long *status)
{
    char path[4096] = "/identity/connect/authorize?response_type=code&client_id=xero-sim-client"
                      "&redirect_uri=";
    st_urlenc(path, sizeof(path), redirect != NULL ? redirect : REDIRECT);
    strcat(path, "&scope=");
    st_urlenc(path, sizeof(path), scope);
    strcat(path, "&state=st4te");
    if (challenge != NULL) {
        strcat(path, "&code_challenge_method=S256&code_challenge=");
        st_urlenc(path, sizeof(path), challenge);
    }
    st_reply r = st_req(t, "GET", path, NULL, NULL, 0);
    *status = r.status;
    char loc[4096];
    char *code = NULL;
    if (r.status == 302 && st_header(&r, "Location", loc, sizeof(loc)) != NULL) {
        char *p = strstr(loc, "code=");
        if (p != NULL) {
            p += 5;
            size_t n = strcspn(p, "&");
            code = strndup(p, n);
        }
    }
    st_reply_free(&r);
    return code;
}

st_reply st_token(st_sim *t, const char *form, const char *secret)
{
    char cred[300], *b64 = NULL, auth[400];
    snprintf(cred, sizeof(cred), "xero-sim-client:%s", secret ? secret : "xero-sim-secret");
    xs_base64_encode(cred, strlen(cred), &b64);
    snprintf(auth, sizeof(auth), "Authorization: Basic %s", b64);
    free(b64);
    const char *h[] = {auth, "Content-Type: application/x-www-form-urlencoded", NULL};
    return st_req(t, "POST", "/connect/token", form, h, 0);
}

void st_connect(st_sim *t)
{
    st_connect_scope(t, "openid profile email offline_access accounting.contacts "
                        "accounting.transactions accounting.settings");
}

void st_connect_scope(st_sim *t, const char *scope)
{
    char v[64], c[64];
    st_pkce(v, c);
    long status;
    char *code = st_authorize(t, scope, c, NULL, &status);
    if (code == NULL) {
        die("authorize gave no code");
    }
    char form[1024];
    snprintf(form, sizeof(form),
             "grant_type=authorization_code&code=%s&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A9%%"
             "2Fcallback&code_verifier=%s",
             code, v);
    free(code);
    st_reply r = st_token(t, form, NULL);
    if (r.status != 200 || r.json == NULL) {
        fprintf(stderr, "token: %ld %s\n", r.status, r.body);
        die("token exchange failed");
    }
    snprintf(t->token, sizeof(t->token), "%s", st_str(r.json, "access_token"));
    snprintf(t->refresh, sizeof(t->refresh), "%s", st_str(r.json, "refresh_token"));
    st_reply_free(&r);
}

st_reply st_connections(st_sim *t)
{
    char auth[4200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    const char *h[] = {auth, NULL};
    return st_req(t, "GET", "/connections", NULL, h, 0);
}

const char *st_str(const json_t *obj, const char *key)
{
    const char *s = xs_json_string_value(json_object_get(obj, key), NULL);
    return s != NULL ? s : "";
}

bool st_money_eq(const json_t *v, const char *text)
{
    xs_money a, b;
    if (v == NULL || xs_json_to_money(v, &a) != XS_OK || xs_money_parse(text, &b) != XS_OK) {
        return false;
    }
    return xs_money_cmp(a, b) == 0;
}

json_t *st_path(json_t *root, const char *path)
{
    char seg[128];
    const char *p = path;
    json_t *cur = root;
    while (cur != NULL && *p != '\0') {
        size_t n = strcspn(p, ".");
        snprintf(seg, sizeof(seg), "%.*s", (int)n, p);
        if (json_is_array(cur)) {
            cur = json_array_get(cur, (size_t)strtoul(seg, NULL, 10));
        } else {
            cur = json_object_get(cur, seg);
        }
        p += n;
        if (*p == '.') {
            p++;
        }
    }
    return cur;
}

void st_assert_errors(json_t *item, const char *first, const char *second)
{
    assert_string_equal(st_str(item, "StatusAttributeString"), "ERROR");
    assert_int_equal(json_array_size(json_object_get(item, "ValidationErrors")), 2);
    assert_string_equal(st_str(st_path(item, "ValidationErrors.0"), "Message"), first);
    assert_string_equal(st_str(st_path(item, "ValidationErrors.1"), "Message"), second);
}
