/* money_test.c: tables, boundaries and a randomised cross-check of money.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "xs/money.h"

__extension__ typedef __int128 i128;

static xs_money M(int64_t units)
{
    xs_money m = {units};
    return m;
}

/* The extremes, written out so the tests do not depend on money.c to produce them. */
#define MAX_TEXT "9223372036854.775807"
#define MIN_TEXT "-9223372036854.775808"

/* assert_units fails unless m holds exactly `units`. */
#define assert_units(m, want_units) assert_true((m).units == (int64_t)(want_units))

static void test_zero_and_from_int(void **state)
{
    (void)state;
    assert_units(xs_money_zero(), 0);
    xs_money m = M(77);
    assert_int_equal(xs_money_from_int(0, &m), XS_OK);
    assert_units(m, 0);
    assert_int_equal(xs_money_from_int(-12, &m), XS_OK);
    assert_units(m, -12000000);
    assert_int_equal(xs_money_from_int(INT64_C(9223372036854), &m), XS_OK);
    assert_units(m, INT64_C(9223372036854000000));
    assert_int_equal(xs_money_from_int(INT64_C(-9223372036854), &m), XS_OK);
    assert_units(m, INT64_C(-9223372036854000000));

    m = M(77);
    assert_int_equal(xs_money_from_int(INT64_C(9223372036855), &m), XS_ERANGE);
    assert_int_equal(xs_money_from_int(INT64_C(-9223372036855), &m), XS_ERANGE);
    assert_int_equal(xs_money_from_int(INT64_MAX, &m), XS_ERANGE);
    assert_int_equal(xs_money_from_int(INT64_MIN, &m), XS_ERANGE);
    assert_units(m, 77);
    assert_int_equal(xs_money_from_int(1, NULL), XS_EINVAL);
}

struct parse_case {
    const char *text;
    xs_err err;
    int64_t units;
};

static const struct parse_case parse_cases[] = {
    {"0", XS_OK, 0},
    {"-0", XS_OK, 0},
    {"-0.00", XS_OK, 0},
    {"0.000000", XS_OK, 0},
    {"12", XS_OK, 12000000},
    {"-0.5", XS_OK, -500000},
    {"1234.5678", XS_OK, 1234567800},
    {"0.000001", XS_OK, 1},
    {"-0.000001", XS_OK, -1},
    {"12.50", XS_OK, 12500000},
    {"007.50", XS_OK, 7500000},
    {"1.0000000", XS_OK, 1000000},
    {"1.000001000000000000000000000000", XS_OK, 1000001},
    {"0000000000000000000000000001", XS_OK, 1000000},
    {MAX_TEXT, XS_OK, INT64_MAX},
    {MIN_TEXT, XS_OK, INT64_MIN},
    {"9223372036854", XS_OK, INT64_C(9223372036854000000)},
    {"-9223372036854.775807", XS_OK, -INT64_MAX},
    {"9999999999999", XS_ERANGE, 0},
    {"9223372036854.775808", XS_ERANGE, 0},
    {"-9223372036854.775809", XS_ERANGE, 0},
    {"9223372036855", XS_ERANGE, 0},
    {"10000000000000", XS_ERANGE, 0},
    /* These would wrap a 64-bit accumulator around to small values. */
    {"18446744073710", XS_ERANGE, 0},
    {"-18446744073710.5", XS_ERANGE, 0},
    {"76480200929599801", XS_ERANGE, 0},
    {"99999999999999999999999999999999999999999", XS_ERANGE, 0},
    {"-99999999999999999999999999999999999999999", XS_ERANGE, 0},
    {"1.0000001", XS_ERANGE, 0},
    {"1.1234567", XS_ERANGE, 0},
    {"0.0000000000001", XS_ERANGE, 0},
    {"", XS_EPARSE, 0},
    {"-", XS_EPARSE, 0},
    {"+1", XS_EPARSE, 0},
    {"+0", XS_EPARSE, 0},
    {".5", XS_EPARSE, 0},
    {"-.5", XS_EPARSE, 0},
    {"1.", XS_EPARSE, 0},
    {"-1.", XS_EPARSE, 0},
    {".", XS_EPARSE, 0},
    {"1e3", XS_EPARSE, 0},
    {"1E3", XS_EPARSE, 0},
    {"1.5e-3", XS_EPARSE, 0},
    {" 1", XS_EPARSE, 0},
    {"1 ", XS_EPARSE, 0},
    {"\t1", XS_EPARSE, 0},
    {"1\n", XS_EPARSE, 0},
    {"- 1", XS_EPARSE, 0},
    {"1,000", XS_EPARSE, 0},
    {"1,5", XS_EPARSE, 0},
    {"1_000", XS_EPARSE, 0},
    {"1.2.3", XS_EPARSE, 0},
    {"1..2", XS_EPARSE, 0},
    {"1.-2", XS_EPARSE, 0},
    {"--1", XS_EPARSE, 0},
    {"-+1", XS_EPARSE, 0},
    {"1-", XS_EPARSE, 0},
    {"0x10", XS_EPARSE, 0},
    {"NaN", XS_EPARSE, 0},
    {"inf", XS_EPARSE, 0},
    {"-Infinity", XS_EPARSE, 0},
    {"\xd9\xa1", XS_EPARSE, 0},
    {"$1", XS_EPARSE, 0},
    {"1$", XS_EPARSE, 0},
    {"(1)", XS_EPARSE, 0},
    /* Malformed wins over too long: the form is checked first. */
    {"99999999999999999999999x", XS_EPARSE, 0},
    {"1.12345678x", XS_EPARSE, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        xs_money m = M(INT64_C(424242));
        xs_err err = xs_money_parse(c->text, &m);
        if (err != c->err) {
            fail_msg("parse \"%s\" gave %s, want %s", c->text, xs_err_name(err),
                     xs_err_name(c->err));
        }
        if (err == XS_OK) {
            if (m.units != c->units) {
                fail_msg("parse \"%s\" gave %lld units, want %lld", c->text, (long long)m.units,
                         (long long)c->units);
            }
        } else {
            /* Nothing is written on failure. */
            assert_units(m, 424242);
        }
        /* xs_money_parse_n on the same bytes agrees. */
        xs_money n = M(INT64_C(424242));
        assert_int_equal(xs_money_parse_n(c->text, strlen(c->text), &n), c->err);
        assert_units(n, m.units);
    }
}

static void test_parse_n(void **state)
{
    (void)state;
    xs_money m = M(5);
    assert_int_equal(xs_money_parse_n("12.345abc", 6, &m), XS_OK);
    assert_units(m, 12345000);
    assert_int_equal(xs_money_parse_n("-7", 1, &m), XS_EPARSE);
    assert_int_equal(xs_money_parse_n("12.", 3, &m), XS_EPARSE);
    assert_int_equal(xs_money_parse_n("12.5", 0, &m), XS_EPARSE);
    /* An embedded NUL inside len is a bad character, not an end. */
    assert_int_equal(xs_money_parse_n("1\0", 2, &m), XS_EPARSE);
    assert_int_equal(xs_money_parse_n("1.5\0"
                                      "0",
                                      5, &m),
                     XS_EPARSE);
    assert_units(m, 12345000);
    /* A number inside a longer JSON text. */
    const char *json = "{\"Total\":1499.95,\"x\":1}";
    assert_int_equal(xs_money_parse_n(json + 9, 7, &m), XS_OK);
    assert_units(m, 1499950000);

    assert_int_equal(xs_money_parse_n(NULL, 0, &m), XS_EINVAL);
    assert_int_equal(xs_money_parse_n("1", 1, NULL), XS_EINVAL);
    assert_int_equal(xs_money_parse(NULL, &m), XS_EINVAL);
    assert_int_equal(xs_money_parse("1", NULL), XS_EINVAL);
}

struct format_case {
    int64_t units;
    int places;
    xs_err err;
    const char *text;
};

static const struct format_case format_cases[] = {
    {12500000, 2, XS_OK, "12.50"},
    {12500000, 1, XS_OK, "12.5"},
    {12500000, 6, XS_OK, "12.500000"},
    {12500000, 0, XS_ERANGE, NULL},
    {12000000, 0, XS_OK, "12"},
    {-500000, 1, XS_OK, "-0.5"},
    {-500000, 3, XS_OK, "-0.500"},
    {-500000, 0, XS_ERANGE, NULL},
    {0, 0, XS_OK, "0"},
    {0, 2, XS_OK, "0.00"},
    {0, 6, XS_OK, "0.000000"},
    {1, 6, XS_OK, "0.000001"},
    {1, 5, XS_ERANGE, NULL},
    {-1, 6, XS_OK, "-0.000001"},
    {-10, 5, XS_OK, "-0.00001"},
    {1234567800, 4, XS_OK, "1234.5678"},
    {1234567800, 3, XS_ERANGE, NULL},
    {INT64_MAX, 6, XS_OK, MAX_TEXT},
    {INT64_MAX, 5, XS_ERANGE, NULL},
    {INT64_MIN, 6, XS_OK, MIN_TEXT},
    {INT64_MIN, 0, XS_ERANGE, NULL},
    {INT64_C(9223372036854000000), 0, XS_OK, "9223372036854"},
    {INT64_C(-9223372036854000000), 2, XS_OK, "-9223372036854.00"},
    {100, 6, XS_OK, "0.000100"},
    {100, 4, XS_OK, "0.0001"},
    {5, -1, XS_EINVAL, NULL},
    {5, 7, XS_EINVAL, NULL},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_cases) / sizeof(format_cases[0]); i++) {
        const struct format_case *c = &format_cases[i];
        char buf[XS_MONEY_TEXT_MAX];
        memset(buf, 'z', sizeof(buf));
        buf[sizeof(buf) - 1] = '\0';
        xs_err err = xs_money_format(M(c->units), c->places, buf);
        if (err != c->err) {
            fail_msg("format %lld/%d gave %d, want %d", (long long)c->units, c->places, err,
                     c->err);
        }
        if (err == XS_OK) {
            assert_string_equal(buf, c->text);
        } else {
            assert_int_equal(buf[0], 'z');
        }
    }
    assert_int_equal(xs_money_format(M(1), 6, NULL), XS_EINVAL);
}

struct format_min_case {
    int64_t units;
    int min_places;
    const char *text;
};

static const struct format_min_case format_min_cases[] = {
    {12500000, 2, "12.50"},
    {1234500, 2, "1.2345"},
    {3000000, 0, "3"},
    {3000000, 2, "3.00"},
    {3100000, 0, "3.1"},
    {3100000, 6, "3.100000"},
    {0, 0, "0"},
    {0, 2, "0.00"},
    {-1, 0, "-0.000001"},
    {-1, 2, "-0.000001"},
    {-2500000, 0, "-2.5"},
    {-2500000, 4, "-2.5000"},
    {INT64_MAX, 0, MAX_TEXT},
    {INT64_MIN, 2, MIN_TEXT},
    {INT64_C(-9223372036854000000), 0, "-9223372036854"},
    /* min_places outside 0..6 is clamped. */
    {3000000, -4, "3"},
    {3000000, 9, "3.000000"},
};

static void test_format_min_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(format_min_cases) / sizeof(format_min_cases[0]); i++) {
        const struct format_min_case *c = &format_min_cases[i];
        char buf[XS_MONEY_TEXT_MAX];
        xs_money_format_min(M(c->units), c->min_places, buf);
        assert_string_equal(buf, c->text);
    }
    xs_money_format_min(M(1), 2, NULL); /* no-op, no crash */
}

static void test_add_sub(void **state)
{
    (void)state;
    xs_money r = M(99);
    assert_int_equal(xs_money_add(M(1500000), M(-2250000), &r), XS_OK);
    assert_units(r, -750000);
    assert_int_equal(xs_money_sub(M(1500000), M(-2250000), &r), XS_OK);
    assert_units(r, 3750000);
    assert_int_equal(xs_money_add(M(INT64_MAX - 1), M(1), &r), XS_OK);
    assert_units(r, INT64_MAX);
    assert_int_equal(xs_money_add(M(INT64_MIN), M(INT64_MAX), &r), XS_OK);
    assert_units(r, -1);
    assert_int_equal(xs_money_sub(M(-1), M(INT64_MAX), &r), XS_OK);
    assert_units(r, INT64_MIN);

    r = M(99);
    assert_int_equal(xs_money_add(M(INT64_MAX), M(1), &r), XS_ERANGE);
    assert_int_equal(xs_money_add(M(INT64_MIN), M(-1), &r), XS_ERANGE);
    assert_int_equal(xs_money_add(M(INT64_MAX), M(INT64_MAX), &r), XS_ERANGE);
    assert_int_equal(xs_money_add(M(INT64_MIN), M(INT64_MIN), &r), XS_ERANGE);
    assert_int_equal(xs_money_sub(M(INT64_MIN), M(1), &r), XS_ERANGE);
    assert_int_equal(xs_money_sub(M(0), M(INT64_MIN), &r), XS_ERANGE);
    assert_int_equal(xs_money_sub(M(INT64_MAX), M(-1), &r), XS_ERANGE);
    assert_units(r, 99);
    assert_int_equal(xs_money_add(M(1), M(1), NULL), XS_EINVAL);
    assert_int_equal(xs_money_sub(M(1), M(1), NULL), XS_EINVAL);
}

struct round_case {
    const char *in;
    int places;
    xs_round mode;
    const char *out; /* NULL: XS_ERANGE */
};

#define UP   XS_ROUND_HALF_UP
#define EVEN XS_ROUND_HALF_EVEN
#define DOWN XS_ROUND_DOWN

static const struct round_case round_cases[] = {
    /* Half away from zero. */
    {"2.345", 2, UP, "2.35"},
    {"2.355", 2, UP, "2.36"},
    {"2.344", 2, UP, "2.34"},
    {"2.346", 2, UP, "2.35"},
    {"2.3449999", 2, UP, NULL}, /* 7 places: not an xs_money (checked by parse) */
    {"2.344999", 2, UP, "2.34"},
    {"-2.345", 2, UP, "-2.35"},
    {"-2.355", 2, UP, "-2.36"},
    {"-2.344", 2, UP, "-2.34"},
    {"-2.346", 2, UP, "-2.35"},
    {"0.005", 2, UP, "0.01"},
    {"-0.005", 2, UP, "-0.01"},
    {"0.004999", 2, UP, "0"},
    {"-0.005001", 2, UP, "-0.01"},
    {"2.5", 0, UP, "3"},
    {"3.5", 0, UP, "4"},
    {"-2.5", 0, UP, "-3"},
    {"-3.5", 0, UP, "-4"},
    {"0.5", 0, UP, "1"},
    {"-0.5", 0, UP, "-1"},
    {"0.499999", 0, UP, "0"},
    {"0.0000005", 6, UP, NULL},
    {"0.000005", 5, UP, "0.00001"},
    {"0.000004", 5, UP, "0"},
    {"1.234567", 6, UP, "1.234567"},
    {"2.340", 2, UP, "2.34"},
    /* Half to even. */
    {"2.345", 2, EVEN, "2.34"},
    {"2.355", 2, EVEN, "2.36"},
    {"2.344", 2, EVEN, "2.34"},
    {"2.346", 2, EVEN, "2.35"},
    {"-2.345", 2, EVEN, "-2.34"},
    {"-2.355", 2, EVEN, "-2.36"},
    {"-2.346", 2, EVEN, "-2.35"},
    {"0.005", 2, EVEN, "0"},
    {"-0.005", 2, EVEN, "0"},
    {"0.015", 2, EVEN, "0.02"},
    {"-0.015", 2, EVEN, "-0.02"},
    {"0.005001", 2, EVEN, "0.01"},
    {"-0.005001", 2, EVEN, "-0.01"},
    {"2.5", 0, EVEN, "2"},
    {"3.5", 0, EVEN, "4"},
    {"-2.5", 0, EVEN, "-2"},
    {"-3.5", 0, EVEN, "-4"},
    {"0.5", 0, EVEN, "0"},
    {"1.5", 0, EVEN, "2"},
    {"0.000015", 5, EVEN, "0.00002"},
    {"0.000025", 5, EVEN, "0.00002"},
    {"1.234567", 6, EVEN, "1.234567"},
    /* Toward zero. */
    {"2.349", 2, DOWN, "2.34"},
    {"2.345", 2, DOWN, "2.34"},
    {"-2.349", 2, DOWN, "-2.34"},
    {"0.009", 2, DOWN, "0"},
    {"-0.009", 2, DOWN, "0"},
    {"2.999999", 0, DOWN, "2"},
    {"-2.999999", 0, DOWN, "-2"},
    {"2.340", 2, DOWN, "2.34"},
    {"7", 0, DOWN, "7"},
    /* The ends of the range. */
    {MAX_TEXT, 0, UP, NULL},
    {MAX_TEXT, 0, EVEN, NULL},
    {MAX_TEXT, 0, DOWN, "9223372036854"},
    {MAX_TEXT, 2, UP, NULL},
    {MAX_TEXT, 2, DOWN, "9223372036854.77"},
    {MAX_TEXT, 5, UP, NULL},
    {MAX_TEXT, 5, EVEN, NULL},
    {MAX_TEXT, 6, UP, MAX_TEXT},
    {MIN_TEXT, 2, UP, NULL},
    {MIN_TEXT, 2, EVEN, NULL},
    {MIN_TEXT, 2, DOWN, "-9223372036854.77"},
    {MIN_TEXT, 5, EVEN, NULL},
    {MIN_TEXT, 5, DOWN, "-9223372036854.77580"},
    {"9223372036854.774999", 2, UP, "9223372036854.77"},
    {"-9223372036854.774999", 2, EVEN, "-9223372036854.77"},
};

static void test_round_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(round_cases) / sizeof(round_cases[0]); i++) {
        const struct round_case *c = &round_cases[i];
        xs_money in;
        xs_err perr = xs_money_parse(c->in, &in);
        if (perr != XS_OK) {
            /* Cases with 7 places are there to show they never reach rounding. */
            assert_int_equal(perr, XS_ERANGE);
            assert_null(c->out);
            continue;
        }
        xs_money got = M(-42);
        xs_err err = xs_money_round(in, c->places, c->mode, &got);
        if (c->out == NULL) {
            if (err != XS_ERANGE) {
                fail_msg("round %s to %d (mode %d) gave %d, want XS_ERANGE", c->in, c->places,
                         c->mode, err);
            }
            assert_units(got, -42);
            continue;
        }
        if (err != XS_OK) {
            fail_msg("round %s to %d (mode %d) failed with %d", c->in, c->places, c->mode, err);
        }
        char buf[XS_MONEY_TEXT_MAX];
        xs_money_format_min(got, 0, buf);
        xs_money want;
        assert_int_equal(xs_money_parse(c->out, &want), XS_OK);
        if (got.units != want.units) {
            fail_msg("round %s to %d (mode %d) gave %s, want %s", c->in, c->places, c->mode, buf,
                     c->out);
        }
        assert_true(xs_money_places(got) <= c->places);
    }
}

static void test_round_errors(void **state)
{
    (void)state;
    xs_money r = M(3);
    assert_int_equal(xs_money_round(M(1), -1, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_round(M(1), 7, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_round(M(1), 2, (xs_round)3, &r), XS_EINVAL);
    assert_int_equal(xs_money_round(M(1), 2, (xs_round)-1, &r), XS_EINVAL);
    assert_int_equal(xs_money_round(M(1), 2, UP, NULL), XS_EINVAL);
    assert_units(r, 3);
}

struct arith_case {
    const char *a;
    const char *b;
    int places;
    xs_round mode;
    const char *out; /* NULL: XS_ERANGE */
};

static const struct arith_case mul_cases[] = {
    /* Quantity (4 places) x unit amount (4 places), line amount to 2 places. */
    {"3.3333", "1.2345", 2, UP, "4.11"},
    {"2.5", "0.0333", 2, UP, "0.08"},
    {"1.5", "19.99", 2, UP, "29.99"},
    {"1.5", "19.99", 2, EVEN, "29.98"},
    {"1.5", "19.99", 2, DOWN, "29.98"},
    {"-1.5", "19.99", 2, UP, "-29.99"},
    {"-1.5", "19.99", 2, EVEN, "-29.98"},
    {"-1.5", "19.99", 2, DOWN, "-29.98"},
    {"1.5", "-19.99", 2, UP, "-29.99"},
    {"-1.5", "-19.99", 2, UP, "29.99"},
    {"2.5", "19.99", 2, UP, "49.98"},
    {"0.3333", "3", 2, UP, "1"},
    {"9999.9999", "9999.9999", 2, UP, "99999998"},
    {"9999.9999", "9999.9999", 4, UP, "99999998.0000"},
    {"9999.9999", "9999.9999", 6, UP, "99999998.000000"},
    {"1234.5678", "8765.4321", 2, UP, "10821520.22"},
    {"1234.5678", "8765.4321", 4, UP, "10821520.2237"},
    {"1234.5678", "8765.4321", 6, DOWN, "10821520.223746"},
    {"1234.5678", "8765.4321", 6, UP, "10821520.223746"},
    {"0.0001", "0.0001", 2, UP, "0"},
    {"0.0001", "0.0001", 6, UP, "0"},
    {"0.001", "0.001", 6, UP, "0.000001"},
    {"0.0005", "0.001", 6, UP, "0.000001"},
    {"0.0005", "0.001", 6, EVEN, "0"},
    {"0.0015", "0.001", 6, EVEN, "0.000002"},
    {"0.0005", "0.001", 6, DOWN, "0"},
    {"-0.0005", "0.001", 6, UP, "-0.000001"},
    {"-0.0005", "0.001", 6, EVEN, "0"},
    {"0.000001", "0.000001", 6, UP, "0"},
    /* Tax: 15% of 33.33 = 4.9995. */
    {"33.33", "0.15", 2, UP, "5"},
    {"33.33", "0.15", 2, EVEN, "5"},
    {"33.33", "0.15", 2, DOWN, "4.99"},
    {"0", "9223372036854", 2, UP, "0"},
    {"1", MAX_TEXT, 6, UP, MAX_TEXT},
    {"1", MIN_TEXT, 6, UP, MIN_TEXT},
    {"-1", MAX_TEXT, 6, UP, "-9223372036854.775807"},
    {"3037000", "3037000", 0, UP, "9223369000000"},
    /* Overflow. */
    {"3037001", "3037001", 0, UP, NULL},
    {"9223372036854", "2", 2, UP, NULL},
    {"-1", MIN_TEXT, 6, UP, NULL},
    {MAX_TEXT, MAX_TEXT, 6, UP, NULL},
    {MIN_TEXT, MIN_TEXT, 6, DOWN, NULL},
    {MIN_TEXT, MAX_TEXT, 0, DOWN, NULL},
    {"1", MAX_TEXT, 0, UP, NULL},
    {"1", MAX_TEXT, 0, DOWN, "9223372036854"},
};

static const struct arith_case div_cases[] = {
    {"10", "3", 2, UP, "3.33"},
    {"10", "3", 2, EVEN, "3.33"},
    {"10", "3", 2, DOWN, "3.33"},
    {"2", "3", 2, UP, "0.67"},
    {"2", "3", 2, EVEN, "0.67"},
    {"2", "3", 2, DOWN, "0.66"},
    {"-2", "3", 2, UP, "-0.67"},
    {"-2", "3", 2, DOWN, "-0.66"},
    {"2", "-3", 2, UP, "-0.67"},
    {"2", "-3", 2, DOWN, "-0.66"},
    {"-2", "-3", 2, UP, "0.67"},
    {"1", "8", 2, UP, "0.13"},
    {"1", "8", 2, EVEN, "0.12"},
    {"1", "8", 2, DOWN, "0.12"},
    {"3", "8", 2, UP, "0.38"},
    {"3", "8", 2, EVEN, "0.38"},
    {"3", "8", 2, DOWN, "0.37"},
    {"-1", "8", 2, UP, "-0.13"},
    {"-1", "8", 2, EVEN, "-0.12"},
    {"1", "-8", 2, EVEN, "-0.12"},
    {"-1", "-8", 2, UP, "0.13"},
    {"1", "3", 6, UP, "0.333333"},
    {"2", "3", 6, UP, "0.666667"},
    {"2", "3", 6, DOWN, "0.666666"},
    {"1", "2", 0, UP, "1"},
    {"1", "2", 0, EVEN, "0"},
    {"3", "2", 0, EVEN, "2"},
    {"-1", "2", 0, UP, "-1"},
    {"0", "7", 2, UP, "0"},
    {"100", "1.15", 2, UP, "86.96"},
    {"0.000001", "2", 6, UP, "0.000001"},
    {"0.000001", "2", 6, EVEN, "0"},
    {"0.000003", "2", 6, EVEN, "0.000002"},
    {"1", "0.000001", 0, UP, "1000000"},
    {MAX_TEXT, "1", 6, UP, MAX_TEXT},
    {MIN_TEXT, "1", 6, UP, MIN_TEXT},
    {MAX_TEXT, MAX_TEXT, 6, UP, "1"},
    {MIN_TEXT, MIN_TEXT, 6, UP, "1"},
    {MAX_TEXT, MIN_TEXT, 6, UP, "-1"},
    {MAX_TEXT, MIN_TEXT, 6, DOWN, "-0.999999"},
    {"1", MAX_TEXT, 6, UP, "0"},
    {"9223372036854", "2", 0, UP, "4611686018427"},
    /* Overflow. */
    {"9223372036854", "0.5", 2, UP, NULL},
    {MIN_TEXT, "-1", 6, UP, NULL},
    {MAX_TEXT, "0.000001", 0, DOWN, NULL},
    {"10000000", "0.000001", 0, UP, NULL},
    {MAX_TEXT, "1", 0, UP, NULL},
};

static void run_arith(const struct arith_case *cases, size_t n, bool mul)
{
    for (size_t i = 0; i < n; i++) {
        const struct arith_case *c = &cases[i];
        xs_money a;
        xs_money b;
        assert_int_equal(xs_money_parse(c->a, &a), XS_OK);
        assert_int_equal(xs_money_parse(c->b, &b), XS_OK);
        xs_money got = M(-42);
        xs_err err = mul ? xs_money_mul(a, b, c->places, c->mode, &got)
                         : xs_money_div(a, b, c->places, c->mode, &got);
        const char *op = mul ? "x" : "/";
        if (c->out == NULL) {
            if (err != XS_ERANGE) {
                fail_msg("%s %s %s gave %d, want XS_ERANGE", c->a, op, c->b, err);
            }
            assert_units(got, -42);
            continue;
        }
        if (err != XS_OK) {
            fail_msg("%s %s %s to %d failed with %d", c->a, op, c->b, c->places, err);
        }
        char buf[XS_MONEY_TEXT_MAX];
        xs_money_format_min(got, 0, buf);
        xs_money want;
        assert_int_equal(xs_money_parse(c->out, &want), XS_OK);
        if (got.units != want.units) {
            fail_msg("%s %s %s to %d (mode %d) gave %s, want %s", c->a, op, c->b, c->places,
                     c->mode, buf, c->out);
        }
        assert_true(xs_money_places(got) <= c->places);
    }
}

static void test_mul_table(void **state)
{
    (void)state;
    run_arith(mul_cases, sizeof(mul_cases) / sizeof(mul_cases[0]), true);
}

static void test_div_table(void **state)
{
    (void)state;
    run_arith(div_cases, sizeof(div_cases) / sizeof(div_cases[0]), false);
}

static void test_mul_div_errors(void **state)
{
    (void)state;
    xs_money r = M(3);
    assert_int_equal(xs_money_div(M(1), M(0), 2, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_div(M(0), M(0), 2, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_div(M(1), M(1), 7, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_div(M(1), M(1), -1, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_div(M(1), M(1), 2, (xs_round)9, &r), XS_EINVAL);
    assert_int_equal(xs_money_div(M(1), M(1), 2, UP, NULL), XS_EINVAL);
    assert_int_equal(xs_money_mul(M(1), M(1), 7, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_mul(M(1), M(1), -1, UP, &r), XS_EINVAL);
    assert_int_equal(xs_money_mul(M(1), M(1), 2, (xs_round)9, &r), XS_EINVAL);
    assert_int_equal(xs_money_mul(M(1), M(1), 2, UP, NULL), XS_EINVAL);
    assert_units(r, 3);
}

static void test_predicates(void **state)
{
    (void)state;
    assert_int_equal(xs_money_cmp(M(1), M(2)), -1);
    assert_int_equal(xs_money_cmp(M(2), M(1)), 1);
    assert_int_equal(xs_money_cmp(M(-5), M(-5)), 0);
    assert_int_equal(xs_money_cmp(M(INT64_MIN), M(INT64_MAX)), -1);
    assert_int_equal(xs_money_cmp(M(INT64_MAX), M(INT64_MIN)), 1);
    assert_int_equal(xs_money_cmp(M(-1), M(0)), -1);

    assert_true(xs_money_is_zero(M(0)));
    assert_false(xs_money_is_zero(M(1)));
    assert_false(xs_money_is_zero(M(-1)));
    assert_true(xs_money_is_negative(M(-1)));
    assert_true(xs_money_is_negative(M(INT64_MIN)));
    assert_false(xs_money_is_negative(M(0)));
    assert_false(xs_money_is_negative(M(1)));

    static const struct {
        int64_t units;
        int places;
    } pl[] = {
        {0, 0},         {1000000, 0},   {-7000000, 0}, {1, 6},
        {-1, 6},        {10, 5},        {100, 4},      {1000, 3},
        {10000, 2},     {100000, 1},    {12500000, 1}, {12340000, 2},
        {INT64_MAX, 6}, {INT64_MIN, 6}, {-100000, 1},  {INT64_C(9223372036854000000), 0},
    };
    for (size_t i = 0; i < sizeof(pl) / sizeof(pl[0]); i++) {
        assert_int_equal(xs_money_places(M(pl[i].units)), pl[i].places);
    }
}

/* A reference implementation, by a different route: floor division, then a choice between
 * the two neighbouring multiples of the step by comparing distances. */

static i128 floor_div(i128 n, i128 d)
{
    i128 q = n / d;
    if ((n % d != 0) && ((n < 0) != (d < 0))) {
        q -= 1;
    }
    return q;
}

/* ref_round returns n / d (d > 0) rounded to an integer with mode. */
static i128 ref_round(i128 n, i128 d, xs_round mode)
{
    i128 lo = floor_div(n, d);
    i128 hi = lo + 1;
    i128 below = n - lo * d; /* distance to lo, in units of 1/d */
    i128 above = hi * d - n;
    if (below == 0) {
        return lo;
    }
    switch (mode) {
    case XS_ROUND_DOWN:
        return n >= 0 ? lo : hi;
    case XS_ROUND_HALF_UP:
        if (below != above) {
            return below < above ? lo : hi;
        }
        return n >= 0 ? hi : lo;
    case XS_ROUND_HALF_EVEN:
        if (below != above) {
            return below < above ? lo : hi;
        }
        return (lo % 2 == 0) ? lo : hi;
    }
    fail_msg("bad mode");
    return 0;
}

static const i128 P10[] = {1,           10,           100,          1000,      10000,
                           100000,      1000000,      10000000,     100000000, 1000000000,
                           10000000000, 100000000000, 1000000000000};

/* ref_store turns steps of 10^-places into units, or reports overflow. */
static bool ref_store(i128 steps, int places, int64_t *units)
{
    i128 u = steps * P10[6 - places];
    if (u > INT64_MAX || u < INT64_MIN) {
        return false;
    }
    *units = (int64_t)u;
    return true;
}

static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* rand_money draws values of many shapes: full range, near the ends, small, few places. */
static xs_money rand_money(uint64_t *state)
{
    uint64_t r = next_rand(state);
    int64_t v = (int64_t)next_rand(state);
    switch (r % 8) {
    case 0:
        return M(v);
    case 1:
        return M(INT64_MAX - (int64_t)(r >> 40));
    case 2:
        return M(INT64_MIN + (int64_t)(r >> 40));
    case 3:
        return M(v % 1000);
    case 4:
        return M(v % INT64_C(100000000000) / 10000 * 10000); /* up to 100000, 2 places */
    case 5:
        return M(v % INT64_C(10000000000000)); /* up to 10^7, 6 places */
    case 6:
        return M(v % INT64_C(1000000000000) / 100 * 100); /* 4 places */
    default:
        return M(v % 100000000 / 1000000 * 1000000); /* whole numbers */
    }
}

static void test_random_cross_check(void **state)
{
    (void)state;
    uint64_t seed = 20191114;
    static const xs_round modes[] = {XS_ROUND_HALF_UP, XS_ROUND_HALF_EVEN, XS_ROUND_DOWN};
    for (int iter = 0; iter < 200000; iter++) {
        xs_money a = rand_money(&seed);
        xs_money b = rand_money(&seed);
        int places = (int)(next_rand(&seed) % 7);
        xs_round mode = modes[next_rand(&seed) % 3];
        char buf[XS_MONEY_TEXT_MAX];
        xs_money back;
        int64_t want;
        xs_money got;
        xs_err err;

        /* Text round trips, through both formatters. */
        assert_int_equal(xs_money_format(a, 6, buf), XS_OK);
        assert_true(strlen(buf) < XS_MONEY_TEXT_MAX);
        assert_int_equal(xs_money_parse(buf, &back), XS_OK);
        assert_units(back, a.units);
        xs_money_format_min(a, places, buf);
        assert_int_equal(xs_money_parse(buf, &back), XS_OK);
        assert_units(back, a.units);
        {
            const char *dot = strchr(buf, '.');
            int shown = dot == NULL ? 0 : (int)strlen(dot + 1);
            int need = xs_money_places(a);
            assert_int_equal(shown, need > places ? need : places);
        }
        err = xs_money_format(a, places, buf);
        if (xs_money_places(a) <= places) {
            assert_int_equal(err, XS_OK);
            assert_int_equal(xs_money_parse(buf, &back), XS_OK);
            assert_units(back, a.units);
        } else {
            assert_int_equal(err, XS_ERANGE);
        }

        /* Add and subtract. */
        i128 sum = (i128)a.units + b.units;
        err = xs_money_add(a, b, &got);
        if (sum > INT64_MAX || sum < INT64_MIN) {
            assert_int_equal(err, XS_ERANGE);
        } else {
            assert_int_equal(err, XS_OK);
            assert_true((i128)got.units == sum);
        }
        i128 diff = (i128)a.units - b.units;
        err = xs_money_sub(a, b, &got);
        if (diff > INT64_MAX || diff < INT64_MIN) {
            assert_int_equal(err, XS_ERANGE);
        } else {
            assert_int_equal(err, XS_OK);
            assert_true((i128)got.units == diff);
        }
        assert_int_equal(xs_money_cmp(a, b), a.units < b.units ? -1 : a.units > b.units);

        /* Round. */
        err = xs_money_round(a, places, mode, &got);
        if (ref_store(ref_round(a.units, P10[6 - places], mode), places, &want)) {
            assert_int_equal(err, XS_OK);
            assert_units(got, want);
        } else {
            assert_int_equal(err, XS_ERANGE);
        }

        /* Multiply: a x b has 12 places. */
        err = xs_money_mul(a, b, places, mode, &got);
        if (ref_store(ref_round((i128)a.units * b.units, P10[12 - places], mode), places, &want)) {
            assert_int_equal(err, XS_OK);
            assert_units(got, want);
        } else {
            assert_int_equal(err, XS_ERANGE);
        }

        /* Divide. */
        err = xs_money_div(a, b, places, mode, &got);
        if (b.units == 0) {
            assert_int_equal(err, XS_EINVAL);
            continue;
        }
        i128 num = (i128)a.units * P10[places];
        i128 den = b.units;
        if (den < 0) {
            num = -num;
            den = -den;
        }
        if (ref_store(ref_round(num, den, mode), places, &want)) {
            assert_int_equal(err, XS_OK);
            assert_units(got, want);
        } else {
            assert_int_equal(err, XS_ERANGE);
        }
    }
}

/* test_every_cent round-trips every amount from -100.00 to 100.00 in both text forms. */
static void test_every_cent(void **state)
{
    (void)state;
    for (int64_t cents = -10000; cents <= 10000; cents++) {
        xs_money m = M(cents * 10000);
        char buf[XS_MONEY_TEXT_MAX];
        char want[XS_MONEY_TEXT_MAX];
        int64_t mag = cents < 0 ? -cents : cents;
        /* Built without money.c: sign, whole part, two digits. */
        int n = 0;
        if (cents < 0) {
            want[n++] = '-';
        }
        int64_t whole = mag / 100;
        char tmp[24];
        int t = 0;
        do {
            tmp[t++] = (char)('0' + whole % 10);
            whole /= 10;
        } while (whole > 0);
        while (t > 0) {
            want[n++] = tmp[--t];
        }
        want[n++] = '.';
        want[n++] = (char)('0' + mag % 100 / 10);
        want[n++] = (char)('0' + mag % 10);
        want[n] = '\0';

        assert_int_equal(xs_money_format(m, 2, buf), XS_OK);
        assert_string_equal(buf, want);
        xs_money back;
        assert_int_equal(xs_money_parse(want, &back), XS_OK);
        assert_units(back, m.units);
        xs_money_format_min(m, 2, buf);
        assert_string_equal(buf, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_and_from_int),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_n),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_min_table),
        cmocka_unit_test(test_add_sub),
        cmocka_unit_test(test_round_table),
        cmocka_unit_test(test_round_errors),
        cmocka_unit_test(test_mul_table),
        cmocka_unit_test(test_div_table),
        cmocka_unit_test(test_mul_div_errors),
        cmocka_unit_test(test_predicates),
        cmocka_unit_test(test_random_cross_check),
        cmocka_unit_test(test_every_cent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
