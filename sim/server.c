/*
 * server.c: the simulator's life cycle and HTTP front: configuration, start and stop,
 * routing of every request (identity, connections, accounting, control), reply helpers,
 * and the faults that act on the connection itself (hang, reset, lost, truncated, garbled),
 * or, on identity endpoints, on the reply (429, applied_5xx).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ small shared pieces */

xs_time sim__now(sim *s)
{
    pthread_mutex_lock(&s->set_mu);
    int64_t off = s->clock_offset;
    pthread_mutex_unlock(&s->set_mu);
    return xs_clock_now() + off;
}

void sim__settings(sim *s, sim_settings *out)
{
    pthread_mutex_lock(&s->set_mu);
    *out = s->set;
    pthread_mutex_unlock(&s->set_mu);
}

sim_tenant *sim__tenant_find(sim *s, const xs_uuid *id)
{
    for (size_t i = 0; i < s->ntenants; i++) {
        if (xs_uuid_eq(&s->tenants[i]->id, id)) {
            return s->tenants[i];
        }
    }
    return NULL;
}

xs_err sim__tenant_add(sim *s, const xs_uuid *id, const char *name, const char *currency,
                       sim_tenant **out)
{
    if (s->ntenants == s->captenants) {
        size_t cap = s->captenants ? s->captenants * 2 : 8;
        sim_tenant **n = realloc(s->tenants, cap * sizeof(*n));
        if (n == NULL) {
            return XS_ENOMEM;
        }
        s->tenants = n;
        s->captenants = cap;
    }
    sim_tenant *t = NULL;
    xs_err e = sim__tenant_create(&t, id, name, currency, s->set.seed);
    if (e != XS_OK) {
        return e;
    }
    t->created = sim__now(s);
    if ((e = sim__seed_accounts(t, t->created)) != XS_OK) {
        sim__tenant_destroy(t);
        return e;
    }
    sim__tenant_phase(s, t);
    s->tenants[s->ntenants++] = t;
    *out = t;
    return XS_OK;
}

const sim_kind_ops *sim__ops(sim_kind k)
{
    switch (k) {
    case SIM_CONTACT:
        return &sim__contact_ops;
    case SIM_INVOICE:
        return &sim__invoice_ops;
    case SIM_PAYMENT:
        return &sim__payment_ops;
    case SIM_ACCOUNT:
        return &sim__account_ops;
    case SIM_BANKTX:
    case SIM_NKINDS:
        break;
    }
    return &sim__banktx_ops;
}

/* ------------------------------------------------------------------ replies */

void sim__reply_json(sim_call *c, int status, json_t *body)
{
    json_decref(c->json);
    free(c->text);
    c->text = NULL;
    c->status = status;
    c->json = body;
    c->ctype = "application/json; charset=utf-8";
}

void sim__reply_json_text(sim_call *c, int status, char *text)
{
    if (text == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    json_decref(c->json);
    c->json = NULL;
    free(c->text);
    c->text = text;
    c->status = status;
    c->ctype = "application/json; charset=utf-8";
}

void sim__reply_text(sim_call *c, int status, const char *text)
{
    json_decref(c->json);
    c->json = NULL;
    free(c->text);
    c->text = strdup(text != NULL ? text : "");
    c->status = status;
    c->ctype = "text/plain; charset=utf-8";
}

void sim__reply_header(sim_call *c, const char *name, const char *value)
{
    if (c->nh >= SIM_MAX_HEADERS) {
        c->header_lost = true;
        return;
    }
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        c->header_lost = true;
        return;
    }
    c->hname[c->nh] = n;
    c->hval[c->nh] = v;
    c->nh++;
}

/* headers_free frees the reply headers stored so far. */
static void headers_free(sim_call *c)
{
    for (int i = 0; i < c->nh; i++) {
        free(c->hname[i]);
        free(c->hval[i]);
    }
    c->nh = 0;
}

void sim__reply_problem(sim_call *c, int status, const char *title, const char *detail)
{
    json_t *o = json_object();
    json_object_set_new(o, "Type", json_null());
    json_object_set_new(o, "Title", json_string(title));
    json_object_set_new(o, "Status", json_integer(status));
    json_object_set_new(o, "Detail", json_string(detail));
    json_object_set_new(o, "Instance", json_string(c->cid));
    json_object_set_new(o, "Extensions", json_object());
    sim__reply_json(c, status, o);
}

void sim__reply_xero_error(sim_call *c, int status, int number, const char *type, const char *msg)
{
    sim__reply_json(
        c, status, json_pack("{s:i,s:s,s:s}", "ErrorNumber", number, "Type", type, "Message", msg));
}

void sim__reply_oauth_error(sim_call *c, int status, const char *code, const char *desc)
{
    json_t *o = json_pack("{s:s}", "error", code);
    if (desc != NULL) {
        json_object_set_new(o, "error_description", json_string(desc));
    }
    sim__reply_json(c, status, o);
}

void sim__reply_gateway_timeout(sim_call *c)
{
    headers_free(c);
    c->header_lost = false;
    sim__reply_problem(c, 504, "Gateway Timeout",
                       "The server did not receive a timely response from the upstream server.");
}

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
        headers_free(c);
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
        len = strlen(body);
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
    static const char *const exact[] = {"/identity/connect/authorize", "/connect/token",
                                        "/connect/revocation", "/connections", NULL};
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
        identity_route(path) == NULL) {
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
    headers_free(c);
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
    const char *rest = accounting_rest(&c->set, c->path);
    const char *ident = rest == NULL ? identity_route(c->path) : NULL;
    if (ident != NULL) {
        /* the handlers name themselves too; this names a call a fault ends first */
        snprintf(c->endpoint, sizeof(c->endpoint), "%.12s %s", c->method, ident);
    }
    if (rest != NULL) {
        sim__h_accounting(c, rest);
    } else if (ident == NULL) {
        sim__reply_text(c, 404, "The resource you're looking for cannot be found");
    } else if (strcmp(ident, "/identity/connect/authorize") == 0) {
        if (identity_pre(c, false)) {
            sim__h_authorize(c);
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
 * limit headers, when the request is for the Accounting API; anything else keeps the layer's
 * JSON errors. */
static bool server_error(xs_http_req *req, int status, void *arg)
{
    sim *s = arg;
    sim_settings set;
    sim__settings(s, &set);
    const char *raw = xs_http_req_raw_path(req);
    if (accounting_rest(&set, raw) == NULL) {
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

static xs_err settings_from_config(const xs_config *cfg, sim_settings *set, xs_log *log)
{
    memset(set, 0, sizeof(*set));
    set->limit_concurrent = xs_config_int(cfg, "XS_SIM_LIMIT_CONCURRENT");
    set->limit_minute = xs_config_int(cfg, "XS_SIM_LIMIT_MINUTE");
    set->limit_day = xs_config_int(cfg, "XS_SIM_LIMIT_DAY");
    set->limit_app_minute = xs_config_int(cfg, "XS_SIM_LIMIT_APP_MINUTE");
    set->minute_window_ms = xs_config_int(cfg, "XS_SIM_MINUTE_WINDOW");
    set->day_window_ms = xs_config_int(cfg, "XS_SIM_DAY_WINDOW");
    set->latency_ms = xs_config_int(cfg, "XS_SIM_LATENCY");
    set->jitter_ms = xs_config_int(cfg, "XS_SIM_LATENCY_JITTER");
    set->hang_ms = xs_config_int(cfg, "XS_SIM_HANG");
    set->access_ttl_ms = xs_config_int(cfg, "XS_SIM_ACCESS_TOKEN_TTL");
    set->refresh_grace_ms = xs_config_int(cfg, "XS_SIM_REFRESH_GRACE");
    set->refresh_ttl_ms = xs_config_int(cfg, "XS_SIM_REFRESH_TTL");
    set->code_ttl_ms = xs_config_int(cfg, "XS_SIM_CODE_TTL");
    set->idem_ttl_ms = xs_config_int(cfg, "XS_SIM_IDEMPOTENCY_TTL");
    set->max_body = xs_config_int(cfg, "XS_SIM_MAX_BODY");
    set->high_volume = xs_config_int(cfg, "XS_SIM_HIGH_VOLUME");
    set->serve_at_root = xs_config_bool(cfg, "XS_SIM_SERVE_AT_ROOT");
    set->require_pkce = xs_config_bool(cfg, "XS_SIM_REQUIRE_PKCE");
    set->webhook_require_itr = xs_config_bool(cfg, "XS_SIM_WEBHOOK_REQUIRE_ITR");
    set->webhook_delay_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_DELAY");
    set->webhook_timeout_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_TIMEOUT");
    set->webhook_retry_base_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_RETRY_BASE");
    set->webhook_retry_for_ms = xs_config_int(cfg, "XS_SIM_WEBHOOK_RETRY_FOR");
    set->webhook_batch_max = xs_config_int(cfg, "XS_SIM_WEBHOOK_BATCH");
    set->seed = (uint64_t)xs_config_int(cfg, "XS_SIM_SEED");
    const char *url = xs_config_str(cfg, "XS_SIM_WEBHOOK_URL");
    const char *key = xs_config_str(cfg, "XS_SIM_WEBHOOK_KEY");
    if ((url != NULL && strlen(url) >= sizeof(set->webhook_url)) ||
        (key != NULL && strlen(key) >= sizeof(set->webhook_key))) {
        xs_log_error(log, "config.invalid", "{s:s}", "error",
                     "XS_SIM_WEBHOOK_URL or XS_SIM_WEBHOOK_KEY is too long");
        return XS_ECONFIG;
    }
    snprintf(set->webhook_url, sizeof(set->webhook_url), "%s", url ? url : "");
    snprintf(set->webhook_key, sizeof(set->webhook_key), "%s", key ? key : "");
    const char *faults = xs_config_str(cfg, "XS_SIM_FAULTS");
    if (faults != NULL) {
        char why[160];
        if (sim__fault_rates_parse(faults, set->fault_ppm, why) != XS_OK) {
            char msg[200];
            snprintf(msg, sizeof(msg), "XS_SIM_FAULTS: %s", why);
            xs_log_error(log, "config.invalid", "{s:s}", "error", msg);
            return XS_ECONFIG;
        }
    }
    return XS_OK;
}

/* start_tenants creates the configured organisations (world_lock held for writing). */
static xs_err start_tenants(sim *s)
{
    for (int64_t i = 0; i < s->init_tenants; i++) {
        sim_rng r = {s->set.seed ^ UINT64_C(0x74656e616e74) ^ (uint64_t)i * 7919};
        xs_uuid id;
        sim__rng_uuid(&r, &id);
        char name[64];
        if (i == 0) {
            snprintf(name, sizeof(name), "Demo Company (NZ)");
        } else {
            snprintf(name, sizeof(name), "Demo Company (NZ) %lld", (long long)i + 1);
        }
        sim_tenant *t = NULL;
        xs_err e = sim__tenant_add(s, &id, name, "NZD", &t);
        if (e != XS_OK) {
            return e;
        }
        if (s->init_records > 0) {
            sim_seed_spec sp = {0};
            sp.seed = s->set.seed;
            sp.now = sim__now(s);
            sp.span_days = 730;
            sp.contacts = (uint32_t)(s->init_records / 5);
            sp.invoices = (uint32_t)(s->init_records / 2);
            sp.payments = (uint32_t)(s->init_records / 5);
            sp.banktx = (uint32_t)(s->init_records - sp.contacts - sp.invoices - sp.payments);
            pthread_rwlock_wrlock(&t->lock);
            e = sim__seed(s, t, &sp, NULL);
            pthread_rwlock_unlock(&t->lock);
            if (e != XS_OK) {
                return e;
            }
        }
    }
    return XS_OK;
}

/* resets_end ends a reset begun in sim__reset: hangs wait again. */
static void resets_end(sim *s)
{
    pthread_mutex_lock(&s->hang_mu);
    s->resets--;
    pthread_mutex_unlock(&s->hang_mu);
}

xs_err sim__reset(sim *s)
{
    /* wake injected hangs and latency sleeps so their calls end and release the world, and
     * (marked before the wake-up, under the same mutex) keep any that start before the write
     * lock is ours from waiting: otherwise one call could hold the reset for XS_SIM_HANG */
    pthread_mutex_lock(&s->hang_mu);
    s->resets++;
    s->hang_gen++;
    pthread_cond_broadcast(&s->hang_cv);
    pthread_mutex_unlock(&s->hang_mu);
    sim_settings set;
    xs_err e = settings_from_config(s->cfg, &set, s->log);
    if (e != XS_OK) {
        resets_end(s);
        return e;
    }
    pthread_rwlock_wrlock(&s->world_lock);
    /* no call is inside the world now, so none is hanging or can start to */
    resets_end(s);
    for (size_t i = 0; i < s->ntenants; i++) {
        sim__tenant_destroy(s->tenants[i]);
    }
    s->ntenants = 0;
    s->nconsent = 0;
    pthread_mutex_lock(&s->set_mu);
    s->set = set;
    s->clock_offset = 0;
    pthread_mutex_unlock(&s->set_mu);
    sim__identity_reset(s);
    pthread_mutex_lock(&s->lim_mu);
    s->app_count = s->app_max_in_flight = 0;
    s->app_window = INT64_MIN;
    pthread_mutex_unlock(&s->lim_mu);
    sim__faults_reset(s);
    sim__stats_reset(s);
    sim__webhooks_reset(s);
    e = start_tenants(s);
    pthread_rwlock_unlock(&s->world_lock);
    return e;
}

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

    xs_err e = settings_from_config(cfg, &s->set, log);
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
    e = start_tenants(s);
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
