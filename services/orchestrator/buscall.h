/* buscall.h: one request to a domain service over the bus (buscall.c), and its failure as an
 * HTTP reply. */
#ifndef ORCH_BUSCALL_H
#define ORCH_BUSCALL_H

#include <stdbool.h>

#include <jansson.h>

#include "orch.h"
#include "proto.h"
#include "xs/bus.h"
#include "xs/err.h"
#include "xs/http.h"

/* Why a bus request failed. */
typedef struct orch_call_error {
    xs_err code;     /* the service's error code, or the bus's */
    bool retryable;  /* the service says the same request may succeed later */
    bool transport;  /* no reply came (no replica, time-out) */
    char field[128]; /* the request field at fault, or "" */
    int64_t calls;   /* the calls to Xero a step's error reply says it made; -1: not said */
    char message[4200];
} orch_call_error;

/* orch_call sends a request of `type` about connection conn (NULL: none) with body (taken
 * over) to one replica of domain and waits up to XS_BUS_TIMEOUT. On success *reply is its
 * reply (new; xs_msg_free), of the type the protocol declares. Otherwise err says why. */
xs_err orch_call(orch *o, xs_bus_domain domain, const char *type, const char *conn, json_t *body,
                 xs_msg **reply, orch_call_error *err);

/* orch_reply_call_error answers an HTTP request with the failure err describes (see
 * proto/README.md for the mapping); auth_status is the status for XS_EAUTH (401 or 409). */
void orch_reply_call_error(xs_http_req *req, const orch_call_error *err, int auth_status);

/* orch_call_http is orch_call for a route: the reply (new; xs_msg_free), or NULL once it has
 * answered req with the failure itself (orch_reply_call_error with auth_status). */
xs_msg *orch_call_http(orch *o, xs_http_req *req, xs_bus_domain domain, const char *type,
                       const char *conn, json_t *body, int auth_status);

#endif
