/* err_test.c: names, texts and errno translation of xs_err. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "xs/err.h"

/* Every code with the name it must have: names cross process boundaries in error replies,
 * so they are checked against a copy rather than against err.c itself. */
static const struct {
    xs_err code;
    int value;
    const char *name;
} codes[] = {
    {XS_OK, 0, "XS_OK"},
    {XS_ENOMEM, 1, "XS_ENOMEM"},
    {XS_EINVAL, 2, "XS_EINVAL"},
    {XS_ERANGE, 3, "XS_ERANGE"},
    {XS_EPARSE, 4, "XS_EPARSE"},
    {XS_ENOTFOUND, 5, "XS_ENOTFOUND"},
    {XS_EEXIST, 6, "XS_EEXIST"},
    {XS_ETIMEDOUT, 7, "XS_ETIMEDOUT"},
    {XS_ECLOSED, 8, "XS_ECLOSED"},
    {XS_EIO, 9, "XS_EIO"},
    {XS_EDB, 10, "XS_EDB"},
    {XS_EBUS, 11, "XS_EBUS"},
    {XS_EHTTP, 12, "XS_EHTTP"},
    {XS_ECRYPTO, 13, "XS_ECRYPTO"},
    {XS_ECONFIG, 14, "XS_ECONFIG"},
    {XS_ETOOBIG, 15, "XS_ETOOBIG"},
    {XS_EPROTO, 16, "XS_EPROTO"},
    {XS_EUNSUPPORTED, 17, "XS_EUNSUPPORTED"},
    {XS_EBUSY, 18, "XS_EBUSY"},
    {XS_ESTATE, 19, "XS_ESTATE"},
    {XS_EAUTH, 20, "XS_EAUTH"},
    {XS_ECONFLICT, 21, "XS_ECONFLICT"},
    {XS_ERATELIMIT, 22, "XS_ERATELIMIT"},
    {XS_EUNAVAILABLE, 23, "XS_EUNAVAILABLE"},
    {XS_ECANCELED, 24, "XS_ECANCELED"},
    {XS_ESCHEMA, 25, "XS_ESCHEMA"},
};

#define NCODES (sizeof(codes) / sizeof(codes[0]))

static void test_values_are_stable(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        assert_int_equal((int)codes[i].code, codes[i].value);
        assert_int_equal(codes[i].value, (int)i); /* dense, no gaps */
    }
}

static void test_every_code_named(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *name = xs_err_name(codes[i].code);
        assert_non_null(name);
        assert_string_equal(name, codes[i].name);
        /* Names are unique. */
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(name, xs_err_name(codes[j].code));
        }
    }
}

static void test_every_code_has_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *text = xs_strerror(codes[i].code);
        assert_non_null(text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown error");
        /* A text is for people, not a name. */
        assert_null(strstr(text, "XS_"));
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(text, xs_strerror(codes[j].code));
        }
    }
    assert_string_equal(xs_strerror(XS_OK), "no error");
    assert_string_equal(xs_strerror(XS_ENOMEM), "out of memory");
}

/* test_unknown_codes also trips when a code is appended without adding it to `codes`. */
static void test_unknown_codes(void **state)
{
    (void)state;
    static const int unknown[] = {-1,   -2,      (int)NCODES, (int)NCODES + 1, 100,
                                  1000, INT_MAX, INT_MIN,     -(int)NCODES};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_string_equal(xs_err_name(unknown[i]), "XS_EUNKNOWN");
        assert_string_equal(xs_strerror(unknown[i]), "unknown error");
    }
}

static void test_strings_are_static(void **state)
{
    (void)state;
    /* The same pointer every time: nothing is allocated or formatted per call. */
    for (size_t i = 0; i < NCODES; i++) {
        assert_ptr_equal(xs_err_name(codes[i].code), xs_err_name(codes[i].code));
        assert_ptr_equal(xs_strerror(codes[i].code), xs_strerror(codes[i].code));
    }
    assert_ptr_equal(xs_err_name(-5), xs_err_name(9999));
}

static void test_from_errno(void **state)
{
    (void)state;
    static const struct {
        int e;
        xs_err want;
    } map[] = {
        {0, XS_OK},
        {ENOMEM, XS_ENOMEM},
        {EINVAL, XS_EINVAL},
        {ERANGE, XS_ERANGE},
        {EOVERFLOW, XS_ERANGE},
        {ENOENT, XS_ENOTFOUND},
        {EEXIST, XS_EEXIST},
        {ETIMEDOUT, XS_ETIMEDOUT},
        {EPIPE, XS_ECLOSED},
        {ECONNRESET, XS_ECLOSED},
        {EBUSY, XS_EBUSY},
        {EAGAIN, XS_EBUSY},
        {EWOULDBLOCK, XS_EBUSY},
        {ECANCELED, XS_ECANCELED},
        {EINTR, XS_ECANCELED},
        {EACCES, XS_EAUTH},
        {EPERM, XS_EAUTH},
        {E2BIG, XS_ETOOBIG},
        {EFBIG, XS_ETOOBIG},
        {EMSGSIZE, XS_ETOOBIG},
        /* Everything else is an I/O error. */
        {EIO, XS_EIO},
        {EBADF, XS_EIO},
        {ENOSPC, XS_EIO},
        {EROFS, XS_EIO},
        {ENOTDIR, XS_EIO},
        {EISDIR, XS_EIO},
        {EMFILE, XS_EIO},
        {ECONNREFUSED, XS_EIO},
        {-1, XS_EIO},
        {INT_MAX, XS_EIO},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        xs_err got = xs_err_from_errno(map[i].e);
        if (got != map[i].want) {
            fail_msg("errno %d (%s) gave %s, want %s", map[i].e, strerror(map[i].e),
                     xs_err_name(got), xs_err_name(map[i].want));
        }
    }
    /* Every errno value maps onto a real code, never an unknown one. */
    for (int e = 0; e < 200; e++) {
        assert_string_not_equal(xs_err_name(xs_err_from_errno(e)), "XS_EUNKNOWN");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_stable),   cmocka_unit_test(test_every_code_named),
        cmocka_unit_test(test_every_code_has_text), cmocka_unit_test(test_unknown_codes),
        cmocka_unit_test(test_strings_are_static),  cmocka_unit_test(test_from_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
