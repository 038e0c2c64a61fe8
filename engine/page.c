/* page.c: see page.h. */
#include "engine/page.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#include "engine/cursor.h"
#include "engine/kit.h"
#include "engine/step.h"

/* A page's path: what a pull's first page must fit in (PULL_FIRST_PATH_MAX), and room for
 * the largest tie-break: per id "%20AND%20", the id field (at most 32 characters),
 * "%21%3DGuid(%22", the id and "%22)". */
#define PULL_PATH_MAX (PULL_FIRST_PATH_MAX + TIEBREAK_MAX * 96)

void page_memo_add(json_t *list, size_t *seen, const pulled *r)
{
    for (; *seen < json_array_size(list); (*seen)++) {
        json_t *m = json_array_get(list, *seen);
        if (r->raw[0] != '\0') {
            json_object_set_new(m, "raw", json_string(r->raw));
            json_object_set_new(m, "raw_checksum", json_string(r->sum));
        }
        if (r->parts != NULL) {
            json_object_set(m, "parts", r->parts);
        }
    }
}

const char TIEBREAK_REFUSED[] = "tiebreak_refused";

void page_fini(page *p)
{
    for (size_t i = 0; p->recs != NULL && i < p->nrec; i++) {
        json_decref(p->recs[i].rec);
        json_decref(p->recs[i].parts);
    }
    free(p->recs);
    free(p->known);
    free(p->raws);
    json_decref(p->errors);
    json_decref(p->xids);
    xs_xero_resp_fini(&p->resp);
    p->known = NULL;
    p->raws = NULL;
    p->recs = NULL;
    p->errors = p->xids = NULL;
}

/* ahead_db returns the worker's read-ahead connection, opening it on first use; NULL when it
 * cannot be had (then the helper thread parses every record). */
static xs_pg *ahead_db(domain_worker *w)
{
    if (w == NULL || w->svc == NULL || w->svc->db_url == NULL) {
        return NULL;
    }
    if (w->db_ahead != NULL && !xs_pg_is_ok(w->db_ahead)) {
        xs_pg_close(w->db_ahead);
        w->db_ahead = NULL;
    }
    if (w->db_ahead == NULL &&
        xs_pg_connect(&w->db_ahead, w->svc->db_url, w->svc->ahead_app, 0, w->svc->log) != XS_OK) {
        w->db_ahead = NULL;
        if (!w->db_failed) {
            xs_log_warn(w->svc->log, "sync.read_ahead_db_unavailable", "{s:s}", "effect",
                        "pages read ahead are parsed whole until it connects");
        }
        w->db_failed = true;
        return NULL;
    }
    w->db_failed = false;
    return w->db_ahead;
}

/* known_ids asks which of the records (ids and raw sums, aligned, as array literals) the
 * connection's mappings know as unchanged: their raw sum is the one kept, and what that text
 * reads as is the base. *out (new): {lowercase id: true}. */
static xs_err known_ids(xs_pg *db, const pull_ask *a, const char *ids, const char *raws,
                        json_t **out)
{
    *out = json_object();
    if (*out == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(db, &r,
                       "SELECT m.xero_id FROM unnest($3::uuid[], $4::text[]) AS r(xid, raw) JOIN "
                       "sync.mappings m ON m.connection_id = $1 AND m.entity = $2 AND m.xero_id "
                       "= r.xid WHERE m.xero_raw_sum = r.raw AND m.xero_raw_checksum = "
                       "m.base_checksum",
                       a->conn, a->ops->info->name, ids, raws);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_object_set_new(*out, xs_pg_res_get(r, i, 0), json_true());
    }
    xs_pg_res_free(r);
    return XS_OK;
}

typedef char raw_sum[2 * XS_SHA256_LEN + 1];

/* items_sum reads the raw sum and id of each record of the reply (sums[i], ids[i]: "" when it
 * has none that can be looked up) and lists those to look up (ids lowercase, and their sums)
 * in ask_ids and ask_sums. */
static void items_sum(const page *p, raw_sum *sums, char (*ids)[XS_ID_MAX], json_t *ask_ids,
                      json_t *ask_sums)
{
    const xs_entity_ops *ops = p->ask->ops;
    const xs_json_span *it = p->resp.items;
    const char *body = p->resp.body;
    for (size_t i = 0; i < p->resp.nitems; i++) {
        const char *v;
        size_t vlen;
        xs_sync_raw_sum(ops->info->name, body + it[i].off, it[i].len, sums[i]);
        if (sums[i][0] != '\0' &&
            xs_json_member_string(body + it[i].off, it[i].len, ops->id_field, &v, &vlen) &&
            vlen == 36) {
            memcpy(ids[i], v, 36);
            ids[i][36] = '\0';
            if (kit_xero_id_ok(ids[i])) {
                for (size_t c = 0; c < 36; c++) {
                    ids[i][c] = (char)tolower((unsigned char)ids[i][c]);
                }
                json_array_append_new(ask_ids, json_string(ids[i]));
                json_array_append_new(ask_sums, json_string(sums[i]));
                continue;
            }
        }
        ids[i][0] = '\0';
    }
}

/* items_known asks the page's connection which of the records (ask_ids, ask_sums) its
 * mappings know unchanged: *hits (new) {lowercase id: true}, or NULL when there is no
 * connection to ask or it cannot answer (then every record is parsed). XS_ENOMEM only. */
static xs_err items_known(page *p, const json_t *ask_ids, const json_t *ask_sums, json_t **hits)
{
    *hits = NULL;
    xs_pg *db = json_array_size(ask_ids) > 0 ? (p->db != NULL ? p->db : ahead_db(p->w)) : NULL;
    if (db == NULL) {
        return XS_OK;
    }
    char *id_arr = xs_domain_uuid_array(ask_ids);
    char *raw_arr = kit_fixed_array(ask_sums, 2 * XS_SHA256_LEN, kit_is_hex_sum);
    xs_err e = id_arr != NULL && raw_arr != NULL ? XS_OK : XS_ENOMEM;
    if (e == XS_OK && known_ids(db, p->ask, id_arr, raw_arr, hits) != XS_OK) {
        /* Not known, then: every record is parsed, as it would be without sums. */
        if (p->w != NULL) {
            xs_log_warn(p->w->svc->log, "sync.raw_sums_unread", "{s:s, s:s}", "error",
                        xs_pg_error(db), "effect", "the page is parsed whole");
        }
        json_decref(*hits);
        *hits = NULL;
    }
    free(id_arr);
    free(raw_arr);
    return e;
}

/* item_known sets record i of the reply aside in p->known when the mappings know it unchanged
 * (hits) and its UpdatedDateUTC reads; false when it is to be parsed. */
static bool item_known(page *p, size_t i, const char *id, const json_t *hits, int32_t *order)
{
    const xs_json_span *it = &p->resp.items[i];
    const char *text = p->resp.body + it->off, *v;
    size_t vlen;
    char ts[64];
    xs_time at = 0;
    if (id[0] == '\0' || json_object_get(hits, id) == NULL ||
        !xs_json_member_string(text, it->len, "UpdatedDateUTC", &v, &vlen) || vlen >= sizeof(ts)) {
        return false;
    }
    memcpy(ts, v, vlen);
    ts[vlen] = '\0';
    if (xs_time_parse_any(ts, &at) != XS_OK) {
        return false;
    }
    pulled *k = &p->known[p->nknown];
    snprintf(k->xero_id, sizeof(k->xero_id), "%s", id);
    k->at = at;
    k->known = true;
    *order = -1 - (int32_t)p->nknown++;
    return true;
}

/* item_parse parses record i of the reply onto list, its raw sum into p->raws; XS_EPROTO,
 * with call.error saying where, when it does not parse. */
static xs_err item_parse(page *p, size_t i, json_t *list, const char *sum, int32_t *order)
{
    const xs_json_span *it = &p->resp.items[i];
    char why[XS_JSON_ERR_MAX];
    json_t *x = xs_json_parse(p->resp.body + it->off, it->len, why);
    if (x == NULL) {
        /* "byte N" of the reply, as xs_xero_request says it of a reply parsed whole */
        size_t at_byte = 0;
        const char *colon = strchr(why, ':');
        if (sscanf(why, "byte %zu", &at_byte) == 1 && colon != NULL) {
            snprintf(p->call.error, sizeof(p->call.error), "reply is not valid JSON: byte %zu%s",
                     it->off + at_byte, colon);
        } else {
            snprintf(p->call.error, sizeof(p->call.error), "reply is not valid JSON: %s", why);
        }
        return XS_EPROTO;
    }
    *order = (int32_t)json_array_size(list);
    memcpy(p->raws[json_array_size(list)], sum, sizeof(raw_sum));
    return json_array_append_new(list, x) == 0 ? XS_OK : XS_ENOMEM;
}

/* take_items reads the records of a reply xs_xero_request left unparsed (resp.items): each's
 * raw sum first; those the mappings know unchanged by it go to p->known as they are (their
 * id and UpdatedDateUTC read from the text), the others are parsed into list, their sums
 * into p->raws. *order (new) says where each went. XS_EPROTO (with call.error) when a record
 * does not parse: the reply is garbled. When the sums cannot be read, every record is
 * parsed. */
static xs_err take_items(page *p, json_t *list, int32_t **order)
{
    size_t n = p->resp.nitems;
    raw_sum *sums = calloc(n + 1, sizeof(raw_sum));
    char(*ids)[XS_ID_MAX] = calloc(n + 1, XS_ID_MAX);
    json_t *ask_ids = json_array(), *ask_sums = json_array();
    *order = calloc(n + 1, sizeof(int32_t));
    p->known = calloc(n + 1, sizeof(pulled));
    p->raws = calloc(n + 1, sizeof(raw_sum));
    json_t *hits = NULL;
    xs_err e = XS_ENOMEM;
    if (sums == NULL || ids == NULL || ask_ids == NULL || ask_sums == NULL || *order == NULL ||
        p->known == NULL || p->raws == NULL || n > INT32_MAX) {
        goto out;
    }
    items_sum(p, sums, ids, ask_ids, ask_sums);
    if ((e = items_known(p, ask_ids, ask_sums, &hits)) != XS_OK) {
        goto out;
    }
    for (size_t i = 0; e == XS_OK && i < n; i++) {
        if (!item_known(p, i, ids[i], hits, &(*order)[i])) {
            e = item_parse(p, i, list, sums[i], &(*order)[i]);
        }
    }
out:
    json_decref(hits);
    json_decref(ask_ids);
    json_decref(ask_sums);
    free(sums);
    free(ids);
    return e;
}

/* page_call makes the page's call: its path (without the tie-break should it not fit), the
 * request, and the outcome of the reply (p->outcome NULL: a list came). */
static void page_call(page *p)
{
    const pull_ask *a = p->ask;
    const xs_entity_ops *ops = a->ops;
    char path[PULL_PATH_MAX];
    tiebreak tb = {p->since, (const char(*)[XS_ID_MAX])p->after, p->nafter};
    xs_err pe = cursor_path(ops, a->ids, p->number, a->page_size, a->types, a->filter, &tb, path,
                            sizeof(path));
    if (pe != XS_OK && tb.n > 0) {
        /* Cannot happen with the ids Xero has (PULL_PATH_MAX); should it, the page re-reads
         * the records of its second rather than fail. */
        tb.n = 0;
        pe = cursor_path(ops, a->ids, p->number, a->page_size, a->types, a->filter, &tb, path,
                         sizeof(path));
    }
    if (pe != XS_OK) {
        p->outcome = "failed";
        snprintf(p->call.error, sizeof(p->call.error), "the request does not fit in a URL");
        return;
    }
    xs_xero_req xr = {.method = "GET",
                      .path = path,
                      .bearer = a->bearer,
                      .tenant_id = a->tenant_id,
                      .if_modified_since = a->ids == NULL ? p->since : 0,
                      .list_key = ops->xero_list};
    p->asked_at = xs_clock_now();
    int64_t t0 = xs_clock_mono_ms();
    xs_err e = xs_xero_request(p->x, &xr, &p->resp, &p->call);
    p->outcome = step_call_outcome(e, p->resp.status, false);
    json_t *list = json_object_get(p->resp.json, ops->xero_list);
    if (p->outcome == NULL && (p->resp.status != 200 || !json_is_array(list))) {
        p->outcome = "failed";
        if (p->resp.status == 200) {
            snprintf(p->call.error, sizeof(p->call.error), "the reply has no %s list",
                     ops->xero_list);
        }
    }
    p->call_ms = xs_clock_mono_ms() - t0;
    if (p->nafter > 0 && p->resp.status == 400) {
        /* A where Xero would not take (a very large organisation's "not filtering
         * efficiently", say): the page is asked again without the tie-break. */
        p->outcome = TIEBREAK_REFUSED;
    }
}

/* page_tail finds, from the end of the page's list (order: take_items's, or NULL), the last
 * readable record (p->last, where the next page starts) and the ids of those of its second
 * (p->tail, the tie-break). */
static void page_tail(page *p, const json_t *list, const int32_t *order)
{
    const xs_entity_ops *ops = p->ask->ops;
    p->ntail = 0;
    for (size_t i = p->n; i > 0 && p->ntail <= TIEBREAK_MAX; i--) {
        char id[XS_ID_MAX] = "", why[XS_DOMAIN_WHY_MAX];
        xs_time at = 0;
        if (order != NULL && order[i - 1] < 0) {
            const pulled *k = &p->known[-1 - order[i - 1]];
            at = k->at;
            snprintf(id, sizeof(id), "%s", k->xero_id);
        } else {
            json_t *rec = NULL;
            json_t *x = json_array_get(list, order != NULL ? (size_t)order[i - 1] : i - 1);
            if (xs_domain_from_xero(ops, x, &rec, id, &at, why) != XS_OK || !kit_xero_id_ok(id)) {
                at = 0;
            }
            json_decref(rec);
        }
        if (at == 0) {
            continue;
        }
        if (p->last == 0) {
            p->last = at;
        } else if (at / 1000 != p->last / 1000) {
            break;
        }
        if (p->ntail < TIEBREAK_MAX) {
            memcpy(p->tail[p->ntail], id, XS_ID_MAX);
        }
        p->ntail++;
    }
}

void page_fetch(page *p)
{
    json_decref(p->drop);
    p->drop = NULL;
    memset(&p->resp, 0, sizeof(p->resp));
    memset(&p->call, 0, sizeof(p->call));
    p->outcome = NULL;
    page_call(p);
    if (p->outcome != NULL) {
        return;
    }
    json_t *list = json_object_get(p->resp.json, p->ask->ops->xero_list);
    xs_json_get_int(json_object_get(p->resp.json, "pagination"), "pageCount", &p->page_count);
    p->item_count = -1;
    xs_json_get_int(json_object_get(p->resp.json, "pagination"), "itemCount", &p->item_count);
    int32_t *order = NULL; /* with items: each's index in list, or -1 - its index in known */
    if (p->resp.items != NULL) {
        xs_err e = take_items(p, list, &order);
        if (e != XS_OK) {
            free(order);
            p->outcome = step_call_outcome(e, 200, false);
            p->call.err = e;
            if (e != XS_EPROTO) {
                snprintf(p->call.error, sizeof(p->call.error), "%s", xs_strerror(e));
            }
            return;
        }
    }
    p->n = p->resp.items != NULL ? p->resp.nitems : json_array_size(list);
    page_tail(p, list, order);
    free(order);
}

void *page_fetch_main(void *arg)
{
    page *p = arg;
    page_fetch(p);
    if (p->outcome == NULL) {
        p->read_err = page_read(p);
        p->read_done = true;
    }
    return NULL;
}

xs_err page_read(page *p)
{
    int64_t t0 = xs_clock_mono_ms();
    const xs_entity_ops *ops = p->ask->ops;
    json_t *list = json_object_get(p->resp.json, ops->xero_list);
    p->recs = calloc(p->n + p->nknown + 1, sizeof(pulled));
    p->errors = json_array();
    p->xids = json_array();
    if (p->recs == NULL || p->errors == NULL || p->xids == NULL) {
        return XS_ENOMEM;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        pulled *r = &p->recs[p->nrec];
        char why[XS_DOMAIN_WHY_MAX] = "";
        r->xero_id[0] = '\0';
        if (xs_domain_from_xero(ops, item, &r->rec, r->xero_id, &r->at, why) != XS_OK ||
            !kit_xero_id_ok(r->xero_id)) {
            step_item_error(p->errors, NULL, kit_xero_id_ok(r->xero_id) ? r->xero_id : NULL,
                            why[0] != '\0' ? why : "a record Xero sent cannot be read");
            json_decref(r->rec);
            r->rec = NULL;
            p->unreadable++;
            continue;
        }
        xs_sync_checksum(r->rec, r->sum);
        r->parts = ops->read_parts != NULL ? ops->read_parts(item) : NULL;
        if (p->raws != NULL) {
            memcpy(r->raw, p->raws[i], sizeof(r->raw));
        }
        if (r->at > p->high) {
            p->high = r->at;
        }
        json_array_append_new(p->xids, json_string(r->xero_id));
        p->nrec++;
    }
    p->nparsed = p->nrec;
    for (i = 0; i < p->nknown; i++) {
        p->recs[p->nrec++] = p->known[i];
        if (p->known[i].at > p->high) {
            p->high = p->known[i].at;
        }
    }
    p->read_ms = xs_clock_mono_ms() - t0;
    return XS_OK;
}
