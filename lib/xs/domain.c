/* domain.c: the domain half of the sync engine (see domain.h). */
#include "xs/domain.h"

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

#define DEFAULT_PAGE     1000
#define SCAN_MAX         20000
#define SCAN_READ        1000
#define ANALYZE_MIN_ROWS 200
#define ANALYZE_MAX_ROWS 25000
#define ANALYZE_TARGET   "10"
#define MAX_PAGES        100 /* of one pull step */
#define TIEBREAK_MAX     20  /* records of a second a keyset page may ask Xero to leave out */
/* A page's path: what a pull's first page must fit in (XS_XERO_PATH_MAX * 2, checked when the
 * step starts), and room for the largest tie-break: per id "%20AND%20", the id field (at most
 * 32 characters), "%21%3DGuid(%22", the id and "%22)". */
#define PULL_PATH_MAX (XS_XERO_PATH_MAX * 2 + TIEBREAK_MAX * 96)

/* ------------------------------------------------------------------ helpers */

json_t *xs_domain_text(const json_t *x, const char *key)
{
    const char *s = xs_json_str_or(x, key, NULL);
    if (s == NULL) {
        return json_null();
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) {
        n--;
    }
    return n > 0 ? json_stringn(s, n) : json_null();
}

const char *xs_domain_text_or_empty(const json_t *rec, const char *key)
{
    const char *s = xs_json_str_or(rec, key, NULL);
    return s != NULL ? s : "";
}

/* is_nil_id tells whether s is the nil UUID: the id Xero gives an item it did not save
 * (summarizeErrors=false), never a record's id. */
static bool is_nil_id(const char *s)
{
    xs_uuid u;
    return xs_uuid_parse(s, &u) && xs_uuid_is_nil(&u);
}

/* xero_id_ok tells whether s names a record in Xero: a UUID, and not the nil one. */
static bool xero_id_ok(const char *s)
{
    return xs_uuid_valid(s) && !is_nil_id(s);
}

static bool is_hex_sum(const char *s)
{
    return s != NULL && strlen(s) == 2 * XS_SHA256_LEN &&
           strspn(s, "0123456789abcdef") == 2 * XS_SHA256_LEN;
}

/* fixed_array writes items, strings of `width` characters that valid accepts (so safe in an
 * array literal), as a PostgreSQL array literal (new, free()); NULL when one is not valid or
 * out of memory. */
static char *fixed_array(const json_t *items, size_t width, bool (*valid)(const char *))
{
    size_t n = json_array_size(items);
    char *out = malloc(n * (width + 1) + 3);
    if (out == NULL) {
        return NULL;
    }
    size_t o = 0;
    out[o++] = '{';
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        const char *s = json_string_value(v);
        if (!valid(s)) {
            free(out);
            return NULL;
        }
        if (i > 0) {
            out[o++] = ',';
        }
        memcpy(out + o, s, width);
        o += width;
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}

char *xs_domain_uuid_array(const json_t *ids)
{
    return fixed_array(ids, 36, xs_uuid_valid);
}

char *xs_domain_rows_text(const json_t *items)
{
    json_t *rows = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *row = json_deep_copy(json_object_get(it, "rec"));
        json_object_set_new(row, "id", json_string(xs_json_str_or(it, "id", "")));
        json_array_append_new(rows, row);
    }
    char *text = xs_json_dump(rows, 0);
    json_decref(rows);
    return text;
}

/* amount_read reads v, a JSON number or decimal text, as an amount of at most `places`
 * places into *m; false with what is wrong, naming key, in why (XS_DOMAIN_WHY_MAX bytes): not a
 * number, too many places, or beyond the range of xs_money. */
static bool amount_read(const json_t *v, const char *key, int places, xs_money *m, char *why)
{
    xs_err e = xs_json_to_money(v, m);
    if (e == XS_OK && xs_money_places(*m) <= places) {
        return true;
    }
    int need = xs_json_number_places(v);
    if (need < 0 || (e != XS_OK && e != XS_ERANGE)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "%.40s is not a number", key);
    } else if (need > places) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "%.40s has more than %d decimal places", key, places);
    } else {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "%.40s is out of range (more than 9223372036854 either way)", key);
    }
    return false;
}

json_t *xs_domain_amount(const json_t *in, const char *key, int places, char *why)
{
    json_t *v = json_object_get(in, key);
    size_t len = 1;
    if (v == NULL || json_is_null(v) || (xs_json_string_value(v, &len) != NULL && len == 0)) {
        return json_null();
    }
    xs_money m;
    char buf[XS_MONEY_TEXT_MAX];
    if (!amount_read(v, key, places, &m, why)) {
        return NULL;
    }
    xs_money_format(m, places, buf);
    return json_string(buf);
}

xs_err xs_domain_check_amount(const json_t *in, const char *key, int places, xs_domain_sign sign,
                              char *why)
{
    json_t *v = json_object_get(in, key);
    xs_money m;
    if (v == NULL || json_is_null(v)) {
        return XS_OK;
    }
    size_t len = 1;
    if (xs_json_string_value(v, &len) != NULL && len == 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "%.40s is empty: give a number, or leave it out", key);
        return XS_EINVAL;
    }
    if (!amount_read(v, key, places, &m, why)) {
        return XS_EINVAL;
    }
    if (sign == XS_DOMAIN_POSITIVE && !(xs_money_cmp(m, xs_money_zero()) > 0)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "%.40s must be above zero", key);
        return XS_EINVAL;
    }
    if (sign == XS_DOMAIN_NOT_NEGATIVE && xs_money_is_negative(m)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "%.40s must not be negative", key);
        return XS_EINVAL;
    }
    return XS_OK;
}

json_t *xs_domain_lines(const json_t *in, const xs_domain_field *fields, size_t n, bool xero,
                        char *why)
{
    json_t *out = json_array();
    size_t i;
    json_t *li;
    json_array_foreach(in, i, li)
    {
        if (!json_is_object(li)) {
            snprintf(why, XS_DOMAIN_WHY_MAX, "line %zu is not an object", i + 1);
            json_decref(out);
            return NULL;
        }
        json_t *c = json_object();
        for (size_t f = 0; f < n; f++) {
            const char *key = xero ? fields[f].xero : fields[f].name;
            json_t *v = fields[f].places > 0 ? xs_domain_amount(li, key, fields[f].places, why)
                                             : xs_domain_text(li, key);
            if (v == NULL) {
                char inner[200];
                snprintf(inner, sizeof(inner), "%s", why);
                snprintf(why, XS_DOMAIN_WHY_MAX, "line %zu: %s", i + 1, inner);
                json_decref(c);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(c, fields[f].name, v);
        }
        json_array_append_new(out, c);
    }
    return out;
}

json_t *xs_domain_date(const json_t *in, const char *key)
{
    xs_time d = 0;
    const char *dt = xs_json_str_or(in, key, NULL);
    if (dt == NULL || xs_time_parse_any(dt, &d) != XS_OK) {
        return json_null();
    }
    char buf[16];
    xs_time_format_date(d, buf);
    return json_string(buf);
}

xs_err xs_domain_from_xero(const xs_entity_ops *ops, const json_t *x, json_t **rec,
                           char id[XS_ID_MAX], xs_time *updated, char *why)
{
    *rec = NULL;
    snprintf(id, XS_ID_MAX, "%s", xs_json_str_or(x, ops->id_field, ""));
    const char *u = xs_json_str_or(x, "UpdatedDateUTC", NULL);
    if (u == NULL || xs_time_parse_any(u, updated) != XS_OK) {
        /* the entity as a word: "bank transaction" */
        char what[64];
        snprintf(what, sizeof(what), "%s", ops->name);
        for (char *c = what; *c != '\0'; c++) {
            *c = *c == '_' ? ' ' : *c;
        }
        snprintf(why, XS_DOMAIN_WHY_MAX, "%s %.40s has no readable UpdatedDateUTC", what, id);
        return XS_EPARSE;
    }
    *rec = ops->read_xero(x, why);
    return *rec != NULL ? XS_OK : XS_EPARSE;
}

xs_err xs_domain_load_rows(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                           json_t *(*row_rec)(const xs_pg_res *r, int i), json_t **out)
{
    json_t *res = json_object();
    *out = res;
    if (res == NULL) {
        return XS_ENOMEM;
    }
    if (json_array_size(ids) == 0) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(ids);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, sql, org, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    int last = xs_pg_res_ncols(r) - 1, edited = xs_pg_res_col(r, "edited_ms");
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_t *rec = row_rec(r, i);
        if (rec == NULL) {
            continue; /* a row the table's checks admitted always reads */
        }
        int64_t at = 0, ed = 0;
        xs_pg_res_int(r, i, last, &at);
        if (edited < 0 || xs_pg_res_int(r, i, edited, &ed) != XS_OK) {
            ed = at;
        }
        json_object_set_new(res, xs_pg_res_get(r, i, 0),
                            json_pack("{s:o, s:I, s:I, s:s}", "rec", rec, "at", (json_int_t)at,
                                      "edited", (json_int_t)ed, "org", xs_pg_res_get(r, i, 1)));
    }
    xs_pg_res_free(r);
    return XS_OK;
}

xs_err xs_domain_load_checked(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                              json_t *(*row_rec)(const xs_pg_res *r, int i), const char *check_sql,
                              json_t *(*check)(const xs_pg_res *r, int i), json_t **out)
{
    xs_err e = xs_domain_load_rows(pg, sql, org, ids, row_rec, out);
    if (e != XS_OK || json_object_size(*out) == 0) {
        return e;
    }
    char *arr = xs_domain_uuid_array(ids);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    e = xs_pg_q(pg, &r, check_sql, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_t *entry = json_object_get(*out, xs_pg_res_get(r, i, 0));
        if (entry != NULL) {
            json_object_set_new(entry, "check", check(r, i));
        }
    }
    xs_pg_res_free(r);
    return XS_OK;
}

void xs_domain_text_cols(json_t *row, const xs_pg_res *r, int i, int first,
                         const char *const (*names)[2], size_t n)
{
    for (size_t f = 0; f < n; f++) {
        const char *v = xs_pg_res_get(r, i, first + (int)f);
        json_object_set_new(row, names[f][0], v != NULL ? json_string(v) : json_null());
    }
}

xs_err xs_domain_write_rows(xs_pg *pg, const char *org, const json_t *creates,
                            const json_t *updates, const char *const sql[2], json_t **at)
{
    json_t *res = json_object();
    *at = res;
    if (res == NULL) {
        return XS_ENOMEM;
    }
    const json_t *sets[] = {creates, updates};
    for (int s = 0; s < 2; s++) {
        if (json_array_size(sets[s]) == 0) {
            continue;
        }
        char *text = xs_domain_rows_text(sets[s]);
        xs_pg_res *r = NULL;
        xs_err e = text != NULL ? xs_pg_q(pg, &r, sql[s], org, text) : XS_ENOMEM;
        free(text);
        if (e != XS_OK) {
            return e;
        }
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            int64_t t = 0;
            xs_pg_res_int(r, i, 1, &t);
            json_object_set_new(res, xs_pg_res_get(r, i, 0), json_integer(t));
        }
        xs_pg_res_free(r);
    }
    return XS_OK;
}

xs_err xs_domain_merged(const json_t *in, const json_t *current, bool partial,
                        json_t *(*canonical)(const json_t *in, bool xero, char *why),
                        const char *const (*fields)[2], json_t **rec, char *field, char *why)
{
    json_t *merged = partial && current != NULL ? json_deep_copy(current) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        json_object_set(merged, k, v);
    }
    json_t *out = canonical(merged, false, why);
    json_decref(merged);
    if (out == NULL) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "record");
        for (size_t f = 0; fields[f][0] != NULL; f++) {
            if (strstr(why, fields[f][0]) != NULL) {
                snprintf(field, XS_DOMAIN_WHY_MAX, "%s", fields[f][1]);
                break;
            }
        }
        return XS_EINVAL;
    }
    *rec = out;
    return XS_OK;
}

xs_err xs_domain_list_ids(xs_pg *pg, const char *table, const char *entity, const char *org,
                          const char *conn, const char *after, int limit, json_t **out, char *last)
{
    char lim[16], sql[1024];
    snprintf(lim, sizeof(lim), "%d", limit);
    /* Read `limit` rows in id order; keep those that may have changed. The last row read
     * tells the scan where to go on. */
    snprintf(sql, sizeof(sql),
             "SELECT c.id, m.local_id IS NULL OR m.local_updated_at IS NULL OR "
             "m.local_updated_at IS DISTINCT FROM %s FROM (SELECT id, updated_at FROM %s WHERE "
             "organisation_id = $1 AND ($2 = '' OR id > $2::uuid) ORDER BY id LIMIT $3) c LEFT "
             "JOIN sync.mappings m ON m.connection_id = $4 AND m.entity = $5 AND m.local_id = "
             "c.id ORDER BY c.id",
             XS_DOMAIN_AT_MS("c.updated_at"), table);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, sql, org, after, lim, conn, entity);
    if (e != XS_OK) {
        return e;
    }
    json_t *a = json_array();
    int n = xs_pg_res_nrows(r);
    for (int i = 0; i < n; i++) {
        bool maybe = true;
        xs_pg_res_bool(r, i, 1, &maybe);
        if (maybe) {
            json_array_append_new(a, json_string(xs_pg_res_get(r, i, 0)));
        }
    }
    snprintf(last, XS_ID_MAX, "%s", n == limit ? xs_pg_res_get(r, n - 1, 0) : "");
    xs_pg_res_free(r);
    *out = a;
    return XS_OK;
}

/* The entities of this process's domain service (xs_domain_svc_main). */
static const xs_entity_ops *const *svc_entities;

static xs_err svc_init(const xs_proc *proc, xs_pg *pg, void **state)
{
    (void)pg;
    xs_domain_svc *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return XS_ENOMEM;
    }
    d->entities = svc_entities;
    xs_domain_xero_opts(proc->cfg, proc->log, &d->xero);
    d->db_url = xs_config_str(proc->cfg, "XS_DATABASE_URL");
    snprintf(d->ahead_app, sizeof(d->ahead_app), "%s read-ahead", proc->name);
    d->log = proc->log;
    *state = d;
    return XS_OK;
}

static void svc_fini(void *state)
{
    free(state);
}

int xs_domain_svc_main(const xs_svc_def *def, const xs_entity_ops *const *entities, int argc,
                       char **argv)
{
    svc_entities = entities;
    xs_svc_def d = *def;
    d.init = svc_init;
    d.fini = svc_fini;
    d.worker_init = xs_domain_worker_init;
    d.worker_fini = xs_domain_worker_fini;
    d.json_arena = true; /* a step's values all die with its reply */
    return xs_svc_main(&d, argc, argv);
}

bool xs_domain_one_of(const char *s, const char *const *set)
{
    for (size_t i = 0; s != NULL && set[i] != NULL; i++) {
        if (strcmp(s, set[i]) == 0) {
            return true;
        }
    }
    return false;
}

void xs_domain_xero_opts(const xs_config *cfg, xs_log *log, xs_xero_opts *out)
{
    *out = (xs_xero_opts){.login_url = xs_config_str(cfg, "XS_XERO_LOGIN_URL"),
                          .identity_url = xs_config_str(cfg, "XS_XERO_IDENTITY_URL"),
                          .api_url = xs_config_str(cfg, "XS_XERO_API_URL"),
                          .timeout_ms = xs_config_int(cfg, "XS_XERO_TIMEOUT"),
                          .log = log};
}

/* A worker's Xero clients: its own, and one that fetches a pull's next page meanwhile. */
/* A worker's clients: x for its requests, and for the pages a pull step reads ahead, the
 * helper thread's Xero client and database connection (opened on first use; db_failed once
 * it could not be, so the helper reads every record in full instead). */
typedef struct domain_worker {
    xs_xero *x, *ahead;
    const xs_domain_svc *svc;
    xs_pg *db_ahead;
    bool db_failed;
} domain_worker;

xs_err xs_domain_worker_init(void *state, void **wstate)
{
    xs_domain_svc *d = state;
    domain_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return XS_ENOMEM;
    }
    xs_err e = xs_xero_create(&w->x, &d->xero);
    if (e == XS_OK) {
        e = xs_xero_create(&w->ahead, &d->xero);
    }
    if (e != XS_OK) {
        xs_domain_worker_fini(w);
        return e;
    }
    w->svc = d;
    *wstate = w;
    return XS_OK;
}

void xs_domain_worker_fini(void *wstate)
{
    domain_worker *w = wstate;
    if (w != NULL) {
        xs_xero_destroy(w->x);
        xs_xero_destroy(w->ahead);
        xs_pg_close(w->db_ahead);
        free(w);
    }
}

static xs_xero *xero_of(xs_svc_ctx *ctx)
{
    return ((domain_worker *)ctx->wstate)->x;
}

/* find_entity returns the ops of the request's entity, or fails the request. */
static const xs_entity_ops *find_entity(xs_svc_ctx *ctx, const xs_msg *req)
{
    const xs_domain_svc *d = ctx->state;
    const char *name = xs_json_str_or(req->body, "entity", "");
    for (size_t i = 0; d->entities[i] != NULL; i++) {
        if (strcmp(d->entities[i]->name, name) == 0) {
            return d->entities[i];
        }
    }
    xs_svc_fail_field(ctx, XS_EINVAL, "entity", "the %s service does not sync entity %.32s",
                      ctx->service, name);
    return NULL;
}

/* The settings a step runs under. */
typedef struct settings {
    xs_policy policy, fallback;
    json_t *keys; /* borrowed or owned (keys_owned) */
    bool keys_owned;
    bool fill_empty_only;
    const json_t *types; /* the Types the pull is limited to (borrowed), or NULL */
} settings;

static xs_err settings_read(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                            settings *s)
{
    memset(s, 0, sizeof(*s));
    json_t *in = json_object_get(req->body, "settings");
    const char *p = xs_json_str_or(in, "policy", "last_write_wins");
    const char *f = xs_json_str_or(in, "fallback", "last_write_wins");
    if (xs_policy_parse(p, &s->policy) != XS_OK) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "settings.policy", "unknown policy %.32s", p);
    }
    if (xs_policy_parse(f, &s->fallback) != XS_OK || s->fallback == XS_POLICY_MERGE) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "settings.fallback",
                                 "the merge fallback must be a policy other than merge");
    }
    xs_json_get_bool(in, "fill_empty_only", &s->fill_empty_only);
    json_t *types = json_object_get(in, "types");
    if (types != NULL && !json_is_null(types)) {
        if (ops->type_field == NULL || xs_entity_types_check(types) != 0) {
            return xs_svc_fail_field(ctx, XS_EINVAL, "settings.types",
                                     ops->type_field == NULL
                                         ? "this entity has no types to filter on"
                                         : "types must be 1 to 16 Xero Type names (A-Z)");
        }
        s->types = types;
    }
    json_t *keys = json_object_get(in, "matching");
    if (json_is_array(keys)) {
        s->keys = keys;
    } else {
        s->keys = json_array();
        s->keys_owned = true;
        const xs_entity_info *info = xs_entity_find(ops->name);
        for (size_t i = 0; info != NULL && info->match_keys != NULL && info->match_keys[i]; i++) {
            json_array_append_new(s->keys, json_string(info->match_keys[i]));
        }
    }
    return XS_OK;
}

static void settings_fini(settings *s)
{
    if (s->keys_owned) {
        json_decref(s->keys);
    }
}

/* counts_add adds n to counts[key]. */
/* counts_add changes a count in place: a pull step's counts outlive its pages' values, which
 * go back to the arena after each page, so every key a pull counts is made by counts_new. */
static void counts_add(json_t *counts, const char *key, json_int_t n)
{
    json_t *v = json_object_get(counts, key);
    if (json_is_integer(v)) {
        json_integer_set(v, json_integer_value(v) + n);
    } else {
        json_object_set_new(counts, key, json_integer(n));
    }
}

static json_t *counts_new(const char *const *keys)
{
    json_t *c = json_object();
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_object_set_new(c, keys[i], json_integer(0));
    }
    return c;
}

/* call_json describes a call for the orchestrator's budget. */
static json_t *call_json(const xs_xero_call *c)
{
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s}", "status", (json_int_t)c->status, "duration_ms",
        (json_int_t)c->duration_ms, "min_remaining", (json_int_t)c->rate.min_remaining,
        "day_remaining", (json_int_t)c->rate.day_remaining, "app_min_remaining",
        (json_int_t)c->rate.app_min_remaining, "retry_after_s", (json_int_t)c->rate.retry_after_s,
        "problem", c->rate.problem, "error", c->error);
}

/* call_outcome classifies a finished call: NULL when its reply is to be used, else the
 * outcome to report ("retry", "token_rejected", "failed"). keyed says the call carried an
 * Idempotency-Key: a 409 then means an earlier send of the same request (say, by a replica
 * killed mid-call) is still being applied, so this one waits and asks again. */
static const char *call_outcome(xs_err e, long status, bool keyed)
{
    if (e != XS_OK) {
        /* No complete, readable reply: a write may have been applied, so it is sent again,
         * byte for byte with its key; a read is simply repeated. The orchestrator bounds the
         * attempts. */
        return "retry";
    }
    if (status == 401) {
        return "token_rejected";
    }
    if (status == 429 || status >= 500 || (keyed && status == 409)) {
        return "retry";
    }
    return NULL;
}

/* audit records a call (after any transaction). */
static void audit(xs_svc_ctx *ctx, const xs_msg *req, const xs_xero_call *call)
{
    xs_audit_ctx who = {.connection_id = req->conn,
                        .tenant_id = xs_json_str_or(req->body, "tenant_id", NULL),
                        .run_id = xs_json_str_or(req->body, "run_id", NULL)};
    json_int_t step = 0;
    int64_t sv = 0;
    if (xs_json_get_int(req->body, "step_id", &sv) == XS_OK) {
        step = sv;
    }
    who.step_id = step;
    if (xs_audit_call(ctx->pg, &who, call) != XS_OK) {
        xs_log_warn(ctx->proc->log, "audit.failed", "{s:s, s:s}", "path", call->path, "error",
                    xs_pg_error(ctx->pg));
    }
}

/* db_fail describes a database failure (retryable: the step runs again). */
static xs_err db_fail(xs_svc_ctx *ctx, xs_err e, const char *what)
{
    xs_pg_rollback(ctx->pg);
    return xs_svc_fail(ctx, e == XS_OK ? XS_EDB : e, true, "%s: %s", what, xs_pg_error(ctx->pg));
}

/* exec_json runs sql with parameters $1.. = params, the last being a JSON document. */
static xs_err exec_json(xs_pg *pg, xs_pg_res **out, const char *sql, int n, const char **params,
                        const json_t *doc)
{
    char *text = xs_json_dump(doc, 0);
    if (text == NULL) {
        return XS_ENOMEM;
    }
    const char *p[8];
    for (int i = 0; i < n && i < 7; i++) {
        p[i] = params[i];
    }
    p[n] = text;
    xs_err e = xs_pg_exec(pg, out, sql, n + 1, p);
    free(text);
    return e;
}

/* item_errors records per-item failures of a step: [{"local_id", "xero_id", "message"}]. */
static xs_err item_errors(xs_svc_ctx *ctx, const xs_msg *req, const char *entity,
                          const json_t *errors)
{
    if (json_array_size(errors) == 0 || xs_json_str_or(req->body, "run_id", NULL) == NULL) {
        return XS_OK;
    }
    char step[24] = "";
    int64_t sv = 0;
    xs_json_get_int(req->body, "step_id", &sv);
    snprintf(step, sizeof(step), "%lld", (long long)sv);
    const char *p[] = {xs_json_str_or(req->body, "run_id", NULL), sv > 0 ? step : NULL, entity};
    return exec_json(
        ctx->pg, NULL,
        "INSERT INTO sync.run_item_errors (run_id, step_id, entity, local_id, xero_id, "
        "message) SELECT $1, $2, $3, r.local_id, r.xero_id, r.message FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, message text)",
        3, p, errors);
}

/* refs_translate rewrites the references (ops->refs) of recs (n canonical records, changed in
 * place) from one side's ids to the other's through connection conn's mappings: Xero ids to
 * local ids (to_local) or back. A record one of whose references has no mapping is left as
 * it is with blocked[i] set, and the id it waits for is added to on[entity] (on: an object
 * of arrays). A null reference stays null. */
static xs_err refs_translate(xs_pg *pg, const char *conn, const xs_entity_ops *ops, json_t **recs,
                             size_t n, bool to_local, bool *blocked, json_t *on)
{
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        json_t *ids = json_array(), *seen = json_object();
        for (size_t i = 0; i < n; i++) {
            const char *v = json_string_value(json_object_get(recs[i], ref->field));
            if (v != NULL && xs_uuid_valid(v) && json_object_get(seen, v) == NULL) {
                json_object_set_new(seen, v, json_true());
                json_array_append_new(ids, json_string(v));
            }
        }
        json_decref(seen);
        if (json_array_size(ids) == 0) {
            json_decref(ids);
            continue;
        }
        char *arr = xs_domain_uuid_array(ids);
        json_decref(ids);
        if (arr == NULL) {
            return XS_ENOMEM;
        }
        xs_pg_res *r = NULL;
        xs_err e =
            xs_pg_q(pg, &r,
                    to_local ? "SELECT xero_id::text, local_id::text FROM sync.mappings WHERE "
                               "connection_id = $1 AND entity = $2 AND xero_id = "
                               "ANY($3::uuid[])"
                             : "SELECT local_id::text, xero_id::text FROM sync.mappings WHERE "
                               "connection_id = $1 AND entity = $2 AND local_id = "
                               "ANY($3::uuid[])",
                    conn, ref->entity, arr);
        free(arr);
        if (e != XS_OK) {
            return e;
        }
        json_t *to = json_object();
        for (int k = 0; k < xs_pg_res_nrows(r); k++) {
            json_object_set_new(to, xs_pg_res_get(r, k, 0), json_string(xs_pg_res_get(r, k, 1)));
        }
        xs_pg_res_free(r);
        json_t *waits = json_object_get(on, ref->entity);
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_object_get(recs[i], ref->field);
            if (v == NULL || json_is_null(v)) {
                continue;
            }
            const char *s = json_string_value(v);
            json_t *other = s != NULL ? json_object_get(to, s) : NULL;
            if (other != NULL) {
                json_object_set(recs[i], ref->field, other);
                continue;
            }
            blocked[i] = true;
            if (s != NULL && xs_uuid_valid(s)) {
                if (waits == NULL) {
                    waits = json_array();
                    json_object_set_new(on, ref->entity, waits);
                }
                bool have = false;
                size_t k;
                json_t *w;
                json_array_foreach(waits, k, w)
                {
                    have = have || strcmp(json_string_value(w), s) == 0;
                }
                if (!have) {
                    json_array_append_new(waits, json_string(s));
                }
            }
        }
        json_decref(to);
    }
    return XS_OK;
}

/* blocked_message says why a record waits: the first of its references that has no mapping
 * (translated or not, the record's field still holds the id it could not translate). */
static void blocked_message(const xs_entity_ops *ops, const json_t *rec, const json_t *on,
                            bool pulling, char *buf, size_t cap)
{
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        const char *v = json_string_value(json_object_get(rec, ref->field));
        size_t k;
        json_t *w;
        json_array_foreach(json_object_get(on, ref->entity), k, w)
        {
            if (v != NULL && strcmp(json_string_value(w), v) == 0) {
                snprintf(buf, cap,
                         pulling ? "its %s (Xero id %s) is not in sync here: it could not be "
                                   "read from Xero"
                                 : "its %s (local id %s) is not in Xero: it could not be pushed",
                         ref->field, v);
                return;
            }
        }
        if (v != NULL && !xs_uuid_valid(v)) {
            snprintf(buf, cap, "its %s is not an id: %.60s", ref->field, v);
            return;
        }
    }
    snprintf(buf, cap, "a record it refers to is not in sync");
}

/* item_error appends one failure. */
static void item_error(json_t *errors, const char *local_id, const char *xero_id, const char *msg)
{
    json_array_append_new(errors, json_pack("{s:s?, s:s?, s:s}", "local_id", local_id, "xero_id",
                                            xero_id, "message", msg));
}

/* load_mappings reads the mappings of connection conn for ids (Xero ids when by_xero, else
 * local ids) into *out (new), keyed by that id: {"local_id", "xero_id", "base", "checksum"}. */
static xs_err load_mappings_sums(xs_svc_ctx *ctx, const char *conn, const char *entity,
                                 const json_t *ids, const json_t *sums, bool by_xero, json_t **out);

static xs_err load_mappings(xs_svc_ctx *ctx, const char *conn, const char *entity,
                            const json_t *ids, bool by_xero, json_t **out)
{
    return load_mappings_sums(ctx, conn, entity, ids, NULL, by_xero, out);
}

/* load_mappings_sums is load_mappings given, for Xero ids, the checksums of the records just
 * read (sums, aligned with ids): a base is then sent only where its checksum differs — an
 * unchanged record, the common case, needs none. */
static xs_err load_mappings_sums(xs_svc_ctx *ctx, const char *conn, const char *entity,
                                 const json_t *ids, const json_t *sums, bool by_xero, json_t **out)
{
    json_t *m = json_object();
    if (m == NULL) {
        return XS_ENOMEM;
    }
    if (json_array_size(ids) == 0) {
        *out = m;
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(ids);
    if (arr == NULL) {
        json_decref(m);
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    char *sarr = NULL;
    if (sums != NULL && (sarr = fixed_array(sums, 2 * XS_SHA256_LEN, is_hex_sum)) == NULL) {
        free(arr);
        json_decref(m);
        return XS_ENOMEM;
    }
    xs_err e =
        sums != NULL
            ? xs_pg_q(ctx->pg, &r,
                      "SELECT m.xero_id, m.local_id, CASE WHEN m.base_checksum = r.sum THEN "
                      "NULL ELSE m.base END, m.base_checksum, m.xero_raw_sum FROM (SELECT "
                      "xero_id, local_id, base, base_checksum, xero_raw_sum FROM sync.mappings "
                      "WHERE connection_id = $1 AND entity = $2 AND xero_id = ANY($3::uuid[])) m "
                      "JOIN unnest($3::uuid[], $4::text[]) AS r(xid, sum) ON r.xid = m.xero_id",
                      conn, entity, arr, sarr)
        : by_xero ? xs_pg_q(ctx->pg, &r,
                            "SELECT xero_id, local_id, base, base_checksum, NULL, xero_parts "
                            "FROM sync.mappings WHERE connection_id = $1 AND entity = $2 AND "
                            "xero_id = ANY($3::uuid[])",
                            conn, entity, arr)
                  : xs_pg_q(ctx->pg, &r,
                            "SELECT xero_id, local_id, base, base_checksum, NULL, xero_parts "
                            "FROM sync.mappings WHERE connection_id = $1 AND entity = $2 AND "
                            "local_id = ANY($3::uuid[])",
                            conn, entity, arr);
    free(arr);
    free(sarr);
    if (e != XS_OK) {
        json_decref(m);
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        const char *basetext = xs_pg_res_get(r, i, 2);
        json_t *base = basetext != NULL ? xs_json_parse(basetext, strlen(basetext), NULL) : NULL;
        json_t *row =
            json_pack("{s:s, s:s, s:o, s:s?, s:s?}", "xero_id", xs_pg_res_get(r, i, 0), "local_id",
                      xs_pg_res_get(r, i, 1), "base", base != NULL ? base : json_null(), "checksum",
                      xs_pg_res_get(r, i, 3), "raw", sums != NULL ? xs_pg_res_get(r, i, 4) : NULL);
        const char *parts = sums == NULL ? xs_pg_res_get(r, i, 5) : NULL;
        if (parts != NULL) {
            json_object_set_new(row, "parts", xs_json_parse(parts, strlen(parts), NULL));
        }
        json_object_set_new(m, xs_pg_res_get(r, i, by_xero ? 0 : 1), row);
    }
    xs_pg_res_free(r);
    *out = m;
    return XS_OK;
}

/* pending_conflicts reads which of local ids have a conflict waiting for a person. */
static xs_err pending_conflicts(xs_svc_ctx *ctx, const char *conn, const char *entity,
                                const json_t *local_ids, json_t **out)
{
    json_t *set = json_object();
    if (set == NULL) {
        return XS_ENOMEM;
    }
    *out = set;
    if (json_array_size(local_ids) == 0) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(local_ids);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT local_id, id FROM sync.conflicts WHERE connection_id = $1 AND "
                       "entity = $2 AND status = 'PENDING' AND local_id = ANY($3::uuid[])",
                       conn, entity, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_object_set_new(set, xs_pg_res_get(r, i, 0), json_string(xs_pg_res_get(r, i, 1)));
    }
    xs_pg_res_free(r);
    return XS_OK;
}

/* A mapping to write: {"local_id", "xero_id", "base", "checksum", "xero_at", "local_at"};
 * sum is the base's checksum. */
static void mapping_add_sum(json_t *list, const char *local_id, const char *xero_id,
                            const json_t *base, const char *sum, xs_time xero_at, xs_time local_at)
{
    json_t *m = json_pack("{s:s, s:s, s:O, s:s}", "local_id", local_id, "xero_id", xero_id, "base",
                          base, "checksum", sum);
    if (xero_at > 0) {
        json_object_set_new(m, "xero_at", json_integer(xero_at));
    }
    if (local_at != 0) {
        /* -1: "not agreed": the local record differs from the base on purpose (it is to be
         * pushed), so a full scan must not take it as unchanged. */
        json_object_set_new(m, "local_at", json_integer(local_at));
    }
    json_array_append_new(list, m);
}

static void mapping_add(json_t *list, const char *local_id, const char *xero_id, const json_t *base,
                        xs_time xero_at, xs_time local_at)
{
    char sum[2 * XS_SHA256_LEN + 1];
    xs_sync_checksum(base, sum);
    mapping_add_sum(list, local_id, xero_id, base, sum, xero_at, local_at);
}

/* How a mapping written again takes the new values (write_mappings, the creates of
 * xs_domain_write_created). */
#define MAPPING_UPSERT                                                                             \
    "ON CONFLICT (connection_id, entity, xero_id) DO UPDATE SET local_id = EXCLUDED.local_id, "    \
    "base = EXCLUDED.base, base_checksum = EXCLUDED.base_checksum, xero_updated_at = "             \
    "coalesce(EXCLUDED.xero_updated_at, m.xero_updated_at), local_updated_at = "                   \
    "coalesce(EXCLUDED.local_updated_at, m.local_updated_at), last_synced_at = now(), "            \
    "sync_version = m.sync_version + 1, last_txid = EXCLUDED.last_txid, xero_raw_sum = "           \
    "CASE WHEN EXCLUDED.xero_raw_sum IS NULL THEN m.xero_raw_sum ELSE EXCLUDED.xero_raw_sum "      \
    "END, xero_raw_checksum = CASE WHEN EXCLUDED.xero_raw_sum IS NULL THEN "                       \
    "m.xero_raw_checksum ELSE EXCLUDED.xero_raw_checksum END, xero_parts = "                       \
    "coalesce(EXCLUDED.xero_parts, m.xero_parts)"
#define MAPPING_COLS                                                                               \
    "INSERT INTO sync.mappings AS m (connection_id, entity, local_id, xero_id, base, "             \
    "base_checksum, xero_updated_at, local_updated_at, last_synced_at, sync_version, last_txid, "  \
    "xero_raw_sum, xero_raw_checksum, xero_parts) "

/* write_mappings upserts mappings in the open transaction, stamped with txid; a contact
 * linked now leaves the connection's unlinked set (migration 0008). */
static xs_err write_mappings(xs_svc_ctx *ctx, const char *conn, const char *entity,
                             const char *txid, const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {conn, entity, txid};
    return exec_json(
        ctx->pg, NULL,
        "WITH w AS (" MAPPING_COLS
        "SELECT $1, $2, r.local_id, r.xero_id, r.base, r.checksum, 'epoch'::timestamptz + "
        "r.xero_at * interval '1 millisecond', CASE WHEN r.local_at = -1 THEN "
        "'-infinity'::timestamptz ELSE 'epoch'::timestamptz + r.local_at * interval '1 "
        "millisecond' END, now(), 1, $3, r.raw, r.raw_checksum, r.parts FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, base jsonb, checksum "
        "text, xero_at bigint, local_at bigint, raw text, raw_checksum text, parts "
        "jsonb) " MAPPING_UPSERT " RETURNING m.entity, m.local_id) "
        "DELETE FROM sync.unlinked_contacts u USING w WHERE w.entity = 'contact' AND "
        "u.connection_id = $1 AND u.contact_id = w.local_id",
        3, p, list);
}

xs_err xs_domain_write_created(xs_pg *pg, const char *org, const char *conn, const char *entity,
                               const char *txid, const json_t *creates, const char *insert)
{
    if (json_array_size(creates) == 0) {
        return XS_OK;
    }
    static const char head[] =
        "WITH r AS MATERIALIZED (SELECT * FROM jsonb_to_recordset($5::jsonb) AS r(id uuid, "
        "xero_id uuid, rec jsonb, checksum text, xero_at bigint, raw text, parts jsonb)), c AS (";
    static const char tail[] =
        ") " MAPPING_COLS "SELECT $2, $3, r.id, r.xero_id, r.rec, r.checksum, 'epoch'::timestamptz "
        "+ r.xero_at * interval '1 millisecond', " XS_DOMAIN_AT_MS(
            "now()") ", now(), 1, $4, r.raw, "
                     "CASE WHEN r.raw IS NOT NULL THEN r.checksum END, r.parts FROM "
                     "r " MAPPING_UPSERT;
    size_t cap = sizeof(head) + strlen(insert) + sizeof(tail);
    char *sql = malloc(cap);
    if (sql == NULL) {
        return XS_ENOMEM;
    }
    snprintf(sql, cap, "%s%s%s", head, insert, tail);
    const char *p[] = {org, conn, entity, txid};
    xs_err e = exec_json(pg, NULL, sql, 4, p, creates);
    free(sql);
    return e;
}

/* write_memos keeps, in the open transaction, the raw sums of records found unchanged
 * ([{"xero_id", "raw", "checksum"}]), whose mappings are not otherwise written. */
static xs_err write_memos(xs_svc_ctx *ctx, const char *conn, const char *entity, const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {conn, entity};
    return exec_json(ctx->pg, NULL,
                     "UPDATE sync.mappings m SET xero_raw_sum = r.raw, xero_raw_checksum = "
                     "r.checksum FROM jsonb_to_recordset($3::jsonb) AS r(xero_id uuid, raw text, "
                     "checksum text) WHERE m.connection_id = $1 AND m.entity = $2 AND m.xero_id "
                     "= r.xero_id",
                     2, p, list);
}

/* A conflict to record: {"local_id", "xero_id", "base", "local", "xero", "policy", "status",
 * "resolution", "merged"}. */
static void conflict_add(json_t *list, const char *local_id, const char *xero_id,
                         const json_t *base, const json_t *local, const json_t *xero,
                         const xs_sync_decision *d)
{
    bool held = d->action == XS_SYNC_HOLD;
    json_t *c = json_pack(
        "{s:s, s:s, s:O, s:O, s:O, s:s, s:s, s:s?, s:O?, s:s}", "local_id", local_id, "xero_id",
        xero_id, "base", base != NULL ? base : json_null(), "local", local, "xero", xero, "policy",
        xs_policy_name(d->policy), "status", held ? "PENDING" : "RESOLVED", "resolution",
        held ? NULL : "AUTO", "merged", held ? NULL : d->result, "reason", d->reason);
    json_array_append_new(list, c);
}

static xs_err write_conflicts(xs_svc_ctx *ctx, const xs_msg *req, const char *entity,
                              const json_t *list)
{
    if (json_array_size(list) == 0) {
        return XS_OK;
    }
    const char *p[] = {req->conn, entity, xs_json_str_or(req->body, "run_id", NULL)};
    return exec_json(
        ctx->pg, NULL,
        "INSERT INTO sync.conflicts AS c (connection_id, entity, local_id, xero_id, base, "
        "local_version, xero_version, policy, status, resolution, resolved_by, resolved_at, "
        "merged_data, reason, run_id) SELECT $1, $2, r.local_id, r.xero_id, r.base, r.local, "
        "r.xero, r.policy, r.status, r.resolution, CASE WHEN r.status = 'RESOLVED' THEN 'engine' "
        "END, CASE WHEN r.status = 'RESOLVED' THEN now() END, r.merged, r.reason, $3 FROM "
        "jsonb_to_recordset($4::jsonb) AS r(local_id uuid, xero_id uuid, base jsonb, local jsonb, "
        "xero jsonb, policy text, status text, resolution text, merged jsonb, reason text) "
        "ON CONFLICT (connection_id, entity, local_id) WHERE status = 'PENDING' DO UPDATE SET "
        "local_version = EXCLUDED.local_version, xero_version = EXCLUDED.xero_version, "
        "detected_at = now(), run_id = EXCLUDED.run_id",
        3, p, list);
}

/* queue_push puts local ids in the outbox, so the next push sends them to Xero. */
static xs_err queue_push(xs_svc_ctx *ctx, const char *org, const char *entity, const json_t *ids)
{
    if (json_array_size(ids) == 0) {
        return XS_OK;
    }
    const char *p[] = {org, entity};
    return exec_json(ctx->pg, NULL,
                     "SELECT sync.record_change($1, $2, value::uuid, 'update') FROM "
                     "jsonb_array_elements_text($3::jsonb)",
                     2, p, ids);
}

/*
 * assign_matches chooses, among candidate pairs (Xero record, local row, key), a one-to-one
 * linking: as many pairs as possible, each Xero record trying its candidates best key first
 * (Kuhn's augmenting paths). A greedy choice could give a Xero record the local row another
 * record can have by no other key, leaving that one to be created twice; this never does
 * within a page. Returns {xero_id: {"local_id", "key"}} (new), or NULL when out of memory.
 */
typedef struct edge {
    int x, l, rank;
} edge;

static int key_rank(const json_t *keys, const char *key)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (json_is_string(k) && strcmp(json_string_value(k), key) == 0) {
            return (int)i;
        }
    }
    return 1000;
}

static bool augment(int x, const edge *edges, const int *first, const int *count, int *owner,
                    char *seen)
{
    for (int i = first[x]; i < first[x] + count[x]; i++) {
        int l = edges[i].l;
        if (seen[l]) {
            continue;
        }
        seen[l] = 1;
        if (owner[l] < 0 || augment(owner[l], edges, first, count, owner, seen)) {
            owner[l] = x;
            return true;
        }
    }
    return false;
}

static int edge_cmp(const void *a, const void *b)
{
    const edge *p = a, *q = b;
    return p->x != q->x ? (p->x > q->x) - (p->x < q->x) : (p->rank > q->rank) - (p->rank < q->rank);
}

static json_t *assign_matches(const json_t *cands, const json_t *keys)
{
    json_t *xs = json_object(), *ls = json_object(), *xnames = json_array(), *lnames = json_array(),
           *out = json_object();
    size_t n = json_array_size(cands);
    edge *edges = calloc(n + 1, sizeof(edge));
    int *first = NULL, *count = NULL, *owner = NULL;
    char *seen = NULL;
    if (xs == NULL || ls == NULL || xnames == NULL || lnames == NULL || out == NULL ||
        edges == NULL) {
        goto fail;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cands, i, c)
    {
        const char *x = xs_json_str_or(c, "xero_id", ""), *l = xs_json_str_or(c, "local_id", "");
        json_t *xi = json_object_get(xs, x), *li = json_object_get(ls, l);
        if (xi == NULL) {
            xi = json_integer((json_int_t)json_array_size(xnames));
            json_object_set_new(xs, x, xi);
            json_array_append_new(xnames, json_string(x));
        }
        if (li == NULL) {
            li = json_integer((json_int_t)json_array_size(lnames));
            json_object_set_new(ls, l, li);
            json_array_append_new(lnames, json_string(l));
        }
        edges[i] = (edge){(int)json_integer_value(xi), (int)json_integer_value(li),
                          key_rank(keys, xs_json_str_or(c, "key", ""))};
    }
    qsort(edges, n, sizeof(edge), edge_cmp);
    size_t nx = json_array_size(xnames), nl = json_array_size(lnames);
    first = calloc(nx + 1, sizeof(int));
    count = calloc(nx + 1, sizeof(int));
    owner = malloc((nl + 1) * sizeof(int));
    seen = calloc(nl + 1, 1);
    if (first == NULL || count == NULL || owner == NULL || seen == NULL) {
        goto fail;
    }
    for (i = n; i-- > 0;) {
        first[edges[i].x] = (int)i;
        count[edges[i].x]++;
    }
    for (size_t l = 0; l < nl; l++) {
        owner[l] = -1;
    }
    /* Xero records whose best key is strongest go first, so they keep it. */
    for (int rank = 0; rank <= 1000; rank++) {
        bool any = false;
        for (size_t x = 0; x < nx; x++) {
            if (count[x] == 0 || edges[first[x]].rank != rank) {
                continue;
            }
            any = true;
            memset(seen, 0, nl);
            augment((int)x, edges, first, count, owner, seen);
        }
        if (!any && rank > (int)json_array_size(keys)) {
            break;
        }
    }
    for (size_t l = 0; l < nl; l++) {
        if (owner[l] < 0) {
            continue;
        }
        int x = owner[l];
        const char *key = "";
        for (int e = first[x]; e < first[x] + count[x]; e++) {
            if (edges[e].l == (int)l) {
                key = json_string_value(json_array_get(keys, (size_t)edges[e].rank));
                break;
            }
        }
        json_object_set_new(out, json_string_value(json_array_get(xnames, (size_t)x)),
                            json_pack("{s:s, s:s}", "local_id",
                                      json_string_value(json_array_get(lnames, l)), "key",
                                      key != NULL ? key : ""));
    }
    goto done;
fail:
    json_decref(out);
    out = NULL;
done:
    json_decref(xs);
    json_decref(ls);
    json_decref(xnames);
    json_decref(lnames);
    free(edges);
    free(first);
    free(count);
    free(owner);
    free(seen);
    return out;
}

/* refresh_stats re-analyses the tables big writes changed: during an initial import
 * PostgreSQL's statistics lag far behind the tables, and plans made on them (an anti-join
 * over "one" mapping that is really ten thousand) turn a 10 ms lookup into seconds. It runs
 * when the rows this process wrote since the last time reach those it had written before
 * then (at least ANALYZE_MIN_ROWS, at most ANALYZE_MAX_ROWS): the tables have about doubled,
 * so an import of n rows analyses about log2(n / ANALYZE_MIN_ROWS) times, and only the columns
 * lookups filter on (the canonical jsonb columns would cost more to analyse than the page), from
 * a small sample (statistics target ANALYZE_TARGET: 3,000 rows instead of 30,000, which took 0.8 s
 * of a 100,000-contact import each time; the plans need row counts, not fine histograms). Best
 * effort: a failure (say, no right to analyse the host application's table) is logged and ignored.
 */
static void refresh_stats(xs_svc_ctx *ctx, const xs_entity_ops *ops, size_t written)
{
    static _Atomic int64_t since_last, before;
    if (written == 0 || ops->analyze == NULL) {
        return;
    }
    int64_t now = atomic_fetch_add(&since_last, (int64_t)written) + (int64_t)written;
    int64_t was = atomic_load(&before);
    if (now < ANALYZE_MIN_ROWS || (now < was && now < ANALYZE_MAX_ROWS)) {
        return;
    }
    int64_t expected = now;
    if (!atomic_compare_exchange_strong(&since_last, &expected, 0)) {
        return; /* another worker wrote meanwhile; it sees the sum */
    }
    atomic_store(&before, was + now);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "ANALYZE %s, sync.mappings (connection_id, entity, local_id, xero_id, "
             "local_updated_at)",
             ops->analyze);
    if (xs_pg_begin(ctx->pg) != XS_OK ||
        xs_pg_q0(ctx->pg, NULL, "SET LOCAL default_statistics_target = " ANALYZE_TARGET) != XS_OK ||
        xs_pg_q0(ctx->pg, NULL, sql) != XS_OK || xs_pg_commit(ctx->pg) != XS_OK) {
        xs_log_warn(ctx->proc->log, "sync.analyze_failed", "{s:s}", "error", xs_pg_error(ctx->pg));
        xs_pg_rollback(ctx->pg);
    }
}

/* new_txid makes the id a sync write carries (the mapping keeps it). */
static void new_txid(const xs_msg *req, char *buf, size_t cap)
{
    int64_t step = 0;
    xs_json_get_int(req->body, "step_id", &step);
    char *tok = NULL;
    if (xs_crypto_random_token(6, &tok) != XS_OK) {
        tok = NULL;
    }
    snprintf(buf, cap, "s%lld.%s", (long long)step, tok != NULL ? tok : "x");
    free(tok);
}

/* retry_reply answers a step whose call did not give a usable reply. */
static xs_err outcome_reply(const char *outcome, json_t *counts, const xs_xero_call *call,
                            const char *message, json_t **reply)
{
    *reply = json_pack("{s:s, s:o, s:o, s:s}", "outcome", outcome, "counts", counts, "call",
                       call_json(call), "message", message != NULL ? message : "");
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

static const char *const PULL_COUNTS[] = {"fetched",   "created", "updated",  "unchanged",
                                          "conflicts", "failed",  "skipped",  "linked",
                                          "queued",    "retired", "deferred", NULL};

/* pull_path builds the list path of a pull step; types (checked by settings_read with
 * xs_entity_types_check, so nothing needs quoting in the filter) limits it to those Types. */
/* filter_ok checks a pull's filter: {"date_from": "YYYY-MM-DD"} (records dated from then
 * on) and/or {"statuses": [names]} (1 to 8 Xero statuses, A-Z). */
static bool filter_ok(const json_t *filter)
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
            const char *d = json_string_value(v);
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
                const char *x = json_string_value(st);
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

/* The keyset's tie-break of a page (pull_path): the records of the second the page starts at
 * (since) that the page before read, left out unless Xero changed them after that second. */
typedef struct tiebreak {
    xs_time since;
    const char (*ids)[XS_ID_MAX];
    size_t n;
} tiebreak;

static xs_err pull_path(const xs_entity_ops *ops, const json_t *ids, int64_t page,
                        int64_t page_size, const json_t *types, const json_t *filter,
                        const tiebreak *tb, char *path, size_t cap)
{
    size_t n;
    if (ids == NULL && ops->unpaged) {
        n = (size_t)snprintf(path, cap, "%s?order=UpdatedDateUTC%%20ASC", ops->xero_path);
    } else if (ids != NULL) {
        /* IDs=a,b where the list takes it, else where=<id_field>==Guid("a") OR ... */
        n = (size_t)snprintf(path, cap, "%s?%s", ops->xero_path,
                             ops->ids_param ? "IDs=" : "where=");
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            const char *id = json_string_value(v);
            if (id == NULL || !xs_uuid_valid(id) || n + 120 >= cap) {
                return XS_EINVAL;
            }
            if (ops->ids_param) {
                n += (size_t)snprintf(path + n, cap - n, "%s%s", i > 0 ? "," : "", id);
            } else {
                n += (size_t)snprintf(path + n, cap - n, "%s%s%%3D%%3DGuid(%%22%s%%22)",
                                      i > 0 ? "%20OR%20" : "", ops->id_field, id);
            }
        }
    } else {
        n = (size_t)snprintf(path, cap, "%s?page=%lld&pageSize=%lld&order=UpdatedDateUTC%%20ASC",
                             ops->xero_path, (long long)page, (long long)page_size);
    }
    const char *from = ids == NULL ? json_string_value(json_object_get(filter, "date_from")) : NULL;
    bool tie = ids == NULL && tb != NULL && tb->n > 0;
    if (ids == NULL && (types != NULL || from != NULL || tie) && n < cap) {
        /* where=(Type=="A" OR Type=="B") AND Date>=DateTime(y,m,d) AND (UpdatedDateUTC>=
         * DateTime(y,m,d,h,mi,s) OR (ID!=Guid("a") AND ID!=Guid("b"))), URL-encoded */
        n += (size_t)snprintf(path + n, cap - n, "&where=%s", types != NULL ? "(" : "");
        size_t i;
        json_t *t;
        json_array_foreach(types, i, t)
        {
            if (n >= cap) {
                break;
            }
            n += (size_t)snprintf(path + n, cap - n, "%s%s%%3D%%3D%%22%s%%22",
                                  i > 0 ? "%20OR%20" : "", ops->type_field, json_string_value(t));
        }
        if (types != NULL && n < cap) {
            n += (size_t)snprintf(path + n, cap - n, ")%s", from != NULL || tie ? "%20AND%20" : "");
        }
        if (from != NULL && n < cap) {
            n += (size_t)snprintf(path + n, cap - n, "Date%%3E%%3DDateTime(%.4s%%2C%.2s%%2C%.2s)%s",
                                  from, from + 5, from + 8, tie ? "%20AND%20" : "");
        }
        if (tie && n < cap) {
            char next[XS_TIME_ISO_MAX]; /* the second after since: "YYYY-MM-DDTHH:MM:SS.mmmZ" */
            xs_time_format_iso(tb->since + 1000, next);
            n += (size_t)snprintf(path + n, cap - n,
                                  "(UpdatedDateUTC%%3E%%3DDateTime(%.4s%%2C%.2s%%2C%.2s%%2C%.2s"
                                  "%%2C%.2s%%2C%.2s)%%20OR%%20(",
                                  next, next + 5, next + 8, next + 11, next + 14, next + 17);
            for (size_t k = 0; k < tb->n && n < cap; k++) {
                if (!xs_uuid_valid(tb->ids[k])) {
                    return XS_EINVAL;
                }
                n += (size_t)snprintf(path + n, cap - n, "%s%s%%21%%3DGuid(%%22%s%%22)",
                                      k > 0 ? "%20AND%20" : "", ops->id_field, tb->ids[k]);
            }
            if (n < cap) {
                n += (size_t)snprintf(path + n, cap - n, "))");
            }
        }
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
                                  json_string_value(st));
        }
    }
    if (ops->pull_query != NULL && n < cap) {
        n += (size_t)snprintf(path + n, cap - n, "&%s", ops->pull_query);
    }
    return n < cap ? XS_OK : XS_EINVAL;
}

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

/* memo_add gives the mappings added to list since *seen (those of one pulled record, r)
 * r's raw sum and what it reads as: a memo that holds whatever the base becomes; and the
 * Xero ids of its parts. */
static void memo_add(json_t *list, size_t *seen, const pulled *r)
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

/* A page's outcome when Xero refused its tie-break (fetch_page). */
static const char TIEBREAK_REFUSED[] = "tiebreak_refused";

/* What a pull asks for, the same for each of its pages (borrowed from the request). */
typedef struct pull_ask {
    const xs_entity_ops *ops;
    const json_t *ids;    /* fetch by Xero id, or NULL */
    const json_t *types;  /* settings.types, or NULL */
    const json_t *filter; /* the step's filter (filter_ok), or NULL */
    int64_t page_size;
    const char *bearer, *tenant_id;
    const char *conn; /* the connection, whose mappings hold the raw sums */
} pull_ask;

/* One page: its cursor, then what fetch_page and read_page found. fetch_page touches
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
    size_t n;     /* records Xero sent */
    xs_time last; /* the last readable record's UpdatedDateUTC: where the next page starts */
    /* the ids of the readable records of last's second, ntail of them; TIEBREAK_MAX + 1 when
     * there are more than TIEBREAK_MAX (then the next page re-reads them) */
    char tail[TIEBREAK_MAX][XS_ID_MAX];
    size_t ntail;
    json_t *drop; /* (helper thread) the page before's reply, to free meanwhile */
    /* the helper thread read the records too (read_page), which gave read_err */
    bool read_done;
    xs_err read_err;
    /* fetch_page: the records known unchanged by their raw sums, and the raw sums of the
     * others (aligned with the reply's list, which holds only them) */
    pulled *known;
    size_t nknown;
    char (*raws)[2 * XS_SHA256_LEN + 1];
    pulled *recs; /* read_page: the records read (the parsed ones first, then the known) */
    size_t nrec, nparsed;
    int64_t unreadable;
    json_t *errors, *xids; /* the unreadable ones; the ids of the read ones */
    xs_time high;          /* latest UpdatedDateUTC */
} page;

static void page_fini(page *p)
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
                       a->conn, a->ops->name, ids, raws);
    if (e != XS_OK) {
        return e;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_object_set_new(*out, xs_pg_res_get(r, i, 0), json_true());
    }
    xs_pg_res_free(r);
    return XS_OK;
}

/* take_items reads the records of a reply xs_xero_request left unparsed (resp.items): each's
 * raw sum first; those the mappings know unchanged by it go to p->known as they are (their
 * id and UpdatedDateUTC read from the text), the others are parsed into list, their sums
 * into p->raws. *order (new) says where each went. XS_EPROTO (with call.error) when a record
 * does not parse: the reply is garbled. When the sums cannot be read, every record is
 * parsed. */
static xs_err take_items(page *p, json_t *list, int32_t **order)
{
    const xs_entity_ops *ops = p->ask->ops;
    const xs_json_span *it = p->resp.items;
    size_t n = p->resp.nitems;
    const char *body = p->resp.body;
    typedef char sum_t[2 * XS_SHA256_LEN + 1];
    sum_t *sums = calloc(n + 1, sizeof(sum_t));
    char(*ids)[XS_ID_MAX] = calloc(n + 1, XS_ID_MAX);
    json_t *ask_ids = json_array(), *ask_sums = json_array();
    *order = calloc(n + 1, sizeof(int32_t));
    p->known = calloc(n + 1, sizeof(pulled));
    p->raws = calloc(n + 1, sizeof(sum_t));
    json_t *hits = NULL;
    char *id_arr = NULL, *raw_arr = NULL;
    xs_err e = XS_ENOMEM;
    if (sums == NULL || ids == NULL || ask_ids == NULL || ask_sums == NULL || *order == NULL ||
        p->known == NULL || p->raws == NULL || n > INT32_MAX) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t vlen;
        xs_sync_raw_sum(ops->name, body + it[i].off, it[i].len, sums[i]);
        if (sums[i][0] != '\0' &&
            xs_json_member_string(body + it[i].off, it[i].len, ops->id_field, &v, &vlen) &&
            vlen == 36) {
            memcpy(ids[i], v, 36);
            ids[i][36] = '\0';
            if (xero_id_ok(ids[i])) {
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
    xs_pg *db = json_array_size(ask_ids) > 0 ? (p->db != NULL ? p->db : ahead_db(p->w)) : NULL;
    if (db != NULL && ((id_arr = xs_domain_uuid_array(ask_ids)) == NULL ||
                       (raw_arr = fixed_array(ask_sums, 2 * XS_SHA256_LEN, is_hex_sum)) == NULL)) {
        goto out;
    }
    if (db != NULL && known_ids(db, p->ask, id_arr, raw_arr, &hits) != XS_OK) {
        /* Not known, then: every record is parsed, as it would be without sums. */
        if (p->w != NULL) {
            xs_log_warn(p->w->svc->log, "sync.raw_sums_unread", "{s:s, s:s}", "error",
                        xs_pg_error(db), "effect", "the page is parsed whole");
        }
        json_decref(hits);
        hits = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t vlen;
        char ts[64];
        xs_time at = 0;
        if (ids[i][0] != '\0' && json_object_get(hits, ids[i]) != NULL &&
            xs_json_member_string(body + it[i].off, it[i].len, "UpdatedDateUTC", &v, &vlen) &&
            vlen < sizeof(ts)) {
            memcpy(ts, v, vlen);
            ts[vlen] = '\0';
            if (xs_time_parse_any(ts, &at) == XS_OK) {
                pulled *k = &p->known[p->nknown];
                memcpy(k->xero_id, ids[i], sizeof(ids[i]));
                k->at = at;
                k->known = true;
                (*order)[i] = -1 - (int32_t)p->nknown++;
                continue;
            }
        }
        char why[XS_JSON_ERR_MAX];
        json_t *x = xs_json_parse(body + it[i].off, it[i].len, why);
        if (x == NULL) {
            /* "byte N" of the reply, as xs_xero_request says it of a reply parsed whole */
            size_t at_byte = 0;
            const char *colon = strchr(why, ':');
            if (sscanf(why, "byte %zu", &at_byte) == 1 && colon != NULL) {
                snprintf(p->call.error, sizeof(p->call.error),
                         "reply is not valid JSON: byte %zu%s", it[i].off + at_byte, colon);
            } else {
                snprintf(p->call.error, sizeof(p->call.error), "reply is not valid JSON: %s", why);
            }
            e = XS_EPROTO;
            goto out;
        }
        (*order)[i] = (int32_t)json_array_size(list);
        memcpy(p->raws[json_array_size(list)], sums[i], sizeof(sum_t));
        if (json_array_append_new(list, x) != 0) {
            goto out;
        }
    }
    e = XS_OK;
out:
    json_decref(hits);
    json_decref(ask_ids);
    json_decref(ask_sums);
    free(sums);
    free(ids);
    free(id_arr);
    free(raw_arr);
    return e;
}

/* fetch_page makes the page's call and finds where the next page would start. */
static void fetch_page(page *p)
{
    json_decref(p->drop);
    p->drop = NULL;
    const pull_ask *a = p->ask;
    const xs_entity_ops *ops = a->ops;
    char path[PULL_PATH_MAX];
    memset(&p->resp, 0, sizeof(p->resp));
    memset(&p->call, 0, sizeof(p->call));
    p->outcome = NULL;
    tiebreak tb = {p->since, (const char(*)[XS_ID_MAX])p->after, p->nafter};
    xs_err pe = pull_path(ops, a->ids, p->number, a->page_size, a->types, a->filter, &tb, path,
                          sizeof(path));
    if (pe != XS_OK && tb.n > 0) {
        /* Cannot happen with the ids Xero has (PULL_PATH_MAX); should it, the page re-reads
         * the records of its second rather than fail. */
        tb.n = 0;
        pe = pull_path(ops, a->ids, p->number, a->page_size, a->types, a->filter, &tb, path,
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
    p->outcome = call_outcome(e, p->resp.status, false);
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
        return;
    }
    if (p->outcome != NULL) {
        return;
    }
    xs_json_get_int(json_object_get(p->resp.json, "pagination"), "pageCount", &p->page_count);
    int32_t *order = NULL; /* with items: each's index in list, or -1 - its index in known */
    if (p->resp.items != NULL) {
        xs_err e2 = take_items(p, list, &order);
        if (e2 != XS_OK) {
            free(order);
            p->outcome = call_outcome(e2, 200, false);
            p->call.err = e2;
            if (e2 != XS_EPROTO) {
                snprintf(p->call.error, sizeof(p->call.error), "%s", xs_strerror(e2));
            }
            return;
        }
    }
    p->n = p->resp.items != NULL ? p->resp.nitems : json_array_size(list);
    /* From the end: the last readable record, and those of its second (the tie-break). */
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
            if (xs_domain_from_xero(ops, x, &rec, id, &at, why) != XS_OK || !xero_id_ok(id)) {
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
    free(order);
}

static xs_err read_page(page *p);

/* fetch_main is the helper thread's: the page's call, then its records read, so that the
 * worker finds them ready when it has written the page before. */
static void *fetch_main(void *arg)
{
    page *p = arg;
    fetch_page(p);
    if (p->outcome == NULL) {
        p->read_err = read_page(p);
        p->read_done = true;
    }
    return NULL;
}

/* read_page reads the page's records into their canonical form and checksums. */
static xs_err read_page(page *p)
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
            !xero_id_ok(r->xero_id)) {
            item_error(p->errors, NULL, xero_id_ok(r->xero_id) ? r->xero_id : NULL,
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

/* page_next tells whether p is the last page and, when not, the next page's cursor: keyset
 * on UpdatedDateUTC (ascending), whole seconds as If-Modified-Since takes them, page numbers
 * only within one second. The last page is a short one, or (Xero's pagination object, when
 * the reply has one) the last of pageCount, which saves asking for an empty page after a
 * full one. */
static bool page_next(const page *p, page *next)
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

/* tiebreak_refused logs that Xero refused page p's tie-break. */
static void tiebreak_refused(xs_svc_ctx *ctx, const page *p)
{
    xs_log_warn(ctx->proc->log, "sync.tiebreak_refused", "{s:s, s:I, s:s}", "entity",
                p->ask->ops->name, "status", (json_int_t)p->resp.status, "effect",
                "this pull's pages re-read the records of the second they start at");
}

/* cursor_of gives p's cursor alone: where a step stops, for the next to start at. A page
 * whose tie-break Xero refused is asked again without one, and so is the rest of the pull. */
static page cursor_of(const page *p)
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

static json_t *cursor_json(const page *p)
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

/* cursor_read takes a step's cursor's tie-break (cursor_json) into p; false when it is
 * not one. */
static bool cursor_read(const json_t *cursor, page *p)
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
        const char *id = json_string_value(v);
        if (id == NULL || !xs_uuid_valid(id)) {
            return false;
        }
        snprintf(p->after[i], XS_ID_MAX, "%s", id);
    }
    p->nafter = json_array_size(after);
    p->no_tiebreak = json_is_false(tb);
    return true;
}

/* The records of a pull step that wait for others, and those others by entity: kept outside
 * the JSON arena, since each page's values are given back when it is done. */
#define BLOCKED_REFS 4
typedef struct idlist {
    char (*v)[XS_ID_MAX];
    size_t n, cap;
} idlist;
typedef struct blocked_ids {
    idlist self;
    const char *entity[BLOCKED_REFS]; /* static, from the entity's refs */
    idlist on[BLOCKED_REFS];
} blocked_ids;

static bool idlist_add(idlist *l, const char *id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 64;
        void *v = realloc(l->v, cap * XS_ID_MAX);
        if (v == NULL) {
            return false;
        }
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], XS_ID_MAX, "%s", id);
    return true;
}

/* idlist_json is the list as a JSON array, each id once (new). */
static json_t *idlist_json(const idlist *l)
{
    json_t *a = json_array(), *seen = json_object();
    for (size_t i = 0; i < l->n; i++) {
        if (json_object_get(seen, l->v[i]) == NULL) {
            json_object_set_new(seen, l->v[i], json_true());
            json_array_append_new(a, json_string(l->v[i]));
        }
    }
    json_decref(seen);
    return a;
}

/* blocked_take adds what refs_translate found a page's records waiting for (on). */
static bool blocked_take(blocked_ids *b, const xs_entity_ops *ops, const json_t *on)
{
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        size_t slot = 0;
        while (slot < BLOCKED_REFS && b->entity[slot] != NULL &&
               strcmp(b->entity[slot], ref->entity) != 0) {
            slot++;
        }
        if (slot == BLOCKED_REFS) {
            return false;
        }
        b->entity[slot] = ref->entity;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(on, ref->entity), i, v)
        {
            if (!idlist_add(&b->on[slot], json_string_value(v))) {
                return false;
            }
        }
    }
    return true;
}

/* blocked_json is {"ids": [...], "on": {entity: [...]}}, or NULL when nothing waits. */
static json_t *blocked_json(const blocked_ids *b)
{
    if (b->self.n == 0) {
        return NULL;
    }
    json_t *on = json_object();
    for (size_t i = 0; i < BLOCKED_REFS && b->entity[i] != NULL; i++) {
        if (b->on[i].n > 0) {
            json_object_set_new(on, b->entity[i], idlist_json(&b->on[i]));
        }
    }
    return json_pack("{s:o, s:o}", "ids", idlist_json(&b->self), "on", on);
}

static void blocked_fini(blocked_ids *b)
{
    free(b->self.v);
    for (size_t i = 0; i < BLOCKED_REFS; i++) {
        free(b->on[i].v);
    }
}

/* ------------------------------------------------------- what a person edits */

/* edit_view is what conflict decisions compare of rec (new; NULL for NULL): the entity's
 * edits view, or rec without its computed fields, or rec itself. */
static json_t *edit_view(const xs_entity_ops *ops, const json_t *rec)
{
    if (rec == NULL) {
        return NULL;
    }
    if (ops->edits != NULL) {
        return ops->edits(rec);
    }
    if (ops->computed == NULL) {
        return json_incref((json_t *)rec);
    }
    json_t *v = json_copy((json_t *)rec);
    for (size_t k = 0; v != NULL && ops->computed[k] != NULL; k++) {
        json_object_del(v, ops->computed[k]);
    }
    return v;
}

/* full_record lays Xero's computed values (from its record xero) over view, a decided edits
 * view (new). */
static json_t *full_record(const xs_entity_ops *ops, const json_t *view, const json_t *xero)
{
    if (ops->with_computed != NULL) {
        return ops->with_computed(view, xero);
    }
    if (ops->computed == NULL) {
        return json_incref((json_t *)view);
    }
    json_t *r = json_copy((json_t *)view);
    for (size_t k = 0; r != NULL && ops->computed[k] != NULL; k++) {
        json_t *v = json_object_get(xero, ops->computed[k]);
        json_object_set(r, ops->computed[k], v != NULL ? v : json_null());
    }
    return r;
}

/* decide is xs_sync_decide over what a person edits: fields Xero computes follow Xero without
 * counting as a change of either side (a payment made in Xero is no edit of its invoice), so
 * d->result is the decided edits with Xero's computed values. *fix (new, or NULL) is the
 * local record with Xero's computed values when the decision keeps its edits (none, or to
 * Xero) but those values differ from the local row's. */
static xs_err decide(const xs_entity_ops *ops, const json_t *base, const json_t *local,
                     const json_t *xero, int64_t local_at, xs_time xero_at, const settings *set,
                     xs_sync_decision *d, json_t **fix)
{
    *fix = NULL;
    if (ops->final != NULL && ops->final(xero) && !xs_json_equal(local, xero)) {
        /* Xero will never change it again: whatever differs here cannot reach it. */
        json_t *lv = edit_view(ops, local), *bv = edit_view(ops, base);
        memset(d, 0, sizeof(*d));
        d->action = XS_SYNC_TO_LOCAL;
        d->result = json_incref((json_t *)xero);
        d->policy = set->policy;
        d->conflict = bv == NULL || !xs_json_equal(lv, bv);
        snprintf(d->reason, sizeof(d->reason),
                 "Xero holds it %.20s, which is final there: Xero's version is kept%s",
                 xs_json_str_or(xero, "status", "final"),
                 d->conflict ? " and the local change undone" : "");
        json_decref(lv);
        json_decref(bv);
        return XS_OK;
    }
    if (ops->computed == NULL && ops->edits == NULL) {
        return xs_sync_decide(base, local, xero, local_at, xero_at, set->policy, set->fallback, d);
    }
    json_t *bv = edit_view(ops, base), *lv = edit_view(ops, local), *xv = edit_view(ops, xero);
    xs_err e = lv != NULL && xv != NULL
                   ? xs_sync_decide(bv, lv, xv, local_at, xero_at, set->policy, set->fallback, d)
                   : XS_ENOMEM;
    if (e == XS_OK && d->result != NULL) {
        json_t *full = full_record(ops, d->result, xero);
        json_decref(d->result);
        d->result = full;
    }
    if (e == XS_OK && (d->action == XS_SYNC_NONE || d->action == XS_SYNC_TO_XERO)) {
        json_t *mine = full_record(ops, lv, xero);
        if (mine != NULL && !xs_json_equal(mine, local)) {
            *fix = mine;
        } else {
            json_decref(mine);
        }
    }
    json_decref(bv);
    json_decref(lv);
    json_decref(xv);
    return e;
}

/* ------------------------------------------------------------- applying a page */

/* What a page's records come to, gathered before one transaction writes it. */
typedef struct page_out {
    json_t *maps;      /* mappings to write (mapping_add) */
    json_t *creates;   /* new local rows [{"id", "rec"}] (write_local) */
    json_t *created;   /* new local rows with their mappings (write_created) */
    json_t *updates;   /* local rows to write [{"id", "rec"}] */
    json_t *conflicts; /* conflict_add */
    json_t *queue;     /* local ids to send to Xero */
    json_t *memos;     /* write_memos */
    json_t *linked;    /* local ids of in-doubt creates found in Xero (their claims go) */
    json_t *counts;    /* this try's counts (PULL_COUNTS) */
    blocked_ids blocked;
} page_out;

static bool page_out_init(page_out *o)
{
    memset(o, 0, sizeof(*o));
    o->maps = json_array();
    o->creates = json_array();
    o->created = json_array();
    o->updates = json_array();
    o->conflicts = json_array();
    o->queue = json_array();
    o->memos = json_array();
    o->linked = json_array();
    o->counts = counts_new(PULL_COUNTS);
    return o->maps != NULL && o->creates != NULL && o->created != NULL && o->updates != NULL &&
           o->conflicts != NULL && o->queue != NULL && o->memos != NULL && o->linked != NULL &&
           o->counts != NULL;
}

static void page_out_fini(page_out *o)
{
    json_decref(o->maps);
    json_decref(o->creates);
    json_decref(o->created);
    json_decref(o->updates);
    json_decref(o->conflicts);
    json_decref(o->queue);
    json_decref(o->memos);
    json_decref(o->linked);
    json_decref(o->counts);
    blocked_fini(&o->blocked);
}

/* What is known here of a page's records, read before deciding them. */
typedef struct page_known {
    json_t *mappings; /* by Xero id (load_mappings_sums) */
    json_t *claimed;  /* by Xero id: {"local_id", "sent"}, an in-doubt create of ours */
    json_t *matched;  /* by Xero id: a local row matched on first link (assign_matches) */
    json_t *local;    /* by local id (ops->load_local) */
    json_t *pending;  /* local ids with a conflict held for a person */
    json_t *sent;     /* by local id: what a push of ours not yet recorded sent (an update) */
} page_known;

static void page_known_fini(page_known *k)
{
    json_decref(k->mappings);
    json_decref(k->claimed);
    json_decref(k->matched);
    json_decref(k->local);
    json_decref(k->pending);
    json_decref(k->sent);
    memset(k, 0, sizeof(*k));
}

/* sent_matches tells whether Xero's record rec can be the one Xero made from sent, the
 * canonical record of one of our creates: every field a person edits that sent sets, rec
 * holds the same (Xero fills in what was left empty, and computes the rest). */
static bool sent_matches(const xs_entity_ops *ops, const json_t *sent, const json_t *rec)
{
    json_t *sv = edit_view(ops, sent), *rv = edit_view(ops, rec);
    bool same = sv != NULL && rv != NULL;
    const char *k;
    json_t *v;
    json_object_foreach(same ? sv : NULL, k, v)
    {
        if (!xs_sync_is_empty(v) && !xs_json_equal(v, json_object_get(rv, k))) {
            same = false;
            break;
        }
    }
    json_decref(sv);
    json_decref(rv);
    return same;
}

/* holds_sent tells whether Xero's record rec holds exactly what we sent of it (sent, an
 * update), in everything a person edits. */
static bool holds_sent(const xs_entity_ops *ops, const json_t *sent, const json_t *rec)
{
    json_t *sv = edit_view(ops, sent), *rv = edit_view(ops, rec);
    bool same = sv != NULL && rv != NULL && xs_json_equal(sv, rv);
    json_decref(sv);
    json_decref(rv);
    return same;
}

/* page_claims reads, in one query, the claims (sync.push_claims) a page's decisions need:
 * the connection's creates in doubt whose local record no mapping knows yet, in the order
 * they were claimed (*creates, new: [{"local_id", "sent"}]), when want_creates; and what the
 * unrecorded updates of the page's mapped local records (mapped) sent (*updates, new: {local
 * id: canonical record}). */
static xs_err page_claims(xs_svc_ctx *ctx, const xs_msg *req, const xs_entity_ops *ops,
                          const json_t *mapped, bool want_creates, json_t **creates,
                          json_t **updates)
{
    *creates = json_array();
    *updates = json_object();
    if (*creates == NULL || *updates == NULL) {
        return XS_ENOMEM;
    }
    if (!ops->pushable || (!want_creates && json_array_size(mapped) == 0)) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(mapped);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT c.local_id::text, c.op, c.sent::text FROM sync.push_claims c WHERE "
                       "c.connection_id = $1 AND c.entity = $2 AND c.sent IS NOT NULL AND ((c.op = "
                       "'create' AND $4::boolean AND c.settled_by IS NOT NULL AND NOT EXISTS "
                       "(SELECT 1 FROM sync.mappings m WHERE m.connection_id = $1 AND m.entity = "
                       "$2 AND m.local_id = c.local_id)) OR (c.op = 'update' AND c.local_id = "
                       "ANY($3::uuid[]))) ORDER BY c.claimed_at, c.local_id",
                       req->conn, ops->name, arr, want_creates ? "true" : "false");
    free(arr);
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        const char *t = xs_pg_res_get(r, i, 2);
        json_t *sent = xs_json_parse(t, strlen(t), NULL);
        if (sent == NULL) {
            continue;
        }
        if (strcmp(xs_pg_res_get(r, i, 1), "create") == 0) {
            json_array_append_new(*creates, json_pack("{s:s, s:o}", "local_id",
                                                      xs_pg_res_get(r, i, 0), "sent", sent));
        } else {
            json_object_set_new(*updates, xs_pg_res_get(r, i, 0), sent);
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* find_own_creates looks, among a page's records no mapping knows (unmapped: [{"xero_id",
 * "rec"}]), for those one of our own pushes made while its reply was lost: each create in
 * doubt (creates, page_claims) can be at most one of them, in the order they were claimed.
 * *out (new): {xero_id: {"local_id", "sent"}}. */
static json_t *find_own_creates(const xs_entity_ops *ops, const json_t *unmapped,
                                const json_t *creates)
{
    json_t *out = json_object();
    size_t n = json_array_size(creates);
    bool *used = calloc(n + 1, sizeof(bool));
    if (out == NULL || used == NULL) {
        json_decref(out);
        free(used);
        return NULL;
    }
    size_t i;
    json_t *u;
    json_array_foreach(unmapped, i, u)
    {
        for (size_t c = 0; c < n; c++) {
            json_t *own = json_array_get(creates, c);
            if (!used[c] &&
                sent_matches(ops, json_object_get(own, "sent"), json_object_get(u, "rec"))) {
                used[c] = true;
                json_object_set(out, xs_json_str_or(u, "xero_id", ""), own);
                break;
            }
        }
    }
    free(used);
    return out;
}

/* page_lookup reads what is known here of a page's records (refs already translated). */
static xs_err page_lookup(xs_svc_ctx *ctx, const xs_msg *req, const settings *set, page *pg,
                          page_known *k)
{
    const xs_entity_ops *ops = pg->ask->ops;
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    pulled *recs = pg->recs;
    json_t *sums = json_array(), *local_ids = json_array(), *unmatched = json_array();
    int64_t t0 = xs_clock_mono_ms(), tm = 0, tl = 0;
    size_t i;
    xs_err e = sums != NULL && local_ids != NULL && unmatched != NULL ? XS_OK : XS_ENOMEM;
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        json_array_append_new(sums, json_string(recs[i].sum));
    }
    if (e == XS_OK && (e = load_mappings_sums(ctx, req->conn, ops->name, pg->xids, sums, true,
                                              &k->mappings)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read mappings");
    }
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        json_t *m = json_object_get(k->mappings, recs[i].xero_id);
        if (recs[i].blocked) {
            continue;
        }
        if (m == NULL) {
            json_array_append_new(
                unmatched, json_pack("{s:s, s:O}", "xero_id", recs[i].xero_id, "rec", recs[i].rec));
        } else if (!json_is_null(json_object_get(m, "base")) ||
                   json_object_get(m, "checksum") == NULL) {
            /* An unchanged record (its checksum is the base's) needs nothing local. */
            json_array_append_new(local_ids, json_string(xs_json_str_or(m, "local_id", "")));
        }
    }
    /* Our own creates first: a record one of our pushes made is linked to the local row
     * that caused it, never matched to another nor imported. */
    json_t *creates = NULL;
    if (e == XS_OK && (e = page_claims(ctx, req, ops, local_ids, json_array_size(unmatched) > 0,
                                       &creates, &k->sent)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read the pushes in doubt");
    }
    if (e == XS_OK && (k->claimed = find_own_creates(ops, unmatched, creates)) == NULL) {
        e = XS_ENOMEM;
    }
    json_decref(creates);
    if (e == XS_OK && json_object_size(k->claimed) > 0) {
        json_t *rest = json_array();
        json_t *u;
        json_array_foreach(unmatched, i, u)
        {
            json_t *c = json_object_get(k->claimed, xs_json_str_or(u, "xero_id", ""));
            if (c != NULL) {
                json_array_append_new(local_ids, json_string(xs_json_str_or(c, "local_id", "")));
            } else {
                json_array_append(rest, u);
            }
        }
        json_decref(unmatched);
        unmatched = rest;
    }
    tm = xs_clock_mono_ms();
    if (e == XS_OK && ops->match != NULL && json_array_size(unmatched) > 0 &&
        json_array_size(set->keys) > 0) {
        json_t *cands = NULL;
        if ((e = ops->match(ctx->pg, org, req->conn, unmatched, set->keys, &cands)) != XS_OK) {
            e = db_fail(ctx, e, "cannot match records");
        } else if ((k->matched = assign_matches(cands, set->keys)) == NULL) {
            e = XS_ENOMEM;
        }
        json_decref(cands);
        const char *key;
        json_t *v;
        json_object_foreach(e == XS_OK ? k->matched : NULL, key, v)
        {
            json_array_append_new(local_ids, json_string(xs_json_str_or(v, "local_id", "")));
        }
    }
    tl = xs_clock_mono_ms();
    if (e == XS_OK &&
        ((e = ops->load_local(ctx->pg, org, local_ids, &k->local)) != XS_OK ||
         (e = pending_conflicts(ctx, req->conn, ops->name, local_ids, &k->pending)) != XS_OK)) {
        e = db_fail(ctx, e, "cannot read local records");
    }
    xs_log_debug(ctx->proc->log, "sync.pull_lookup", "{s:I, s:I, s:I}", "mappings_ms",
                 (json_int_t)(tm - t0), "match_ms", (json_int_t)(tl - tm), "local_ms",
                 (json_int_t)(xs_clock_mono_ms() - tl));
    json_decref(sums);
    json_decref(local_ids);
    json_decref(unmatched);
    return e;
}

/* import_record makes a new local row of Xero's record p (new to this connection). */
static xs_err import_record(const xs_entity_ops *ops, const pulled *p, page_out *o)
{
    char nid[XS_ID_MAX];
    xs_err e = xs_uuid_random_text(nid);
    if (e != XS_OK) {
        return e;
    }
    if (ops->write_created != NULL) {
        json_t *c = json_pack("{s:s, s:s, s:O, s:s}", "id", nid, "xero_id", p->xero_id, "rec",
                              p->rec, "checksum", p->sum);
        if (p->at > 0) {
            json_object_set_new(c, "xero_at", json_integer(p->at));
        }
        if (p->raw[0] != '\0') {
            json_object_set_new(c, "raw", json_string(p->raw)); /* reads as checksum */
        }
        if (p->parts != NULL) {
            json_object_set(c, "parts", p->parts);
        }
        json_array_append_new(o->created, c);
    } else {
        json_array_append_new(o->creates, json_pack("{s:s, s:O}", "id", nid, "rec", p->rec));
        mapping_add_sum(o->maps, nid, p->xero_id, p->rec, p->sum, p->at, 0);
    }
    counts_add(o->counts, "created", 1);
    return XS_OK;
}

/* decide_pulled decides Xero's record p against the local row l (lid) and the base (NULL
 * on first link), under the step's settings; m is its mapping, or NULL when this page links
 * it. queue: a record to send to Xero goes into the outbox (a re-read before a push does
 * not: the push that follows sends it). */
static xs_err decide_pulled(xs_svc_ctx *ctx, const xs_entity_ops *ops, const settings *set,
                            const pulled *p, const char *lid, const json_t *m, const json_t *base,
                            const json_t *l, bool queue, page_out *o, const page_known *k)
{
    json_t *lrec = json_object_get(l, "rec");
    int64_t lat = 0;
    xs_json_get_int(l, "at", &lat);
    if (!ops->pushable) {
        /* A read-only mirror: Xero's version is the record; a local edit is overwritten. */
        bool same = xs_json_equal(lrec, p->rec);
        if (!same) {
            json_array_append_new(o->updates, json_pack("{s:s, s:O}", "id", lid, "rec", p->rec));
        }
        mapping_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, same ? lat : 0);
        counts_add(o->counts, same ? "unchanged" : "updated", 1);
        return XS_OK;
    }
    if (m == NULL && set->fill_empty_only) {
        json_t *filled = xs_sync_fill_empty(lrec, p->rec);
        bool changed = !xs_json_equal(filled, lrec), differs = !xs_json_equal(filled, p->rec);
        if (changed) {
            json_array_append_new(o->updates, json_pack("{s:s, s:O}", "id", lid, "rec", filled));
        }
        counts_add(o->counts, changed ? "updated" : "unchanged", 1);
        mapping_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, differs ? -1 : 0);
        if (differs) {
            json_array_append_new(o->queue, json_string(lid));
            counts_add(o->counts, "queued", 1);
        }
        json_decref(filled);
        return XS_OK;
    }
    if (json_object_get(k->pending, lid) != NULL) {
        /* Held for a person: keep both versions current, write nothing. */
        xs_sync_decision held = {.action = XS_SYNC_HOLD, .policy = XS_POLICY_MANUAL};
        snprintf(held.reason, sizeof(held.reason), "held for a person");
        conflict_add(o->conflicts, lid, p->xero_id, base, lrec, p->rec, &held);
        counts_add(o->counts, "skipped", 1);
        return XS_OK;
    }
    xs_sync_decision d;
    json_t *fix = NULL;   /* the local row with Xero's computed values, when only they differ */
    int64_t edited = lat; /* when the host application last changed it */
    xs_json_get_int(l, "edited", &edited);
    xs_err e = decide(ops, base, lrec, p->rec, edited, p->at, set, &d, &fix);
    if (e != XS_OK) {
        return xs_svc_fail(ctx, e, false, "cannot decide record %s", p->xero_id);
    }
    if (d.conflict) {
        conflict_add(o->conflicts, lid, p->xero_id, base, lrec, p->rec, &d);
        counts_add(o->counts, "conflicts", 1);
    }
    if (fix != NULL) {
        json_array_append_new(o->updates, json_pack("{s:s, s:o}", "id", lid, "rec", fix));
    }
    switch (d.action) {
    case XS_SYNC_NONE:
        mapping_add(o->maps, lid, p->xero_id, d.result, p->at, fix != NULL ? 0 : lat);
        counts_add(o->counts, fix != NULL ? "updated" : "unchanged", 1);
        break;
    case XS_SYNC_TO_LOCAL:
        json_array_append_new(o->updates, json_pack("{s:s, s:O}", "id", lid, "rec", d.result));
        mapping_add(o->maps, lid, p->xero_id, d.result, p->at, 0);
        counts_add(o->counts, "updated", 1);
        break;
    case XS_SYNC_TO_XERO:
    case XS_SYNC_BOTH:
        if (d.action == XS_SYNC_BOTH) {
            json_array_append_new(o->updates, json_pack("{s:s, s:O}", "id", lid, "rec", d.result));
            counts_add(o->counts, "updated", 1);
        }
        /* The base becomes Xero's version, so the local one reads as changed and the
         * outbox (or a full run's scan, or the push this re-read is for) sends it. */
        mapping_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, -1);
        if (queue) {
            json_array_append_new(o->queue, json_string(lid));
            counts_add(o->counts, "queued", 1);
        }
        break;
    case XS_SYNC_HOLD:
        if (m == NULL) {
            json_array_append_new(o->maps, json_pack("{s:s, s:s, s:n, s:n, s:I}", "local_id", lid,
                                                     "xero_id", p->xero_id, "base", "checksum",
                                                     "xero_at", (json_int_t)p->at));
        }
        break;
    }
    xs_sync_decision_fini(&d);
    return XS_OK;
}

/* decide_page decides each record of the page into o. Every mapping written for a record
 * keeps its raw sum and parts (memo_add, run after each record however its branch ends). */
static xs_err decide_page(xs_svc_ctx *ctx, const xs_msg *req, const settings *set, page *pg,
                          const json_t *on, bool queue, const page_known *k, page_out *o)
{
    const xs_entity_ops *ops = pg->ask->ops;
    bool final = json_is_true(json_object_get(req->body, "final"));
    size_t nmaps = 0, i;
    xs_err e = XS_OK;
    for (i = 0; e == XS_OK && i < pg->nrec; memo_add(o->maps, &nmaps, &pg->recs[i]), i++) {
        pulled *p = &pg->recs[i];
        if (p->known) {
            counts_add(o->counts, "unchanged", 1);
            continue;
        }
        if (p->blocked) {
            char msg[XS_DOMAIN_WHY_MAX];
            if (final) {
                blocked_message(ops, p->rec, on, true, msg, sizeof(msg));
                item_error(pg->errors, NULL, p->xero_id, msg);
            } else if (!idlist_add(&o->blocked.self, p->xero_id)) {
                e = XS_ENOMEM;
            }
            counts_add(o->counts, final ? "failed" : "deferred", 1);
            continue;
        }
        json_t *m = json_object_get(k->mappings, p->xero_id);
        json_t *own = json_object_get(k->claimed, p->xero_id);
        json_t *mt = json_object_get(k->matched, p->xero_id);
        const json_t *base = NULL;
        const char *lid = NULL;
        if (m != NULL && strcmp(xs_json_str_or(m, "checksum", ""), p->sum) == 0) {
            if (p->raw[0] != '\0' && strcmp(xs_json_str_or(m, "raw", ""), p->raw) != 0) {
                /* Unchanged, but sent as other text than last time: keep this text's sum,
                 * so it is known the next time it comes. */
                json_array_append_new(o->memos, json_pack("{s:s, s:s, s:s}", "xero_id", p->xero_id,
                                                          "raw", p->raw, "checksum", p->sum));
            }
            counts_add(o->counts, "unchanged", 1);
            continue;
        }
        if (m != NULL) {
            lid = xs_json_str_or(m, "local_id", "");
            base = json_object_get(m, "base");
            json_t *sent = json_object_get(k->sent, lid);
            if (sent != NULL && holds_sent(ops, sent, p->rec)) {
                /* Our own update, applied while its reply was lost: the base is what we sent,
                 * so our write does not read as a Xero edit newer than a later local one. */
                base = sent;
            }
        } else if (own != NULL) {
            /* Made by one of our pushes whose reply never came: what was sent is the base. */
            lid = xs_json_str_or(own, "local_id", "");
            base = json_object_get(own, "sent");
            json_array_append_new(o->linked, json_string(lid));
            counts_add(o->counts, "linked", 1);
        } else if (mt != NULL) {
            lid = xs_json_str_or(mt, "local_id", "");
            counts_add(o->counts, "linked", 1);
        } else {
            e = import_record(ops, p, o);
            continue;
        }
        base = json_is_object(base) ? base : NULL;
        json_t *l = json_object_get(k->local, lid);
        if (l == NULL) {
            /* The local row was deleted by the host application: its removal goes to Xero
             * through the outbox; nothing comes back, but the base follows Xero, so that
             * what retires the record in Xero is decided against what Xero holds. */
            if (own != NULL || (base != NULL && ops->pushable)) {
                mapping_add_sum(o->maps, lid, p->xero_id, p->rec, p->sum, p->at, -1);
            }
            counts_add(o->counts, "skipped", 1);
            continue;
        }
        e = decide_pulled(ctx, ops, set, p, lid, m, base, l, queue, o, k);
    }
    return e;
}

/* lock_local locks, in the open transaction, the local rows the page writes over and tells
 * whether each is still as it was read (its updated_at, to the millisecond): false when the
 * host application wrote one since, so the page must be decided again. */
static xs_err lock_local(xs_svc_ctx *ctx, const xs_entity_ops *ops, const page_known *k,
                         const json_t *updates, bool *same)
{
    *same = true;
    if (ops->table == NULL || json_array_size(updates) == 0) {
        return XS_OK;
    }
    json_t *ids = json_array();
    size_t i;
    json_t *u;
    json_array_foreach(updates, i, u)
    {
        json_array_append_new(ids, json_string(xs_json_str_or(u, "id", "")));
    }
    char *arr = xs_domain_uuid_array(ids);
    json_decref(ids);
    if (arr == NULL) {
        return XS_ENOMEM;
    }
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id::text, " XS_DOMAIN_MS("updated_at") " FROM %s WHERE id = ANY($1::uuid[]) "
                                                            "ORDER BY id FOR UPDATE",
             ops->table);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r, sql, arr);
    free(arr);
    if (e != XS_OK) {
        return e;
    }
    json_t *seen = json_object();
    for (int row = 0; row < xs_pg_res_nrows(r); row++) {
        int64_t now = 0, then = -1;
        xs_pg_res_int(r, row, 1, &now);
        xs_json_get_int(json_object_get(k->local, xs_pg_res_get(r, row, 0)), "at", &then);
        json_object_set_new(seen, xs_pg_res_get(r, row, 0), json_true());
        *same = *same && now == then;
    }
    json_array_foreach(updates, i, u)
    {
        *same = *same && json_object_get(seen, xs_json_str_or(u, "id", "")) != NULL;
    }
    json_decref(seen);
    xs_pg_res_free(r);
    return XS_OK;
}

/* release_linked lets go, in the open transaction, of the claims of in-doubt creates this
 * page found in Xero (linked), queueing those another push wanted meanwhile. */
static xs_err release_linked(xs_svc_ctx *ctx, const xs_msg *req, const xs_entity_ops *ops,
                             const json_t *linked)
{
    if (json_array_size(linked) == 0) {
        return XS_OK;
    }
    char *arr = xs_domain_uuid_array(linked);
    if (arr == NULL) {
        return XS_ENOMEM;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "WITH gone AS (DELETE FROM sync.push_claims WHERE connection_id = $1 AND "
                       "entity = $2 AND local_id = ANY($3::uuid[]) RETURNING local_id, wanted) "
                       "SELECT count(*), count(sync.record_change($4::uuid, $2, local_id, "
                       "'update')) FILTER (WHERE wanted) FROM gone",
                       req->conn, ops->name, arr, xs_json_str_or(req->body, "organisation_id", ""));
    if (e == XS_OK) {
        xs_log_info(ctx->proc->log, "sync.own_create_linked", "{s:s, s:s, s:s}", "entity",
                    ops->name, "local_ids", arr, "effect",
                    "a record one of our pushes made while its reply was lost is linked, not "
                    "imported");
    }
    free(arr);
    xs_pg_res_free(r);
    return e;
}

/* write_page writes what the page came to in one transaction, marked as the engine's own and
 * as this connection's pull (every local row it creates gets its mapping here, so none is
 * unlinked for it). XS_ECONFLICT, rolled back, when a local row it would write over changed
 * since it was read. */
static xs_err write_page(xs_svc_ctx *ctx, const xs_msg *req, const settings *set, page *pg,
                         const page_known *k, page_out *o)
{
    const xs_entity_ops *ops = pg->ask->ops;
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    json_t *at = NULL;
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    bool same = true;
    xs_err e;
    int64_t t0 = xs_clock_mono_ms();
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL, "SELECT sync.mark_pull($1)", req->conn)) != XS_OK) {
        return db_fail(ctx, e, "cannot begin");
    }
    if ((e = lock_local(ctx, ops, k, o->updates, &same)) != XS_OK) {
        return db_fail(ctx, e, "cannot lock local records");
    }
    if (!same) {
        xs_pg_rollback(ctx->pg);
        return XS_ECONFLICT;
    }
    if (json_array_size(o->creates) + json_array_size(o->updates) > 0 &&
        (e = ops->write_local(ctx->pg, org, o->creates, o->updates, &at)) != XS_OK) {
        return db_fail(ctx, e, "cannot write local records");
    }
    if (json_array_size(o->created) > 0 &&
        (e = ops->write_created(ctx->pg, org, req->conn, txid, o->created)) != XS_OK) {
        json_decref(at);
        return db_fail(ctx, e, "cannot write new local records");
    }
    if (ops->unpaged && ops->retire_missing != NULL && pg->ask->ids == NULL &&
        pg->ask->filter == NULL && pg->since == 0 && pg->nrec == pg->n) {
        /* A full pull of an entity Xero lists whole, every record read: what is linked here
         * and not in the list is gone from Xero. */
        int gone = 0;
        json_t *seen = json_copy(pg->xids);
        for (size_t i = pg->nparsed; seen != NULL && i < pg->nrec; i++) {
            json_array_append_new(seen, json_string(pg->recs[i].xero_id));
        }
        e = seen != NULL ? ops->retire_missing(ctx->pg, org, req->conn, seen, set->types, &gone)
                         : XS_ENOMEM;
        json_decref(seen);
        if (e != XS_OK) {
            json_decref(at);
            return db_fail(ctx, e, "cannot mark the records Xero no longer lists");
        }
        counts_add(o->counts, "retired", gone);
    }
    int64_t t1 = xs_clock_mono_ms();
    size_t i;
    json_t *item;
    json_array_foreach(o->maps, i, item)
    {
        json_t *t = json_object_get(at, xs_json_str_or(item, "local_id", ""));
        if (t != NULL && json_integer_value(json_object_get(item, "local_at")) != -1) {
            json_object_set(item, "local_at", t);
        }
    }
    json_decref(at);
    if ((e = write_mappings(ctx, req->conn, ops->name, txid, o->maps)) != XS_OK ||
        (e = write_memos(ctx, req->conn, ops->name, o->memos)) != XS_OK ||
        (e = write_conflicts(ctx, req, ops->name, o->conflicts)) != XS_OK ||
        (e = release_linked(ctx, req, ops, o->linked)) != XS_OK ||
        (e = queue_push(ctx, org, ops->name, o->queue)) != XS_OK ||
        (e = item_errors(ctx, req, ops->name, pg->errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        return db_fail(ctx, e, "cannot apply the page");
    }
    refresh_stats(ctx, ops, json_array_size(o->maps) + json_array_size(o->created));
    xs_log_debug(ctx->proc->log, "sync.pull_timing", "{s:I, s:I, s:I, s:I, s:I}", "records",
                 (json_int_t)pg->nrec, "call_ms", (json_int_t)pg->call_ms, "read_ms",
                 (json_int_t)pg->read_ms, "write_local_ms", (json_int_t)(t1 - t0), "write_rest_ms",
                 (json_int_t)(xs_clock_mono_ms() - t1));
    return XS_OK;
}

/* translate_refs makes the references of a page's parsed records local ids, once per page;
 * a record whose reference is not here yet is blocked (on says on what). */
static xs_err translate_refs(xs_svc_ctx *ctx, const xs_msg *req, page *pg, json_t *on)
{
    const xs_entity_ops *ops = pg->ask->ops;
    if (ops->refs == NULL || pg->nparsed == 0) {
        return XS_OK;
    }
    json_t **rs = calloc(pg->nparsed, sizeof(json_t *));
    bool *bl = calloc(pg->nparsed, sizeof(bool));
    size_t i;
    for (i = 0; rs != NULL && i < pg->nparsed; i++) {
        rs[i] = pg->recs[i].rec;
    }
    xs_err e = rs != NULL && bl != NULL
                   ? refs_translate(ctx->pg, req->conn, ops, rs, pg->nparsed, true, bl, on)
                   : XS_ENOMEM;
    for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
        pg->recs[i].blocked = bl[i];
        if (!bl[i]) {
            xs_sync_checksum(pg->recs[i].rec, pg->recs[i].sum);
        }
    }
    free(rs);
    free(bl);
    return e != XS_OK ? db_fail(ctx, e, "cannot read what the records refer to") : XS_OK;
}

#define APPLY_TRIES 4

/* apply_page decides each record of a page read and writes the outcome, in one transaction
 * marked as the engine's own; counts add up over the pages of a step. A write of the host
 * application to a row the page would write over, made after the page read it, makes the
 * page decide again (APPLY_TRIES times at most): a local edit is decided, never overwritten
 * unseen. queue: records to send to Xero go into the outbox. */
static xs_err apply_page(xs_svc_ctx *ctx, const xs_msg *req, const settings *set, page *pg,
                         json_t *counts, blocked_ids *blocked, bool queue)
{
    const xs_entity_ops *ops = pg->ask->ops;
    bool final = json_is_true(json_object_get(req->body, "final"));
    counts_add(counts, "fetched", (json_int_t)pg->n);
    counts_add(counts, "failed", (json_int_t)pg->unreadable);
    json_t *on = json_object(); /* what blocked records wait for */
    xs_err e = on != NULL ? translate_refs(ctx, req, pg, on) : XS_ENOMEM;
    size_t nerr = json_array_size(pg->errors);
    for (int t = 1; e == XS_OK; t++) {
        page_known k = {0};
        page_out o;
        e = page_out_init(&o) ? page_lookup(ctx, req, set, pg, &k) : XS_ENOMEM;
        if (e == XS_OK) {
            e = decide_page(ctx, req, set, pg, on, queue, &k, &o);
        }
        if (e == XS_OK) {
            e = write_page(ctx, req, set, pg, &k, &o);
        }
        if (e == XS_OK) {
            const char *key;
            json_t *v;
            json_object_foreach(o.counts, key, v)
            {
                counts_add(counts, key, json_integer_value(v));
            }
            for (size_t i = 0; i < o.blocked.self.n; i++) {
                e = idlist_add(&blocked->self, o.blocked.self.v[i]) ? e : XS_ENOMEM;
            }
            if (!final && !blocked_take(blocked, ops, on)) {
                e = XS_ENOMEM;
            }
        }
        page_known_fini(&k);
        page_out_fini(&o);
        if (e != XS_ECONFLICT) {
            break;
        }
        while (json_array_size(pg->errors) > nerr) {
            json_array_remove(pg->errors, json_array_size(pg->errors) - 1);
        }
        if (t == APPLY_TRIES) {
            e = xs_svc_fail(ctx, XS_EDB, true,
                            "the local records of this page keep changing while it is written");
            break;
        }
        xs_log_debug(ctx->proc->log, "sync.local_raced", "{s:s, s:i}", "entity", ops->name, "try",
                     t);
    }
    json_decref(on);
    return e;
}

/* A pull step reads up to max_pages pages one after another (the orchestrator holds a
 * permit of the rate budget for each). While a page is decided and written, the helper
 * thread fetches the next one with the worker's second client, so Xero's time and ours
 * overlap; there is never more than one call in flight. A page that cannot be fetched or
 * written after others were ends the step there: it is done, and its `next` cursor is
 * that page, which the following step reads again (and, failing again as its first page,
 * reports as any failure). After max_ms the step asks for no new page, so a push of the
 * entity waits for it that long at most. */
xs_err xs_domain_pull(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    const xs_entity_ops *ops = find_entity(ctx, req);
    if (ops == NULL) {
        return XS_EINVAL;
    }
    settings set;
    xs_err e = settings_read(ctx, ops, req, &set);
    if (e != XS_OK) {
        return e;
    }
    json_t *ids = json_object_get(req->body, "ids");
    json_t *cursor = json_object_get(req->body, "cursor");
    int64_t number = 1, page_size = DEFAULT_PAGE, max_pages = 1, max_ms = 0;
    int64_t t0 = xs_clock_mono_ms();
    xs_json_get_int(cursor, "page", &number);
    xs_json_get_int(req->body, "page_size", &page_size);
    xs_json_get_int(req->body, "max_pages", &max_pages);
    xs_json_get_int(req->body, "max_ms", &max_ms);
    xs_time since = 0;
    const char *since_text = xs_json_str_or(cursor, "since", NULL);
    if (since_text != NULL && xs_time_parse_iso(since_text, &since) != XS_OK) {
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.since", "not an ISO 8601 time");
    }
    if (number < 1 || number > 10000000) {
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.page", "page must be from 1");
    }
    if (page_size < 1 || page_size > 1000) {
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "page_size", "page_size must be 1 to 1000");
    }
    if (max_pages < 1 || max_pages > MAX_PAGES) {
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "max_pages", "max_pages must be 1 to %d",
                                 MAX_PAGES);
    }
    const json_t *filter = json_object_get(req->body, "filter");
    if (!filter_ok(filter)) {
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "filter",
                                 "filter takes date_from (YYYY-MM-DD) and statuses (1 to 8 "
                                 "names, A-Z)");
    }
    char path[XS_XERO_PATH_MAX * 2];
    if (pull_path(ops, ids, number, page_size, set.types, filter, NULL, path, sizeof(path)) !=
        XS_OK) {
        settings_fini(&set);
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
                    .bearer = xs_json_str_or(req->body, "access_token", ""),
                    .tenant_id = xs_json_str_or(req->body, "tenant_id", ""),
                    .conn = req->conn};
    domain_worker *w = ctx->wstate;
    json_t *counts = counts_new(PULL_COUNTS);
    blocked_ids blocked = {0}; /* records that wait for others (Xero ids) */
    /* Each page's values are given back when it is done: a step of many pages holds one. */
    xs_json_arena_pos mark = xs_json_arena_mark();
    page cur = {.since = since, .number = number, .x = w->x, .db = ctx->pg, .w = w, .ask = &ask},
         ahead;
    if (!cursor_read(cursor, &cur)) {
        json_decref(counts);
        settings_fini(&set);
        return xs_svc_fail_field(ctx, XS_EINVAL, "cursor.after",
                                 "after takes at most %d Xero ids (UUIDs), with since; tiebreak "
                                 "is true or false",
                                 TIEBREAK_MAX);
    }
    fetch_page(&cur);
    audit(ctx, req, &cur.call);
    if (cur.outcome == TIEBREAK_REFUSED) {
        /* Done, having read nothing: the next step asks for the page without it. */
        tiebreak_refused(ctx, &cur);
        page next = cursor_of(&cur);
        *reply =
            json_pack("{s:s, s:o, s:o, s:I, s:o}", "outcome", "done", "counts", counts, "call",
                      call_json(&cur.call), "calls", (json_int_t)1, "next", cursor_json(&next));
        page_fini(&cur);
        settings_fini(&set);
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (cur.outcome != NULL) {
        const char *o = cur.outcome;
        page_fini(&cur);
        settings_fini(&set);
        e = outcome_reply(o, counts, &cur.call, cur.call.error, reply);
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
        bool more = page_next(&cur, &ahead);
        bool fetching = false;
        pthread_t th;
        if ((e = cur.read_done ? cur.read_err : read_page(&cur)) != XS_OK) {
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
            fetching = pthread_create(&th, NULL, fetch_main, &ahead) == 0;
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
            audit(ctx, req, &ahead.call);
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
            xs_log_warn(ctx->proc->log, "sync.pull_stopped", "{s:s, s:I, s:s}", "entity", ops->name,
                        "page", (json_int_t)cur.number, "reason", ctx->err);
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
                tiebreak_refused(ctx, &cur);
            }
            stop = cursor_of(&cur);
            page_fini(&cur);
            break;
        }
    }
    json_t *out = json_pack("{s:s, s:O, s:o, s:I}", "outcome", "done", "counts", counts, "call",
                            call_json(&last_call), "calls", (json_int_t)calls);
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
    settings_fini(&set);
    return XS_OK;
fail:
    json_decref(counts);
    blocked_fini(&blocked);
    settings_fini(&set);
    return e;
}

static const char *const PUSH_COUNTS[] = {"sent",     "created", "updated",  "unchanged", "failed",
                                          "skipped",  "retired", "deferred", "linked",    "held",
                                          "in_doubt", "reread",  NULL};

/* candidates lists the local ids a push step looks at: the given ones, or the next ids of a
 * full scan (*next_scan: where the scan goes on; "" when it is over). */
static xs_err candidates(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                         const char *org, json_t **ids, char *next_scan, bool *scan)
{
    json_t *given = json_object_get(req->body, "local_ids");
    const char *after = xs_json_str_or(req->body, "scan_after", NULL);
    next_scan[0] = '\0';
    *scan = given == NULL && after != NULL;
    if (given != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(given, i, v)
        {
            if (!xs_uuid_valid(json_string_value(v))) {
                return xs_svc_fail_field(ctx, XS_EINVAL, "local_ids", "local ids must be UUIDs");
            }
        }
        *ids = json_incref(given);
        return XS_OK;
    }
    if (after == NULL) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "local_ids",
                                 "a push names local_ids, scan_after or lookup_names");
    }
    xs_err e = ops->list_ids(ctx->pg, org, req->conn, after, SCAN_READ, ids, next_scan);
    if (e != XS_OK) {
        return db_fail(ctx, e, "cannot list local records");
    }
    return XS_OK;
}

/* retire_of gives the item retiring local record id (Xero's xid) from its base (retire_item),
 * or NULL, the record then counted: failed, with retire_item's reason, or skipped (nothing to
 * do). */
static json_t *retire_of(const xs_entity_ops *ops, const char *id, const char *xid,
                         const json_t *base, json_t *counts, json_t *errors)
{
    char why[XS_DOMAIN_WHY_MAX] = "";
    json_t *x = ops->retire_item(xid, base, why);
    if (x == NULL && why[0] != '\0') {
        item_error(errors, id, xid, why);
        counts_add(counts, "failed", 1);
    } else if (x == NULL) {
        counts_add(counts, "skipped", 1);
    }
    return x;
}

/* What a push request holds: one kind of write, so that a retry can be judged whole. A
 * create cannot overwrite anything and is sent again byte for byte; an update can, so it is
 * re-read first; Xero deletes some records (payments) one request each. */
typedef enum batch_kind {
    BATCH_NONE = 0,
    BATCH_CREATE = 1,
    BATCH_UPDATE = 2, /* updates and retires of records in Xero */
    BATCH_DELETE = 3, /* one retire, alone (xs_entity_ops.delete_one) */
} batch_kind;

static const char *const BATCH_NAMES[] = {"none", "create", "update", "delete"};

static batch_kind batch_kind_parse(const char *s)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (s != NULL && strcmp(s, BATCH_NAMES[k]) == 0) {
            return (batch_kind)k;
        }
    }
    return BATCH_NONE;
}

/* How many records of each kind one request takes. */
static const size_t BATCH_CAP[] = {0, 50, 50, 1};

/* A batch being built: the records to write, by kind (items [{local_id, xero_id, rec, at,
 * retire, recreate}] and their Xero items), until one kind is full; batch_finish then keeps
 * that kind (items, xitems, kind) and leaves the local ids of the others to the next steps
 * (again). */
typedef struct batch {
    json_t *by_kind[4], *x_by_kind[4];
    json_t *items, *xitems, *again;
    batch_kind kind;
} batch;

static void batch_init(batch *b)
{
    memset(b, 0, sizeof(*b));
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        b->by_kind[k] = json_array();
        b->x_by_kind[k] = json_array();
    }
    b->items = json_array();
    b->xitems = json_array();
    b->again = json_array();
}

static void batch_fini(batch *b)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        json_decref(b->by_kind[k]);
        json_decref(b->x_by_kind[k]);
    }
    json_decref(b->items);
    json_decref(b->xitems);
    json_decref(b->again);
    memset(b, 0, sizeof(*b));
}

/* batch_take adds a record of kind k (item, its Xero item x; both taken over). */
static void batch_take(batch *b, batch_kind k, json_t *item, json_t *x)
{
    json_array_append_new(b->by_kind[k], item);
    json_array_append_new(b->x_by_kind[k], x);
}

/* batch_full tells whether one kind is full: the request it makes is then a whole one. */
static bool batch_full(const batch *b)
{
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (json_array_size(b->by_kind[k]) >= BATCH_CAP[k]) {
            return true;
        }
    }
    return false;
}

/* batch_finish keeps the kind that is full (else the one with the most records) as the
 * request, and the local ids of the others as again. */
static void batch_finish(batch *b)
{
    batch_kind best = BATCH_NONE;
    for (int k = BATCH_CREATE; k <= BATCH_DELETE && best == BATCH_NONE; k++) {
        if (json_array_size(b->by_kind[k]) >= BATCH_CAP[k]) {
            best = (batch_kind)k;
        }
    }
    for (int k = BATCH_CREATE; k <= BATCH_DELETE && best == BATCH_NONE; k++) {
        size_t n = json_array_size(b->by_kind[k]);
        for (int j = BATCH_CREATE; n > 0 && j <= BATCH_DELETE; j++) {
            n = json_array_size(b->by_kind[j]) > n ? 0 : n; /* another kind has more */
        }
        best = n > 0 ? (batch_kind)k : BATCH_NONE;
    }
    b->kind = best;
    for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
        if (k == (int)best) {
            json_array_extend(b->items, b->by_kind[k]);
            json_array_extend(b->xitems, b->x_by_kind[k]);
            continue;
        }
        size_t i;
        json_t *it;
        json_array_foreach(b->by_kind[k], i, it)
        {
            json_array_append_new(b->again, json_string(xs_json_str_or(it, "local_id", "")));
        }
    }
}

/* take_retire adds the retirement in Xero of local record id (a delete, or an immutable
 * record's edit made by deleting it first), counting what cannot go. */
static void take_retire(const xs_entity_ops *ops, batch *b, const char *id, const char *xid,
                        const json_t *base, bool recreate, const json_t *at, json_t *counts,
                        json_t *errors)
{
    json_t *x = retire_of(ops, id, xid, base, counts, errors);
    if (x == NULL) {
        return;
    }
    json_t *item = json_pack("{s:s, s:s, s:b}", "local_id", id, "xero_id", xid, "retire", 1);
    if (recreate) {
        json_object_set_new(item, "recreate", json_true());
        json_object_set(item, "at", (json_t *)at);
    }
    batch_take(b, ops->delete_one ? BATCH_DELETE : BATCH_UPDATE, item, x);
}

/* build_batch chooses what of ids needs sending and adds it to the batch (b), one kind of
 * write: at most 50; *stop is where a scan must continue when it stopped early. Records
 * waiting for others go to blocked; refusals before the call to errors. */
static xs_err build_batch(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          const char *org, const json_t *ids, json_t *counts, batch *b,
                          json_t *errors, blocked_ids *blocked, char *stop)
{
    json_t *local = NULL, *maps = NULL, *pending = NULL, *xrecs = json_object(),
           *on = json_object();
    json_t **rs = NULL;
    bool *bl = NULL;
    bool final = json_is_true(json_object_get(req->body, "final"));
    bool recreating =
        strcmp(xs_json_str_or(json_object_get(req->body, "settings"), "edits", "refuse"),
               "recreate") == 0;
    xs_err e;
    stop[0] = '\0';
    if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK ||
        (e = load_mappings(ctx, req->conn, ops->name, ids, false, &maps)) != XS_OK ||
        (e = pending_conflicts(ctx, req->conn, ops->name, ids, &pending)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read local records");
        goto out;
    }
    size_t i, n = 0;
    json_t *v;
    /* What Xero is sent names other records by their Xero ids: a record one of whose
     * references is not in Xero yet waits for it (xrecs has no entry for it). */
    rs = calloc(json_object_size(local) + 1, sizeof(json_t *));
    bl = calloc(json_object_size(local) + 1, sizeof(bool));
    if (xrecs == NULL || on == NULL || rs == NULL || bl == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    const char *lk;
    json_t *lv;
    json_object_foreach(local, lk, lv)
    {
        json_t *rec = json_object_get(lv, "rec");
        rs[n++] = ops->refs != NULL ? json_deep_copy(rec) : json_incref(rec);
    }
    if (ops->refs != NULL &&
        (e = refs_translate(ctx->pg, req->conn, ops, rs, n, false, bl, on)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read what the records refer to");
        goto out;
    }
    n = 0;
    json_object_foreach(local, lk, lv)
    {
        if (!bl[n]) {
            json_object_set(xrecs, lk, rs[n]);
        }
        n++;
    }
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        if (batch_full(b)) {
            snprintf(stop, XS_ID_MAX, "%s", json_string_value(json_array_get(ids, i - 1)));
            break;
        }
        json_t *m = json_object_get(maps, id);
        json_t *l = json_object_get(local, id);
        const char *xid = m != NULL ? xs_json_str_or(m, "xero_id", NULL) : NULL;
        json_t *base = m != NULL ? json_object_get(m, "base") : NULL;
        base = json_is_object(base) ? base : NULL;
        if (json_object_get(pending, id) != NULL || (l == NULL && m == NULL)) {
            counts_add(counts, "skipped", 1);
            continue;
        }
        if (l == NULL) {
            if (ops->retire_item == NULL) {
                counts_add(counts, "skipped", 1);
            } else {
                take_retire(ops, b, id, xid, json_object_get(m, "base"), false, NULL, counts,
                            errors);
            }
            continue;
        }
        json_t *rec = json_object_get(l, "rec");
        char sum[2 * XS_SHA256_LEN + 1];
        xs_sync_checksum(rec, sum);
        if (m != NULL && strcmp(xs_json_str_or(m, "checksum", ""), sum) == 0) {
            counts_add(counts, "unchanged", 1);
            continue;
        }
        json_t *xrec = json_object_get(xrecs, id);
        char why[XS_DOMAIN_WHY_MAX];
        if (xrec == NULL) {
            if (final) {
                blocked_message(ops, rec, on, false, why, sizeof(why));
                item_error(errors, id, xid, why);
                counts_add(counts, "failed", 1);
            } else if (idlist_add(&blocked->self, id)) {
                counts_add(counts, "deferred", 1);
            } else {
                e = XS_ENOMEM;
                goto out;
            }
            continue;
        }
        if (ops->immutable && xid != NULL) {
            /* In Xero, it can only be deleted. */
            bool retired = ops->retired_status != NULL &&
                           strcmp(xs_json_str_or(rec, "status", ""), ops->retired_status) == 0;
            if (!retired && !recreating) {
                snprintf(why, sizeof(why),
                         "Xero never changes a %s once it is made: delete it and make a new one, "
                         "or set the connection's edits.%s setting to recreate",
                         ops->name, ops->name);
                item_error(errors, id, xid, why);
                counts_add(counts, "failed", 1);
                continue;
            }
            take_retire(ops, b, id, xid, base, !retired, json_object_get(l, "at"), counts, errors);
            continue;
        }
        if (ops->check_push != NULL && !ops->check_push(base, rec, l, why)) {
            item_error(errors, id, xid, why);
            counts_add(counts, "failed", 1);
            continue;
        }
        json_t *x = ops->to_xero(xrec, xid, m != NULL ? json_object_get(m, "parts") : NULL);
        if (x == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        batch_take(b, xid != NULL ? BATCH_UPDATE : BATCH_CREATE,
                   json_pack("{s:s, s:s?, s:O, s:O}", "local_id", id, "xero_id", xid, "rec", rec,
                             "at", json_object_get(l, "at")),
                   x);
    }
    e = final || blocked_take(blocked, ops, on) ? XS_OK : XS_ENOMEM;
out:
    for (i = 0; rs != NULL && i < n; i++) {
        json_decref(rs[i]);
    }
    free(rs);
    free(bl);
    json_decref(local);
    json_decref(maps);
    json_decref(pending);
    json_decref(xrecs);
    json_decref(on);
    return e;
}

/* item_message joins the ValidationErrors of a refused item. */
static void item_message(const json_t *r, char *buf, size_t cap)
{
    buf[0] = '\0';
    json_t *errs = json_object_get(r, "ValidationErrors");
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(errs, i, v)
    {
        n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n > 0 ? "; " : "",
                              xs_json_str_or(v, "Message", "?"));
        if (n >= cap) {
            break;
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, cap, "Xero refused the record without saying why");
    }
}

static xs_err push_lookup(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          json_t **reply);

/* A push step's request: what it stands for, kept in its row (sync.run_steps) from before
 * the call until Xero's reply is recorded, so a retry sends the same bytes with the same key
 * (or, for updates, decides them again first). */
typedef struct push_req {
    char *body;                /* the request body (new), or NULL before it is built */
    char key[64];              /* its Idempotency-Key */
    json_t *items;             /* [{local_id, xero_id, rec, at, retire, recreate}] */
    batch_kind kind;           /* what the items are */
    char next_scan[XS_ID_MAX]; /* where a scan goes on after it ("" when over) */
    int64_t consumed;          /* of the step's local_ids, how many it dealt with; -1 */
    json_t *blocked;           /* {"ids", "on"}: records waiting for others, or NULL */
    json_t *again;             /* local ids of other kinds, for the next step, or NULL */
    int64_t first_ms;          /* when the request was first stored (epoch ms) */
    bool stored;               /* read from the step's row (a retry) */
} push_req;

static void push_req_fini(push_req *p)
{
    free(p->body);
    json_decref(p->items);
    json_decref(p->blocked);
    json_decref(p->again);
    memset(p, 0, sizeof(*p));
}

/* push_req_read reads the request a step stored before its call, if any. */
static xs_err push_req_read(xs_svc_ctx *ctx, const char *step, push_req *p)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(ctx->pg, &r,
                       "SELECT request_body, idempotency_key, request_items FROM sync.run_steps "
                       "WHERE id = $1",
                       step);
    if (e != XS_OK) {
        return db_fail(ctx, e, "cannot read the step");
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return xs_svc_fail_field(ctx, XS_ENOTFOUND, "step_id", "no step %s", step);
    }
    p->consumed = -1;
    if (xs_pg_res_get(r, 0, 0) != NULL) {
        const char *it = xs_pg_res_get(r, 0, 2);
        json_t *stored = it != NULL ? xs_json_parse(it, strlen(it), NULL) : NULL;
        p->stored = true;
        p->body = strdup(xs_pg_res_get(r, 0, 0));
        snprintf(p->key, sizeof(p->key), "%s", xs_pg_res_get(r, 0, 1));
        p->items = json_incref(json_object_get(stored, "items"));
        p->kind = batch_kind_parse(xs_json_str_or(stored, "kind", NULL));
        snprintf(p->next_scan, sizeof(p->next_scan), "%s", xs_json_str_or(stored, "next_scan", ""));
        xs_json_get_int(stored, "consumed", &p->consumed);
        xs_json_get_int(stored, "first_ms", &p->first_ms);
        p->blocked = json_incref(json_object_get(stored, "blocked"));
        p->again = json_incref(json_object_get(stored, "again"));
        json_decref(stored);
        if (p->body == NULL || !json_is_array(p->items) || p->kind == BATCH_NONE) {
            e = xs_svc_fail(ctx, XS_EPROTO, false, "step %s holds a damaged request", step);
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* settle_ms is how long after a send any copy of it has surely landed in Xero or died: the
 * client's time-out, and the resume margin for Xero's clock. */
static int64_t settle_ms(xs_svc_ctx *ctx)
{
    const domain_worker *w = ctx->wstate;
    return w->svc->xero.timeout_ms + XS_DOMAIN_RESUME_MARGIN_MS;
}

/* claim_batch claims, in the open transaction, the batch's records for this step
 * (sync.push_claims, migration 0009): a record held by another live step, or a create of an
 * ended step that may be in Xero, stays with it (marked wanted, so it is queued again when
 * let go) and leaves the batch. */
static xs_err claim_batch(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          const char *step, batch *b, json_t *counts)
{
    json_t *rows = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(b->items, i, it)
    {
        bool retire = json_is_true(json_object_get(it, "retire"));
        bool create = b->kind == BATCH_CREATE;
        json_array_append_new(rows, json_pack("{s:s, s:s, s:O?}", "local_id",
                                              xs_json_str_or(it, "local_id", ""), "op",
                                              create   ? "create"
                                              : retire ? "retire"
                                                       : "update",
                                              "sent", retire ? NULL : json_object_get(it, "rec")));
    }
    char settle[24];
    snprintf(settle, sizeof(settle), "%lld", (long long)settle_ms(ctx));
    const char *p[] = {req->conn, ops->name, step, settle};
    xs_pg_res *r = NULL;
    xs_err e = exec_json(
        ctx->pg, &r,
        "INSERT INTO sync.push_claims AS c (connection_id, entity, local_id, step_id, op, sent, "
        "settled_by) SELECT $1, $2, r.local_id, $3, r.op, r.sent, now() + $4::bigint * "
        "interval '1 millisecond' FROM jsonb_to_recordset($5::jsonb) AS r(local_id uuid, op "
        "text, sent jsonb) ON CONFLICT (connection_id, entity, local_id) DO UPDATE SET step_id "
        "= EXCLUDED.step_id, op = EXCLUDED.op, sent = EXCLUDED.sent, settled_by = "
        "EXCLUDED.settled_by, wanted = false, claimed_at = now() WHERE c.step_id = "
        "EXCLUDED.step_id OR (NOT EXISTS (SELECT 1 FROM sync.run_steps s JOIN sync.runs r ON "
        "r.id = s.run_id WHERE s.id = c.step_id AND s.status IN ('pending', 'running') AND "
        "r.status IN ('queued', 'running')) AND NOT (c.op = 'create' AND c.settled_by IS NOT "
        "NULL)) RETURNING c.local_id::text",
        4, p, rows);
    json_decref(rows);
    if (e != XS_OK) {
        return e;
    }
    json_t *got = json_object(), *held = json_array();
    for (int k = 0; k < xs_pg_res_nrows(r); k++) {
        json_object_set_new(got, xs_pg_res_get(r, k, 0), json_true());
    }
    xs_pg_res_free(r);
    json_t *items = json_array(), *xitems = json_array();
    json_array_foreach(b->items, i, it)
    {
        const char *lid = xs_json_str_or(it, "local_id", "");
        if (json_object_get(got, lid) != NULL) {
            json_array_append(items, it);
            json_array_append(xitems, json_array_get(b->xitems, i));
        } else {
            json_array_append_new(held, json_string(lid));
        }
    }
    json_decref(got);
    json_decref(b->items);
    json_decref(b->xitems);
    b->items = items;
    b->xitems = xitems;
    if (json_array_size(held) > 0) {
        /* Another push holds them: it sends them, or queues them again when it lets go. */
        counts_add(counts, "held", (json_int_t)json_array_size(held));
        char *arr = xs_domain_uuid_array(held);
        e = arr != NULL ? xs_pg_q(ctx->pg, NULL,
                                  "UPDATE sync.push_claims SET wanted = true WHERE connection_id "
                                  "= $1 AND entity = $2 AND local_id = ANY($3::uuid[])",
                                  req->conn, ops->name, arr)
                        : XS_ENOMEM;
        free(arr);
    }
    json_decref(held);
    return e;
}

/* request_body writes the batch's body: {"<list>": [items]}, or for a delete Xero takes one
 * a request, the item less its id field (new string). */
static char *request_body(const xs_entity_ops *ops, const batch *b)
{
    if (b->kind == BATCH_DELETE) {
        json_t *x = json_copy(json_array_get(b->xitems, 0));
        json_object_del(x, ops->id_field);
        char *text = xs_json_dump(x, 0);
        json_decref(x);
        return text;
    }
    json_t *doc = json_pack("{s:O}", ops->xero_list, b->xitems);
    char *text = xs_json_dump(doc, 0);
    json_decref(doc);
    return text;
}

/* request_key derives the Idempotency-Key of a request: it names this exact body for these
 * local records (and the Xero records they update) on this connection, so two batches of the
 * same text (bills alike, which Xero lets be; two deletes, whose bodies are the same) are two
 * requests. */
static xs_err request_key(const xs_msg *req, const json_t *items, const char *body, char key[64])
{
    size_t blen = strlen(body) + strlen(req->conn) + json_array_size(items) * 2 * XS_ID_MAX + 2;
    char *keyed = malloc(blen);
    if (keyed == NULL) {
        return XS_ENOMEM;
    }
    size_t kn = (size_t)snprintf(keyed, blen, "%s\n", req->conn);
    size_t i;
    json_t *v;
    json_array_foreach(items, i, v)
    {
        kn += (size_t)snprintf(keyed + kn, blen - kn, "%s:%s,", xs_json_str_or(v, "local_id", ""),
                               xs_json_str_or(v, "xero_id", ""));
    }
    snprintf(keyed + kn, blen - kn, "\n%s", body);
    char seed[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(keyed, strlen(keyed), seed);
    free(keyed);
    snprintf(key, 64, "xs-%.40s", seed);
    return XS_OK;
}

/* store_request claims the batch's records and stores the request that stands for the rest
 * in the step's row, with the refusals found before it, in one transaction: a retry then
 * sends it as it is. p->body stays NULL when no record is left to send. */
static xs_err store_request(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                            const char *step, batch *b, json_t *errors, json_t *counts, push_req *p)
{
    xs_err e = xs_pg_begin(ctx->pg);
    if (e == XS_OK && json_array_size(b->items) > 0) {
        e = claim_batch(ctx, ops, req, step, b, counts);
    }
    char *itext = NULL;
    if (e == XS_OK && json_array_size(b->items) > 0) {
        free(p->body); /* a retry's, rebuilt */
        p->body = request_body(ops, b);
        e = p->body != NULL ? request_key(req, b->items, p->body, p->key) : XS_ENOMEM;
        p->kind = b->kind;
        json_decref(p->items);
        p->items = json_incref(b->items);
        if (p->first_ms == 0) {
            p->first_ms = xs_clock_now();
        }
        json_t *stored = json_pack("{s:O, s:s, s:s, s:I, s:I}", "items", p->items, "kind",
                                   BATCH_NAMES[p->kind], "next_scan", p->next_scan, "consumed",
                                   (json_int_t)p->consumed, "first_ms", (json_int_t)p->first_ms);
        if (p->blocked != NULL) {
            json_object_set(stored, "blocked", p->blocked);
        }
        if (p->again != NULL) {
            json_object_set(stored, "again", p->again);
        }
        itext = stored != NULL ? xs_json_dump(stored, 0) : NULL;
        json_decref(stored);
        const char *q[] = {step, p->body, p->key, itext};
        if (e == XS_OK) {
            e = itext == NULL ? XS_ENOMEM
                              : xs_pg_exec(ctx->pg, NULL,
                                           "UPDATE sync.run_steps SET request_body = $2, "
                                           "idempotency_key = $3, request_items = $4::jsonb WHERE "
                                           "id = $1",
                                           4, q);
        }
    } else if (e == XS_OK) {
        /* Nothing left to send: a request stored before (a retry's) is done with. */
        free(p->body);
        p->body = NULL;
        e = xs_pg_q(ctx->pg, NULL,
                    "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE id "
                    "= $1",
                    step);
    }
    free(itext);
    if (e == XS_OK && (e = item_errors(ctx, req, ops->name, errors)) == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    json_array_clear(errors);
    return e != XS_OK ? db_fail(ctx, e, "cannot store the request before sending it") : XS_OK;
}

/* reread fetches Xero's current version of the records a push is about to update (xids:
 * their Xero ids, at most 50) and decides each again against its base, as a pull of them
 * would (apply_page; nothing queued: the push that follows sends what is to go). Xero has no
 * conditional write, so this is how a Xero edit made since the run's pull (or since a
 * failed send) is decided rather than overwritten. *outcome is NULL when it was done, else
 * the call's ("retry", ...), with *call. */
static xs_err reread(xs_svc_ctx *ctx, const xs_msg *req, const settings *set,
                     const xs_entity_ops *ops, const json_t *xids, json_t *counts,
                     xs_xero_call *call, const char **outcome)
{
    domain_worker *w = ctx->wstate;
    pull_ask ask = {.ops = ops,
                    .ids = xids,
                    .page_size = 50,
                    .bearer = xs_json_str_or(req->body, "access_token", ""),
                    .tenant_id = xs_json_str_or(req->body, "tenant_id", ""),
                    .conn = req->conn};
    page p = {.number = 1, .x = w->x, .db = ctx->pg, .w = w, .ask = &ask};
    fetch_page(&p);
    audit(ctx, req, &p.call);
    *call = p.call;
    *outcome = p.outcome;
    xs_err e = XS_OK;
    if (p.outcome == NULL) {
        json_t *pc = counts_new(PULL_COUNTS);
        blocked_ids b = {0};
        e = read_page(&p);
        if (e == XS_OK) {
            e = apply_page(ctx, req, set, &p, pc, &b, false);
        }
        counts_add(counts, "reread", json_integer_value(json_object_get(pc, "fetched")));
        counts_add(counts, "conflicts", json_integer_value(json_object_get(pc, "conflicts")));
        json_decref(pc);
        blocked_fini(&b);
    }
    page_fini(&p);
    return e;
}

/* items_ids lists the local ids (or, xero, the Xero ids) of a request's items (new). */
static json_t *items_ids(const json_t *items, bool xero)
{
    json_t *ids = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *id = xs_json_str_or(it, xero ? "xero_id" : "local_id", NULL);
        if (id != NULL) {
            json_array_append_new(ids, json_string(id));
        }
    }
    return ids;
}

/* release_claims lets go, in the open transaction, of the step's claims but (keep_creates)
 * those of creates Xero may hold, queueing the records another push wanted meanwhile. */
static xs_err release_claims(xs_svc_ctx *ctx, const xs_msg *req, const char *step,
                             bool keep_creates)
{
    return xs_pg_q(ctx->pg, NULL,
                   "WITH gone AS (DELETE FROM sync.push_claims WHERE step_id = $1 AND (op <> "
                   "'create' OR NOT $2::boolean) RETURNING entity, local_id, wanted) SELECT "
                   "count(sync.record_change($3::uuid, entity, local_id, 'update')) FROM gone "
                   "WHERE wanted",
                   step, keep_creates ? "true" : "false",
                   xs_json_str_or(req->body, "organisation_id", ""));
}

/* build_fresh chooses a new step's batch: the given local ids, or the next of a full scan,
 * until a batch of one kind is full (or SCAN_MAX records were read, or the records end). */
static xs_err build_fresh(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          json_t *counts, batch *b, json_t *errors, push_req *p)
{
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    json_t *ids = NULL;
    char stop[XS_ID_MAX] = "";
    bool scan = false;
    blocked_ids bids = {0};
    xs_err e = candidates(ctx, ops, req, org, &ids, p->next_scan, &scan);
    if (e == XS_OK) {
        e = build_batch(ctx, ops, req, org, ids, counts, b, errors, &bids, stop);
    }
    for (int scanned = (int)json_array_size(ids); e == XS_OK && scan && stop[0] == '\0' &&
                                                  p->next_scan[0] != '\0' && !batch_full(b) &&
                                                  scanned < SCAN_MAX;) {
        json_t *more = NULL;
        char after[XS_ID_MAX];
        snprintf(after, sizeof(after), "%s", p->next_scan);
        if ((e = ops->list_ids(ctx->pg, org, req->conn, after, SCAN_READ, &more, p->next_scan)) !=
            XS_OK) {
            e = db_fail(ctx, e, "cannot list local records");
            break;
        }
        scanned += SCAN_READ;
        e = build_batch(ctx, ops, req, org, more, counts, b, errors, &bids, stop);
        json_decref(more);
    }
    if (e == XS_OK && stop[0] == '\0' && !batch_full(b) &&
        json_is_true(json_object_get(req->body, "defer_partial"))) {
        /* The last records, not a whole request: they join those of the phase waiting to go
         * in a step of their own (again), which makes fuller requests of them. */
        for (int k = BATCH_CREATE; k <= BATCH_DELETE; k++) {
            size_t i;
            json_t *it;
            json_array_foreach(b->by_kind[k], i, it)
            {
                json_array_append_new(b->again, json_string(xs_json_str_or(it, "local_id", "")));
            }
            json_array_clear(b->by_kind[k]);
            json_array_clear(b->x_by_kind[k]);
        }
    }
    if (e == XS_OK) {
        batch_finish(b);
        if (scan && stop[0] != '\0') {
            snprintf(p->next_scan, sizeof(p->next_scan), "%s", stop);
        }
        /* Given ids: those up to the last one taken are consumed; the orchestrator sends the
         * rest in the next step, so every call carries a full batch. */
        p->consumed = scan ? -1 : (int64_t)json_array_size(ids);
        size_t k;
        json_t *v;
        json_array_foreach(!scan && stop[0] != '\0' ? ids : NULL, k, v)
        {
            if (strcmp(json_string_value(v), stop) == 0) {
                p->consumed = (int64_t)k + 1;
                break;
            }
        }
        p->blocked = blocked_json(&bids);
        p->again = json_array_size(b->again) > 0 ? json_incref(b->again) : NULL;
    }
    blocked_fini(&bids);
    json_decref(ids);
    return e;
}

/* push_reply is the step's reply: its outcome and counts, the last call, and what the
 * orchestrator does next (next_scan, consumed, blocked, again). */
static json_t *push_reply(const char *outcome, const json_t *counts, const xs_xero_call *call,
                          int64_t calls, const push_req *p)
{
    json_t *out = json_pack("{s:s, s:O, s:I}", "outcome", outcome, "counts", counts, "calls",
                            (json_int_t)calls);
    if (out == NULL) {
        return NULL;
    }
    if (call != NULL) {
        json_object_set_new(out, "call", call_json(call));
    }
    if (p->next_scan[0] != '\0') {
        json_object_set_new(out, "next_scan", json_string(p->next_scan));
    }
    if (p->consumed >= 0) {
        json_object_set_new(out, "consumed", json_integer(p->consumed));
    }
    if (p->blocked != NULL) {
        /* The orchestrator pushes what they refer to, then them (in a final step). */
        json_object_set(out, "blocked", p->blocked);
    }
    if (p->again != NULL) {
        /* Other kinds of write met on the way: the next step sends them. */
        json_object_set(out, "again", p->again);
    }
    return out;
}

/* resend_window is how long after its first send a create whose reply never came may be
 * sent again with its key (XS_PUSH_RESEND_WINDOW): well within the time Xero remembers an
 * Idempotency-Key, so the copy is answered from Xero's memory rather than made twice. */
static int64_t resend_window(xs_svc_ctx *ctx)
{
    return xs_config_int(ctx->proc->cfg, "XS_PUSH_RESEND_WINDOW");
}

/* leave_in_doubt ends a step whose creates may be in Xero but can no longer be sent again
 * safely (past the resend window): the request is dropped, the claims stay, and a pull that
 * finds the records links them (find_own_creates), or, having read everything Xero changed
 * since and not found them, lets them go to be sent anew (the orchestrator's cursor). */
static xs_err leave_in_doubt(xs_svc_ctx *ctx, const xs_entity_ops *ops, const char *step,
                             json_t *counts, push_req *p, json_t **reply)
{
    xs_err e = xs_pg_begin(ctx->pg);
    if (e == XS_OK &&
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE "
                     "id = $1",
                     step)) == XS_OK) {
        e = xs_pg_commit(ctx->pg);
    }
    if (e != XS_OK) {
        return db_fail(ctx, e, "cannot end the step");
    }
    json_t *ids = items_ids(p->items, false);
    char *arr = xs_domain_uuid_array(ids);
    xs_log_warn(ctx->proc->log, "sync.create_in_doubt", "{s:s, s:s, s:s, s:s}", "entity", ops->name,
                "step", step, "local_ids", arr != NULL ? arr : "", "effect",
                "not sent again (past XS_PUSH_RESEND_WINDOW): the next pull links them if Xero "
                "made them, else they are sent anew");
    free(arr);
    json_decref(ids);
    counts_add(counts, "in_doubt", (json_int_t)json_array_size(p->items));
    *reply = push_reply("done", counts, NULL, 0, p);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

/* own_copies checks, in the open transaction, the mappings a push's creates are about to get
 * (maps, of which created: the local ids made new in Xero) against those already written:
 *   - a local record already linked to another Xero record: Xero made a second one from it.
 *     Nothing links the new one; an error names both.
 *   - a Xero record already linked to another local record: a pull imported our own create
 *     before its reply came. The link moves to the record that caused it, and the imported
 *     copy is removed when the engine made it and nothing changed or names it since; else an
 *     error names both, for a person to merge. */
static xs_err own_copies(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req, json_t *maps,
                         const json_t *created, json_t *errors)
{
    json_t *rows = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(maps, i, m)
    {
        const char *lid = xs_json_str_or(m, "local_id", "");
        size_t k;
        json_t *c;
        json_array_foreach(created, k, c)
        {
            if (strcmp(json_string_value(c), lid) == 0) {
                json_array_append_new(rows, json_pack("{s:s, s:s}", "local_id", lid, "xero_id",
                                                      xs_json_str_or(m, "xero_id", "")));
            }
        }
    }
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return XS_OK;
    }
    const char *p[] = {req->conn, ops->name};
    xs_pg_res *r = NULL;
    xs_err e = exec_json(ctx->pg, &r,
                         "SELECT r.local_id::text, r.xero_id::text, ml.xero_id::text, "
                         "mx.local_id::text FROM jsonb_to_recordset($3::jsonb) AS r(local_id "
                         "uuid, xero_id uuid) LEFT JOIN sync.mappings ml ON ml.connection_id = $1 "
                         "AND ml.entity = $2 AND ml.local_id = r.local_id LEFT JOIN sync.mappings "
                         "mx ON mx.connection_id = $1 AND mx.entity = $2 AND mx.xero_id = "
                         "r.xero_id WHERE ml.xero_id <> r.xero_id OR mx.local_id <> r.local_id",
                         2, p, rows);
    json_decref(rows);
    for (int k = 0; e == XS_OK && k < xs_pg_res_nrows(r); k++) {
        const char *lid = xs_pg_res_get(r, k, 0), *xid = xs_pg_res_get(r, k, 1);
        const char *other_x = xs_pg_res_get(r, k, 2), *copy = xs_pg_res_get(r, k, 3);
        char msg[400];
        if (other_x != NULL) {
            snprintf(msg, sizeof(msg),
                     "Xero made %s %s from this record, which is already linked to Xero's %s: "
                     "one of them is a duplicate in Xero",
                     ops->name, xid, other_x);
            xs_log_error(ctx->proc->log, "sync.duplicate_in_xero", "{s:s, s:s, s:s, s:s}", "entity",
                         ops->name, "local_id", lid, "xero_id", xid, "linked_xero_id", other_x);
            item_error(errors, lid, xid, msg);
            for (size_t j = json_array_size(maps); j > 0; j--) {
                if (strcmp(xs_json_str_or(json_array_get(maps, j - 1), "local_id", ""), lid) == 0) {
                    json_array_remove(maps, j - 1);
                }
            }
            continue;
        }
        int64_t gone = 0;
        if (ops->table != NULL) {
            char sql[512];
            snprintf(sql, sizeof(sql),
                     "WITH d AS (DELETE FROM %s t USING sync.mappings m WHERE t.id = $1 AND "
                     "m.connection_id = $2 AND m.entity = $3 AND m.local_id = t.id AND "
                     "m.local_updated_at = " XS_DOMAIN_AT_MS("t.updated_at") " RETURNING t.id) "
                                                                             "SELECT count(*) "
                                                                             "FROM d",
                     ops->table);
            xs_pg_res *d = NULL;
            if ((e = xs_pg_q0(ctx->pg, NULL, "SAVEPOINT own_copy")) == XS_OK) {
                if (xs_pg_q(ctx->pg, &d, sql, copy, req->conn, ops->name) == XS_OK) {
                    xs_pg_res_int(d, 0, 0, &gone);
                    e = xs_pg_q0(ctx->pg, NULL, "RELEASE SAVEPOINT own_copy");
                } else {
                    e = xs_pg_q0(ctx->pg, NULL, "ROLLBACK TO SAVEPOINT own_copy");
                }
            }
            xs_pg_res_free(d);
        }
        if (gone > 0) {
            xs_log_warn(ctx->proc->log, "sync.own_copy_removed", "{s:s, s:s, s:s, s:s}", "entity",
                        ops->name, "local_id", lid, "xero_id", xid, "copy", copy);
            continue;
        }
        snprintf(msg, sizeof(msg),
                 "a copy of local record %s: Xero's %s %s, which our push made from it, was "
                 "imported as this record before the push's reply came; merge the two",
                 lid, ops->name, xid);
        xs_log_error(ctx->proc->log, "sync.duplicate_local", "{s:s, s:s, s:s, s:s}", "entity",
                     ops->name, "local_id", lid, "xero_id", xid, "copy", copy);
        item_error(errors, copy, NULL, msg);
    }
    xs_pg_res_free(r);
    return e;
}

/* The outcome of a reply, item by item, before it is written. */
typedef struct push_result {
    json_t *maps;      /* mappings to write */
    json_t *computed;  /* [{local_id, ...}]: Xero's computed fields to keep locally */
    json_t *recreated; /* deleted in Xero to be made again: unlinked, requeued */
    json_t *created;   /* local ids made new in Xero */
    json_t *lookups;   /* [{name, local_id}]: names Xero said are taken, to look up */
} push_result;

static void push_result_fini(push_result *r)
{
    json_decref(r->maps);
    json_decref(r->computed);
    json_decref(r->recreated);
    json_decref(r->created);
    json_decref(r->lookups);
}

/* read_item takes Xero's answer res for one sent item it. */
static void read_item(xs_svc_ctx *ctx, const xs_msg *req, const xs_entity_ops *ops,
                      const json_t *it, const json_t *res, push_result *pr, json_t *counts,
                      json_t *errors)
{
    const char *lid = xs_json_str_or(it, "local_id", "");
    const char *had = xs_json_str_or(it, "xero_id", NULL);
    bool retire = json_is_true(json_object_get(it, "retire"));
    const char *st = xs_json_str_or(res, "StatusAttributeString", "OK");
    json_t *xrec = NULL;
    char xid[XS_ID_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
    xs_time xat = 0;
    /* The nil id: Xero's mark of an item it did not save, whatever else it says. */
    bool nil = is_nil_id(xs_json_str_or(res, ops->id_field, ""));
    bool ok = !nil && strcmp(st, "ERROR") != 0 &&
              xs_domain_from_xero(ops, res, &xrec, xid, &xat, why) == XS_OK && xero_id_ok(xid);
    if (!ok) {
        char msg[1024];
        if (nil) {
            char detail[900] = "";
            if (strcmp(st, "ERROR") == 0) {
                item_message(res, detail, sizeof(detail));
            }
            snprintf(msg, sizeof(msg), "Xero did not save it: its reply names it by the nil id%s%s",
                     detail[0] != '\0' ? ": " : "", detail);
        } else if (strcmp(st, "ERROR") == 0) {
            item_message(res, msg, sizeof(msg));
        } else {
            snprintf(msg, sizeof(msg), "Xero's reply for this record cannot be read: %s",
                     why[0] != '\0' ? why : "it names no record by a valid id");
        }
        char lk[256];
        if (!retire && had == NULL && ops->lookup_key != NULL &&
            ops->lookup_key(json_object_get(it, "rec"), msg, lk)) {
            json_array_append_new(pr->lookups,
                                  json_pack("{s:s, s:s}", "name", lk, "local_id", lid));
            counts_add(counts, "deferred", 1);
        } else {
            item_error(errors, lid, had, msg);
            counts_add(counts, "failed", 1);
        }
        json_decref(xrec);
        return;
    }
    /* The base is what was sent: if Xero wrote it differently, the next pull sees a change
     * in Xero and takes Xero's form once. A retired record's is Xero's, its references made
     * local ids again. */
    json_t *base = retire ? xrec : json_object_get(it, "rec");
    json_t *own = NULL; /* base with Xero's computed fields */
    json_t *row = NULL; /* those fields, for the local row */
    if (!retire && ops->computed != NULL && json_is_object(base) &&
        (own = json_deep_copy(base)) != NULL &&
        (row = json_pack("{s:s}", "local_id", lid)) != NULL) {
        for (size_t k = 0; ops->computed[k] != NULL; k++) {
            json_t *cv = json_object_get(xrec, ops->computed[k]);
            if (cv != NULL) {
                json_object_set(own, ops->computed[k], cv);
                json_object_set(row, ops->computed[k], cv);
            }
        }
        base = own;
        json_array_append_new(pr->computed, row);
    }
    bool bl = false;
    json_t *on = json_object();
    if (retire && ops->refs != NULL &&
        (refs_translate(ctx->pg, req->conn, ops, &xrec, 1, true, &bl, on) != XS_OK || bl)) {
        base = NULL; /* unknown: the next pull decides against no base */
    }
    json_decref(on);
    int64_t lat = 0;
    xs_json_get_int(it, "at", &lat);
    if (json_is_true(json_object_get(it, "recreate"))) {
        json_array_append_new(pr->recreated, json_string(lid));
        counts_add(counts, "retired", 1);
    } else {
        mapping_add(pr->maps, lid, xid, base, xat, base != NULL ? lat : -1);
        json_t *parts = ops->read_parts != NULL ? ops->read_parts(res) : NULL;
        if (parts != NULL) {
            json_object_set_new(json_array_get(pr->maps, json_array_size(pr->maps) - 1), "parts",
                                parts);
        }
        if (had == NULL && !retire) {
            json_array_append_new(pr->created, json_string(lid));
        }
        counts_add(counts, retire ? "retired" : had != NULL ? "updated" : "created", 1);
    }
    json_decref(own);
    json_decref(xrec);
}

/* record_reply writes what Xero's reply says, in one transaction marked as the engine's:
 * the mappings (the base is what was sent), Xero's computed fields, the records deleted to be
 * made again unlinked, the refusals, and the step's claims let go (but, when the reply did
 * not say item by item, those of creates Xero may hold). A failure is an error naming what
 * Xero accepted: the step runs again and sends the same request, which Xero answers from its
 * memory of the key. */
static xs_err record_reply(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                           const char *step, push_result *pr, json_t *errors, bool per_item)
{
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    char *unlink = json_array_size(pr->recreated) > 0 ? xs_domain_uuid_array(pr->recreated) : NULL;
    xs_err e;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = own_copies(ctx, ops, req, pr->maps, pr->created, errors)) != XS_OK ||
        (e = write_mappings(ctx, req->conn, ops->name, txid, pr->maps)) != XS_OK ||
        (json_array_size(pr->computed) > 0 &&
         (e = ops->write_computed(ctx->pg, pr->computed)) != XS_OK) ||
        (unlink != NULL &&
         (e = xs_pg_q(ctx->pg, NULL,
                      "DELETE FROM sync.mappings WHERE connection_id = $1 AND entity = $2 AND "
                      "local_id = ANY($3::uuid[])",
                      req->conn, ops->name, unlink)) != XS_OK) ||
        (e = item_errors(ctx, req, ops->name, errors)) != XS_OK ||
        (e = release_claims(ctx, req, step, !per_item)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE "
                     "id = $1",
                     step)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        char *what = xs_json_dump(pr->maps, 0);
        xs_log_error(ctx->proc->log, "sync.accepted_unrecorded", "{s:s, s:s, s:s, s:s, s:s}",
                     "entity", ops->name, "step", step, "error", xs_pg_error(ctx->pg), "accepted",
                     what != NULL ? what : "", "effect",
                     "the step runs again and sends the same request and key");
        free(what);
        free(unlink);
        return db_fail(ctx, e, "cannot record what Xero accepted");
    }
    free(unlink);
    refresh_stats(ctx, ops, json_array_size(pr->maps) * 10);
    return XS_OK;
}

/* send_request makes the step's one write and writes what came of it into *reply. */
static xs_err send_request(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                           const char *step, push_req *p, json_t *counts, json_t *errors,
                           int64_t calls, json_t **reply)
{
    char path[XS_XERO_PATH_MAX];
    const char *xid = xs_json_str_or(json_array_get(p->items, 0), "xero_id", "");
    if (p->kind == BATCH_DELETE) {
        snprintf(path, sizeof(path), "%s/%s", ops->xero_path, xid);
    } else {
        snprintf(path, sizeof(path), "%s?summarizeErrors=false%s%s", ops->xero_path,
                 ops->push_query != NULL ? "&" : "",
                 ops->push_query != NULL ? ops->push_query : "");
    }
    xs_xero_req xr = {.method = "POST",
                      .path = path,
                      .bearer = xs_json_str_or(req->body, "access_token", ""),
                      .tenant_id = xs_json_str_or(req->body, "tenant_id", ""),
                      .idempotency_key = p->key,
                      .body = p->body,
                      .body_len = strlen(p->body)};
    xs_xero_call call;
    xs_xero_resp resp = {0};
    int64_t t0 = xs_clock_mono_ms();
    xs_err e = xs_xero_request(xero_of(ctx), &xr, &resp, &call);
    audit(ctx, req, &call);
    calls++;
    size_t nitems = json_array_size(p->items);
    counts_add(counts, "sent", (json_int_t)nitems);
    const char *outcome = call_outcome(e, resp.status, true);
    json_t *results = json_object_get(resp.json, ops->xero_list);
    bool per_item = true;
    if (outcome == NULL && resp.status == 200 && json_array_size(results) != nitems) {
        /* An answer that does not say item by item: creates may be in Xero, in doubt. */
        outcome = "failed";
        per_item = false;
        snprintf(call.error, sizeof(call.error), "Xero answered %zu items for %zu sent",
                 json_array_size(results), nitems);
    }
    if (outcome == NULL && resp.status != 200) {
        /* The whole request was refused (e.g. 400 PostDataInvalidException): nothing made. */
        char msg[512];
        snprintf(msg, sizeof(msg), "Xero refused the %s (HTTP %ld): %s",
                 p->kind == BATCH_DELETE ? "request" : "batch", resp.status,
                 xs_json_str_or(resp.json, "Message", resp.body != NULL ? resp.body : ""));
        size_t i;
        json_t *it;
        json_array_foreach(p->items, i, it)
        {
            item_error(errors, xs_json_str_or(it, "local_id", NULL),
                       xs_json_str_or(it, "xero_id", NULL), msg);
        }
        counts_add(counts, "failed", (json_int_t)nitems);
        outcome = "failed";
        snprintf(call.error, sizeof(call.error), "%.250s", msg);
    }
    if (outcome != NULL && strcmp(outcome, "failed") != 0) {
        /* Not applied, or not known to be: the stored request and the claims stay for the
         * retry. */
        xs_xero_resp_fini(&resp);
        *reply = push_reply(outcome, counts, &call, calls, p);
        if (*reply != NULL) {
            json_object_set_new(*reply, "message", json_string(call.error));
        }
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    int64_t t1 = xs_clock_mono_ms();
    push_result pr = {json_array(), json_array(), json_array(), json_array(), json_array()};
    size_t i;
    json_t *it;
    json_array_foreach(outcome == NULL ? p->items : NULL, i, it)
    {
        read_item(ctx, req, ops, it, json_array_get(results, i), &pr, counts, errors);
    }
    xs_xero_resp_fini(&resp);
    e = record_reply(ctx, ops, req, step, &pr, errors, per_item);
    if (e == XS_OK) {
        xs_log_debug(ctx->proc->log, "sync.push_timing", "{s:I, s:I, s:I}", "items",
                     (json_int_t)nitems, "call_ms", (json_int_t)(t1 - t0), "apply_ms",
                     (json_int_t)(xs_clock_mono_ms() - t1));
        *reply = push_reply(outcome != NULL ? outcome : "done", counts, &call, calls, p);
        e = *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    if (e == XS_OK && json_array_size(pr.lookups) > 0) {
        json_object_set(*reply, "lookups", pr.lookups);
    }
    if (e == XS_OK && json_array_size(pr.recreated) > 0) {
        /* Deleted in Xero, no longer linked: the next step makes them anew. */
        json_object_set(*reply, "requeue", pr.recreated);
    }
    if (e == XS_OK && outcome != NULL) {
        json_object_set_new(*reply, "message", json_string(call.error));
    }
    push_result_fini(&pr);
    return e;
}

xs_err xs_domain_push(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    const xs_entity_ops *ops = find_entity(ctx, req);
    if (ops == NULL) {
        return XS_EINVAL;
    }
    if (!ops->pushable) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only", ops->name);
    }
    if (json_object_get(req->body, "lookup_names") != NULL) {
        return push_lookup(ctx, ops, req, reply);
    }
    settings set;
    xs_err e = settings_read(ctx, ops, req, &set);
    if (e != XS_OK) {
        return e;
    }
    int64_t stepn = 0, max_calls = 1, calls = 0;
    xs_json_get_int(req->body, "step_id", &stepn);
    xs_json_get_int(req->body, "max_calls", &max_calls);
    char step[24];
    snprintf(step, sizeof(step), "%lld", (long long)stepn);
    json_t *counts = counts_new(PUSH_COUNTS), *errors = json_array();
    push_req p = {.consumed = -1};
    batch b;
    batch_init(&b);
    bool rebuild = false;
    if ((e = push_req_read(ctx, step, &p)) != XS_OK) {
        goto out;
    }
    if (!p.stored) {
        if ((e = build_fresh(ctx, ops, req, counts, &b, errors, &p)) != XS_OK) {
            goto out;
        }
        /* Updates decided at a pull a while ago are decided again on what Xero holds now. */
        rebuild = (b.kind == BATCH_UPDATE || b.kind == BATCH_DELETE) &&
                  json_is_true(json_object_get(req->body, "reread"));
    } else if (p.kind == BATCH_CREATE && xs_clock_now() - p.first_ms > resend_window(ctx)) {
        e = leave_in_doubt(ctx, ops, step, counts, &p, reply);
        goto out;
    } else if (p.kind == BATCH_CREATE) {
        /* Sent again as it is: Xero answers a copy it already took from its memory of the
         * key. Until it is answered, the creates stay in doubt a while longer. */
        char settle[24];
        snprintf(settle, sizeof(settle), "%lld", (long long)settle_ms(ctx));
        if ((e = xs_pg_q(ctx->pg, NULL,
                         "UPDATE sync.push_claims SET settled_by = now() + $2::bigint * interval "
                         "'1 millisecond' WHERE step_id = $1",
                         step, settle)) != XS_OK) {
            e = db_fail(ctx, e, "cannot mark the creates sent again");
            goto out;
        }
    } else {
        /* An update whose send failed: what Xero holds now decides what is sent again. */
        rebuild = true;
        json_array_extend(b.items, p.items);
        b.kind = p.kind;
    }
    if (rebuild && max_calls >= 2) {
        json_t *xids = items_ids(b.items, true), *lids = items_ids(b.items, false);
        xs_xero_call call;
        const char *outcome = NULL;
        e = reread(ctx, req, &set, ops, xids, counts, &call, &outcome);
        calls++;
        json_decref(xids);
        if (e == XS_OK && outcome != NULL) {
            json_decref(lids);
            *reply = push_reply(outcome, counts, &call, calls, &p);
            if (*reply == NULL) {
                e = XS_ENOMEM;
            } else {
                json_object_set_new(*reply, "message", json_string(call.error));
            }
            goto out;
        }
        batch again;
        batch_init(&again);
        char stop[XS_ID_MAX];
        blocked_ids bids = {0};
        if (e == XS_OK) {
            e = build_batch(ctx, ops, req, xs_json_str_or(req->body, "organisation_id", ""), lids,
                            counts, &again, errors, &bids, stop);
        }
        blocked_fini(&bids);
        json_decref(lids);
        batch_finish(&again);
        batch_fini(&b);
        b = again;
        if (e == XS_OK && json_array_size(b.again) > 0) {
            json_t *all = p.again != NULL ? p.again : json_array();
            json_array_extend(all, b.again);
            p.again = all;
        }
    } else if (rebuild && p.stored) {
        /* No permit for a re-read: sent again as it is (an update applied twice is one). */
        rebuild = false;
    } else if (rebuild) {
        xs_log_debug(ctx->proc->log, "sync.reread_skipped", "{s:s, s:s}", "step", step, "reason",
                     "one permit");
        rebuild = false;
    }
    if (e == XS_OK && (!p.stored || rebuild)) {
        e = store_request(ctx, ops, req, step, &b, errors, counts, &p);
        if (e == XS_OK && p.body == NULL) {
            /* Nothing to send: what could not be sent is recorded; a retry's claims go. */
            if (p.stored && ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
                             (e = release_claims(ctx, req, step, false)) != XS_OK ||
                             (e = xs_pg_commit(ctx->pg)) != XS_OK)) {
                e = db_fail(ctx, e, "cannot let the records go");
                goto out;
            }
            *reply = push_reply("done", counts, NULL, calls, &p);
            e = *reply != NULL ? XS_OK : XS_ENOMEM;
            goto out;
        }
    }
    if (e == XS_OK) {
        e = send_request(ctx, ops, req, step, &p, counts, errors, calls, reply);
    }
out:
    json_decref(counts);
    json_decref(errors);
    batch_fini(&b);
    push_req_fini(&p);
    settings_fini(&set);
    return e;
}

/* push_lookup finds, by name, the Xero records that refused a push as duplicates, and links
 * each to its local record when it is free; a name that another local record holds fails. */
static xs_err push_lookup(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          json_t **reply)
{
    json_t *names = json_object_get(req->body, "lookup_names");
    json_t *counts = counts_new(PUSH_COUNTS);
    json_t *keys = json_array(), *errors = json_array(), *maps = json_array(),
           *requeue = json_array(), *xids = json_array(), *found = json_array();
    json_t *mappings = NULL;
    xs_xero_resp resp = {0};
    xs_pg_res *r = NULL;
    char *where = NULL, *ew = NULL;
    xs_err e = XS_OK;
    size_t i;
    json_t *v;
    if (ops->lookup_query == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "%s has no lookup", ops->name);
        goto out;
    }
    json_array_foreach(names, i, v)
    {
        if (xs_json_str_or(v, "name", NULL) == NULL ||
            !xs_uuid_valid(xs_json_str_or(v, "local_id", ""))) {
            e = xs_svc_fail_field(ctx, XS_EINVAL, "lookup_names", "items are {name, local_id}");
            goto out;
        }
        json_array_append_new(keys, json_string(xs_json_str_or(v, "name", "")));
    }
    where = ops->lookup_query(keys);
    if (where == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    /* Percent-encode the filter for the query string. */
    size_t wl = strlen(where);
    ew = malloc(3 * wl + 1);
    if (ew == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    size_t o = 0;
    for (size_t k = 0; k < wl; k++) {
        unsigned char c = (unsigned char)where[k];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            ew[o++] = (char)c;
        } else {
            o += (size_t)sprintf(ew + o, "%%%02X", c);
        }
    }
    ew[o] = '\0';
    size_t plen = strlen(ops->xero_path) + o + 64;
    char *path = malloc(plen);
    if (path == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    snprintf(path, plen, "%s?where=%s%s%s", ops->xero_path, ew, ops->pull_query ? "&" : "",
             ops->pull_query ? ops->pull_query : "");
    xs_xero_req xr = {.method = "GET",
                      .path = path,
                      .bearer = xs_json_str_or(req->body, "access_token", ""),
                      .tenant_id = xs_json_str_or(req->body, "tenant_id", "")};
    xs_xero_call call;
    e = xs_xero_request(xero_of(ctx), &xr, &resp, &call);
    free(path);
    audit(ctx, req, &call);
    const char *outcome = call_outcome(e, resp.status, false);
    if (outcome == NULL && !json_is_array(json_object_get(resp.json, ops->xero_list))) {
        outcome = "failed";
    }
    if (outcome != NULL) {
        e = outcome_reply(outcome, json_incref(counts), &call, call.error, reply);
        goto out;
    }
    json_t *list = json_object_get(resp.json, ops->xero_list);
    json_array_foreach(list, i, v)
    {
        json_t *rec = NULL;
        char xid[XS_ID_MAX] = "", why[XS_DOMAIN_WHY_MAX];
        xs_time at = 0;
        if (xs_domain_from_xero(ops, v, &rec, xid, &at, why) == XS_OK && xero_id_ok(xid)) {
            json_array_append_new(found, json_pack("{s:s, s:o, s:I, s:s}", "xero_id", xid, "rec",
                                                   rec, "at", (json_int_t)at, "name",
                                                   xs_domain_text_or_empty(rec, "name")));
            json_array_append_new(xids, json_string(xid));
        } else {
            json_decref(rec);
        }
    }
    if ((e = load_mappings(ctx, req->conn, ops->name, xids, true, &mappings)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read mappings");
        goto out;
    }
    /* Compare names as Xero does (case and spacing aside), in the database's own rule. */
    json_t *pairs = json_array();
    json_array_foreach(names, i, v)
    {
        size_t j;
        json_t *f;
        json_array_foreach(found, j, f)
        {
            json_array_append_new(pairs,
                                  json_pack("{s:I, s:I, s:s, s:s}", "i", (json_int_t)i, "j",
                                            (json_int_t)j, "a", xs_json_str_or(v, "name", ""), "b",
                                            xs_json_str_or(f, "name", "")));
        }
    }
    e = exec_json(ctx->pg, &r,
                  "SELECT r.i, r.j FROM jsonb_to_recordset($1::jsonb) AS r(i int, j int, a text, b "
                  "text) WHERE sync.normalise_name(r.a) = sync.normalise_name(r.b)",
                  0, NULL, pairs);
    json_decref(pairs);
    if (e != XS_OK) {
        e = db_fail(ctx, e, "cannot compare names");
        goto out;
    }
    json_t *match_of = json_object();
    for (int k = 0; k < xs_pg_res_nrows(r); k++) {
        json_object_set_new(match_of, xs_pg_res_get(r, k, 0),
                            json_integer(atoll(xs_pg_res_get(r, k, 1))));
    }
    json_array_foreach(names, i, v)
    {
        char ik[24];
        snprintf(ik, sizeof(ik), "%zu", i);
        json_t *jm = json_object_get(match_of, ik);
        const char *lid = xs_json_str_or(v, "local_id", "");
        char msg[600];
        if (jm == NULL) {
            snprintf(msg, sizeof(msg),
                     "Xero refused the name \"%.200s\" as taken, but no record by that name "
                     "can be found there",
                     xs_json_str_or(v, "name", ""));
            item_error(errors, lid, NULL, msg);
            counts_add(counts, "failed", 1);
            continue;
        }
        json_t *f = json_array_get(found, (size_t)json_integer_value(jm));
        const char *xid = xs_json_str_or(f, "xero_id", "");
        json_t *m = json_object_get(mappings, xid);
        if (m != NULL && strcmp(xs_json_str_or(m, "local_id", ""), lid) != 0) {
            snprintf(msg, sizeof(msg),
                     "Xero requires unique names: \"%.200s\" is already the name of the Xero "
                     "record linked to local record %s; rename one of them",
                     xs_json_str_or(v, "name", ""), xs_json_str_or(m, "local_id", ""));
            item_error(errors, lid, xid, msg);
            counts_add(counts, "failed", 1);
            continue;
        }
        int64_t at = 0;
        xs_json_get_int(f, "at", &at);
        mapping_add(maps, lid, xid, json_object_get(f, "rec"), at, 0);
        json_array_append_new(requeue, json_string(lid));
        counts_add(counts, "linked", 1);
    }
    json_decref(match_of);
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = write_mappings(ctx, req->conn, ops->name, txid, maps)) != XS_OK ||
        (e = item_errors(ctx, req, ops->name, errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        e = db_fail(ctx, e, "cannot link records");
        goto out;
    }
    *reply = json_pack("{s:s, s:O, s:o, s:O}", "outcome", "done", "counts", counts, "call",
                       call_json(&call), "requeue", requeue);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    xs_pg_res_free(r);
    xs_xero_resp_fini(&resp);
    free(where);
    free(ew);
    json_decref(counts);
    json_decref(keys);
    json_decref(errors);
    json_decref(maps);
    json_decref(requeue);
    json_decref(xids);
    json_decref(found);
    json_decref(mappings);
    return e;
}

xs_err xs_domain_resolve(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    const xs_entity_ops *ops = find_entity(ctx, req);
    if (ops == NULL) {
        return XS_EINVAL;
    }
    const char *cid = xs_json_str_or(req->body, "conflict_id", "");
    const char *res = xs_json_str_or(req->body, "resolution", "");
    const char *by = xs_json_str_or(req->body, "by", "api");
    json_t *data = json_object_get(req->body, "data");
    bool keep_local = strcmp(res, "KEEP_LOCAL") == 0, keep_xero = strcmp(res, "KEEP_XERO") == 0,
         merged = strcmp(res, "MERGED") == 0;
    if (!keep_local && !keep_xero && !merged) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "resolution",
                                 "resolution must be KEEP_LOCAL, KEEP_XERO or MERGED");
    }
    if (merged != (data != NULL)) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "data",
                                 merged ? "MERGED needs the merged record in data"
                                        : "data goes only with MERGED");
    }
    xs_pg_res *r = NULL;
    json_t *xver = NULL, *rec = NULL, *maps = json_array(), *at = NULL, *queue = json_array(),
           *local = NULL, *ids = NULL;
    xs_err e = xs_pg_begin(ctx->pg);
    if (e != XS_OK) {
        e = db_fail(ctx, e, "cannot begin");
        goto out;
    }
    e = xs_pg_q(ctx->pg, &r,
                "SELECT k.local_id, k.xero_id, k.xero_version, k.status, c.organisation_id FROM "
                "sync.conflicts k JOIN sync.connections c ON c.id = k.connection_id WHERE k.id = "
                "$1 AND k.connection_id = $2 AND k.entity = $3 FOR UPDATE OF k",
                cid, req->conn, ops->name);
    if (e != XS_OK) {
        e = db_fail(ctx, e, "cannot read the conflict");
        goto out;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "conflict_id", "no conflict %s", cid);
        goto out;
    }
    if (strcmp(xs_pg_res_get(r, 0, 3), "PENDING") != 0) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s is already %s", cid,
                        xs_pg_res_get(r, 0, 3));
        goto out;
    }
    char lid[XS_ID_MAX], xid[XS_ID_MAX], org[XS_ID_MAX];
    snprintf(lid, sizeof(lid), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(xid, sizeof(xid), "%s", xs_pg_res_get(r, 0, 1) ? xs_pg_res_get(r, 0, 1) : "");
    snprintf(org, sizeof(org), "%s", xs_pg_res_get(r, 0, 4));
    const char *xt = xs_pg_res_get(r, 0, 2);
    xver = xt != NULL ? xs_json_parse(xt, strlen(xt), NULL) : NULL;
    if (!json_is_object(xver) || !xs_uuid_valid(xid)) {
        xs_pg_rollback(ctx->pg);
        e = xs_svc_fail(ctx, XS_ESTATE, false, "conflict %s has no Xero version to settle", cid);
        goto out;
    }
    if (merged) {
        ids = json_pack("[s]", lid);
        if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK) {
            e = db_fail(ctx, e, "cannot read the local record");
            goto out;
        }
        char field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
        json_t *cur = json_object_get(json_object_get(local, lid), "rec");
        if (ops->validate(data, cur, false, &rec, field, why) != XS_OK) {
            xs_pg_rollback(ctx->pg);
            char f[300];
            snprintf(f, sizeof(f), "data.%s", field);
            e = xs_svc_fail_field(ctx, XS_EINVAL, f, "%s", why);
            goto out;
        }
    }
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    if ((e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK) {
        e = db_fail(ctx, e, "cannot mark the write");
        goto out;
    }
    /* The base becomes Xero's version: what stays different locally is then pushed. */
    if (keep_xero || merged) {
        json_t *upd = json_pack("[{s:s, s:O}]", "id", lid, "rec", keep_xero ? xver : rec);
        json_t *none = json_array();
        e = ops->write_local(ctx->pg, org, none, upd, &at);
        json_decref(upd);
        json_decref(none);
        if (e != XS_OK) {
            e = db_fail(ctx, e, "cannot write the local record");
            goto out;
        }
    }
    json_t *lat = json_object_get(at, lid);
    mapping_add(maps, lid, xid, xver, 0, lat != NULL ? json_integer_value(lat) : 0);
    bool push = keep_local || (merged && !xs_json_equal(rec, xver));
    if (push) {
        json_array_append_new(queue, json_string(lid));
    }
    char *mtext = merged ? xs_json_dump(rec, 0) : NULL;
    const char *p[] = {cid, res, by, mtext};
    if ((e = write_mappings(ctx, req->conn, ops->name, txid, maps)) != XS_OK ||
        (e = queue_push(ctx, org, ops->name, queue)) != XS_OK ||
        (e = xs_pg_exec(ctx->pg, NULL,
                        "UPDATE sync.conflicts SET status = 'RESOLVED', resolution = $2, "
                        "resolved_by = $3, resolved_at = now(), merged_data = $4::jsonb WHERE id "
                        "= $1",
                        4, p)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        free(mtext);
        e = db_fail(ctx, e, "cannot settle the conflict");
        goto out;
    }
    free(mtext);
    xs_log_info(ctx->proc->log, "sync.conflict_resolved", "{s:s, s:s, s:s}", "conflict", cid,
                "resolution", res, "by", by);
    *reply = json_pack("{s:s, s:s, s:s, s:b}", "status", "RESOLVED", "resolution", res, "local_id",
                       lid, "push", push);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    xs_pg_res_free(r);
    json_decref(xver);
    json_decref(rec);
    json_decref(maps);
    json_decref(at);
    json_decref(queue);
    json_decref(local);
    json_decref(ids);
    return e;
}

xs_err xs_domain_local_upsert(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply)
{
    const xs_entity_ops *ops = find_entity(ctx, req);
    if (ops == NULL) {
        return XS_EINVAL;
    }
    if (ops->validate == NULL) {
        return xs_svc_fail_field(ctx, XS_EINVAL, "entity", "%s records are read-only", ops->name);
    }
    const char *org = xs_json_str_or(req->body, "organisation_id", NULL);
    const char *id = xs_json_str_or(req->body, "id", NULL);
    bool partial = false;
    xs_json_get_bool(req->body, "partial", &partial);
    json_t *ids = NULL, *local = NULL, *rec = NULL, *at = NULL, *rows = NULL;
    json_t *cur = NULL;
    char nid[XS_ID_MAX], field[XS_DOMAIN_WHY_MAX] = "", why[XS_DOMAIN_WHY_MAX] = "";
    xs_err e = XS_OK;
    if (id != NULL) {
        ids = json_pack("[s]", id);
        if ((e = ops->load_local(ctx->pg, org, ids, &local)) != XS_OK) {
            e = db_fail(ctx, e, "cannot read the record");
            goto out;
        }
        json_t *row = json_object_get(local, id);
        if (row == NULL) {
            e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "id", "no %s %s", ops->name, id);
            goto out;
        }
        cur = json_object_get(row, "rec");
        org = xs_json_str_or(row, "org", org);
    } else if (org == NULL) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, "organisation_id", "organisation_id is required");
        goto out;
    }
    if (ops->validate(json_object_get(req->body, "record"), cur, partial, &rec, field, why) !=
        XS_OK) {
        e = xs_svc_fail_field(ctx, XS_EINVAL, field, "%s", why);
        goto out;
    }
    if (id == NULL && (e = xs_uuid_random_text(nid)) != XS_OK) {
        goto out;
    }
    const char *rid = id != NULL ? id : nid;
    /* Not marked as the engine's: the change trigger puts it in the outbox for every
     * connection of the organisation. */
    rows = json_pack("[{s:s, s:O}]", "id", rid, "rec", rec);
    json_t *none = json_array();
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
        (e = ops->write_local(ctx->pg, org, id != NULL ? none : rows, id != NULL ? rows : none,
                              &at)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        json_decref(none);
        if (strcmp(xs_pg_sqlstate(ctx->pg), "23503") == 0) {
            /* A foreign key: the organisation, or a record referred to (an invoice's contact),
             * which must be the organisation's. */
            const char *bad = "organisation_id";
            for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
                char col[64];
                snprintf(col, sizeof(col), "%s_id", ref->field);
                if (strstr(xs_pg_error(ctx->pg), col) != NULL) {
                    bad = ref->field;
                }
            }
            xs_pg_rollback(ctx->pg);
            e = strcmp(bad, "organisation_id") == 0
                    ? xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such organisation")
                    : xs_svc_fail_field(ctx, XS_ENOTFOUND, bad, "no such %s in this organisation",
                                        bad);
        } else {
            e = db_fail(ctx, e, "cannot write the record");
        }
        goto out;
    }
    json_decref(none);
    *reply = json_pack("{s:s, s:b, s:O}", "id", rid, "created", id == NULL, "record", rec);
    e = *reply != NULL ? XS_OK : XS_ENOMEM;
out:
    json_decref(ids);
    json_decref(local);
    json_decref(rec);
    json_decref(at);
    json_decref(rows);
    return e;
}
