/* pull.c: see pull.h. */
#include "engine/pull.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "xs/json.h"

#include "engine/cursor.h"
#include "engine/pull_write.h"
#include "engine/refs.h"
#include "engine/runtime.h"

/* pull_req_check checks the decoded fields of r in the order a request has always been
 * answered in (since, page, page_size, max_pages, filter, ids or types, after), failing the
 * request on the first at fault; cursor is the request's. */
static xs_err pull_req_check(xs_svc_ctx *ctx, pull_req *r, const json_t *cursor)
{
    const char *since_text = xs_json_str_or(cursor, "since", NULL);
    if (since_text != NULL && xs_time_parse_iso(since_text, &r->start.since) != XS_OK) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.since", "not an ISO 8601 time");
    }
    if (r->start.number < 1 || r->start.number > 10000000) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.page", "page must be from 1");
    }
    if (r->page_size < 1 || r->page_size > 1000) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "page_size", "page_size must be 1 to 1000");
    }
    if (r->max_pages < 1 || r->max_pages > MAX_PAGES) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "max_pages", "max_pages must be 1 to %d",
                                 MAX_PAGES);
    }
    if (!cursor_filter_ok(r->filter)) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "filter",
                                 "filter takes date_from (YYYY-MM-DD) and statuses (1 to 8 "
                                 "names, A-Z)");
    }
    char path[PULL_FIRST_PATH_MAX];
    if (cursor_path(r->step.ops, r->ids, r->start.number, r->page_size, r->set.types, r->filter,
                    NULL, path, sizeof(path)) != XS_OK) {
        return r->ids != NULL
                   ? xs_svc_fail_field(ctx, XS_EINVAL, "ids",
                                       "ids must be Xero ids (UUIDs), as many as fit in a request")
                   : xs_svc_fail_field(ctx, XS_EINVAL, "settings.types", "too many types");
    }
    if (!cursor_read(cursor, &r->start)) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.after",
                                 "after takes at most %d Xero ids (UUIDs), with since; tiebreak "
                                 "is true or false",
                                 TIEBREAK_MAX);
    }
    return XS_OK;
}

xs_err pull_req_read(xs_svc_ctx *ctx, const xs_msg *msg, pull_req *out)
{
    memset(out, 0, sizeof(*out));
    if (step_req_read(ctx, msg, &out->step) != XS_OK) {
        return XS_EINVAL;
    }
    xs_err e = step_settings_read(ctx, out->step.ops, &out->step, &out->set);
    if (e != XS_OK) {
        return e;
    }
    const json_t *body = msg->body;
    const json_t *cursor = json_object_get(body, "cursor");
    out->ids = json_object_get(body, "ids");
    out->filter = json_object_get(body, "filter");
    out->start.number = 1;
    out->page_size = DEFAULT_PAGE;
    out->max_pages = 1;
    out->max_ms = 0;
    xs_json_get_int(cursor, "page", &out->start.number);
    xs_json_get_int(body, "page_size", &out->page_size);
    xs_json_get_int(body, "max_pages", &out->max_pages);
    xs_json_get_int(body, "max_ms", &out->max_ms);
    if ((e = pull_req_check(ctx, out, cursor)) != XS_OK) {
        pull_req_fini(out);
    }
    return e;
}

void pull_req_fini(pull_req *r)
{
    step_settings_fini(&r->set);
    memset(&r->set, 0, sizeof(r->set));
}

/* One pull step as it goes: what it asks of each page and what its pages came to. */
typedef struct pull_run {
    xs_svc_ctx *ctx;
    const pull_req *req;
    pull_ask ask;           /* the same for each page */
    int64_t t0;             /* when it started (monotonic ms), for max_ms */
    json_t *counts;         /* over its pages (STEP_PULL_COUNTS; owned, NULL once replied) */
    blocked_ids blocked;    /* records that wait for others (Xero ids) */
    xs_json_arena_pos mark; /* each page's values are given back when it is done */
    int64_t calls, pages;
    xs_time high, resume;
    int64_t left; /* records of the pull still to read after its last page, -1: not known */
    page stop;    /* only its cursor: where the next step starts, when stop.number > 0 */
    xs_xero_call last_call;
    bool seen[PULL_IDS_MAX]; /* which of req->ids came */
} pull_run;

/* pull_run_init starts the tally of a step of request r. */
static bool pull_run_init(pull_run *run, xs_svc_ctx *ctx, const pull_req *r)
{
    memset(run, 0, sizeof(*run));
    run->ctx = ctx;
    run->req = r;
    run->ask = (pull_ask){.ops = r->step.ops,
                          .ids = r->ids,
                          .types = r->set.types,
                          .filter = r->filter,
                          .page_size = r->page_size,
                          .bearer = step_or_empty(r->step.bearer),
                          .tenant_id = step_or_empty(r->step.tenant_id),
                          .conn = r->step.conn};
    run->t0 = xs_clock_mono_ms();
    run->left = -1;
    run->counts = step_counts_new(STEP_PULL_COUNTS);
    return run->counts != NULL;
}

/* pull_run_fini releases the tally of a step. */
static void pull_run_fini(pull_run *run)
{
    json_decref(run->counts);
    blocked_fini(&run->blocked);
}

/* pull_first_failed answers a step whose first page did not come (cur->outcome), having
 * written nothing: done, to ask again without a tie-break Xero refused, or the outcome. */
static xs_err pull_first_failed(pull_run *run, page *cur, json_t **reply)
{
    json_t *counts = run->counts;
    run->counts = NULL; /* the reply takes it */
    if (cur->outcome == TIEBREAK_REFUSED) {
        /* Done, having read nothing: the next step asks for the page without it. */
        cursor_tiebreak_refused(run->ctx, cur);
        page next = cursor_of(cur);
        *reply = json_pack("{s:s, s:o, s:o, s:I, s:o}", "outcome", "done", "counts", counts, "call",
                           step_call_json(&cur->call), "calls", (json_int_t)1, "next",
                           cursor_json(&next));
        page_fini(cur);
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    const char *o = cur->outcome;
    page_fini(cur);
    xs_err e = step_outcome_reply(o, counts, &cur->call, cur->call.error, reply);
    if (e == XS_OK) {
        json_object_set_new(*reply, "calls", json_integer(1));
    }
    return e;
}

/* pull_ahead_start starts the helper thread fetching ahead, the page after cur, with the
 * worker's second client and read-ahead connection; false when it cannot start. in_arena:
 * cur's reply is in the worker's JSON arena (else the helper frees it meanwhile). */
static bool pull_ahead_start(pull_run *run, page *cur, page *ahead, bool in_arena, pthread_t *th)
{
    domain_worker *w = run->ctx->wstate;
    ahead->x = w->ahead;
    ahead->w = w; /* and its read-ahead connection */
    if (!in_arena) {
        /* Read: the helper frees it meanwhile, in the allocator arena of the helper that
         * made it (freeing it here contends with the helper's allocations). */
        ahead->drop = cur->resp.json;
        cur->resp.json = NULL;
    }
    if (pthread_create(th, NULL, page_fetch_main, ahead) == 0) {
        return true;
    }
    cur->resp.json = ahead->drop;
    ahead->drop = NULL;
    return false;
}

/* pull_page_write reads and writes page cur (fetched) while, when the step may read another
 * (more: there is one), the helper fetches it into ahead (*fetching). On failure ahead is
 * released and cur is not. */
static xs_err pull_page_write(pull_run *run, page *cur, page *ahead, bool more, bool in_arena,
                              bool *fetching)
{
    xs_svc_ctx *ctx = run->ctx;
    const pull_req *r = run->req;
    pthread_t th;
    *fetching = false;
    xs_err e = cur->read_done ? cur->read_err : page_read(cur);
    if (e != XS_OK) {
        e = xs_svc_fail(ctx, e, true, "cannot read the page");
    }
    bool in_time = r->max_ms <= 0 || xs_clock_mono_ms() - run->t0 < r->max_ms;
    if (e == XS_OK && more && run->pages + 1 < r->max_pages && in_time) {
        *fetching = pull_ahead_start(run, cur, ahead, in_arena, &th);
    }
    if (e == XS_OK) {
        e = apply_page(ctx, &r->step, &r->set, cur, run->counts, &run->blocked, true);
    }
    if (*fetching) {
        pthread_join(th, NULL);
        step_audit(ctx, &r->step, &ahead->call);
        run->calls++;
    }
    run->last_call = *fetching ? ahead->call : cur->call;
    if (e != XS_OK && *fetching) {
        page_fini(ahead);
    }
    return e;
}

/* pull_page_done tallies page cur, written, and gives it back (its values too). more: a page
 * follows it. */
static void pull_page_done(pull_run *run, page *cur, bool more)
{
    const json_t *ids = run->req->ids;
    run->pages++;
    if (cur->high > run->high) {
        run->high = cur->high;
    }
    for (size_t i = 0; ids != NULL && i < json_array_size(ids) && i < PULL_IDS_MAX; i++) {
        for (size_t j = 0; j < cur->nrec && !run->seen[i]; j++) {
            const char *id = xs_json_string_value(json_array_get(ids, i), NULL);
            run->seen[i] = id != NULL && strcasecmp(cur->recs[j].xero_id, id) == 0;
        }
    }
    if (!more) {
        run->left = 0;
    } else if (cur->item_count >= 0) {
        /* Xero counted the records of this page's query: those after this page are left. */
        int64_t read = (cur->number - 1) * run->ask.page_size + (int64_t)cur->n;
        run->left = cur->item_count > read ? cur->item_count - read : 0;
    } else {
        run->left = -1;
    }
    if (!more && ids == NULL) {
        /* The last page: every record changed before it was asked for (less a margin for
         * Xero's clock) has been read, so the next pull may start there. */
        run->resume = ((cur->asked_at - XS_DOMAIN_RESUME_MARGIN_MS) / 1000) * 1000;
        run->resume = run->resume < cur->since ? cur->since : run->resume;
    }
    /* Here, not on a helper: the worker's writes may have put values of its JSON arena into
     * the records (references translated), which the arena's release ends. */
    page_fini(cur);
    xs_json_arena_release(run->mark);
}

/* pull_stopped ends the step at page cur, which could not be read or written after others
 * were: the step is done, and the next one starts at cur. */
static void pull_stopped(pull_run *run, page *cur)
{
    xs_svc_ctx *ctx = run->ctx;
    xs_log_warn(ctx->proc->log, "sync.pull_stopped", "{s:s, s:I, s:s}", "entity",
                run->ask.ops->info->name, "page", (json_int_t)cur->number, "reason", ctx->err);
    run->stop = cursor_of(cur);
    ctx->err[0] = '\0';
    ctx->field[0] = '\0';
    page_fini(cur);
}

/* pull_pages reads the step's pages from cur, its first (fetched, with no outcome), each
 * written while the next is fetched, until the last page, the step's budget of pages or
 * time, or a failure; it gives every page back. An error when the first could not be
 * written; after that a failure stops the step (run->stop) and is not one. */
static xs_err pull_pages(pull_run *run, page *cur)
{
    page ahead;
    bool in_arena = run->mark.set; /* The first reply is in the arena; the helper's are not. */
    for (;;) {
        bool more = cursor_next(cur, &ahead), fetching;
        xs_err e = pull_page_write(run, cur, &ahead, more, in_arena, &fetching);
        if (e != XS_OK) {
            if (run->pages == 0) {
                page_fini(cur);
                return e;
            }
            /* Written up to the page before: the next step starts at this one. */
            pull_stopped(run, cur);
            return XS_OK;
        }
        pull_page_done(run, cur, more);
        in_arena = false;
        if (!more) {
            return XS_OK;
        }
        if (!fetching) {
            /* As many pages (or as long) as the step may read: the next step goes on. */
            run->stop = cursor_of(&ahead);
            return XS_OK;
        }
        *cur = ahead;
        if (cur->outcome != NULL) {
            /* The next page could not be fetched (a 429, say): the next step reads it, once
             * the budget has taken in what this reply said. */
            if (cur->outcome == TIEBREAK_REFUSED) {
                cursor_tiebreak_refused(run->ctx, cur);
            }
            run->stop = cursor_of(cur);
            page_fini(cur);
            return XS_OK;
        }
    }
}

/* pull_reply is the reply of a step whose pages were read (new): its counts, the last call,
 * the high-water mark, where the next step starts or the next pull resumes, the records
 * waiting for others, and for a pull by ids those that did not come. */
static json_t *pull_reply(const pull_run *run)
{
    const json_t *ids = run->req->ids;
    json_t *out =
        json_pack("{s:s, s:O, s:o, s:I}", "outcome", "done", "counts", run->counts, "call",
                  step_call_json(&run->last_call), "calls", (json_int_t)run->calls);
    if (out == NULL) {
        return NULL;
    }
    char iso[XS_TIME_ISO_MAX];
    if (run->high > 0) {
        xs_time_format_iso(run->high, iso);
        json_object_set_new(out, "high_water", json_string(iso));
    }
    if (run->left >= 0) {
        /* the run's progress: an estimate of what the pull has still to read */
        json_object_set_new(out, "left", json_integer(run->left));
    }
    if (run->stop.number > 0) {
        json_object_set_new(out, "next", cursor_json(&run->stop));
    } else if (ids == NULL) {
        xs_time_format_iso(run->resume, iso);
        json_object_set_new(out, "resume", json_string(iso));
    }
    json_t *bj = blocked_json(&run->blocked);
    if (bj != NULL) {
        /* The orchestrator fetches what they refer to, then them (in a final step). */
        json_object_set_new(out, "blocked", bj);
    }
    if (ids != NULL) {
        json_t *missing = json_array();
        for (size_t i = 0; i < json_array_size(ids) && i < PULL_IDS_MAX; i++) {
            if (!run->seen[i]) {
                json_array_append(missing, json_array_get(ids, i));
            }
        }
        json_object_set_new(out, "missing", missing);
    }
    return out;
}

/* A pull step reads up to max_pages pages one after another (the orchestrator holds a
 * permit of the rate budget for each). While a page is decided and written, the helper
 * thread fetches the next one with the worker's second client, so Xero's time and ours
 * overlap; there is never more than one call in flight. A page that cannot be fetched or
 * written after others were ends the step there: it is done, and its `next` cursor is
 * that page, which the following step reads again (and, failing again as its first page,
 * reports as any failure). After max_ms the step asks for no new page, so a push of the
 * entity waits for it that long at most. */
xs_err xs_domain_pull(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    pull_req r;
    xs_err e = pull_req_read(ctx, msg, &r);
    if (e != XS_OK) {
        return e;
    }
    pull_run run;
    if (!pull_run_init(&run, ctx, &r)) {
        pull_run_fini(&run);
        pull_req_fini(&r);
        return XS_ENOMEM;
    }
    domain_worker *w = ctx->wstate;
    run.mark = xs_json_arena_mark();
    page cur = r.start;
    cur.x = w->x;
    cur.db = ctx->pg;
    cur.w = w;
    cur.ask = &run.ask;
    page_fetch(&cur);
    step_audit(ctx, &r.step, &cur.call);
    run.calls = 1;
    if (cur.outcome != NULL) {
        e = pull_first_failed(&run, &cur, reply);
    } else if ((e = pull_pages(&run, &cur)) == XS_OK) {
        *reply = pull_reply(&run);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    pull_run_fini(&run);
    pull_req_fini(&r);
    return e;
}
