/* uuid_test.c: the text form both ways, validation, version-4 bits, nil and equality. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "xs/uuid.h"

static const char CANON[] = "0f8fad5b-d9cb-469f-a165-70867728950e";

static void test_format_parse_round_trip(void **state)
{
    (void)state;
    xs_uuid u;
    assert_true(xs_uuid_parse(CANON, &u));
    assert_int_equal(u.b[0], 0x0f);
    assert_int_equal(u.b[15], 0x0e);
    char text[XS_UUID_STR];
    xs_uuid_format(&u, text);
    assert_string_equal(text, CANON);
    assert_int_equal(strlen(text), XS_UUID_STR - 1);

    /* upper case is read, and written back in lower case */
    xs_uuid v;
    assert_true(xs_uuid_parse("0F8FAD5B-D9CB-469F-A165-70867728950E", &v));
    assert_true(xs_uuid_eq(&u, &v));
    xs_uuid_format(&v, text);
    assert_string_equal(text, CANON);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(xs_uuid_valid(CANON));
    assert_true(xs_uuid_valid("00000000-0000-0000-0000-000000000000"));
    assert_true(xs_uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    assert_false(xs_uuid_valid(NULL));
    assert_false(xs_uuid_valid(""));
    assert_false(xs_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950"));   /* short */
    assert_false(xs_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950e0")); /* long */
    assert_false(xs_uuid_valid("0f8fad5bxd9cb-469f-a165-70867728950e"));  /* no dash */
    assert_false(xs_uuid_valid("0f8fad5b-d9cb-469f-a165-70867728950g"));  /* not hex */
    assert_false(xs_uuid_valid("0f8fad5bd-9cb-469f-a165-70867728950e"));  /* dash moved */
    assert_false(xs_uuid_valid("{0f8fad5b-d9cb-469f-a165-70867728950e}"));
    assert_false(xs_uuid_valid("0f8fad5bd9cb469fa16570867728950e"));

    /* a failed parse leaves the output alone */
    xs_uuid u;
    memset(&u, 0xAB, sizeof(u));
    assert_false(xs_uuid_parse("0f8fad5b-d9cb-469f-a165-7086772895", &u));
    for (int i = 0; i < 16; i++) {
        assert_int_equal(u.b[i], 0xAB);
    }
}

static void test_from_bytes_sets_version_and_variant(void **state)
{
    (void)state;
    uint8_t ones[16];
    memset(ones, 0xFF, sizeof(ones));
    xs_uuid u;
    xs_uuid_from_bytes(ones, &u);
    char text[XS_UUID_STR];
    xs_uuid_format(&u, text);
    assert_string_equal(text, "ffffffff-ffff-4fff-bfff-ffffffffffff");

    uint8_t zeros[16] = {0};
    xs_uuid_from_bytes(zeros, &u);
    xs_uuid_format(&u, text);
    assert_string_equal(text, "00000000-0000-4000-8000-000000000000");
    assert_false(xs_uuid_is_nil(&u));
}

static void test_random(void **state)
{
    (void)state;
    xs_uuid a, b;
    assert_int_equal(xs_uuid_random(&a), XS_OK);
    assert_int_equal(xs_uuid_random(&b), XS_OK);
    assert_false(xs_uuid_eq(&a, &b));
    assert_int_equal(a.b[6] >> 4, 4);
    assert_int_equal(a.b[8] >> 6, 2);

    char t1[XS_UUID_STR], t2[XS_UUID_STR];
    assert_int_equal(xs_uuid_random_text(t1), XS_OK);
    assert_int_equal(xs_uuid_random_text(t2), XS_OK);
    assert_true(xs_uuid_valid(t1));
    assert_string_not_equal(t1, t2);
    assert_int_equal(t1[14], '4');
    assert_non_null(strchr("89ab", t1[19]));
}

static void test_nil_and_eq(void **state)
{
    (void)state;
    xs_uuid nil, u;
    assert_true(xs_uuid_parse("00000000-0000-0000-0000-000000000000", &nil));
    assert_true(xs_uuid_is_nil(&nil));
    assert_true(xs_uuid_parse(CANON, &u));
    assert_false(xs_uuid_is_nil(&u));
    assert_true(xs_uuid_eq(&u, &u));
    assert_false(xs_uuid_eq(&u, &nil));
    xs_uuid w = u;
    w.b[15] ^= 1;
    assert_false(xs_uuid_eq(&u, &w));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_from_bytes_sets_version_and_variant),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_nil_and_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
