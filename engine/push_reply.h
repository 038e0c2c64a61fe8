/*
 * engine/push_reply.h: sending a push and recording Xero's reply. One POST with
 * summarizeErrors=false; each item's result read (created, updated, refused with Xero's
 * message, in doubt); mappings, Xero's computed fields and item errors written in one
 * transaction; a lost or garbled reply left in doubt, never guessed.
 */
#ifndef XS_ENGINE_PUSH_REPLY_H
#define XS_ENGINE_PUSH_REPLY_H

#include "engine/domain.h"
#include "engine/step.h"
#include "engine/push_store.h"

/* push_reply is the step's reply: its outcome and counts, the last call, and what the
 * orchestrator does next (next_scan, consumed, blocked, again). */
json_t *push_reply(const char *outcome, const json_t *counts, const xs_xero_call *call,
                   int64_t calls, const push_req *p);

/* push_resend_window is how long after its first send a create whose reply never came may be
 * sent again with its key (XS_PUSH_RESEND_WINDOW): well within the time Xero remembers an
 * Idempotency-Key, so the copy is answered from Xero's memory rather than made twice. */
int64_t push_resend_window(xs_svc_ctx *ctx);

/* push_leave_in_doubt ends a step whose creates may be in Xero but can no longer be sent again
 * safely (past the resend window): the request is dropped, the claims stay, and a pull that
 * finds the records links them (find_own_creates), or, having read everything Xero changed
 * since and not found them, lets them go to be sent anew (the orchestrator's cursor). */
xs_err push_leave_in_doubt(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req,
                           json_t *counts, push_req *p, json_t **reply);

/* push_send makes the step's (req->step) one write and writes what came of it into *reply. */
xs_err push_send(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, push_req *p,
                 json_t *counts, json_t *errors, int64_t calls, json_t **reply);

#endif
