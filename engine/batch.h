/*
 * engine/batch.h: what one push request holds. The local rows that may differ from Xero
 * (a scan, or the step's ids), each decided against its base and turned into Xero's write
 * item, a retire or a recreate, gathered by kind until one kind fills a request (50, or one
 * delete). Reads PostgreSQL; writes nothing; never calls Xero.
 */
#ifndef XS_ENGINE_BATCH_H
#define XS_ENGINE_BATCH_H

#include "engine/domain.h"
#include "engine/step.h"
#include "engine/push_ask.h"
#include "engine/refs.h"

#define SCAN_MAX 20000

#define SCAN_READ 1000

/* batch_candidates lists the local ids a push step looks at (*ids, new): the given ones
 * (ask->local_ids), or the next ids of a full scan after ask->scan_after (*next_scan: where the
 * scan goes on; "" when it is over). */
xs_err batch_candidates(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask,
                        const char *org, json_t **ids, char *next_scan, bool *scan);

/* What a push request holds: one kind of write, so that a retry can be judged whole. A
 * create cannot overwrite anything and is sent again byte for byte; an update can, so it is
 * re-read first; Xero deletes some records (payments) one request each. */
typedef enum batch_kind {
    BATCH_NONE = 0,
    BATCH_CREATE = 1,
    BATCH_UPDATE = 2, /* updates and retires of records in Xero */
    BATCH_DELETE = 3, /* one retire, alone (xs_entity_ops.delete_one) */
} batch_kind;

/* BATCH_NAMES names each kind as a stored request says it ("create", ...). */
extern const char *const BATCH_NAMES[];

/* batch_kind_parse reads a kind's name, BATCH_NONE for any other text or NULL. */
batch_kind batch_kind_parse(const char *s);

/* A batch being built: the records to write, by kind (items [{local_id, xero_id, rec, at,
 * retire, recreate}] and their Xero items), until one kind is full; batch_finish then keeps
 * that kind (items, xitems, kind) and leaves the local ids of the others to the next steps
 * (again). */
typedef struct batch {
    json_t *by_kind[4], *x_by_kind[4];
    json_t *items, *xitems, *again;
    batch_kind kind;
} batch;

/* batch_init makes an empty batch; batch_fini lets go of what it holds. */
void batch_init(batch *b);

void batch_fini(batch *b);

/* batch_take adds a record of kind k to the batch (item, its Xero item x; both taken over). */
void batch_take(batch *b, batch_kind k, json_t *item, json_t *x);

/* batch_full tells whether one kind is full: the request it makes is then a whole one. */
bool batch_full(const batch *b);

/* batch_finish keeps the kind that is full (else the one with the most records) as the
 * request, and the local ids of the others as again. */
void batch_finish(batch *b);

/* batch_defer leaves every record taken so far to the next steps (their local ids to again),
 * emptying the batch. */
void batch_defer(batch *b);

/* batch_build chooses what of ids needs sending and adds it to the batch (b), one kind of
 * write: at most 50; *stop is where a scan must continue when it stopped early. Records
 * waiting for others go to blocked (or, on the records' last chance, ask->req->final, fail);
 * refusals before the call go to errors. */
xs_err batch_build(xs_svc_ctx *ctx, const xs_entity_ops *ops, const push_ask *ask, const char *org,
                   const json_t *ids, json_t *counts, batch *b, json_t *errors,
                   blocked_ids *blocked, char *stop);

#endif
