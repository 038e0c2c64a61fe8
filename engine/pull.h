/*
 * engine/pull.h: the sync.pull handler. Its request decoded once (pull_req: the step's common
 * part, its settings, ids, cursor, page size and budget of pages and time, filter) and checked
 * field by field; then the step's pages, one after another (the next fetched on the read-ahead
 * thread while one is written), until its page budget, the end of the list, or a failure; the
 * reply with its counts, cursor and the last call's rate-limit headers. It holds only the
 * request and the step's tally; every stage is another room's.
 */
#ifndef XS_ENGINE_PULL_H
#define XS_ENGINE_PULL_H

#include "engine/domain.h"
#include "engine/page.h"
#include "engine/step.h"

/* Ids of one pull by id: the most a sync.pull names (proto/proto.c). */
#define PULL_IDS_MAX 50

/* A sync.pull request, decoded and checked once (pull_req_read): what every stage of the pull
 * reads of it. The JSON values are borrowed from the message, which outlives it. */
typedef struct pull_req {
    step_req step;        /* the common part: connection, entity, token, run, step */
    settings set;         /* the connection's settings for the entity (owned: pull_req_fini) */
    const json_t *ids;    /* Xero ids to fetch (at most PULL_IDS_MAX), or NULL: a list */
    const json_t *filter; /* date_from and statuses (cursor_filter_ok), or NULL */
    page start;           /* only its cursor: since, number, after, no_tiebreak (cursor_read) */
    int64_t page_size;    /* records a page, 1 to 1000 */
    int64_t max_pages;    /* pages the step may read, 1 to MAX_PAGES */
    int64_t max_ms;       /* after this long the step asks for no new page; 0: no limit */
} pull_req;

/* pull_req_read decodes msg into *out and checks each field, or fails the request (XS_EINVAL
 * naming the field at fault, through xs_svc_fail_field). On success *out holds settings that
 * pull_req_fini releases. */
xs_err pull_req_read(xs_svc_ctx *ctx, const xs_msg *msg, pull_req *out);

/* pull_req_fini releases what pull_req_read holds. */
void pull_req_fini(pull_req *r);

/* xs_domain_pull serves sync.pull (proto/README.md). */
xs_err xs_domain_pull(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

#endif
