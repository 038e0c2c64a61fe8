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

#define DEFAULT_PAGE     1000
#define SCAN_MAX         20000
#define SCAN_READ        1000
#define ANALYZE_MIN_ROWS 200
#define ANALYZE_MAX_ROWS 25000
#define ANALYZE_TARGET   "10"
#define WHY_MAX          256
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
    if (s == NULL || xs_json_is_decimal(json_object_get(x, key))) {
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
    return fixed_array(ids, 36, xs_proto_uuid_valid);
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

json_t *xs_domain_amount(const json_t *in, const char *key, int places, char *why)
{
    json_t *v = json_object_get(in, key);
    if (v == NULL || json_is_null(v) ||
        (json_is_string(v) && !xs_json_is_decimal(v) && json_string_length(v) == 0)) {
        return json_null();
    }
    xs_money m;
    char buf[XS_MONEY_TEXT_MAX];
    if (xs_json_to_money(v, &m) != XS_OK || xs_money_format(m, places, buf) != XS_OK) {
        snprintf(why, 256, "%.40s is not an amount with at most %d decimal places", key, places);
        return NULL;
    }
    return json_string(buf);
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
            snprintf(why, 256, "line %zu is not an object", i + 1);
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
                snprintf(why, 256, "line %zu: %s", i + 1, inner);
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
        snprintf(why, 256, "%s %.40s has no readable UpdatedDateUTC", what, id);
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
    int last = xs_pg_res_ncols(r) - 1;
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        json_t *rec = row_rec(r, i);
        if (rec == NULL) {
            continue; /* a row the table's checks admitted always reads */
        }
        int64_t at = 0;
        xs_pg_res_int(r, i, last, &at);
        json_object_set_new(res, xs_pg_res_get(r, i, 0),
                            json_pack("{s:o, s:I, s:s}", "rec", rec, "at", (json_int_t)at, "org",
                                      xs_pg_res_get(r, i, 1)));
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
        snprintf(field, 256, "record");
        for (size_t f = 0; fields[f][0] != NULL; f++) {
            if (strstr(why, fields[f][0]) != NULL) {
                snprintf(field, 256, "%s", fields[f][1]);
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

xs_err xs_domain_new_id(char id[XS_ID_MAX])
{
    uint8_t b[16];
    xs_err e = xs_crypto_random(b, sizeof(b));
    if (e != XS_OK) {
        return e;
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    char hex[33];
    xs_hex_encode(b, sizeof(b), hex);
    snprintf(id, XS_ID_MAX, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
    return XS_OK;
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
            if (v != NULL && xs_proto_uuid_valid(v) && json_object_get(seen, v) == NULL) {
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
            if (s != NULL && xs_proto_uuid_valid(s)) {
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
        if (v != NULL && !xs_proto_uuid_valid(v)) {
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
                            "SELECT xero_id, local_id, base, base_checksum FROM sync.mappings "
                            "WHERE connection_id = $1 AND entity = $2 AND xero_id = "
                            "ANY($3::uuid[])",
                            conn, entity, arr)
                  : xs_pg_q(ctx->pg, &r,
                            "SELECT xero_id, local_id, base, base_checksum FROM sync.mappings "
                            "WHERE connection_id = $1 AND entity = $2 AND local_id = "
                            "ANY($3::uuid[])",
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
    "m.xero_raw_checksum ELSE EXCLUDED.xero_raw_checksum END"
#define MAPPING_COLS                                                                               \
    "INSERT INTO sync.mappings AS m (connection_id, entity, local_id, xero_id, base, "             \
    "base_checksum, xero_updated_at, local_updated_at, last_synced_at, sync_version, last_txid, "  \
    "xero_raw_sum, xero_raw_checksum) "

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
        "millisecond' END, now(), 1, $3, r.raw, r.raw_checksum FROM jsonb_to_recordset($4::jsonb) "
        "AS r(local_id uuid, xero_id uuid, base jsonb, checksum text, xero_at bigint, local_at "
        "bigint, raw text, raw_checksum text) " MAPPING_UPSERT " RETURNING m.entity, m.local_id) "
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
        "xero_id uuid, rec jsonb, checksum text, xero_at bigint, raw text)), c AS (";
    static const char tail[] =
        ") " MAPPING_COLS "SELECT $2, $3, r.id, r.xero_id, r.rec, r.checksum, 'epoch'::timestamptz "
        "+ r.xero_at * interval '1 millisecond', " XS_DOMAIN_AT_MS(
            "now()") ", now(), 1, $4, r.raw, "
                     "CASE WHEN r.raw IS NOT NULL THEN r.checksum END FROM r " MAPPING_UPSERT;
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
            if (id == NULL || !xs_proto_uuid_valid(id) || n + 120 >= cap) {
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
                if (!xs_proto_uuid_valid(tb->ids[k])) {
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
    bool known;   /* its raw sum says it is unchanged: not parsed, nothing to do */
    bool blocked; /* a record it refers to has no mapping yet (refs_translate) */
} pulled;

/* memo_add gives the mappings added to list since *seen (those of one pulled record, r)
 * r's raw sum and what it reads as: a memo that holds whatever the base becomes. */
static void memo_add(json_t *list, size_t *seen, const pulled *r)
{
    for (; *seen < json_array_size(list); (*seen)++) {
        if (r->raw[0] != '\0') {
            json_t *m = json_array_get(list, *seen);
            json_object_set_new(m, "raw", json_string(r->raw));
            json_object_set_new(m, "raw_checksum", json_string(r->sum));
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
            if (xs_proto_uuid_valid(ids[i])) {
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
        char id[XS_ID_MAX] = "", why[WHY_MAX];
        xs_time at = 0;
        if (order != NULL && order[i - 1] < 0) {
            const pulled *k = &p->known[-1 - order[i - 1]];
            at = k->at;
            snprintf(id, sizeof(id), "%s", k->xero_id);
        } else {
            json_t *rec = NULL;
            json_t *x = json_array_get(list, order != NULL ? (size_t)order[i - 1] : i - 1);
            if (xs_domain_from_xero(ops, x, &rec, id, &at, why) != XS_OK ||
                !xs_proto_uuid_valid(id)) {
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
        char why[WHY_MAX] = "";
        r->xero_id[0] = '\0';
        if (xs_domain_from_xero(ops, item, &r->rec, r->xero_id, &r->at, why) != XS_OK ||
            !xs_proto_uuid_valid(r->xero_id)) {
            item_error(p->errors, NULL, xs_proto_uuid_valid(r->xero_id) ? r->xero_id : NULL,
                       why[0] != '\0' ? why : "a record Xero sent cannot be read");
            json_decref(r->rec);
            r->rec = NULL;
            p->unreadable++;
            continue;
        }
        xs_sync_checksum(r->rec, r->sum);
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
        if (id == NULL || !xs_proto_uuid_valid(id)) {
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

/* apply_page decides each record of a page read and writes the outcome, in one transaction
 * marked as the engine's own; counts add up over the pages of a step. */
static xs_err apply_page(xs_svc_ctx *ctx, const xs_msg *req, const settings *set, page *pg,
                         json_t *counts, blocked_ids *blocked)
{
    const xs_entity_ops *ops = pg->ask->ops;
    const json_t *ids = pg->ask->ids;
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    size_t nrec = pg->nrec;
    pulled *recs = pg->recs;
    xs_err e = XS_OK;
    counts_add(counts, "fetched", (json_int_t)pg->n);
    counts_add(counts, "failed", (json_int_t)pg->unreadable);
    int64_t tm[4] = {xs_clock_mono_ms(), 0, 0, 0};
    json_t *maps = json_array(), *creates = json_array(), *updates = json_array(),
           *conflicts = json_array(), *queue = json_array(), *local_ids = json_array(),
           *unmatched = json_array(), *sums = json_array(), *memos = json_array(),
           *created = json_array();
    json_t *mappings = NULL, *local = NULL, *pending = NULL, *matched = NULL, *at = NULL;
    json_t *on = json_object(); /* what blocked records wait for */
    if (maps == NULL || creates == NULL || updates == NULL || conflicts == NULL || queue == NULL ||
        local_ids == NULL || unmatched == NULL || sums == NULL || memos == NULL || on == NULL ||
        created == NULL) {
        e = XS_ENOMEM;
        goto out;
    }
    size_t i;
    json_t *item;
    /* References to other entities' records become local ids; a record whose reference is
     * not here yet waits (or, in a step that is its last chance, fails). */
    bool final = json_is_true(json_object_get(req->body, "final"));
    if (ops->refs != NULL && pg->nparsed > 0) {
        json_t **rs = calloc(pg->nparsed, sizeof(json_t *));
        bool *bl = calloc(pg->nparsed, sizeof(bool));
        for (i = 0; rs != NULL && i < pg->nparsed; i++) {
            rs[i] = recs[i].rec;
        }
        e = rs != NULL && bl != NULL
                ? refs_translate(ctx->pg, req->conn, ops, rs, pg->nparsed, true, bl, on)
                : XS_ENOMEM;
        for (i = 0; e == XS_OK && i < pg->nparsed; i++) {
            recs[i].blocked = bl[i];
            if (!bl[i]) {
                xs_sync_checksum(recs[i].rec, recs[i].sum);
            }
        }
        free(rs);
        free(bl);
        if (e != XS_OK) {
            e = db_fail(ctx, e, "cannot read what the records refer to");
            goto out;
        }
    }
    /* What is known of them here. */
    for (i = 0; i < pg->nparsed; i++) {
        json_array_append_new(sums, json_string(recs[i].sum));
    }
    e = load_mappings_sums(ctx, req->conn, ops->name, pg->xids, sums, true, &mappings);
    if (e != XS_OK) {
        e = db_fail(ctx, e, "cannot read mappings");
        goto out;
    }
    for (i = 0; i < pg->nparsed; i++) {
        json_t *m = json_object_get(mappings, recs[i].xero_id);
        if (recs[i].blocked) {
            continue;
        }
        if (m != NULL) {
            /* An unchanged record (its checksum is the base's) needs nothing local. */
            if (!json_is_null(json_object_get(m, "base")) ||
                json_object_get(m, "checksum") == NULL) {
                json_array_append_new(local_ids, json_string(xs_json_str_or(m, "local_id", "")));
            }
        } else {
            json_array_append_new(
                unmatched, json_pack("{s:s, s:O}", "xero_id", recs[i].xero_id, "rec", recs[i].rec));
        }
    }
    int64_t tmm = xs_clock_mono_ms();
    if (ops->match != NULL && json_array_size(unmatched) > 0 && json_array_size(set->keys) > 0) {
        json_t *cands = NULL;
        if ((e = ops->match(ctx->pg, org, req->conn, unmatched, set->keys, &cands)) != XS_OK) {
            e = db_fail(ctx, e, "cannot match records");
            goto out;
        }
        matched = assign_matches(cands, set->keys);
        json_decref(cands);
        if (matched == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(matched, k, v)
        {
            json_array_append_new(local_ids, json_string(xs_json_str_or(v, "local_id", "")));
        }
    }
    int64_t tml = xs_clock_mono_ms();
    if ((e = ops->load_local(ctx->pg, org, local_ids, &local)) != XS_OK ||
        (e = pending_conflicts(ctx, req->conn, ops->name, local_ids, &pending)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read local records");
        goto out;
    }
    xs_log_debug(ctx->proc->log, "sync.pull_lookup", "{s:I, s:I, s:I}", "mappings_ms",
                 (json_int_t)(tmm - tm[0]), "match_ms", (json_int_t)(tml - tmm), "local_ms",
                 (json_int_t)(xs_clock_mono_ms() - tml));

    tm[1] = xs_clock_mono_ms();
    /* Decide each record. Every mapping written for a record keeps its raw sum (memo_add,
     * run after each record however its branch ends). */
    size_t nmaps = 0;
    for (i = 0; i < nrec; memo_add(maps, &nmaps, &recs[i]), i++) {
        pulled *p = &recs[i];
        if (p->known) {
            counts_add(counts, "unchanged", 1);
            continue;
        }
        if (p->blocked) {
            if (final) {
                char msg[WHY_MAX];
                blocked_message(ops, p->rec, on, true, msg, sizeof(msg));
                item_error(pg->errors, NULL, p->xero_id, msg);
                counts_add(counts, "failed", 1);
            } else if (idlist_add(&blocked->self, p->xero_id)) {
                counts_add(counts, "deferred", 1);
            } else {
                e = XS_ENOMEM;
                goto out;
            }
            continue;
        }
        json_t *m = json_object_get(mappings, p->xero_id);
        json_t *mt = json_object_get(matched, p->xero_id);
        const char *lid = NULL;
        const json_t *base = NULL;
        if (m != NULL) {
            if (strcmp(xs_json_str_or(m, "checksum", ""), p->sum) == 0) {
                if (p->raw[0] != '\0' && strcmp(xs_json_str_or(m, "raw", ""), p->raw) != 0) {
                    /* Unchanged, but sent as other text than last time: keep this text's
                     * sum, so it is known the next time it comes. */
                    json_array_append_new(memos, json_pack("{s:s, s:s, s:s}", "xero_id", p->xero_id,
                                                           "raw", p->raw, "checksum", p->sum));
                }
                counts_add(counts, "unchanged", 1);
                continue;
            }
            lid = xs_json_str_or(m, "local_id", "");
            base = json_object_get(m, "base");
            if (json_is_null(base)) {
                base = NULL;
            }
        } else if (mt != NULL) {
            lid = xs_json_str_or(mt, "local_id", "");
            counts_add(counts, "linked", 1);
        } else {
            char nid[XS_ID_MAX];
            if ((e = xs_domain_new_id(nid)) != XS_OK) {
                goto out;
            }
            if (ops->write_created != NULL) {
                json_t *c = json_pack("{s:s, s:s, s:O, s:s}", "id", nid, "xero_id", p->xero_id,
                                      "rec", p->rec, "checksum", p->sum);
                if (p->at > 0) {
                    json_object_set_new(c, "xero_at", json_integer(p->at));
                }
                if (p->raw[0] != '\0') {
                    json_object_set_new(c, "raw", json_string(p->raw)); /* reads as checksum */
                }
                json_array_append_new(created, c);
            } else {
                json_array_append_new(creates, json_pack("{s:s, s:O}", "id", nid, "rec", p->rec));
                mapping_add_sum(maps, nid, p->xero_id, p->rec, p->sum, p->at, 0);
            }
            counts_add(counts, "created", 1);
            continue;
        }
        json_t *l = json_object_get(local, lid);
        if (l == NULL) {
            /* The local row was deleted by the host application: its removal goes to Xero
             * through the outbox; nothing comes back. */
            counts_add(counts, "skipped", 1);
            continue;
        }
        json_t *lrec = json_object_get(l, "rec");
        int64_t lat = 0;
        xs_json_get_int(l, "at", &lat);
        if (!ops->pushable) {
            /* A read-only mirror: Xero's version is the record; a local edit is overwritten. */
            if (xs_json_equal(lrec, p->rec)) {
                mapping_add_sum(maps, lid, p->xero_id, p->rec, p->sum, p->at, lat);
                counts_add(counts, "unchanged", 1);
            } else {
                json_array_append_new(updates, json_pack("{s:s, s:O}", "id", lid, "rec", p->rec));
                mapping_add_sum(maps, lid, p->xero_id, p->rec, p->sum, p->at, 0);
                counts_add(counts, "updated", 1);
            }
            continue;
        }
        if (m == NULL && set->fill_empty_only) {
            json_t *filled = xs_sync_fill_empty(lrec, p->rec);
            if (!xs_json_equal(filled, lrec)) {
                json_array_append_new(updates, json_pack("{s:s, s:O}", "id", lid, "rec", filled));
                counts_add(counts, "updated", 1);
            } else {
                counts_add(counts, "unchanged", 1);
            }
            mapping_add_sum(maps, lid, p->xero_id, p->rec, p->sum, p->at,
                            xs_json_equal(filled, p->rec) ? 0 : -1);
            if (!xs_json_equal(filled, p->rec)) {
                json_array_append_new(queue, json_string(lid));
                counts_add(counts, "queued", 1);
            }
            json_decref(filled);
            continue;
        }
        if (json_object_get(pending, lid) != NULL) {
            /* Held for a person: keep both versions current, write nothing. */
            xs_sync_decision held = {.action = XS_SYNC_HOLD, .policy = XS_POLICY_MANUAL};
            snprintf(held.reason, sizeof(held.reason), "held for a person");
            conflict_add(conflicts, lid, p->xero_id, base, lrec, p->rec, &held);
            counts_add(counts, "skipped", 1);
            continue;
        }
        xs_sync_decision d;
        if ((e = xs_sync_decide(base, lrec, p->rec, lat, p->at, set->policy, set->fallback, &d)) !=
            XS_OK) {
            e = xs_svc_fail(ctx, e, false, "cannot decide record %s", p->xero_id);
            goto out;
        }
        if (d.conflict) {
            conflict_add(conflicts, lid, p->xero_id, base, lrec, p->rec, &d);
            counts_add(counts, "conflicts", 1);
        }
        switch (d.action) {
        case XS_SYNC_NONE:
            mapping_add(maps, lid, p->xero_id, d.result, p->at, lat);
            counts_add(counts, "unchanged", 1);
            break;
        case XS_SYNC_TO_LOCAL:
            json_array_append_new(updates, json_pack("{s:s, s:O}", "id", lid, "rec", d.result));
            mapping_add(maps, lid, p->xero_id, d.result, p->at, 0);
            counts_add(counts, "updated", 1);
            break;
        case XS_SYNC_TO_XERO:
        case XS_SYNC_BOTH:
            if (d.action == XS_SYNC_BOTH) {
                json_array_append_new(updates, json_pack("{s:s, s:O}", "id", lid, "rec", d.result));
                counts_add(counts, "updated", 1);
            }
            /* The base becomes Xero's version, so the local one reads as changed and the
             * outbox (or a full run's scan) sends it. */
            mapping_add_sum(maps, lid, p->xero_id, p->rec, p->sum, p->at, -1);
            json_array_append_new(queue, json_string(lid));
            counts_add(counts, "queued", 1);
            break;
        case XS_SYNC_HOLD:
            if (m == NULL) {
                json_array_append_new(maps, json_pack("{s:s, s:s, s:n, s:n, s:I}", "local_id", lid,
                                                      "xero_id", p->xero_id, "base", "checksum",
                                                      "xero_at", (json_int_t)p->at));
            }
            break;
        }
        xs_sync_decision_fini(&d);
    }

    if (!final && !blocked_take(blocked, ops, on)) {
        e = XS_ENOMEM;
        goto out;
    }
    tm[2] = xs_clock_mono_ms();
    /* Apply, in one transaction marked as the engine's own, and as this connection's pull
     * (every local row it creates gets its mapping here, so none is unlinked for it). */
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL, "SELECT sync.mark_pull($1)", req->conn)) != XS_OK) {
        e = db_fail(ctx, e, "cannot begin");
        goto out;
    }
    if (json_array_size(creates) + json_array_size(updates) > 0 &&
        (e = ops->write_local(ctx->pg, org, creates, updates, &at)) != XS_OK) {
        e = db_fail(ctx, e, "cannot write local records");
        goto out;
    }
    if (json_array_size(created) > 0 &&
        (e = ops->write_created(ctx->pg, org, req->conn, txid, created)) != XS_OK) {
        e = db_fail(ctx, e, "cannot write new local records");
        goto out;
    }
    if (ops->unpaged && ops->retire_missing != NULL && ids == NULL && pg->ask->filter == NULL &&
        pg->since == 0 && nrec == pg->n) {
        /* A full pull of an entity Xero lists whole, every record read: what is linked here
         * and not in the list is gone from Xero. */
        int gone = 0;
        json_t *seen = json_copy(pg->xids);
        for (i = pg->nparsed; seen != NULL && i < nrec; i++) {
            json_array_append_new(seen, json_string(recs[i].xero_id));
        }
        e = seen != NULL ? ops->retire_missing(ctx->pg, org, req->conn, seen, set->types, &gone)
                         : XS_ENOMEM;
        json_decref(seen);
        if (e != XS_OK) {
            e = db_fail(ctx, e, "cannot mark the records Xero no longer lists");
            goto out;
        }
        counts_add(counts, "retired", gone);
    }
    tm[3] = xs_clock_mono_ms();
    json_array_foreach(maps, i, item)
    {
        json_t *t = json_object_get(at, xs_json_str_or(item, "local_id", ""));
        if (t != NULL && json_integer_value(json_object_get(item, "local_at")) != -1) {
            json_object_set(item, "local_at", t);
        }
    }
    if ((e = write_mappings(ctx, req->conn, ops->name, txid, maps)) != XS_OK ||
        (e = write_memos(ctx, req->conn, ops->name, memos)) != XS_OK ||
        (e = write_conflicts(ctx, req, ops->name, conflicts)) != XS_OK ||
        (e = queue_push(ctx, org, ops->name, queue)) != XS_OK ||
        (e = item_errors(ctx, req, ops->name, pg->errors)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        e = db_fail(ctx, e, "cannot apply the page");
        goto out;
    }
    refresh_stats(ctx, ops, json_array_size(maps) + json_array_size(created));
    xs_log_debug(ctx->proc->log, "sync.pull_timing", "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                 "records", (json_int_t)nrec, "call_ms", (json_int_t)pg->call_ms, "read_ms",
                 (json_int_t)pg->read_ms, "lookup_ms", (json_int_t)(tm[1] - tm[0]), "decide_ms",
                 (json_int_t)(tm[2] - tm[1]), "write_local_ms", (json_int_t)(tm[3] - tm[2]),
                 "write_rest_ms", (json_int_t)(xs_clock_mono_ms() - tm[3]));
out:
    json_decref(maps);
    json_decref(creates);
    json_decref(updates);
    json_decref(conflicts);
    json_decref(queue);
    json_decref(local_ids);
    json_decref(unmatched);
    json_decref(sums);
    json_decref(memos);
    json_decref(created);
    json_decref(mappings);
    json_decref(local);
    json_decref(pending);
    json_decref(matched);
    json_decref(at);
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
            e = apply_page(ctx, req, &set, &cur, counts, &blocked);
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

static const char *const PUSH_COUNTS[] = {"sent",    "created", "updated",  "unchanged", "failed",
                                          "skipped", "retired", "deferred", "linked",    NULL};

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
            if (!xs_proto_uuid_valid(json_string_value(v))) {
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
    char why[WHY_MAX] = "";
    json_t *x = ops->retire_item(xid, base, why);
    if (x == NULL && why[0] != '\0') {
        item_error(errors, id, xid, why);
        counts_add(counts, "failed", 1);
    } else if (x == NULL) {
        counts_add(counts, "skipped", 1);
    }
    return x;
}

/* build_batch chooses what of ids needs sending and builds the request: items [{local_id,
 * xero_id, rec, at, retire}] and the Xero items. At most 50 are taken; *stop is where a scan
 * must continue when it stopped early. */
static xs_err build_batch(xs_svc_ctx *ctx, const xs_entity_ops *ops, const xs_msg *req,
                          const char *org, const json_t *ids, json_t *counts, json_t *items,
                          json_t *xitems, json_t *errors, blocked_ids *blocked, char *stop)
{
    json_t *local = NULL, *maps = NULL, *pending = NULL, *xrecs = json_object(),
           *on = json_object();
    json_t **rs = NULL;
    bool *bl = NULL;
    bool final = json_is_true(json_object_get(req->body, "final"));
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
        if (json_array_size(items) == 50) {
            snprintf(stop, XS_ID_MAX, "%s", json_string_value(json_array_get(ids, i - 1)));
            break;
        }
        json_t *m = json_object_get(maps, id);
        json_t *l = json_object_get(local, id);
        const char *xid = m != NULL ? xs_json_str_or(m, "xero_id", NULL) : NULL;
        if (json_object_get(pending, id) != NULL) {
            counts_add(counts, "skipped", 1);
            continue;
        }
        if (l == NULL) {
            if (m == NULL || ops->retire_item == NULL) {
                counts_add(counts, "skipped", 1);
                continue;
            }
            json_t *x = retire_of(ops, id, xid, json_object_get(m, "base"), counts, errors);
            if (x == NULL) {
                continue;
            }
            json_array_append_new(xitems, x);
            json_array_append_new(
                items, json_pack("{s:s, s:s, s:b}", "local_id", id, "xero_id", xid, "retire", 1));
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
        char why[WHY_MAX];
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
        json_t *base = m != NULL ? json_object_get(m, "base") : NULL;
        base = json_is_object(base) ? base : NULL;
        if (ops->immutable && xid != NULL) {
            /* In Xero, it can only be deleted. */
            bool retired = ops->retired_status != NULL &&
                           strcmp(xs_json_str_or(rec, "status", ""), ops->retired_status) == 0;
            bool recreate =
                !retired &&
                strcmp(xs_json_str_or(json_object_get(req->body, "settings"), "edits", "refuse"),
                       "recreate") == 0;
            if (!retired && !recreate) {
                snprintf(why, sizeof(why),
                         "Xero never changes a %s once it is made: delete it and make a new one, "
                         "or set the connection's edits.%s setting to recreate",
                         ops->name, ops->name);
                item_error(errors, id, xid, why);
                counts_add(counts, "failed", 1);
                continue;
            }
            json_t *x = retire_of(ops, id, xid, base, counts, errors);
            if (x == NULL) {
                continue;
            }
            json_array_append_new(xitems, x);
            json_array_append_new(items, json_pack("{s:s, s:s, s:b, s:b, s:O}", "local_id", id,
                                                   "xero_id", xid, "retire", 1, "recreate",
                                                   recreate, "at", json_object_get(l, "at")));
            continue;
        }
        if (ops->check_push != NULL && !ops->check_push(base, rec, l, why)) {
            item_error(errors, id, xid, why);
            counts_add(counts, "failed", 1);
            continue;
        }
        json_t *x = ops->to_xero(xrec, xid);
        if (x == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        json_array_append_new(xitems, x);
        json_array_append_new(items, json_pack("{s:s, s:s?, s:O, s:O}", "local_id", id, "xero_id",
                                               xid, "rec", rec, "at", json_object_get(l, "at")));
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
    const char *org = xs_json_str_or(req->body, "organisation_id", "");
    int64_t step = 0;
    xs_json_get_int(req->body, "step_id", &step);
    char steps[24];
    snprintf(steps, sizeof(steps), "%lld", (long long)step);
    json_t *counts = counts_new(PUSH_COUNTS);
    json_t *ids = NULL, *items = NULL, *maps = json_array(), *errors = json_array(),
           *lookups = json_array();
    char *body = NULL, next_scan[XS_ID_MAX] = "", stop[XS_ID_MAX] = "";
    char key[64] = "";
    xs_pg_res *r = NULL;
    xs_xero_resp resp = {0};
    xs_err e;
    bool scan = false;
    int64_t consumed = -1;
    blocked_ids bids = {0};
    json_t *blocked = NULL; /* {"ids", "on"}: the records that wait for others (local ids) */

    int64_t pt[5] = {xs_clock_mono_ms(), 0, 0, 0, 0};
    /* A step that already sent its request sends exactly the same again. */
    if ((e = xs_pg_q(ctx->pg, &r,
                     "SELECT request_body, idempotency_key, request_items FROM sync.run_steps "
                     "WHERE id = $1",
                     steps)) != XS_OK) {
        e = db_fail(ctx, e, "cannot read the step");
        goto out;
    }
    if (xs_pg_res_nrows(r) == 0) {
        e = xs_svc_fail_field(ctx, XS_ENOTFOUND, "step_id", "no step %s", steps);
        goto out;
    }
    if (xs_pg_res_get(r, 0, 0) != NULL) {
        body = strdup(xs_pg_res_get(r, 0, 0));
        snprintf(key, sizeof(key), "%s", xs_pg_res_get(r, 0, 1));
        /* {"items": [...], "next_scan": "..."}: what the request stands for, and where a
         * scan goes on after it. */
        const char *it = xs_pg_res_get(r, 0, 2);
        json_t *stored = it != NULL ? xs_json_parse(it, strlen(it), NULL) : NULL;
        items = json_incref(json_object_get(stored, "items"));
        snprintf(next_scan, sizeof(next_scan), "%s", xs_json_str_or(stored, "next_scan", ""));
        xs_json_get_int(stored, "consumed", &consumed);
        blocked = json_incref(json_object_get(stored, "blocked"));
        json_decref(stored);
        if (body == NULL || !json_is_array(items)) {
            e = xs_svc_fail(ctx, XS_EPROTO, false, "step %s holds a damaged request", steps);
            goto out;
        }
    } else {
        if ((e = candidates(ctx, ops, req, org, &ids, next_scan, &scan)) != XS_OK) {
            goto out;
        }
        items = json_array();
        json_t *xitems = json_array();
        e = build_batch(ctx, ops, req, org, ids, counts, items, xitems, errors, &bids, stop);
        /* A scan keeps reading local records until a batch is full (every call then carries
         * 50), or SCAN_MAX records were read (a step stays short), or the records end. */
        for (int scanned = (int)json_array_size(ids);
             e == XS_OK && scan && stop[0] == '\0' && next_scan[0] != '\0' &&
             json_array_size(items) < 50 && scanned < SCAN_MAX;) {
            json_t *more = NULL;
            char after[XS_ID_MAX];
            snprintf(after, sizeof(after), "%s", next_scan);
            if ((e = ops->list_ids(ctx->pg, org, req->conn, after, SCAN_READ, &more, next_scan)) !=
                XS_OK) {
                e = db_fail(ctx, e, "cannot list local records");
                break;
            }
            scanned += SCAN_READ;
            e = build_batch(ctx, ops, req, org, more, counts, items, xitems, errors, &bids, stop);
            json_decref(more);
        }
        if (e != XS_OK) {
            json_decref(xitems);
            goto out;
        }
        if (scan && stop[0] != '\0') {
            snprintf(next_scan, sizeof(next_scan), "%s", stop);
        }
        /* Given ids: those up to the last one taken are consumed; the orchestrator sends the
         * rest in the next step, so every call carries a full batch. */
        consumed = scan ? -1 : (int64_t)json_array_size(ids);
        if (!scan && stop[0] != '\0') {
            size_t k;
            json_t *v;
            json_array_foreach(ids, k, v)
            {
                if (strcmp(json_string_value(v), stop) == 0) {
                    consumed = (int64_t)k + 1;
                    break;
                }
            }
        }
        blocked = blocked_json(&bids);
        if (json_array_size(items) == 0) {
            json_decref(xitems);
            /* Nothing to send: what could not be sent is recorded now. */
            if (json_array_size(errors) > 0 &&
                ((e = xs_pg_begin(ctx->pg)) != XS_OK ||
                 (e = item_errors(ctx, req, ops->name, errors)) != XS_OK ||
                 (e = xs_pg_commit(ctx->pg)) != XS_OK)) {
                e = db_fail(ctx, e, "cannot record the records that cannot be sent");
                goto out;
            }
            json_t *out = json_pack("{s:s, s:O}", "outcome", "done", "counts", counts);
            if (blocked != NULL) {
                json_object_set(out, "blocked", blocked);
            }
            if (consumed >= 0) {
                json_object_set_new(out, "consumed", json_integer(consumed));
            }
            if (next_scan[0] != '\0') {
                json_object_set_new(out, "next_scan", json_string(next_scan));
            }
            *reply = out;
            e = XS_OK;
            goto out;
        }
        json_t *doc = json_pack("{s:o}", ops->xero_list, xitems);
        body = xs_json_dump(doc, 0);
        json_decref(doc);
        if (body == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        /* The key names this exact batch of these local records on this connection: two
         * batches of the same text (bills alike, which Xero lets be) are two requests. */
        char seed[2 * XS_SHA256_LEN + 1];
        size_t blen = strlen(body) + strlen(req->conn) + json_array_size(items) * XS_ID_MAX + 2;
        char *keyed = malloc(blen);
        if (keyed == NULL) {
            e = XS_ENOMEM;
            goto out;
        }
        size_t kn = (size_t)snprintf(keyed, blen, "%s\n", req->conn);
        size_t ki;
        json_t *kv;
        json_array_foreach(items, ki, kv)
        {
            kn +=
                (size_t)snprintf(keyed + kn, blen - kn, "%s,", xs_json_str_or(kv, "local_id", ""));
        }
        snprintf(keyed + kn, blen - kn, "\n%s", body);
        xs_sha256_hex(keyed, strlen(keyed), seed);
        free(keyed);
        snprintf(key, sizeof(key), "xs-%.40s", seed);
        json_t *stored = json_pack("{s:O, s:s, s:I}", "items", items, "next_scan", next_scan,
                                   "consumed", (json_int_t)consumed);
        if (blocked != NULL) {
            json_object_set(stored, "blocked", blocked);
        }
        char *itext = xs_json_dump(stored, 0);
        json_decref(stored);
        const char *p[] = {steps, body, key, itext};
        /* The request, and the records refused before it (a retry sends it as it is). */
        e = itext == NULL ? XS_ENOMEM : xs_pg_begin(ctx->pg);
        if (e == XS_OK && (e = item_errors(ctx, req, ops->name, errors)) == XS_OK &&
            (e = xs_pg_exec(ctx->pg, NULL,
                            "UPDATE sync.run_steps SET request_body = $2, idempotency_key = $3, "
                            "request_items = $4::jsonb WHERE id = $1",
                            4, p)) == XS_OK) {
            e = xs_pg_commit(ctx->pg);
        }
        free(itext);
        json_array_clear(errors);
        if (e != XS_OK) {
            e = db_fail(ctx, e, "cannot store the request before sending it");
            goto out;
        }
    }

    char path[XS_XERO_PATH_MAX];
    pt[1] = xs_clock_mono_ms();
    snprintf(path, sizeof(path), "%s?summarizeErrors=false%s%s", ops->xero_path,
             ops->push_query != NULL ? "&" : "", ops->push_query != NULL ? ops->push_query : "");
    xs_xero_req xr = {.method = "POST",
                      .path = path,
                      .bearer = xs_json_str_or(req->body, "access_token", ""),
                      .tenant_id = xs_json_str_or(req->body, "tenant_id", ""),
                      .idempotency_key = key,
                      .body = body,
                      .body_len = strlen(body)};
    xs_xero_call call;
    e = xs_xero_request(xero_of(ctx), &xr, &resp, &call);
    audit(ctx, req, &call);
    counts_add(counts, "sent", (json_int_t)json_array_size(items));
    const char *outcome = call_outcome(e, resp.status, true);
    json_t *results = json_object_get(resp.json, ops->xero_list);
    if (outcome == NULL && resp.status == 200 &&
        json_array_size(results) != json_array_size(items)) {
        outcome = "failed";
        snprintf(call.error, sizeof(call.error), "Xero answered %zu items for %zu sent",
                 json_array_size(results), json_array_size(items));
    }
    if (outcome == NULL && resp.status != 200) {
        /* The whole batch was refused (e.g. 400 PostDataInvalidException). */
        char msg[512];
        snprintf(msg, sizeof(msg), "Xero refused the batch (HTTP %ld): %s", resp.status,
                 xs_json_str_or(resp.json, "Message", resp.body != NULL ? resp.body : ""));
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            item_error(errors, xs_json_str_or(it, "local_id", NULL),
                       xs_json_str_or(it, "xero_id", NULL), msg);
        }
        counts_add(counts, "failed", (json_int_t)json_array_size(items));
        outcome = "failed";
        snprintf(call.error, sizeof(call.error), "%.250s", msg);
    }
    if (outcome != NULL && strcmp(outcome, "failed") != 0) {
        /* Not applied (or not known to be): the stored request stays for the retry. */
        e = outcome_reply(outcome, json_incref(counts), &call, call.error, reply);
        goto out;
    }

    pt[2] = xs_clock_mono_ms();
    char txid[64];
    new_txid(req, txid, sizeof(txid));
    json_t *recreated = json_array(); /* deleted in Xero to be made again: unlinked, requeued */
    json_t *computed = json_array();  /* [{local_id, ...}]: Xero's computed fields to keep */
    if (outcome == NULL) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            json_t *res = json_array_get(results, i);
            const char *lid = xs_json_str_or(it, "local_id", "");
            const char *had = xs_json_str_or(it, "xero_id", NULL);
            bool retire = json_is_true(json_object_get(it, "retire"));
            const char *st = xs_json_str_or(res, "StatusAttributeString", "OK");
            json_t *xrec = NULL;
            char xid[XS_ID_MAX] = "", why[WHY_MAX] = "";
            xs_time xat = 0;
            if (strcmp(st, "ERROR") != 0 &&
                xs_domain_from_xero(ops, res, &xrec, xid, &xat, why) == XS_OK &&
                xs_proto_uuid_valid(xid)) {
                /* The base is what was sent: if Xero wrote it differently, the next pull
                 * sees a change in Xero and takes Xero's form once. A retired record's is
                 * Xero's, its references made local ids again. */
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
                    json_array_append_new(computed, row);
                }
                bool bl = false;
                json_t *on = json_object();
                if (retire && ops->refs != NULL &&
                    (refs_translate(ctx->pg, req->conn, ops, &xrec, 1, true, &bl, on) != XS_OK ||
                     bl)) {
                    base = NULL; /* unknown: the next pull decides against no base */
                }
                json_decref(on);
                int64_t lat = 0;
                xs_json_get_int(it, "at", &lat);
                if (json_is_true(json_object_get(it, "recreate"))) {
                    json_array_append_new(recreated, json_string(lid));
                    counts_add(counts, "retired", 1);
                } else {
                    mapping_add(maps, lid, xid, base, xat, base != NULL ? lat : -1);
                    counts_add(counts, retire ? "retired" : had != NULL ? "updated" : "created", 1);
                }
                json_decref(own);
            } else {
                char msg[1024];
                if (strcmp(st, "ERROR") == 0) {
                    item_message(res, msg, sizeof(msg));
                } else {
                    snprintf(msg, sizeof(msg), "Xero's reply for this record cannot be read: %s",
                             why);
                }
                char lk[256];
                if (!retire && had == NULL && ops->lookup_key != NULL &&
                    ops->lookup_key(json_object_get(it, "rec"), msg, lk)) {
                    json_array_append_new(lookups,
                                          json_pack("{s:s, s:s}", "name", lk, "local_id", lid));
                    counts_add(counts, "deferred", 1);
                } else {
                    item_error(errors, lid, had, msg);
                    counts_add(counts, "failed", 1);
                }
            }
            json_decref(xrec);
        }
    }
    char *unlink = json_array_size(recreated) > 0 ? xs_domain_uuid_array(recreated) : NULL;
    if ((e = xs_pg_begin(ctx->pg)) != XS_OK || (e = xs_pg_mark_engine(ctx->pg, txid)) != XS_OK ||
        (e = write_mappings(ctx, req->conn, ops->name, txid, maps)) != XS_OK ||
        (json_array_size(computed) > 0 && (e = ops->write_computed(ctx->pg, computed)) != XS_OK) ||
        (unlink != NULL &&
         (e = xs_pg_q(ctx->pg, NULL,
                      "DELETE FROM sync.mappings WHERE connection_id = $1 AND entity = $2 AND "
                      "local_id = ANY($3::uuid[])",
                      req->conn, ops->name, unlink)) != XS_OK) ||
        (e = item_errors(ctx, req, ops->name, errors)) != XS_OK ||
        (e = xs_pg_q(ctx->pg, NULL,
                     "UPDATE sync.run_steps SET request_body = NULL, request_items = NULL WHERE "
                     "id = $1",
                     steps)) != XS_OK ||
        (e = xs_pg_commit(ctx->pg)) != XS_OK) {
        free(unlink);
        json_decref(recreated);
        json_decref(computed);
        e = db_fail(ctx, e, "cannot record what Xero accepted");
        goto out;
    }
    free(unlink);
    refresh_stats(ctx, ops, json_array_size(maps) * 10);
    pt[3] = xs_clock_mono_ms();
    xs_log_debug(ctx->proc->log, "sync.push_timing", "{s:I, s:I, s:I, s:I}", "items",
                 (json_int_t)json_array_size(items), "build_ms", (json_int_t)(pt[1] - pt[0]),
                 "call_ms", (json_int_t)(pt[2] - pt[1]), "apply_ms", (json_int_t)(pt[3] - pt[2]));
    json_t *out = json_pack("{s:s, s:O, s:o}", "outcome", outcome != NULL ? outcome : "done",
                            "counts", counts, "call", call_json(&call));
    if (next_scan[0] != '\0') {
        json_object_set_new(out, "next_scan", json_string(next_scan));
    }
    if (consumed >= 0) {
        json_object_set_new(out, "consumed", json_integer(consumed));
    }
    if (json_array_size(lookups) > 0) {
        json_object_set(out, "lookups", lookups);
    }
    if (blocked != NULL) {
        /* The orchestrator pushes what they refer to, then them (in a final step). */
        json_object_set(out, "blocked", blocked);
    }
    if (json_array_size(recreated) > 0) {
        /* Deleted in Xero, no longer linked: the next step makes them anew. */
        json_object_set(out, "requeue", recreated);
    }
    json_decref(recreated);
    json_decref(computed);
    if (outcome != NULL) {
        json_object_set_new(out, "message", json_string(call.error));
    }
    *reply = out;
    e = XS_OK;
out:
    xs_pg_res_free(r);
    xs_xero_resp_fini(&resp);
    json_decref(counts);
    json_decref(ids);
    json_decref(items);
    json_decref(maps);
    json_decref(errors);
    json_decref(lookups);
    json_decref(blocked);
    blocked_fini(&bids);
    free(body);
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
            !xs_proto_uuid_valid(xs_json_str_or(v, "local_id", ""))) {
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
        char xid[XS_ID_MAX] = "", why[WHY_MAX];
        xs_time at = 0;
        if (xs_domain_from_xero(ops, v, &rec, xid, &at, why) == XS_OK && xs_proto_uuid_valid(xid)) {
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
    if (!json_is_object(xver) || !xs_proto_uuid_valid(xid)) {
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
        char field[WHY_MAX] = "", why[WHY_MAX] = "";
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
    char nid[XS_ID_MAX], field[WHY_MAX] = "", why[WHY_MAX] = "";
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
    if (id == NULL && (e = xs_domain_new_id(nid)) != XS_OK) {
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
