/* decide_test.c: the decision on one record (engine/decide.h): what Xero computes never counts
 * as a change of either side, a record final in Xero keeps Xero's version, and an echo of what
 * we sent is recognised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine/decide.h"

static const char *const computed[] = {"total", NULL};

/* final_status: an invoice VOIDED in Xero is final there. */
static bool final_status(const json_t *rec)
{
    const char *s = json_string_value(json_object_get(rec, "status"));
    return s != NULL && strcmp(s, "VOIDED") == 0;
}

static const xs_entity_ops plain = {.info = &xs_entity_table[XS_ENTITY_CONTACT]};
static const xs_entity_ops with_totals = {
    .info = &xs_entity_table[XS_ENTITY_INVOICE], .computed = computed, .final = final_status};

/* J parses a JSON text (new). */
static json_t *J(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    return v;
}

/* decide runs decide_record on JSON texts under policy; *fix is freed unless wanted. */
static xs_sync_decision decide(const xs_entity_ops *ops, const char *base, const char *local,
                               const char *xero, xs_policy policy, json_t **fix)
{
    settings set = {.policy = policy, .fallback = XS_POLICY_LAST_WRITE_WINS};
    json_t *b = base != NULL ? J(base) : NULL, *l = J(local), *x = J(xero), *f = NULL;
    xs_sync_decision d;
    assert_int_equal(decide_record(ops, b, l, x, 100, 200, NULL, &set, &d, &f), XS_OK);
    json_decref(b);
    json_decref(l);
    json_decref(x);
    if (fix != NULL) {
        *fix = f;
    } else {
        json_decref(f);
    }
    return d;
}

static void test_plain_entity(void **state)
{
    (void)state;
    xs_sync_decision d = decide(&plain, "{\"name\":\"A\"}", "{\"name\":\"B\"}", "{\"name\":\"A\"}",
                                XS_POLICY_LAST_WRITE_WINS, NULL);
    assert_int_equal(d.action, XS_SYNC_TO_XERO);
    assert_false(d.conflict);
    xs_sync_decision_fini(&d);
    d = decide(&plain, "{\"name\":\"A\"}", "{\"name\":\"B\"}", "{\"name\":\"C\"}", XS_POLICY_MANUAL,
               NULL);
    assert_int_equal(d.action, XS_SYNC_HOLD);
    assert_true(d.conflict);
    xs_sync_decision_fini(&d);
}

static void test_computed_is_no_change(void **state)
{
    (void)state;
    /* Xero's total moved (a payment, say): neither side edited anything. The result carries
     * Xero's total, and the local row is to be fixed to it. */
    json_t *fix = NULL;
    xs_sync_decision d = decide(
        &with_totals, "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"10.00\"}",
        "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"10.00\"}",
        "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"12.00\"}", XS_POLICY_MANUAL, &fix);
    assert_int_equal(d.action, XS_SYNC_NONE);
    assert_false(d.conflict);
    assert_non_null(fix);
    assert_string_equal(json_string_value(json_object_get(fix, "total")), "12.00");
    json_decref(fix);
    xs_sync_decision_fini(&d);
    /* A local edit with Xero's total moved: the edit goes to Xero, with Xero's total kept. */
    d = decide(&with_totals, "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"10.00\"}",
               "{\"ref\":\"S\",\"status\":\"AUTHORISED\",\"total\":\"10.00\"}",
               "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"12.00\"}", XS_POLICY_MANUAL,
               NULL);
    assert_int_equal(d.action, XS_SYNC_TO_XERO);
    assert_false(d.conflict);
    assert_string_equal(json_string_value(json_object_get(d.result, "ref")), "S");
    assert_string_equal(json_string_value(json_object_get(d.result, "total")), "12.00");
    xs_sync_decision_fini(&d);
}

static void test_final_in_xero(void **state)
{
    (void)state;
    /* Voided in Xero while edited locally: Xero's version is kept, the local change undone and
     * counted as a conflict, whatever the policy. */
    xs_sync_decision d =
        decide(&with_totals, "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"1\"}",
               "{\"ref\":\"S\",\"status\":\"AUTHORISED\",\"total\":\"1\"}",
               "{\"ref\":\"R\",\"status\":\"VOIDED\",\"total\":\"1\"}", XS_POLICY_LOCAL_WINS, NULL);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    assert_true(d.conflict);
    assert_string_equal(json_string_value(json_object_get(d.result, "status")), "VOIDED");
    assert_non_null(strstr(d.reason, "VOIDED"));
    xs_sync_decision_fini(&d);
    /* Voided in Xero, not edited here: no conflict. */
    d = decide(&with_totals, "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"1\"}",
               "{\"ref\":\"R\",\"status\":\"AUTHORISED\",\"total\":\"1\"}",
               "{\"ref\":\"R\",\"status\":\"VOIDED\",\"total\":\"1\"}", XS_POLICY_LOCAL_WINS, NULL);
    assert_int_equal(d.action, XS_SYNC_TO_LOCAL);
    assert_false(d.conflict);
    xs_sync_decision_fini(&d);
}

static void test_echo(void **state)
{
    (void)state;
    json_t *sent = J("{\"ref\":\"R\",\"note\":null,\"total\":\"1\"}");
    json_t *same = J("{\"ref\":\"R\",\"note\":\"filled by Xero\",\"total\":\"9\"}");
    json_t *other = J("{\"ref\":\"Q\",\"note\":null,\"total\":\"1\"}");
    /* A create: what we set is there; what we left empty Xero may fill; totals are Xero's. */
    assert_true(decide_sent_matches(&with_totals, sent, same));
    assert_false(decide_sent_matches(&with_totals, sent, other));
    /* An update: exactly what we sent, in everything a person edits. */
    assert_false(decide_holds_sent(&with_totals, sent, same));
    json_t *exact = J("{\"ref\":\"R\",\"note\":null,\"total\":\"7\"}");
    assert_true(decide_holds_sent(&with_totals, sent, exact));
    json_decref(exact);
    json_decref(sent);
    json_decref(same);
    json_decref(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_entity),
        cmocka_unit_test(test_computed_is_no_change),
        cmocka_unit_test(test_final_in_xero),
        cmocka_unit_test(test_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
