/* cursor.c: see cursor.h. */
#include "engine/cursor.h"

#include <stdio.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

bool cursor_filter_ok(const json_t *filter)
{
    if (filter == NULL) {
        return true;
    }
    if (!json_is_object(filter)) {
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)filter, k, v)
    {
        xs_time t;
        if (strcmp(k, "date_from") == 0) {
            const char *d = xs_json_string_value(v, NULL);
            if (d == NULL || strlen(d) != 10 || xs_time_parse_iso(d, &t) != XS_OK) {
                return false;
            }
        } else if (strcmp(k, "statuses") == 0) {
            if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > 8) {
                return false;
            }
            size_t i;
            json_t *st;
            json_array_foreach(v, i, st)
            {
                const char *x = xs_json_string_value(st, NULL);
                if (x == NULL || x[0] == '\0' || strlen(x) > 20 ||
                    strspn(x, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(x)) {
                    return false;
                }
            }
        } else {
            return false;
        }
    }
    return true;
}

/* path_where appends to path (n characters of cap so far) the where of a list: the Types,
 * the date the filter starts at and the tie-break tb (any of them may be absent); *n grows
 * past cap when it does not fit. XS_EINVAL for a tie-break id that is not a UUID. */
static xs_err path_where(const xs_entity_ops *ops, const json_t *types, const char *from,
                         const tiebreak *tb, char *path, size_t cap, size_t *n)
{
    bool tie = tb != NULL && tb->n > 0;
    /* where=(Type=="A" OR Type=="B") AND Date>=DateTime(y,m,d) AND (UpdatedDateUTC>=
     * DateTime(y,m,d,h,mi,s) OR (ID!=Guid("a") AND ID!=Guid("b"))), URL-encoded */
    *n += (size_t)snprintf(path + *n, cap - *n, "&where=%s", types != NULL ? "(" : "");
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        if (*n >= cap) {
            break;
        }
        *n +=
            (size_t)snprintf(path + *n, cap - *n, "%s%s%%3D%%3D%%22%s%%22", i > 0 ? "%20OR%20" : "",
                             ops->type_field, xs_json_string_value(t, NULL));
    }
    if (types != NULL && *n < cap) {
        *n += (size_t)snprintf(path + *n, cap - *n, ")%s", from != NULL || tie ? "%20AND%20" : "");
    }
    if (from != NULL && *n < cap) {
        *n += (size_t)snprintf(path + *n, cap - *n, "Date%%3E%%3DDateTime(%.4s%%2C%.2s%%2C%.2s)%s",
                               from, from + 5, from + 8, tie ? "%20AND%20" : "");
    }
    if (!tie || *n >= cap) {
        return XS_OK;
    }
    char next[XS_TIME_ISO_MAX]; /* the second after since: "YYYY-MM-DDTHH:MM:SS.mmmZ" */
    xs_time_format_iso(tb->since + 1000, next);
    *n += (size_t)snprintf(path + *n, cap - *n,
                           "(UpdatedDateUTC%%3E%%3DDateTime(%.4s%%2C%.2s%%2C%.2s%%2C%.2s"
                           "%%2C%.2s%%2C%.2s)%%20OR%%20(",
                           next, next + 5, next + 8, next + 11, next + 14, next + 17);
    for (size_t k = 0; k < tb->n && *n < cap; k++) {
        if (!xs_uuid_valid(tb->ids[k])) {
            return XS_EINVAL;
        }
        *n += (size_t)snprintf(path + *n, cap - *n, "%s%s%%21%%3DGuid(%%22%s%%22)",
                               k > 0 ? "%20AND%20" : "", ops->id_field, tb->ids[k]);
    }
    if (*n < cap) {
        *n += (size_t)snprintf(path + *n, cap - *n, "))");
    }
    return XS_OK;
}

/* path_ids writes into path the list of ids: IDs=a,b where the list takes it, else
 * where=<id_field>==Guid("a") OR ...; XS_EINVAL for an id that is not a UUID or too many. */
static xs_err path_ids(const xs_entity_ops *ops, const json_t *ids, char *path, size_t cap,
                       size_t *n)
{
    *n = (size_t)snprintf(path, cap, "%s?%s", ops->xero_path, ops->ids_param ? "IDs=" : "where=");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *id = xs_json_string_value(v, NULL);
        if (id == NULL || !xs_uuid_valid(id) || *n + 120 >= cap) {
            return XS_EINVAL;
        }
        if (ops->ids_param) {
            *n += (size_t)snprintf(path + *n, cap - *n, "%s%s", i > 0 ? "," : "", id);
        } else {
            *n += (size_t)snprintf(path + *n, cap - *n, "%s%s%%3D%%3DGuid(%%22%s%%22)",
                                   i > 0 ? "%20OR%20" : "", ops->id_field, id);
        }
    }
    return XS_OK;
}

xs_err cursor_path(const xs_entity_ops *ops, const json_t *ids, int64_t number, int64_t page_size,
                   const json_t *types, const json_t *filter, const tiebreak *tb, char *path,
                   size_t cap)
{
    size_t n;
    if (ids != NULL) {
        if (path_ids(ops, ids, path, cap, &n) != XS_OK) {
            return XS_EINVAL;
        }
    } else if (ops->unpaged) {
        n = (size_t)snprintf(path, cap, "%s?order=UpdatedDateUTC%%20ASC", ops->xero_path);
    } else {
        n = (size_t)snprintf(path, cap, "%s?page=%lld&pageSize=%lld&order=UpdatedDateUTC%%20ASC",
                             ops->xero_path, (long long)number, (long long)page_size);
    }
    /* By ids, the step's types, filter and tie-break do not apply. */
    const char *from =
        ids == NULL ? xs_json_string_value(json_object_get(filter, "date_from"), NULL) : NULL;
    bool tie = ids == NULL && tb != NULL && tb->n > 0;
    if (ids == NULL && (types != NULL || from != NULL || tie) && n < cap &&
        path_where(ops, types, from, tb, path, cap, &n) != XS_OK) {
        return XS_EINVAL;
    }
    json_t *sts = ids == NULL ? json_object_get(filter, "statuses") : NULL;
    if (sts != NULL && n < cap) {
        n += (size_t)snprintf(path + n, cap - n, "&Statuses=");
        size_t i;
        json_t *st;
        json_array_foreach(sts, i, st)
        {
            if (n >= cap) {
                break;
            }
            n += (size_t)snprintf(path + n, cap - n, "%s%s", i > 0 ? "%2C" : "",
                                  xs_json_string_value(st, NULL));
        }
    }
    if (ops->pull_query != NULL && n < cap) {
        n += (size_t)snprintf(path + n, cap - n, "&%s", ops->pull_query);
    }
    return n < cap ? XS_OK : XS_EINVAL;
}

bool cursor_next(const page *p, page *next)
{
    const pull_ask *a = p->ask;
    if (a->ops->unpaged || a->ids != NULL || (int64_t)p->n < a->page_size ||
        (p->page_count >= 1 && p->number >= p->page_count)) {
        return false;
    }
    memset(next, 0, sizeof(*next));
    next->ask = a;
    next->no_tiebreak = p->no_tiebreak;
    xs_time next_since = (p->last / 1000) * 1000;
    if (next_since > p->since) {
        next->since = next_since;
        next->number = 1;
        /* Whole seconds as If-Modified-Since takes them would read again the records of
         * next_since this page read; the tie-break leaves them out, so a pull of n records
         * takes ceil(n / page size) calls. Only for few records, and only for a second
         * well before this page was asked: a record of it changed after this page read it
         * is stamped later than that second (Xero's clock within the resume margin of
         * ours), so the where's first half still brings it. */
        if (!p->no_tiebreak && p->ntail >= 1 && p->ntail <= TIEBREAK_MAX &&
            a->ops->id_field != NULL &&
            p->asked_at - XS_DOMAIN_RESUME_MARGIN_MS >= next_since + 1000) {
            memcpy(next->after, p->tail, sizeof(next->after));
            next->nafter = p->ntail;
        }
    } else {
        /* A page within one second: the same query (and tie-break), the next page of it. */
        next->since = p->since;
        next->number = p->number + 1;
        memcpy(next->after, p->after, sizeof(next->after));
        next->nafter = p->nafter;
    }
    return true;
}

void cursor_tiebreak_refused(xs_svc_ctx *ctx, const page *p)
{
    xs_log_warn(ctx->proc->log, "sync.tiebreak_refused", "{s:s, s:I, s:s}", "entity",
                p->ask->ops->info->name, "status", (json_int_t)p->resp.status, "effect",
                "this pull's pages re-read the records of the second they start at");
}

page cursor_of(const page *p)
{
    page c = {.since = p->since, .number = p->number, .no_tiebreak = p->no_tiebreak};
    if (p->outcome == TIEBREAK_REFUSED) {
        c.no_tiebreak = true;
    } else {
        memcpy(c.after, p->after, sizeof(c.after));
        c.nafter = p->nafter;
    }
    return c;
}

json_t *cursor_json(const page *p)
{
    char ns[XS_TIME_ISO_MAX];
    if (p->since > 0) {
        xs_time_format_iso(p->since, ns);
    }
    json_t *c =
        json_pack("{s:s?, s:I}", "since", p->since > 0 ? ns : NULL, "page", (json_int_t)p->number);
    if (c != NULL && p->nafter > 0) {
        json_t *after = json_array();
        for (size_t i = 0; i < p->nafter; i++) {
            json_array_append_new(after, json_string(p->after[i]));
        }
        json_object_set_new(c, "after", after);
    }
    if (c != NULL && p->no_tiebreak) {
        json_object_set_new(c, "tiebreak", json_false());
    }
    return c;
}

bool cursor_read(const json_t *cursor, page *p)
{
    json_t *after = json_object_get(cursor, "after");
    json_t *tb = json_object_get(cursor, "tiebreak");
    if ((after != NULL &&
         (!json_is_array(after) || json_array_size(after) > TIEBREAK_MAX || p->since == 0)) ||
        (tb != NULL && !json_is_boolean(tb))) {
        return false;
    }
    size_t i;
    json_t *v;
    json_array_foreach(after, i, v)
    {
        const char *id = xs_json_string_value(v, NULL);
        if (id == NULL || !xs_uuid_valid(id)) {
            return false;
        }
        snprintf(p->after[i], XS_ID_MAX, "%s", id);
    }
    p->nafter = json_array_size(after);
    p->no_tiebreak = json_is_false(tb);
    return true;
}
