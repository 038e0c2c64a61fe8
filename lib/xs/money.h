/*
 * money.h: exact decimal numbers for money, quantities and rates. No floating point.
 *
 * An xs_money holds a decimal with up to XS_MONEY_SCALE (6) fractional digits as a scaled
 * 64-bit integer (value x 10^6), so amounts up to about 9.2 x 10^12 are exact. Xero uses 2
 * places for totals and up to 4 for unit amounts and quantities, and 6 for currency rates.
 * Arithmetic checks for overflow and returns XS_ERANGE rather than wrapping. Products and
 * quotients are rounded to a number of places the caller names, with a rounding mode the
 * caller names: nothing rounds silently.
 */
#ifndef XS_MONEY_H
#define XS_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"

#define XS_MONEY_SCALE 6
#define XS_MONEY_ONE   INT64_C(1000000)
/* Longest text xs_money_format writes, including sign, point and NUL. */
#define XS_MONEY_TEXT_MAX 32

typedef struct xs_money {
    int64_t units; /* value x 10^XS_MONEY_SCALE */
} xs_money;

typedef enum xs_round {
    XS_ROUND_HALF_UP = 0,   /* half away from zero: 2.345 -> 2.35, -2.345 -> -2.35 (Xero's) */
    XS_ROUND_HALF_EVEN = 1, /* banker's rounding: 2.345 -> 2.34, 2.355 -> 2.36 */
    XS_ROUND_DOWN = 2,      /* toward zero */
} xs_round;

/* xs_money_zero returns 0. */
xs_money xs_money_zero(void);

/* xs_money_from_int returns the integer n, or XS_ERANGE through out-of-range n (beyond
 * +/-9223372036854). */
xs_err xs_money_from_int(int64_t n, xs_money *out);

/* xs_money_parse reads a decimal: optional '-', digits, optional point and up to 6
 * fractional digits ("12", "-0.5", "1234.5678", "-0" is zero; ".5", "5.", "+5", "1e3" and
 * whitespace are refused; leading zeros are accepted). Malformed text is XS_EPARSE. More than
 * 6 fractional digits is XS_ERANGE unless the digits beyond the sixth are all zeros; so is a
 * value outside the range of xs_money. */
xs_err xs_money_parse(const char *text, xs_money *out);

/* xs_money_parse_n is xs_money_parse on the first len bytes of text. */
xs_err xs_money_parse_n(const char *text, size_t len, xs_money *out);

/* xs_money_format writes m with exactly `places` (0..6) fractional digits into buf
 * (XS_MONEY_TEXT_MAX bytes). If m has non-zero digits beyond `places`, nothing is written
 * and XS_ERANGE is returned: round first with xs_money_round. */
xs_err xs_money_format(xs_money m, int places, char *buf);

/* xs_money_format_min writes m with at least `min_places` fractional digits and no trailing
 * zeros beyond them ("12.50" with min 2; "1.2345" with min 2; "3" with min 0). This is the
 * canonical text used in checksums. Never fails; min_places outside 0..6 is clamped to it. */
void xs_money_format_min(xs_money m, int min_places, char *buf);

/* xs_money_add and xs_money_sub: exact; XS_ERANGE on overflow. */
xs_err xs_money_add(xs_money a, xs_money b, xs_money *out);
xs_err xs_money_sub(xs_money a, xs_money b, xs_money *out);

/* xs_money_mul sets *out to a x b rounded to `places` (0..6) with mode; XS_ERANGE on
 * overflow. */
xs_err xs_money_mul(xs_money a, xs_money b, int places, xs_round mode, xs_money *out);

/* xs_money_div sets *out to a / b rounded to `places` (0..6) with mode; XS_EINVAL when b
 * is zero, XS_ERANGE on overflow. */
xs_err xs_money_div(xs_money a, xs_money b, int places, xs_round mode, xs_money *out);

/* xs_money_round sets *out to m rounded to `places` (0..6) with mode; XS_ERANGE when the
 * rounded value does not fit (rounding away from zero at the very ends of the range).
 *
 * In xs_money_format, _mul, _div and _round, places outside 0..6, an unknown mode or a NULL
 * out is XS_EINVAL. */
xs_err xs_money_round(xs_money m, int places, xs_round mode, xs_money *out);

/* xs_money_cmp returns -1, 0 or 1. */
int xs_money_cmp(xs_money a, xs_money b);

/* xs_money_is_zero, xs_money_is_negative. */
bool xs_money_is_zero(xs_money m);
bool xs_money_is_negative(xs_money m);

/* xs_money_places returns the number of fractional digits m needs (0..6). */
int xs_money_places(xs_money m);

#endif
