/*
 * simtest.h: what the simulator's tests share. Each test runs xero-sim in-process (the
 * library) on a free port and talks real HTTP to it with libcurl.
 */
#ifndef XS_SIMTEST_H
#define XS_SIMTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "xs/config.h"

typedef struct st_sim {
    sim *s;
    xs_config *cfg;
    char base[64];     /* "http://127.0.0.1:PORT" */
    char tenant[64];   /* the first tenant's id */
    char token[4096];  /* access token after st_connect */
    char refresh[256]; /* refresh token after st_connect */
    void *curl;        /* a reused handle (keep-alive) */
    /* a new connection per request: libcurl re-sends a request once, silently, when a reused
     * connection dies before the reply, which would hide reset and lost faults */
    bool fresh;
    /* send the path as given (libcurl otherwise removes "../" segments itself) */
    bool raw_path;
} st_sim;

/* st_start starts a simulator with the test defaults (free port, quiet log, webhooks not
 * gated by intent to receive, per-minute and per-day limits out of the way) and env overrides
 * ("NAME=value", NULL-terminated, may be NULL). It aborts the test program on failure. */
st_sim *st_start(const char *const *env);

/* st_stop stops and frees. */
void st_stop(st_sim *t);

typedef struct st_reply {
    long status; /* 0: transport failure (reset, timeout, truncated) */
    int curl_code;
    char *body; /* new, NUL-terminated */
    size_t len;
    json_t *json;  /* parsed with xs_json_parse when the body is JSON, else NULL */
    char *headers; /* raw header block, new */
} st_reply;

/* st_req performs one request to base+path (any length) with optional body and extra
 * headers ("Name: value", NULL-terminated). timeout_ms 0: 20 s. */
st_reply st_req(st_sim *t, const char *method, const char *path, const char *body,
                const char *const *headers, long timeout_ms);

/* st_req_bytes is st_req with a body of len bytes (any bytes, NULs included). */
st_reply st_req_bytes(st_sim *t, const char *method, const char *path, const char *body, size_t len,
                      const char *const *headers, long timeout_ms);

/* st_req_upload is st_req with a body of size bytes announced with Expect: 100-continue and
 * sent only when the server asks for it (for bodies too large to hold, or refused unread). */
st_reply st_req_upload(st_sim *t, const char *method, const char *path, const char *const *headers,
                       int64_t size);

/* st_header returns a reply header's value in buf (case-insensitive name), or NULL. */
const char *st_header(const st_reply *r, const char *name, char *buf, size_t cap);

void st_reply_free(st_reply *r);

/* st_api calls the Accounting API (path after /api.xro/2.0) with the bearer token and the
 * first tenant's id; extra headers may be NULL. */
st_reply st_api(st_sim *t, const char *method, const char *path, const char *body,
                const char *const *extra);

/* st_api_replayed sends an Accounting API request again (as st_api) and checks that the
 * reply is a 200 byte for byte the same as first's: an Idempotency-Key's replay. */
void st_api_replayed(st_sim *t, const st_reply *first, const char *method, const char *path,
                     const char *body, const char *const *extra);

/* st_ctl calls the control API and returns its JSON (new); it fails the test unless the
 * status is want. */
json_t *st_ctl(st_sim *t, const char *method, const char *path, const char *body, long want);

/* st_urlenc appends s to out (cap bytes in all), percent-encoded for a query string. */
void st_urlenc(char *out, size_t cap, const char *s);

/* st_connections calls GET /connections with t's access token. */
st_reply st_connections(st_sim *t);

/* st_pkce makes a verifier and its S256 challenge. */
void st_pkce(char verifier[64], char challenge[64]);

/* st_authorize runs /identity/connect/authorize and returns the code from the redirect (new,
 * or NULL with the status in *status). */
char *st_authorize(st_sim *t, const char *scope, const char *challenge, const char *redirect,
                   long *status);

/* st_token posts a form to /connect/token with HTTP Basic credentials (secret NULL: the
 * right one). */
st_reply st_token(st_sim *t, const char *form, const char *secret);

/* st_connect does the whole flow with the accounting scopes and stores token, refresh and
 * tenant. */
void st_connect(st_sim *t);
/* st_connect_scope is st_connect asking for the space-separated scope instead. */
void st_connect_scope(st_sim *t, const char *scope);

/* st_connect_scope is st_connect asking for the space-separated scope list. */
void st_connect_scope(st_sim *t, const char *scope);

/* st_str returns obj[key] as a string (borrowed), or "" when absent or not a string. */
const char *st_str(const json_t *obj, const char *key);

/* st_money_eq tells whether a JSON number equals decimal text exactly ("12.30" == "12.3"). */
bool st_money_eq(const json_t *v, const char *text);

/* st_path follows "A.0.B" through objects and arrays (borrowed, or NULL). */
json_t *st_path(json_t *root, const char *path);

/* st_assert_errors fails the test unless item is marked ERROR with exactly the validation
 * errors first and second, in that order. */
void st_assert_errors(json_t *item, const char *first, const char *second);

#endif
