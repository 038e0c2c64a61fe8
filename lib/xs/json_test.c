/* json_test.c: tests of the json module (json_*.c): exact numbers, refusals, positions, accessors,
 * equality, and that dumping writes exactly what jansson writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "xs/json.h"

/* parse_str parses a NUL-terminated text, failing the test when it is refused. */
static json_t *parse_str(const char *text)
{
    char err[XS_JSON_ERR_MAX];
    json_t *v = xs_json_parse(text, strlen(text), err);
    if (v == NULL) {
        fail_msg("parse of %s failed: %s", text, err);
    }
    return v;
}

/* assert_roundtrip_flags checks that text parses and dumps (with flags) to expect exactly. */
static void assert_roundtrip_flags(const char *text, int flags, const char *expect)
{
    json_t *v = parse_str(text);
    char *out = xs_json_dump(v, flags);
    assert_non_null(out);
    assert_string_equal(out, expect);
    free(out);
    json_decref(v);
}

/* assert_roundtrip checks that compact text survives parse and compact dump byte for byte. */
static void assert_roundtrip(const char *text)
{
    assert_roundtrip_flags(text, XS_JSON_COMPACT, text);
}

/* assert_refused_n checks that len bytes of text are refused with exactly the message
 * expect. */
static void assert_refused_n(const char *text, size_t len, const char *expect)
{
    char err[XS_JSON_ERR_MAX];
    memset(err, 'x', sizeof(err));
    json_t *v = xs_json_parse(text, len, err);
    if (v != NULL) {
        json_decref(v);
        fail_msg("%s was accepted", text);
    }
    assert_string_equal(err, expect);
}

/* assert_refused is assert_refused_n on a NUL-terminated text. */
static void assert_refused(const char *text, const char *expect)
{
    assert_refused_n(text, strlen(text), expect);
}

static void test_roundtrip_exact(void **state)
{
    (void)state;
    assert_roundtrip("{\"a\":12.50,\"b\":1e-7,\"c\":[0.1,2]}");
    assert_roundtrip("[1.0,1.00,1.000000000000000000001,-0.0,0.0,-0.5]");
    assert_roundtrip("[1E+10,1e-0,1E5,2.5e+300,-3.25E-300,1e999999999999999999999]");
    assert_roundtrip("[123456789012345678901234567890,-98765432109876543210987654321]");
    assert_roundtrip("[9223372036854775807,-9223372036854775808,0,-1,7]");
    assert_roundtrip("[9223372036854775808,-9223372036854775809]");
    assert_roundtrip("12.50");
    assert_roundtrip("1e3");
    assert_roundtrip("\"12.5\"");
    assert_roundtrip("{\"k\\\"1.5\":\"a\\\\\\\\\",\"n\":2.50,\"m\":\"x\\\\\\\"2.5\"}");
    assert_roundtrip(
        "{\"nested\":{\"deeper\":[{\"q\":0.0001}]},\"t\":true,\"f\":false,\"n\":null}");
    assert_roundtrip("[]");
    assert_roundtrip("{}");
    assert_roundtrip("\"\"");
    assert_roundtrip("null");
}

static void test_whitespace_and_escapes(void **state)
{
    (void)state;
    assert_roundtrip_flags(" { \"a\" : 1.50 ,\n\t\"b\" : [ 1 , 2e2 ] } ", 0,
                           "{\"a\":1.50,\"b\":[1,2e2]}");
    /* jansson writes non-ASCII as UTF-8 and drops needless escapes; numbers stay exact. */
    assert_roundtrip_flags("[\"\\u00e9\\ud83d\\ude00\",\"\\/\",1.10]", 0,
                           "[\"\xc3\xa9\xf0\x9f\x98\x80\",\"/\",1.10]");
    /* An escaped backslash before u0000 is not a NUL escape. */
    json_t *v = parse_str("[\"\\\\u0000\",\"\\u0001\"]");
    assert_string_equal(json_string_value(json_array_get(v, 0)), "\\u0000");
    assert_int_equal(json_string_length(json_array_get(v, 1)), 1);
    assert_false(xs_json_is_decimal(json_array_get(v, 0)));
    char *out = xs_json_dump(v, 0);
    assert_string_equal(out, "[\"\\\\u0000\",\"\\u0001\"]");
    free(out);
    json_decref(v);
}

static void test_numbers_in_strings(void **state)
{
    (void)state;
    json_t *v = parse_str("\"12.5\"");
    assert_true(json_is_string(v));
    assert_false(xs_json_is_decimal(v));
    assert_null(xs_json_decimal_text(v));
    assert_string_equal(json_string_value(v), "12.5");
    json_decref(v);

    v = parse_str("{\"a\":\"1.5 and \\\"2.5\\\" and \\\\\",\"b\":3.5,\"c\":\"-1e5\"}");
    const char *s;
    assert_int_equal(xs_json_get_str(v, "a", &s), XS_OK);
    assert_string_equal(s, "1.5 and \"2.5\" and \\");
    assert_int_equal(xs_json_get_str(v, "c", &s), XS_OK);
    assert_string_equal(s, "-1e5");
    assert_true(xs_json_is_decimal(json_object_get(v, "b")));
    assert_string_equal(xs_json_decimal_text(json_object_get(v, "b")), "3.5");
    json_decref(v);
}

static void test_decimal_kinds(void **state)
{
    (void)state;
    json_t *v = parse_str("[1.5,2,9223372036854775808,-9223372036854775808,-0,1e2]");
    assert_true(xs_json_is_decimal(json_array_get(v, 0)));
    assert_true(json_is_integer(json_array_get(v, 1)));
    assert_int_equal(json_integer_value(json_array_get(v, 1)), 2);
    /* Too big for int64: kept as a decimal, not lost. */
    assert_true(xs_json_is_decimal(json_array_get(v, 2)));
    assert_string_equal(xs_json_decimal_text(json_array_get(v, 2)), "9223372036854775808");
    assert_true(json_is_integer(json_array_get(v, 3)));
    assert_true(json_integer_value(json_array_get(v, 3)) == INT64_MIN);
    /* "-0" is an integer: it reads back as 0. */
    assert_true(json_is_integer(json_array_get(v, 4)));
    assert_int_equal(json_integer_value(json_array_get(v, 4)), 0);
    assert_true(xs_json_is_decimal(json_array_get(v, 5)));
    json_decref(v);
}

static void test_refused(void **state)
{
    (void)state;
    assert_refused("", "byte 0: unexpected token near end of file");
    assert_refused("{\"a\":1", "byte 6: '}' expected near end of file");
    assert_refused("{\"a\":1.5", "byte 8: '}' expected near end of file");
    assert_refused("[1.5,", "byte 5: ']' expected near end of file");
    assert_refused("{\"a\":1.5 \"b\":2}", "byte 12: '}' expected near '\"b\"'");
    assert_refused("{\"a\":[1.5,2.5e3]]", "byte 17: '}' expected near ']'");
    assert_refused("[\"abc", "byte 5: premature end of input near '\"abc'");
    assert_refused("[1,]", "byte 4: unexpected token near ']'");
    assert_refused("[1] x", "byte 5: end of file expected near 'x'");
    assert_refused("1.5 x", "byte 5: end of file expected near 'x'");
    assert_refused("[1.5 2.5]", "byte 8: ']' expected near '2.5'");
    assert_refused("{\"a\":1,\"a\":2}", "byte 10: duplicate object key near '\"a\"'");
    assert_refused("{\"x\":1.5,\"a\":1,\"a\":2}", "byte 18: duplicate object key near '\"a\"'");
    assert_refused("{1.5:2}", "byte 1: object key must be a string");
    assert_refused("{\"a\":1,2:3}", "byte 7: object key must be a string");
    assert_refused("\"a\\u0000\"", "byte 2: \\u0000 in a string is not allowed");
    assert_refused("{\"k\\u0000\":1}", "byte 3: \\u0000 in a string is not allowed");
    assert_refused_n("[1,\0]", 5, "byte 3: NUL byte in input");
    assert_refused_n("[\"a\0\"]", 6, "byte 3: NUL byte in input");
    assert_refused("[1,\"a\nb\"]", "byte 5: unexpected newline near '\"a'");
    assert_refused("\"\\x\"", "byte 3: invalid escape near '\"\\x'");
    assert_refused("nul", "byte 3: invalid token near 'nul'");
    assert_refused("[\"\xff\"]", "byte 2: unable to decode byte 0xff near '\"'");
    assert_refused("[NaN]", "byte 4: invalid token near 'NaN'");
}

static void test_invalid_numbers(void **state)
{
    (void)state;
    assert_refused("01", "byte 0: invalid number near '01'");
    assert_refused("[1.]", "byte 1: invalid number near '1.'");
    assert_refused("[.5]", "byte 1: invalid number near '.5'");
    assert_refused("-", "byte 0: invalid number near '-'");
    assert_refused("[-]", "byte 1: invalid number near '-'");
    assert_refused("+1", "byte 0: invalid number near '+1'");
    assert_refused("[1,-01]", "byte 3: invalid number near '-01'");
    assert_refused("1e", "byte 0: invalid number near '1e'");
    assert_refused("1e+", "byte 0: invalid number near '1e+'");
    assert_refused("1.2.3", "byte 0: invalid number near '1.2.3'");
    assert_refused("-Infinity", "byte 0: invalid number near '-'");
    assert_refused("{\"a\":00.5}", "byte 5: invalid number near '00.5'");
}

static void test_depth(void **state)
{
    (void)state;
    char buf[200];
    memset(buf, '[', 64);
    memset(buf + 64, ']', 64);
    json_t *v = xs_json_parse(buf, 128, NULL);
    assert_non_null(v);
    json_decref(v);

    memset(buf, '[', 65);
    memset(buf + 65, ']', 65);
    assert_refused_n(buf, 130, "byte 64: nesting deeper than 64");

    /* Objects count too; closing brackets free depth again. */
    char deep[600] = "";
    for (int i = 0; i < 64; i++) {
        strcat(deep, "{\"a\":");
    }
    strcat(deep, "1.5");
    for (int i = 0; i < 64; i++) {
        strcat(deep, "}");
    }
    json_t *o = parse_str(deep);
    json_decref(o);
    char wide[400] = "[";
    for (int i = 0; i < 70; i++) {
        strcat(wide, i == 0 ? "[]" : ",[]");
    }
    strcat(wide, "]");
    o = parse_str(wide);
    assert_int_equal(json_array_size(o), 70);
    json_decref(o);
    /* Brackets inside strings do not count. */
    char str[200] = "\"";
    memset(str + 1, '[', 100);
    strcpy(str + 101, "\"");
    o = parse_str(str);
    json_decref(o);
}

static void test_parse_args(void **state)
{
    (void)state;
    char err[XS_JSON_ERR_MAX];
    assert_null(xs_json_parse(NULL, 0, err));
    assert_string_equal(err, "byte 0: no input");
    assert_null(xs_json_parse("[1,", 3, NULL));
    /* len is respected: the text after it is not read. */
    json_t *v = xs_json_parse("[1.5]garbage", 5, err);
    assert_non_null(v);
    json_decref(v);
    v = xs_json_parse("1.25", 3, err);
    assert_non_null(v);
    assert_string_equal(xs_json_decimal_text(v), "1.2");
    json_decref(v);
}

static void test_dump_flags(void **state)
{
    (void)state;
    const char *text = "{\"b\":[1,2.50],\"a\":{},\"c\":\"x\"}";
    assert_roundtrip_flags(text, 0, text);
    assert_roundtrip_flags(text, XS_JSON_SORT_KEYS, "{\"a\":{},\"b\":[1,2.50],\"c\":\"x\"}");
    assert_roundtrip_flags(
        text, XS_JSON_SORT_KEYS | XS_JSON_PRETTY,
        "{\n  \"a\": {},\n  \"b\": [\n    1,\n    2.50\n  ],\n  \"c\": \"x\"\n}");
    assert_roundtrip_flags(
        text, XS_JSON_PRETTY,
        "{\n  \"b\": [\n    1,\n    2.50\n  ],\n  \"a\": {},\n  \"c\": \"x\"\n}");
    assert_null(xs_json_dump(NULL, 0));
}

static void test_dump_keys_and_fake_tags(void **state)
{
    (void)state;
    /* A key can never become a bare number, even when it holds a tag. */
    json_t *o = json_object();
    json_t *d = xs_json_decimal("1.5");
    char key[16];
    memcpy(key, "\0dec:2.5", 9);
    assert_int_equal(json_object_setn_new(o, key, 8, d), 0);
    char *out = xs_json_dump(o, 0);
    assert_string_equal(out, "{\"\\u0000dec:2.5\":1.5}");
    free(out);
    json_decref(o);

    /* A tagged string whose rest is not a number is not a decimal and stays a string. */
    json_t *fake = json_stringn("\0dec:abc", 8);
    assert_false(xs_json_is_decimal(fake));
    out = xs_json_dump(fake, 0);
    assert_string_equal(out, "\"\\u0000dec:abc\"");
    free(out);
    json_decref(fake);
    fake = json_stringn("\0dec:", 5);
    assert_false(xs_json_is_decimal(fake));
    json_decref(fake);
}

static void test_decimal_make(void **state)
{
    (void)state;
    static const char *good[] = {"0",        "-0",   "7",
                                 "12.50",    "-1e3", "1E+2",
                                 "0.000001", "1e-0", "123456789012345678901234567890"};
    static const char *bad[] = {"",   "01", "1.",  ".5",    "-",   "+1",  "1e",    "1e+",
                                " 1", "1 ", "0x1", "1.2.3", "NaN", "--1", "1e1.5", "١"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        json_t *v = xs_json_decimal(good[i]);
        assert_non_null(v);
        assert_true(xs_json_is_decimal(v));
        assert_string_equal(xs_json_decimal_text(v), good[i]);
        char *out = xs_json_dump(v, 0);
        assert_string_equal(out, good[i]);
        free(out);
        json_decref(v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(xs_json_decimal(bad[i]));
    }
    assert_null(xs_json_decimal(NULL));
    assert_false(xs_json_is_decimal(NULL));
    assert_null(xs_json_decimal_text(NULL));
    json_t *i = json_integer(5);
    assert_false(xs_json_is_decimal(i));
    assert_null(xs_json_decimal_text(i));
    json_decref(i);
}

static void test_money_value(void **state)
{
    (void)state;
    xs_money m = {INT64_C(12500000)};
    json_t *v = xs_json_money(m, 2);
    assert_non_null(v);
    assert_string_equal(xs_json_decimal_text(v), "12.50");
    json_decref(v);
    m.units = INT64_C(-1234567);
    v = xs_json_money(m, 6);
    assert_string_equal(xs_json_decimal_text(v), "-1.234567");
    json_decref(v);
    m.units = INT64_C(3000000);
    v = xs_json_money(m, 0);
    assert_string_equal(xs_json_decimal_text(v), "3");
    json_decref(v);
    m.units = INT64_C(1234567);
    assert_null(xs_json_money(m, 2)); /* needs more places */
    assert_null(xs_json_money(m, 7));
    assert_null(xs_json_money(m, -1));
}

/* money_of parses text and reads it as money. */
static xs_err money_of(const char *text, int64_t *units)
{
    json_t *v = parse_str(text);
    xs_money m = {INT64_C(-42)};
    xs_err e = xs_json_to_money(v, &m);
    json_decref(v);
    if (e != XS_OK) {
        assert_true(m.units == INT64_C(-42)); /* not written on failure */
    }
    *units = m.units;
    return e;
}

static void test_to_money(void **state)
{
    (void)state;
    int64_t u;
    assert_int_equal(money_of("12.50", &u), XS_OK);
    assert_true(u == INT64_C(12500000));
    assert_int_equal(money_of("-0.000001", &u), XS_OK);
    assert_true(u == -1);
    assert_int_equal(money_of("7", &u), XS_OK);
    assert_true(u == INT64_C(7000000));
    assert_int_equal(money_of("\"12.5\"", &u), XS_OK);
    assert_true(u == INT64_C(12500000));
    assert_int_equal(money_of("1e2", &u), XS_OK);
    assert_true(u == INT64_C(100000000));
    assert_int_equal(money_of("1.5E-3", &u), XS_OK);
    assert_true(u == INT64_C(1500));
    assert_int_equal(money_of("-125e-2", &u), XS_OK);
    assert_true(u == INT64_C(-1250000));
    assert_int_equal(money_of("0.0e99999999999999999999", &u), XS_OK);
    assert_true(u == 0);
    assert_int_equal(money_of("1.25000000000", &u), XS_OK);
    assert_true(u == INT64_C(1250000));
    assert_int_equal(money_of("1e-7", &u), XS_ERANGE);
    assert_int_equal(money_of("1.0000001", &u), XS_ERANGE);
    assert_int_equal(money_of("1e30", &u), XS_ERANGE);
    assert_int_equal(money_of("1e99999999999999999999", &u), XS_ERANGE);
    assert_int_equal(money_of("123456789012345678901234567890", &u), XS_ERANGE);
    assert_int_equal(money_of("9223372036854775807", &u), XS_ERANGE);
    assert_int_equal(money_of("\"abc\"", &u), XS_EPARSE);
    assert_int_equal(money_of("\"1e3\"", &u), XS_EPARSE);
    assert_int_equal(money_of("true", &u), XS_EINVAL);
    assert_int_equal(money_of("null", &u), XS_EINVAL);
    assert_int_equal(money_of("[1]", &u), XS_EINVAL);
    xs_money m;
    assert_int_equal(xs_json_to_money(NULL, &m), XS_EINVAL);
}

static void test_number_places(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int places;
    } cases[] = {
        {"7", 0},
        {"12.50", 1},
        {"-12.345", 3},
        {"0.000", 0},
        {"\"12.3400\"", 2},
        {"\"-0.10\"", 1},
        {"\"007.5\"", 1},
        {"1e2", 0},
        {"1.5E-3", 4},
        {"-125e-2", 2},
        /* where xs_json_to_money says XS_ERANGE: too many places, or too large */
        {"1e-7", 7},
        {"1.0000001", 7},
        {"\"1.0000001\"", 7},
        {"1e-99999999999999999999", INT_MAX},
        {"1e30", 0},
        {"1e99999999999999999999", 0},
        {"123456789012345678901234567890", 0},
        /* not numbers */
        {"\"abc\"", -1},
        {"\"1e3\"", -1},
        {"\"\"", -1},
        {"\"1.\"", -1},
        {"true", -1},
        {"[1]", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = parse_str(cases[i].text);
        int got = xs_json_number_places(v);
        json_decref(v);
        if (got != cases[i].places) {
            fail_msg("%s: %d places, not %d", cases[i].text, got, cases[i].places);
        }
    }
    assert_int_equal(xs_json_number_places(NULL), -1);
}

static void test_accessors(void **state)
{
    (void)state;
    json_t *o =
        parse_str("{\"s\":\"text\",\"i\":42,\"b\":true,\"m\":\"19.95\",\"d\":2.5,"
                  "\"n\":null,\"o\":{\"x\":1},\"a\":[1],\"t\":\"/Date(1573755038314+0000)/\","
                  "\"iso\":\"2019-11-14T18:10:38.314Z\",\"bad\":\"yesterday\"}");
    const char *s = "unchanged";
    int64_t i = -1;
    bool b = false;
    xs_money m = {-1};
    xs_time t = -1;
    json_t *j = NULL;

    assert_int_equal(xs_json_get_str(o, "s", &s), XS_OK);
    assert_string_equal(s, "text");
    assert_int_equal(xs_json_get_int(o, "i", &i), XS_OK);
    assert_true(i == 42);
    assert_int_equal(xs_json_get_bool(o, "b", &b), XS_OK);
    assert_true(b);
    assert_int_equal(xs_json_get_money(o, "m", &m), XS_OK);
    assert_true(m.units == INT64_C(19950000));
    assert_int_equal(xs_json_get_money(o, "d", &m), XS_OK);
    assert_true(m.units == INT64_C(2500000));
    assert_int_equal(xs_json_get_money(o, "i", &m), XS_OK);
    assert_true(m.units == INT64_C(42000000));
    assert_int_equal(xs_json_get_time(o, "t", &t), XS_OK);
    assert_true(t == INT64_C(1573755038314));
    t = -1;
    assert_int_equal(xs_json_get_time(o, "iso", &t), XS_OK);
    assert_true(t == INT64_C(1573755038314));
    assert_int_equal(xs_json_get_object(o, "o", &j), XS_OK);
    assert_true(j == json_object_get(o, "o"));
    assert_int_equal(xs_json_get_array(o, "a", &j), XS_OK);
    assert_true(j == json_object_get(o, "a"));

    /* Absent and null: XS_ENOTFOUND, nothing written. */
    static const char *missing[] = {"nope", "n"};
    for (size_t k = 0; k < 2; k++) {
        const char *key = missing[k];
        s = "unchanged";
        i = -1;
        b = false;
        m.units = -1;
        t = -1;
        j = NULL;
        assert_int_equal(xs_json_get_str(o, key, &s), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_int(o, key, &i), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_bool(o, key, &b), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_money(o, key, &m), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_time(o, key, &t), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_object(o, key, &j), XS_ENOTFOUND);
        assert_int_equal(xs_json_get_array(o, key, &j), XS_ENOTFOUND);
        assert_string_equal(s, "unchanged");
        assert_true(i == -1 && !b && m.units == -1 && t == -1 && j == NULL);
    }

    /* Wrong types: XS_EINVAL, nothing written. A decimal is a number, not a string. */
    s = "unchanged";
    assert_int_equal(xs_json_get_str(o, "i", &s), XS_EINVAL);
    assert_int_equal(xs_json_get_str(o, "d", &s), XS_EINVAL);
    assert_int_equal(xs_json_get_int(o, "s", &i), XS_EINVAL);
    assert_int_equal(xs_json_get_int(o, "d", &i), XS_EINVAL);
    assert_int_equal(xs_json_get_bool(o, "i", &b), XS_EINVAL);
    assert_int_equal(xs_json_get_money(o, "b", &m), XS_EINVAL);
    assert_int_equal(xs_json_get_money(o, "o", &m), XS_EINVAL);
    assert_int_equal(xs_json_get_time(o, "i", &t), XS_EINVAL);
    assert_int_equal(xs_json_get_time(o, "d", &t), XS_EINVAL);
    assert_int_equal(xs_json_get_object(o, "a", &j), XS_EINVAL);
    assert_int_equal(xs_json_get_array(o, "o", &j), XS_EINVAL);
    assert_string_equal(s, "unchanged");
    assert_true(i == -1 && !b && m.units == -1 && t == -1 && j == NULL);

    /* Bad content: the parser's code. */
    assert_int_equal(xs_json_get_money(o, "s", &m), XS_EPARSE);
    assert_int_equal(xs_json_get_time(o, "bad", &t), XS_EPARSE);
    assert_int_equal(xs_json_get_time(o, "s", &t), XS_EPARSE);
    assert_true(m.units == -1 && t == -1);

    /* Not an object, or no key: XS_EINVAL. */
    json_t *arr = json_object_get(o, "a");
    assert_int_equal(xs_json_get_str(arr, "s", &s), XS_EINVAL);
    assert_int_equal(xs_json_get_int(NULL, "i", &i), XS_EINVAL);
    assert_int_equal(xs_json_get_bool(o, NULL, &b), XS_EINVAL);

    assert_string_equal(xs_json_str_or(o, "s", "dflt"), "text");
    assert_string_equal(xs_json_str_or(o, "nope", "dflt"), "dflt");
    assert_string_equal(xs_json_str_or(o, "n", "dflt"), "dflt");
    assert_string_equal(xs_json_str_or(o, "i", "dflt"), "dflt");
    assert_string_equal(xs_json_str_or(o, "d", "dflt"), "dflt");
    assert_null(xs_json_str_or(NULL, "s", NULL));
    json_decref(o);
}

/* equal_text parses two texts and compares them with xs_json_equal. */
static bool equal_text(const char *a, const char *b)
{
    json_t *va = parse_str(a);
    json_t *vb = parse_str(b);
    bool eq = xs_json_equal(va, vb);
    assert_true(eq == xs_json_equal(vb, va));
    json_decref(va);
    json_decref(vb);
    return eq;
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(equal_text("1.50", "1.5"));
    assert_true(equal_text("2.0", "2"));
    assert_true(equal_text("1e2", "100"));
    assert_true(equal_text("100.00e-2", "1"));
    assert_true(equal_text("-0.0", "0"));
    assert_true(equal_text("0e-5", "-0"));
    assert_true(equal_text("0.1", "1e-1"));
    assert_true(equal_text("1e-1", "10E-2"));
    assert_true(
        equal_text("123456789012345678901234567890.0", "1.2345678901234567890123456789e29"));
    assert_true(equal_text("9223372036854775808", "9223372036854775808.000"));
    assert_true(equal_text("-9223372036854775808", "-9223372036854775808.0"));
    assert_true(equal_text("1e99999999999999999999", "1e99999999999999999999"));
    assert_true(equal_text("0e99999999999999999999", "0"));
    assert_false(equal_text("1e99999999999999999999", "1.0e99999999999999999999"));
    assert_false(equal_text("1.5", "1.51"));
    assert_false(equal_text("1.5", "-1.5"));
    assert_false(equal_text("1e2", "1e3"));
    assert_false(equal_text("10", "1"));
    assert_false(equal_text("0.001", "0.01"));
    assert_false(equal_text("1.5", "\"1.5\""));
    assert_false(equal_text("1", "true"));
    assert_false(equal_text("null", "0"));
    assert_false(equal_text("9223372036854775807", "9223372036854775808"));

    assert_true(equal_text("{\"a\":[1,2.50,{\"b\":null}],\"c\":\"x\"}",
                           "{\"c\":\"x\",\"a\":[1.0,2.5,{\"b\":null}]}"));
    assert_false(equal_text("{\"a\":1}", "{\"a\":1,\"b\":1}"));
    assert_false(equal_text("{\"a\":1}", "{\"b\":1}"));
    assert_false(equal_text("[1,2]", "[2,1]"));
    assert_false(equal_text("[1,2]", "[1,2,3]"));
    assert_false(equal_text("\"a\"", "\"b\""));
    assert_false(equal_text("true", "false"));
    assert_true(equal_text("true", "true"));
    assert_true(equal_text("\"\\u00e9\"", "\"\xc3\xa9\""));

    json_t *v = json_integer(1);
    assert_true(xs_json_equal(v, v));
    assert_false(xs_json_equal(v, NULL));
    assert_false(xs_json_equal(NULL, v));
    assert_true(xs_json_equal(NULL, NULL));
    json_decref(v);
}

/* A small deterministic PRNG (xorshift64*). */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

/* rnd returns the next pseudo-random number. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

/* rnd_below returns a pseudo-random number in [0, n). */
static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Text built by the generator below; fixed size, long enough for every generated value. */
typedef struct text {
    char p[16384];
    size_t len;
} text;

/* put appends s to t. */
static void put(text *t, const char *s)
{
    size_t n = strlen(s);
    assert_true(t->len + n < sizeof(t->p));
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

/* gen_number writes a random valid JSON number; never "-0" alone (an integer that reads back
 * as 0). */
static void gen_number(text *t)
{
    char buf[64];
    size_t w = 0;
    if (rnd_below(3) == 0) {
        buf[w++] = '-';
    }
    size_t nint = 1 + rnd_below(rnd_below(4) == 0 ? 30 : 5);
    buf[w++] = (char)('1' + rnd_below(9));
    for (size_t i = 1; i < nint; i++) {
        buf[w++] = (char)('0' + rnd_below(10));
    }
    if (rnd_below(2) == 0) {
        buf[w++] = '.';
        size_t nfrac = 1 + rnd_below(8);
        for (size_t i = 0; i < nfrac; i++) {
            buf[w++] = (char)('0' + rnd_below(10));
        }
    }
    if (rnd_below(4) == 0) {
        buf[w++] = rnd_below(2) ? 'e' : 'E';
        size_t s = rnd_below(3);
        if (s > 0) {
            buf[w++] = s == 1 ? '+' : '-';
        }
        size_t nexp = 1 + rnd_below(3);
        for (size_t i = 0; i < nexp; i++) {
            buf[w++] = (char)('0' + rnd_below(10));
        }
    }
    buf[w] = '\0';
    put(t, buf);
}

/* gen_string writes a random string that jansson writes back identically. */
static void gen_string(text *t)
{
    static const char *pieces[] = {"a", "1.5", "-2e3", "\\\"", "\\\\", "\\n",
                                   " ", "{",   "]",    ":",    ",",    "\xc3\xa9"};
    put(t, "\"");
    size_t n = rnd_below(6);
    for (size_t i = 0; i < n; i++) {
        put(t, pieces[rnd_below(sizeof(pieces) / sizeof(pieces[0]))]);
    }
    put(t, "\"");
}

/* gen_value writes a random compact JSON value with unique keys. */
static void gen_value(text *t, int depth)
{
    size_t kind = rnd_below(depth >= 6 ? 5 : 7);
    switch (kind) {
    case 0:
    case 1:
        gen_number(t);
        return;
    case 2:
        gen_string(t);
        return;
    case 3:
        put(t, rnd_below(2) ? "true" : "false");
        return;
    case 4:
        put(t, "null");
        return;
    case 5: {
        put(t, "[");
        size_t n = rnd_below(5);
        for (size_t i = 0; i < n; i++) {
            if (i > 0) {
                put(t, ",");
            }
            gen_value(t, depth + 1);
        }
        put(t, "]");
        return;
    }
    default: {
        put(t, "{");
        size_t n = rnd_below(5);
        for (size_t i = 0; i < n; i++) {
            char key[32];
            snprintf(key, sizeof(key), "%s\"k%zu\":", i > 0 ? "," : "", i);
            put(t, key);
            gen_value(t, depth + 1);
        }
        put(t, "}");
        return;
    }
    }
}

/* assert_same_parse: xs_json_parse (its fast path first) and xs_json_parse_full give the
 * same on n bytes of s: both refuse it with the same message, or both make the same values,
 * of the same types, keys in the same order. */
static void assert_same_parse(const char *s, size_t n)
{
    char e1[XS_JSON_ERR_MAX] = "", e2[XS_JSON_ERR_MAX] = "";
    json_t *a = xs_json_parse(s, n, e1), *b = xs_json_parse_full(s, n, e2);
    if ((a == NULL) != (b == NULL)) {
        fail_msg("%.*s: parse %s, the full way %s", (int)n, s, a != NULL ? "accepts" : e1,
                 b != NULL ? "accepts" : e2);
    }
    if (a == NULL) {
        assert_string_equal(e1, e2);
        return;
    }
    assert_string_equal(e1, "");
    assert_true(json_equal(a, b));
    char *da = xs_json_dump(a, 0), *db = xs_json_dump(b, 0);
    assert_non_null(da);
    assert_non_null(db);
    assert_string_equal(da, db);
    free(da);
    free(db);
    json_decref(a);
    json_decref(b);
}

/* The texts on which the fast path of xs_json_parse is compared with the full way: what it
 * takes, and what it must leave to the full way. */
static const char *const fast_corpus[] = {
    "{}",
    "[]",
    "\"\"",
    "0",
    "-0",
    "7",
    "-7",
    "true",
    "false",
    "null",
    " [ 1 , 2 ] ",
    "\t{\"a\" :\r\n1}\n",
    "{\"\":1}",
    "[\"\"]",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "1.0",
    "1.50",
    "-0.0",
    "1e5",
    "1E+5",
    "2.5e-3",
    "[0.10,1.000]",
    "\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"",
    "{\"k\\n\":\"v\",\"k\":\"w\"}",
    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
    "\"\x7f\"",
    "{\"Contacts\":[{\"ContactID\":\"0a1b\",\"Name\":\"O'Brien & Co.\",\"Phones\":[{"
    "\"PhoneType\":\"DEFAULT\",\"PhoneNumber\":\"123\"}],\"UpdatedDateUTC\":\"/Date("
    "1573755038314+0000)/\",\"Balance\":-12.50,\"IsSupplier\":false,\"X\":null}]}",
    /* left to the full way: */
    "\"\\u00e9\"",
    "\"\\u0000\"",
    "\"\\ud83d\\ude00\"",
    "\"\\x\"",
    "\"a\x01\"",
    "\"\xc3\"",
    "\"\xc0\x80\"",
    "\"\xed\xa0\x80\"",
    "\"\xf4\x90\x80\x80\"",
    "\"\xff\"",
    "{\"a\":1,\"a\":2}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{\"a\" 1}",
    "{1:2}",
    "{\"a\":}",
    "truex",
    "nul",
    "tru",
    "01",
    "1.",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    "0x10",
    "[1]x",
    "[1] [2]",
    "",
    " ",
    "\"abc",
    "[",
    "{",
    "{\"a\"",
    "\xef\xbb\xbf{}",
    "[1,\x00]",
    "\"a\\",
    "NaN",
    "-Infinity",
    "[-]",
};

/* same_parse_deep compares the two at nesting 63 to 66: 64 levels are taken, 65 refused. */
static void same_parse_deep(void)
{
    static char deep[512];
    for (size_t levels = 63; levels <= 66; levels++) {
        size_t n = 0;
        for (size_t i = 0; i < levels; i++) {
            deep[n++] = i % 2 ? '[' : '{';
            if (i % 2 == 0) {
                memcpy(deep + n, "\"k\":", 4);
                n += 4;
            }
        }
        deep[n++] = '1';
        for (size_t i = levels; i-- > 0;) {
            deep[n++] = i % 2 ? ']' : '}';
        }
        assert_same_parse(deep, n);
    }
}

/* same_parse_long compares the two on long strings, with and without escapes, and a long
 * key (the fast path copies a key longer than its buffer). */
static void same_parse_long(void)
{
    static char big[4096];
    size_t n = 0;
    big[n++] = '{';
    big[n++] = '"';
    for (int i = 0; i < 300; i++) {
        big[n++] = (char)('a' + i % 26);
    }
    memcpy(big + n, "\":\"", 3);
    n += 3;
    for (int i = 0; i < 1000; i++) {
        if (i % 97 == 0) {
            big[n++] = '\\';
            big[n++] = 'n';
        } else {
            big[n++] = (char)('A' + i % 26);
        }
    }
    big[n++] = '"';
    big[n++] = '}';
    assert_same_parse(big, n);
}

/* The fast path of xs_json_parse against the full way, on what it takes and on what it must
 * leave to the full way. */
static void test_fast_path_agrees(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fast_corpus) / sizeof(fast_corpus[0]); i++) {
        assert_same_parse(fast_corpus[i], strlen(fast_corpus[i]));
    }
    /* Raw NUL bytes, which strlen would hide. */
    assert_same_parse("[1,\0]", 5);
    assert_same_parse("\"a\0b\"", 5);
    same_parse_deep();
    same_parse_long();
}

static void test_generated_roundtrip(void **state)
{
    (void)state;
    static text t;
    for (int round = 0; round < 20000; round++) {
        t.len = 0;
        t.p[0] = '\0';
        gen_value(&t, 0);
        char err[XS_JSON_ERR_MAX];
        assert_same_parse(t.p, t.len);
        json_t *v = xs_json_parse(t.p, t.len, err);
        if (v == NULL) {
            fail_msg("generated %s refused: %s", t.p, err);
        }
        char *out = xs_json_dump(v, 0);
        assert_non_null(out);
        assert_string_equal(out, t.p);
        free(out);
        json_decref(v);
    }
}

/* check_mutant parses n bytes of s; if accepted, every dump form must parse back equal and
 * dump again identically; if refused, the message must name a position within the input.
 * Returns whether s was accepted. */
static bool check_mutant(const char *s, size_t n)
{
    assert_same_parse(s, n);
    char err[XS_JSON_ERR_MAX];
    json_t *v = xs_json_parse(s, n, err);
    if (v == NULL) {
        size_t pos;
        assert_int_equal(sscanf(err, "byte %zu: ", &pos), 1);
        assert_true(pos <= n);
        assert_null(strchr(err, '\n'));
        assert_null(strstr(err, "dec:"));
        return false;
    }
    static const int flags[] = {0, XS_JSON_SORT_KEYS, XS_JSON_PRETTY | XS_JSON_SORT_KEYS};
    for (size_t f = 0; f < 3; f++) {
        char *out = xs_json_dump(v, flags[f]);
        assert_non_null(out);
        json_t *back = xs_json_parse(out, strlen(out), err);
        if (back == NULL) {
            fail_msg("dump %s of an accepted input does not parse: %s", out, err);
        }
        assert_true(xs_json_equal(v, back));
        char *again = xs_json_dump(back, flags[f]);
        assert_string_equal(out, again);
        free(again);
        free(out);
        json_decref(back);
    }
    json_decref(v);
    return true;
}

static void test_fuzz_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "{\"a\":12.50,\"b\":1e-7,\"c\":[0.1,2]}",
        "[1,-2.5E+3,\"x\\\"1.5\",{\"k\":[true,false,null]},\"\\u00e9\"]",
        "{\"Invoices\":[{\"Total\":115.00,\"Date\":\"/Date(1573755038314+0000)/\","
        "\"Lines\":[{\"Qty\":1.0000,\"Unit\":99.9999}]}]}",
        "\"\\\\u0000\"",
        "[[[[[[1.5]]]]]]",
        "92233720368547758080",
    };
    static const char alphabet[] = "\"\\{}[],:.-+eE0123456789u ntfa\x01\xff";
    static char buf[512];
    int accepted = 0, refused = 0;
    for (int round = 0; round < 200000; round++) {
        const char *seed = seeds[rnd_below(sizeof(seeds) / sizeof(seeds[0]))];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        size_t muts = 1 + rnd_below(4);
        for (size_t m = 0; m < muts; m++) {
            size_t at = n == 0 ? 0 : rnd_below(n + 1);
            char c = rnd_below(8) == 0 ? '\0' : alphabet[rnd_below(sizeof(alphabet) - 1)];
            switch (rnd_below(5)) {
            case 0: /* replace */
                if (at < n) {
                    buf[at] = c;
                }
                break;
            case 1: /* insert */
                if (n + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = c;
                    n++;
                }
                break;
            case 2: /* delete */
                if (at < n) {
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                }
                break;
            case 3: /* truncate */
                n = at;
                break;
            default: { /* duplicate a span */
                size_t len = rnd_below(16);
                if (at + len <= n && n + len < sizeof(buf)) {
                    memmove(buf + at + len, buf + at, n - at);
                    n += len;
                }
                break;
            }
            }
        }
        if (check_mutant(buf, n)) {
            accepted++;
        } else {
            refused++;
        }
    }
    /* Both paths must have been exercised for the loop to mean anything. */
    assert_true(accepted > 2000);
    assert_true(refused > 2000);
}

/* spans_of runs xs_json_list_spans on s for key "L" and returns its result. */
static xs_err spans_of(const char *s, xs_json_span *list, xs_json_span **items, size_t *n)
{
    return xs_json_list_spans(s, strlen(s), "L", list, items, n);
}

/* check_spans: when text parses whole and its "L" is an array, xs_json_list_spans finds it
 * and each span parses to that array's element; when it does not parse, any spans found
 * lie inside the text. */
static void check_spans(const char *s, size_t n)
{
    xs_json_span list, *items = NULL;
    size_t count = 0;
    xs_err e = xs_json_list_spans(s, n, "L", &list, &items, &count);
    json_t *whole = xs_json_parse(s, n, NULL);
    json_t *arr = json_object_get(whole, "L");
    if (whole != NULL && json_is_array(arr)) {
        assert_int_equal(e, XS_OK);
        assert_int_equal(count, json_array_size(arr));
        assert_true(list.off + list.len <= n && s[list.off] == '[');
        for (size_t i = 0; i < count; i++) {
            json_t *v = xs_json_parse(s + items[i].off, items[i].len, NULL);
            assert_non_null(v);
            assert_true(xs_json_equal(v, json_array_get(arr, i)));
            json_decref(v);
        }
    } else if (e == XS_OK) {
        for (size_t i = 0; i < count; i++) {
            assert_true(items[i].off + items[i].len <= list.off + list.len);
        }
        assert_true(list.off + list.len <= n);
    }
    free(items);
    json_decref(whole);
}

static void test_list_spans(void **state)
{
    (void)state;
    xs_json_span list, *items = NULL;
    size_t n = 0;
    const char *s = "{\"a\":[1,{\"L\":[9]}],\"L\":[{\"x\":\"]}\\\"\"}, [1, 2] ,\"s\\\"\",-3.5e1],"
                    "\"z\":{}}";
    assert_int_equal(spans_of(s, &list, &items, &n), XS_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(s + items[0].off, "{\"x\":\"]}\\\"\"}", items[0].len);
    assert_int_equal(items[0].len, strlen("{\"x\":\"]}\\\"\"}"));
    assert_int_equal(items[1].len, 6);
    assert_memory_equal(s + items[1].off, "[1, 2]", 6);
    assert_memory_equal(s + items[2].off, "\"s\\\"\"", items[2].len);
    assert_int_equal(items[3].len, 6);
    assert_memory_equal(s + items[3].off, "-3.5e1", 6);
    assert_int_equal(s[list.off], '[');
    assert_int_equal(s[list.off + list.len - 1], ']');
    assert_int_equal(s[list.off + list.len], ',');
    free(items);
    /* An empty list */
    assert_int_equal(spans_of(" { \"L\" : [ ] } ", &list, &items, &n), XS_OK);
    assert_int_equal(n, 0);
    assert_null(items);
    assert_int_equal(list.len, 3);
    /* Not there */
    static const char *absent[] = {
        "{\"l\":[1]}",       "[1]", "{\"L\":{}}", "{\"L\":1}", "{\"L\\u0000\":[1]}",
        "{\"\\u004c\":[1]}", "{}",  "  ",         "\"L\""};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        assert_int_equal(spans_of(absent[i], &list, &items, &n), XS_ENOTFOUND);
        assert_null(items);
    }
    /* Malformed on the way */
    static const char *bad[] = {"{\"L\":[{\"a\":1]}",  "{\"L\":[1 2]}",       "{\"L\":[1,",
                                "{\"L\":[\"a\x01\"]}", "{\"L\":[\"open]}",    "{\"a\":\"x",
                                "{\"a\" 1,\"L\":[]}",  "{\"a\":[},\"L\":[]}", "{\"L\":[1,]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (spans_of(bad[i], &list, &items, &n) != XS_EPARSE) {
            fail_msg("%s not refused", bad[i]);
        }
        assert_null(items);
    }
    /* Nesting deeper than 64 inside an element */
    static char deep[512];
    size_t w = (size_t)snprintf(deep, sizeof(deep), "{\"L\":[");
    for (int i = 0; i < 65; i++) {
        deep[w++] = '[';
    }
    for (int i = 0; i < 65; i++) {
        deep[w++] = ']';
    }
    memcpy(deep + w, "]}", 3);
    assert_int_equal(spans_of(deep, &list, &items, &n), XS_EPARSE);
    assert_int_equal(xs_json_list_spans(NULL, 0, "L", &list, &items, &n), XS_EINVAL);

    /* Generated documents: the spans parse to what a whole parse holds. */
    static text t;
    for (int round = 0; round < 5000; round++) {
        t.len = 0;
        t.p[0] = '\0';
        put(&t, "{\"k\":");
        gen_value(&t, 3);
        put(&t, ",\"L\":[");
        size_t count = rnd_below(6);
        for (size_t i = 0; i < count; i++) {
            if (i > 0) {
                put(&t, rnd_below(2) ? "," : " ,\n ");
            }
            gen_value(&t, 1);
        }
        put(&t, "],\"z\":");
        gen_value(&t, 3);
        put(&t, "}");
        check_spans(t.p, t.len);
    }
    /* Mutants: never a span outside the text, and the spans of any that parse are right. */
    static const char seed[] = "{\"pagination\":{\"page\":1},\"L\":[{\"ID\":\"a\\\"b\",\"N\":"
                               "[1.5,{\"q\":null}]},{\"ID\":\"c\"},\"s\",7],\"Warnings\":[]}";
    static const char alphabet[] = "\"\\{}[],:.-+eE0123456789u ntfaL\x01\xff";
    static char buf[256];
    for (int round = 0; round < 100000; round++) {
        size_t len = sizeof(seed) - 1;
        memcpy(buf, seed, len);
        size_t muts = 1 + rnd_below(3);
        for (size_t m = 0; m < muts; m++) {
            size_t at = rnd_below(len + 1);
            char c = alphabet[rnd_below(sizeof(alphabet) - 1)];
            if (rnd_below(2) == 0 && at < len) {
                buf[at] = c;
            } else if (len + 1 < sizeof(buf)) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            }
        }
        check_spans(buf, len);
    }
}

static void test_member_string(void **state)
{
    (void)state;
    const char *s =
        "{\"N\":{\"ID\":\"inner\"},\"ID\":\"4a3e\",\"E\":\"a\\\"b\",\"I\":7,\"U\":\"\"}";
    const char *v = NULL;
    size_t n = 0;
    assert_true(xs_json_member_string(s, strlen(s), "ID", &v, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(v, "4a3e", 4);
    assert_true(xs_json_member_string(s, strlen(s), "U", &v, &n));
    assert_int_equal(n, 0);
    assert_false(xs_json_member_string(s, strlen(s), "E", &v, &n)); /* escapes */
    assert_false(xs_json_member_string(s, strlen(s), "I", &v, &n)); /* not a string */
    assert_false(xs_json_member_string(s, strlen(s), "X", &v, &n)); /* absent */
    assert_false(xs_json_member_string("[\"ID\"]", 6, "ID", &v, &n));
    assert_false(xs_json_member_string("{\"ID\":", 6, "ID", &v, &n));
    assert_false(xs_json_member_string("{\"a\":[,\"ID\":\"x\"}", 16, "ID", &v, &n));
    assert_false(xs_json_member_string(NULL, 0, "ID", &v, &n));
}

/* jansson_flags maps xs_json_dump flags to the json_dumps flags they must match. */
static size_t jansson_flags(int flags)
{
    size_t f = JSON_ENCODE_ANY;
    f |= (flags & XS_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;
    if (flags & XS_JSON_SORT_KEYS) {
        f |= JSON_SORT_KEYS;
    }
    return f;
}

static const int dump_flag_sets[] = {0, XS_JSON_SORT_KEYS, XS_JSON_PRETTY,
                                     XS_JSON_PRETTY | XS_JSON_SORT_KEYS};

/* assert_dump_like_jansson checks that xs_json_dump writes v exactly as json_dumps does,
 * with every flag combination (both refusing counts as the same). */
static void assert_dump_like_jansson(const json_t *v)
{
    for (size_t f = 0; f < sizeof(dump_flag_sets) / sizeof(dump_flag_sets[0]); f++) {
        char *ours = xs_json_dump(v, dump_flag_sets[f]);
        char *theirs = json_dumps(v, jansson_flags(dump_flag_sets[f]));
        if (theirs == NULL) {
            assert_null(ours);
        } else {
            assert_non_null(ours);
            assert_string_equal(ours, theirs);
        }
        free(ours);
        free(theirs);
    }
}

/* put_utf8 appends code point cp to buf at *n as UTF-8. */
static void put_utf8(char *buf, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static void test_dump_escapes(void **state)
{
    (void)state;
    /* Every control character, NUL included, and the characters jansson escapes or not. */
    char raw[40];
    for (int c = 0; c < 0x20; c++) {
        raw[c] = (char)c;
    }
    memcpy(raw + 0x20, "\"\\/\x7f a", 6);
    json_t *v = json_stringn(raw, 0x26);
    assert_non_null(v);
    char *out = xs_json_dump(v, 0);
    assert_string_equal(out, "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
                             "\\u000B\\f\\r\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014"
                             "\\u0015\\u0016\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D"
                             "\\u001E\\u001F\\\"\\\\/\x7f a\"");
    free(out);
    assert_dump_like_jansson(v);
    json_decref(v);

    /* Non-ASCII is written as UTF-8, not escaped: 2, 3 and 4 byte sequences, the extremes. */
    v = json_string("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x80\xdf\xbf\xe0\xa0\x80"
                    "\xef\xbf\xbf\xf4\x8f\xbf\xbf");
    assert_non_null(v);
    out = xs_json_dump(v, 0);
    assert_string_equal(out, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x80\xdf\xbf\xe0\xa0\x80"
                             "\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
    free(out);
    json_decref(v);

    /* A special byte at every position around the eight-byte steps, in keys and values. */
    static const char *const specials[] = {"\x01", "\x1f",     "\"",           "\\",
                                           "\n",   "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        for (size_t len = 0; len <= 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                char s[64];
                memset(s, 'a', len);
                size_t sl = strlen(specials[k]);
                memmove(s + at + sl, s + at, len - at);
                memcpy(s + at, specials[k], sl);
                json_t *o = json_object();
                assert_int_equal(json_object_setn_new(o, s, len + sl, json_stringn(s, len + sl)),
                                 0);
                assert_dump_like_jansson(o);
                json_decref(o);
            }
        }
    }
}

static void test_dump_refusals(void **state)
{
    (void)state;
    /* Strings that are not UTF-8 cannot be written, as jansson refuses them too. */
    static const char *const bad[] = {
        "\x80",             /* a continuation byte alone */
        "a\xbf",            /* the same after ASCII */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong 3 bytes */
        "\xf0\x80\x80\x80", /* overlong 4 bytes */
        "\xed\xa0\x80",     /* a surrogate */
        "\xed\xbf\xbf",     /* the last surrogate */
        "\xf4\x90\x80\x80", /* beyond U+10FFFF */
        "\xf5\x80\x80\x80", /* never valid */
        "\xff",             /* never valid */
        "\xe2\x82",         /* cut short at the end */
        "\xe2\x82x",        /* cut short before ASCII */
        "\xc3\xa9\xc3",     /* valid, then cut short */
        "aaaaaaaaaaaaaa\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *v = json_stringn_nocheck(bad[i], strlen(bad[i]));
        assert_null(xs_json_dump(v, 0));
        char *theirs = json_dumps(v, JSON_ENCODE_ANY);
        assert_null(theirs);
        json_t *a = json_pack("[s,O]", "ok", v);
        assert_null(xs_json_dump(a, XS_JSON_PRETTY));
        json_decref(a);
        /* jansson writes a broken key (and carries on); we refuse the whole text. */
        json_t *o = json_object();
        assert_int_equal(json_object_setn_new_nocheck(o, bad[i], strlen(bad[i]), json_true()), 0);
        assert_null(xs_json_dump(o, 0));
        assert_null(xs_json_dump(o, XS_JSON_SORT_KEYS));
        json_decref(o);
        json_decref(v);
    }

    /* A cycle is refused; one value reached twice without a cycle is written twice. */
    json_t *a = json_array(), *b = json_array();
    json_array_append(b, a);
    json_array_append(a, b);
    assert_null(xs_json_dump(a, 0));
    assert_null(json_dumps(a, JSON_ENCODE_ANY));
    json_t *o = json_pack("{s:O}", "b", b);
    assert_null(xs_json_dump(o, XS_JSON_SORT_KEYS));
    json_decref(o);
    json_array_clear(a);
    json_decref(a);
    json_decref(b);
    json_t *leaf = json_pack("{s:[i]}", "k", 1);
    json_t *dag = json_pack("[O,{s:O},O]", leaf, "x", leaf, leaf);
    char *out = xs_json_dump(dag, 0);
    assert_string_equal(out, "[{\"k\":[1]},{\"x\":{\"k\":[1]}},{\"k\":[1]}]");
    free(out);
    assert_dump_like_jansson(dag);
    json_decref(dag);
    json_decref(leaf);
}

/* gen_text writes up to max code points of random valid UTF-8 into buf (room for 4 * max),
 * mostly ASCII, with control characters, the escaped ones, NUL and every UTF-8 length;
 * never NUL first (which could make a decimal's tag). Returns the length. */
static size_t gen_text(char *buf, size_t max)
{
    size_t n = 0;
    size_t count = rnd_below(max + 1);
    for (size_t i = 0; i < count; i++) {
        uint32_t cp;
        switch (rnd_below(10)) {
        case 0:
            cp = (uint32_t)rnd_below(0x20);
            break;
        case 1:
            cp = "\"\\/\x7f"[rnd_below(4)];
            break;
        case 2:
            cp = 0x80 + (uint32_t)rnd_below(0x800 - 0x80);
            break;
        case 3:
            cp = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800);
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp -= 0x800;
            }
            break;
        case 4:
            cp = 0x10000 + (uint32_t)rnd_below(0x110000 - 0x10000);
            break;
        default:
            cp = 0x20 + (uint32_t)rnd_below(0x5F);
            break;
        }
        if (n == 0 && cp == 0) {
            cp = 'x';
        }
        put_utf8(buf, &n, cp);
    }
    return n;
}

/* gen_tree builds a random tree without decimals: every jansson type, integers at their
 * extremes, reals, strings and keys of random UTF-8 (keys with NUL bytes too). */
static json_t *gen_tree(int depth)
{
    char buf[4 * 48];
    size_t kind = rnd_below(depth >= 5 ? 7 : 9);
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd_below(2));
    case 2: {
        static const json_int_t edges[] = {0, -1, 1, INT64_MAX, INT64_MIN, 9, 10, -10};
        return json_integer(rnd_below(3) == 0
                                ? edges[rnd_below(8)]
                                : (json_int_t)(rnd() >> rnd_below(64)) * (rnd_below(2) ? 1 : -1));
    }
    case 3:
        return json_real(ldexp((double)(int64_t)(rnd() >> 11) * (rnd_below(2) ? 1 : -1),
                               (int)rnd_below(200) - 100));
    case 4:
    case 5:
    case 6: {
        size_t n = gen_text(buf, rnd_below(4) == 0 ? 48 : 12);
        return json_stringn(buf, n);
    }
    case 7: {
        json_t *a = json_array();
        size_t n = rnd_below(6);
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(a, gen_tree(depth + 1));
        }
        return a;
    }
    default: {
        json_t *o = json_object();
        size_t n = rnd_below(6);
        for (size_t i = 0; i < n; i++) {
            size_t kn = gen_text(buf, 8);
            json_object_setn_new(o, buf, kn, gen_tree(depth + 1));
        }
        return o;
    }
    }
}

static void test_dump_matches_jansson(void **state)
{
    (void)state;
    for (int round = 0; round < 20000; round++) {
        json_t *v = gen_tree(0);
        assert_non_null(v);
        assert_dump_like_jansson(v);
        json_decref(v);
    }
}

/* Items for xs_json_dump_items: each is handed out as a new reference, and the previous one
 * must have been released by the dumper before the next is asked for. (Not deep copies:
 * jansson 2.14's json_deep_copy cuts object keys at a NUL byte.) */
typedef struct item_src {
    json_t *items;    /* the values to hand out, in order */
    json_t *previous; /* the last item handed out (our own reference) */
    size_t fail_at;   /* return NULL for this index (SIZE_MAX: never) */
    size_t made;
} item_src;

static json_t *item_make(size_t i, void *arg)
{
    item_src *src = arg;
    if (src->previous != NULL) {
        /* the dumper let go of it: only src->items and we hold it now (true, false and null
         * are never counted) */
        assert_true(src->previous->refcount == 2 || src->previous->refcount == (size_t)-1);
        json_decref(src->previous);
        src->previous = NULL;
    }
    if (i == src->fail_at) {
        return NULL;
    }
    assert_true(i == src->made);
    src->made++;
    json_t *e = json_incref(json_array_get(src->items, i));
    src->previous = json_incref(e);
    return e;
}

/* slot_place puts the empty array slot somewhere in a random tree of depth up to 3; returns
 * the tree. */
static json_t *slot_place(json_t *slot)
{
    json_t *root = json_object();
    json_t *at = root;
    size_t levels = rnd_below(3);
    for (size_t l = 0; l < levels; l++) {
        json_t *next = rnd_below(2) ? json_object() : json_array();
        if (json_is_object(at)) {
            json_object_set_new(at, "pre", gen_tree(4));
            json_object_set_new(at, "down", next);
            json_object_set_new(at, "post", gen_tree(4));
        } else {
            json_array_append_new(at, gen_tree(4));
            json_array_append_new(at, next);
        }
        at = next;
    }
    if (json_is_object(at)) {
        json_object_set_new(at, "Items", json_incref(slot));
        json_object_set_new(at, "after", gen_tree(3));
    } else {
        json_array_append_new(at, json_incref(slot));
    }
    return root;
}

static void test_dump_items(void **state)
{
    (void)state;
    for (int round = 0; round < 3000; round++) {
        json_t *slot = json_array();
        json_t *root = slot_place(slot);
        item_src src = {.items = json_array(), .fail_at = SIZE_MAX};
        size_t n = rnd_below(8);
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(src.items,
                                  rnd_below(3) == 0 ? xs_json_decimal("12.50") : gen_tree(2));
        }
        int flags = dump_flag_sets[rnd_below(4)];
        char *lazy = xs_json_dump_items(root, flags, slot, n, item_make, &src);
        assert_non_null(lazy);
        assert_true(src.made == n);
        json_decref(src.previous);
        json_array_extend(slot, src.items);
        char *whole = xs_json_dump(root, flags);
        assert_non_null(whole);
        assert_string_equal(lazy, whole);
        free(lazy);
        free(whole);
        json_array_clear(slot);
        json_decref(src.items);
        json_decref(root);
        json_decref(slot);
    }

    /* Refusals: no slot in v, slot not empty or not an array, slot twice, a failing item. */
    json_t *slot = json_array();
    json_t *root = json_pack("{s:s,s:O}", "a", "b", "Items", slot);
    item_src src = {.items = json_pack("[i,i,i]", 1, 2, 3), .fail_at = SIZE_MAX};
    char *out = xs_json_dump_items(root, 0, slot, 0, NULL, NULL);
    assert_string_equal(out, "{\"a\":\"b\",\"Items\":[]}");
    free(out);
    out = xs_json_dump_items(root, 0, slot, 3, item_make, &src);
    assert_string_equal(out, "{\"a\":\"b\",\"Items\":[1,2,3]}");
    free(out);
    json_decref(src.previous);
    src.previous = NULL;
    src.made = 0;
    src.fail_at = 1;
    assert_null(xs_json_dump_items(root, 0, slot, 3, item_make, &src));
    assert_true(src.made == 1);
    json_decref(src.previous); /* item 0 was released by the dumper: only ours is left */
    src.previous = NULL;
    json_t *other = json_array();
    assert_null(xs_json_dump_items(root, 0, other, 0, NULL, NULL));
    assert_null(xs_json_dump_items(root, 0, json_object_get(root, "a"), 0, NULL, NULL));
    assert_null(xs_json_dump_items(root, 0, slot, 1, NULL, NULL));
    assert_null(xs_json_dump_items(NULL, 0, slot, 0, NULL, NULL));
    json_object_set(root, "again", slot);
    assert_null(xs_json_dump_items(root, 0, slot, 0, NULL, NULL));
    json_object_del(root, "again");
    json_array_append_new(slot, json_true());
    assert_null(xs_json_dump_items(root, 0, slot, 0, NULL, NULL));
    json_decref(other);
    json_decref(src.items);
    json_decref(root);
    json_decref(slot);
}

/* The request arena: values made inside come from it and go at its end or at a release;
 * values made before, or by another thread, are freed as usual; big values fit. */
static void *arena_other_thread(void *arg)
{
    (void)arg;
    /* No arena on this thread: plain malloc, freed later by anyone. */
    return json_pack("{s:s, s:i}", "made", "elsewhere", "n", 7);
}

static void test_arena(void **state)
{
    (void)state;
    json_t *before = json_pack("{s:s}", "k", "made before");
    json_t *kept = json_pack("{s:s}", "k", "kept through the arena");
    xs_json_arena_begin();
    assert_int_equal(xs_json_arena_used(), 0);
    json_decref(before); /* made outside: really freed */
    json_t *many = json_array();
    for (int i = 0; i < 20000; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "value %d", i);
        json_array_append_new(many, json_string(buf));
    }
    size_t used = xs_json_arena_used();
    assert_true(used > 20000 * 16);
    for (int i = 0; i < 20000; i += 997) {
        char buf[32];
        snprintf(buf, sizeof(buf), "value %d", i);
        assert_string_equal(json_string_value(json_array_get(many, (size_t)i)), buf);
    }
    /* Freeing inside costs nothing and gives nothing back before the end. */
    json_decref(many);
    assert_int_equal(xs_json_arena_used(), used);

    /* A mark: what is made after it goes at the release; what was made before stays. */
    json_t *stays = json_pack("{s:s}", "k", "made before the mark");
    xs_json_arena_pos pos = xs_json_arena_mark();
    size_t at_mark = xs_json_arena_used();
    char *big = malloc(6 << 20); /* bigger than a chunk */
    assert_non_null(big);
    memset(big, 'x', (6 << 20) - 1);
    big[(6 << 20) - 1] = '\0';
    json_t *huge = json_string(big);
    free(big);
    assert_non_null(huge);
    assert_int_equal(json_string_length(huge), (6 << 20) - 1);
    char err[XS_JSON_ERR_MAX];
    const char *doc = "{\"a\": [1, 2.50, \"x\"], \"b\": {\"c\": null}}";
    json_t *parsed = xs_json_parse(doc, strlen(doc), err);
    assert_non_null(parsed);
    assert_true(xs_json_arena_used() > at_mark + (6 << 20));
    json_decref(huge);
    json_decref(parsed);
    xs_json_arena_release(pos);
    assert_int_equal(xs_json_arena_used(), at_mark);
    assert_string_equal(json_string_value(json_object_get(stays, "k")), "made before the mark");
    json_decref(stays);

    pthread_t th;
    void *other = NULL;
    assert_int_equal(pthread_create(&th, NULL, arena_other_thread, NULL), 0);
    assert_int_equal(pthread_join(th, &other), 0);
    json_object_set_new(kept, "n", json_integer(1)); /* made in the arena, dropped inside */
    json_object_del(kept, "n");
    xs_json_arena_end();
    assert_int_equal(xs_json_arena_used(), 0);

    /* After the end: plain values again, and the other thread's value is freed here. */
    assert_string_equal(json_string_value(json_object_get(other, "made")), "elsewhere");
    json_decref(other);
    assert_string_equal(json_string_value(json_object_get(kept, "k")), "kept through the arena");
    json_decref(kept);
    /* A second request reuses the memory kept from the first. */
    xs_json_arena_begin();
    json_t *again = json_pack("[s, i]", "again", 2);
    assert_true(xs_json_arena_used() > 0);
    json_decref(again);
    xs_json_arena_end();
    /* Marks outside an arena do nothing. */
    xs_json_arena_pos none = xs_json_arena_mark();
    assert_false(none.set);
    xs_json_arena_release(none);
}

int main(void)
{
    xs_json_arena_install(); /* every value of the tests goes through the arena's hooks */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_exact),
        cmocka_unit_test(test_whitespace_and_escapes),
        cmocka_unit_test(test_numbers_in_strings),
        cmocka_unit_test(test_decimal_kinds),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_invalid_numbers),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_parse_args),
        cmocka_unit_test(test_dump_flags),
        cmocka_unit_test(test_dump_keys_and_fake_tags),
        cmocka_unit_test(test_decimal_make),
        cmocka_unit_test(test_money_value),
        cmocka_unit_test(test_to_money),
        cmocka_unit_test(test_number_places),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_fast_path_agrees),
        cmocka_unit_test(test_generated_roundtrip),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_dump_escapes),
        cmocka_unit_test(test_dump_refusals),
        cmocka_unit_test(test_dump_matches_jansson),
        cmocka_unit_test(test_dump_items),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_list_spans),
        cmocka_unit_test(test_member_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
