/*
 * query.h: list reads: the `where` parser, order, the IDs/ContactIDs/InvoiceNumbers/
 * searchTerm filters and paging, served from the class trees when it can. Owns the parsed
 * where clause and the result page it returns.
 */
#ifndef XS_SIM_QUERY_H
#define XS_SIM_QUERY_H

#include "kinds.h"

typedef struct sim_where sim_where;

/* sim__where_parse parses a `where` expression for a kind; NULL with a message in why (200
 * bytes) on a syntax error or unknown field. */
sim_where *sim__where_parse(const sim_kind_ops *ops, const char *text, char *why);
/* sim__where_free frees a parsed where clause (NULL accepted). */
void sim__where_free(sim_where *w);
/* sim__where_class_constrained tells whether w tests a class field (Status, ContactStatus,
 * ...): then the kind's default class filter (e.g. no archived contacts) gives way. */
bool sim__where_class_constrained(const sim_where *w);

typedef struct sim_query {
    const sim_kind_ops *ops;
    sim_tenant *t;
    int64_t page; /* 0: unpaged */
    int64_t page_size;
    bool has_ims;
    xs_time ims;
    const char *order; /* raw, may be NULL */
    sim_where *where;
    uint32_t mask; /* classes allowed */
    xs_uuid *ids;  /* IDs filter */
    size_t nids;
    xs_uuid *contact_ids; /* invoices: ContactIDs */
    size_t ncontact_ids;
    char **numbers; /* InvoiceNumbers */
    size_t nnumbers;
    const char *search; /* searchTerm */
    xs_time now;
} sim_query;

typedef struct sim_result {
    uint32_t *idx; /* the page's records (new) */
    size_t n;
    uint32_t total; /* itemCount */
} sim_result;

/* sim__query_run executes q (tenant lock held for reading). XS_EINVAL with why for an order
 * the simulator cannot parse; XS_EUNSUPPORTED when the tenant is above the high-volume
 * threshold and the query is not an efficient one. */
xs_err sim__query_run(sim_query *q, sim_result *out, int64_t high_volume, char *why);

#endif
