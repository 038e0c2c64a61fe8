/*
 * appbudget.h: the app-wide rate budget shared by every orchestrator of a deployment through
 * PostgreSQL (migration 0021, sync.app_budget_grants). Xero limits the calls of the whole app
 * per minute; each orchestrator counts its own in budget.c, and this module makes their sum
 * stay within XS_BUDGET_APP_MINUTE as well.
 *
 * An orchestrator takes the app's permits in small chunks from a ledger in PostgreSQL
 * (sync.app_budget_take: one transaction under an advisory lock, which grants at most what
 * leaves the chunks of every holder counted in the last window at the limit). A chunk is
 * spent only within ttl_ms after it was asked for, and counts for everyone from its grant
 * until window_ms + ttl_ms have passed, so any call made with it is counted for a whole window
 * after it left. The local pool holds one chunk at a time; a thread of its own keeps it topped
 * up, so a step's claim never waits on the database: orch_appbudget_take answers from memory,
 * and asks the thread for more when the pool runs low. Permits a step held but did not use go
 * back to the chunk they came from while it may still be spent, else back to the ledger
 * (sync.app_budget_give_back), as does what is left of a chunk when its time is up. Calls a
 * step made after its chunk's time was up (a pull reading pages) are written to the ledger as
 * made (a forced grant), so the others count them too.
 *
 * A holder that dies (kill -9) leaves its chunks counted until they leave the window, which
 * errs on the safe side. With one orchestrator the ledger holds only its own chunks, and the
 * budget behaves as budget.c alone would, a chunk's time to live later at most.
 */
#ifndef ORCH_APPBUDGET_H
#define ORCH_APPBUDGET_H

#include <stdint.h>

#include "xs/err.h"
#include "xs/log.h"

typedef struct orch_appbudget_opts {
    const char *db_url; /* the thread's own connection (borrowed; copied) */
    const char *holder; /* who holds the chunks, in the ledger (borrowed; copied) */
    int64_t limit;      /* calls per window across the deployment (XS_BUDGET_APP_MINUTE) */
    int64_t window_ms;  /* the window, with its margin (XS_BUDGET_MINUTE_WINDOW + _MARGIN) */
    int64_t chunk;      /* permits asked for at a time (XS_BUDGET_SHARED_CHUNK) */
    int64_t ttl_ms;     /* a chunk is spent within this long (XS_BUDGET_SHARED_TTL) */
    xs_log *log;        /* borrowed; may be NULL */
    /* Called by the pool's thread (no lock of the pool held) when a grant has filled the pool:
     * steps that found it empty may go now (the engine wakes its executors). May be NULL. */
    void (*granted)(void *arg);
    void *arg;
} orch_appbudget_opts;

typedef struct orch_appbudget orch_appbudget;

/* orch_appbudget_create makes a pool with no permits yet (new); nothing runs until
 * orch_appbudget_start. */
xs_err orch_appbudget_create(orch_appbudget **out, const orch_appbudget_opts *opts);

/* orch_appbudget_start starts the thread that keeps the pool topped up. */
xs_err orch_appbudget_start(orch_appbudget *a);

/* orch_appbudget_destroy stops the thread, gives back to the ledger what the pool holds and
 * what steps gave back (best effort), and frees a; NULL and a pool never started are
 * accepted. */
void orch_appbudget_destroy(orch_appbudget *a);

/* orch_appbudget_take takes up to want permits from the local pool for a step of tenant
 * (borrowed) acquiring at now_ms (monotonic): how many, 0 when it has none now, with *wait_ms
 * (when not NULL) a hint of when to ask again. Never touches the database. */
int64_t orch_appbudget_take(orch_appbudget *a, const char *tenant, int64_t now_ms, int64_t want,
                            int64_t *wait_ms);

/* orch_appbudget_wait is 0 when the local pool has permits now, else a hint of how long until
 * it may (ms, at least 1), having asked the thread for more (opts.granted may tell of the
 * grant sooner). Takes nothing. */
int64_t orch_appbudget_wait(orch_appbudget *a, int64_t now_ms);

/* orch_appbudget_give ends the step of tenant that took `granted` permits at acquired_ms and
 * made `used` calls (0..granted): what it did not use goes back. */
void orch_appbudget_give(orch_appbudget *a, const char *tenant, int64_t now_ms, int64_t acquired_ms,
                         int64_t granted, int64_t used);

#endif
