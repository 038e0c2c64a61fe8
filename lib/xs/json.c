/*
 * json.c: JSON through jansson, with exact decimal numbers (see json.h).
 *
 * Parsing takes a fast path first (fast_parse, below: one pass into jansson values, for the
 * text as it usually is), and when that gives up, the full way, in two passes. scan_text walks the
 * raw input with a small JSON lexer: it tracks strings and their escapes (so digits inside strings
 * are never touched), refuses "\u0000" escapes and raw NUL bytes, refuses nesting deeper than
 * MAX_DEPTH, checks every number literal against the JSON grammar, and rewrites each number that
 * jansson would turn into a double (a fraction or an exponent) or could not hold (an integer
 * outside int64) into a JSON string "\u0000dec:<literal>". jansson then parses the rewritten text;
 * JSON_ALLOW_NUL is safe there because the only NULs left are our own tags. Error positions from
 * jansson are mapped back to the original input through the list of rewrites.
 *
 * Dumping walks the tree with jansson's public accessors and writes one growing buffer in
 * a single pass: exactly what json_dump_callback writes (separators, indentation, escapes,
 * key order; refusing cycles and strings that are not UTF-8), except that a string value
 * (never a key) holding a tag followed by a valid number is written as the bare number
 * text, byte for byte. Going through jansson's dump and then re-lexing its output to unwrap
 * the decimals took five to eight times as long (per-token callbacks, an snprintf for every
 * decimal's tag, the second pass). Reals, which our code never makes, are still formatted by
 * jansson.
 */
#include "xs/json.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A decimal is a jansson string: DEC_TAG, then the number's JSON text. */
#define DEC_TAG     "\0dec:"
#define DEC_TAG_LEN 5
/* DEC_TAG as written inside a JSON string literal (jansson's escape for NUL). */
#define DEC_TAG_JSON     "\\u0000dec:"
#define DEC_TAG_JSON_LEN 10

#define MAX_DEPTH 64

/* Exponents beyond this magnitude are not normalised (see canon_parse). */
#define EXP_LIMIT INT64_C(100000000000000000)

/* Room for canon_plain's text: sign, 20 integer digits, point, 6 fractional digits, NUL. */
#define PLAIN_MAX 32

/* A growable byte buffer; `p` is malloc'ed. */
typedef struct strbuf {
    char *p;
    size_t len;
    size_t cap;
} strbuf;

/* sb_grow is sb_reserve's slow path: it reallocates. */
static bool sb_grow(strbuf *b, size_t more)
{
    if (more > SIZE_MAX / 2 - b->len) {
        return false;
    }
    size_t cap = b->cap == 0 ? 64 : b->cap;
    while (cap - b->len < more) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* sb_reserve makes room for `more` bytes after len; false when out of memory. Inline: the
 * dumper calls it for every token. */
static inline bool sb_reserve(strbuf *b, size_t more)
{
    return more <= b->cap - b->len || sb_grow(b, more);
}

/* sb_put appends n bytes of s; false when out of memory. Inline, so that the dumper's
 * constant tokens become plain stores. */
static inline bool sb_put(strbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) {
        return false;
    }
    if (n > 0) {
        memcpy(b->p + b->len, s, n);
    }
    b->len += n;
    return true;
}

/* is_digit tells whether c is an ASCII decimal digit. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* is_ws tells whether c is JSON whitespace. */
static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* is_number_char tells whether c can continue a number literal; a number followed directly
 * by one of these is malformed ("01", "1.2.3", "1e5e"). */
static bool is_number_char(char c)
{
    return is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

/* number_scan returns the length of the JSON number at the start of s[0..n) (RFC 8259:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 when s does not start with one.
 * *is_int tells whether it has neither fraction nor exponent. */
static size_t number_scan(const char *s, size_t n, bool *is_int)
{
    size_t i = 0;
    bool integer = true;
    if (i < n && s[i] == '-') {
        i++;
    }
    if (i >= n) {
        return 0;
    }
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i])) {
            i++;
        }
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) {
            return 0;
        }
        while (i < n && is_digit(s[i])) {
            i++;
        }
        integer = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (i >= n || !is_digit(s[i])) {
            return 0;
        }
        while (i < n && is_digit(s[i])) {
            i++;
        }
        integer = false;
    }
    *is_int = integer;
    return i;
}

/* number_valid tells whether s[0..n) is exactly one JSON number. */
static bool number_valid(const char *s, size_t n)
{
    bool is_int;
    return n > 0 && number_scan(s, n, &is_int) == n;
}

/* int_fits tells whether the integer literal s[0..n) (valid JSON grammar) fits int64. */
static bool int_fits(const char *s, size_t n)
{
    bool neg = s[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    for (size_t i = neg ? 1 : 0; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    return true;
}

/* One number literal rewritten into a tagged string: where it was and where it went. */
typedef struct rewrite {
    size_t orig;     /* offset in the input */
    size_t orig_len; /* length of the literal */
    size_t at;       /* offset of the string token in the rewritten text */
    size_t at_len;   /* length of the string token */
} rewrite;

/* State of the lexer pass over one input. */
typedef struct scan {
    const char *in;
    size_t len;
    strbuf out;    /* rewritten text; used only once something is rewritten */
    size_t copied; /* input bytes [0, copied) are already in out */
    rewrite *rw;   /* rewrites in input order */
    size_t nrw;
    size_t caprw;
    size_t errpos;   /* on XS_EPARSE: byte offset in the input */
    char reason[96]; /* on XS_EPARSE: what is wrong */
} scan;

/* scan_fail records a lexer error at input offset pos and returns XS_EPARSE. */
static xs_err scan_fail(scan *sc, size_t pos, const char *reason)
{
    sc->errpos = pos;
    snprintf(sc->reason, sizeof(sc->reason), "%s", reason);
    return XS_EPARSE;
}

/* scan_bad_number records an invalid number literal starting at pos, quoting up to 16 of
 * its characters. */
static xs_err scan_bad_number(scan *sc, size_t pos)
{
    size_t n = 0;
    while (pos + n < sc->len && n < 16 && (n == 0 || is_number_char(sc->in[pos + n]))) {
        n++;
    }
    sc->errpos = pos;
    snprintf(sc->reason, sizeof(sc->reason), "invalid number near '%.*s'", (int)n, sc->in + pos);
    return XS_EPARSE;
}

/* scan_rewrite replaces the number literal at in[pos, pos+n) by a tagged string in the
 * rewritten text and records the shift; XS_ENOMEM when out of memory. */
static xs_err scan_rewrite(scan *sc, size_t pos, size_t n)
{
    if (sc->nrw == sc->caprw) {
        size_t cap = sc->caprw == 0 ? 16 : sc->caprw * 2;
        if (cap > SIZE_MAX / sizeof(rewrite)) {
            return XS_ENOMEM;
        }
        rewrite *rw = realloc(sc->rw, cap * sizeof(rewrite));
        if (rw == NULL) {
            return XS_ENOMEM;
        }
        sc->rw = rw;
        sc->caprw = cap;
    }
    if (!sb_put(&sc->out, sc->in + sc->copied, pos - sc->copied)) {
        return XS_ENOMEM;
    }
    size_t at = sc->out.len;
    if (!sb_put(&sc->out, "\"" DEC_TAG_JSON, 1 + DEC_TAG_JSON_LEN) ||
        !sb_put(&sc->out, sc->in + pos, n) || !sb_put(&sc->out, "\"", 1)) {
        return XS_ENOMEM;
    }
    sc->rw[sc->nrw++] = (rewrite){pos, n, at, sc->out.len - at};
    sc->copied = pos + n;
    return XS_OK;
}

/* scan_text is the lexer pass described at the top of this file. It returns XS_OK (with
 * sc->out holding the rewritten text when sc->nrw > 0), XS_EPARSE (sc->errpos and
 * sc->reason set) or XS_ENOMEM. Structural errors it does not look for are left to
 * jansson. */
static xs_err scan_text(scan *sc)
{
    const char *s = sc->in;
    size_t n = sc->len;
    char stack[MAX_DEPTH];
    size_t depth = 0;
    char prev = 0; /* last significant character outside strings; '"' after a string */
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"') {
                if (s[j] == '\\') {
                    if (j + 6 <= n && s[j + 1] == 'u' && memcmp(s + j + 2, "0000", 4) == 0) {
                        return scan_fail(sc, j, "\\u0000 in a string is not allowed");
                    }
                    j += 2; /* the escaped character, so \" does not end the string */
                } else if (s[j] == '\0') {
                    return scan_fail(sc, j, "NUL byte in input");
                } else {
                    j++;
                }
            }
            /* An unterminated string is left for jansson to report. */
            i = j < n ? j + 1 : n;
            prev = '"';
            continue;
        }
        if (c == '-' || is_digit(c) || c == '+' || c == '.') {
            bool is_int = false;
            size_t k = number_scan(s + i, n - i, &is_int);
            if (k == 0 || (i + k < n && is_number_char(s[i + k]))) {
                return scan_bad_number(sc, i);
            }
            /* After the rewrite a number in key position would be a valid string key. */
            if (depth > 0 && stack[depth - 1] == '{' && (prev == '{' || prev == ',')) {
                return scan_fail(sc, i, "object key must be a string");
            }
            if (!is_int || !int_fits(s + i, k)) {
                xs_err e = scan_rewrite(sc, i, k);
                if (e != XS_OK) {
                    return e;
                }
            }
            prev = '0';
            i += k;
            continue;
        }
        if (c == '[' || c == '{') {
            if (depth == MAX_DEPTH) {
                return scan_fail(sc, i, "nesting deeper than 64");
            }
            stack[depth++] = c;
        } else if (c == ']' || c == '}') {
            if (depth > 0) {
                depth--;
            }
        } else if (c == '\0') {
            return scan_fail(sc, i, "NUL byte in input");
        }
        if (!is_ws(c)) {
            prev = c;
        }
        i++;
    }
    if (sc->nrw > 0 && !sb_put(&sc->out, s + sc->copied, n - sc->copied)) {
        return XS_ENOMEM;
    }
    return XS_OK;
}

/* map_pos maps an offset p in the rewritten text back to the original input. An offset
 * inside a rewritten token maps into (or to the end of) the original literal. */
static size_t map_pos(const scan *sc, size_t p)
{
    size_t lo = 0, hi = sc->nrw;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sc->rw[mid].at <= p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return p;
    }
    const rewrite *r = &sc->rw[lo - 1];
    if (p >= r->at + r->at_len) {
        return r->orig + r->orig_len + (p - (r->at + r->at_len));
    }
    size_t inner = p - r->at;
    size_t prefix = 1 + DEC_TAG_JSON_LEN;
    inner = inner > prefix ? inner - prefix : 0;
    return r->orig + (inner > r->orig_len ? r->orig_len : inner);
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

static json_t *fast_parse(const char *text, size_t len);

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
    xs_err e = scan_text(&sc);
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
        size_t pos = map_pos(&sc, jerr.position < 0 ? 0 : (size_t)jerr.position);
        parse_error(err, pos, reason);
    }
done:
    free(sc.out.p);
    free(sc.rw);
    return v;
}

/* How dump_string treats each byte: 0 copied as is, 1 escaped, 2-4 the first byte of a UTF-8
 * sequence of that length (checked), 5 never valid in UTF-8 (a continuation byte out of
 * place, C0/C1, F5-FF). Rows are 16 bytes: 0x00-0x1F controls, '"' (0x22), '\' (0x5C). */
static const unsigned char str_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0x80 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0x90 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0xA0 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0xB0 */
    5, 5, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xC0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0xD0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* 0xE0 */
    4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0xF0 */
};

/* utf8_seq_ok tells whether the k bytes at s (k = str_class of s[0], 2 to 4, and all k
 * bytes present) are one well-formed UTF-8 sequence: continuation bytes, no overlong form,
 * no surrogate, at most U+10FFFF. The same rules as jansson's, which refuses to dump
 * anything else. */
static bool utf8_seq_ok(const unsigned char *s, size_t k)
{
    static const uint32_t lead_mask[5] = {0, 0, 0x1F, 0x0F, 0x07};
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    uint32_t cp = s[0] & lead_mask[k];
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return false;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    return cp >= least[k] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

/* word_plain tells whether the 8 bytes at p are all copied as is (str_class 0): a byte
 * below 0x20, '"', '\\' or above 0x7F sets its high bit in the test, which never fires
 * when no byte does (a borrow starts only at such a byte). */
static inline bool word_plain(const char *p)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    uint64_t w;
    memcpy(&w, p, 8);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t t = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | w;
    return (t & (ones * 0x80)) == 0;
}

/* plain_run returns the end of the run of bytes copied as is that starts at s[i], s being n
 * bytes long: eight at a time, and the last few as the (overlapping) final eight. */
static size_t plain_run(const char *s, size_t i, size_t n)
{
    while (n - i >= 8 && word_plain(s + i)) {
        i += 8;
    }
    if (n - i < 8 && n >= 8 && word_plain(s + n - 8)) {
        return n;
    }
    while (i < n && str_class[(unsigned char)s[i]] == 0) {
        i++;
    }
    return i;
}

/* The fast path of xs_json_parse: one pass from the text straight to jansson values, for
 * the text as it usually is (a pull's thousand records a page went through jansson's
 * character-at-a-time lexer, two fifths of a contacts pull's CPU). It takes what it can
 * be sure of and gives up (NULL) on anything else: a \u escape, a control character, a
 * malformed or misplaced token, a duplicate key, nesting deeper than MAX_DEPTH, an
 * allocation that fails. xs_json_parse then parses the text the full way, so every result
 * and every error is exactly the full way's; json_test compares the two on corpora and on
 * mutated inputs. Numbers are what the full way makes: an integer that fits int64 a jansson
 * integer, any other a decimal. */
static json_t *decimal_new(const char *text, size_t n);

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
        unsigned char k = str_class[c];
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
        return decimal_new(s, k);
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
        size_t k = str_class[c];
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
        if (n > DEC_TAG_LEN && s[0] == '\0' && memcmp(s, DEC_TAG, DEC_TAG_LEN) == 0 &&
            number_valid(s + DEC_TAG_LEN, n - DEC_TAG_LEN)) {
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

/* decimal_new makes a decimal from n bytes of number text, assumed valid. */
static json_t *decimal_new(const char *text, size_t n)
{
    if (n > SIZE_MAX - DEC_TAG_LEN) {
        return NULL;
    }
    /* Replies hold thousands of amounts: short ones are assembled on the stack. */
    char small[64];
    char *buf = DEC_TAG_LEN + n <= sizeof(small) ? small : malloc(DEC_TAG_LEN + n);
    if (buf == NULL) {
        return NULL;
    }
    memcpy(buf, DEC_TAG, DEC_TAG_LEN);
    memcpy(buf + DEC_TAG_LEN, text, n);
    /* ASCII by construction (the tag and a valid number), so no UTF-8 check is needed. */
    json_t *v = json_stringn_nocheck(buf, DEC_TAG_LEN + n);
    if (buf != small) {
        free(buf);
    }
    return v;
}

json_t *xs_json_decimal(const char *text)
{
    if (text == NULL) {
        return NULL;
    }
    size_t n = strlen(text);
    if (!number_valid(text, n)) {
        return NULL;
    }
    return decimal_new(text, n);
}

json_t *xs_json_money(xs_money m, int places)
{
    char buf[XS_MONEY_TEXT_MAX];
    if (places < 0 || places > XS_MONEY_SCALE || xs_money_format(m, places, buf) != XS_OK) {
        return NULL;
    }
    /* xs_money_format writes a valid JSON number ("-12.50", "0", never "01" or "1."). */
    return decimal_new(buf, strlen(buf));
}

bool xs_json_is_decimal(const json_t *v)
{
    if (!json_is_string(v)) {
        return false;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    return n > DEC_TAG_LEN && memcmp(s, DEC_TAG, DEC_TAG_LEN) == 0 &&
           number_valid(s + DEC_TAG_LEN, n - DEC_TAG_LEN);
}

const char *xs_json_decimal_text(const json_t *v)
{
    return xs_json_is_decimal(v) ? json_string_value(v) + DEC_TAG_LEN : NULL;
}

/*
 * A number in canonical form: value = (-1)^neg x M x 10^exp, where M is the digit sequence
 * int||frac from position first to last (no leading or trailing zeros). Zero has
 * first > last and neg false.
 */
typedef struct canon {
    const char *intp; /* integer digits */
    size_t nint;
    const char *fracp; /* fractional digits */
    size_t nfrac;
    size_t first, last; /* significant digits, as indices into int||frac */
    bool neg;
    bool zero;
    int64_t exp;
} canon;

/* canon_digit returns digit k of int||frac. */
static char canon_digit(const canon *c, size_t k)
{
    return k < c->nint ? c->intp[k] : c->fracp[k - c->nint];
}

/* canon_parse reads valid JSON number text s[0..n) into *c. False when the number is not
 * zero and its exponent is so large (beyond EXP_LIMIT) that it is not normalised. */
static bool canon_parse(const char *s, size_t n, canon *c)
{
    size_t i = 0;
    memset(c, 0, sizeof(*c));
    c->neg = s[0] == '-';
    if (c->neg) {
        i++;
    }
    c->intp = s + i;
    while (i < n && is_digit(s[i])) {
        i++;
    }
    c->nint = (size_t)(s + i - c->intp);
    c->fracp = s + i;
    if (i < n && s[i] == '.') {
        i++;
        c->fracp = s + i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        c->nfrac = (size_t)(s + i - c->fracp);
    }
    int64_t e = 0;
    bool huge = false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (s[i] == '+' || s[i] == '-') {
            eneg = s[i] == '-';
            i++;
        }
        for (; i < n && !huge; i++) {
            e = e * 10 + (s[i] - '0');
            huge = e > EXP_LIMIT;
        }
        if (eneg) {
            e = -e;
        }
    }
    size_t total = c->nint + c->nfrac;
    size_t first = 0;
    while (first < total && canon_digit(c, first) == '0') {
        first++;
    }
    if (first == total) {
        c->zero = true;
        c->neg = false;
        return true;
    }
    if (huge) {
        return false;
    }
    size_t last = total - 1;
    while (canon_digit(c, last) == '0') {
        last--;
    }
    c->first = first;
    c->last = last;
    c->exp = e - (int64_t)c->nfrac + (int64_t)(total - 1 - last);
    return true;
}

/* canon_equal compares two canonical numbers. */
static bool canon_equal(const canon *a, const canon *b)
{
    if (a->zero || b->zero) {
        return a->zero == b->zero;
    }
    if (a->neg != b->neg || a->exp != b->exp || a->last - a->first != b->last - b->first) {
        return false;
    }
    for (size_t k = 0; k <= a->last - a->first; k++) {
        if (canon_digit(a, a->first + k) != canon_digit(b, b->first + k)) {
            return false;
        }
    }
    return true;
}

/* canon_plain writes the canonical number c as plain decimal text ("-12.5", "0.001", "300")
 * into buf (PLAIN_MAX bytes). XS_ERANGE when it would need more than XS_MONEY_SCALE
 * fractional digits or more than 20 integer digits (far beyond what xs_money holds). */
static xs_err canon_plain(const canon *c, char *buf)
{
    if (c->zero) {
        memcpy(buf, "0", 2);
        return XS_OK;
    }
    size_t nsig = c->last - c->first + 1;
    if (c->exp < -XS_MONEY_SCALE || c->exp > 20 || nsig > 20 ||
        (c->exp > 0 && nsig + (size_t)c->exp > 20)) {
        return XS_ERANGE;
    }
    size_t w = 0;
    if (c->neg) {
        buf[w++] = '-';
    }
    size_t nfrac = c->exp < 0 ? (size_t)(-c->exp) : 0;
    if (nsig <= nfrac) {
        buf[w++] = '0';
    } else {
        for (size_t k = 0; k < nsig - nfrac; k++) {
            buf[w++] = canon_digit(c, c->first + k);
        }
        for (int64_t z = 0; z < c->exp; z++) {
            buf[w++] = '0';
        }
    }
    if (nfrac > 0) {
        buf[w++] = '.';
        for (size_t z = nsig; z < nfrac; z++) {
            buf[w++] = '0';
        }
        for (size_t k = nsig > nfrac ? nsig - nfrac : 0; k < nsig; k++) {
            buf[w++] = canon_digit(c, c->first + k);
        }
    }
    buf[w] = '\0';
    return XS_OK;
}

xs_err xs_json_to_money(const json_t *v, xs_money *out)
{
    if (v == NULL || out == NULL) {
        return XS_EINVAL;
    }
    if (json_is_integer(v)) {
        return xs_money_from_int((int64_t)json_integer_value(v), out);
    }
    if (!json_is_string(v)) {
        return XS_EINVAL;
    }
    const char *text = xs_json_decimal_text(v);
    if (text == NULL) {
        return xs_money_parse_n(json_string_value(v), json_string_length(v), out);
    }
    if (strpbrk(text, "eE") == NULL) {
        return xs_money_parse(text, out);
    }
    canon c;
    char plain[PLAIN_MAX];
    if (!canon_parse(text, strlen(text), &c)) {
        return XS_ERANGE;
    }
    xs_err e = canon_plain(&c, plain);
    if (e != XS_OK) {
        return e;
    }
    return xs_money_parse(plain, out);
}

/* plain_decimal tells whether s[0..n) is a decimal as xs_money_parse reads one: an optional
 * '-', digits, and optionally a point and digits. */
static bool plain_decimal(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-' ? 1 : 0, d = i;
    while (i < n && is_digit(s[i])) {
        i++;
    }
    if (i == d) {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit(s[i])) {
            i++;
        }
        if (i == f) {
            return false;
        }
    }
    return i == n;
}

int xs_json_number_places(const json_t *v)
{
    if (json_is_integer(v)) {
        return 0;
    }
    const char *t = xs_json_decimal_text(v);
    size_t n = t != NULL ? strlen(t) : 0;
    if (t == NULL) {
        if (!json_is_string(v) || !plain_decimal(json_string_value(v), json_string_length(v))) {
            return -1;
        }
        t = json_string_value(v);
        n = json_string_length(v);
    }
    canon c;
    if (!canon_parse(t, n, &c)) {
        /* an exponent beyond counting: countless places when it is negative */
        return strstr(t, "e-") != NULL || strstr(t, "E-") != NULL ? INT_MAX : 0;
    }
    if (c.zero || c.exp >= 0) {
        return 0;
    }
    return c.exp < -(int64_t)INT_MAX ? INT_MAX : (int)-c.exp;
}

/* field looks up key in obj: XS_EINVAL when obj is not an object or key is NULL,
 * XS_ENOTFOUND when absent or null; otherwise *out is the (borrowed) value. */
static xs_err field(const json_t *obj, const char *key, json_t **out)
{
    if (!json_is_object(obj) || key == NULL) {
        return XS_EINVAL;
    }
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        return XS_ENOTFOUND;
    }
    *out = v;
    return XS_OK;
}

xs_err xs_json_get_str(const json_t *obj, const char *key, const char **out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_string(v) || xs_json_is_decimal(v)) {
        return XS_EINVAL;
    }
    *out = json_string_value(v);
    return XS_OK;
}

xs_err xs_json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_integer(v)) {
        return XS_EINVAL;
    }
    *out = (int64_t)json_integer_value(v);
    return XS_OK;
}

xs_err xs_json_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_boolean(v)) {
        return XS_EINVAL;
    }
    *out = json_is_true(v);
    return XS_OK;
}

xs_err xs_json_get_money(const json_t *obj, const char *key, xs_money *out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    xs_money m;
    e = xs_json_to_money(v, &m);
    if (e != XS_OK) {
        return e;
    }
    *out = m;
    return XS_OK;
}

xs_err xs_json_get_time(const json_t *obj, const char *key, xs_time *out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_string(v) || xs_json_is_decimal(v)) {
        return XS_EINVAL;
    }
    xs_time t;
    e = xs_time_parse_any(json_string_value(v), &t);
    if (e != XS_OK) {
        return e;
    }
    *out = t;
    return XS_OK;
}

xs_err xs_json_get_object(const json_t *obj, const char *key, json_t **out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_object(v)) {
        return XS_EINVAL;
    }
    *out = v;
    return XS_OK;
}

xs_err xs_json_get_array(const json_t *obj, const char *key, json_t **out)
{
    json_t *v;
    xs_err e = field(obj, key, &v);
    if (e != XS_OK) {
        return e;
    }
    if (!json_is_array(v)) {
        return XS_EINVAL;
    }
    *out = v;
    return XS_OK;
}

const char *xs_json_str_or(const json_t *obj, const char *key, const char *dflt)
{
    const char *s;
    return xs_json_get_str(obj, key, &s) == XS_OK ? s : dflt;
}

/* number_text gives the JSON text of a number value (integer or decimal): a pointer to the
 * decimal's text, or the integer formatted into buf (32 bytes). NULL for other values. */
static const char *number_text(const json_t *v, char *buf)
{
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%" PRId64, (int64_t)json_integer_value(v));
        return buf;
    }
    return xs_json_decimal_text(v);
}

/* numbers_equal compares two number texts by value, or byte for byte when an exponent is
 * too large to normalise. */
static bool numbers_equal(const char *a, const char *b)
{
    canon ca, cb;
    size_t na = strlen(a), nb = strlen(b);
    if (!canon_parse(a, na, &ca) || !canon_parse(b, nb, &cb)) {
        return na == nb && memcmp(a, b, na) == 0;
    }
    return canon_equal(&ca, &cb);
}

bool xs_json_equal(const json_t *a, const json_t *b)
{
    if (a == b) {
        return true;
    }
    if (a == NULL || b == NULL) {
        return false;
    }
    char bufa[32], bufb[32];
    const char *na = number_text(a, bufa);
    const char *nb = number_text(b, bufb);
    if (na != NULL || nb != NULL) {
        return na != NULL && nb != NULL && numbers_equal(na, nb);
    }
    if (json_typeof(a) != json_typeof(b)) {
        return false;
    }
    switch (json_typeof(a)) {
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) {
            return false;
        }
        const char *key;
        size_t klen;
        json_t *va;
        json_object_keylen_foreach((json_t *)a, key, klen, va)
        {
            json_t *vb = json_object_getn(b, key, klen);
            if (vb == NULL || !xs_json_equal(va, vb)) {
                return false;
            }
        }
        return true;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b)) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (!xs_json_equal(json_array_get(a, i), json_array_get(b, i))) {
                return false;
            }
        }
        return true;
    }
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_REAL:
        return json_equal(a, b);
    default:
        return true; /* true, false, null: equal types are equal values */
    }
}

/* --- The request arena (see xs_json_arena_begin) --------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define ARENA_HEAD 16 /* the size of each value, so a free can poison it */
#define ARENA_GAP  16 /* a poisoned gap after each value: an overrun is reported */
#else
#define ARENA_HEAD                        0
#define ARENA_GAP                         0
#define ASAN_POISON_MEMORY_REGION(p, n)   ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_CHUNK ((size_t)4 << 20)
#define ARENA_ALIGN ((size_t)16)

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used; /* bytes of data after the header */
    unsigned char *data;
} arena_chunk;

typedef struct arena {
    bool active;
    arena_chunk *used;  /* chunks holding this request's values, the current one first */
    arena_chunk *spare; /* kept from earlier requests */
} arena;

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static bool arena_ready;
static _Thread_local arena *tl_arena;

static void chunk_list_free(arena_chunk *c)
{
    while (c != NULL) {
        arena_chunk *n = c->next;
        ASAN_UNPOISON_MEMORY_REGION(c->data, c->cap);
        free(c);
        c = n;
    }
}

static void arena_destroy(void *p)
{
    arena *a = p;
    if (a != NULL) {
        chunk_list_free(a->used);
        chunk_list_free(a->spare);
        free(a);
    }
}

static bool arena_owns(const arena *a, const void *p)
{
    const unsigned char *b = p;
    for (const arena_chunk *c = a->used; c != NULL; c = c->next) {
        if (b >= c->data && b < c->data + c->cap) {
            return true;
        }
    }
    return false;
}

static void *arena_malloc(size_t size)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active) {
        return malloc(size);
    }
    size_t need = (ARENA_HEAD + size + ARENA_GAP + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need < size) {
        return NULL;
    }
    arena_chunk *c = a->used;
    if (c == NULL || c->cap - c->used < need) {
        /* A spare chunk big enough, else a new one. */
        arena_chunk **pp = &a->spare;
        while (*pp != NULL && (*pp)->cap < need) {
            pp = &(*pp)->next;
        }
        if (*pp != NULL) {
            c = *pp;
            *pp = c->next;
        } else {
            size_t cap = need > ARENA_CHUNK ? need : ARENA_CHUNK;
            c = malloc(sizeof(*c) + cap + ARENA_ALIGN);
            if (c == NULL) {
                return NULL;
            }
            c->cap = cap;
            uintptr_t d = ((uintptr_t)(c + 1) + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
            c->data = (unsigned char *)d;
            ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        }
        c->used = 0;
        c->next = a->used;
        a->used = c;
    }
    unsigned char *p = c->data + c->used + ARENA_HEAD;
    c->used += need;
#ifdef ARENA_ASAN
    ASAN_UNPOISON_MEMORY_REGION(p - ARENA_HEAD, ARENA_HEAD);
    memcpy(p - ARENA_HEAD, &size, sizeof(size));
    ASAN_POISON_MEMORY_REGION(p - ARENA_HEAD, ARENA_HEAD);
#endif
    ASAN_UNPOISON_MEMORY_REGION(p, size);
    return p;
}

static void arena_free(void *p)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active || !arena_owns(a, p)) {
        free(p);
        return;
    }
#ifdef ARENA_ASAN
    size_t size = 0;
    unsigned char *b = p;
    ASAN_UNPOISON_MEMORY_REGION(b - ARENA_HEAD, ARENA_HEAD);
    memcpy(&size, b - ARENA_HEAD, sizeof(size));
    ASAN_POISON_MEMORY_REGION(b - ARENA_HEAD, ARENA_HEAD);
    ASAN_POISON_MEMORY_REGION(b, size);
#endif
}

static void arena_setup(void)
{
    arena_ready = pthread_key_create(&arena_key, arena_destroy) == 0;
    if (arena_ready) {
        json_set_alloc_funcs(arena_malloc, arena_free);
    }
}

void xs_json_arena_install(void)
{
    pthread_once(&arena_once, arena_setup);
}

void xs_json_arena_begin(void)
{
    if (!arena_ready) {
        return;
    }
    arena *a = tl_arena;
    if (a == NULL) {
        a = calloc(1, sizeof(*a));
        if (a == NULL || pthread_setspecific(arena_key, a) != 0) {
            free(a);
            return; /* values come from malloc, as without an arena */
        }
        tl_arena = a;
    }
    a->active = true;
}

void xs_json_arena_end(void)
{
    arena *a = tl_arena;
    if (a == NULL || !a->active) {
        return;
    }
    a->active = false;
    /* Keep at most XS_JSON_ARENA_KEEP bytes of chunks for the next request: the spare ones
     * (releases inside the request put chunks there) first, then the used ones. */
    size_t kept = 0;
    for (arena_chunk **pp = &a->spare; *pp != NULL;) {
        arena_chunk *c = *pp;
        if (kept + c->cap <= XS_JSON_ARENA_KEEP) {
            kept += c->cap;
            pp = &c->next;
        } else {
            *pp = c->next;
            c->next = NULL;
            chunk_list_free(c);
        }
    }
    while (a->used != NULL) {
        arena_chunk *c = a->used;
        a->used = c->next;
        ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        if (kept + c->cap <= XS_JSON_ARENA_KEEP) {
            kept += c->cap;
            c->next = a->spare;
            a->spare = c;
        } else {
            c->next = NULL;
            chunk_list_free(c);
        }
    }
}

xs_json_arena_pos xs_json_arena_mark(void)
{
    xs_json_arena_pos pos = {0};
    arena *a = tl_arena;
    if (a != NULL && a->active) {
        pos.set = true;
        pos.chunk = a->used;
        pos.used = a->used != NULL ? a->used->used : 0;
    }
    return pos;
}

void xs_json_arena_release(xs_json_arena_pos pos)
{
    arena *a = tl_arena;
    if (!pos.set || a == NULL || !a->active) {
        return;
    }
    while (a->used != NULL && a->used != pos.chunk) {
        arena_chunk *c = a->used;
        a->used = c->next;
        ASAN_POISON_MEMORY_REGION(c->data, c->cap);
        c->next = a->spare;
        a->spare = c;
    }
    if (a->used != NULL) {
        arena_chunk *c = a->used;
        ASAN_POISON_MEMORY_REGION(c->data + pos.used, c->cap - pos.used);
        c->used = pos.used;
    }
}

size_t xs_json_arena_used(void)
{
    size_t n = 0;
    for (const arena_chunk *c = tl_arena != NULL ? tl_arena->used : NULL; c != NULL; c = c->next) {
        n += c->used;
    }
    return n;
}

/* --- Walking without building (xs_json_list_spans, xs_json_member_string) --- */

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
