/* match_test.c: first-link matching (engine/match.h): one local row per Xero record and one
 * Xero record per local row, the stronger key first, as many links as can be had. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/match.h"

/* assign runs match_assign on candidates and keys written as JSON texts: cands an array of
 * [xero_id, local_id, key]. */
static json_t *assign(const char *cands, const char *keys)
{
    json_t *c = json_loads(cands, 0, NULL), *k = json_loads(keys, 0, NULL);
    assert_non_null(c);
    assert_non_null(k);
    xs_match_pairs pairs = {0};
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p)
    {
        assert_true(xs_match_pairs_add(&pairs, json_string_value(json_array_get(p, 0)),
                                       json_string_value(json_array_get(p, 1)),
                                       json_string_value(json_array_get(p, 2))));
    }
    json_t *out = match_assign(&pairs, k);
    xs_match_pairs_fini(&pairs);
    json_decref(c);
    json_decref(k);
    assert_non_null(out);
    return out;
}

/* linked is the local id Xero record x was linked to, with its key, as "local/key" in buf. */
static const char *linked(const json_t *out, const char *x, char *buf, size_t cap)
{
    json_t *m = json_object_get(out, x);
    if (m == NULL) {
        return "";
    }
    snprintf(buf, cap, "%s/%s", json_string_value(json_object_get(m, "local_id")),
             json_string_value(json_object_get(m, "key")));
    return buf;
}

static void test_none(void **state)
{
    (void)state;
    json_t *out = assign("[]", "[\"email\", \"name\"]");
    assert_int_equal(json_object_size(out), 0);
    json_decref(out);
}

static void test_stronger_key_wins(void **state)
{
    (void)state;
    /* X1 matches L1 by name and L2 by e-mail: e-mail is the stronger key. */
    json_t *out = assign("[[\"X1\",\"L1\",\"name\"],"
                         " [\"X1\",\"L2\",\"email\"]]",
                         "[\"email\", \"name\"]");
    char b[64];
    assert_string_equal(linked(out, "X1", b, sizeof(b)), "L2/email");
    assert_int_equal(json_object_size(out), 1);
    json_decref(out);
    /* The keys in the other order: name wins. */
    out = assign("[[\"X1\",\"L1\",\"name\"],"
                 " [\"X1\",\"L2\",\"email\"]]",
                 "[\"name\", \"email\"]");
    assert_string_equal(linked(out, "X1", b, sizeof(b)), "L1/name");
    json_decref(out);
}

static void test_one_row_once(void **state)
{
    (void)state;
    /* Two Xero records both match one local row by name: one is linked, the other is not (it
     * will be created), never both to the same row. */
    json_t *out = assign("[[\"X1\",\"L1\",\"name\"],"
                         " [\"X2\",\"L1\",\"name\"]]",
                         "[\"name\"]");
    assert_int_equal(json_object_size(out), 1);
    char b[64];
    const char *a = linked(out, "X1", b, sizeof(b));
    char c[64];
    const char *d = linked(out, "X2", c, sizeof(c));
    assert_true((strcmp(a, "L1/name") == 0) != (strcmp(d, "L1/name") == 0));
    json_decref(out);
}

static void test_augmenting_path(void **state)
{
    (void)state;
    /* X1 can have L1 (email) or L2 (name); X2 only L1 (email). A greedy choice gives X1 L1 and
     * leaves X2 to be created twice; the matching gives X1 L2 and X2 L1. */
    json_t *out = assign("[[\"X1\",\"L1\",\"email\"],"
                         " [\"X1\",\"L2\",\"name\"],"
                         " [\"X2\",\"L1\",\"email\"]]",
                         "[\"email\", \"name\"]");
    char b[64];
    assert_int_equal(json_object_size(out), 2);
    assert_string_equal(linked(out, "X2", b, sizeof(b)), "L1/email");
    assert_string_equal(linked(out, "X1", b, sizeof(b)), "L2/name");
    json_decref(out);
}

static void test_unknown_key_last(void **state)
{
    (void)state;
    /* A candidate by a key the connection does not list ranks after every listed one. */
    json_t *out = assign("[[\"X1\",\"L1\",\"fax\"],"
                         " [\"X1\",\"L2\",\"name\"]]",
                         "[\"email\", \"name\"]");
    char b[64];
    assert_string_equal(linked(out, "X1", b, sizeof(b)), "L2/name");
    json_decref(out);
}

static void test_many(void **state)
{
    (void)state;
    /* 200 Xero records in a chain: X(i) matches L(i) by name and L(i+1) by email. Every record
     * gets its own row by email (the stronger key), none twice. */
    xs_match_pairs c = {0};
    json_t *k = json_pack("[s, s]", "email", "name");
    for (int i = 0; i < 200; i++) {
        char x[16], l[16], l2[16];
        snprintf(x, sizeof(x), "X%d", i);
        snprintf(l, sizeof(l), "L%d", i);
        snprintf(l2, sizeof(l2), "L%d", i + 1);
        assert_true(xs_match_pairs_add(&c, x, l, "name"));
        assert_true(xs_match_pairs_add(&c, x, l2, "email"));
    }
    json_t *out = match_assign(&c, k);
    assert_non_null(out);
    assert_int_equal(json_object_size(out), 200);
    json_t *seen = json_object();
    const char *x;
    json_t *m;
    json_object_foreach(out, x, m)
    {
        const char *l = json_string_value(json_object_get(m, "local_id"));
        assert_null(json_object_get(seen, l));
        json_object_set_new(seen, l, json_true());
        assert_string_equal(json_string_value(json_object_get(m, "key")), "email");
    }
    json_decref(seen);
    json_decref(out);
    xs_match_pairs_fini(&c);
    json_decref(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_stronger_key_wins),
        cmocka_unit_test(test_one_row_once),
        cmocka_unit_test(test_augmenting_path),
        cmocka_unit_test(test_unknown_key_last),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
