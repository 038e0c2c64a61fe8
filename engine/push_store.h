/*
 * engine/push_store.h: the push request kept in its step. Before a push is sent, its body,
 * Idempotency-Key and items are stored in sync.run_steps and its records claimed, so a retry
 * sends the same bytes with the same key; an update retried is re-read from Xero and decided
 * again first. It owns those columns of sync.run_steps and the claims.
 */
#ifndef XS_ENGINE_PUSH_STORE_H
#define XS_ENGINE_PUSH_STORE_H

#include "engine/domain.h"
#include "engine/batch.h"
#include "engine/step.h"

/* A push step's request: what it stands for, kept in its row (sync.run_steps) from before
 * the call until Xero's reply is recorded, so a retry sends the same bytes with the same key
 * (or, for updates, decides them again first). */
typedef struct push_req {
    char *body;                /* the request body (new), or NULL before it is built */
    char key[64];              /* its Idempotency-Key */
    json_t *items;             /* [{local_id, xero_id, rec, at, retire, recreate}] */
    batch_kind kind;           /* what the items are */
    char next_scan[XS_ID_MAX]; /* where a scan goes on after it ("" when over) */
    int64_t consumed;          /* of the step's local_ids, how many it dealt with; -1 */
    json_t *blocked;           /* {"ids", "on"}: records waiting for others, or NULL */
    json_t *again;             /* local ids of other kinds, for the next step, or NULL */
    int64_t first_ms;          /* when the request was first stored (epoch ms) */
    bool stored;               /* read from the step's row (a retry) */
} push_req;

/* push_req_fini lets go of what p holds. */
void push_req_fini(push_req *p);

/* push_req_read reads the request a step stored before its call, if any. */
xs_err push_req_read(xs_svc_ctx *ctx, const char *step, push_req *p);

/* push_settle_ms is how long after a send any copy of it has surely landed in Xero or died: the
 * client's time-out, and the resume margin for Xero's clock. */
int64_t push_settle_ms(xs_svc_ctx *ctx);

/* push_request_body writes the batch's body: {"<list>": [items]}, or for a delete Xero takes one
 * a request, the item less its id field (new string). */
char *push_request_body(const xs_entity_ops *ops, const batch *b);

/* push_request_key derives the Idempotency-Key of a request (into key): it names this exact body
 * for these local records (items, and the Xero records they update) on this connection
 * (req->conn), so two batches of the same text (bills alike, which Xero lets be; two deletes,
 * whose bodies are the same) are two requests. */
xs_err push_request_key(const step_req *req, const json_t *items, const char *body, char key[64]);

/* push_store_request claims the batch's records and stores the request that stands for the rest
 * in the step's row (req->step), with the refusals found before it, in one transaction: a retry
 * then sends it as it is. p->body stays NULL when no record is left to send. */
xs_err push_store_request(xs_svc_ctx *ctx, const xs_entity_ops *ops, const step_req *req, batch *b,
                          json_t *errors, json_t *counts, push_req *p);

/* push_reread fetches Xero's current version of the records a push is about to update (xids:
 * their Xero ids, at most 50) and decides each again against its base, as a pull of them
 * would (apply_page; nothing queued: the push that follows sends what is to go). Xero has no
 * conditional write, so this is how a Xero edit made since the run's pull (or since a
 * failed send) is decided rather than overwritten. *outcome is NULL when it was done, else
 * the call's ("retry", ...), with *call. */
xs_err push_reread(xs_svc_ctx *ctx, const step_req *req, const settings *set,
                   const xs_entity_ops *ops, const json_t *xids, json_t *counts, xs_xero_call *call,
                   const char **outcome);

/* push_items_ids lists the local ids (or, xero, the Xero ids) of a request's items (new). */
json_t *push_items_ids(const json_t *items, bool xero);

/* push_release_claims lets go, in the open transaction, of the step's (req->step) claims but
 * (keep_creates) those of creates Xero may hold, queueing the records another push wanted
 * meanwhile. */
xs_err push_release_claims(xs_svc_ctx *ctx, const step_req *req, bool keep_creates);

/* push_build_fresh chooses a new step's batch: the given local ids, or the next of a full scan,
 * until a batch of one kind is full (or SCAN_MAX records were read, or the records end); with
 * ask->defer_partial, records short of a whole request are left to the next steps. */
xs_err push_build_fresh(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                        json_t *counts, batch *b, json_t *errors, push_req *p);

#endif
