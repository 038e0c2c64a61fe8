/*
 * proto.c: the declaration of every bus message, and the codec that enforces them.
 * proto/README.md is the specification in prose; proto_test.c checks the two agree.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"
#include "xs/money.h"
#include "xs/uuid.h"

#define F(name, type, req, min, max)                                                               \
    {                                                                                              \
        name, type, req, min, max                                                                  \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* error: the reply to any request that failed. */
static const xs_proto_field f_error[] = {
    F("code", XS_PF_STRING, true, 1, 64),   F("message", XS_PF_STRING, true, 0, 4096),
    F("retryable", XS_PF_BOOL, true, 0, 0), F("field", XS_PF_STRING, false, 1, 128),
    F("calls", XS_PF_INT, false, 0, 100),
};

/* sys.ping: a liveness and routing probe any domain service answers. */
static const xs_proto_field f_sys_ping[] = {
    F("echo", XS_PF_STRING, false, 0, 1024),
    F("delay_ms", XS_PF_INT, false, 0, 10000),
};

static const xs_proto_field f_sys_pong[] = {
    F("service", XS_PF_STRING, true, 1, 64),
    F("replica", XS_PF_STRING, true, 1, 128),
    F("pid", XS_PF_INT, true, 1, INT32_MAX),
    F("echo", XS_PF_STRING, false, 0, 1024),
};

/* event.heartbeat: published by every domain service replica at XS_HEARTBEAT intervals,
 * and once more with stopping=true as it shuts down. */
static const xs_proto_field f_heartbeat[] = {
    F("service", XS_PF_STRING, true, 1, 64),
    F("domain", XS_PF_STRING, true, 1, 32),
    F("replica", XS_PF_STRING, true, 1, 128),
    F("pid", XS_PF_INT, true, 1, INT32_MAX),
    F("version", XS_PF_STRING, true, 1, 32),
    F("started_at", XS_PF_TIME, true, 0, 0),
    F("workers", XS_PF_INT, true, 1, 1024),
    F("busy", XS_PF_INT, true, 0, 1024),
    F("handled", XS_PF_INT, true, 0, INT64_MAX),
    F("failed", XS_PF_INT, true, 0, INT64_MAX),
    F("stopping", XS_PF_BOOL, true, 0, 0),
    /* the replica's counters since its start (engine/svc.h: at most 256) */
    F("counters", XS_PF_ARRAY, false, 0, 256),
};

/* auth.authorize: start connecting an organisation to Xero. */
static const xs_proto_field f_auth_authorize[] = {
    F("organisation_id", XS_PF_UUID, true, 0, 0),
    F("redirect_uri", XS_PF_STRING, false, 1, 2048),
    F("scopes", XS_PF_STRING, false, 1, 2048),
    F("xpm", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_auth_authorize_url[] = {
    F("url", XS_PF_STRING, true, 1, 16384),
    F("state_expires_at", XS_PF_TIME, true, 0, 0),
    F("redirect_uri", XS_PF_STRING, true, 1, 2048),
    F("scopes", XS_PF_STRING, true, 1, 2048),
};

/* auth.callback: what Xero sent to the OAuth callback. */
static const xs_proto_field f_auth_callback[] = {
    F("state", XS_PF_STRING, true, 1, 512),
    F("code", XS_PF_STRING, false, 1, 4096),
    F("error", XS_PF_STRING, false, 1, 256),
    F("error_description", XS_PF_STRING, false, 0, 1024),
};

static const xs_proto_field f_auth_connected[] = {
    F("organisation_id", XS_PF_UUID, true, 0, 0),
    F("connections", XS_PF_ARRAY, true, 1, 1000),
};

/* token.get: a live access token for the envelope's connection. */
static const xs_proto_field f_token_get[] = {
    F("min_valid_s", XS_PF_INT, false, 0, 1500),
    F("force_refresh", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_token[] = {
    F("access_token", XS_PF_STRING, true, 1, 65536),
    F("tenant_id", XS_PF_UUID, true, 0, 0),
    F("expires_at", XS_PF_TIME, true, 0, 0),
    F("refreshed", XS_PF_BOOL, true, 0, 0),
};

/* auth.check: is the envelope's connection usable right now? */
static const xs_proto_field f_auth_check[] = {
    F("force_refresh", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_auth_checked[] = {
    F("status", XS_PF_STRING, true, 1, 32),    F("tenant_connected", XS_PF_BOOL, true, 0, 0),
    F("expires_at", XS_PF_TIME, false, 0, 0),  F("refreshed", XS_PF_BOOL, true, 0, 0),
    F("reason", XS_PF_STRING, false, 0, 1024),
};

/* auth.disconnect: disconnect the envelope's connection. */
static const xs_proto_field f_auth_disconnect[] = {
    F("purge", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_auth_disconnected[] = {
    F("status", XS_PF_STRING, true, 1, 32),     F("removed_at_xero", XS_PF_BOOL, true, 0, 0),
    F("revoked", XS_PF_BOOL, true, 0, 0),       F("purged", XS_PF_BOOL, true, 0, 0),
    F("warning", XS_PF_STRING, false, 0, 1024),
};

/* event.connection: a connection changed status. */
static const xs_proto_field f_event_connection[] = {
    F("connection", XS_PF_UUID, true, 0, 0),   F("organisation_id", XS_PF_UUID, true, 0, 0),
    F("tenant_id", XS_PF_UUID, true, 0, 0),    F("status", XS_PF_STRING, true, 1, 32),
    F("reason", XS_PF_STRING, false, 0, 1024),
};

/* sync.pull: one bounded read of one entity from Xero (up to max_pages pages, or a set of
 * ids), each page applied to the local side in one transaction. */
static const xs_proto_field f_sync_pull[] = {
    F("entity", XS_PF_STRING, true, 1, 32),       F("run_id", XS_PF_UUID, false, 0, 0),
    F("step_id", XS_PF_INT, false, 0, INT64_MAX), F("access_token", XS_PF_STRING, true, 1, 65536),
    F("tenant_id", XS_PF_UUID, true, 0, 0),       F("organisation_id", XS_PF_UUID, true, 0, 0),
    F("cursor", XS_PF_OBJECT, false, 0, 0),       F("ids", XS_PF_ARRAY, false, 1, 50),
    F("page_size", XS_PF_INT, false, 1, 1000),    F("settings", XS_PF_OBJECT, false, 0, 0),
    F("max_pages", XS_PF_INT, false, 1, 100),     F("max_ms", XS_PF_INT, false, 1, 600000),
};

static const xs_proto_field f_sync_pulled[] = {
    F("outcome", XS_PF_STRING, true, 1, 32), F("counts", XS_PF_OBJECT, true, 0, 0),
    F("next", XS_PF_OBJECT, false, 0, 0),    F("high_water", XS_PF_TIME, false, 0, 0),
    F("resume", XS_PF_TIME, false, 0, 0),    F("call", XS_PF_OBJECT, false, 0, 0),
    F("missing", XS_PF_ARRAY, false, 0, 50), F("message", XS_PF_STRING, false, 0, 1024),
    F("calls", XS_PF_INT, false, 0, 100),    F("left", XS_PF_INT, false, 0, INT64_MAX),
};

/* sync.push: one bounded write of one entity to Xero (a batch of at most 50). */
static const xs_proto_field f_sync_push[] = {
    F("entity", XS_PF_STRING, true, 1, 32),       F("run_id", XS_PF_UUID, true, 0, 0),
    F("step_id", XS_PF_INT, true, 1, INT64_MAX),  F("access_token", XS_PF_STRING, false, 1, 65536),
    F("tenant_id", XS_PF_UUID, true, 0, 0),       F("organisation_id", XS_PF_UUID, true, 0, 0),
    F("local_ids", XS_PF_ARRAY, false, 1, 500),   F("scan_after", XS_PF_STRING, false, 0, 64),
    F("lookup_names", XS_PF_ARRAY, false, 1, 50), F("settings", XS_PF_OBJECT, false, 0, 0),
    F("final", XS_PF_BOOL, false, 0, 0),          F("reread", XS_PF_BOOL, false, 0, 0),
    F("max_calls", XS_PF_INT, false, 0, 100),     F("defer_partial", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_sync_pushed[] = {
    F("outcome", XS_PF_STRING, true, 1, 32),    F("counts", XS_PF_OBJECT, true, 0, 0),
    F("call", XS_PF_OBJECT, false, 0, 0),       F("next_scan", XS_PF_STRING, false, 0, 64),
    F("consumed", XS_PF_INT, false, 0, 500),    F("lookups", XS_PF_ARRAY, false, 0, 50),
    F("requeue", XS_PF_ARRAY, false, 0, 50),    F("blocked_on", XS_PF_ARRAY, false, 0, 1000),
    F("message", XS_PF_STRING, false, 0, 1024), F("again", XS_PF_ARRAY, false, 0, 50),
    F("blocked", XS_PF_OBJECT, false, 0, 0),    F("calls", XS_PF_INT, false, 0, 100),
    F("left", XS_PF_INT, false, 0, INT64_MAX),  F("scan_done", XS_PF_INT, false, 0, INT64_MAX),
    F("calls_needed", XS_PF_INT, false, 1, 2),
};

/* sync.resolve: settle a conflict held for a person. */
static const xs_proto_field f_sync_resolve[] = {
    F("entity", XS_PF_STRING, true, 1, 32),     F("conflict_id", XS_PF_UUID, true, 0, 0),
    F("resolution", XS_PF_STRING, true, 1, 16), F("data", XS_PF_OBJECT, false, 0, 0),
    F("by", XS_PF_STRING, false, 1, 256),
};

static const xs_proto_field f_sync_resolved[] = {
    F("status", XS_PF_STRING, true, 1, 16),
    F("resolution", XS_PF_STRING, true, 1, 16),
    F("local_id", XS_PF_UUID, true, 0, 0),
    F("push", XS_PF_BOOL, true, 0, 0),
};

/* local.upsert: the host application's write of one local record through the REST API. */
static const xs_proto_field f_local_upsert[] = {
    F("entity", XS_PF_STRING, true, 1, 32), F("organisation_id", XS_PF_UUID, false, 0, 0),
    F("id", XS_PF_UUID, false, 0, 0),       F("record", XS_PF_OBJECT, true, 0, 0),
    F("partial", XS_PF_BOOL, false, 0, 0),
};

static const xs_proto_field f_local_record[] = {
    F("id", XS_PF_UUID, true, 0, 0),
    F("created", XS_PF_BOOL, true, 0, 0),
    F("record", XS_PF_OBJECT, true, 0, 0),
};

#define SPEC(type, kind, reply, conn, fields)                                                      \
    {                                                                                              \
        type, kind, reply, conn, fields, COUNT(fields)                                             \
    }

static const xs_proto_spec specs[] = {
    SPEC("error", XS_PROTO_REPLY, NULL, false, f_error),
    SPEC("sys.ping", XS_PROTO_REQUEST, "sys.pong", false, f_sys_ping),
    SPEC("sys.pong", XS_PROTO_REPLY, NULL, false, f_sys_pong),
    SPEC("event.heartbeat", XS_PROTO_EVENT, NULL, false, f_heartbeat),
    SPEC("auth.authorize", XS_PROTO_REQUEST, "auth.authorize_url", false, f_auth_authorize),
    SPEC("auth.authorize_url", XS_PROTO_REPLY, NULL, false, f_auth_authorize_url),
    SPEC("auth.callback", XS_PROTO_REQUEST, "auth.connected", false, f_auth_callback),
    SPEC("auth.connected", XS_PROTO_REPLY, NULL, false, f_auth_connected),
    SPEC("token.get", XS_PROTO_REQUEST, "token", true, f_token_get),
    SPEC("token", XS_PROTO_REPLY, NULL, true, f_token),
    SPEC("auth.check", XS_PROTO_REQUEST, "auth.checked", true, f_auth_check),
    SPEC("auth.checked", XS_PROTO_REPLY, NULL, true, f_auth_checked),
    SPEC("auth.disconnect", XS_PROTO_REQUEST, "auth.disconnected", true, f_auth_disconnect),
    SPEC("auth.disconnected", XS_PROTO_REPLY, NULL, true, f_auth_disconnected),
    SPEC("event.connection", XS_PROTO_EVENT, NULL, false, f_event_connection),
    SPEC("sync.pull", XS_PROTO_REQUEST, "sync.pulled", true, f_sync_pull),
    SPEC("sync.pulled", XS_PROTO_REPLY, NULL, true, f_sync_pulled),
    SPEC("sync.push", XS_PROTO_REQUEST, "sync.pushed", true, f_sync_push),
    SPEC("sync.pushed", XS_PROTO_REPLY, NULL, true, f_sync_pushed),
    SPEC("sync.resolve", XS_PROTO_REQUEST, "sync.resolved", true, f_sync_resolve),
    SPEC("sync.resolved", XS_PROTO_REPLY, NULL, true, f_sync_resolved),
    SPEC("local.upsert", XS_PROTO_REQUEST, "local.record", false, f_local_upsert),
    SPEC("local.record", XS_PROTO_REPLY, NULL, false, f_local_record),
};

const xs_proto_spec *xs_proto_specs(size_t *n)
{
    if (n != NULL) {
        *n = COUNT(specs);
    }
    return specs;
}

const xs_proto_spec *xs_proto_find(const char *type)
{
    if (type == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < COUNT(specs); i++) {
        if (strcmp(specs[i].type, type) == 0) {
            return &specs[i];
        }
    }
    return NULL;
}

/* id_valid: 1-64 characters of [A-Za-z0-9_.:-]. */
static bool id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= XS_PROTO_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* check_field validates one body field against its declaration; writes a reason into err. */
static bool check_field(const xs_proto_field *f, const json_t *v, char *err, size_t errlen)
{
    switch (f->type) {
    case XS_PF_STRING: {
        size_t len;
        if (xs_json_string_value(v, &len) == NULL) {
            snprintf(err, errlen, "body.%s: must be a string", f->name);
            return false;
        }
        int64_t n = (int64_t)len;
        if (n < f->min || (f->max > 0 && n > f->max)) {
            snprintf(err, errlen, "body.%s: length must be from %lld to %lld bytes", f->name,
                     (long long)f->min, (long long)f->max);
            return false;
        }
        return true;
    }
    case XS_PF_INT:
        if (!json_is_integer(v) || json_integer_value(v) < f->min ||
            json_integer_value(v) > f->max) {
            snprintf(err, errlen, "body.%s: must be an integer from %lld to %lld", f->name,
                     (long long)f->min, (long long)f->max);
            return false;
        }
        return true;
    case XS_PF_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "body.%s: must be true or false", f->name);
            return false;
        }
        return true;
    case XS_PF_UUID: {
        const char *s = xs_json_string_value(v, NULL);
        if (s == NULL || !xs_uuid_valid(s)) {
            snprintf(err, errlen, "body.%s: must be a UUID", f->name);
            return false;
        }
        return true;
    }
    case XS_PF_TIME: {
        xs_time t;
        const char *s = xs_json_string_value(v, NULL);
        if (s == NULL || xs_time_parse_iso(s, &t) != XS_OK) {
            snprintf(err, errlen, "body.%s: must be an ISO 8601 date-time", f->name);
            return false;
        }
        return true;
    }
    case XS_PF_DECIMAL: {
        xs_money m;
        if (xs_json_to_money(v, &m) != XS_OK) {
            snprintf(err, errlen, "body.%s: must be a decimal number", f->name);
            return false;
        }
        return true;
    }
    case XS_PF_OBJECT:
        if (!json_is_object(v)) {
            snprintf(err, errlen, "body.%s: must be an object", f->name);
            return false;
        }
        return true;
    case XS_PF_ARRAY: {
        if (!json_is_array(v)) {
            snprintf(err, errlen, "body.%s: must be an array", f->name);
            return false;
        }
        int64_t n = (int64_t)json_array_size(v);
        if (n < f->min || (f->max > 0 && n > f->max)) {
            snprintf(err, errlen, "body.%s: must hold from %lld to %lld items", f->name,
                     (long long)f->min, (long long)f->max);
            return false;
        }
        return true;
    }
    case XS_PF_ANY:
        return true;
    }
    snprintf(err, errlen, "body.%s: undeclared field type", f->name);
    return false;
}

/* check_body validates body against spec. Fields the declaration does not name are allowed
 * (a newer sender may add optional fields); declared ones must have the declared type. */
static bool check_body(const xs_proto_spec *spec, const json_t *body, bool has_conn, char *err,
                       size_t errlen)
{
    if (!json_is_object(body)) {
        snprintf(err, errlen, "body: must be an object");
        return false;
    }
    if (spec->needs_conn && !has_conn) {
        snprintf(err, errlen, "conn: %s needs a connection id", spec->type);
        return false;
    }
    for (size_t i = 0; i < spec->nfields; i++) {
        const xs_proto_field *f = &spec->fields[i];
        json_t *v = json_object_get(body, f->name);
        if (v == NULL || json_is_null(v)) {
            if (f->required) {
                snprintf(err, errlen, "body.%s: required", f->name);
                return false;
            }
            continue;
        }
        if (!check_field(f, v, err, errlen)) {
            return false;
        }
    }
    return true;
}

xs_err xs_proto_decode(const void *buf, size_t len, xs_msg **out, char *id_out, char *err)
{
    char scratch[XS_PROTO_ERR_MAX];
    if (err == NULL) {
        err = scratch;
    }
    err[0] = '\0';
    if (id_out != NULL) {
        id_out[0] = '\0';
    }
    if (buf == NULL || out == NULL) {
        snprintf(err, XS_PROTO_ERR_MAX, "no message");
        return XS_EINVAL;
    }
    char jerr[XS_JSON_ERR_MAX];
    json_t *env = xs_json_parse(buf, len, jerr);
    if (env == NULL) {
        snprintf(err, XS_PROTO_ERR_MAX, "not JSON: %s", jerr);
        return XS_EPROTO;
    }
    xs_err rc = XS_EPROTO;
    xs_msg *m = NULL;
    if (!json_is_object(env)) {
        snprintf(err, XS_PROTO_ERR_MAX, "envelope: must be an object");
        goto fail;
    }
    const char *id = xs_json_str_or(env, "id", NULL);
    if (id == NULL || !id_valid(id)) {
        snprintf(err, XS_PROTO_ERR_MAX, "id: must be 1-64 characters of [A-Za-z0-9_.:-]");
        goto fail;
    }
    if (id_out != NULL) {
        snprintf(id_out, XS_PROTO_ID_MAX, "%s", id);
    }
    int64_t v;
    if (xs_json_get_int(env, "v", &v) != XS_OK) {
        snprintf(err, XS_PROTO_ERR_MAX, "v: must be an integer version");
        goto fail;
    }
    if (v != XS_PROTO_VERSION) {
        snprintf(err, XS_PROTO_ERR_MAX, "v: version %lld is not supported (this build speaks %d)",
                 (long long)v, XS_PROTO_VERSION);
        rc = XS_EUNSUPPORTED;
        goto fail;
    }
    const char *type;
    if (xs_json_get_str(env, "type", &type) != XS_OK) {
        snprintf(err, XS_PROTO_ERR_MAX, "type: must be a string");
        goto fail;
    }
    const xs_proto_spec *spec = xs_proto_find(type);
    if (spec == NULL) {
        snprintf(err, XS_PROTO_ERR_MAX, "type: unknown message type \"%.*s\"", 48, type);
        rc = XS_EUNSUPPORTED;
        goto fail;
    }
    json_t *connv = json_object_get(env, "conn");
    const char *conn = "";
    if (connv != NULL && !json_is_null(connv)) {
        conn = xs_json_string_value(connv, NULL);
        if (conn == NULL || !xs_uuid_valid(conn)) {
            snprintf(err, XS_PROTO_ERR_MAX, "conn: must be a connection UUID or null");
            goto fail;
        }
    }
    json_t *body = json_object_get(env, "body");
    if (body == NULL || json_is_null(body)) {
        snprintf(err, XS_PROTO_ERR_MAX, "body: required");
        goto fail;
    }
    if (!check_body(spec, body, conn[0] != '\0', err, XS_PROTO_ERR_MAX)) {
        goto fail;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        rc = XS_ENOMEM;
        snprintf(err, XS_PROTO_ERR_MAX, "out of memory");
        goto fail;
    }
    m->v = (int)v;
    m->spec = spec;
    snprintf(m->type, sizeof(m->type), "%s", spec->type);
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->conn, sizeof(m->conn), "%s", conn);
    m->body = json_incref(body);
    json_decref(env);
    *out = m;
    return XS_OK;

fail:
    json_decref(env);
    return rc;
}

void xs_msg_free(xs_msg *m)
{
    if (m == NULL) {
        return;
    }
    json_decref(m->body);
    free(m);
}

xs_err xs_proto_encode(const char *type, const char *id, const char *conn, json_t *body, char **buf,
                       size_t *len)
{
    char err[XS_PROTO_ERR_MAX];
    const xs_proto_spec *spec = xs_proto_find(type);
    if (body == NULL) {
        body = json_object();
    }
    if (spec == NULL) {
        fprintf(stderr, "xs_proto_encode: undeclared message type \"%s\"\n",
                type != NULL ? type : "(null)");
        json_decref(body);
        return XS_EUNSUPPORTED;
    }
    if (id == NULL || !id_valid(id) || buf == NULL || len == NULL || body == NULL ||
        (conn != NULL && conn[0] != '\0' && !xs_uuid_valid(conn))) {
        json_decref(body);
        return XS_EINVAL;
    }
    bool has_conn = conn != NULL && conn[0] != '\0';
    if (!check_body(spec, body, has_conn, err, sizeof(err))) {
        fprintf(stderr, "xs_proto_encode: %s: %s\n", type, err);
        json_decref(body);
        return XS_EINVAL;
    }
    json_t *env = json_pack("{s:i, s:s, s:s, s:o, s:o}", "v", XS_PROTO_VERSION, "type", type, "id",
                            id, "conn", has_conn ? json_string(conn) : json_null(), "body", body);
    if (env == NULL) {
        return XS_ENOMEM;
    }
    char *text = xs_json_dump(env, XS_JSON_COMPACT);
    json_decref(env);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    *buf = text;
    *len = strlen(text);
    return XS_OK;
}

xs_err xs_proto_encode_error(const char *id, xs_err code, const char *message, bool retryable,
                             char **buf, size_t *len)
{
    return xs_proto_encode_error_at(id, code, NULL, message, retryable, -1, buf, len);
}

xs_err xs_proto_encode_error_at(const char *id, xs_err code, const char *field, const char *message,
                                bool retryable, int64_t calls, char **buf, size_t *len)
{
    char fallback[XS_PROTO_ID_MAX];
    if (id == NULL || !id_valid(id)) {
        /* The request's id could not be read; the error still needs an id of its own. */
        snprintf(fallback, sizeof(fallback), "unknown");
        id = fallback;
    }
    char msg[4097];
    snprintf(msg, sizeof(msg), "%s", message != NULL ? message : xs_strerror(code));
    json_t *body = json_pack("{s:s, s:s, s:b}", "code", xs_err_name(code), "message", msg,
                             "retryable", retryable);
    if (body != NULL && field != NULL && field[0] != '\0') {
        json_object_set_new(body, "field", json_string(field));
    }
    if (body != NULL && calls >= 0) {
        json_object_set_new(body, "calls", json_integer(calls));
    }
    return xs_proto_encode("error", id, NULL, body, buf, len);
}

bool xs_msg_is_error(const xs_msg *m)
{
    return m != NULL && strcmp(m->type, "error") == 0;
}

void xs_msg_error(const xs_msg *m, xs_err *code, const char **message, bool *retryable)
{
    const char *name = xs_json_str_or(m->body, "code", "");
    xs_err c = XS_EPROTO;
    for (int i = 1; i < 256; i++) {
        if (strcmp(xs_err_name(i), name) == 0) {
            c = (xs_err)i;
            break;
        }
    }
    if (code != NULL) {
        *code = c;
    }
    if (message != NULL) {
        *message = xs_json_str_or(m->body, "message", "");
    }
    if (retryable != NULL) {
        bool r = false;
        xs_json_get_bool(m->body, "retryable", &r);
        *retryable = r;
    }
}

const char *xs_msg_error_field(const xs_msg *m)
{
    return m != NULL ? xs_json_str_or(m->body, "field", NULL) : NULL;
}

int64_t xs_msg_error_calls(const xs_msg *m)
{
    int64_t calls = -1;
    if (m == NULL || xs_json_get_int(m->body, "calls", &calls) != XS_OK || calls < 0) {
        return -1;
    }
    return calls;
}

xs_err xs_proto_new_id(char *id)
{
    char *tok = NULL;
    xs_err e = xs_crypto_random_token(9, &tok);
    if (e != XS_OK) {
        return e;
    }
    snprintf(id, XS_PROTO_ID_MAX, "r-%s", tok);
    free(tok);
    return XS_OK;
}
