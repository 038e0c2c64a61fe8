/*
 * server.c: the simulator's life cycle and HTTP front: start and stop, routing of every
 * request (identity, connections, accounting, files, XPM, control) and sending its reply (reply.h
 * makes it), and the faults that act on the connection itself (hang, reset, lost, truncated,
 * garbled), or, on identity endpoints, on the reply (429, applied_5xx).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "context.h"
#include "control.h"
#include "faults.h"
#include "files.h"
#include "identity.h"
#include "limits.h"
#include "reply.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "webhooks.h"
#include "world.h"
#include "xpmapi.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ small shared pieces */

/* ------------------------------------------------------------------ replies */

/* garble corrupts a body deterministically: a stretch in the middle becomes bytes that are
 * not JSON (and not UTF-8). */
static void garble(char *p, size_t n, uint64_t h)
{
    if (n == 0) {
        return;
    }
    size_t from = n / 3, to = n - n / 3;
    if (to <= from) {
        to = from + 1 < n ? from + 1 : n;
    }
    for (size_t i = from; i < to; i++) {
        h = sim__mix64(h + i);
        if (h % 3 == 0) {
            p[i] = (char)(0x80 | (h & 0x3f));
        } else if (h % 3 == 1) {
            p[i] = "{}[]\",:"[h % 7];
        }
    }
}

/* send_reply writes the call's reply, carrying out the connection-level faults. */
static void send_reply(sim_call *c)
{
    xs_http_req *req = c->req;
    switch (c->fault) {
    case SIM_FAULT_HANG:
        c->status = 0;
        xs_http_reply_drop(req, false);
        return;
    case SIM_FAULT_RESET:
        c->status = 0;
        xs_http_reply_drop(req, true);
        return;
    case SIM_FAULT_LOST:
        xs_http_reply_drop(req, true);
        return;
    default:
        break;
    }
    if (c->status == 0) {
        sim__reply_problem(c, 500, "Internal Server Error", "no reply was produced");
    }
    if (c->header_lost) {
        /* a reply without one of its headers (a Location, a Retry-After) would mislead */
        sim__reply_headers_free(c);
        sim__reply_problem(c, 500, "Internal Server Error", "a reply header could not be stored");
    }
    xs_http_add_header(req, "Xero-Correlation-Id", c->cid);
    for (int i = 0; i < c->nh; i++) {
        xs_http_add_header(req, c->hname[i], c->hval[i]);
    }
    char *body = NULL;
    size_t len = 0;
    if (c->json != NULL) {
        body = xs_json_dump(c->json, XS_JSON_COMPACT);
        if (body == NULL) {
            xs_http_reply(req, 500, "text/plain", "out of memory", 13);
            return;
        }
        len = strlen(body);
    } else if (c->text != NULL) {
        body = c->text;
        c->text = NULL;
        len = c->text_len > 0 ? c->text_len : strlen(body);
    }
    if (c->status == 204 || (c->status == 302 && len == 0)) {
        xs_http_reply(req, c->status, NULL, NULL, 0);
    } else if (c->fault == SIM_FAULT_TRUNCATED) {
        xs_http_reply_truncated(req, c->status, c->ctype, body, len, len / 2);
    } else if (c->fault == SIM_FAULT_GARBLED) {
        garble(body, len, c->id);
        xs_http_reply(req, c->status, c->ctype, body, len);
    } else {
        xs_http_reply(req, c->status, c->ctype, body, len);
    }
    free(body);
}

/* ------------------------------------------------------------------ routing */

static bool path_is(const char *path, const char *want)
{
    return strcasecmp(path, want) == 0;
}

/* identity_pre handles the pre-processing faults of non-accounting endpoints; false when the
 * call is over. */
static bool identity_pre(sim_call *c, bool rates)
{
    size_t len = 0;
    const char *body = xs_http_req_body(c->req, &len);
    c->fault = sim__fault_pick(c, body, len, rates);
    switch (c->fault) {
    case SIM_FAULT_500:
        sim__reply_oauth_error(c, 500, "server_error", NULL);
        return false;
    case SIM_FAULT_503:
        sim__reply_header(c, "Retry-After", "5");
        sim__reply_oauth_error(c, 503, "temporarily_unavailable", NULL);
        return false;
    case SIM_FAULT_HANG:
        sim__hang(c->s, c->set.hang_ms);
        return false;
    case SIM_FAULT_RESET:
        return false;
    case SIM_FAULT_SLOW:
        sim__hang(c->s, c->set.hang_ms);
        return true;
    case SIM_FAULT_429:
        sim__limits_fault_429(c);
        return false;
    case SIM_FAULT_NIL_ID:
        /* no items to answer for: the call proceeds, and nothing was injected */
        c->fault = SIM_FAULT_NONE;
        return true;
    case SIM_FAULT_APPLIED_5XX:
        return true; /* the call is handled, then its reply replaced (dispatch) */
    default:
        return true;
    }
}

static bool is_control(const char *path)
{
    return strncmp(path, "/_sim", 5) == 0 && (path[5] == '\0' || path[5] == '/');
}

/* identity_route names the identity endpoint path is (its canonical path, static), or
 * returns NULL. */
static const char *identity_route(const char *path)
{
    static const char *const exact[] = {"/identity/connect/authorize",
                                        "/identity/connect/authorize/consent",
                                        "/connect/token",
                                        "/connect/revocation",
                                        "/connections",
                                        NULL};
    for (size_t i = 0; exact[i] != NULL; i++) {
        if (path_is(path, exact[i])) {
            return exact[i];
        }
    }
    if (strncasecmp(path, "/connections/", 13) == 0 && strchr(path + 13, '/') == NULL) {
        return "/connections/{id}";
    }
    return NULL;
}

/* files_rest returns where the Files API's own path begins in path ("/Files", after the
 * prefix), or NULL when path is not the Files API's. */
static const char *files_rest(const char *path)
{
    size_t plen = strlen(SIM_FILES_PREFIX);
    if (strncasecmp(path, SIM_FILES_PREFIX, plen) == 0 &&
        (path[plen] == '/' || path[plen] == '\0')) {
        return path + plen;
    }
    return NULL;
}

/* xpm_rest returns where the XPM API's own path begins in path ("/job.api/current", after
 * the prefix), or NULL when path is not the XPM API's. */
static const char *xpm_rest(const char *path)
{
    size_t plen = strlen(SIM_XPM_PREFIX);
    if (strncasecmp(path, SIM_XPM_PREFIX, plen) == 0 && (path[plen] == '/' || path[plen] == '\0')) {
        return path + plen;
    }
    return NULL;
}

/* accounting_rest returns where the Accounting API's own path begins in path ("/Contacts",
 * after the prefix, or all of it when serving at the root), or NULL when path is not the
 * Accounting API's. */
static const char *accounting_rest(const sim_settings *set, const char *path)
{
    size_t plen = strlen(SIM_API_PREFIX);
    if (strncasecmp(path, SIM_API_PREFIX, plen) == 0 && (path[plen] == '/' || path[plen] == '\0')) {
        return path + plen;
    }
    if (set->serve_at_root && path[0] == '/' && path[1] != '\0' && !is_control(path) &&
        identity_route(path) == NULL && files_rest(path) == NULL && xpm_rest(path) == NULL) {
        return path;
    }
    return NULL;
}

/* call_create starts a call for req at path (new; NULL when out of memory). */
static sim_call *call_create(sim *s, xs_http_req *req, const char *path)
{
    sim_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->s = s;
    c->req = req;
    c->t0 = xs_clock_mono_ms();
    sim__settings(s, &c->set);
    c->method = xs_http_req_method(req);
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->id = sim__stats_begin(s);
    sim_rng r = {c->id ^ sim__mix64(c->set.seed) ^ (uint64_t)c->t0};
    xs_uuid cid;
    sim__rng_uuid(&r, &cid);
    xs_uuid_format(&cid, c->cid);
    return c;
}

/* call_destroy frees a call (NULL accepted). */
static void call_destroy(sim_call *c)
{
    if (c == NULL) {
        return;
    }
    sim__reply_headers_free(c);
    json_decref(c->json);
    free(c->text);
    free(c);
}

/* call_finish sends the reply and counts the call (world_lock held for reading). */
static void call_finish(sim_call *c)
{
    if (c->endpoint[0] == '\0') {
        /* anything the client can vary without bound (paths, methods) counts as one */
        snprintf(c->endpoint, sizeof(c->endpoint), "other");
    }
    send_reply(c);
    /* before the unlock: the call names its tenant, which a reset may free afterwards */
    sim__stats_end(c);
}

static void dispatch(xs_http_req *req, void *arg)
{
    sim *s = arg;
    sim_call *c = call_create(s, req, xs_http_req_path(req));
    if (c == NULL) {
        xs_http_reply(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    if (is_control(c->path)) {
        sim__h_control(c, c->path + 5);
        send_reply(c);
        call_destroy(c);
        return;
    }

    pthread_rwlock_rdlock(&s->world_lock);
    const char *xrest = xpm_rest(c->path);
    const char *rest = xrest == NULL ? accounting_rest(&c->set, c->path) : NULL;
    const char *ident = rest == NULL && xrest == NULL ? identity_route(c->path) : NULL;
    if (ident != NULL) {
        /* the handlers name themselves too; this names a call a fault ends first */
        snprintf(c->endpoint, sizeof(c->endpoint), "%.12s %s", c->method, ident);
    }
    const char *frest = files_rest(c->path);
    if (xrest != NULL) {
        sim__h_xpm(c, xrest);
    } else if (rest != NULL) {
        sim__h_accounting(c, rest);
    } else if (frest != NULL) {
        sim__h_files(c, frest);
    } else if (ident == NULL) {
        sim__reply_text(c, 404, "The resource you're looking for cannot be found");
    } else if (strcmp(ident, "/identity/connect/authorize") == 0) {
        if (identity_pre(c, false)) {
            sim__h_authorize(c);
        }
    } else if (strcmp(ident, "/identity/connect/authorize/consent") == 0) {
        if (identity_pre(c, false)) {
            sim__h_authorize_consent(c);
        }
    } else if (strcmp(ident, "/connect/token") == 0) {
        if (identity_pre(c, false)) {
            sim__h_token(c);
        }
    } else if (strcmp(ident, "/connect/revocation") == 0) {
        if (identity_pre(c, false)) {
            sim__h_revoke(c);
        }
    } else if (strcmp(ident, "/connections") == 0) {
        if (identity_pre(c, true)) {
            sim__h_connections(c);
        }
    } else if (identity_pre(c, true)) {
        sim__h_connection_delete(c, c->path + 13);
    }
    if (ident != NULL && c->fault == SIM_FAULT_APPLIED_5XX) {
        sim__reply_gateway_timeout(c); /* the handler did its work; its reply is lost */
    }
    call_finish(c);
    pthread_rwlock_unlock(&s->world_lock);
    call_destroy(c);
}

/* server_error answers the errors the HTTP layer produces before routing (a body over its
 * ceiling, a target or headers too long, a refused target) in Xero's shapes, with the rate
 * limit headers, when the request is for the Accounting, Files or XPM API; anything else keeps the
 * layer's JSON errors. */
static bool server_error(xs_http_req *req, int status, void *arg)
{
    sim *s = arg;
    sim_settings set;
    sim__settings(s, &set);
    const char *raw = xs_http_req_raw_path(req);
    if (accounting_rest(&set, raw) == NULL && files_rest(raw) == NULL && xpm_rest(raw) == NULL) {
        return false;
    }
    sim_call *c = call_create(s, req, raw);
    if (c == NULL) {
        return false;
    }
    switch (status) {
    case 413:
        sim__reply_too_large(c);
        break;
    case 414:
        sim__reply_problem(c, 414, "URI Too Long",
                           "The request URI is longer than the server is willing to interpret.");
        break;
    case 431:
        sim__reply_problem(c, 431, "Request Header Fields Too Large",
                           "The request headers are larger than the server accepts.");
        break;
    default:
        sim__reply_problem(c, status, "Bad Request", "The request URI is not valid.");
        break;
    }
    pthread_rwlock_rdlock(&s->world_lock);
    sim__limits_headers(c);
    call_finish(c);
    pthread_rwlock_unlock(&s->world_lock);
    call_destroy(c);
    return true;
}

/* ------------------------------------------------------------------ configuration */

/* ------------------------------------------------------------------ life cycle */

static const xs_http_route routes[] = {
    {"*", "/*", dispatch, 0},
};

uint16_t sim_port(const sim *s)
{
    return xs_http_server_port(s->http);
}

xs_err sim_create(sim **out, const xs_config *cfg, xs_log *log)
{
    sim *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return XS_ENOMEM;
    }
    s->log = log;
    s->cfg = cfg;
    pthread_mutex_init(&s->set_mu, NULL);
    /* writers first: a reset or a new tenant is not starved by a stream of calls (the lock
     * is never taken recursively, so a waiting writer cannot deadlock a reader) */
    pthread_rwlockattr_t wa;
    pthread_rwlockattr_init(&wa);
    pthread_rwlockattr_setkind_np(&wa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->world_lock, &wa);
    pthread_rwlockattr_destroy(&wa);
    pthread_mutex_init(&s->id_mu, NULL);
    pthread_mutex_init(&s->lim_mu, NULL);
    pthread_mutex_init(&s->fault_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_mutex_init(&s->idem_mu, NULL);
    pthread_mutex_init(&s->hang_mu, NULL);
    pthread_cond_init(&s->hang_cv, NULL);
    s->app_window = INT64_MIN;

    xs_err e = sim__settings_from_config(cfg, &s->set, log);
    if (e != XS_OK) {
        goto fail;
    }
    snprintf(s->addr, sizeof(s->addr), "%s", xs_config_str(cfg, "XS_SIM_ADDR"));
    snprintf(s->client_id, sizeof(s->client_id), "%s", xs_config_str(cfg, "XS_SIM_CLIENT_ID"));
    snprintf(s->client_secret, sizeof(s->client_secret), "%s",
             xs_config_str(cfg, "XS_SIM_CLIENT_SECRET"));
    snprintf(s->redirect_uris, sizeof(s->redirect_uris), "%s",
             xs_config_str(cfg, "XS_SIM_REDIRECT_URIS"));
    snprintf(s->scopes, sizeof(s->scopes), "%s", xs_config_str(cfg, "XS_SIM_SCOPES"));
    snprintf(s->app_name, sizeof(s->app_name), "%s", xs_config_str(cfg, "XS_SIM_APP_NAME"));
    s->call_log_cap = xs_config_int(cfg, "XS_SIM_CALL_LOG");
    s->init_tenants = xs_config_int(cfg, "XS_SIM_TENANTS");
    s->init_records = xs_config_int(cfg, "XS_SIM_SEED_RECORDS");
    s->init_xpm_clients = xs_config_int(cfg, "XS_SIM_SEED_XPM_CLIENTS");
    if ((e = xs_crypto_random(s->jwt_key, sizeof(s->jwt_key))) != XS_OK) {
        goto fail;
    }
    /* the test user */
    sim_rng ur = {s->set.seed ^ UINT64_C(0x75736572)};
    sim__rng_uuid(&ur, &s->user.id);
    xs_uuid_format(&s->user.id, s->user.ids);
    snprintf(s->user.email, sizeof(s->user.email), "%s", xs_config_str(cfg, "XS_SIM_USER_EMAIL"));
    snprintf(s->user.first, sizeof(s->user.first), "Test");
    snprintf(s->user.last, sizeof(s->user.last), "User");

    if ((e = sim__stats_init(s)) != XS_OK || (e = sim__webhooks_create(s, &s->wh)) != XS_OK) {
        goto fail;
    }
    pthread_rwlock_wrlock(&s->world_lock);
    e = sim__tenants_start(s);
    pthread_rwlock_unlock(&s->world_lock);
    if (e != XS_OK) {
        goto fail;
    }

    xs_http_opts o = {0};
    o.bind_addr = s->addr;
    o.port = (uint16_t)xs_config_int(cfg, "XS_SIM_PORT");
    o.max_body = SIM_HARD_BODY_MAX;
    o.max_connections = (unsigned)xs_config_int(cfg, "XS_SIM_MAX_CONNECTIONS");
    /* Long, so that the engine's kept-alive connections stay open between its calls (no
     * per-address limit either: every test client is 127.0.0.1); xero-sim is a test double,
     * not a front door. */
    o.header_timeout_ms = 300000;
    o.body_timeout_ms = 300000;
    o.idle_timeout_ms = 300000;
    o.routes = routes;
    o.nroutes = sizeof(routes) / sizeof(routes[0]);
    o.server_error = server_error;
    o.arg = s;
    o.log = xs_log_enabled(log, XS_LOG_DEBUG) ? log : NULL;
    if ((e = xs_http_server_create(&s->http, &o)) != XS_OK) {
        goto fail;
    }
    const char *pub = xs_config_str(cfg, "XS_SIM_PUBLIC_URL");
    if (pub != NULL) {
        snprintf(s->public_url, sizeof(s->public_url), "%s", pub);
        size_t n = strlen(s->public_url);
        while (n > 0 && s->public_url[n - 1] == '/') {
            s->public_url[--n] = '\0';
        }
    } else {
        snprintf(s->public_url, sizeof(s->public_url), "http://%s:%u", s->addr,
                 (unsigned)sim_port(s));
    }
    *out = s;
    return XS_OK;
fail:
    sim_destroy(s);
    return e;
}

void sim_destroy(sim *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->hang_mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->hang_cv);
    pthread_mutex_unlock(&s->hang_mu);
    xs_http_server_destroy(s->http);
    sim__webhooks_destroy(s->wh);
    for (size_t i = 0; i < s->ntenants; i++) {
        sim__tenant_destroy(s->tenants[i]);
    }
    free(s->tenants);
    sim__smap_free(&s->tenant_ids, NULL);
    sim__identity_reset(s);
    sim__faults_reset(s);
    sim__stats_fini(s);
    pthread_cond_destroy(&s->hang_cv);
    pthread_mutex_destroy(&s->hang_mu);
    pthread_mutex_destroy(&s->idem_mu);
    pthread_mutex_destroy(&s->stats_mu);
    pthread_mutex_destroy(&s->fault_mu);
    pthread_mutex_destroy(&s->lim_mu);
    pthread_mutex_destroy(&s->id_mu);
    pthread_rwlock_destroy(&s->world_lock);
    pthread_mutex_destroy(&s->set_mu);
    xs_crypto_wipe(s->client_secret, sizeof(s->client_secret));
    free(s);
}
