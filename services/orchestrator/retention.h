/*
 * retention.h: history kept for a while, then pruned (retention.c).
 *
 * Finished runs with their steps and per-item errors, the audit of calls to Xero, the
 * outbox's processed changes and processed webhook events are deleted once older than their
 * XS_RETAIN_* period, by one thread of the orchestrator's scheduler: a pass every
 * XS_RETAIN_EVERY (the first at start), at most one at a time across orchestrators (a
 * PostgreSQL advisory lock), in statements of at most XS_RETAIN_BATCH rows, each its own
 * short transaction that skips rows others hold and gives up on a lock it would wait for,
 * with XS_RETAIN_PAUSE between them. A period of 0 keeps that history forever.
 *
 * The cut-offs come from this process's clock (xs_clock_now), passed to SQL as parameters.
 * What the engine reads to work correctly is never deleted, whatever its age: runs not
 * finished, or with a step not finished or holding a push claim, or that a PENDING conflict
 * points at; the latest run of each kind of a connection (same mode, entities and status;
 * the latest by start and by end), which the realtime push, the webhook safety net and the
 * statistics ask for; changes not yet handed to a run; events pending or in progress, a
 * tenant's latest, and those received within a day or XS_WEBHOOK_SILENCE; the calls of the
 * budget's day window. Those windows are measured with the database's clock, the one the
 * engine reads them with.
 */
#ifndef ORCH_RETENTION_H
#define ORCH_RETENTION_H

#include "orch.h"
#include "xs/config.h"
#include "xs/err.h"

/* orch_retention_read reads the XS_RETAIN_* variables of cfg (borrowed) into o->retain. A
 * period that is neither 0 nor at least an hour is refused: XS_ECONFIG with a message naming
 * the variable in err (XS_CONFIG_ERR_MAX bytes). */
xs_err orch_retention_read(orch *o, const xs_config *cfg, char *err);

/* orch_retention_start starts the pruning thread of o; orch_retention_stop waits for it to
 * end once o->stop is set (a pass stops between two statements). */
xs_err orch_retention_start(orch *o);
void orch_retention_stop(orch *o);

#endif
