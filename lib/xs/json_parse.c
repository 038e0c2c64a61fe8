/*
 * json_parse.c: xs_json_parse and xs_json_parse_full, text into jansson values with exact
 * decimals (see json.h).
 *
 * xs_json_parse takes a fast path first (fast_parse: one pass straight into jansson values,
 * for the text as it usually is) and, when that gives up, the full way: the lexer pass of
 * json_lex.c, then jansson's json_loadb on the rewritten text, with jansson's error mapped
 * back to the input. The two give exactly the same results and errors (json_test compares
 * them). It owns the fast path's state and the error text; it must not accept anything the
 * full way refuses, nor make a number any other way than the full way does.
 */
#include <stdio.h>

#include "json_int.h"

/* The fast path of xs_json_parse: one pass from the text straight to jansson values, for
 * the text as it usually is (a pull's thousand records a page went through jansson's
 * character-at-a-time lexer, two fifths of a contacts pull's CPU). It takes what it can
 * be sure of and gives up (NULL) on anything else: a \u escape, a control character, a
 * malformed or misplaced token, a duplicate key, nesting deeper than MAX_DEPTH, an
 * allocation that fails. xs_json_parse then parses the text the full way, so every result
 * and every error is exactly the full way's; json_test compares the two on corpora and on
 * mutated inputs. Numbers are what the full way makes: an integer that fits int64 a jansson
 * integer, any other a decimal. */
typedef struct fast {
    const char *s;
    size_t n, i;
    strbuf tmp; /* the unescaped text of a string with escapes */
} fast;

static inline void fast_ws(fast *f)
{
    while (f->i < f->n && is_ws(f->s[f->i])) {
        f->i++;
    }
}

/* fast_string reads the string whose quote is at f->i: its bytes at *out (in the input, or
 * in f->tmp when it had escapes), *len of them; f->i goes past the closing quote. */
static bool fast_string(fast *f, const char **out, size_t *len)
{
    const char *s = f->s;
    size_t n = f->n, i = f->i + 1, seg = i;
    bool esc = false;
    for (;;) {
        i = plain_run(s, i, n);
        if (i >= n) {
            return false;
        }
        unsigned char c = (unsigned char)s[i];
        unsigned char k = xs__json_str_class[c];
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            if (i + 1 >= n) {
                return false;
            }
            char e;
            switch (s[i + 1]) {
            case '"':
            case '\\':
            case '/':
                e = s[i + 1];
                break;
            case 'b':
                e = '\b';
                break;
            case 'f':
                e = '\f';
                break;
            case 'n':
                e = '\n';
                break;
            case 'r':
                e = '\r';
                break;
            case 't':
                e = '\t';
                break;
            default:
                return false; /* \u and anything else: the full way */
            }
            if (!esc) {
                f->tmp.len = 0;
                esc = true;
            }
            if (!sb_put(&f->tmp, s + seg, i - seg) || !sb_put(&f->tmp, &e, 1)) {
                return false;
            }
            i += 2;
            seg = i;
            continue;
        }
        if (k < 2 || k > 4 || i + k > n || !utf8_seq_ok((const unsigned char *)s + i, k)) {
            return false; /* a control character, or not UTF-8 */
        }
        i += k;
    }
    if (esc) {
        if (!sb_put(&f->tmp, s + seg, i - seg)) {
            return false;
        }
        *out = f->tmp.p;
        *len = f->tmp.len;
    } else {
        *out = s + f->i + 1;
        *len = i - (f->i + 1);
    }
    f->i = i + 1;
    return true;
}

/* fast_ends tells whether a literal or number may end at f->i: a delimiter or the end. */
static inline bool fast_ends(const fast *f)
{
    if (f->i >= f->n) {
        return true;
    }
    char c = f->s[f->i];
    return is_ws(c) || c == ',' || c == ']' || c == '}';
}

static json_t *fast_value(fast *f, size_t depth);

/* fast_next reads what follows a member or element: 1 after a ',' (another follows), 0
 * after close (the container ends), -1 for anything else. */
static int fast_next(fast *f, char close)
{
    fast_ws(f);
    if (f->i < f->n && (f->s[f->i] == ',' || f->s[f->i] == close)) {
        return f->s[f->i++] == ',' ? 1 : 0;
    }
    return -1;
}

/* fast_empty steps past the opening bracket at f->i and tells whether close follows at
 * once (an empty container, read to its end). */
static bool fast_empty(fast *f, char close)
{
    f->i++;
    fast_ws(f);
    if (f->i < f->n && f->s[f->i] == close) {
        f->i++;
        return true;
    }
    return false;
}

/* fast_member reads one "key": value into o. */
static bool fast_member(fast *f, json_t *o, size_t depth)
{
    const char *k;
    size_t klen;
    fast_ws(f);
    if (f->i >= f->n || f->s[f->i] != '"' || !fast_string(f, &k, &klen)) {
        return false;
    }
    /* The key, kept while the value is read (which may reuse tmp). */
    char small[128];
    char *key = klen < sizeof(small) ? small : malloc(klen + 1);
    if (key == NULL) {
        return false;
    }
    memcpy(key, k, klen);
    key[klen] = '\0';
    json_t *v = NULL;
    fast_ws(f);
    if (json_object_getn(o, key, klen) == NULL && f->i < f->n && f->s[f->i] == ':') {
        f->i++;
        v = fast_value(f, depth);
    }
    bool set = v != NULL && json_object_setn_new_nocheck(o, key, klen, v) == 0;
    if (key != small) {
        free(key);
    }
    return set;
}

static json_t *fast_object(fast *f, size_t depth)
{
    json_t *o = json_object();
    if (o == NULL || fast_empty(f, '}')) {
        return o;
    }
    int next;
    do {
        next = fast_member(f, o, depth) ? fast_next(f, '}') : -1;
    } while (next == 1);
    if (next < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *fast_array(fast *f, size_t depth)
{
    json_t *a = json_array();
    if (a == NULL || fast_empty(f, ']')) {
        return a;
    }
    int next;
    do {
        json_t *v = fast_value(f, depth);
        next = v != NULL && json_array_append_new(a, v) == 0 ? fast_next(f, ']') : -1;
    } while (next == 1);
    if (next < 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *fast_literal(fast *f, const char *word, size_t n, json_t *v)
{
    if (f->n - f->i < n || memcmp(f->s + f->i, word, n) != 0) {
        return NULL;
    }
    f->i += n;
    return fast_ends(f) ? v : NULL;
}

static json_t *fast_number(fast *f)
{
    bool is_int = false;
    const char *s = f->s + f->i;
    size_t k = number_scan(s, f->n - f->i, &is_int);
    if (k == 0) {
        return NULL;
    }
    f->i += k;
    if (!fast_ends(f)) {
        return NULL;
    }
    if (!is_int || !int_fits(s, k)) {
        return xs__json_decimal_new(s, k);
    }
    bool neg = s[0] == '-';
    uint64_t v = 0;
    for (size_t i = neg ? 1 : 0; i < k; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    /* In range (int_fits): -2^63 is -(2^63), written without overflow. */
    json_int_t x = neg ? (json_int_t)(0 - v) : (json_int_t)v;
    return json_integer(x);
}

static json_t *fast_value(fast *f, size_t depth)
{
    fast_ws(f);
    if (f->i >= f->n) {
        return NULL;
    }
    char c = f->s[f->i];
    switch (c) {
    case '{':
        return depth < MAX_DEPTH ? fast_object(f, depth + 1) : NULL;
    case '[':
        return depth < MAX_DEPTH ? fast_array(f, depth + 1) : NULL;
    case '"': {
        const char *p;
        size_t len;
        return fast_string(f, &p, &len) ? json_stringn_nocheck(p, len) : NULL;
    }
    case 't':
        return fast_literal(f, "true", 4, json_true());
    case 'f':
        return fast_literal(f, "false", 5, json_false());
    case 'n':
        return fast_literal(f, "null", 4, json_null());
    default:
        return c == '-' || is_digit(c) ? fast_number(f) : NULL;
    }
}

static json_t *fast_parse(const char *text, size_t len)
{
    fast f = {.s = text, .n = len};
    json_t *v = fast_value(&f, 0);
    fast_ws(&f);
    if (v != NULL && f.i != f.n) {
        json_decref(v);
        v = NULL;
    }
    free(f.tmp.p);
    return v;
}

/* clean_jansson_text copies jansson's message into out (outlen bytes) without our tag (a
 * rewritten decimal quoted as '"\u0000dec:1.5"' reads '1.5') and with control characters
 * replaced, so the message stays one line. */
static void clean_jansson_text(const char *text, char *out, size_t outlen)
{
    static const char tagged[] = "\"" DEC_TAG_JSON;
    size_t w = 0;
    size_t i = 0;
    size_t n = strnlen(text, JSON_ERROR_TEXT_LENGTH);
    bool drop_quote = false;
    while (i < n && w + 1 < outlen) {
        if (strncmp(text + i, tagged, sizeof(tagged) - 1) == 0) {
            i += sizeof(tagged) - 1;
            drop_quote = true;
            continue;
        }
        char c = text[i++];
        if (drop_quote && c == '"') {
            drop_quote = false;
            continue;
        }
        out[w++] = (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
    }
    out[w] = '\0';
}

/* parse_error writes "byte <pos>: <reason>" into err (XS_JSON_ERR_MAX bytes, when not NULL),
 * cutting the reason if it does not fit. */
static void parse_error(char *err, size_t pos, const char *reason)
{
    if (err == NULL) {
        return;
    }
    int n = snprintf(err, XS_JSON_ERR_MAX, "byte %zu: ", pos);
    if (n < 0 || n >= XS_JSON_ERR_MAX) {
        return;
    }
    size_t room = XS_JSON_ERR_MAX - (size_t)n - 1;
    size_t len = strnlen(reason, room);
    memcpy(err + n, reason, len);
    err[(size_t)n + len] = '\0';
}

json_t *xs_json_parse(const char *text, size_t len, char *err)
{
    if (text != NULL) {
        json_t *v = fast_parse(text, len);
        if (v != NULL) {
            if (err != NULL) {
                err[0] = '\0';
            }
            return v;
        }
    }
    return xs_json_parse_full(text, len, err);
}

json_t *xs_json_parse_full(const char *text, size_t len, char *err)
{
    if (err != NULL) {
        err[0] = '\0';
    }
    if (text == NULL) {
        parse_error(err, 0, "no input");
        return NULL;
    }
    scan sc = {.in = text, .len = len};
    json_t *v = NULL;
    xs_err e = xs__json_scan_text(&sc);
    if (e == XS_EPARSE) {
        parse_error(err, sc.errpos, sc.reason);
        goto done;
    }
    if (e != XS_OK) {
        parse_error(err, 0, "out of memory");
        goto done;
    }
    json_error_t jerr;
    const char *buf = sc.nrw > 0 ? sc.out.p : text;
    size_t blen = sc.nrw > 0 ? sc.out.len : len;
    v = json_loadb(buf, blen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL && err != NULL) {
        char reason[JSON_ERROR_TEXT_LENGTH];
        clean_jansson_text(jerr.text, reason, sizeof(reason));
        size_t pos = xs__json_scan_map(&sc, jerr.position < 0 ? 0 : (size_t)jerr.position);
        parse_error(err, pos, reason);
    }
done:
    free(sc.out.p);
    free(sc.rw);
    return v;
}
