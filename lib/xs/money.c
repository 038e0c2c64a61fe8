/* money.c: exact scaled decimals (units of 10^-6) with checked arithmetic and named rounding. */
#include "xs/money.h"

#include <string.h>

/* Products of two int64 values and dividends scaled by up to 10^6 fit in 128 bits with room
 * to spare, so every intermediate below is exact and overflow is checked only at the end. */
__extension__ typedef __int128 i128;

/* Largest whole number an xs_money holds: INT64_MAX / 10^6. */
#define MAX_WHOLE INT64_C(9223372036854)
/* Digits in MAX_WHOLE; a longer integer part (leading zeros aside) cannot fit. */
#define MAX_WHOLE_DIGITS 13

static const int64_t pow10s[] = {
    INT64_C(1),
    INT64_C(10),
    INT64_C(100),
    INT64_C(1000),
    INT64_C(10000),
    INT64_C(100000),
    INT64_C(1000000),
    INT64_C(10000000),
    INT64_C(100000000),
    INT64_C(1000000000),
    INT64_C(10000000000),
    INT64_C(100000000000),
    INT64_C(1000000000000),
};

static bool places_ok(int places)
{
    return places >= 0 && places <= XS_MONEY_SCALE;
}

static bool mode_ok(xs_round mode)
{
    return mode == XS_ROUND_HALF_UP || mode == XS_ROUND_HALF_EVEN || mode == XS_ROUND_DOWN;
}

/* div_round returns n / d rounded to an integer with mode; d must be positive. */
static i128 div_round(i128 n, i128 d, xs_round mode)
{
    i128 q = n / d; /* truncated toward zero */
    i128 r = n % d; /* has the sign of n */
    if (r == 0 || mode == XS_ROUND_DOWN) {
        return q;
    }
    i128 twice = 2 * (r < 0 ? -r : r);
    i128 away = n < 0 ? -1 : 1;
    if (twice > d) {
        return q + away;
    }
    if (twice == d && (mode == XS_ROUND_HALF_UP || q % 2 != 0)) {
        return q + away;
    }
    return q;
}

/* finish stores q, a count of 10^-places steps, as an xs_money in *out; XS_ERANGE when it
 * does not fit. Callers' q stay below 2^107, so scaling it cannot overflow 128 bits. */
static xs_err finish(i128 q, int places, xs_money *out)
{
    i128 units = q * pow10s[XS_MONEY_SCALE - places];
    if (units > INT64_MAX || units < INT64_MIN) {
        return XS_ERANGE;
    }
    out->units = (int64_t)units;
    return XS_OK;
}

/* magnitude returns |units| without overflowing on INT64_MIN. */
static uint64_t magnitude(int64_t units)
{
    return units < 0 ? UINT64_C(0) - (uint64_t)units : (uint64_t)units;
}

/* write_text writes m with exactly `places` fractional digits; the caller has checked that
 * no non-zero digit lies beyond them. */
static void write_text(xs_money m, int places, char *buf)
{
    uint64_t mag = magnitude(m.units);
    uint64_t whole = mag / (uint64_t)XS_MONEY_ONE;
    uint64_t frac = mag % (uint64_t)XS_MONEY_ONE;
    /* Digits by hand, not snprintf: every amount of every reply is written here. */
    char rev[20];
    int nrev = 0;
    do {
        rev[nrev++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole != 0);
    int n = 0;
    if (m.units < 0) {
        buf[n++] = '-';
    }
    while (nrev > 0) {
        buf[n++] = rev[--nrev];
    }
    if (places > 0) {
        char digits[XS_MONEY_SCALE];
        for (int i = XS_MONEY_SCALE - 1; i >= 0; i--) {
            digits[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        buf[n++] = '.';
        memcpy(buf + n, digits, (size_t)places);
        n += places;
    }
    buf[n] = '\0';
}

xs_money xs_money_zero(void)
{
    xs_money m = {0};
    return m;
}

xs_err xs_money_from_int(int64_t n, xs_money *out)
{
    if (out == NULL) {
        return XS_EINVAL;
    }
    if (n > MAX_WHOLE || n < -MAX_WHOLE) {
        return XS_ERANGE;
    }
    out->units = n * XS_MONEY_ONE;
    return XS_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

xs_err xs_money_parse_n(const char *text, size_t len, xs_money *out)
{
    if (text == NULL || out == NULL) {
        return XS_EINVAL;
    }
    /* Check the whole form first, so malformed text is XS_EPARSE whatever its size. */
    size_t i = 0;
    bool neg = false;
    if (i < len && text[i] == '-') {
        neg = true;
        i++;
    }
    size_t int_start = i;
    while (i < len && is_digit(text[i])) {
        i++;
    }
    size_t int_end = i;
    if (int_end == int_start) {
        return XS_EPARSE;
    }
    size_t frac_start = i;
    size_t frac_end = i;
    if (i < len && text[i] == '.') {
        frac_start = ++i;
        while (i < len && is_digit(text[i])) {
            i++;
        }
        frac_end = i;
        if (frac_end == frac_start) {
            return XS_EPARSE;
        }
    }
    if (i != len) {
        return XS_EPARSE;
    }

    while (int_start + 1 < int_end && text[int_start] == '0') {
        int_start++;
    }
    if (int_end - int_start > MAX_WHOLE_DIGITS) {
        return XS_ERANGE;
    }
    uint64_t whole = 0;
    for (size_t k = int_start; k < int_end; k++) {
        whole = whole * 10 + (uint64_t)(text[k] - '0');
    }
    uint64_t frac = 0;
    for (size_t k = frac_start; k < frac_end; k++) {
        size_t pos = k - frac_start;
        if (pos < XS_MONEY_SCALE) {
            frac += (uint64_t)(text[k] - '0') * (uint64_t)pow10s[XS_MONEY_SCALE - 1 - pos];
        } else if (text[k] != '0') {
            return XS_ERANGE;
        }
    }
    /* whole < 10^13, so this is below 10^19 < 2^64. */
    i128 units = (i128)(whole * (uint64_t)XS_MONEY_ONE + frac);
    if (neg) {
        units = -units;
    }
    if (units > INT64_MAX || units < INT64_MIN) {
        return XS_ERANGE;
    }
    out->units = (int64_t)units;
    return XS_OK;
}

xs_err xs_money_parse(const char *text, xs_money *out)
{
    if (text == NULL) {
        return XS_EINVAL;
    }
    return xs_money_parse_n(text, strlen(text), out);
}

xs_err xs_money_format(xs_money m, int places, char *buf)
{
    if (buf == NULL || !places_ok(places)) {
        return XS_EINVAL;
    }
    if (xs_money_places(m) > places) {
        return XS_ERANGE;
    }
    write_text(m, places, buf);
    return XS_OK;
}

void xs_money_format_min(xs_money m, int min_places, char *buf)
{
    if (buf == NULL) {
        return;
    }
    if (min_places < 0) {
        min_places = 0;
    } else if (min_places > XS_MONEY_SCALE) {
        min_places = XS_MONEY_SCALE;
    }
    int need = xs_money_places(m);
    write_text(m, need > min_places ? need : min_places, buf);
}

xs_err xs_money_add(xs_money a, xs_money b, xs_money *out)
{
    int64_t r;
    if (out == NULL) {
        return XS_EINVAL;
    }
    if (__builtin_add_overflow(a.units, b.units, &r)) {
        return XS_ERANGE;
    }
    out->units = r;
    return XS_OK;
}

xs_err xs_money_sub(xs_money a, xs_money b, xs_money *out)
{
    int64_t r;
    if (out == NULL) {
        return XS_EINVAL;
    }
    if (__builtin_sub_overflow(a.units, b.units, &r)) {
        return XS_ERANGE;
    }
    out->units = r;
    return XS_OK;
}

xs_err xs_money_mul(xs_money a, xs_money b, int places, xs_round mode, xs_money *out)
{
    if (out == NULL || !places_ok(places) || !mode_ok(mode)) {
        return XS_EINVAL;
    }
    /* a x b carries 12 fractional digits; keep `places` of them. */
    i128 product = (i128)a.units * b.units;
    i128 q = div_round(product, pow10s[2 * XS_MONEY_SCALE - places], mode);
    return finish(q, places, out);
}

xs_err xs_money_div(xs_money a, xs_money b, int places, xs_round mode, xs_money *out)
{
    if (out == NULL || !places_ok(places) || !mode_ok(mode) || b.units == 0) {
        return XS_EINVAL;
    }
    /* The scales of a and b cancel; a x 10^places / b counts steps of 10^-places. */
    i128 n = (i128)a.units * pow10s[places];
    i128 d = b.units;
    if (d < 0) {
        n = -n;
        d = -d;
    }
    return finish(div_round(n, d, mode), places, out);
}

xs_err xs_money_round(xs_money m, int places, xs_round mode, xs_money *out)
{
    if (out == NULL || !places_ok(places) || !mode_ok(mode)) {
        return XS_EINVAL;
    }
    i128 q = div_round(m.units, pow10s[XS_MONEY_SCALE - places], mode);
    return finish(q, places, out);
}

int xs_money_cmp(xs_money a, xs_money b)
{
    return (a.units > b.units) - (a.units < b.units);
}

bool xs_money_is_zero(xs_money m)
{
    return m.units == 0;
}

bool xs_money_is_negative(xs_money m)
{
    return m.units < 0;
}

int xs_money_places(xs_money m)
{
    uint64_t frac = magnitude(m.units) % (uint64_t)XS_MONEY_ONE;
    if (frac == 0) {
        return 0;
    }
    int places = XS_MONEY_SCALE;
    while (frac % 10 == 0) {
        frac /= 10;
        places--;
    }
    return places;
}
