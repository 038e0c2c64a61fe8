/* buscall.c: one request to a domain service over the bus, and its failure as HTTP. */
#include "buscall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

xs_err orch_call(orch *o, xs_bus_domain domain, const char *type, const char *conn, json_t *body,
                 xs_msg **reply, orch_call_error *err)
{
    memset(err, 0, sizeof(*err));
    err->calls = -1;
    char id[XS_PROTO_ID_MAX];
    char *buf = NULL;
    size_t len = 0;
    void *rep = NULL;
    size_t replen = 0;
    xs_msg *m = NULL;
    xs_err e = xs_proto_new_id(id);
    if (e != XS_OK) {
        json_decref(body);
        goto fail;
    }
    e = xs_proto_encode(type, id, conn, body, &buf, &len);
    if (e != XS_OK) {
        snprintf(err->message, sizeof(err->message), "the request does not match %s", type);
        e = XS_EINVAL;
        goto fail;
    }
    e = xs_bus_request(o->hub, domain, buf, len, o->bus_timeout_ms, &rep, &replen);
    free(buf);
    if (e != XS_OK) {
        err->transport = true;
        snprintf(err->message, sizeof(err->message), "the %s service did not answer: %s",
                 xs_bus_domain_name(domain), xs_strerror(e));
        e = e == XS_ETIMEDOUT ? XS_EUNAVAILABLE : e;
        goto fail;
    }
    char why[XS_PROTO_ERR_MAX];
    e = xs_proto_decode(rep, replen, &m, NULL, why);
    free(rep);
    if (e != XS_OK) {
        snprintf(err->message, sizeof(err->message), "the %s service sent a malformed reply: %s",
                 xs_bus_domain_name(domain), why);
        e = XS_EPROTO;
        goto fail;
    }
    if (strcmp(m->id, id) != 0) {
        snprintf(err->message, sizeof(err->message), "the reply is for another request");
        xs_msg_free(m);
        e = XS_EPROTO;
        goto fail;
    }
    if (xs_msg_is_error(m)) {
        const char *msg = "";
        xs_msg_error(m, &e, &msg, &err->retryable);
        snprintf(err->message, sizeof(err->message), "%s", msg);
        const char *field = xs_msg_error_field(m);
        snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
        err->calls = xs_msg_error_calls(m);
        xs_msg_free(m);
        goto fail;
    }
    if (strcmp(m->type, m->spec->type) != 0 || strcmp(xs_proto_find(type)->reply, m->type) != 0) {
        snprintf(err->message, sizeof(err->message), "unexpected reply %s to %s", m->type, type);
        xs_msg_free(m);
        e = XS_EPROTO;
        goto fail;
    }
    *reply = m;
    return XS_OK;
fail:
    err->code = e;
    if (err->message[0] == '\0') {
        snprintf(err->message, sizeof(err->message), "%s", xs_strerror(e));
    }
    return e;
}

void orch_reply_call_error(xs_http_req *req, const orch_call_error *err, int auth_status)
{
    int status = 500;
    const char *code = "internal";
    switch (err->code) {
    case XS_EINVAL:
        status = 400, code = "invalid";
        break;
    case XS_ENOTFOUND:
        status = 404, code = "not_found";
        break;
    case XS_EAUTH:
        status = auth_status, code = auth_status == 401 ? "unauthorized" : "needs_reauth";
        break;
    case XS_ESTATE:
    case XS_ECONFLICT:
    case XS_EEXIST:
        status = 409, code = "conflict";
        break;
    case XS_ETIMEDOUT:
    case XS_EBUSY:
    case XS_ERATELIMIT:
        status = 503, code = "unavailable";
        break;
    case XS_EUNAVAILABLE:
        status = err->transport ? 503 : 502, code = err->transport ? "unavailable" : "bad_gateway";
        break;
    case XS_EHTTP:
    case XS_EPROTO:
        status = 502, code = "bad_gateway";
        break;
    default:
        break;
    }
    if (status == 503) {
        xs_http_add_header(req, "Retry-After", "5");
    }
    xs_http_reply_error(req, status, code, err->field[0] != '\0' ? err->field : NULL, "%s",
                        err->message);
}

xs_msg *orch_call_http(orch *o, xs_http_req *req, xs_bus_domain domain, const char *type,
                       const char *conn, json_t *body, int auth_status)
{
    xs_msg *rep = NULL;
    orch_call_error err;
    if (orch_call(o, domain, type, conn, body, &rep, &err) != XS_OK) {
        orch_reply_call_error(req, &err, auth_status);
        return NULL;
    }
    return rep;
}
