/* pull.c: see pull.h. */
#include "engine/pull.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xs/audit.h"
#include "xs/json.h"
#include "xs/uuid.h"
#include "engine/cursor.h"
#include "engine/page.h"
#include "engine/pull_write.h"
#include "engine/refs.h"
#include "engine/runtime.h"
#include "engine/step.h"

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
    step_req r;
    if (step_req_read(ctx, msg, &r) != XS_OK) {
        return XS_EINVAL;
    }
    const step_req *req = &r;
    const xs_entity_ops *ops = req->ops;
    settings set;
    xs_err e = step_settings_read(ctx, ops, req, &set);
    if (e != XS_OK) {
        return e;
    }
    json_t *ids = json_object_get(req->msg->body, "ids");
    json_t *cursor = json_object_get(req->msg->body, "cursor");
    int64_t number = 1, page_size = DEFAULT_PAGE, max_pages = 1, max_ms = 0;
    int64_t t0 = xs_clock_mono_ms();
    xs_json_get_int(cursor, "page", &number);
    xs_json_get_int(req->msg->body, "page_size", &page_size);
    xs_json_get_int(req->msg->body, "max_pages", &max_pages);
    xs_json_get_int(req->msg->body, "max_ms", &max_ms);
    xs_time since = 0;
    const char *since_text = xs_json_str_or(cursor, "since", NULL);
    if (since_text != NULL && xs_time_parse_iso(since_text, &since) != XS_OK) {
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.since", "not an ISO 8601 time");
    }
    if (number < 1 || number > 10000000) {
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.page", "page must be from 1");
    }
    if (page_size < 1 || page_size > 1000) {
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "page_size", "page_size must be 1 to 1000");
    }
    if (max_pages < 1 || max_pages > MAX_PAGES) {
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "max_pages", "max_pages must be 1 to %d",
                                 MAX_PAGES);
    }
    const json_t *filter = json_object_get(req->msg->body, "filter");
    if (!cursor_filter_ok(filter)) {
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "filter",
                                 "filter takes date_from (YYYY-MM-DD) and statuses (1 to 8 "
                                 "names, A-Z)");
    }
    char path[XS_XERO_PATH_MAX * 2];
    if (cursor_path(ops, ids, number, page_size, set.types, filter, NULL, path, sizeof(path)) !=
        XS_OK) {
        step_settings_fini(&set);
        return ids != NULL
                   ? xs_svc_fail_field(ctx, XS_EINVAL, "ids",
                                       "ids must be Xero ids (UUIDs), as many as fit in a request")
                   : xs_svc_fail_field(ctx, XS_EINVAL, "settings.types", "too many types");
    }
    pull_ask ask = {.ops = ops,
                    .ids = ids,
                    .types = set.types,
                    .filter = filter,
                    .page_size = page_size,
                    .bearer = step_or_empty(req->bearer),
                    .tenant_id = step_or_empty(req->tenant_id),
                    .conn = req->conn};
    domain_worker *w = ctx->wstate;
    json_t *counts = step_counts_new(STEP_PULL_COUNTS);
    blocked_ids blocked = {0}; /* records that wait for others (Xero ids) */
    /* Each page's values are given back when it is done: a step of many pages holds one. */
    xs_json_arena_pos mark = xs_json_arena_mark();
    page cur = {.since = since, .number = number, .x = w->x, .db = ctx->pg, .w = w, .ask = &ask},
         ahead;
    if (!cursor_read(cursor, &cur)) {
        json_decref(counts);
        step_settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.after",
                                 "after takes at most %d Xero ids (UUIDs), with since; tiebreak "
                                 "is true or false",
                                 TIEBREAK_MAX);
    }
    page_fetch(&cur);
    step_audit(ctx, req, &cur.call);
    if (cur.outcome == TIEBREAK_REFUSED) {
        /* Done, having read nothing: the next step asks for the page without it. */
        cursor_tiebreak_refused(ctx, &cur);
        page next = cursor_of(&cur);
        *reply = json_pack("{s:s, s:o, s:o, s:I, s:o}", "outcome", "done", "counts", counts, "call",
                           step_call_json(&cur.call), "calls", (json_int_t)1, "next",
                           cursor_json(&next));
        page_fini(&cur);
        step_settings_fini(&set);
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (cur.outcome != NULL) {
        const char *o = cur.outcome;
        page_fini(&cur);
        step_settings_fini(&set);
        e = step_outcome_reply(o, counts, &cur.call, cur.call.error, reply);
        if (e == XS_OK) {
            json_object_set_new(*reply, "calls", json_integer(1));
        }
        return e;
    }
    /* The first reply is in the arena; the helper thread's are not. */
    bool in_arena = mark.set;
    int64_t calls = 1, pages = 0;
    xs_time high = 0, resume = 0;
    page stop = {0}; /* only its cursor: where the next step starts, when stop.number > 0 */
    xs_xero_call last_call;
    bool seen[50] = {false};
    for (;;) {
        bool more = cursor_next(&cur, &ahead);
        bool fetching = false;
        pthread_t th;
        if ((e = cur.read_done ? cur.read_err : page_read(&cur)) != XS_OK) {
            e = xs_svc_fail(ctx, e, true, "cannot read the page");
        }
        bool in_time = max_ms <= 0 || xs_clock_mono_ms() - t0 < max_ms;
        if (e == XS_OK && more && pages + 1 < max_pages && in_time) {
            ahead.x = w->ahead;
            ahead.w = w; /* and its read-ahead connection */
            if (!in_arena) {
                /* Read: the helper frees it meanwhile, in the allocator arena of the helper
                 * that made it (freeing it here contends with the helper's allocations). */
                ahead.drop = cur.resp.json;
                cur.resp.json = NULL;
            }
            fetching = pthread_create(&th, NULL, page_fetch_main, &ahead) == 0;
            if (!fetching) {
                cur.resp.json = ahead.drop;
                ahead.drop = NULL;
            }
        }
        if (e == XS_OK) {
            e = apply_page(ctx, req, &set, &cur, counts, &blocked, true);
        }
        if (fetching) {
            pthread_join(th, NULL);
            step_audit(ctx, req, &ahead.call);
            calls++;
        }
        last_call = fetching ? ahead.call : cur.call;
        if (e != XS_OK) {
            if (fetching) {
                page_fini(&ahead);
            }
            if (pages == 0) {
                page_fini(&cur);
                goto fail;
            }
            /* Written up to the page before: the next step starts at this one. */
            xs_log_warn(ctx->proc->log, "sync.pull_stopped", "{s:s, s:I, s:s}", "entity",
                        ops->info->name, "page", (json_int_t)cur.number, "reason", ctx->err);
            stop = cursor_of(&cur);
            ctx->err[0] = '\0';
            ctx->field[0] = '\0';
            page_fini(&cur);
            break;
        }
        pages++;
        if (cur.high > high) {
            high = cur.high;
        }
        for (size_t i = 0; ids != NULL && i < json_array_size(ids) && i < 50; i++) {
            for (size_t j = 0; j < cur.nrec && !seen[i]; j++) {
                const char *id = json_string_value(json_array_get(ids, i));
                seen[i] = id != NULL && strcasecmp(cur.recs[j].xero_id, id) == 0;
            }
        }
        if (!more && ids == NULL) {
            /* The last page: every record changed before it was asked for (less a margin
             * for Xero's clock) has been read, so the next pull may start there. */
            resume = ((cur.asked_at - XS_DOMAIN_RESUME_MARGIN_MS) / 1000) * 1000;
            resume = resume < cur.since ? cur.since : resume;
        }
        /* Here, not on a helper: the worker's writes may have put values of its JSON arena
         * into the records (references translated), which the arena's release ends. */
        page_fini(&cur);
        in_arena = false;
        xs_json_arena_release(mark);
        if (!more) {
            break;
        }
        if (!fetching) {
            /* As many pages (or as long) as the step may read: the next step goes on. */
            stop = cursor_of(&ahead);
            break;
        }
        cur = ahead;
        if (cur.outcome != NULL) {
            /* The next page could not be fetched (a 429, say): the next step reads it, once
             * the budget has taken in what this reply said. */
            if (cur.outcome == TIEBREAK_REFUSED) {
                cursor_tiebreak_refused(ctx, &cur);
            }
            stop = cursor_of(&cur);
            page_fini(&cur);
            break;
        }
    }
    json_t *out = json_pack("{s:s, s:O, s:o, s:I}", "outcome", "done", "counts", counts, "call",
                            step_call_json(&last_call), "calls", (json_int_t)calls);
    char iso[XS_TIME_ISO_MAX];
    if (high > 0) {
        xs_time_format_iso(high, iso);
        json_object_set_new(out, "high_water", json_string(iso));
    }
    if (stop.number > 0) {
        json_object_set_new(out, "next", cursor_json(&stop));
    } else if (ids == NULL) {
        xs_time_format_iso(resume, iso);
        json_object_set_new(out, "resume", json_string(iso));
    }
    json_t *bj = blocked_json(&blocked);
    if (bj != NULL) {
        /* The orchestrator fetches what they refer to, then them (in a final step). */
        json_object_set_new(out, "blocked", bj);
    }
    if (ids != NULL) {
        json_t *missing = json_array();
        for (size_t i = 0; i < json_array_size(ids) && i < 50; i++) {
            if (!seen[i]) {
                json_array_append(missing, json_array_get(ids, i));
            }
        }
        json_object_set_new(out, "missing", missing);
    }
    *reply = out;
    json_decref(counts);
    blocked_fini(&blocked);
    step_settings_fini(&set);
    return XS_OK;
fail:
    json_decref(counts);
    blocked_fini(&blocked);
    step_settings_fini(&set);
    return e;
}
