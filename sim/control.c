/*
 * control.c: the simulator's own API under /_sim (not part of Xero; no authentication, no
 * rate limits, never faulted, never counted). See sim/README.md for every route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "api.h"
#include "context.h"
#include "faults.h"
#include "files.h"
#include "identity.h"
#include "kinds.h"
#include "limits.h"
#include "reply.h"
#include "seed.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "webhooks.h"
#include "world.h"
#include "xpm.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ helpers */

static void bad(sim_call *c, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof(msg), fmt, arg);
    sim__reply_json(c, 400,
                    json_pack("{s:{s:s,s:s}}", "error", "code", "bad_request", "message", msg));
}

static void not_found(sim_call *c, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "no such %s", what);
    sim__reply_json(c, 404,
                    json_pack("{s:{s:s,s:s}}", "error", "code", "not_found", "message", msg));
}

/* body_json parses the request body (an empty body is {}); NULL after replying 400. */
static json_t *body_json(sim_call *c)
{
    size_t len = 0;
    const char *body = xs_http_req_body(c->req, &len);
    if (len == 0) {
        return json_object();
    }
    char err[XS_JSON_ERR_MAX];
    json_t *j = xs_json_parse(body, len, err);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        bad(c, "the body must be a JSON object: %s", j == NULL ? err : "not an object");
        return NULL;
    }
    return j;
}

static bool get_i64(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                    sim_call *c)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s must be an integer from %lld to %lld", key, (long long)min,
                 (long long)max);
        bad(c, "%s", msg);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

static bool get_b(const json_t *o, const char *key, bool *out, sim_call *c)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        return true;
    }
    if (!json_is_boolean(v)) {
        bad(c, "%s must be true or false", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool get_s(const json_t *o, const char *key, char *out, size_t cap, sim_call *c)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        return true;
    }
    const char *s = xs_json_string_value(v, NULL);
    if (s == NULL || strlen(s) >= cap) {
        bad(c, "%s must be a string (and not too long)", key);
        return false;
    }
    snprintf(out, cap, "%s", s);
    return true;
}

/* ------------------------------------------------------------------ config */

static json_t *settings_json(sim *s)
{
    sim_settings set;
    sim__settings(s, &set);
    json_t *rates = json_object();
    for (int k = 1; k < SIM_FAULT_NKINDS; k++) {
        xs_money m = {(int64_t)set.fault_ppm[k]};
        json_object_set_new(rates, sim__fault_name((sim_fault_kind)k), sim__json_money_min(m, 1));
    }
    return json_pack(
        "{s:{s:I,s:I,s:I,s:I,s:I,s:I},s:{s:I,s:I},s:{s:o,s:I},s:{s:I,s:I,s:I,s:I},s:I,s:I,s:I,"
        "s:b,s:b,s:{s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I},s:I}",
        "limits", "concurrent", (json_int_t)set.limit_concurrent, "minute",
        (json_int_t)set.limit_minute, "day", (json_int_t)set.limit_day, "app_minute",
        (json_int_t)set.limit_app_minute, "minute_window_ms", (json_int_t)set.minute_window_ms,
        "day_window_ms", (json_int_t)set.day_window_ms, "latency", "fixed_ms",
        (json_int_t)set.latency_ms, "jitter_ms", (json_int_t)set.jitter_ms, "faults", "rates",
        rates, "hang_ms", (json_int_t)set.hang_ms, "tokens", "access_ttl_ms",
        (json_int_t)set.access_ttl_ms, "refresh_grace_ms", (json_int_t)set.refresh_grace_ms,
        "refresh_ttl_ms", (json_int_t)set.refresh_ttl_ms, "code_ttl_ms",
        (json_int_t)set.code_ttl_ms, "idempotency_ttl_ms", (json_int_t)set.idem_ttl_ms, "max_body",
        (json_int_t)set.max_body, "high_volume", (json_int_t)set.high_volume, "serve_at_root",
        set.serve_at_root, "require_pkce", set.require_pkce, "webhook", "url", set.webhook_url,
        "key_set", set.webhook_key[0] != '\0', "require_intent_to_receive", set.webhook_require_itr,
        "delay_ms", (json_int_t)set.webhook_delay_ms, "timeout_ms",
        (json_int_t)set.webhook_timeout_ms, "retry_base_ms", (json_int_t)set.webhook_retry_base_ms,
        "retry_for_ms", (json_int_t)set.webhook_retry_for_ms, "batch_max",
        (json_int_t)set.webhook_batch_max, "seed", (json_int_t)set.seed);
}

static void config_post(sim_call *c)
{
    sim *s = c->s;
    json_t *b = body_json(c);
    if (b == NULL) {
        return;
    }
    sim_settings set;
    sim__settings(s, &set);
    const int64_t H = INT64_C(1) << 40;
    json_t *lim = json_object_get(b, "limits");
    json_t *lat = json_object_get(b, "latency");
    json_t *fl = json_object_get(b, "faults");
    json_t *tok = json_object_get(b, "tokens");
    json_t *wh = json_object_get(b, "webhook");
    bool ok = true;
    if (lim != NULL) {
        ok = ok && get_i64(lim, "concurrent", 1, 1000000, &set.limit_concurrent, c) &&
             get_i64(lim, "minute", 1, 1000000000, &set.limit_minute, c) &&
             get_i64(lim, "day", 1, 1000000000, &set.limit_day, c) &&
             get_i64(lim, "app_minute", 1, 1000000000, &set.limit_app_minute, c) &&
             get_i64(lim, "minute_window_ms", 10, H, &set.minute_window_ms, c) &&
             get_i64(lim, "day_window_ms", 10, H, &set.day_window_ms, c);
    }
    if (ok && lat != NULL) {
        ok = get_i64(lat, "fixed_ms", 0, 600000, &set.latency_ms, c) &&
             get_i64(lat, "jitter_ms", 0, 600000, &set.jitter_ms, c);
    }
    if (ok && fl != NULL) {
        ok = get_i64(fl, "hang_ms", 0, 3600000, &set.hang_ms, c);
        json_t *rates = json_object_get(fl, "rates");
        if (ok && rates != NULL) {
            if (!json_is_object(rates)) {
                bad(c, "faults.rates must be an object of kind: probability%s", "");
                ok = false;
            }
            const char *k;
            json_t *v;
            char spec[512] = "";
            json_object_foreach(rates, k, v)
            {
                xs_money m;
                char item[64];
                char num[XS_MONEY_TEXT_MAX];
                if (!ok) {
                    break;
                }
                if (xs_json_to_money(v, &m) != XS_OK) {
                    bad(c, "faults.rates.%s must be a number from 0 to 1", k);
                    ok = false;
                    break;
                }
                xs_money_format_min(m, 1, num);
                snprintf(item, sizeof(item), "%s%s=%s", spec[0] ? "," : "", k, num);
                strncat(spec, item, sizeof(spec) - strlen(spec) - 1);
            }
            char why[160];
            if (ok && spec[0] != '\0' &&
                sim__fault_rates_parse(spec, set.fault_ppm, why) != XS_OK) {
                bad(c, "%s", why);
                ok = false;
            }
        }
    }
    if (ok && tok != NULL) {
        ok = get_i64(tok, "access_ttl_ms", 1000, H, &set.access_ttl_ms, c) &&
             get_i64(tok, "refresh_grace_ms", 0, H, &set.refresh_grace_ms, c) &&
             get_i64(tok, "refresh_ttl_ms", 1000, H, &set.refresh_ttl_ms, c) &&
             get_i64(tok, "code_ttl_ms", 1000, H, &set.code_ttl_ms, c);
    }
    if (ok) {
        int64_t seed = (int64_t)set.seed;
        ok = get_i64(b, "idempotency_ttl_ms", 0, H, &set.idem_ttl_ms, c) &&
             get_i64(b, "max_body", 1024, SIM_HARD_BODY_MAX / 2, &set.max_body, c) &&
             get_i64(b, "high_volume", 1, H, &set.high_volume, c) &&
             get_b(b, "serve_at_root", &set.serve_at_root, c) &&
             get_b(b, "require_pkce", &set.require_pkce, c) &&
             get_i64(b, "seed", 0, INT64_MAX, &seed, c);
        set.seed = (uint64_t)seed;
    }
    if (ok && wh != NULL) {
        ok = get_s(wh, "url", set.webhook_url, sizeof(set.webhook_url), c) &&
             get_s(wh, "key", set.webhook_key, sizeof(set.webhook_key), c) &&
             get_b(wh, "require_intent_to_receive", &set.webhook_require_itr, c) &&
             get_i64(wh, "delay_ms", 0, H, &set.webhook_delay_ms, c) &&
             get_i64(wh, "timeout_ms", 10, 600000, &set.webhook_timeout_ms, c) &&
             get_i64(wh, "retry_base_ms", 1, H, &set.webhook_retry_base_ms, c) &&
             get_i64(wh, "retry_for_ms", 0, H, &set.webhook_retry_for_ms, c) &&
             get_i64(wh, "batch_max", 1, 10000, &set.webhook_batch_max, c);
        if (ok && set.webhook_url[0] != '\0' && strncmp(set.webhook_url, "http://", 7) != 0 &&
            strncmp(set.webhook_url, "https://", 8) != 0) {
            bad(c, "webhook.url must start with http:// or https://%s", "");
            ok = false;
        }
    }
    json_decref(b);
    if (!ok) {
        return;
    }
    bool windows_changed;
    pthread_mutex_lock(&s->set_mu);
    windows_changed = set.minute_window_ms != s->set.minute_window_ms ||
                      set.day_window_ms != s->set.day_window_ms;
    s->set = set;
    pthread_mutex_unlock(&s->set_mu);
    if (windows_changed) {
        sim__limits_reset(s);
    }
    sim__reply_json(c, 200, settings_json(s));
}

/* ------------------------------------------------------------------ tenants */

static json_t *tenant_json(sim_tenant *t)
{
    pthread_rwlock_rdlock(&t->lock);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:{s:i,s:i,s:i,s:i,s:i}}", "tenantId", t->ids, "name", t->name,
                  "currency", t->currency, "shortCode", t->short_code, "counts", "Contacts",
                  (int)t->t[SIM_CONTACT].n, "Invoices", (int)t->t[SIM_INVOICE].n, "Payments",
                  (int)t->t[SIM_PAYMENT].n, "Accounts", (int)t->t[SIM_ACCOUNT].n,
                  "BankTransactions", (int)t->t[SIM_BANKTX].n);
    pthread_rwlock_unlock(&t->lock);
    return o;
}

static bool seed_spec_from(sim_call *c, const json_t *b, sim_seed_spec *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->seed = c->set.seed;
    sp->now = sim__now(c->s);
    sp->span_days = 730;
    int64_t v[6] = {0, 0, 0, 0, -1, 730};
    int64_t seed = (int64_t)sp->seed;
    const int64_t M = 2000000;
    if (!get_i64(b, "contacts", 0, M, &v[0], c) || !get_i64(b, "invoices", 0, M, &v[1], c) ||
        !get_i64(b, "payments", 0, M, &v[2], c) ||
        !get_i64(b, "bank_transactions", 0, M, &v[3], c) ||
        !get_i64(b, "records", 0, M, &v[4], c) || !get_i64(b, "span_days", 1, 36500, &v[5], c) ||
        !get_i64(b, "seed", 0, INT64_MAX, &seed, c)) {
        return false;
    }
    json_t *anchor = json_object_get(b, "now");
    if (anchor != NULL) {
        xs_time at;
        const char *text = xs_json_string_value(anchor, NULL);
        if (text == NULL || xs_time_parse_any(text, &at) != XS_OK) {
            bad(c, "now must be an ISO 8601 date-time (the seeded history ends there)%s", "");
            return false;
        }
        sp->now = at;
    }
    if (v[4] >= 0) {
        /* a mixed organisation: a fifth contacts, half invoices, a fifth payments */
        v[0] = v[4] / 5;
        v[1] = v[4] / 2;
        v[2] = v[4] / 5;
        v[3] = v[4] - v[0] - v[1] - v[2];
    }
    sp->contacts = (uint32_t)v[0];
    sp->invoices = (uint32_t)v[1];
    sp->payments = (uint32_t)v[2];
    sp->banktx = (uint32_t)v[3];
    sp->span_days = v[5];
    sp->seed = (uint64_t)seed;
    return true;
}

static void tenants_post(sim_call *c)
{
    sim *s = c->s;
    json_t *b = body_json(c);
    if (b == NULL) {
        return;
    }
    char name[256] = "Demo Company (NZ)", cur[8] = "NZD", idtxt[64] = "";
    sim_seed_spec sp;
    json_t *seed = json_object_get(b, "seed");
    bool ok = get_s(b, "name", name, sizeof(name), c) &&
              get_s(b, "currency", cur, sizeof(cur), c) &&
              get_s(b, "tenantId", idtxt, sizeof(idtxt), c);
    if (ok && seed != NULL && !json_is_object(seed)) {
        bad(c, "seed must be an object like {\"contacts\":100}%s", "");
        ok = false;
    }
    if (ok) {
        ok = seed_spec_from(c, seed != NULL ? seed : b, &sp);
    }
    if (ok && !sim__currency_ok(cur)) {
        bad(c, "currency %s is not supported", cur);
        ok = false;
    }
    xs_uuid id;
    if (ok && idtxt[0] != '\0' && !xs_uuid_parse(idtxt, &id)) {
        bad(c, "tenantId %s is not a GUID", idtxt);
        ok = false;
    }
    json_decref(b);
    if (!ok) {
        return;
    }
    if (idtxt[0] == '\0') {
        uint8_t rnd[16];
        xs_crypto_random(rnd, sizeof(rnd));
        sim_rng r = {sim__hash64(rnd, sizeof(rnd), 1)};
        sim__rng_uuid(&r, &id);
    }
    pthread_rwlock_wrlock(&s->world_lock);
    sim_tenant *t = NULL;
    xs_err e =
        sim__tenant_find(s, &id) != NULL ? XS_EEXIST : sim__tenant_add(s, &id, name, cur, &t);
    json_t *report = NULL;
    if (e == XS_OK && seed != NULL) {
        pthread_rwlock_wrlock(&t->lock);
        e = sim__seed(s, t, &sp, &report);
        pthread_rwlock_unlock(&t->lock);
    }
    json_t *out = e == XS_OK ? tenant_json(t) : NULL;
    pthread_rwlock_unlock(&s->world_lock);
    if (e == XS_EEXIST) {
        bad(c, "tenant %s already exists", idtxt);
        return;
    }
    if (e != XS_OK) {
        json_decref(report);
        sim__reply_json(
            c, 500,
            json_pack("{s:{s:s,s:s}}", "error", "code", xs_err_name(e), "message", xs_strerror(e)));
        return;
    }
    if (report != NULL) {
        json_object_set_new(out, "seeded", report);
    }
    sim__reply_json(c, 201, out);
}

static void seed_post(sim_call *c, sim_tenant *t)
{
    json_t *b = body_json(c);
    if (b == NULL) {
        return;
    }
    sim_seed_spec sp;
    bool ok = seed_spec_from(c, b, &sp);
    json_decref(b);
    if (!ok) {
        return;
    }
    int64_t t0 = xs_clock_mono_ms();
    json_t *report = NULL;
    pthread_rwlock_wrlock(&t->lock);
    xs_err e = sim__seed(c->s, t, &sp, &report);
    pthread_rwlock_unlock(&t->lock);
    if (e != XS_OK) {
        sim__reply_json(
            c, 500,
            json_pack("{s:{s:s,s:s}}", "error", "code", xs_err_name(e), "message", xs_strerror(e)));
        return;
    }
    json_object_set_new(report, "ms", json_integer(xs_clock_mono_ms() - t0));
    sim__reply_json(c, 200, report);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* touch_post edits `count` existing records as a user would (a phone number, a reference),
 * so UpdatedDateUTC moves and webhooks fire. */
static void touch_post(sim_call *c, sim_tenant *t)
{
    json_t *b = body_json(c);
    if (b == NULL) {
        return;
    }
    char kind[32] = "Contacts";
    int64_t count = 1, seed = (int64_t)c->set.seed;
    bool ok = get_s(b, "kind", kind, sizeof(kind), c) &&
              get_i64(b, "count", 1, 10000000, &count, c) &&
              get_i64(b, "seed", 0, INT64_MAX, &seed, c);
    json_decref(b);
    if (!ok) {
        return;
    }
    const sim_kind_ops *ops = NULL;
    for (int k = 0; k < SIM_NKINDS; k++) {
        if (strcasecmp(sim__ops((sim_kind)k)->plural, kind) == 0) {
            ops = sim__ops((sim_kind)k);
        }
    }
    if (ops == NULL || ops->kind == SIM_PAYMENT) {
        bad(c, "kind must be Contacts, Invoices, Accounts or BankTransactions, not %s", kind);
        return;
    }
    pthread_rwlock_wrlock(&t->lock);
    sim_table *tb = &t->t[ops->kind];
    sim_batch bt;
    json_t *changed = json_array(), *skipped = json_array();
    if (sim__batch_init(&bt, c, t, true) != XS_OK) {
        pthread_rwlock_unlock(&t->lock);
        sim__reply_json(c, 500, NULL);
        return;
    }
    sim_rng r = {(uint64_t)seed ^ sim__hash64(t->id.b, 16, 0x746f756368) ^ tb->nlog};
    uint64_t n = tb->n;
    uint64_t want = (uint64_t)count < n ? (uint64_t)count : n;
    /* a walk with a stride coprime with n, from a random start, visits distinct records */
    uint64_t start = n ? sim__rng_below(&r, n) : 0, stride = 1;
    if (n > 1) {
        stride = 1 + sim__rng_below(&r, n - 1);
        while (gcd(stride, n) != 1) {
            stride++;
        }
    }
    for (uint64_t i = 0; i < want; i++) {
        sim_rec *rec = tb->recs[(start + i * stride) % n];
        char ids[XS_UUID_STR];
        xs_uuid_format(&rec->id, ids);
        json_t *item = json_object();
        json_object_set_new(item, ops->id_field, json_string(ids));
        char val[64];
        snprintf(val, sizeof(val), "%03u-%04u", (unsigned)(200 + sim__rng_below(&r, 800)),
                 (unsigned)sim__rng_below(&r, 10000));
        if (ops->kind == SIM_CONTACT) {
            json_object_set_new(
                item, "Phones",
                json_pack("[{s:s,s:s}]", "PhoneType", "DEFAULT", "PhoneNumber", val));
        } else if (ops->kind == SIM_ACCOUNT) {
            json_object_set_new(item, "Description", json_string(val));
        } else {
            char ref[80];
            snprintf(ref, sizeof(ref), "REF %s", val);
            json_object_set_new(item, "Reference", json_string(ref));
        }
        void *plan = NULL;
        json_t *errors = json_array();
        char why[256];
        snprintf(bt.path, sizeof(bt.path), "%s[%llu]", ops->plural, (unsigned long long)i);
        xs_err e = ops->plan(&bt, item, rec, &plan, errors, why);
        sim_rec *done = NULL;
        if (e == XS_OK && json_array_size(errors) == 0 && ops->apply(&bt, plan, &done) == XS_OK) {
            json_array_append_new(changed, json_string(ids));
        } else {
            json_array_append_new(skipped, json_string(ids));
        }
        if (plan != NULL) {
            ops->plan_free(plan);
        }
        json_decref(errors);
        json_decref(item);
        /* names and numbers claimed by earlier items must not block later ones */
        json_object_clear(bt.names);
        json_object_clear(bt.numbers);
        json_object_clear(bt.codes);
    }
    sim__batch_fini(&bt);
    pthread_rwlock_unlock(&t->lock);
    sim__reply_json(c, 200, json_pack("{s:o,s:o}", "changed", changed, "skipped", skipped));
}

/* records serves /_sim/tenants/{id}/{Kind}[/{key}[/{action}]] as a Xero user would act. */
static void records(sim_call *c, sim_tenant *t, const char *rest)
{
    char kind[64] = "", key[128] = "", action[32] = "";
    const char *p = rest;
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= sizeof(kind)) {
        not_found(c, "route");
        return;
    }
    memcpy(kind, p, n);
    p += n;
    if (*p == '/') {
        p++;
        n = strcspn(p, "/");
        if (n >= sizeof(key)) {
            not_found(c, "record");
            return;
        }
        memcpy(key, p, n);
        key[n] = '\0';
        p += n;
        if (*p == '/') {
            snprintf(action, sizeof(action), "%s", p + 1);
        }
    }
    const sim_kind_ops *ops = NULL;
    for (int k = 0; k < SIM_NKINDS; k++) {
        if (strcasecmp(sim__ops((sim_kind)k)->plural, kind) == 0) {
            ops = sim__ops((sim_kind)k);
        }
    }
    if (ops == NULL) {
        not_found(c, "kind (Contacts, Invoices, Payments, Accounts, BankTransactions)");
        return;
    }
    if (strcmp(c->method, "GET") == 0 && action[0] == '\0') {
        pthread_rwlock_rdlock(&t->lock);
        sim__list(c, t, ops, key[0] ? key : NULL);
        pthread_rwlock_unlock(&t->lock);
        return;
    }
    json_t *body = NULL;
    if (action[0] != '\0') {
        static const struct {
            sim_kind kind;
            const char *action, *field, *value;
        } acts[] = {
            {SIM_CONTACT, "archive", "ContactStatus", "ARCHIVED"},
            {SIM_CONTACT, "restore", "ContactStatus", "ACTIVE"},
            {SIM_INVOICE, "submit", "Status", "SUBMITTED"},
            {SIM_INVOICE, "authorise", "Status", "AUTHORISED"},
            {SIM_INVOICE, "void", "Status", "VOIDED"},
            {SIM_INVOICE, "delete", "Status", "DELETED"},
            {SIM_PAYMENT, "delete", "Status", "DELETED"},
            {SIM_BANKTX, "delete", "Status", "DELETED"},
            {SIM_ACCOUNT, "archive", "Status", "ARCHIVED"},
            {SIM_ACCOUNT, "restore", "Status", "ACTIVE"},
            {SIM_ACCOUNT, "delete", "Status", "DELETED"},
        };
        for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
            if (acts[i].kind == ops->kind && strcmp(acts[i].action, action) == 0) {
                body = json_pack("{s:s}", acts[i].field, acts[i].value);
            }
        }
        if (body == NULL || strcmp(c->method, "POST") != 0 || key[0] == '\0') {
            json_decref(body);
            not_found(c, "action for this kind (POST .../{id}/archive|restore|submit|authorise|"
                         "void|delete)");
            return;
        }
    } else {
        if (strcmp(c->method, "PUT") != 0 && strcmp(c->method, "POST") != 0) {
            bad(c, "use GET, PUT or POST on %s", ops->plural);
            return;
        }
        size_t len = 0;
        const char *raw = xs_http_req_body(c->req, &len);
        char err[XS_JSON_ERR_MAX];
        body = len ? xs_json_parse(raw, len, err) : NULL;
        if (body == NULL) {
            bad(c, "the body must be JSON: %s", len ? err : "empty");
            return;
        }
    }
    pthread_rwlock_wrlock(&t->lock);
    sim_batch b;
    if (sim__batch_init(&b, c, t, true) == XS_OK) {
        const char *se = xs_http_req_query(c->req, "summarizeErrors");
        bool summarize = !(se != NULL && strcasecmp(se, "false") == 0);
        sim__write_items(c, &b, ops, body, strcmp(c->method, "PUT") == 0 && action[0] == '\0',
                         key[0] ? key : NULL, summarize);
        sim__batch_fini(&b);
    }
    pthread_rwlock_unlock(&t->lock);
    json_decref(body);
}

static void tenants_route(sim_call *c, const char *rest)
{
    sim *s = c->s;
    if (rest[0] == '\0') {
        if (strcmp(c->method, "GET") == 0) {
            json_t *arr = json_array();
            pthread_rwlock_rdlock(&s->world_lock);
            for (size_t i = 0; i < s->ntenants; i++) {
                json_array_append_new(arr, tenant_json(s->tenants[i]));
            }
            pthread_rwlock_unlock(&s->world_lock);
            sim__reply_json(c, 200, arr);
        } else if (strcmp(c->method, "POST") == 0) {
            tenants_post(c);
        } else {
            bad(c, "use GET or POST on /_sim/tenants%s", "");
        }
        return;
    }
    /* rest: "/{tid}..." */
    char tid[64];
    const char *p = rest + 1;
    size_t n = strcspn(p, "/");
    if (n >= sizeof(tid)) {
        not_found(c, "tenant");
        return;
    }
    memcpy(tid, p, n);
    tid[n] = '\0';
    p += n;
    xs_uuid id;
    pthread_rwlock_rdlock(&s->world_lock);
    sim_tenant *t = xs_uuid_parse(tid, &id) ? sim__tenant_find(s, &id) : NULL;
    if (t == NULL) {
        pthread_rwlock_unlock(&s->world_lock);
        not_found(c, "tenant");
        return;
    }
    c->tenant = t;
    if (*p == '\0') {
        json_t *o = tenant_json(t);
        json_object_set_new(o, "limits", sim__limits_json(s, t));
        sim__reply_json(c, 200, o);
    } else if (strcmp(p, "/seed") == 0 && strcmp(c->method, "POST") == 0) {
        seed_post(c, t);
    } else if (strcmp(p, "/touch") == 0 && strcmp(c->method, "POST") == 0) {
        touch_post(c, t);
    } else if (strcmp(p, "/stats") == 0) {
        sim__reply_json(c, 200, sim__stats_json(s, t));
    } else {
        records(c, t, p + 1);
    }
    pthread_rwlock_unlock(&s->world_lock);
}

/* ------------------------------------------------------------------ files */

/* files_get answers GET /_sim/files?tenant=<id>: the tenant's folders and files. */
static void files_get(sim_call *c)
{
    sim *s = c->s;
    const char *tid = xs_http_req_query(c->req, "tenant");
    xs_uuid id;
    if (tid == NULL || !xs_uuid_parse(tid, &id)) {
        bad(c, "tenant=<tenantId> is required%s", "");
        return;
    }
    pthread_rwlock_rdlock(&s->world_lock);
    sim_tenant *t = sim__tenant_find(s, &id);
    if (t == NULL) {
        pthread_rwlock_unlock(&s->world_lock);
        not_found(c, "tenant");
        return;
    }
    pthread_rwlock_rdlock(&t->lock);
    sim__reply_json(c, 200, sim__files_json(t));
    pthread_rwlock_unlock(&t->lock);
    pthread_rwlock_unlock(&s->world_lock);
}

/* ------------------------------------------------------------------ XPM */

/* xpm_items applies body's list under key ("clients", "jobs"), or body itself as one item,
 * with add; all or nothing: when an item fails, what the earlier ones added is taken back
 * and the reply is a 400 naming it. The reply lists what was added, as the API renders it. */
static void xpm_items(sim_call *c, sim_tenant *t, json_t *body, const char *key,
                      json_t *(*add)(sim_xpm *x, const json_t *item, xs_time now, char *why,
                                     xs_err *e))
{
    json_t *list = json_object_get(body, key);
    if (list != NULL && !json_is_array(list)) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s must be an array", key);
        bad(c, "%s", msg);
        return;
    }
    json_t *out = json_array();
    xs_time now = sim__now(c->s);
    pthread_rwlock_wrlock(&t->lock);
    sim_xpm_mark m = sim__xpm_mark_take(t->xpm);
    size_t n = list != NULL ? json_array_size(list) : 1;
    xs_err e = out != NULL ? XS_OK : XS_ENOMEM;
    char why[256] = "";
    size_t i;
    for (i = 0; e == XS_OK && i < n; i++) {
        json_t *item = list != NULL ? json_array_get(list, i) : body;
        json_t *r = add(t->xpm, item, now, why, &e);
        if (e == XS_OK && json_array_append_new(out, r) != 0) {
            e = XS_ENOMEM;
        }
    }
    if (e != XS_OK) {
        sim__xpm_rollback(t->xpm, m);
    }
    pthread_rwlock_unlock(&t->lock);
    if (e == XS_EINVAL) {
        char msg[280];
        snprintf(msg, sizeof(msg), "%s[%zu]: %.240s", key, i - 1, why);
        bad(c, "%s", msg);
    } else if (e != XS_OK) {
        sim__reply_json(
            c, 500,
            json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message", "out of memory"));
    } else {
        sim__reply_json(c, 200, json_pack("{s:O}", key, out));
    }
    json_decref(out);
}

/* xpm_client_add adds one client (see xpm_items); its rendering (new) on success. */
static json_t *xpm_client_add(sim_xpm *x, const json_t *item, xs_time now, char *why, xs_err *e)
{
    sim_xpm_client *cl = NULL;
    if (json_object_get(item, "uuid") != NULL) {
        snprintf(why, 256,
                 "a new client has no uuid (change one with POST /_sim/xpm/clients/{uuid})");
        *e = XS_EINVAL;
        return NULL;
    }
    *e = sim__xpm_client_put(x, NULL, item, now, &cl, why);
    json_t *r = *e == XS_OK ? sim__xpm_client_json(cl, true) : NULL;
    if (*e == XS_OK && r == NULL) {
        *e = XS_ENOMEM;
    }
    return r;
}

/* xpm_job_add adds one job (see xpm_items); its rendering (new) on success. */
static json_t *xpm_job_add(sim_xpm *x, const json_t *item, xs_time now, char *why, xs_err *e)
{
    sim_xpm_job *j = NULL;
    *e = sim__xpm_job_add(x, item, now, &j, why);
    json_t *r = *e == XS_OK ? sim__xpm_job_json(x, j, true) : NULL;
    if (*e == XS_OK && r == NULL) {
        *e = XS_ENOMEM;
    }
    return r;
}

/* xpm_client_change serves POST /_sim/xpm/clients/{uuid}: the fields given change. */
static void xpm_client_change(sim_call *c, sim_tenant *t, const char *uuid, json_t *body)
{
    char why[256];
    pthread_rwlock_wrlock(&t->lock);
    sim_xpm_client *cl = sim__xpm_client_find(t->xpm, uuid, NULL);
    xs_err e =
        cl == NULL ? XS_ENOTFOUND : sim__xpm_client_put(t->xpm, cl, body, sim__now(c->s), &cl, why);
    json_t *r = e == XS_OK ? sim__xpm_client_json(cl, true) : NULL;
    pthread_rwlock_unlock(&t->lock);
    if (e == XS_ENOTFOUND) {
        not_found(c, "XPM client");
    } else if (e == XS_EINVAL) {
        bad(c, "%s", why);
    } else if (r == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
    } else {
        sim__reply_json(c, 200, json_pack("{s:o}", "client", r));
    }
}

/* xpm_job_state serves POST /_sim/xpm/jobs/{jobNumber}/state {"state": "..."}. */
static void xpm_job_state(sim_call *c, sim_tenant *t, const char *number, json_t *body)
{
    const char *name = xs_json_str_or(body, "state", NULL);
    if (name == NULL) {
        bad(c, "state (the name of a job state) is required%s", "");
        return;
    }
    pthread_rwlock_wrlock(&t->lock);
    sim_xpm_job *j = sim__xpm_job_find(t->xpm, number);
    uint32_t st = sim__xpm_state_find(t->xpm, name);
    json_t *r = NULL;
    if (j != NULL && st != SIM_NONE) {
        sim__xpm_job_set_state(j, t->xpm, st, sim__now(c->s));
        r = sim__xpm_job_json(t->xpm, j, true);
    }
    pthread_rwlock_unlock(&t->lock);
    if (j == NULL) {
        not_found(c, "XPM job");
    } else if (st == SIM_NONE) {
        bad(c, "state %s is not one of the practice's job states (GET jobstate.api/list)", name);
    } else if (r == NULL) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
    } else {
        sim__reply_json(c, 200, json_pack("{s:o}", "job", r));
    }
}

/* xpm_write routes the XPM writes (rest after /_sim/xpm; world_lock held for reading). */
static void xpm_write(sim_call *c, sim_tenant *t, const char *rest)
{
    json_t *b = body_json(c);
    if (b == NULL) {
        return;
    }
    size_t n = strlen(rest);
    if (strcmp(rest, "/clients") == 0) {
        xpm_items(c, t, b, "clients", xpm_client_add);
    } else if (strcmp(rest, "/jobs") == 0) {
        xpm_items(c, t, b, "jobs", xpm_job_add);
    } else if (strncmp(rest, "/clients/", 9) == 0 && strchr(rest + 9, '/') == NULL) {
        xpm_client_change(c, t, rest + 9, b);
    } else if (strncmp(rest, "/jobs/", 6) == 0 && n > 12 && strcmp(rest + n - 6, "/state") == 0 &&
               n - 12 < 64) {
        char number[64];
        snprintf(number, sizeof(number), "%.*s", (int)(n - 12), rest + 6);
        if (strchr(number, '/') != NULL) {
            not_found(c, "control route (see sim/README.md)");
        } else {
            xpm_job_state(c, t, number, b);
        }
    } else {
        not_found(c, "control route (see sim/README.md)");
    }
    json_decref(b);
}

/* xpm_route serves /_sim/xpm...?tenant=ID: GET everything, POST the writes. */
static void xpm_route(sim_call *c, const char *rest)
{
    sim *s = c->s;
    const char *tid = xs_http_req_query(c->req, "tenant");
    if (tid == NULL) {
        bad(c, "the tenant query parameter (an organisation's tenantId) is required%s", "");
        return;
    }
    xs_uuid id;
    pthread_rwlock_rdlock(&s->world_lock);
    sim_tenant *t = xs_uuid_parse(tid, &id) ? sim__tenant_find(s, &id) : NULL;
    if (t == NULL) {
        not_found(c, "tenant");
    } else if (rest[0] == '\0' && strcmp(c->method, "GET") == 0) {
        pthread_rwlock_rdlock(&t->lock);
        json_t *o = sim__xpm_json(t->xpm);
        pthread_rwlock_unlock(&t->lock);
        sim__reply_json(c, o != NULL ? 200 : 500, o);
    } else if (strcmp(c->method, "POST") == 0) {
        xpm_write(c, t, rest);
    } else {
        not_found(c, "control route (see sim/README.md)");
    }
    pthread_rwlock_unlock(&s->world_lock);
}

/* ------------------------------------------------------------------ routing */

void sim__h_control(sim_call *c, const char *rest)
{
    sim *s = c->s;
    bool get = strcmp(c->method, "GET") == 0;
    bool post = strcmp(c->method, "POST") == 0;
    if (strcmp(rest, "/health") == 0 || rest[0] == '\0' || strcmp(rest, "/") == 0) {
        sim__reply_json(
            c, 200,
            json_pack("{s:b,s:s,s:i}", "ok", 1, "service", "xero-sim", "port", (int)sim_port(s)));
    } else if (strcmp(rest, "/reset") == 0 && post) {
        xs_err e = sim__reset(s);
        sim__reply_json(c, e == XS_OK ? 200 : 500, json_pack("{s:b}", "ok", e == XS_OK));
    } else if (strcmp(rest, "/config") == 0 && get) {
        sim__reply_json(c, 200, settings_json(s));
    } else if (strcmp(rest, "/config") == 0 && post) {
        config_post(c);
    } else if (strcmp(rest, "/clock") == 0 && (get || post)) {
        if (post) {
            json_t *b = body_json(c);
            if (b == NULL) {
                return;
            }
            int64_t adv = 0, off = INT64_MIN;
            const int64_t Y = INT64_C(100) * 365 * SIM_DAY_MS;
            bool ok =
                get_i64(b, "advance_ms", -Y, Y, &adv, c) && get_i64(b, "offset_ms", -Y, Y, &off, c);
            json_decref(b);
            if (!ok) {
                return;
            }
            pthread_mutex_lock(&s->set_mu);
            if (off != INT64_MIN) {
                s->clock_offset = off;
            }
            s->clock_offset += adv;
            pthread_mutex_unlock(&s->set_mu);
        }
        char now[XS_TIME_ISO_MAX];
        xs_time_format_iso(sim__now(s), now);
        pthread_mutex_lock(&s->set_mu);
        int64_t off = s->clock_offset;
        pthread_mutex_unlock(&s->set_mu);
        sim__reply_json(c, 200, json_pack("{s:s,s:I}", "now", now, "offset_ms", (json_int_t)off));
    } else if (strncmp(rest, "/tenants", 8) == 0 && (rest[8] == '\0' || rest[8] == '/')) {
        tenants_route(c, rest + 8);
    } else if (strncmp(rest, "/xpm", 4) == 0 && (rest[4] == '\0' || rest[4] == '/')) {
        xpm_route(c, rest + 4);
    } else if (strcmp(rest, "/consent") == 0 && post) {
        json_t *b = body_json(c);
        if (b == NULL) {
            return;
        }
        json_t *arr = json_object_get(b, "tenants");
        xs_uuid ids[64];
        size_t n = 0;
        bool ok = arr == NULL || json_is_array(arr);
        size_t i;
        json_t *v;
        if (ok && arr != NULL) {
            json_array_foreach(arr, i, v)
            {
                const char *text = xs_json_string_value(v, NULL);
                if (n >= 64 || text == NULL || !xs_uuid_parse(text, &ids[n])) {
                    ok = false;
                    break;
                }
                n++;
            }
        }
        json_decref(b);
        if (!ok) {
            bad(c, "tenants must be an array of up to 64 tenant ids%s", "");
            return;
        }
        pthread_rwlock_wrlock(&s->world_lock);
        memcpy(s->consent, ids, n * sizeof(ids[0]));
        s->nconsent = n;
        pthread_rwlock_unlock(&s->world_lock);
        sim__reply_json(c, 200, json_pack("{s:i}", "tenants", (int)n));
    } else if (strcmp(rest, "/revoke") == 0 && post) {
        sim__revoke_all(s);
        sim__reply_json(c, 200, json_pack("{s:b}", "revoked", 1));
    } else if (strcmp(rest, "/tokens/expire") == 0 && post) {
        sim__expire_access(s);
        sim__reply_json(c, 200, json_pack("{s:b}", "expired", 1));
    } else if (strcmp(rest, "/identity") == 0 && get) {
        pthread_rwlock_rdlock(&s->world_lock);
        sim__reply_json(c, 200, sim__identity_json(s));
        pthread_rwlock_unlock(&s->world_lock);
    } else if (strcmp(rest, "/stats") == 0 && get) {
        pthread_rwlock_rdlock(&s->world_lock);
        sim__reply_json(c, 200, sim__stats_json(s, NULL));
        pthread_rwlock_unlock(&s->world_lock);
    } else if (strcmp(rest, "/stats/reset") == 0 && post) {
        sim__stats_reset(s);
        sim__limits_reset(s);
        sim__reply_json(c, 200, json_pack("{s:b}", "ok", 1));
    } else if (strcmp(rest, "/calls") == 0 && get) {
        const char *since = xs_http_req_query(c->req, "since");
        const char *limit = xs_http_req_query(c->req, "limit");
        const char *tenant = xs_http_req_query(c->req, "tenant");
        unsigned long long sv = since ? strtoull(since, NULL, 10) : 0;
        unsigned long long lv = limit ? strtoull(limit, NULL, 10) : 1000;
        sim__reply_json(c, 200, sim__calls_json(s, sv, lv ? lv : 1000, tenant));
    } else if (strcmp(rest, "/faults") == 0 && get) {
        sim__reply_json(c, 200, json_pack("{s:o}", "script", sim__faults_json(s)));
    } else if (strcmp(rest, "/faults") == 0 && post) {
        json_t *b = body_json(c);
        if (b == NULL) {
            return;
        }
        char why[256];
        xs_err e = sim__faults_script_add(s, json_object_get(b, "script"), why);
        json_decref(b);
        if (e != XS_OK) {
            bad(c, "%s", why);
            return;
        }
        sim__reply_json(c, 200, json_pack("{s:o}", "script", sim__faults_json(s)));
    } else if (strcmp(rest, "/faults") == 0 && strcmp(c->method, "DELETE") == 0) {
        sim__faults_reset(s);
        sim__reply_json(c, 200, json_pack("{s:[]}", "script"));
    } else if (strcmp(rest, "/files") == 0 && get) {
        files_get(c);
    } else if (strcmp(rest, "/webhooks") == 0 && get) {
        sim__reply_json(c, 200, sim__webhooks_json(s));
    } else if (strcmp(rest, "/webhooks/itr") == 0 && post) {
        json_t *b = body_json(c);
        if (b == NULL) {
            return;
        }
        int64_t count = 4;
        bool ok = get_i64(b, "count", 2, 50, &count, c);
        json_decref(b);
        if (ok) {
            sim__reply_json(c, 200, sim__webhooks_itr(s, (int)count));
        }
    } else if (strcmp(rest, "/webhooks/flush") == 0 && post) {
        json_t *b = body_json(c);
        if (b == NULL) {
            return;
        }
        int64_t timeout = 10000;
        bool ok = get_i64(b, "timeout_ms", 0, 600000, &timeout, c);
        json_decref(b);
        if (ok) {
            sim__reply_json(c, 200, sim__webhooks_flush(s, timeout));
        }
    } else if (strcmp(rest, "/webhooks/enable") == 0 && post) {
        sim__webhooks_enable(s);
        sim__reply_json(c, 200, sim__webhooks_json(s));
    } else {
        not_found(c, "control route (see sim/README.md)");
    }
}
