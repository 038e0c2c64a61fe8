/*
 * json_dump.c: xs_json_dump and xs_json_dump_items, jansson values into JSON text.
 *
 * It walks the tree with jansson's public accessors and writes one growing buffer in a single
 * pass: exactly what json_dump_callback writes (separators, indentation, escapes, key order;
 * refusing cycles and strings that are not UTF-8), except that a string value (never a key)
 * holding a decimal's tag followed by a valid number is written as the bare number text,
 * byte for byte. Going through jansson's dump and then re-lexing its output to unwrap the
 * decimals took five to eight times as long (per-token callbacks, an snprintf for every
 * decimal's tag, the second pass). Reals, which our code never makes, are still formatted by
 * jansson. It owns the output buffer (handed to the caller) and the items it makes for
 * xs_json_dump_items (released as soon as written); it must not change the values it writes.
 */
#include <stdio.h>

#include "json_int.h"

/* short_escape returns the letter jansson escapes c with after a backslash ('"', '\\', b,
 * f, n, r, t), or 0 when c is written as \u00XX. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
    case '\\':
        return (char)c;
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

/* dump_string appends s[0..n) as a JSON string literal, escaped as jansson escapes: '"', '\'
 * and the short forms \b \f \n \r \t, other control characters (NUL included) as \u00XX
 * with upper-case hex, everything else (non-ASCII too) as is. False when s is not valid
 * UTF-8 or out of memory. */
static bool dump_string(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Invariant at the top of the loop: room for the rest of s copied plainly and the
     * closing quote. Only escapes grow the text, by at most 5 bytes each. */
    if (n > SIZE_MAX - 8 || !sb_reserve(b, n + 2)) {
        return false;
    }
    b->p[b->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = plain_run(s, i, n);
        memcpy(b->p + b->len, s + i, run - i);
        b->len += run - i;
        if (run == n) {
            break;
        }
        unsigned char c = (unsigned char)s[run];
        size_t k = xs__json_str_class[c];
        if (k == 1) {
            if (!sb_reserve(b, (n - run) + 1 + 5)) {
                return false;
            }
            char *w = b->p + b->len;
            w[0] = '\\';
            char e = short_escape(c);
            if (e != 0) {
                w[1] = e;
                b->len += 2;
            } else {
                memcpy(w + 1, "u00", 3);
                w[4] = hex[c >> 4];
                w[5] = hex[c & 0xF];
                b->len += 6;
            }
            i = run + 1;
        } else if (k <= 4 && k <= n - run && utf8_seq_ok((const unsigned char *)s + run, k)) {
            memcpy(b->p + b->len, s + run, k);
            b->len += k;
            i = run + k;
        } else {
            return false;
        }
    }
    b->p[b->len++] = '"';
    return true;
}

/* dump_integer appends v in decimal, as jansson's "%lld" would. */
static bool dump_integer(strbuf *b, json_int_t v)
{
    char buf[24];
    size_t w = sizeof(buf);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        buf[--w] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        buf[--w] = '-';
    }
    return sb_put(b, buf + w, sizeof(buf) - w);
}

/* dump_real appends a real as jansson writes it (our code never makes reals; jansson keeps
 * its own formatting rules for them). */
static bool dump_real(strbuf *b, const json_t *v)
{
    char buf[128];
    size_t n = json_dumpb(v, buf, sizeof(buf), JSON_ENCODE_ANY);
    return n > 0 && n <= sizeof(buf) && sb_put(b, buf, n);
}

/* What one dump writes: the output, the flags, and optionally an array whose items are made
 * while writing (xs_json_dump_items). */
typedef struct dumper {
    strbuf out;
    bool pretty;
    bool sort;
    const json_t *slot; /* written as n items made by item(); NULL: none */
    size_t n;
    xs_json_item_fn item;
    void *arg;
    bool slot_done; /* the slot is written once (a second occurrence is refused) */
} dumper;

/* An enclosing container, for the cycle check: a chain through the dumper's frames. */
typedef struct dump_parent {
    const json_t *v;
    const struct dump_parent *up;
} dump_parent;

/* One object member, for XS_JSON_SORT_KEYS. */
typedef struct dump_member {
    const char *key;
    size_t len;
    const json_t *value;
} dump_member;

/* member_cmp orders members by key bytes, a prefix first (jansson's order). */
static int member_cmp(const void *pa, const void *pb)
{
    const dump_member *a = pa, *b = pb;
    int r = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
    if (r != 0) {
        return r;
    }
    return a->len < b->len ? -1 : a->len > b->len;
}

/* dump_newline starts a new line indented to depth when pretty printing. */
static bool dump_newline(dumper *d, size_t depth)
{
    if (!d->pretty) {
        return true;
    }
    strbuf *b = &d->out;
    if (depth > (SIZE_MAX - 1) / 2 || !sb_reserve(b, 1 + 2 * depth)) {
        return false;
    }
    b->p[b->len++] = '\n';
    memset(b->p + b->len, ' ', 2 * depth);
    b->len += 2 * depth;
    return true;
}

static bool dump_value(dumper *d, const json_t *v, size_t depth, const dump_parent *up);

/* dump_member_at appends one member of an object at depth, after a comma unless it is the
 * first. */
static bool dump_member_at(dumper *d, const char *key, size_t len, const json_t *value, bool first,
                           size_t depth, const dump_parent *self)
{
    return (first || sb_put(&d->out, ",", 1)) && dump_newline(d, depth + 1) &&
           dump_string(&d->out, key, len) && sb_put(&d->out, ": ", d->pretty ? 2 : 1) &&
           dump_value(d, value, depth + 1, self);
}

/* dump_object appends an object: members in insertion order, or sorted by key. */
static bool dump_object(dumper *d, const json_t *v, size_t depth, const dump_parent *self)
{
    void *it = json_object_iter((json_t *)v);
    if (!sb_put(&d->out, "{", 1)) {
        return false;
    }
    if (it == NULL) {
        return sb_put(&d->out, "}", 1);
    }
    if (d->sort) {
        size_t n = json_object_size(v);
        dump_member *m = n <= SIZE_MAX / sizeof(*m) ? malloc(n * sizeof(*m)) : NULL;
        if (m == NULL) {
            return false;
        }
        size_t k = 0;
        for (; it != NULL && k < n; it = json_object_iter_next((json_t *)v, it), k++) {
            m[k] = (dump_member){json_object_iter_key(it), json_object_iter_key_len(it),
                                 json_object_iter_value(it)};
        }
        qsort(m, k, sizeof(*m), member_cmp);
        bool ok = true;
        for (size_t i = 0; ok && i < k; i++) {
            ok = dump_member_at(d, m[i].key, m[i].len, m[i].value, i == 0, depth, self);
        }
        free(m);
        return ok && dump_newline(d, depth) && sb_put(&d->out, "}", 1);
    }
    for (bool first = true; it != NULL; it = json_object_iter_next((json_t *)v, it)) {
        if (!dump_member_at(d, json_object_iter_key(it), json_object_iter_key_len(it),
                            json_object_iter_value(it), first, depth, self)) {
            return false;
        }
        first = false;
    }
    return dump_newline(d, depth) && sb_put(&d->out, "}", 1);
}

/* dump_item makes item i of the slot, writes it and releases it. */
static bool dump_item(dumper *d, size_t i, size_t depth, const dump_parent *self)
{
    json_t *e = d->item(i, d->arg);
    if (e == NULL) {
        return false;
    }
    bool ok = dump_value(d, e, depth, self);
    json_decref(e);
    return ok;
}

/* dump_array appends an array; the slot gets its made items instead of its own. */
static bool dump_array(dumper *d, const json_t *v, size_t depth, const dump_parent *self)
{
    bool slot = v == d->slot;
    if (slot) {
        if (d->slot_done || json_array_size(v) != 0) {
            return false;
        }
        d->slot_done = true;
    }
    size_t n = slot ? d->n : json_array_size(v);
    if (!sb_put(&d->out, "[", 1)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && !sb_put(&d->out, ",", 1)) || !dump_newline(d, depth + 1) ||
            !(slot ? dump_item(d, i, depth + 1, self)
                   : dump_value(d, json_array_get(v, i), depth + 1, self))) {
            return false;
        }
    }
    return (n == 0 || dump_newline(d, depth)) && sb_put(&d->out, "]", 1);
}

/* dump_value appends v at nesting depth; up is the chain of containers it is inside.
 * False on a cycle, a string that is not UTF-8, a failed item, or out of memory. */
static bool dump_value(dumper *d, const json_t *v, size_t depth, const dump_parent *up)
{
    strbuf *b = &d->out;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        for (const dump_parent *p = up; p != NULL; p = p->up) {
            if (p->v == v) {
                return false; /* a cycle, which jansson refuses too */
            }
        }
        dump_parent self = {v, up};
        return json_is_object(v) ? dump_object(d, v, depth, &self) : dump_array(d, v, depth, &self);
    }
    case JSON_STRING: {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (dec_tagged(s, n)) {
            return sb_put(b, s + DEC_TAG_LEN, n - DEC_TAG_LEN);
        }
        return dump_string(b, s, n);
    }
    case JSON_INTEGER:
        return dump_integer(b, json_integer_value(v));
    case JSON_REAL:
        return dump_real(b, v);
    case JSON_TRUE:
        return sb_put(b, "true", 4);
    case JSON_FALSE:
        return sb_put(b, "false", 5);
    case JSON_NULL:
        return sb_put(b, "null", 4);
    }
    return false;
}

/* dump_run writes v with d's flags and slot into a new NUL-terminated string. */
static char *dump_run(dumper *d, const json_t *v)
{
    if (!dump_value(d, v, 0, NULL) || !sb_put(&d->out, "", 1)) {
        free(d->out.p);
        return NULL;
    }
    return d->out.p;
}

char *xs_json_dump(const json_t *v, int flags)
{
    if (v == NULL) {
        return NULL;
    }
    dumper d = {.pretty = (flags & XS_JSON_PRETTY) != 0, .sort = (flags & XS_JSON_SORT_KEYS) != 0};
    return dump_run(&d, v);
}

char *xs_json_dump_items(const json_t *v, int flags, const json_t *slot, size_t n,
                         xs_json_item_fn item, void *arg)
{
    if (v == NULL || !json_is_array(slot) || (n > 0 && item == NULL)) {
        return NULL;
    }
    dumper d = {.pretty = (flags & XS_JSON_PRETTY) != 0,
                .sort = (flags & XS_JSON_SORT_KEYS) != 0,
                .slot = slot,
                .n = n,
                .item = item,
                .arg = arg};
    char *out = dump_run(&d, v);
    if (out != NULL && !d.slot_done) {
        free(out); /* slot is not inside v */
        return NULL;
    }
    return out;
}
