/*
 * json_decimal.c: decimals, the numbers json.h reads, and the comparison of values.
 *
 * A decimal is a jansson string holding DEC_TAG and then the number's JSON text (json.h);
 * this file makes them (xs_json_decimal, xs_json_money and, for the parsers,
 * xs__json_decimal_new), recognises them, and reads numbers exactly: as money, as a count of
 * places, and against each other (xs_json_equal) through a canonical form (canon_parse). It
 * also owns the one way for other modules to read a string's text, xs_json_string_value,
 * which never hands out a decimal's tag. It must not turn a number into a double.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "json_int.h"

/* Exponents beyond this magnitude are not normalised (see canon_parse). */
#define EXP_LIMIT INT64_C(100000000000000000)

/* Room for canon_plain's text: sign, 20 integer digits, point, 6 fractional digits, NUL. */
#define PLAIN_MAX 32

json_t *xs__json_decimal_new(const char *text, size_t n)
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
    return xs__json_decimal_new(text, n);
}

json_t *xs_json_money(xs_money m, int places)
{
    char buf[XS_MONEY_TEXT_MAX];
    if (places < 0 || places > XS_MONEY_SCALE || xs_money_format(m, places, buf) != XS_OK) {
        return NULL;
    }
    /* xs_money_format writes a valid JSON number ("-12.50", "0", never "01" or "1."). */
    return xs__json_decimal_new(buf, strlen(buf));
}

bool xs_json_is_decimal(const json_t *v)
{
    if (!json_is_string(v)) {
        return false;
    }
    return dec_tagged(json_string_value(v), json_string_length(v));
}

const char *xs_json_decimal_text(const json_t *v)
{
    return xs_json_is_decimal(v) ? json_string_value(v) + DEC_TAG_LEN : NULL;
}

const char *xs_json_string_value(const json_t *v, size_t *len)
{
    if (!json_is_string(v)) {
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (dec_tagged(s, n)) {
        return NULL;
    }
    if (len != NULL) {
        *len = n;
    }
    return s;
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
