/*
 * audit.h: the record of every call the engine made to Xero (sync.api_calls).
 *
 * Each call to Xero is described by lib/xs/xero.h in an xs_xero_call (method, path without
 * host, status, duration, rate-limit headers); the caller records it here after the call,
 * outside any transaction it may roll back, so the audit keeps failed work too. Tokens never
 * reach it: paths carry none, and bodies are not recorded.
 */
#ifndef XS_AUDIT_H
#define XS_AUDIT_H

#include <stdint.h>

#include "xs/err.h"
#include "xs/pg.h"
#include "xs/xero.h"

/* Who a call was made for; every field may be NULL or 0 when it does not apply. */
typedef struct xs_audit_ctx {
    const char *connection_id; /* sync.connections.id */
    const char *tenant_id;     /* the xero-tenant-id sent */
    const char *run_id;        /* sync.runs.id */
    int64_t step_id;           /* sync.run_steps.id; 0: none */
} xs_audit_ctx;

/* xs_audit_call inserts one row for call. It needs pg outside a failed transaction; inside
 * a healthy one the row joins it. */
xs_err xs_audit_call(xs_pg *pg, const xs_audit_ctx *who, const xs_xero_call *call);

#endif
