/*
 * engine/pull_decide.h: what a pulled page comes to, before anything is written. For each
 * record: its mapping, an in-doubt create of ours it is, a first-link match, the local row,
 * a held conflict; then the decision (import, update locally, send to Xero, conflict, nothing)
 * gathered in a page_out. Reads PostgreSQL; writes nothing.
 */
#ifndef XS_ENGINE_PULL_DECIDE_H
#define XS_ENGINE_PULL_DECIDE_H

#include "engine/domain.h"
#include "engine/page.h"
#include "engine/refs.h"
#include "engine/step.h"

/* What a page's records come to, gathered before one transaction writes it. */
typedef struct page_out {
    json_t *maps;      /* mappings to write (map_add) */
    xs_rows creates;   /* new local rows (xs_domain_write_local) */
    json_t *created;   /* new local rows with their mappings (map_write_created) */
    xs_rows updates;   /* local rows to write */
    json_t *conflicts; /* map_conflict_add */
    json_t *queue;     /* local ids to send to Xero */
    json_t *memos;     /* map_write_memos */
    json_t *linked;    /* local ids of in-doubt creates found in Xero (their claims go) */
    json_t *counts;    /* this try's counts (STEP_PULL_COUNTS) */
    blocked_ids blocked;
} page_out;

/* page_out_init makes o empty; false when out of memory (page_out_fini still applies). */
bool page_out_init(page_out *o);

/* page_out_fini releases o. */
void page_out_fini(page_out *o);

/* What is known here of a page's records, read before deciding them. */
typedef struct page_known {
    json_t *mappings;    /* by Xero id (map_load_sums) */
    json_t *claimed;     /* by Xero id: {"local_id", "sent"}, an in-doubt create of ours */
    json_t *matched;     /* by Xero id: a local row matched on first link (match_assign) */
    xs_local_rows local; /* the local rows (ops->load_local) */
    json_t *pending;     /* local ids with a conflict held for a person */
    json_t *ignored;     /* local ids whose latest conflict a person ignored (mappings.h) */
    json_t *sent;        /* by local id: what a push of ours not yet recorded sent (an update) */
} page_known;

/* page_known_fini releases k and empties it. */
void page_known_fini(page_known *k);

/* page_lookup reads what is known here of a page's records (refs already translated). */
xs_err page_lookup(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                   page_known *k);

/* decide_page decides each record of the page into o. Every mapping written for a record
 * keeps its raw sum and parts (page_memo_add, run after each record however its branch ends). */
xs_err decide_page(xs_svc_ctx *ctx, const step_req *req, const settings *set, page *pg,
                   const json_t *on, bool queue, const page_known *k, page_out *o);

#endif
