/*
 * engine/cursor.h: where a pull is and where it goes next. The path of a page (paged,
 * unpaged, by ids; types, date and status filters; the keyset tie-break of the records of one
 * second), the next page after one read, and the cursor a step's reply carries so the next
 * step resumes exactly there. Pure over a page's fields: no database, no Xero.
 */
#ifndef XS_ENGINE_CURSOR_H
#define XS_ENGINE_CURSOR_H

#include "engine/domain.h"
#include "engine/page.h"

#define DEFAULT_PAGE 1000

#define MAX_PAGES 100 /* of one pull step */

/* cursor_filter_ok checks a pull's filter: {"date_from": "YYYY-MM-DD"} (records dated from then
 * on) and/or {"statuses": [names]} (1 to 8 Xero statuses, A-Z). */
bool cursor_filter_ok(const json_t *filter);

/* cursor_path builds into path (cap bytes) the list path of a pull's page number of page_size
 * records, or of the records ids names (an array of Xero ids, or NULL; then types, filter and
 * tb do not apply); types (checked by step_settings_read with xs_entity_types_check, so nothing
 * needs quoting in the filter) limits it to those Types, filter (cursor_filter_ok) to a date
 * and statuses, and tb (may be NULL) leaves out the records of its second the page before
 * read. XS_EINVAL when an id is not a UUID or the path does not fit. */
xs_err cursor_path(const xs_entity_ops *ops, const json_t *ids, int64_t number, int64_t page_size,
                   const json_t *types, const json_t *filter, const tiebreak *tb, char *path,
                   size_t cap);

/* cursor_next tells whether p is the last page and, when not, the next page's cursor: keyset
 * on UpdatedDateUTC (ascending), whole seconds as If-Modified-Since takes them, page numbers
 * only within one second. The last page is a short one, or (Xero's pagination object, when
 * the reply has one) the last of pageCount, which saves asking for an empty page after a
 * full one. */
bool cursor_next(const page *p, page *next);

/* cursor_tiebreak_refused logs that Xero refused page p's tie-break. */
void cursor_tiebreak_refused(xs_svc_ctx *ctx, const page *p);

/* cursor_of gives p's cursor alone: where a step stops, for the next to start at. A page
 * whose tie-break Xero refused is asked again without one, and so is the rest of the pull. */
page cursor_of(const page *p);

/* cursor_json is p's cursor as a step's reply carries it (new): {"since" (or null), "page",
 * "after" (the tie-break's ids, when any), "tiebreak": false (when Xero refused one)}. */
json_t *cursor_json(const page *p);

/* cursor_read takes a step's cursor's tie-break (cursor_json) into p; false when it is
 * not one. */
bool cursor_read(const json_t *cursor, page *p);

#endif
