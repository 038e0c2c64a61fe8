/* webhooks.c: the receiver of Xero's webhooks (see webhooks.h). */
#include "webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/clock.h"
#include "xs/config.h"
#include "xs/json.h"
#include "xs/uuid.h"

/* How long storing a delivery may take before it is answered 503 (Xero waits 5 s). */
#define STORE_WAIT_MS 2000
#define STORE_TIMEOUT "2500ms"

/* An event's category and type: what sync.webhook_events admits (^[A-Z_]+$). */
#define NAME_MAX_LEN 64

/* key_take copies a configured key's bytes into o's slot i. */
static xs_err key_take(orch *o, int i, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        return XS_OK;
    }
    o->webhook_keys[i].len = strlen(v);
    o->webhook_keys[i].bytes = malloc(o->webhook_keys[i].len);
    if (o->webhook_keys[i].bytes == NULL) {
        return XS_ENOMEM;
    }
    memcpy(o->webhook_keys[i].bytes, v, o->webhook_keys[i].len);
    return XS_OK;
}

xs_err orch_webhook_keys_read(orch *o)
{
    xs_err e = key_take(o, 0, xs_config_str(o->proc.cfg, "XS_XERO_WEBHOOK_KEY"));
    return e == XS_OK ? key_take(o, 1, xs_config_str(o->proc.cfg, "XS_XERO_WEBHOOK_KEY_PREVIOUS"))
                      : e;
}

void orch_webhook_keys_free(orch *o)
{
    for (int i = 0; i < 2; i++) {
        if (o->webhook_keys[i].bytes != NULL) {
            xs_crypto_wipe(o->webhook_keys[i].bytes, o->webhook_keys[i].len);
            free(o->webhook_keys[i].bytes);
        }
        o->webhook_keys[i].bytes = NULL;
        o->webhook_keys[i].len = 0;
    }
}

/* signed_by_us tells whether sig (the x-xero-signature header, or NULL) is the base64
 * HMAC-SHA256 of body under one of the webhook keys. Every key is tried, and the comparison
 * takes the same time whatever the header holds. */
static bool signed_by_us(const orch *o, const char *body, size_t len, const char *sig)
{
    uint8_t want[XS_SHA256_LEN];
    uint8_t *got = NULL;
    size_t glen = 0;
    bool ok = false;
    if (sig == NULL || xs_base64_decode(sig, strlen(sig), &got, &glen) != XS_OK) {
        got = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (o->webhook_keys[i].bytes == NULL ||
            xs_hmac_sha256(o->webhook_keys[i].bytes, o->webhook_keys[i].len, body, len, want) !=
                XS_OK) {
            continue;
        }
        ok |= got != NULL && glen == XS_SHA256_LEN && xs_crypto_equal(got, want, XS_SHA256_LEN);
    }
    xs_crypto_wipe(want, sizeof(want));
    free(got);
    return ok;
}

/* name_ok tells whether s is an event category or type sync.webhook_events admits. */
static bool name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    return n > 0 && n <= NAME_MAX_LEN && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == n;
}

/* event_row checks one event of a delivery and writes the row that stores it (new); NULL,
 * with why, when it is not an event Xero sends. */
static json_t *event_row(const json_t *ev, char *why, size_t cap)
{
    const char *tenant = xs_json_str_or(ev, "tenantId", NULL);
    const char *res = xs_json_str_or(ev, "resourceId", NULL);
    const char *cat = xs_json_str_or(ev, "eventCategory", NULL);
    const char *type = xs_json_str_or(ev, "eventType", NULL);
    const char *date = xs_json_str_or(ev, "eventDateUtc", NULL);
    const char *url = xs_json_str_or(ev, "resourceUrl", NULL);
    xs_time at = 0;
    if (!json_is_object(ev) || !xs_uuid_valid(tenant) || !xs_uuid_valid(res)) {
        snprintf(why, cap, "an event needs a tenantId and a resourceId (UUIDs)");
        return NULL;
    }
    if (!name_ok(cat) || !name_ok(type)) {
        snprintf(why, cap, "an event needs an eventCategory and an eventType (A-Z and _)");
        return NULL;
    }
    if (date == NULL || xs_time_parse_iso(date, &at) != XS_OK) {
        snprintf(why, cap, "an event needs its eventDateUtc (ISO 8601)");
        return NULL;
    }
    char iso[XS_TIME_ISO_MAX];
    xs_time_format_iso(at, iso);
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:O}", "tenant_id", tenant, "category", cat,
                     "type", type, "resource_id", res, "resource_url", url, "event_at", iso, "raw",
                     ev);
}

/* delivery_rows reads a signed delivery's events into rows to store (*rows, new); false with
 * why when the body is not a batch of events. */
static bool delivery_rows(const char *body, size_t len, json_t **rows, char *why, size_t cap)
{
    *rows = NULL;
    char err[XS_JSON_ERR_MAX];
    json_t *doc = xs_json_parse(body, len, err);
    json_t *events = json_object_get(doc, "events");
    if (!json_is_array(events)) {
        snprintf(why, cap, "the body is not a batch of events: %.120s",
                 doc == NULL ? err : "no events array");
        json_decref(doc);
        return false;
    }
    json_t *out = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        json_t *row = event_row(ev, why, cap);
        if (row == NULL || json_array_append_new(out, row) != 0) {
            json_decref(out);
            json_decref(doc);
            return false;
        }
    }
    json_decref(doc);
    *rows = out;
    return true;
}

/* store writes the rows in one statement, each event once: pending when its tenant has a
 * connection, ignored otherwise. *stored and *unknown count what was new and what of it
 * belongs to no connection. */
static xs_err store(xs_pg *pg, const json_t *rows, long *stored, long *unknown)
{
    char *doc = xs_json_dump(rows, 0);
    if (doc == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_begin(pg);
    if (e == XS_OK) {
        e = xs_pg_q0(pg, NULL, "SET LOCAL statement_timeout = '" STORE_TIMEOUT "'");
    }
    if (e == XS_OK) {
        e = xs_pg_q(
            pg, &r,
            "WITH n AS (INSERT INTO sync.webhook_events (tenant_id, event_category, event_type, "
            "resource_id, resource_url, event_date_utc, raw, status) SELECT r.tenant_id, "
            "r.category, r.type, r.resource_id, r.resource_url, r.event_at, r.raw, CASE WHEN "
            "EXISTS (SELECT 1 FROM sync.connections c WHERE c.tenant_id = r.tenant_id) THEN "
            "'pending' ELSE 'ignored' END FROM jsonb_to_recordset($1::jsonb) AS r(tenant_id uuid, "
            "category text, type text, resource_id uuid, resource_url text, event_at timestamptz, "
            "raw jsonb) ON CONFLICT (tenant_id, event_category, event_type, resource_id, "
            "event_date_utc) DO NOTHING RETURNING status) SELECT count(*), count(*) FILTER "
            "(WHERE status = 'ignored') FROM n",
            doc);
    }
    free(doc);
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    if (e == XS_OK) {
        int64_t s = 0, u = 0;
        xs_pg_res_int(r, 0, 0, &s);
        xs_pg_res_int(r, 0, 1, &u);
        *stored = (long)s;
        *unknown = (long)u;
    }
    xs_pg_res_free(r);
    return e;
}

/* reply_empty answers status with no body, as Xero expects of a webhook receiver. */
static void reply_empty(xs_http_req *req, int status)
{
    xs_http_reply(req, status, NULL, "", 0);
}

void orch_webhooks_xero(xs_http_req *req, void *arg)
{
    orch *o = arg;
    size_t len = 0;
    const char *body = xs_http_req_body(req, &len);
    if (!signed_by_us(o, body, len, xs_http_req_header(req, "x-xero-signature"))) {
        xs_log_warn(o->proc.log, "webhook.refused", "{s:s, s:I}", "reason",
                    o->webhook_keys[0].bytes == NULL ? "no webhook key is configured"
                                                     : "the signature does not match the body",
                    "bytes", (json_int_t)len);
        reply_empty(req, 401);
        return;
    }
    char why[256] = "";
    json_t *rows = NULL;
    if (!delivery_rows(body, len, &rows, why, sizeof(why))) {
        xs_log_warn(o->proc.log, "webhook.unreadable", "{s:s}", "reason", why);
        reply_empty(req, 400);
        return;
    }
    long stored = 0, unknown = 0;
    xs_err e = XS_OK;
    if (json_array_size(rows) > 0) {
        xs_pg *pg = NULL;
        e = xs_pg_pool_acquire(o->pool, STORE_WAIT_MS, &pg);
        if (e == XS_OK) {
            e = store(pg, rows, &stored, &unknown);
            if (e != XS_OK) {
                xs_log_error(o->proc.log, "webhook.store_failed", "{s:s, s:I}", "error",
                             xs_pg_error(pg), "events", (json_int_t)json_array_size(rows));
            }
            xs_pg_pool_release(o->pool, pg);
        } else {
            xs_log_error(o->proc.log, "webhook.store_failed", "{s:s, s:I}", "error",
                         "no database connection", "events", (json_int_t)json_array_size(rows));
        }
    }
    if (e != XS_OK) {
        json_decref(rows);
        reply_empty(req, 503); /* Xero delivers the batch again */
        return;
    }
    if (unknown > 0) {
        xs_log_warn(o->proc.log, "webhook.unknown_tenant", "{s:I}", "events", (json_int_t)unknown);
    }
    xs_log_info(o->proc.log, "webhook.received", "{s:I, s:I, s:I}", "events",
                (json_int_t)json_array_size(rows), "stored", (json_int_t)stored, "ignored",
                (json_int_t)unknown);
    orch_metrics_webhooks_received(o->metrics, (int64_t)json_array_size(rows), stored);
    json_decref(rows);
    reply_empty(req, 200);
}
