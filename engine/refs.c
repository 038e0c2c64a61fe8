/* refs.c: see refs.h. */
#include "engine/refs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "xs/uuid.h"

#include "engine/kit.h"

/* is_str tells whether w is the string s. */
static bool is_str(const json_t *w, const char *s)
{
    const char *t = xs_json_string_value(w, NULL);
    return t != NULL && strcmp(t, s) == 0;
}

xs_err refs_translate(xs_pg *pg, const char *conn, const xs_entity_ops *ops, json_t **recs,
                      size_t n, bool to_local, bool *blocked, json_t *on)
{
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        json_t *ids = json_array(), *seen = json_object();
        for (size_t i = 0; i < n; i++) {
            const char *v = xs_json_string_value(json_object_get(recs[i], ref->field), NULL);
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
            const char *s = xs_json_string_value(v, NULL);
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
                    have = have || is_str(w, s);
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

void refs_blocked_message(const xs_entity_ops *ops, const json_t *rec, const json_t *on,
                          bool pulling, char *buf, size_t cap)
{
    for (const xs_entity_ref *ref = ops->refs; ref != NULL && ref->field != NULL; ref++) {
        const char *v = xs_json_string_value(json_object_get(rec, ref->field), NULL);
        size_t k;
        json_t *w;
        json_array_foreach(json_object_get(on, ref->entity), k, w)
        {
            if (v != NULL && is_str(w, v)) {
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

bool idlist_add(idlist *l, const char *id)
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

bool blocked_take(blocked_ids *b, const xs_entity_ops *ops, const json_t *on)
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
            if (!idlist_add(&b->on[slot], xs_json_string_value(v, NULL))) {
                return false;
            }
        }
    }
    return true;
}

json_t *blocked_json(const blocked_ids *b)
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

void blocked_fini(blocked_ids *b)
{
    free(b->self.v);
    for (size_t i = 0; i < BLOCKED_REFS; i++) {
        free(b->on[i].v);
    }
}
