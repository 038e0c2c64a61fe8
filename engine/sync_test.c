/* sync_test.c: checksums, the decision table, every conflict policy, merge, fill-empty. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "xs/json.h"
#include "engine/sync.h"

static json_t *J(const char *text)
{
    json_t *v = xs_json_parse(text, strlen(text), NULL);
    assert_non_null(v);
    return v;
}

static void assert_record(const json_t *got, const char *want)
{
    json_t *w = J(want);
    char *g = xs_sync_canonical_text(got), *ws = xs_sync_canonical_text(w);
    if (!xs_json_equal(got, w)) {
        fail_msg("got %s, want %s", g, ws);
    }
    free(g);
    free(ws);
    json_decref(w);
}

static void test_checksum_is_canonical(void **state)
{
    (void)state;
    json_t *a = J("{\"name\":\"Acme\",\"amount\":12.50,\"tags\":[1,2]}");
    json_t *b = J("{\"tags\":[1,2],\"amount\":12.50,\"name\":\"Acme\"}");
    json_t *c = J("{\"tags\":[2,1],\"amount\":12.50,\"name\":\"Acme\"}");
    char ha[65], hb[65], hc[65];
    xs_sync_checksum(a, ha);
    xs_sync_checksum(b, hb);
    xs_sync_checksum(c, hc);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    char *t = xs_sync_canonical_text(b);
    assert_string_equal(t, "{\"amount\":12.50,\"name\":\"Acme\",\"tags\":[1,2]}");
    free(t);
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

static xs_sync_decision decide(const char *base, const char *local, const char *xero, xs_time lat,
                               xs_time xat, xs_policy p, xs_policy fb)
{
    json_t *b = base != NULL ? J(base) : NULL, *l = J(local), *x = J(xero);
    xs_sync_decision d;
    assert_int_equal(xs_sync_decide(b, l, x, lat, xat, p, fb, &d), XS_OK);
    json_decref(b);
    json_decref(l);
    json_decref(x);
    return d;
}

static void test_one_sided_changes(void **state)
{
    (void)state;
    const char *base = "{\"name\":\"A\",\"email\":\"a@x.nz\"}";
    xs_sync_decision d =
        decide(base, base, base, 1, 2, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_NONE);
    assert_false(d.conflict);
    xs_sync_decision_fini(&d);

    d = decide(base, "{\"name\":\"B\",\"email\":\"a@x.nz\"}", base, 5, 1, XS_POLICY_MANUAL,
               XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_TO_XERO);
    assert_false(d.conflict);
    assert_record(d.result, "{\"name\":\"B\",\"email\":\"a@x.nz\"}");
    xs_sync_decision_fini(&d);

    d = decide(base, base, "{\"name\":\"A\",\"email\":\"new@x.nz\"}", 5, 1, XS_POLICY_LOCAL_WINS,
               XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    assert_record(d.result, "{\"name\":\"A\",\"email\":\"new@x.nz\"}");
    xs_sync_decision_fini(&d);

    /* Both changed to the same data: no conflict, nothing to write. */
    d = decide(base, "{\"name\":\"C\",\"email\":\"a@x.nz\"}",
               "{\"name\":\"C\",\"email\":\"a@x.nz\"}", 5, 1, XS_POLICY_MANUAL,
               XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_NONE);
    assert_false(d.conflict);
    xs_sync_decision_fini(&d);

    /* A missing key reads as null; exact decimals compare by value. */
    d = decide("{\"name\":\"A\",\"fax\":null,\"rate\":1.50}", "{\"name\":\"A\",\"rate\":1.5}",
               "{\"name\":\"A\",\"rate\":1.500}", 1, 2, XS_POLICY_MANUAL,
               XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_NONE);
    xs_sync_decision_fini(&d);
}

/* decide_edits is decide knowing the local side's writes field by field. */
static xs_sync_decision decide_edits(const char *base, const char *local, const char *xero,
                                     xs_time lat, xs_time xat, const char *fields, xs_time since,
                                     xs_policy p, xs_policy fb)
{
    json_t *b = J(base), *l = J(local), *x = J(xero), *f = J(fields);
    xs_sync_edits e = {.fields = f, .since = since};
    xs_sync_decision d;
    assert_int_equal(xs_sync_decide_edits(b, l, x, lat, xat, &e, p, fb, &d), XS_OK);
    json_decref(b);
    json_decref(l);
    json_decref(x);
    json_decref(f);
    return d;
}

/* A local write that put back the agreed value (ARCHIVED, then ACTIVE again) while Xero
 * archived the record is a local change of the field: the later write wins, not Xero's
 * change by default. */
static void test_value_put_back_is_a_write(void **state)
{
    (void)state;
    const char *agreed = "{\"name\":\"A\",\"status\":\"ACTIVE\"}";
    const char *archived = "{\"name\":\"A\",\"status\":\"ARCHIVED\"}";
    /* Written at 300, after the base (agreed at 100), later than Xero's 200: local wins. */
    xs_sync_decision d = decide_edits(agreed, agreed, archived, 300, 200, "{\"status\":300}", 100,
                                      XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_TO_XERO);
    assert_record(d.result, agreed);
    assert_record(d.fields, "{\"status\":\"both:local\"}");
    xs_sync_decision_fini(&d);
    /* Xero's change is the later one: it wins, and the conflict says so. */
    d = decide_edits(agreed, agreed, archived, 300, 400, "{\"status\":300}", 100,
                     XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    assert_record(d.result, archived);
    xs_sync_decision_fini(&d);
    /* Written before the base was agreed: that decision saw it; Xero's change wins alone. */
    d = decide_edits(agreed, agreed, archived, 300, 200, "{\"status\":100}", 100,
                     XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_false(d.conflict);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);
    /* Another field's write changes nothing of this one. */
    d = decide_edits(agreed, agreed, archived, 300, 200, "{\"name\":300}", 100,
                     XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_false(d.conflict);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);
    /* Under merge, a field both sides wrote goes to the fallback; manual holds it. */
    d = decide_edits(agreed, agreed, archived, 300, 200, "{\"status\":300}", 100, XS_POLICY_MERGE,
                     XS_POLICY_MANUAL);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_HOLD);
    xs_sync_decision_fini(&d);
}

/* Where both sides changed a field, last_write_wins compares that field's own local time,
 * not the row's: a later local edit of another field does not carry an older one. */
static void test_field_times(void **state)
{
    (void)state;
    const char *base = "{\"email\":\"a@x.nz\",\"status\":\"ACTIVE\"}";
    const char *local = "{\"email\":\"b@x.nz\",\"status\":\"ARCHIVED\"}";
    const char *xero = "{\"email\":\"a@x.nz\",\"status\":\"GDPRREQUEST\"}";
    /* status written locally at 150, email at 300; Xero's status at 200. */
    xs_sync_decision d = decide_edits(base, local, xero, 300, 200, "{\"status\":150,\"email\":300}",
                                      100, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_record(d.result, "{\"email\":\"b@x.nz\",\"status\":\"GDPRREQUEST\"}");
    xs_sync_decision_fini(&d);
    /* Without field times the row's time decides, as before. */
    d = decide(base, local, xero, 300, 200, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_record(d.result, local);
    xs_sync_decision_fini(&d);
    /* Field times that are not an object are refused. */
    json_t *b = J(base), *f = J("[1]");
    xs_sync_edits e = {.fields = f, .since = 0};
    assert_int_equal(xs_sync_decide_edits(b, b, b, 1, 1, &e, XS_POLICY_LAST_WRITE_WINS,
                                          XS_POLICY_LAST_WRITE_WINS, &d),
                     XS_EINVAL);
    json_decref(b);
    json_decref(f);
}

static void test_policies_on_a_conflict(void **state)
{
    (void)state;
    const char *base = "{\"name\":\"A\",\"email\":\"a@x.nz\",\"phone\":\"1\"}";
    const char *local = "{\"name\":\"A local\",\"email\":\"a@x.nz\",\"phone\":\"1\"}";
    const char *xero = "{\"name\":\"A\",\"email\":\"a@xero.nz\",\"phone\":\"2\"}";

    /* last_write_wins, field by field: each side's change of a field only it changed stays,
     * whichever side is newer (the other side's edits are never undone). */
    const char *both = "{\"name\":\"A local\",\"email\":\"a@xero.nz\",\"phone\":\"2\"}";
    xs_sync_decision d =
        decide(base, local, xero, 200, 100, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_int_equal(d.policy, XS_POLICY_LAST_WRITE_WINS);
    assert_record(d.result, both);
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 100, 200, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_record(d.result, both);
    xs_sync_decision_fini(&d);
    /* A field both changed: the newer side's value, Xero's on a tie. */
    const char *local2 = "{\"name\":\"A local\",\"email\":\"a@local.nz\",\"phone\":\"1\"}";
    d = decide(base, local2, xero, 200, 100, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_record(d.result, "{\"name\":\"A local\",\"email\":\"a@local.nz\",\"phone\":\"2\"}");
    xs_sync_decision_fini(&d);
    d = decide(base, local2, xero, 100, 200, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_record(d.result, "{\"name\":\"A local\",\"email\":\"a@xero.nz\",\"phone\":\"2\"}");
    xs_sync_decision_fini(&d);
    d = decide(base, local2, xero, 100, 100, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_record(d.result, "{\"name\":\"A local\",\"email\":\"a@xero.nz\",\"phone\":\"2\"}");
    xs_sync_decision_fini(&d);
    /* Only Xero changed what differs: Xero's, locally. */
    d = decide(base, base, xero, 300, 100, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);

    d = decide(base, local, xero, 100, 200, XS_POLICY_LOCAL_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_TO_XERO);
    assert_int_equal(d.policy, XS_POLICY_LOCAL_WINS);
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 200, 100, XS_POLICY_XERO_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 200, 100, XS_POLICY_MANUAL, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_HOLD);
    assert_true(d.conflict);
    assert_null(d.result);
    xs_sync_decision_fini(&d);

    /* merge: disjoint fields combine, and both sides get the result. */
    d = decide(base, local, xero, 100, 200, XS_POLICY_MERGE, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_int_equal(d.policy, XS_POLICY_MERGE);
    assert_record(d.result, "{\"name\":\"A local\",\"email\":\"a@xero.nz\",\"phone\":\"2\"}");
    assert_string_equal(json_string_value(json_object_get(d.fields, "name")), "local");
    assert_string_equal(json_string_value(json_object_get(d.fields, "email")), "xero");
    xs_sync_decision_fini(&d);
}

static void test_merge_fallbacks(void **state)
{
    (void)state;
    const char *base = "{\"name\":\"A\",\"email\":\"a@x.nz\",\"phone\":\"1\"}";
    const char *local = "{\"name\":\"L\",\"email\":\"a@x.nz\",\"phone\":\"1\"}";
    const char *xero = "{\"name\":\"X\",\"email\":\"x@x.nz\",\"phone\":\"1\"}";
    /* name changed on both sides: the fallback decides that field only. */
    xs_sync_decision d = decide(base, local, xero, 100, 200, XS_POLICY_MERGE, XS_POLICY_LOCAL_WINS);
    assert_record(d.result, "{\"name\":\"L\",\"email\":\"x@x.nz\",\"phone\":\"1\"}");
    assert_int_equal(d.action, XS_SYNC_BOTH);
    assert_string_equal(json_string_value(json_object_get(d.fields, "name")), "both:local");
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 300, 200, XS_POLICY_MERGE, XS_POLICY_XERO_WINS);
    assert_record(d.result, xero);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 300, 200, XS_POLICY_MERGE, XS_POLICY_LAST_WRITE_WINS);
    assert_record(d.result, "{\"name\":\"L\",\"email\":\"x@x.nz\",\"phone\":\"1\"}");
    xs_sync_decision_fini(&d);
    d = decide(base, local, xero, 300, 200, XS_POLICY_MERGE, XS_POLICY_MANUAL);
    assert_int_equal(d.action, XS_SYNC_HOLD);
    assert_null(d.result);
    xs_sync_decision_fini(&d);

    /* merge is not a fallback of itself. */
    json_t *r = J(base);
    xs_sync_decision bad;
    assert_int_equal(xs_sync_decide(r, r, r, 0, 0, XS_POLICY_MERGE, XS_POLICY_MERGE, &bad),
                     XS_EINVAL);
    json_decref(r);
}

/* First link (no base): equal records need nothing; different ones are a conflict. */
static void test_first_link(void **state)
{
    (void)state;
    const char *l = "{\"name\":\"Acme\",\"email\":null,\"phone\":\"1\"}";
    const char *x = "{\"name\":\"Acme\",\"email\":\"a@x.nz\",\"phone\":\"2\"}";
    xs_sync_decision d =
        decide(NULL, l, l, 0, 0, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_int_equal(d.action, XS_SYNC_NONE);
    xs_sync_decision_fini(&d);
    d = decide(NULL, l, x, 10, 20, XS_POLICY_LAST_WRITE_WINS, XS_POLICY_LAST_WRITE_WINS);
    assert_true(d.conflict);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    xs_sync_decision_fini(&d);
    d = decide(NULL, l, x, 10, 20, XS_POLICY_MERGE, XS_POLICY_LOCAL_WINS);
    /* Without a base every differing field falls back: email and phone go local's way. */
    assert_record(d.result, l);
    xs_sync_decision_fini(&d);

    json_t *lj = J(l), *xj = J(x);
    json_t *f = xs_sync_fill_empty(lj, xj);
    assert_record(f, "{\"name\":\"Acme\",\"email\":\"a@x.nz\",\"phone\":\"1\"}");
    json_decref(f);
    json_decref(lj);
    json_decref(xj);
}

static void test_names_and_empties(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        xs_policy p;
        assert_int_equal(xs_policy_parse(xs_policy_name((xs_policy)i), &p), XS_OK);
        assert_int_equal(p, i);
    }
    xs_policy p;
    assert_int_equal(xs_policy_parse("whoever", &p), XS_EINVAL);
    assert_int_equal(xs_policy_parse(NULL, &p), XS_EINVAL);
    assert_string_equal(xs_sync_action_name(XS_SYNC_HOLD), "hold");
    json_t *e = J("[null, \"\", [], {}, \"x\", 0, [1]]");
    assert_true(xs_sync_is_empty(json_array_get(e, 0)));
    assert_true(xs_sync_is_empty(json_array_get(e, 1)));
    assert_true(xs_sync_is_empty(json_array_get(e, 2)));
    assert_true(xs_sync_is_empty(json_array_get(e, 3)));
    assert_false(xs_sync_is_empty(json_array_get(e, 4)));
    assert_false(xs_sync_is_empty(json_array_get(e, 5)));
    assert_false(xs_sync_is_empty(json_array_get(e, 6)));
    assert_true(xs_sync_is_empty(NULL));
    json_decref(e);
    /* A decimal survives a deep copy exactly. */
    json_t *d = J("{\"a\":12.50}");
    json_t *c = xs_sync_fill_empty(d, d);
    char *t = xs_json_dump(c, 0);
    assert_string_equal(t, "{\"a\":12.50}");
    free(t);
    json_decref(c);
    json_decref(d);
}

/* A raw sum depends on the text, the entity and nothing else; it is hex. */
static void test_raw_sum(void **state)
{
    (void)state;
    char a[2 * XS_SHA256_LEN + 1], b[2 * XS_SHA256_LEN + 1], c[2 * XS_SHA256_LEN + 1];
    const char *rec = "{\"ContactID\":\"x\",\"Name\":\"A\"}";
    assert_true(xs_sync_raw_sum("contact", rec, strlen(rec), a));
    assert_true(xs_sync_raw_sum("contact", rec, strlen(rec), b));
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_true(xs_sync_raw_sum("invoice", rec, strlen(rec), c));
    assert_string_not_equal(a, c);
    assert_true(xs_sync_raw_sum("contact", rec, strlen(rec) - 1, c));
    assert_string_not_equal(a, c);
    /* Not the plain SHA-256 of the text: the key holds the canonical form's version. */
    char plain[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(rec, strlen(rec), plain);
    assert_string_not_equal(a, plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_sum),           cmocka_unit_test(test_checksum_is_canonical),
        cmocka_unit_test(test_one_sided_changes), cmocka_unit_test(test_value_put_back_is_a_write),
        cmocka_unit_test(test_field_times),       cmocka_unit_test(test_policies_on_a_conflict),
        cmocka_unit_test(test_merge_fallbacks),   cmocka_unit_test(test_first_link),
        cmocka_unit_test(test_names_and_empties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
