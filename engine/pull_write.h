/*
 * engine/pull_write.h: applying a decided page. In one transaction: lock the local rows,
 * decide again what changed since they were read, write local rows, mappings, memos,
 * conflicts and the outbox entries, stamped with the step's transaction id; retried whole
 * on a serialization failure. It never calls Xero.
 */
#ifndef XS_ENGINE_PULL_WRITE_H
#define XS_ENGINE_PULL_WRITE_H

#include "engine/domain.h"
#include "engine/page.h"
#include "engine/refs.h"
#include "engine/step.h"

/* apply_page decides each record of a page read and writes the outcome, in one transaction
 * marked as the engine's own; counts add up over the pages of a step. A write of the host
 * application to a row the page would write over, made after the page read it, makes the
 * page decide again (APPLY_TRIES times at most): a local edit is decided, never overwritten
 * unseen. queue: records to send to Xero go into the outbox. */
xs_err apply_page(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                  json_t *counts, blocked_ids *blocked, bool queue);

#endif
