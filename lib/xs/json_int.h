/*
 * json_int.h: what the parts of the json module share, and nothing outside lib/xs/json*.c
 * may include. The public contract is json.h.
 *
 * It owns the decimal tag's spelling (DEC_TAG, in values and in JSON text), the nesting
 * limit, the growable buffer the lexer, the fast parser and the dumper write into, and the
 * byte-level tests they all make (JSON whitespace and numbers, UTF-8, runs of plain string
 * bytes). The small ones are static inline here because the parser and the dumper call them
 * per byte or per token, as they did when all of this was one file. It must not declare
 * anything that other modules could call: every non-static name is xs__json_.
 *
 * The parts: json_lex.c (the lexer pass and the shared tables), json_parse.c (fast and full
 * parse), json_dump.c (writing), json_decimal.c (decimals, numbers, equality, the string
 * accessor), json_get.c (field accessors), json_arena.c (the request arena), json_span.c
 * (walking a text without building it).
 */
#ifndef XS_JSON_INT_H
#define XS_JSON_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

/* A decimal is a jansson string: DEC_TAG, then the number's JSON text. */
#define DEC_TAG     "\0dec:"
#define DEC_TAG_LEN 5
/* DEC_TAG as written inside a JSON string literal (jansson's escape for NUL). */
#define DEC_TAG_JSON     "\\u0000dec:"
#define DEC_TAG_JSON_LEN 10

#define MAX_DEPTH 64

/* A growable byte buffer; `p` is malloc'ed. */
typedef struct strbuf {
    char *p;
    size_t len;
    size_t cap;
} strbuf;

/* xs__json_sb_grow is sb_reserve's slow path: it reallocates (json_lex.c). */
bool xs__json_sb_grow(strbuf *b, size_t more);

/* sb_reserve makes room for `more` bytes after len; false when out of memory. Inline: the
 * dumper calls it for every token. */
static inline bool sb_reserve(strbuf *b, size_t more)
{
    return more <= b->cap - b->len || xs__json_sb_grow(b, more);
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
static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* is_ws tells whether c is JSON whitespace. */
static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* is_number_char tells whether c can continue a number literal; a number followed directly
 * by one of these is malformed ("01", "1.2.3", "1e5e"). */
static inline bool is_number_char(char c)
{
    return is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
}

/* digits_end returns the end of the run of digits that starts at s[i], or 0 when there is
 * none (never a valid end: a number's digits follow something). */
static inline size_t digits_end(const char *s, size_t n, size_t i)
{
    if (i >= n || !is_digit(s[i])) {
        return 0;
    }
    while (i < n && is_digit(s[i])) {
        i++;
    }
    return i;
}

/* number_scan returns the length of the JSON number at the start of s[0..n) (RFC 8259:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 when s does not start with one.
 * *is_int tells whether it has neither fraction nor exponent. */
static inline size_t number_scan(const char *s, size_t n, bool *is_int)
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
        i = digits_end(s, n, i);
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        if ((i = digits_end(s, n, i + 1)) == 0) {
            return 0;
        }
        integer = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if ((i = digits_end(s, n, i)) == 0) {
            return 0;
        }
        integer = false;
    }
    *is_int = integer;
    return i;
}

/* number_valid tells whether s[0..n) is exactly one JSON number. */
static inline bool number_valid(const char *s, size_t n)
{
    bool is_int;
    return n > 0 && number_scan(s, n, &is_int) == n;
}

/* int_fits tells whether the integer literal s[0..n) (valid JSON grammar) fits int64. */
static inline bool int_fits(const char *s, size_t n)
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

/* xs__json_str_class tells how a byte of a string is written and read: 0 copied as is, 1
 * escaped, 2-4 the first byte of a UTF-8 sequence of that length (checked), 5 never valid
 * in UTF-8 (json_lex.c). */
extern const unsigned char xs__json_str_class[256];

/* utf8_seq_ok tells whether the k bytes at s (k = str_class of s[0], 2 to 4, and all k
 * bytes present) are one well-formed UTF-8 sequence: continuation bytes, no overlong form,
 * no surrogate, at most U+10FFFF. The same rules as jansson's, which refuses to dump
 * anything else. */
static inline bool utf8_seq_ok(const unsigned char *s, size_t k)
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
static inline size_t plain_run(const char *s, size_t i, size_t n)
{
    while (n - i >= 8 && word_plain(s + i)) {
        i += 8;
    }
    if (n - i < 8 && n >= 8 && word_plain(s + n - 8)) {
        return n;
    }
    while (i < n && xs__json_str_class[(unsigned char)s[i]] == 0) {
        i++;
    }
    return i;
}

/* dec_tagged tells whether the string s[0..n) is a decimal: DEC_TAG followed by a valid
 * JSON number. The one test of the tag, for the dumper and xs_json_is_decimal. */
static inline bool dec_tagged(const char *s, size_t n)
{
    return n > DEC_TAG_LEN && s[0] == '\0' && memcmp(s, DEC_TAG, DEC_TAG_LEN) == 0 &&
           number_valid(s + DEC_TAG_LEN, n - DEC_TAG_LEN);
}

/* xs__json_decimal_new makes a new decimal from n bytes of number text, assumed valid
 * (json_decimal.c). */
json_t *xs__json_decimal_new(const char *text, size_t n);

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

/* xs__json_scan_text runs the lexer pass over sc->in[0..sc->len) (json_lex.c): XS_OK, with
 * sc->out holding the rewritten text when sc->nrw > 0; XS_EPARSE with sc->errpos and
 * sc->reason; or XS_ENOMEM. The caller frees sc->out.p and sc->rw. */
xs_err xs__json_scan_text(scan *sc);

/* xs__json_scan_map maps offset p in the rewritten text back to the input (json_lex.c). */
size_t xs__json_scan_map(const scan *sc, size_t p);

#endif
