/* clock_test.c: clocks, Xero's /Date()/ form and ISO 8601, against an independent calendar. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "xs/clock.h"

/* The range clock.c accepts: 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. */
#define T_MIN   INT64_C(-62135596800000)
#define T_MAX   INT64_C(253402300799999)
#define T_XERO  INT64_C(1573755038314) /* 2019-11-14T18:10:38.314Z */
#define DAY_MS  INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)

#define assert_time(got, want) assert_true((int64_t)(got) == (int64_t)(want))

struct time_case {
    const char *text;
    xs_err err;
    int64_t ms;
};

static void run_cases(const struct time_case *cases, size_t n,
                      xs_err (*parse)(const char *, xs_time *), const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const struct time_case *c = &cases[i];
        xs_time t = 4242;
        xs_err err = parse(c->text, &t);
        if (err != c->err) {
            fail_msg("%s \"%s\" gave %s, want %s", what, c->text, xs_err_name(err),
                     xs_err_name(c->err));
        }
        if (err == XS_OK && t != c->ms) {
            fail_msg("%s \"%s\" gave %lld, want %lld", what, c->text, (long long)t,
                     (long long)c->ms);
        }
        if (err != XS_OK && t != 4242) {
            fail_msg("%s \"%s\" failed but wrote its output", what, c->text);
        }
    }
}

static const struct time_case xero_cases[] = {
    {"/Date(1573755038314)/", XS_OK, T_XERO},
    {"/Date(1573755038314+0000)/", XS_OK, T_XERO},
    /* The offset names a zone and does not move the instant. */
    {"/Date(1573755038314+1300)/", XS_OK, T_XERO},
    {"/Date(1573755038314-0500)/", XS_OK, T_XERO},
    {"/Date(1573755038314+1400)/", XS_OK, T_XERO},
    {"/Date(1573755038314-1400)/", XS_OK, T_XERO},
    {"/Date(1573755038314+0545)/", XS_OK, T_XERO},
    {"/Date(1573755038314+0059)/", XS_OK, T_XERO},
    {"/Date(0)/", XS_OK, 0},
    {"/Date(0+0000)/", XS_OK, 0},
    {"/Date(-0)/", XS_OK, 0},
    {"/Date(-1)/", XS_OK, -1},
    {"/Date(-1+0000)/", XS_OK, -1},
    {"/Date(-86400000-0100)/", XS_OK, -DAY_MS},
    {"/Date(0001)/", XS_OK, 1},
    {"/Date(-62135596800000)/", XS_OK, T_MIN},
    {"/Date(253402300799999+0000)/", XS_OK, T_MAX},
    {"/Date(-62135596800001)/", XS_ERANGE, 0},
    {"/Date(253402300800000)/", XS_ERANGE, 0},
    {"/Date(9999999999999999)/", XS_ERANGE, 0},
    {"/Date(99999999999999999)/", XS_ERANGE, 0},
    {"/Date(9223372036854775807)/", XS_ERANGE, 0},
    {"/Date(9223372036854775808)/", XS_ERANGE, 0},
    {"/Date(-9223372036854775809)/", XS_ERANGE, 0},
    {"/Date(123456789012345678901234567890)/", XS_ERANGE, 0},
    {"", XS_EPARSE, 0},
    {"/Date()/", XS_EPARSE, 0},
    {"/Date(-)/", XS_EPARSE, 0},
    {"/Date(--1)/", XS_EPARSE, 0},
    {"/Date(+1)/", XS_EPARSE, 0},
    {"/Date( 1)/", XS_EPARSE, 0},
    {"/Date(1 )/", XS_EPARSE, 0},
    {"/Date(abc)/", XS_EPARSE, 0},
    {"/Date(1.5)/", XS_EPARSE, 0},
    {"/Date(1e3)/", XS_EPARSE, 0},
    {"/Date(1573755038314)", XS_EPARSE, 0},
    {"/Date(1573755038314/", XS_EPARSE, 0},
    {"Date(1573755038314)/", XS_EPARSE, 0},
    {"/date(1573755038314)/", XS_EPARSE, 0},
    {"/Date(1573755038314)/ ", XS_EPARSE, 0},
    {" /Date(1573755038314)/", XS_EPARSE, 0},
    {"/Date(1573755038314)/x", XS_EPARSE, 0},
    {"/Date(1573755038314+)/", XS_EPARSE, 0},
    {"/Date(1573755038314-)/", XS_EPARSE, 0},
    {"/Date(1573755038314+000)/", XS_EPARSE, 0},
    {"/Date(1573755038314+00000)/", XS_EPARSE, 0},
    {"/Date(1573755038314+00:00)/", XS_EPARSE, 0},
    {"/Date(1573755038314+1500)/", XS_EPARSE, 0},
    {"/Date(1573755038314-1500)/", XS_EPARSE, 0},
    {"/Date(1573755038314+9900)/", XS_EPARSE, 0},
    {"/Date(1573755038314+0060)/", XS_EPARSE, 0},
    {"/Date(1573755038314+ab00)/", XS_EPARSE, 0},
    {"/Date(1573755038314--0100)/", XS_EPARSE, 0},
    {"/Date(1573755038314+0000+0000)/", XS_EPARSE, 0},
    {"/Date(1573755038314Z)/", XS_EPARSE, 0},
    {"2019-11-14T18:10:38Z", XS_EPARSE, 0},
    /* Trailing junk is malformed even when the value is also out of range. */
    {"/Date(253402300800000)/junk", XS_EPARSE, 0},
};

static void test_parse_xero(void **state)
{
    (void)state;
    run_cases(xero_cases, sizeof(xero_cases) / sizeof(xero_cases[0]), xs_time_parse_xero, "xero");
    xs_time t = 0;
    assert_int_equal(xs_time_parse_xero(NULL, &t), XS_EINVAL);
    assert_int_equal(xs_time_parse_xero("/Date(1)/", NULL), XS_EINVAL);
}

static const struct time_case iso_cases[] = {
    {"2019-11-14T18:10:38.314Z", XS_OK, T_XERO},
    {"2019-11-14T18:10:38Z", XS_OK, T_XERO - 314},
    {"2019-11-14T18:10:38", XS_OK, T_XERO - 314},
    {"2019-11-14T18:10:38.3140000", XS_OK, T_XERO},
    {"2019-11-14T18:10:38.3149999", XS_OK, T_XERO},
    {"2019-11-14T18:10:38.314999999999999999999999", XS_OK, T_XERO},
    {"2019-11-14T18:10:38.3Z", XS_OK, T_XERO - 14},
    {"2019-11-14T18:10:38.31Z", XS_OK, T_XERO - 4},
    {"2019-11-14T18:10:38.0Z", XS_OK, T_XERO - 314},
    {"2019-11-14T18:10:38,314Z", XS_OK, T_XERO},
    {"2019-11-14t18:10:38.314z", XS_OK, T_XERO},
    {"2019-11-14 18:10:38.314", XS_OK, T_XERO},
    {"2019-11-14T18:10Z", XS_OK, T_XERO - 38314},
    {"2019-11-14T18:10", XS_OK, T_XERO - 38314},
    {"2019-11-14T18:10:38+00:00", XS_OK, T_XERO - 314},
    {"2019-11-14T18:10:38-00:00", XS_OK, T_XERO - 314},
    {"2019-11-14T18:10:38+13:00", XS_OK, INT64_C(1573708238000)},
    {"2019-11-14T18:10:38+1300", XS_OK, INT64_C(1573708238000)},
    {"2019-11-14T18:10:38-05:00", XS_OK, INT64_C(1573773038000)},
    {"2019-11-14T18:10:38+14:00", XS_OK, INT64_C(1573704638000)},
    {"2019-11-14T18:10:38-14:00", XS_OK, INT64_C(1573805438000)},
    {"2019-11-14T18:10:38+05:45", XS_OK, INT64_C(1573734338000)},
    {"2019-11-14T18:10:38.314+13:00", XS_OK, INT64_C(1573708238314)},
    {"2019-11-14", XS_OK, INT64_C(1573689600000)},
    {"1970-01-01", XS_OK, 0},
    {"1970-01-01T00:00:00Z", XS_OK, 0},
    {"1969-12-31T23:59:59.999Z", XS_OK, -1},
    {"1970-01-01T00:00:00+00:01", XS_OK, -60000},
    {"1970-01-01T00:00:00-00:01", XS_OK, 60000},
    {"1900-03-01", XS_OK, INT64_C(-2203891200000)},
    {"1600-02-29T12:00:00", XS_OK, INT64_C(-11670955200000)},
    /* Leap years. */
    {"2000-02-29", XS_OK, INT64_C(951782400000)},
    {"2024-02-29T23:59:59.999", XS_OK, INT64_C(1709251199999)},
    {"2023-02-29", XS_ERANGE, 0},
    {"1900-02-29", XS_ERANGE, 0},
    {"2100-02-29", XS_ERANGE, 0},
    {"2000-02-30", XS_ERANGE, 0},
    {"2019-02-30", XS_ERANGE, 0},
    /* Field ranges. */
    {"2019-00-10", XS_ERANGE, 0},
    {"2019-13-01", XS_ERANGE, 0},
    {"2019-99-01", XS_ERANGE, 0},
    {"2019-01-00", XS_ERANGE, 0},
    {"2019-01-32", XS_ERANGE, 0},
    {"2019-04-31", XS_ERANGE, 0},
    {"2019-06-31", XS_ERANGE, 0},
    {"2019-09-31", XS_ERANGE, 0},
    {"2019-11-31", XS_ERANGE, 0},
    {"2019-12-31T23:59:59.999Z", XS_OK, INT64_C(1577836799999)},
    {"2019-11-14T24:00:00Z", XS_ERANGE, 0},
    {"2019-11-14T23:60:00Z", XS_ERANGE, 0},
    {"2019-11-14T23:59:60Z", XS_ERANGE, 0},
    {"2019-11-14T99:99:99Z", XS_ERANGE, 0},
    /* Year bounds, also when an offset moves the instant across them. */
    {"0001-01-01T00:00:00Z", XS_OK, T_MIN},
    {"0001-01-01", XS_OK, T_MIN},
    {"0001-01-01T00:00:00-00:01", XS_OK, T_MIN + 60000},
    {"0001-01-01T00:00:00+00:01", XS_ERANGE, 0},
    {"0000-12-31", XS_ERANGE, 0},
    {"0000-01-01", XS_ERANGE, 0},
    {"9999-12-31T23:59:59.999Z", XS_OK, T_MAX},
    {"9999-12-31T23:59:59.999+01:00", XS_OK, T_MAX - HOUR_MS},
    {"9999-12-31T23:59:59.999-00:01", XS_ERANGE, 0},
    {"9999-12-31T23:30:00-14:00", XS_ERANGE, 0},
    /* Malformed. */
    {"", XS_EPARSE, 0},
    {"2019", XS_EPARSE, 0},
    {"2019-11", XS_EPARSE, 0},
    {"2019-11-", XS_EPARSE, 0},
    {"2019-1-14", XS_EPARSE, 0},
    {"2019-11-4", XS_EPARSE, 0},
    {"19-11-14", XS_EPARSE, 0},
    {"20191114", XS_EPARSE, 0},
    {"2019/11/14", XS_EPARSE, 0},
    {"+2019-11-14", XS_EPARSE, 0},
    {"-2019-11-14", XS_EPARSE, 0},
    {"12019-11-14", XS_EPARSE, 0},
    {" 2019-11-14", XS_EPARSE, 0},
    {"2019-11-14 ", XS_EPARSE, 0},
    {"2019-11-14T", XS_EPARSE, 0},
    {"2019-11-14T18", XS_EPARSE, 0},
    {"2019-11-14T18:", XS_EPARSE, 0},
    {"2019-11-14T18:1", XS_EPARSE, 0},
    {"2019-11-14T1:10", XS_EPARSE, 0},
    {"2019-11-14T18:10:", XS_EPARSE, 0},
    {"2019-11-14T18:10:3", XS_EPARSE, 0},
    {"2019-11-14T18:10:38.", XS_EPARSE, 0},
    {"2019-11-14T18:10:38.Z", XS_EPARSE, 0},
    {"2019-11-14T18:10:38..3", XS_EPARSE, 0},
    {"2019-11-14T18:10:38.3.4", XS_EPARSE, 0},
    {"2019-11-14T18:10:38ZZ", XS_EPARSE, 0},
    {"2019-11-14T18:10:38 Z", XS_EPARSE, 0},
    {"2019-11-14T18:10:38Zjunk", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+", XS_EPARSE, 0},
    {"2019-11-14T18:10:38-", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+5:00", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+05", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+05:0", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+05:000", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+15:00", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+05:60", XS_EPARSE, 0},
    {"2019-11-14T18:10:38+13:00Z", XS_EPARSE, 0},
    {"2019-11-14T18:10:38Z+13:00", XS_EPARSE, 0},
    {"2019-11-14T18:10:38.314+13:00x", XS_EPARSE, 0},
    {"2019-11-14Z", XS_EPARSE, 0},
    {"2019-11-14+13:00", XS_EPARSE, 0},
    {"2019-11-14T18:10.5", XS_EPARSE, 0},
    {"2019-11-14X18:10:38", XS_EPARSE, 0},
    {"2019-11-14T18-10-38", XS_EPARSE, 0},
    {"2O19-11-14", XS_EPARSE, 0},
    {"/Date(1573755038314)/", XS_EPARSE, 0},
};

static void test_parse_iso(void **state)
{
    (void)state;
    run_cases(iso_cases, sizeof(iso_cases) / sizeof(iso_cases[0]), xs_time_parse_iso, "iso");
    xs_time t = 0;
    assert_int_equal(xs_time_parse_iso(NULL, &t), XS_EINVAL);
    assert_int_equal(xs_time_parse_iso("2019-11-14", NULL), XS_EINVAL);
}

static void test_parse_any(void **state)
{
    (void)state;
    xs_time t = 0;
    assert_int_equal(xs_time_parse_any("/Date(1573755038314+0000)/", &t), XS_OK);
    assert_time(t, T_XERO);
    assert_int_equal(xs_time_parse_any("2019-11-14T18:10:38.314Z", &t), XS_OK);
    assert_time(t, T_XERO);
    assert_int_equal(xs_time_parse_any("2019-11-14", &t), XS_OK);
    assert_time(t, INT64_C(1573689600000));
    t = 7;
    assert_int_equal(xs_time_parse_any("/Date(x)/", &t), XS_EPARSE);
    assert_int_equal(xs_time_parse_any("/", &t), XS_EPARSE);
    assert_int_equal(xs_time_parse_any("", &t), XS_EPARSE);
    assert_int_equal(xs_time_parse_any("yesterday", &t), XS_EPARSE);
    assert_int_equal(xs_time_parse_any("2019-02-29", &t), XS_ERANGE);
    assert_int_equal(xs_time_parse_any("/Date(253402300800000)/", &t), XS_ERANGE);
    assert_time(t, 7);
    assert_int_equal(xs_time_parse_any(NULL, &t), XS_EINVAL);
    assert_int_equal(xs_time_parse_any("/Date(1)/", NULL), XS_EINVAL);
    assert_int_equal(xs_time_parse_any("2019-11-14", NULL), XS_EINVAL);
}

struct format_case {
    int64_t t;
    const char *iso;
    const char *seconds;
    const char *date;
    const char *xero;
};

static const struct format_case format_cases[] = {
    {T_XERO, "2019-11-14T18:10:38.314Z", "2019-11-14T18:10:38", "2019-11-14",
     "/Date(1573755038314+0000)/"},
    {0, "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00", "1970-01-01", "/Date(0+0000)/"},
    {-1, "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59", "1969-12-31", "/Date(-1+0000)/"},
    {-DAY_MS, "1969-12-31T00:00:00.000Z", "1969-12-31T00:00:00", "1969-12-31",
     "/Date(-86400000+0000)/"},
    {-DAY_MS - 1, "1969-12-30T23:59:59.999Z", "1969-12-30T23:59:59", "1969-12-30",
     "/Date(-86400001+0000)/"},
    {T_MIN, "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00", "0001-01-01",
     "/Date(-62135596800000+0000)/"},
    {T_MAX, "9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59", "9999-12-31",
     "/Date(253402300799999+0000)/"},
    {INT64_C(951782400000), "2000-02-29T00:00:00.000Z", "2000-02-29T00:00:00", "2000-02-29",
     "/Date(951782400000+0000)/"},
    {INT64_C(1709251199999), "2024-02-29T23:59:59.999Z", "2024-02-29T23:59:59", "2024-02-29",
     "/Date(1709251199999+0000)/"},
    {INT64_C(-2203891200001), "1900-02-28T23:59:59.999Z", "1900-02-28T23:59:59", "1900-02-28",
     "/Date(-2203891200001+0000)/"},
};

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        const struct format_case *c = &format_cases[i];
        char iso[XS_TIME_ISO_MAX];
        char xero[XS_TIME_XERO_MAX];
        xs_time_format_iso(c->t, iso);
        assert_string_equal(iso, c->iso);
        xs_time_format_iso_seconds(c->t, iso);
        assert_string_equal(iso, c->seconds);
        xs_time_format_date(c->t, iso);
        assert_string_equal(iso, c->date);
        xs_time_format_xero(c->t, xero);
        assert_string_equal(xero, c->xero);
    }
    /* The widest values still fit the buffers. */
    char xero[XS_TIME_XERO_MAX];
    xs_time_format_xero(INT64_MIN, xero);
    assert_string_equal(xero, "/Date(-9223372036854775808+0000)/");
    char iso[XS_TIME_ISO_MAX];
    xs_time_format_iso(INT64_MIN, iso);
    assert_true(strlen(iso) < XS_TIME_ISO_MAX);
    xs_time_format_iso(INT64_MAX, iso);
    assert_true(strlen(iso) < XS_TIME_ISO_MAX);
}

/* An independent calendar: a proleptic Gregorian day counter advanced one day at a time. */
static bool ref_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int ref_days_in_month(int y, int m)
{
    switch (m) {
    case 2:
        return ref_leap(y) ? 29 : 28;
    case 4:
    case 6:
    case 9:
    case 11:
        return 30;
    default:
        return 31;
    }
}

/* test_every_day walks every day from 0001-01-01 to 9999-12-31, checking that each date
 * parses to the next multiple of a day and formats back, and that the day after the last of
 * each month (Feb 29 in common years among them) is refused. */
static void test_every_day(void **state)
{
    (void)state;
    int64_t t = T_MIN;
    int leap_days = 0;
    for (int y = 1; y <= 9999; y++) {
        for (int m = 1; m <= 12; m++) {
            int dim = ref_days_in_month(y, m);
            for (int d = 1; d <= dim; d++) {
                char text[40];
                char out[XS_TIME_ISO_MAX];
                snprintf(text, sizeof(text), "%04d-%02d-%02d", y, m, d);
                xs_time got = 0;
                xs_err err = xs_time_parse_iso(text, &got);
                if (err != XS_OK || got != t) {
                    fail_msg("%s gave %d/%lld, want %lld", text, err, (long long)got, (long long)t);
                }
                xs_time_format_date(t, out);
                if (strcmp(out, text) != 0) {
                    fail_msg("%lld formatted as %s, want %s", (long long)t, out, text);
                }
                leap_days += m == 2 && d == 29;
                t += DAY_MS;
            }
            char bad[40];
            xs_time got = 4242;
            snprintf(bad, sizeof(bad), "%04d-%02d-%02d", y, m, dim + 1);
            if (xs_time_parse_iso(bad, &got) != XS_ERANGE || got != 4242) {
                fail_msg("%s was not refused", bad);
            }
        }
    }
    assert_time(t, T_MAX + 1);
    /* 9999 years: 2424 leap years (a quarter, less centuries, plus every 400th). */
    assert_int_equal(leap_days, 2424);
}

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

static void test_round_trips(void **state)
{
    (void)state;
    uint64_t seed = 1573755038314;
    uint64_t span = (uint64_t)(T_MAX - T_MIN) + 1;
    for (int i = 0; i < 200000; i++) {
        int64_t t;
        uint64_t r = next_rand(&seed);
        switch (i % 4) {
        case 0:
            t = T_MIN + (int64_t)(r % span);
            break;
        case 1: /* near the epoch, both sides */
            t = (int64_t)(r % (2 * 100 * DAY_MS)) - 100 * DAY_MS;
            break;
        case 2: /* near the ends */
            t = (r & 1) ? T_MIN + (int64_t)(r % (1000 * DAY_MS))
                        : T_MAX - (int64_t)(r % (1000 * DAY_MS));
            break;
        default: /* whole seconds in Xero's era */
            t = INT64_C(946684800000) + (int64_t)(r % (50 * 366 * DAY_MS)) / 1000 * 1000;
            break;
        }
        char iso[XS_TIME_ISO_MAX];
        char xero[XS_TIME_XERO_MAX];
        xs_time back = 0;

        xs_time_format_iso(t, iso);
        assert_int_equal(strlen(iso), 24);
        assert_int_equal(xs_time_parse_iso(iso, &back), XS_OK);
        assert_time(back, t);
        assert_int_equal(xs_time_parse_any(iso, &back), XS_OK);
        assert_time(back, t);

        xs_time_format_xero(t, xero);
        assert_int_equal(xs_time_parse_xero(xero, &back), XS_OK);
        assert_time(back, t);
        assert_int_equal(xs_time_parse_any(xero, &back), XS_OK);
        assert_time(back, t);

        xs_time_format_iso_seconds(t, iso);
        assert_int_equal(strlen(iso), 19);
        assert_int_equal(xs_time_parse_iso(iso, &back), XS_OK);
        assert_time(back, t - floor_mod(t, 1000));

        xs_time_format_date(t, iso);
        assert_int_equal(strlen(iso), 10);
        assert_int_equal(xs_time_parse_iso(iso, &back), XS_OK);
        assert_time(back, t - floor_mod(t, DAY_MS));

        /* The same instant written with an offset parses to the same value. */
        int64_t off_min = (int64_t)(r >> 50) % (14 * 60 + 1) * ((r >> 49) & 1 ? 1 : -1);
        int64_t local = t + off_min * 60000;
        if (local >= T_MIN && local <= T_MAX) {
            char with_off[48];
            char sign = off_min < 0 ? '-' : '+';
            int64_t a = off_min < 0 ? -off_min : off_min;
            xs_time_format_iso(local, iso);
            iso[23] = '\0'; /* drop the Z */
            snprintf(with_off, sizeof(with_off), "%s%c%02d:%02d", iso, sign, (int)(a / 60),
                     (int)(a % 60));
            assert_int_equal(xs_time_parse_iso(with_off, &back), XS_OK);
            assert_time(back, t);
        }
    }
}

static void test_clocks(void **state)
{
    (void)state;
    xs_time now = xs_clock_now();
    int64_t sys = (int64_t)time(NULL) * 1000;
    assert_true(now > INT64_C(1577836800000)); /* after 2020-01-01 */
    assert_true(now - sys > -2000 && now - sys < 2000);

    int64_t m0 = xs_clock_mono_ms(), u0 = xs_clock_mono_us();
    xs_clock_sleep_ms(30);
    int64_t m1 = xs_clock_mono_ms(), u1 = xs_clock_mono_us();
    assert_true(m1 - m0 >= 30);
    assert_true(m1 - m0 < 5000);
    /* The same clock in microseconds. */
    assert_true(u1 - u0 >= 30000);
    assert_true(u1 / 1000 - m1 >= -1 && u1 / 1000 - m1 <= 1000);
    int64_t prev = m1;
    for (int i = 0; i < 1000; i++) {
        int64_t m = xs_clock_mono_ms();
        assert_true(m >= prev);
        prev = m;
    }

    /* Zero and negative durations return at once. */
    int64_t m2 = xs_clock_mono_ms();
    xs_clock_sleep_ms(0);
    xs_clock_sleep_ms(-1000);
    xs_clock_sleep_ms(INT64_MIN);
    assert_true(xs_clock_mono_ms() - m2 < 500);
}

/* xs_time_split and xs_time_days_from_civil are each other's inverse, before 1970 too. */
static void test_split_and_days(void **state)
{
    (void)state;
    assert_int_equal(xs_time_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(xs_time_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(xs_time_days_from_civil(1969, 12, 31), -1);
    xs_time_fields f;
    xs_time_split(INT64_C(1573755038314), &f);
    assert_int_equal(f.year, 2019);
    assert_int_equal(f.month, 11);
    assert_int_equal(f.day, 14);
    assert_int_equal(f.hour, 18);
    assert_int_equal(f.min, 10);
    assert_int_equal(f.sec, 38);
    assert_int_equal(f.ms, 314);
    xs_time_split(-1, &f);
    assert_int_equal(f.year, 1969);
    assert_int_equal(f.month, 12);
    assert_int_equal(f.day, 31);
    assert_int_equal(f.hour, 23);
    assert_int_equal(f.ms, 999);
    for (int64_t d = -800000; d <= 800000; d += 997) {
        xs_time_split(d * INT64_C(86400000), &f);
        assert_int_equal(xs_time_days_from_civil(f.year, f.month, f.day), d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_xero),  cmocka_unit_test(test_parse_iso),
        cmocka_unit_test(test_parse_any),   cmocka_unit_test(test_format),
        cmocka_unit_test(test_every_day),   cmocka_unit_test(test_split_and_days),
        cmocka_unit_test(test_round_trips), cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
