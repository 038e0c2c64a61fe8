/*
 * engine/page.h: one page of a pull. Fetching it from Xero (on the worker's thread or the
 * read-ahead helper), setting aside the records whose raw sums say they are unchanged without
 * parsing them, and reading the others into canonical records. It calls Xero once a page,
 * reads raw sums from PostgreSQL, and writes nothing.
 */
#ifndef XS_ENGINE_PAGE_H
#define XS_ENGINE_PAGE_H

#include "engine/domain.h"
#include "engine/runtime.h"

/* What a pull's first page must fit in, checked when the step starts: a list page with its
 * filters, or 50 ids with IDs= (a webhook run's fetches, and records others wait for). */
#define PULL_FIRST_PATH_MAX (XS_XERO_PATH_MAX * 4)

#define TIEBREAK_MAX 20 /* records of a second a keyset page may ask Xero to leave out */

/* The keyset's tie-break of a page (cursor_path): the records of the second the page starts at
 * (since) that the page before read, left out unless Xero changed them after that second. */
typedef struct tiebreak {
    xs_time since;
    const char (*ids)[XS_ID_MAX];
    size_t n;
} tiebreak;

/* A record of a page, after xs_domain_from_xero. */
typedef struct pulled {
    char xero_id[XS_ID_MAX];
    json_t *rec; /* NULL when known */
    xs_time at;
    char sum[2 * XS_SHA256_LEN + 1]; /* rec's checksum */
    char raw[2 * XS_SHA256_LEN + 1]; /* xs_sync_raw_sum of its text as sent, or "" */
    bool known;    /* its raw sum says it is unchanged: not parsed, nothing to do */
    bool blocked;  /* a record it refers to has no mapping yet (refs_translate) */
    json_t *parts; /* the Xero ids of its parts (ops->read_parts), or NULL */
} pulled;

/* page_memo_add gives the mappings added to list since *seen (those of one pulled record, r)
 * r's raw sum and what it reads as: a memo that holds whatever the base becomes; and the
 * Xero ids of its parts. */
void page_memo_add(json_t *list, size_t *seen, const pulled *r);

/* A page's outcome when Xero refused its tie-break (page_fetch). */
extern const char TIEBREAK_REFUSED[];

/* What a pull asks for, the same for each of its pages (borrowed from the request). */
typedef struct pull_ask {
    const xs_entity_ops *ops;
    const json_t *ids;    /* fetch by Xero id, or NULL */
    const json_t *types;  /* settings.types, or NULL */
    const json_t *filter; /* the step's filter (cursor_filter_ok), or NULL */
    int64_t page_size;
    const char *bearer, *tenant_id;
    const char *conn; /* the connection, whose mappings hold the raw sums */
} pull_ask;

/* One page: its cursor, then what page_fetch and page_read found. page_fetch touches
 * neither the database nor the worker's context, so it runs on the helper thread too. */
typedef struct page {
    xs_time since; /* If-Modified-Since, 0 for none */
    int64_t number;
    /* The tie-break: the records of the second since that the page before read (nafter of
     * them), which this page (and the others of that second) leaves out; no_tiebreak: Xero
     * refused one in this pull, so its pages re-read those records instead. */
    char after[TIEBREAK_MAX][XS_ID_MAX];
    size_t nafter;
    bool no_tiebreak;
    xs_xero *x; /* the client to call with */
    /* the connection to read the raw sums with: db, or when NULL the worker's read-ahead
     * one (the helper thread's); neither: every record is parsed */
    xs_pg *db;
    domain_worker *w;
    const pull_ask *ask;
    xs_xero_resp resp;
    xs_xero_call call;
    const char *outcome; /* NULL: the page came */
    xs_time asked_at;
    int64_t call_ms, read_ms, page_count;
    /* item_count: Xero's pagination.itemCount, the records of this page's query (its since,
     * filters and tie-break) over all its pages; -1 when the reply has none (page_fetch) */
    int64_t item_count;
    size_t n;     /* records Xero sent */
    xs_time last; /* the last readable record's UpdatedDateUTC: where the next page starts */
    /* the ids of the readable records of last's second, ntail of them; TIEBREAK_MAX + 1 when
     * there are more than TIEBREAK_MAX (then the next page re-reads them) */
    char tail[TIEBREAK_MAX][XS_ID_MAX];
    size_t ntail;
    json_t *drop; /* (helper thread) the page before's reply, to free meanwhile */
    /* the helper thread read the records too (page_read), which gave read_err */
    bool read_done;
    xs_err read_err;
    /* page_fetch: the records known unchanged by their raw sums, and the raw sums of the
     * others (aligned with the reply's list, which holds only them) */
    pulled *known;
    size_t nknown;
    char (*raws)[2 * XS_SHA256_LEN + 1];
    pulled *recs; /* page_read: the records read (the parsed ones first, then the known) */
    size_t nrec, nparsed;
    int64_t unreadable;
    json_t *errors, *xids; /* the unreadable ones; the ids of the read ones */
    xs_time high;          /* latest UpdatedDateUTC */
} page;

/* page_fini releases what page_fetch and page_read hold in p (its cursor stays). */
void page_fini(page *p);

/* page_fetch makes the page's call and finds where the next page would start. */
void page_fetch(page *p);

/* page_fetch_main is the helper thread's: the page's call, then its records read, so that the
 * worker finds them ready when it has written the page before. */
void *page_fetch_main(void *arg);

/* page_read reads the page's records into their canonical form and checksums. */
xs_err page_read(page *p);

#endif
