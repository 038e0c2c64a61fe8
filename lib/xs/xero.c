/* xero.c: the HTTP client for Xero, over libcurl. See xero.h. */
#include "xs/xero.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xs/buf.h"
#include "xs/crypto.h"
#include "xs/json.h"

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_MAX_REPLY  ((size_t)64 << 20)
#define USER_AGENT         "xero-sync/" XS_VERSION
#define OAUTH_ERROR_MAX    64

struct xs_xero {
    const xs_xero_opts *opts;
    CURL *h;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

xs_err xs_xero_create(xs_xero **out, const xs_xero_opts *opts)
{
    if (out == NULL || opts == NULL || opts->api_url == NULL || opts->identity_url == NULL ||
        opts->login_url == NULL) {
        return XS_EINVAL;
    }
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK) {
        return XS_ENOMEM;
    }
    xs_xero *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return XS_ENOMEM;
    }
    x->opts = opts;
    x->h = curl_easy_init();
    if (x->h == NULL) {
        free(x);
        return XS_ENOMEM;
    }
    *out = x;
    return XS_OK;
}

void xs_xero_destroy(xs_xero *x)
{
    if (x == NULL) {
        return;
    }
    curl_easy_cleanup(x->h);
    free(x);
}

void xs_xero_resp_fini(xs_xero_resp *resp)
{
    if (resp == NULL) {
        return;
    }
    free(resp->body);
    json_decref(resp->json);
    free(resp->items);
    memset(resp, 0, sizeof(*resp));
}

bool xs_xero_retryable(xs_err err, long status)
{
    if (err != XS_OK) {
        return err == XS_ETIMEDOUT || err == XS_EHTTP || err == XS_EUNAVAILABLE ||
               err == XS_ERATELIMIT;
    }
    return status == 429 || status >= 500;
}

/* --- one call --- */

typedef struct sink {
    xs_buf body;
    size_t max;
    bool too_big;
    bool json;
    xs_xero_call *call;
} sink;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t add = size * n;
    if (s->body.len + add > s->max) {
        s->too_big = true;
        return 0;
    }
    return xs_buf_append(&s->body, data, add) == XS_OK ? add : 0;
}

/* header_value returns the value of header line `line` (n bytes) when its name is `name`,
 * trimmed into buf (cap bytes); NULL otherwise. */
static const char *header_value(const char *line, size_t n, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) {
        return NULL;
    }
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    size_t len = (size_t)(end - v);
    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* parse_count reads a non-negative decimal count, or -1. */
static int64_t parse_count(const char *v)
{
    if (v == NULL || *v == '\0') {
        return -1;
    }
    int64_t n = 0;
    for (const char *c = v; *c; c++) {
        if (*c < '0' || *c > '9' || n > (INT64_MAX - 9) / 10) {
            return -1;
        }
        n = n * 10 + (*c - '0');
    }
    return n;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    sink *s = arg;
    size_t len = size * n;
    char buf[128];
    const char *v;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new reply (after a redirect or 100-continue): forget the previous headers. */
        xs_xero_rate *r = &s->call->rate;
        r->min_remaining = r->day_remaining = r->app_min_remaining = r->retry_after_s = -1;
        r->problem[0] = '\0';
        s->json = false;
    } else if ((v = header_value(line, len, "X-MinLimit-Remaining", buf, sizeof(buf)))) {
        s->call->rate.min_remaining = parse_count(v);
    } else if ((v = header_value(line, len, "X-DayLimit-Remaining", buf, sizeof(buf)))) {
        s->call->rate.day_remaining = parse_count(v);
    } else if ((v = header_value(line, len, "X-AppMinLimit-Remaining", buf, sizeof(buf)))) {
        s->call->rate.app_min_remaining = parse_count(v);
    } else if ((v = header_value(line, len, "Retry-After", buf, sizeof(buf)))) {
        s->call->rate.retry_after_s = parse_count(v);
    } else if ((v = header_value(line, len, "X-Rate-Limit-Problem", buf, sizeof(buf)))) {
        snprintf(s->call->rate.problem, sizeof(s->call->rate.problem), "%s", v);
    } else if ((v = header_value(line, len, "Xero-Correlation-Id", buf, sizeof(buf)))) {
        snprintf(s->call->correlation_id, sizeof(s->call->correlation_id), "%s", v);
    } else if ((v = header_value(line, len, "Content-Type", buf, sizeof(buf)))) {
        s->json = strncasecmp(v, "application/json", 16) == 0 ||
                  strncasecmp(v, "application/problem+json", 24) == 0;
    }
    return len;
}

static xs_err from_curl(CURLcode rc, const sink *s)
{
    switch (rc) {
    case CURLE_OK:
        return XS_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return XS_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return XS_ENOMEM;
    case CURLE_WRITE_ERROR:
        return s->too_big ? XS_ETOOBIG : XS_ENOMEM;
    default:
        return XS_EHTTP;
    }
}

/* parse_without_list parses resp->body but for the elements of its top-level array
 * list_key, whose spans go to resp->items (xs_xero_req.list_key). XS_ENOTFOUND when the body
 * has no such array, or it or the rest is malformed: the caller parses it whole, which also
 * says what is wrong with a garbled one. */
static xs_err parse_without_list(xs_xero_resp *resp, const char *list_key)
{
    xs_json_span list;
    xs_err e =
        xs_json_list_spans(resp->body, resp->len, list_key, &list, &resp->items, &resp->nitems);
    if (e != XS_OK) {
        return e == XS_ENOMEM ? e : XS_ENOTFOUND;
    }
    /* The reply with "[]" for the array */
    size_t rest = resp->len - list.off - list.len;
    char *env = malloc(list.off + 2 + rest);
    if (env == NULL) {
        return XS_ENOMEM;
    }
    memcpy(env, resp->body, list.off);
    memcpy(env + list.off, "[]", 2);
    memcpy(env + list.off + 2, resp->body + list.off + list.len, rest);
    resp->json = xs_json_parse(env, list.off + 2 + rest, NULL);
    free(env);
    if (resp->json == NULL) {
        free(resp->items);
        resp->items = NULL;
        resp->nitems = 0;
        return XS_ENOTFOUND;
    }
    return XS_OK;
}

xs_err xs_xero_request(xs_xero *x, const xs_xero_req *req, xs_xero_resp *resp, xs_xero_call *call)
{
    memset(call, 0, sizeof(*call));
    call->rate.min_remaining = call->rate.day_remaining = call->rate.app_min_remaining = -1;
    call->rate.retry_after_s = -1;
    memset(resp, 0, sizeof(*resp));
    if (x == NULL || req == NULL || req->method == NULL || req->path == NULL ||
        req->path[0] != '/') {
        call->err = XS_EINVAL;
        return XS_EINVAL;
    }
    snprintf(call->method, sizeof(call->method), "%s", req->method);
    snprintf(call->path, sizeof(call->path), "%s", req->path);
    const xs_xero_opts *o = x->opts;
    const char *base = req->base == XS_XERO_IDENTITY ? o->identity_url : o->api_url;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    size_t ulen = blen + strlen(req->path) + 1;
    char *url = malloc(ulen);
    if (url == NULL) {
        call->err = XS_ENOMEM;
        return XS_ENOMEM;
    }
    snprintf(url, ulen, "%.*s%s", (int)blen, base, req->path);

    struct curl_slist *hdrs = NULL;
    char line[XS_XERO_PATH_MAX];
    xs_err e = XS_OK;
#define ADD_HEADER(...)                                                                            \
    do {                                                                                           \
        snprintf(line, sizeof(line), __VA_ARGS__);                                                 \
        struct curl_slist *n_ = curl_slist_append(hdrs, line);                                     \
        if (n_ == NULL) {                                                                          \
            e = XS_ENOMEM;                                                                         \
            goto fail;                                                                             \
        }                                                                                          \
        hdrs = n_;                                                                                 \
    } while (0)
    ADD_HEADER("Accept: application/json");
    ADD_HEADER("Expect:");
    if (req->tenant_id != NULL) {
        ADD_HEADER("xero-tenant-id: %s", req->tenant_id);
    }
    if (req->idempotency_key != NULL) {
        ADD_HEADER("Idempotency-Key: %s", req->idempotency_key);
    }
    if (req->if_modified_since > 0) {
        char ims[XS_TIME_ISO_MAX];
        xs_time_format_iso_seconds(req->if_modified_since, ims);
        ADD_HEADER("If-Modified-Since: %s", ims);
    }
    if (req->body != NULL) {
        ADD_HEADER("Content-Type: %s",
                   req->content_type != NULL ? req->content_type : "application/json");
    }
#undef ADD_HEADER
    /* The bearer header is built apart: a token may be longer than `line`, and it is wiped. */
    char *auth = NULL;
    if (req->bearer != NULL) {
        size_t alen = strlen(req->bearer) + 32;
        auth = malloc(alen);
        if (auth == NULL) {
            e = XS_ENOMEM;
            goto fail;
        }
        snprintf(auth, alen, "Authorization: Bearer %s", req->bearer);
        struct curl_slist *n = curl_slist_append(hdrs, auth);
        xs_crypto_wipe(auth, strlen(auth));
        free(auth);
        if (n == NULL) {
            e = XS_ENOMEM;
            goto fail;
        }
        hdrs = n;
    }

    sink s = {.max = o->max_reply ? o->max_reply : DEFAULT_MAX_REPLY, .call = call};
    xs_buf_init(&s.body, 16384);
    CURL *h = x->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     (long)(o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->client_auth) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, o->client_id != NULL ? o->client_id : "");
        curl_easy_setopt(h, CURLOPT_PASSWORD, o->client_secret != NULL ? o->client_secret : "");
    }
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(req->method, "POST") != 0) {
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        }
        if (req->body != NULL || strcmp(req->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)(req->body != NULL ? req->body_len : 0));
        }
    }

    int64_t t0 = xs_clock_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    call->duration_ms = xs_clock_mono_ms() - t0;
    /* Forget the credentials this handle was given; the connection stays for reuse. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_PASSWORD, "");
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    e = from_curl(rc, &s);
    if (e != XS_OK) {
        call->status = rc == CURLE_PARTIAL_FILE ? status : 0;
        snprintf(call->error, sizeof(call->error), "%s", curl_easy_strerror(rc));
        if (s.too_big) {
            snprintf(call->error, sizeof(call->error), "reply larger than %zu bytes", s.max);
        }
        xs_buf_fini(&s.body);
        goto fail;
    }
    call->status = status;
    resp->status = status;
    resp->len = s.body.len;
    resp->body = s.body.p != NULL ? xs_buf_take(&s.body, NULL) : strdup("");
    if (resp->body == NULL) {
        e = XS_ENOMEM;
        goto fail;
    }
    if (s.json && resp->len > 0 && req->list_key != NULL && status >= 200 && status < 300 &&
        (e = parse_without_list(resp, req->list_key)) != XS_ENOTFOUND) {
        if (e != XS_OK) {
            xs_xero_resp_fini(resp);
            goto fail;
        }
    } else if (s.json && resp->len > 0) {
        char why[XS_JSON_ERR_MAX];
        resp->json = xs_json_parse(resp->body, resp->len, why);
        if (resp->json == NULL) {
            snprintf(call->error, sizeof(call->error), "reply is not valid JSON: %s", why);
            xs_xero_resp_fini(resp);
            e = XS_EPROTO;
            goto fail;
        }
    }
    if (status >= 400) {
        snprintf(call->error, sizeof(call->error), "HTTP %ld", status);
    }
    curl_slist_free_all(hdrs);
    free(url);
    return XS_OK;

fail:
    call->err = e;
    if (call->error[0] == '\0') {
        snprintf(call->error, sizeof(call->error), "%s", xs_strerror(e));
    }
    curl_slist_free_all(hdrs);
    free(url);
    return e;
}

/* --- OAuth 2.0 --- */

void xs_xero_tokens_fini(xs_xero_tokens *t)
{
    if (t == NULL) {
        return;
    }
    char *s[] = {t->access_token, t->refresh_token, t->scope, t->auth_event_id, t->xero_user_id};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        if (s[i] != NULL) {
            xs_crypto_wipe(s[i], strlen(s[i]));
            free(s[i]);
        }
    }
    memset(t, 0, sizeof(*t));
}

/* escape appends k=v (v form-encoded) to buf; buf is a growing string. */
static xs_err form_add(CURL *h, char **buf, const char *k, const char *v)
{
    char *ev = curl_easy_escape(h, v, 0);
    if (ev == NULL) {
        return XS_ENOMEM;
    }
    size_t old = *buf != NULL ? strlen(*buf) : 0;
    size_t add = strlen(k) + strlen(ev) + 2;
    char *p = realloc(*buf, old + add + 1);
    if (p == NULL) {
        xs_crypto_wipe(ev, strlen(ev));
        curl_free(ev);
        return XS_ENOMEM;
    }
    snprintf(p + old, add + 1, "%s%s=%s", old > 0 ? "&" : "", k, ev);
    xs_crypto_wipe(ev, strlen(ev));
    curl_free(ev);
    *buf = p;
    return XS_OK;
}

static void form_free(char *buf)
{
    if (buf != NULL) {
        xs_crypto_wipe(buf, strlen(buf));
        free(buf);
    }
}

xs_err xs_xero_pkce_challenge(const char *verifier, char **out)
{
    if (verifier == NULL || out == NULL) {
        return XS_EINVAL;
    }
    uint8_t d[XS_SHA256_LEN];
    xs_sha256(verifier, strlen(verifier), d);
    return xs_base64url_encode(d, sizeof(d), out);
}

xs_err xs_xero_authorize_url(const xs_xero *x, const char *redirect_uri, const char *scopes,
                             const char *state, const char *code_challenge, char **out)
{
    if (x == NULL || redirect_uri == NULL || scopes == NULL || state == NULL ||
        code_challenge == NULL || out == NULL) {
        return XS_EINVAL;
    }
    char *q = NULL;
    xs_err e;
    if ((e = form_add(x->h, &q, "response_type", "code")) != XS_OK ||
        (e = form_add(x->h, &q, "client_id", x->opts->client_id ? x->opts->client_id : "")) !=
            XS_OK ||
        (e = form_add(x->h, &q, "redirect_uri", redirect_uri)) != XS_OK ||
        (e = form_add(x->h, &q, "scope", scopes)) != XS_OK ||
        (e = form_add(x->h, &q, "state", state)) != XS_OK ||
        (e = form_add(x->h, &q, "code_challenge", code_challenge)) != XS_OK ||
        (e = form_add(x->h, &q, "code_challenge_method", "S256")) != XS_OK) {
        free(q);
        return e;
    }
    const char *base = x->opts->login_url;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    size_t n = blen + strlen(q) + 40;
    char *url = malloc(n);
    if (url == NULL) {
        free(q);
        return XS_ENOMEM;
    }
    snprintf(url, n, "%.*s/identity/connect/authorize?%s", (int)blen, base, q);
    free(q);
    *out = url;
    return XS_OK;
}

/* jwt_claims reads the payload of a JWT-shaped token (new object), or NULL. Xero's access
 * tokens are JWTs; the engine reads only the two ids it needs to tell consents apart. */
static json_t *jwt_claims(const char *token)
{
    const char *a = strchr(token, '.');
    const char *b = a != NULL ? strchr(a + 1, '.') : NULL;
    if (b == NULL) {
        return NULL;
    }
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    if (xs_base64url_decode(a + 1, (size_t)(b - a - 1), &raw, &rawlen) != XS_OK) {
        return NULL;
    }
    json_t *claims = xs_json_parse((const char *)raw, rawlen, NULL);
    free(raw);
    if (!json_is_object(claims)) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* token_call posts a grant to /connect/token and reads the tokens. */
static xs_err token_call(xs_xero *x, char *form, xs_xero_tokens *out, char *oauth_error,
                         xs_xero_call *call)
{
    if (oauth_error != NULL) {
        oauth_error[0] = '\0';
    }
    xs_xero_req req = {.method = "POST",
                       .base = XS_XERO_IDENTITY,
                       .path = "/connect/token",
                       .client_auth = true,
                       .content_type = "application/x-www-form-urlencoded",
                       .body = form,
                       .body_len = strlen(form)};
    xs_xero_resp resp;
    xs_err e = xs_xero_request(x, &req, &resp, call);
    form_free(form);
    if (e != XS_OK) {
        return e;
    }
    if (resp.status != 200) {
        const char *err = xs_json_str_or(resp.json, "error", NULL);
        if (resp.status >= 500 || resp.status == 429) {
            e = XS_EUNAVAILABLE;
            snprintf(call->error, sizeof(call->error), "the token endpoint answered %ld",
                     resp.status);
        } else if (err != NULL) {
            e = XS_EAUTH;
            snprintf(call->error, sizeof(call->error), "%.63s", err);
            if (oauth_error != NULL) {
                snprintf(oauth_error, OAUTH_ERROR_MAX, "%.63s", err);
            }
        } else {
            e = XS_EPROTO;
            snprintf(call->error, sizeof(call->error),
                     "the token endpoint answered %ld without an OAuth error", resp.status);
        }
        call->err = e;
        xs_xero_resp_fini(&resp);
        return e;
    }
    const char *at = NULL, *rt = NULL, *scope = NULL;
    int64_t exp = 0;
    if (xs_json_get_str(resp.json, "access_token", &at) != XS_OK || at[0] == '\0' ||
        xs_json_get_int(resp.json, "expires_in", &exp) != XS_OK || exp <= 0) {
        snprintf(call->error, sizeof(call->error),
                 "the token reply has no access_token or "
                 "expires_in");
        call->err = XS_EPROTO;
        xs_xero_resp_fini(&resp);
        return XS_EPROTO;
    }
    xs_json_get_str(resp.json, "refresh_token", &rt);
    xs_json_get_str(resp.json, "scope", &scope);
    xs_xero_tokens t = {.expires_in_s = exp};
    t.access_token = strdup(at);
    t.refresh_token = dup_or_null(rt);
    t.scope = strdup(scope != NULL ? scope : "");
    json_t *claims = jwt_claims(at);
    t.auth_event_id = dup_or_null(xs_json_str_or(claims, "authentication_event_id", NULL));
    t.xero_user_id = dup_or_null(xs_json_str_or(claims, "xero_userid", NULL));
    json_decref(claims);
    /* Wipe the reply: it held the tokens. */
    xs_crypto_wipe(resp.body, resp.len);
    xs_xero_resp_fini(&resp);
    if (t.access_token == NULL || t.scope == NULL || (rt != NULL && t.refresh_token == NULL)) {
        xs_xero_tokens_fini(&t);
        return XS_ENOMEM;
    }
    *out = t;
    return XS_OK;
}

xs_err xs_xero_token_code(xs_xero *x, const char *code, const char *verifier,
                          const char *redirect_uri, xs_xero_tokens *out, char *oauth_error,
                          xs_xero_call *call)
{
    char *form = NULL;
    xs_err e;
    if ((e = form_add(x->h, &form, "grant_type", "authorization_code")) != XS_OK ||
        (e = form_add(x->h, &form, "code", code)) != XS_OK ||
        (e = form_add(x->h, &form, "redirect_uri", redirect_uri)) != XS_OK ||
        (e = form_add(x->h, &form, "code_verifier", verifier)) != XS_OK) {
        form_free(form);
        memset(call, 0, sizeof(*call));
        call->err = e;
        return e;
    }
    return token_call(x, form, out, oauth_error, call);
}

xs_err xs_xero_token_refresh(xs_xero *x, const char *refresh_token, xs_xero_tokens *out,
                             char *oauth_error, xs_xero_call *call)
{
    char *form = NULL;
    xs_err e;
    if ((e = form_add(x->h, &form, "grant_type", "refresh_token")) != XS_OK ||
        (e = form_add(x->h, &form, "refresh_token", refresh_token)) != XS_OK) {
        form_free(form);
        memset(call, 0, sizeof(*call));
        call->err = e;
        return e;
    }
    return token_call(x, form, out, oauth_error, call);
}

xs_err xs_xero_revoke(xs_xero *x, const char *refresh_token, xs_xero_call *call)
{
    char *form = NULL;
    xs_err e;
    if ((e = form_add(x->h, &form, "token", refresh_token)) != XS_OK ||
        (e = form_add(x->h, &form, "token_type_hint", "refresh_token")) != XS_OK) {
        form_free(form);
        memset(call, 0, sizeof(*call));
        call->err = e;
        return e;
    }
    xs_xero_req req = {.method = "POST",
                       .base = XS_XERO_IDENTITY,
                       .path = "/connect/revocation",
                       .client_auth = true,
                       .content_type = "application/x-www-form-urlencoded",
                       .body = form,
                       .body_len = strlen(form)};
    xs_xero_resp resp;
    e = xs_xero_request(x, &req, &resp, call);
    form_free(form);
    if (e != XS_OK) {
        return e;
    }
    if (resp.status == 200 || resp.status == 204) {
        e = XS_OK;
    } else if (resp.status >= 500 || resp.status == 429) {
        e = XS_EUNAVAILABLE;
    } else {
        e = XS_EAUTH;
    }
    call->err = e;
    xs_xero_resp_fini(&resp);
    return e;
}

/* api_status maps a refused /connections call to an error. */
static xs_err api_status(long status)
{
    if (status == 401 || status == 403) {
        return XS_EAUTH;
    }
    if (status == 404) {
        return XS_ENOTFOUND;
    }
    if (status == 429) {
        return XS_ERATELIMIT;
    }
    if (status >= 500) {
        return XS_EUNAVAILABLE;
    }
    return XS_EPROTO;
}

xs_err xs_xero_connections(xs_xero *x, const char *access_token, const char *auth_event_id,
                           json_t **out, xs_xero_call *call)
{
    char path[XS_XERO_PATH_MAX] = "/connections";
    if (auth_event_id != NULL) {
        char *ev = curl_easy_escape(x->h, auth_event_id, 0);
        if (ev == NULL) {
            return XS_ENOMEM;
        }
        snprintf(path, sizeof(path), "/connections?authEventId=%s", ev);
        curl_free(ev);
    }
    xs_xero_req req = {.method = "GET", .base = XS_XERO_API, .path = path, .bearer = access_token};
    xs_xero_resp resp;
    xs_err e = xs_xero_request(x, &req, &resp, call);
    if (e != XS_OK) {
        return e;
    }
    if (resp.status != 200) {
        e = api_status(resp.status);
    } else if (!json_is_array(resp.json)) {
        e = XS_EPROTO;
        snprintf(call->error, sizeof(call->error), "GET /connections did not answer an array");
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(resp.json, i, c)
        {
            const char *tid = NULL, *cid = NULL;
            if (xs_json_get_str(c, "tenantId", &tid) != XS_OK ||
                xs_json_get_str(c, "id", &cid) != XS_OK) {
                e = XS_EPROTO;
                snprintf(call->error, sizeof(call->error), "connection %zu has no id or tenantId",
                         i);
                break;
            }
        }
    }
    call->err = e;
    if (e == XS_OK) {
        *out = json_incref(resp.json);
    }
    xs_xero_resp_fini(&resp);
    return e;
}

xs_err xs_xero_connection_delete(xs_xero *x, const char *access_token, const char *connection_id,
                                 xs_xero_call *call)
{
    char path[XS_XERO_PATH_MAX];
    char *id = curl_easy_escape(x->h, connection_id, 0);
    if (id == NULL) {
        return XS_ENOMEM;
    }
    snprintf(path, sizeof(path), "/connections/%s", id);
    curl_free(id);
    xs_xero_req req = {
        .method = "DELETE", .base = XS_XERO_API, .path = path, .bearer = access_token};
    xs_xero_resp resp;
    xs_err e = xs_xero_request(x, &req, &resp, call);
    if (e != XS_OK) {
        return e;
    }
    e = resp.status == 204 || resp.status == 200 ? XS_OK : api_status(resp.status);
    call->err = e;
    xs_xero_resp_fini(&resp);
    return e;
}

/* endpoint_word: the length of a resource name at p (letters only, at most 32), ending at '/',
 * '?' or the end; 0 when there is none. */
static size_t endpoint_word(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z')) {
        n++;
    }
    return n > 0 && n <= 32 && (p[n] == '\0' || p[n] == '/' || p[n] == '?') ? n : 0;
}

/* endpoint_id: whether p ("/<segment>" up to the query or the end) is one more segment, the
 * record's id, and nothing after it. */
static bool endpoint_id(const char *p)
{
    if (p[0] != '/' || p[1] == '\0' || p[1] == '?' || p[1] == '/') {
        return false;
    }
    size_t n = strcspn(p + 1, "/?");
    return p[1 + n] != '/';
}

/* files_id_name is the name in braces that stands for the id after resource word w (n bytes)
 * in a Files API path, as xero-sim's counters name it: an upload's POST /Files/{FolderId}, else the
 * id of what the word names. */
static const char *files_id_name(const char *method, const char *w, size_t n, bool last)
{
    if (n == 5 && strncmp(w, "Files", 5) == 0) {
        return last && strcmp(method, "POST") == 0 ? "FolderId" : "FileId";
    }
    if (n == 7 && strncmp(w, "Folders", 7) == 0) {
        return "FolderId";
    }
    return n == 12 && strncmp(w, "Associations", 12) == 0 ? "ObjectId" : "id";
}

/* endpoint_files names a Files API path p (after XS_XERO_FILES_PATH "/"): up to four
 * segments, resource words and ids in turn, as xero-sim counts them ("METHOD /Files/{FileId}/
 * Associations"); else "other" stays in buf. */
static void endpoint_files(const char *method, const char *p, char *buf)
{
    char name[XS_XERO_ENDPOINT_MAX];
    int len = snprintf(name, sizeof(name), "%s ", method);
    size_t plen = strcspn(p, "?");
    const char *word = p;
    size_t wlen = 0;
    if (plen == 0) {
        return;
    }
    for (int seg = 0; plen > 0; seg++) {
        size_t n = strcspn(p, "/?");
        if (seg >= 4 || n == 0 || n > 64 || (seg % 2 == 0 && endpoint_word(p) != n)) {
            return;
        }
        if (seg % 2 == 0) {
            word = p;
            wlen = n;
            len += snprintf(name + len, sizeof(name) - (size_t)len, "/%.*s", (int)n, p);
        } else {
            len += snprintf(name + len, sizeof(name) - (size_t)len, "/{%s}",
                            files_id_name(method, word, wlen, n == plen && seg == 1));
        }
        p += n;
        plen -= n;
        if (plen > 0) { /* a '/' and one more segment */
            p++;
            if (--plen == 0) {
                return;
            }
        }
    }
    snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s", name);
}

/* XPM's base path (the spec's server is https://api.xero.com/practicemanager/). */
static const char xpm_base[] = "/practicemanager/v3.1/";

/* xpm_word_ok: s is 1 to max characters of [A-Za-z0-9_-] (a job number), or of those and
 * ":" for a date-time mark. */
static bool xpm_word_ok(const char *s, size_t max, bool colon)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (colon && c == ':');
        if (!ok) {
            return false;
        }
    }
    return true;
}

xs_err xs_xero_xpm_get(xs_xero *x, const xs_xpm_ask *ask, xs_xero_resp *resp, xs_xero_call *call)
{
    char path[XS_XERO_PATH_MAX];
    bool ok = true;
    switch (ask->what) {
    case XS_XPM_CLIENTS:
        ok = ask->modified_since == NULL || xpm_word_ok(ask->modified_since, 19, true);
        if (ask->modified_since != NULL) {
            snprintf(path, sizeof(path), "%sclient.api/list?modifiedSince=%s", xpm_base,
                     ask->modified_since);
        } else {
            snprintf(path, sizeof(path), "%sclient.api/list", xpm_base);
        }
        break;
    case XS_XPM_JOBS_CURRENT:
        snprintf(path, sizeof(path), "%sjob.api/current", xpm_base);
        break;
    case XS_XPM_JOBS_LIST:
        ok = xpm_word_ok(ask->from, 8, false) && xpm_word_ok(ask->to, 8, false);
        snprintf(path, sizeof(path), "%sjob.api/list?from=%s&to=%s", xpm_base, ok ? ask->from : "",
                 ok ? ask->to : "");
        break;
    case XS_XPM_JOB:
        ok = xpm_word_ok(ask->number, 64, false);
        snprintf(path, sizeof(path), "%sjob.api/get/%s", xpm_base, ok ? ask->number : "");
        break;
    default:
        ok = false;
    }
    if (!ok) {
        memset(resp, 0, sizeof(*resp));
        memset(call, 0, sizeof(*call));
        call->err = XS_EINVAL;
        snprintf(call->error, sizeof(call->error), "a malformed XPM read");
        return XS_EINVAL;
    }
    xs_xero_req req = {.method = "GET",
                       .base = XS_XERO_API,
                       .path = path,
                       .bearer = ask->bearer,
                       .tenant_id = ask->tenant_id};
    return xs_xero_request(x, &req, resp, call);
}

bool xs_xero_xpm_refused(const xs_xero_resp *resp, char *why, size_t cap)
{
    const char *status = xs_json_str_or(resp->json, "status", NULL);
    const char *desc = xs_json_str_or(resp->json, "errorDescription", NULL);
    if (desc == NULL) {
        desc = xs_json_str_or(resp->json, "detail", xs_json_str_or(resp->json, "title", NULL));
    }
    if (resp->status == 200 && resp->json != NULL &&
        (status == NULL || strcasecmp(status, "OK") == 0)) {
        return false;
    }
    if (resp->status == 200 && resp->json == NULL) {
        snprintf(why, cap, "XPM answered something other than JSON");
    } else if (desc != NULL) {
        snprintf(why, cap, "XPM answered %ld: %s", resp->status, desc);
    } else {
        snprintf(why, cap, "XPM answered %ld", resp->status);
    }
    return true;
}

/* xpm_endpoint names an XPM read (path after xpm_base): "<group>.api/<action>", with "/{id}"
 * for one more segment; false for anything else. */
static bool xpm_endpoint(const char *method, const char *p, char *buf)
{
    size_t g = strcspn(p, "./?");
    if (g == 0 || g > 32 || strncmp(p + g, ".api/", 5) != 0) {
        return false;
    }
    const char *act = p + g + 5;
    size_t n = endpoint_word(act);
    if (n == 0) {
        return false;
    }
    const char *rest = act + n;
    if (*rest == '\0' || *rest == '?') {
        snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s %s%.*s.api/%.*s", method, xpm_base, (int)g, p,
                 (int)n, act);
        return true;
    }
    if (endpoint_id(rest)) {
        snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s %s%.*s.api/%.*s/{id}", method, xpm_base, (int)g, p,
                 (int)n, act);
        return true;
    }
    return false;
}

void xs_xero_endpoint(const xs_xero_call *call, char *buf)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *const fixed[] = {"/connect/token", "/connect/revocation", "/connections"};
    static const char api[] = "/api.xro/2.0/";
    static const char files[] = XS_XERO_FILES_PATH "/";
    const char *m = call->method[0] != '\0' ? call->method : "GET";
    const char *method = NULL;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i]) == 0) {
            method = methods[i];
        }
    }
    const char *path = call->path;
    size_t plen = strcspn(path, "?");
    snprintf(buf, XS_XERO_ENDPOINT_MAX, "other");
    if (method == NULL) {
        return;
    }
    if (strncmp(path, xpm_base, sizeof(xpm_base) - 1) == 0) {
        if (!xpm_endpoint(method, path + sizeof(xpm_base) - 1, buf)) {
            snprintf(buf, XS_XERO_ENDPOINT_MAX, "other");
        }
        return;
    }
    if (strncmp(path, files, sizeof(files) - 1) == 0) {
        endpoint_files(method, path + sizeof(files) - 1, buf);
        return;
    }
    if (strncmp(path, api, sizeof(api) - 1) == 0) {
        const char *res = path + sizeof(api) - 1;
        size_t n = endpoint_word(res);
        if (n == 0) {
            return;
        }
        const char *rest = res + n;
        if (*rest == '\0' || *rest == '?') {
            snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s /%.*s", method, (int)n, res);
        } else if (endpoint_id(rest)) {
            snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s /%.*s/{id}", method, (int)n, res);
        }
        return;
    }
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t n = strlen(fixed[i]);
        if (strncmp(path, fixed[i], n) != 0) {
            continue;
        }
        if (plen == n) {
            snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s %s", method, fixed[i]);
        } else if (i == 2 && endpoint_id(path + n)) {
            snprintf(buf, XS_XERO_ENDPOINT_MAX, "%s /connections/{id}", method);
        }
        return;
    }
}

/* --- Xero Files --- */

/* files_body serialises v (taken over; NULL accepted) into a new string, or NULL. */
static char *files_body(json_t *v)
{
    char *text = v != NULL ? xs_json_dump(v, 0) : NULL;
    json_decref(v);
    return text;
}

/* files_refusal writes Xero's message of a refused Files call into call->error: Message,
 * Detail or Title of its JSON, else the body's first bytes. */
static void files_refusal(const xs_xero_resp *resp, xs_xero_call *call)
{
    const char *msg = xs_json_str_or(resp->json, "Message", NULL);
    if (msg == NULL) {
        msg = xs_json_str_or(resp->json, "Detail", NULL);
    }
    if (msg == NULL) {
        msg = xs_json_str_or(resp->json, "Title", NULL);
    }
    snprintf(call->error, sizeof(call->error), "HTTP %ld: %.200s", resp->status,
             msg != NULL ? msg : (resp->body != NULL ? resp->body : ""));
}

/* files_call makes one Files API request (path under XS_XERO_FILES_PATH) and, for a 2xx
 * reply, takes its JSON into *out, checked to be of type want (JSON_OBJECT, JSON_ARRAY). */
static xs_err files_call(xs_xero *x, const xs_xero_files_who *who, const char *method,
                         const char *path, const char *key, const char *ctype, const void *body,
                         size_t len, json_type want, json_t **out, xs_xero_call *call)
{
    *out = NULL;
    char full[XS_XERO_PATH_MAX];
    if ((size_t)snprintf(full, sizeof(full), "%s%s", XS_XERO_FILES_PATH, path) >= sizeof(full)) {
        memset(call, 0, sizeof(*call));
        call->err = XS_EINVAL;
        return XS_EINVAL;
    }
    xs_xero_req req = {.method = method,
                       .base = XS_XERO_API,
                       .path = full,
                       .bearer = who->bearer,
                       .tenant_id = who->tenant_id,
                       .idempotency_key = key,
                       .content_type = ctype,
                       .body = body,
                       .body_len = len};
    xs_xero_resp resp;
    xs_err e = xs_xero_request(x, &req, &resp, call);
    if (e != XS_OK) {
        return e;
    }
    if (resp.status < 200 || resp.status > 299) {
        files_refusal(&resp, call);
    } else if (resp.json == NULL || json_typeof(resp.json) != want) {
        snprintf(call->error, sizeof(call->error), "Xero's reply is not the documented %s",
                 want == JSON_ARRAY ? "array" : "object");
        call->err = e = XS_EPROTO;
    } else {
        *out = resp.json;
        resp.json = NULL;
    }
    xs_xero_resp_fini(&resp);
    return e;
}

xs_err xs_xero_files_folders(xs_xero *x, const xs_xero_files_who *who, json_t **out,
                             xs_xero_call *call)
{
    return files_call(x, who, "GET", "/Folders", NULL, NULL, NULL, 0, JSON_ARRAY, out, call);
}

xs_err xs_xero_files_folder_create(xs_xero *x, const xs_xero_files_who *who, const char *name,
                                   const char *key, json_t **out, xs_xero_call *call)
{
    char *body = files_body(json_pack("{s:s}", "Name", name));
    if (body == NULL) {
        *out = NULL;
        memset(call, 0, sizeof(*call));
        return call->err = XS_ENOMEM;
    }
    xs_err e = files_call(x, who, "POST", "/Folders", key, NULL, body, strlen(body), JSON_OBJECT,
                          out, call);
    free(body);
    return e;
}

xs_err xs_xero_files_recent(xs_xero *x, const xs_xero_files_who *who, json_t **out,
                            xs_xero_call *call)
{
    return files_call(x, who, "GET", "/Files?pagesize=100&sort=CreatedDateUTC&direction=DESC", NULL,
                      NULL, NULL, 0, JSON_OBJECT, out, call);
}

/* multipart_part appends one form-data part (name, optional filename and content type). */
static xs_err multipart_part(xs_buf *b, const char *boundary, const char *name,
                             const char *filename, const char *ctype, const void *data, size_t n)
{
    xs_err e =
        xs_buf_printf(b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, name);
    if (e == XS_OK && filename != NULL) {
        e = xs_buf_printf(b, "; filename=\"%s\"", filename);
    }
    if (e == XS_OK && ctype != NULL) {
        e = xs_buf_printf(b, "\r\nContent-Type: %s", ctype);
    }
    if (e == XS_OK) {
        e = xs_buf_puts(b, "\r\n\r\n");
    }
    if (e == XS_OK) {
        e = xs_buf_append(b, data, n);
    }
    return e == XS_OK ? xs_buf_puts(b, "\r\n") : e;
}

/* multipart_name writes name with the characters a quoted form-data parameter cannot hold
 * (quote, backslash, control characters) replaced by '_' into out (cap bytes). */
static void multipart_name(const char *name, char *out, size_t cap)
{
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = c == '"' || c == '\\' || c < 0x20 || c == 0x7f ? '_' : (char)c;
    }
    out[i] = '\0';
}

xs_err xs_xero_files_upload(xs_xero *x, const xs_xero_files_who *who, const char *folder_id,
                            const xs_xero_upload *f, const char *key, json_t **out,
                            xs_xero_call *call)
{
    *out = NULL;
    char *tok = NULL, boundary[64], path[96], name[512], ctype[128];
    xs_err e = xs_crypto_random_token(18, &tok);
    if (e != XS_OK) {
        memset(call, 0, sizeof(*call));
        return call->err = e;
    }
    snprintf(boundary, sizeof(boundary), "xs-%s", tok);
    free(tok);
    snprintf(path, sizeof(path), "/Files/%.40s", folder_id);
    snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", boundary);
    multipart_name(f->name, name, sizeof(name));
    xs_buf b;
    xs_buf_init(&b, f->len + 1024);
    e = multipart_part(&b, boundary, "name", NULL, NULL, name, strlen(name));
    if (e == XS_OK) {
        e = multipart_part(&b, boundary, "filename", NULL, NULL, name, strlen(name));
    }
    if (e == XS_OK) {
        e = multipart_part(&b, boundary, "mimeType", NULL, NULL, f->mime_type,
                           strlen(f->mime_type));
    }
    if (e == XS_OK) {
        e = multipart_part(&b, boundary, "body", name, f->mime_type, f->bytes, f->len);
    }
    if (e == XS_OK) {
        e = xs_buf_printf(&b, "--%s--\r\n", boundary);
    }
    if (e != XS_OK) {
        xs_buf_fini(&b);
        memset(call, 0, sizeof(*call));
        return call->err = e;
    }
    size_t len = 0;
    char *body = xs_buf_take(&b, &len);
    e = files_call(x, who, "POST", path, key, ctype, body, len, JSON_OBJECT, out, call);
    free(body);
    return e;
}

xs_err xs_xero_files_associations(xs_xero *x, const xs_xero_files_who *who, const char *file_id,
                                  json_t **out, xs_xero_call *call)
{
    char path[96];
    snprintf(path, sizeof(path), "/Files/%.40s/Associations", file_id);
    return files_call(x, who, "GET", path, NULL, NULL, NULL, 0, JSON_ARRAY, out, call);
}

xs_err xs_xero_files_associate(xs_xero *x, const xs_xero_files_who *who, const char *file_id,
                               const char *object_id, const char *object_group,
                               const char *object_type, const char *key, json_t **out,
                               xs_xero_call *call)
{
    char path[96];
    snprintf(path, sizeof(path), "/Files/%.40s/Associations", file_id);
    char *body = files_body(json_pack("{s:s, s:s, s:s}", "ObjectId", object_id, "ObjectGroup",
                                      object_group, "ObjectType", object_type));
    if (body == NULL) {
        *out = NULL;
        memset(call, 0, sizeof(*call));
        return call->err = XS_ENOMEM;
    }
    xs_err e =
        files_call(x, who, "POST", path, key, NULL, body, strlen(body), JSON_OBJECT, out, call);
    free(body);
    return e;
}

bool xs_xero_files_type_ok(const char *name, const char *types)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot[1] == '\0' || strlen(dot + 1) > 16 || types == NULL) {
        return false;
    }
    const char *ext = dot + 1;
    size_t n = strlen(ext);
    for (const char *p = types; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && strncasecmp(p, ext, n) == 0) {
            return true;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return false;
}

bool xs_xero_files_folder_ok(const char *name, char *why)
{
    size_t n = strlen(name);
    bool blank = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || strchr("\\/:*?\"<>|", c) != NULL) {
            snprintf(why, XS_XERO_ERROR_MAX,
                     "a Xero Files folder name cannot hold \\ / : * ? \" < > | or control "
                     "characters");
            return false;
        }
        blank = blank && c == ' ';
    }
    if (n == 0 || blank || n > XS_XERO_FOLDER_NAME_MAX) {
        snprintf(why, XS_XERO_ERROR_MAX, "a Xero Files folder name has 1 to %d characters",
                 XS_XERO_FOLDER_NAME_MAX);
        return false;
    }
    if (strcasecmp(name, "Inbox") == 0) {
        snprintf(why, XS_XERO_ERROR_MAX, "Inbox is Xero Files' own folder");
        return false;
    }
    return true;
}
