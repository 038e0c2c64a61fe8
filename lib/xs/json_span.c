/*
 * json_span.c: walking a JSON text without building it (xs_json_list_spans,
 * xs_json_member_string).
 *
 * A page of Xero records is a megabyte of JSON; a caller that needs only some of its records
 * whole finds the others' bytes here. It checks the structure it walks (strings, brackets,
 * commas and colons, depth), not the scalars. It owns only the span list it returns (the
 * caller frees it); it makes no jansson value and must not: what the caller uses, it parses
 * with xs_json_parse.
 */
#include "json_int.h"

/* walk_ws returns the offset of the first non-whitespace byte at or after i. */
static size_t walk_ws(const char *s, size_t n, size_t i)
{
    while (i < n && is_ws(s[i])) {
        i++;
    }
    return i;
}

/* walk_string returns the offset just past the string starting at s[i] ('"'), or 0 when it
 * does not end or holds a control character; *escaped tells whether it has a backslash. */
static size_t walk_string(const char *s, size_t n, size_t i, bool *escaped)
{
    *escaped = false;
    for (size_t j = i + 1; j < n; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"') {
            return j + 1;
        }
        if (c == '\\') {
            *escaped = true;
            j++; /* the escaped character, so \" does not end the string */
        } else if (c < 0x20) {
            return 0;
        }
    }
    return 0;
}

/* walk_value returns the offset just past the value starting at s[i], or 0 when it is
 * malformed as far as walked: containers are walked whole (strings skipped, brackets
 * paired), a scalar runs to the next delimiter. */
static size_t walk_value(const char *s, size_t n, size_t i)
{
    if (i >= n) {
        return 0;
    }
    char c = s[i];
    bool esc;
    if (c == '"') {
        return walk_string(s, n, i, &esc);
    }
    if (c != '[' && c != '{') {
        size_t j = i;
        while (j < n && !is_ws(s[j]) && s[j] != ',' && s[j] != ']' && s[j] != '}' && s[j] != ':' &&
               s[j] != '"' && s[j] != '[' && s[j] != '{') {
            j++;
        }
        return j > i ? j : 0;
    }
    char stack[MAX_DEPTH];
    size_t depth = 0;
    for (size_t j = i; j < n;) {
        c = s[j];
        if (c == '"') {
            j = walk_string(s, n, j, &esc);
            if (j == 0) {
                return 0;
            }
            continue;
        }
        if (c == '[' || c == '{') {
            if (depth == MAX_DEPTH) {
                return 0;
            }
            stack[depth++] = c == '[' ? ']' : '}';
        } else if (c == ']' || c == '}') {
            if (depth == 0 || stack[--depth] != c) {
                return 0;
            }
            if (depth == 0) {
                return j + 1;
            }
        } else if ((unsigned char)c < 0x20 && !is_ws(c)) {
            return 0;
        }
        j++;
    }
    return 0;
}

/* walk_members calls at(arg, key span, value offset) for each top-level member of the
 * object text[0..len) until it returns a non-zero offset (returned: the end of what it
 * took), or walks them all (returns 0 with *found false). *bad on a malformed text. */
typedef size_t (*member_fn)(void *arg, const char *s, size_t n, const char *k, size_t klen,
                            bool kesc, size_t v);

static size_t walk_members(const char *s, size_t n, member_fn at, void *arg, bool *bad)
{
    *bad = false;
    size_t i = walk_ws(s, n, 0);
    if (i >= n || s[i] != '{') {
        return 0;
    }
    i = walk_ws(s, n, i + 1);
    if (i < n && s[i] == '}') {
        return 0;
    }
    while (i < n) {
        bool kesc;
        size_t k = i;
        size_t e = s[i] == '"' ? walk_string(s, n, i, &kesc) : 0;
        if (e == 0) {
            break;
        }
        i = walk_ws(s, n, e);
        if (i >= n || s[i] != ':') {
            break;
        }
        i = walk_ws(s, n, i + 1);
        size_t took = at(arg, s, n, s + k + 1, e - k - 2, kesc, i);
        if (took != 0) {
            return took;
        }
        if ((e = walk_value(s, n, i)) == 0) {
            break;
        }
        i = walk_ws(s, n, e);
        if (i < n && s[i] == '}') {
            return 0;
        }
        if (i >= n || s[i] != ',') {
            break;
        }
        i = walk_ws(s, n, i + 1);
    }
    *bad = true;
    return 0;
}

typedef struct spans_arg {
    const char *key;
    size_t klen;
    xs_json_span *list, *items;
    size_t n, cap;
    xs_err err;
} spans_arg;

static size_t take_list(void *arg, const char *s, size_t n, const char *k, size_t klen, bool kesc,
                        size_t i)
{
    spans_arg *a = arg;
    if (kesc || klen != a->klen || memcmp(k, a->key, klen) != 0 || i >= n || s[i] != '[') {
        return 0;
    }
    size_t start = i;
    i = walk_ws(s, n, i + 1);
    if (i < n && s[i] == ']') {
        *a->list = (xs_json_span){start, i + 1 - start};
        a->err = XS_OK;
        return i + 1;
    }
    a->err = XS_EPARSE;
    while (i < n) {
        size_t e = walk_value(s, n, i);
        if (e == 0) {
            return n;
        }
        if (a->n == a->cap) {
            size_t cap = a->cap == 0 ? 64 : a->cap * 2;
            xs_json_span *grown = realloc(a->items, cap * sizeof(*grown));
            if (grown == NULL) {
                a->err = XS_ENOMEM;
                return n;
            }
            a->items = grown;
            a->cap = cap;
        }
        a->items[a->n++] = (xs_json_span){i, e - i};
        i = walk_ws(s, n, e);
        if (i < n && s[i] == ']') {
            *a->list = (xs_json_span){start, i + 1 - start};
            a->err = XS_OK;
            return i + 1;
        }
        if (i >= n || s[i] != ',') {
            return n;
        }
        i = walk_ws(s, n, i + 1);
    }
    return n;
}

xs_err xs_json_list_spans(const char *text, size_t len, const char *key, xs_json_span *list,
                          xs_json_span **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (text == NULL || key == NULL) {
        return XS_EINVAL;
    }
    spans_arg a = {.key = key, .klen = strlen(key), .list = list, .err = XS_ENOTFOUND};
    bool bad = false;
    walk_members(text, len, take_list, &a, &bad);
    if (a.err == XS_ENOTFOUND && bad) {
        a.err = XS_EPARSE;
    }
    if (a.err != XS_OK) {
        free(a.items);
        return a.err;
    }
    *items = a.items;
    *n = a.n;
    return XS_OK;
}

typedef struct string_arg {
    const char *key;
    size_t klen;
    const char *v;
    size_t vlen;
} string_arg;

static size_t take_string(void *arg, const char *s, size_t n, const char *k, size_t klen, bool kesc,
                          size_t i)
{
    string_arg *a = arg;
    if (kesc || klen != a->klen || memcmp(k, a->key, klen) != 0) {
        return 0;
    }
    bool esc = true;
    size_t e = i < n && s[i] == '"' ? walk_string(s, n, i, &esc) : 0;
    if (e != 0 && !esc) {
        a->v = s + i + 1;
        a->vlen = e - i - 2;
    }
    return n + 1; /* the member is found: stop, whatever it holds */
}

bool xs_json_member_string(const char *text, size_t len, const char *key, const char **v,
                           size_t *vlen)
{
    if (text == NULL || key == NULL) {
        return false;
    }
    string_arg a = {.key = key, .klen = strlen(key)};
    bool bad = false;
    walk_members(text, len, take_string, &a, &bad);
    if (a.v == NULL) {
        return false;
    }
    *v = a.v;
    *vlen = a.vlen;
    return true;
}
