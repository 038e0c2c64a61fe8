/*
 * json_lex.c: the lexer pass of the full parse, and the byte tables the parts share.
 *
 * xs__json_scan_text walks the raw input with a small JSON lexer: it tracks strings and their
 * escapes (so digits inside strings are never touched), refuses "\u0000" escapes and raw NUL
 * bytes, refuses nesting deeper than MAX_DEPTH, checks every number literal against the JSON
 * grammar, and rewrites each number that jansson would turn into a double (a fraction or an
 * exponent) or could not hold (an integer outside int64) into a JSON string
 * "\u0000dec:<literal>". json_parse.c hands the rewritten text to jansson; JSON_ALLOW_NUL is
 * safe there because the only NULs left are our own tags. xs__json_scan_map maps jansson's
 * error positions back to the input through the list of rewrites.
 *
 * It owns the rewrite list and the string byte classes (xs__json_str_class). It builds no
 * JSON value and must not: structural errors it does not look for are jansson's to report.
 */
#include <stdio.h>

#include "json_int.h"

/* How the fast parser and the dumper treat each byte of a string: 0 copied as is, 1 escaped,
 * 2-4 the first byte of a UTF-8 sequence of that length (checked), 5 never valid in UTF-8 (a
 * continuation byte out of place, C0/C1, F5-FF). Rows are 16 bytes: 0x00-0x1F controls, '"'
 * (0x22), '\' (0x5C). */
const unsigned char xs__json_str_class[256] = {
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

/* xs__json_sb_grow is sb_reserve's slow path: it reallocates. */
bool xs__json_sb_grow(strbuf *b, size_t more)
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

/* xs__json_scan_text is the lexer pass described at the top of this file. It returns XS_OK (with
 * sc->out holding the rewritten text when sc->nrw > 0), XS_EPARSE (sc->errpos and
 * sc->reason set) or XS_ENOMEM. Structural errors it does not look for are left to
 * jansson. */
xs_err xs__json_scan_text(scan *sc)
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

/* xs__json_scan_map maps an offset p in the rewritten text back to the original input. An offset
 * inside a rewritten token maps into (or to the end of) the original literal. */
size_t xs__json_scan_map(const scan *sc, size_t p)
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
