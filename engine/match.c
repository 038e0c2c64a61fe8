/* match.c: see match.h. */
#include "engine/match.h"

#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

/* An edge: a candidate pair, Xero record x and local row l by the key of rank. */
typedef struct edge {
    int x, l, rank;
} edge;

/* key_rank is key's place in keys, 1000 when it is not one of them. */
static int key_rank(const json_t *keys, const char *key)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *s = xs_json_string_value(k, NULL);
        if (s != NULL && strcmp(s, key) == 0) {
            return (int)i;
        }
    }
    return 1000;
}

/* augment finds Xero record x a local row, moving others along an augmenting path. */
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

json_t *match_assign(const xs_match_pairs *cands, const json_t *keys)
{
    json_t *xs = json_object(), *ls = json_object(), *xnames = json_array(), *lnames = json_array(),
           *out = json_object();
    size_t n = cands->n;
    edge *edges = calloc(n + 1, sizeof(edge));
    int *first = NULL, *count = NULL, *owner = NULL;
    char *seen = NULL;
    if (xs == NULL || ls == NULL || xnames == NULL || lnames == NULL || out == NULL ||
        edges == NULL) {
        goto fail;
    }
    size_t i;
    for (i = 0; i < n; i++) {
        const xs_match_pair *c = &cands->v[i];
        const char *x = c->xero_id, *l = c->local_id;
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
                          key_rank(keys, c->key)};
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
                key = xs_json_string_value(json_array_get(keys, (size_t)edges[e].rank), NULL);
                break;
            }
        }
        json_object_set_new(out, xs_json_string_value(json_array_get(xnames, (size_t)x), NULL),
                            json_pack("{s:s, s:s}", "local_id",
                                      xs_json_string_value(json_array_get(lnames, l), NULL), "key",
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
