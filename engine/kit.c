/* kit.c: see kit.h. */
#include "engine/kit.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

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

bool kit_is_nil_id(const char *s)
{
    xs_uuid u;
    return xs_uuid_parse(s, &u) && xs_uuid_is_nil(&u);
}

bool kit_xero_id_ok(const char *s)
{
    return xs_uuid_valid(s) && !kit_is_nil_id(s);
}

bool kit_is_hex_sum(const char *s)
{
    return s != NULL && strlen(s) == 2 * XS_SHA256_LEN &&
           strspn(s, "0123456789abcdef") == 2 * XS_SHA256_LEN;
}

char *kit_fixed_array(const json_t *items, size_t width, bool (*valid)(const char *))
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
        const char *s = xs_json_string_value(v, NULL);
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
    return kit_fixed_array(ids, 36, xs_uuid_valid);
}

char *xs_domain_rows_text(const xs_rows *rows)
{
    json_t *out = json_array();
    for (size_t i = 0; i < rows->n; i++) {
        json_t *row = json_deep_copy(rows->v[i].rec);
        json_object_set_new(row, "id", json_string(rows->v[i].id));
        json_array_append_new(out, row);
    }
    char *text = xs_json_dump(out, 0);
    json_decref(out);
    return text;
}

/* grow returns v (n used of *cap elements of size) with room for one more, moved if need be;
 * NULL when out of memory (v as it was). */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return v;
    }
    size_t c = *cap > 0 ? *cap * 2 : 16;
    void *p = realloc(v, c * size);
    if (p != NULL) {
        *cap = c;
    }
    return p;
}

bool xs_rows_add(xs_rows *s, const char *id, json_t *rec)
{
    xs_row *v = grow(s->v, &s->cap, s->n, sizeof(*v));
    if (v == NULL) {
        json_decref(rec);
        return false;
    }
    s->v = v;
    xs_row *r = &s->v[s->n++];
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->rec = rec;
    return true;
}

void xs_rows_fini(xs_rows *s)
{
    for (size_t i = 0; i < s->n; i++) {
        json_decref(s->v[i].rec);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
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
        snprintf(what, sizeof(what), "%s", ops->info->name);
        for (char *c = what; *c != '\0'; c++) {
            *c = *c == '_' ? ' ' : *c;
        }
        snprintf(why, XS_DOMAIN_WHY_MAX, "%s %.40s has no readable UpdatedDateUTC", what, id);
        return XS_EPARSE;
    }
    *rec = ops->read_xero(x, why);
    return *rec != NULL ? XS_OK : XS_EPARSE;
}

bool xs_match_pairs_add(xs_match_pairs *s, const char *xero_id, const char *local_id,
                        const char *key)
{
    xs_match_pair *v = grow(s->v, &s->cap, s->n, sizeof(*v));
    if (v == NULL) {
        return false;
    }
    s->v = v;
    xs_match_pair *p = &s->v[s->n++];
    snprintf(p->xero_id, sizeof(p->xero_id), "%s", xero_id != NULL ? xero_id : "");
    snprintf(p->local_id, sizeof(p->local_id), "%s", local_id != NULL ? local_id : "");
    snprintf(p->key, sizeof(p->key), "%s", key != NULL ? key : "");
    return true;
}

void xs_match_pairs_fini(xs_match_pairs *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

xs_local_row *xs_local_rows_add(xs_local_rows *s, const char *id, const char *org, json_t *rec,
                                int64_t at, int64_t edited)
{
    if (s->index == NULL && (s->index = json_object()) == NULL) {
        json_decref(rec);
        return NULL;
    }
    xs_local_row *rows = grow(s->rows, &s->cap, s->n, sizeof(*rows));
    if (rows == NULL) {
        json_decref(rec);
        return NULL;
    }
    s->rows = rows;
    if (json_object_set_new(s->index, id, json_integer((json_int_t)s->n)) != 0) {
        json_decref(rec);
        return NULL;
    }
    xs_local_row *row = &s->rows[s->n++];
    *row = (xs_local_row){.rec = rec, .at = at, .edited = edited};
    snprintf(row->id, sizeof(row->id), "%s", id);
    snprintf(row->org, sizeof(row->org), "%s", org != NULL ? org : "");
    return row;
}

xs_local_row *xs_local_rows_find(const xs_local_rows *s, const char *id)
{
    json_t *i = id != NULL ? json_object_get(s->index, id) : NULL;
    return i != NULL ? &s->rows[json_integer_value(i)] : NULL;
}

void xs_local_rows_fini(xs_local_rows *s)
{
    for (size_t i = 0; i < s->n; i++) {
        json_decref(s->rows[i].rec);
        json_decref(s->rows[i].check);
        json_decref(s->rows[i].touched);
    }
    free(s->rows);
    json_decref(s->index);
    memset(s, 0, sizeof(*s));
}

xs_err xs_domain_load_rows(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                           json_t *(*row_rec)(const xs_pg_res *r, int i), xs_local_rows *out)
{
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
    int last = xs_pg_res_ncols(r) - 1, edited = xs_pg_res_col(r, "edited_ms"),
        fields = xs_pg_res_col(r, "edited_fields");
    for (int i = 0; e == XS_OK && i < xs_pg_res_nrows(r); i++) {
        json_t *rec = row_rec(r, i);
        if (rec == NULL) {
            continue; /* a row the table's checks admitted always reads */
        }
        int64_t at = 0, ed = 0;
        xs_pg_res_int(r, i, last, &at);
        if (edited < 0 || xs_pg_res_int(r, i, edited, &ed) != XS_OK) {
            ed = at;
        }
        xs_local_row *row =
            xs_local_rows_add(out, xs_pg_res_get(r, i, 0), xs_pg_res_get(r, i, 1), rec, at, ed);
        if (row == NULL) {
            e = XS_ENOMEM;
            continue;
        }
        const char *tf = fields >= 0 ? xs_pg_res_get(r, i, fields) : NULL;
        if (tf != NULL) {
            /* Written by the database's trigger; anything but an object reads as none. */
            row->touched = xs_json_parse(tf, strlen(tf), NULL);
            if (!json_is_object(row->touched)) {
                json_decref(row->touched);
                row->touched = NULL;
            }
        }
    }
    xs_pg_res_free(r);
    return e;
}

xs_err xs_domain_load_checked(xs_pg *pg, const char *sql, const char *org, const json_t *ids,
                              json_t *(*row_rec)(const xs_pg_res *r, int i), const char *check_sql,
                              json_t *(*check)(const xs_pg_res *r, int i), xs_local_rows *out)
{
    xs_err e = xs_domain_load_rows(pg, sql, org, ids, row_rec, out);
    if (e != XS_OK || out->n == 0) {
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
        xs_local_row *row = xs_local_rows_find(out, xs_pg_res_get(r, i, 0));
        if (row != NULL) {
            json_decref(row->check);
            row->check = check(r, i);
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

/* sql_buf is SQL being built: text of n bytes in cap, or failed once out of memory. */
typedef struct sql_buf {
    char *s;
    size_t n, cap;
    bool failed;
} sql_buf;

/* sql_add appends the printf of fmt to b. */
static void sql_add(sql_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sql_add(sql_buf *b, const char *fmt, ...)
{
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        int k =
            vsnprintf(b->s != NULL ? b->s + b->n : NULL, b->s != NULL ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = true;
        } else if (b->s != NULL && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        } else {
            size_t cap = 2 * (b->n + (size_t)k + 256);
            char *s = realloc(b->s, cap);
            b->failed = s == NULL;
            b->s = s != NULL ? s : b->s;
            b->cap = s != NULL ? cap : b->cap;
        }
    }
}

/* sql_recordset appends t's record set r. */
static void sql_recordset(sql_buf *b, const xs_domain_table *t)
{
    sql_add(b, "jsonb_to_recordset($2::jsonb) AS r(id uuid");
    for (size_t i = 0; i < t->n; i++) {
        sql_add(b, ", %s %s", t->cols[i].field, t->cols[i].type);
    }
    sql_add(b, ")");
}

/* sql_value appends the value of column c: its SQL over the record set r, or, from_rec, read
 * from the canonical record r.rec. */
static void sql_value(sql_buf *b, const xs_domain_col *c, bool from_rec)
{
    if (!from_rec && c->value != NULL) {
        sql_add(b, "%s", c->value);
    } else if (!from_rec) {
        sql_add(b, "r.%s", c->field);
    } else if (strcmp(c->type, "jsonb") == 0) {
        sql_add(b, "r.rec->'%s'", c->field);
    } else if (strcmp(c->type, "text") == 0) {
        sql_add(b, "r.rec->>'%s'", c->field);
    } else {
        sql_add(b, "(r.rec->>'%s')::%s", c->field, c->type);
    }
}

/* sql_insert appends the INSERT of t's columns (from the record set, or from_rec from r.rec). */
static void sql_insert(sql_buf *b, const xs_domain_table *t, bool from_rec)
{
    sql_add(b, "INSERT INTO %s (id, organisation_id", t->name);
    for (size_t i = 0; i < t->n; i++) {
        if (t->cols[i].col != NULL) {
            sql_add(b, ", %s", t->cols[i].col);
        }
    }
    sql_add(b, ") SELECT r.id, $1");
    for (size_t i = 0; i < t->n; i++) {
        if (t->cols[i].col != NULL) {
            sql_add(b, ", ");
            sql_value(b, &t->cols[i], from_rec);
        }
    }
    sql_add(b, " FROM ");
    if (from_rec) {
        sql_add(b, "r");
        return;
    }
    sql_recordset(b, t);
    sql_add(b, " RETURNING id, %s", XS_DOMAIN_MS("updated_at"));
}

/* sql_update appends the UPDATE of t's columns from the record set. */
static void sql_update(sql_buf *b, const xs_domain_table *t)
{
    sql_add(b, "UPDATE %s %s SET ", t->name, t->alias);
    const char *sep = "";
    for (size_t i = 0; i < t->n; i++) {
        if (t->cols[i].col != NULL) {
            sql_add(b, "%s%s = ", sep, t->cols[i].col);
            sql_value(b, &t->cols[i], false);
            sep = ", ";
        }
    }
    sql_add(b, " FROM ");
    sql_recordset(b, t);
    sql_add(b,
            " WHERE %s.id = r.id AND %s.organisation_id = $1 RETURNING %s.id, " XS_DOMAIN_MS(
                "%s.updated_at"),
            t->alias, t->alias, t->alias, t->alias);
}

char *xs_domain_sql(const xs_domain_table *t, xs_domain_sql_kind kind)
{
    sql_buf b = {0};
    for (size_t i = 0; kind == XS_DOMAIN_SQL_INSERT_REC && i < t->n; i++) {
        if (t->cols[i].value != NULL) {
            return NULL;
        }
    }
    switch (kind) {
    case XS_DOMAIN_SQL_RECORDSET:
        sql_recordset(&b, t);
        break;
    case XS_DOMAIN_SQL_INSERT:
    case XS_DOMAIN_SQL_INSERT_REC:
        sql_insert(&b, t, kind == XS_DOMAIN_SQL_INSERT_REC);
        break;
    case XS_DOMAIN_SQL_UPDATE:
        sql_update(&b, t);
        break;
    }
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

xs_err xs_domain_write_local(xs_pg *pg, const xs_entity_ops *ops, const char *org,
                             const xs_rows *creates, const xs_rows *updates, json_t **at)
{
    json_t *res = json_object();
    *at = res;
    if (res == NULL) {
        return XS_ENOMEM;
    }
    const xs_rows *sets[] = {creates, updates};
    const xs_domain_sql_kind kinds[] = {XS_DOMAIN_SQL_INSERT, XS_DOMAIN_SQL_UPDATE};
    for (int s = 0; s < 2; s++) {
        if (sets[s]->n == 0) {
            continue;
        }
        char *text = xs_domain_rows_text(sets[s]), *sql = xs_domain_sql(ops->columns, kinds[s]);
        xs_pg_res *r = NULL;
        xs_err e = text != NULL && sql != NULL ? xs_pg_q(pg, &r, sql, org, text) : XS_ENOMEM;
        free(text);
        free(sql);
        if (e != XS_OK) {
            return e;
        }
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            int64_t ms = 0;
            xs_pg_res_int(r, i, 1, &ms);
            json_object_set_new(res, xs_pg_res_get(r, i, 0), json_integer(ms));
        }
        xs_pg_res_free(r);
    }
    return ops->write_more != NULL ? ops->write_more(pg, org, creates, updates) : XS_OK;
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

xs_err xs_domain_scan_position(xs_pg *pg, const char *table, const char *org, const char *after,
                               int64_t *done, int64_t *left)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FILTER (WHERE $2 = '' OR id <= $2::uuid), count(*) FILTER (WHERE "
             "$2 <> '' AND id > $2::uuid) FROM %s WHERE organisation_id = $1",
             table);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, sql, org, after);
    int64_t d = 0, l = 0;
    if (e == XS_OK && ((e = xs_pg_res_int(r, 0, 0, &d)) == XS_OK) &&
        (e = xs_pg_res_int(r, 0, 1, &l)) == XS_OK) {
        *done = d;
        *left = l;
    }
    xs_pg_res_free(r);
    return e;
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

/* columns_plain tells whether every column of t is its field's value (none has its own):
 * what a create from r.rec needs (XS_DOMAIN_SQL_INSERT_REC). */
static bool columns_plain(const xs_domain_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->cols[i].value != NULL) {
            return false;
        }
    }
    return true;
}

/* ops_check checks one entity's ops against its entry in the table; false with why. */
static bool ops_check(const xs_entity_ops *ops, char *why)
{
    const xs_entity_info *e = ops->info;
    const char *wrong = (ops->type_field != NULL) != e->typed ? "type_field and typed"
                        : (ops->retired_status != NULL) != e->immutable
                            ? "retired_status and immutable"
                        : (ops->match != NULL) != (e->match_keys != NULL) ? "match and match_keys"
                        : (ops->to_xero != NULL) != e->push               ? "to_xero and push"
                        : (ops->table != NULL) != e->push                 ? "table and push"
                        : ops->columns == NULL                            ? "columns"
                        : ops->create_linked && !columns_plain(ops->columns) ? "create_linked"
                                                                             : NULL;
    if (wrong != NULL) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "entity %s: its ops and its entry disagree on %s", e->name,
                 wrong);
    }
    return wrong == NULL;
}

xs_err xs_domain_entities_check(const char *domain, const xs_entity_ops *const *entities, char *why)
{
    size_t n = 0, mine = 0;
    const xs_entity_info *all = xs_entities(&n);
    for (size_t i = 0; i < n; i++) {
        mine += strcmp(all[i].domain, domain) == 0;
    }
    size_t k = 0;
    for (; entities[k] != NULL; k++) {
        const xs_entity_info *e = entities[k]->info;
        size_t at = 0;
        while (at < n && &all[at] != e) {
            at++;
        }
        if (at == n) {
            snprintf(why, XS_DOMAIN_WHY_MAX, "ops %zu of %s is not of the table of entities", k,
                     domain);
            return XS_EINVAL;
        }
        if (strcmp(e->domain, domain) != 0) {
            snprintf(why, XS_DOMAIN_WHY_MAX, "entity %s is served by %s, not %s", e->name,
                     e->domain, domain);
            return XS_EINVAL;
        }
        for (size_t j = 0; j < k; j++) {
            if (entities[j]->info == e) {
                snprintf(why, XS_DOMAIN_WHY_MAX, "entity %s has two ops", e->name);
                return XS_EINVAL;
            }
        }
        if (!ops_check(entities[k], why)) {
            return XS_EINVAL;
        }
    }
    if (k != mine) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "the table gives %s %zu entities, its ops %zu", domain,
                 mine, k);
        return XS_EINVAL;
    }
    return XS_OK;
}
