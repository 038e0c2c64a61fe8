/* buf_test.c: appends, growth, printf, failure and take of xs_buf. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "xs/buf.h"

/* An xs_buf all zeros is empty; the first append allocates the default and terminates. */
static void test_zero_is_empty(void **state)
{
    (void)state;
    xs_buf b = {0};
    assert_null(b.p);
    assert_int_equal(xs_buf_append(&b, "ab", 2), XS_OK);
    assert_int_equal(b.len, 2);
    assert_int_equal(b.cap, XS_BUF_FIRST);
    assert_string_equal(b.p, "ab");
    xs_buf_fini(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    xs_buf_fini(NULL);
}

/* Appending nothing still gives a string, as the callers' hand-written buffers did. */
static void test_empty_append_allocates(void **state)
{
    (void)state;
    xs_buf b;
    xs_buf_init(&b, 16);
    assert_int_equal(xs_buf_append(&b, NULL, 0), XS_OK);
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    assert_int_equal(b.cap, 16);
    size_t len = 99;
    char *text = xs_buf_take(&b, &len);
    assert_non_null(text);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    assert_null(b.p);
    assert_int_equal(b.first, 16);
}

/* The capacity starts at `first` and doubles; the text survives every move, binary included. */
static void test_grows_by_doubling(void **state)
{
    (void)state;
    xs_buf b;
    xs_buf_init(&b, 4);
    assert_int_equal(xs_buf_append(&b, "abc", 3), XS_OK); /* 3 + NUL fits 4 exactly */
    assert_int_equal(b.cap, 4);
    assert_int_equal(xs_buf_append(&b, "d", 1), XS_OK);
    assert_int_equal(b.cap, 8);
    assert_int_equal(xs_buf_append(&b, "\0efghijklm", 10), XS_OK); /* 14 + NUL: 16 */
    assert_int_equal(b.cap, 16);
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.p, "abcd\0efghijklm", 15);
    char big[1000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(xs_buf_append(&b, big, sizeof(big)), XS_OK);
    assert_int_equal(b.cap, 1024);
    assert_int_equal(b.len, 1014);
    assert_int_equal(b.p[b.len], '\0');
    assert_int_equal(xs_buf_puts(&b, "yz"), XS_OK);
    assert_string_equal(b.p + 1014, "yz");
    xs_buf_fini(&b);
}

/* printf appends whole, in the room there is or after growing, however long the text. */
static void test_printf(void **state)
{
    (void)state;
    xs_buf b;
    xs_buf_init(&b, 8);
    assert_int_equal(xs_buf_printf(&b, "%d-%s", 42, "ok"), XS_OK);
    assert_string_equal(b.p, "42-ok");
    assert_int_equal(b.cap, 8);
    char long_s[600];
    memset(long_s, 'q', sizeof(long_s) - 1);
    long_s[sizeof(long_s) - 1] = '\0';
    assert_int_equal(xs_buf_printf(&b, "[%s]", long_s), XS_OK);
    assert_int_equal(b.len, 5 + 2 + 599);
    assert_int_equal(strlen(b.p), b.len);
    assert_int_equal(b.p[5], '[');
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(xs_buf_printf(&b, "%s", ""), XS_OK);
    assert_int_equal(strlen(b.p), b.len);
    xs_buf_fini(&b);
    assert_int_equal(xs_buf_printf(&b, "%s", ""), XS_OK); /* allocates, like an append */
    assert_string_equal(b.p, "");
    xs_buf_fini(&b);
}

/* reserve makes room so the appends up to it cannot move the text. */
static void test_reserve(void **state)
{
    (void)state;
    xs_buf b = {0};
    assert_int_equal(xs_buf_reserve(&b, 1000), XS_OK);
    assert_int_equal(b.cap, 1024);
    assert_string_equal(b.p, "");
    char *p = b.p;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(xs_buf_append(&b, "z", 1), XS_OK);
    }
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.len, 1000);
    xs_buf_fini(&b);
}

/* A size that cannot be allocated fails the buffer: it keeps its text, refuses every later
 * append, and take hands back NULL. */
static void test_failure_sticks(void **state)
{
    (void)state;
    xs_buf b = {0};
    assert_int_equal(xs_buf_puts(&b, "kept"), XS_OK);
    assert_int_equal(xs_buf_append(&b, "x", SIZE_MAX - 2), XS_ENOMEM);
    assert_true(b.failed);
    assert_string_equal(b.p, "kept");
    assert_int_equal(b.len, 4);
    assert_int_equal(xs_buf_append(&b, "x", 1), XS_ENOMEM);
    assert_int_equal(xs_buf_printf(&b, "%d", 1), XS_ENOMEM);
    assert_int_equal(xs_buf_reserve(&b, 1), XS_ENOMEM);
    assert_string_equal(b.p, "kept");
    size_t len = 7;
    assert_null(xs_buf_take(&b, &len));
    assert_int_equal(len, 7);
    assert_null(b.p);
    assert_false(b.failed);
}

/* take on a buffer nothing was appended to gives NULL; otherwise the text, and b is empty. */
static void test_take(void **state)
{
    (void)state;
    xs_buf b = {0};
    assert_null(xs_buf_take(&b, NULL));
    assert_int_equal(xs_buf_puts(&b, "hello"), XS_OK);
    size_t len = 0;
    char *text = xs_buf_take(&b, &len);
    assert_string_equal(text, "hello");
    assert_int_equal(len, 5);
    free(text);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(xs_buf_puts(&b, "again"), XS_OK); /* reusable */
    text = xs_buf_take(&b, NULL);
    assert_string_equal(text, "again");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_is_empty),
        cmocka_unit_test(test_empty_append_allocates),
        cmocka_unit_test(test_grows_by_doubling),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_failure_sticks),
        cmocka_unit_test(test_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
