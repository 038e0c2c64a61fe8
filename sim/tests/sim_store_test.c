/*
 * sim_store_test.c: xero-sim's internals without HTTP: the tables' class-aware Fenwick trees
 * and update log against a naive model (adds, changes, reclassing, compaction, re-sorting),
 * packed strings, name keys, forms and HTTP dates, exact line arithmetic, the `where`
 * parser's class extraction and errors, the bounded counts behind fault occurrences, and
 * growing URL buffers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "query.h"
#include "settings.h"
#include "store.h"
#include "util.h"

static void test_tables_against_model(void **state)
{
    (void)state;
    sim_table t;
    memset(&t, 0, sizeof(t));
    enum { N = 3000, CLS = 5 };
    sim_rec *recs = calloc(N, sizeof(*recs));
    sim_rng r = {99};
    /* add in creation order with ascending times, as the API does */
    for (uint32_t i = 0; i < N; i++) {
        sim__rng_uuid(&r, &recs[i].id);
        recs[i].cls = (uint8_t)sim__rng_below(&r, CLS);
        recs[i].updated = 1000 + i;
        assert_int_equal(sim__table_add(&t, &recs[i]), XS_OK);
    }
    /* many changes: moves to the end of the log, some change class; this also compacts */
    xs_time now = 100000;
    for (int k = 0; k < 20000; k++) {
        sim_rec *x = &recs[sim__rng_below(&r, N)];
        uint8_t cls = sim__rng_below(&r, 4) == 0 ? (uint8_t)sim__rng_below(&r, CLS) : x->cls;
        assert_int_equal(sim__table_touch(&t, x, now + k / 3, cls), XS_OK);
    }
    assert_true(t.nlog < 2 * N + 1024 + 1);
    for (uint32_t i = 0; i < N; i++) {
        assert_ptr_equal(sim__table_find(&t, &recs[i].id), &recs[i]);
    }
    xs_uuid none = {{0xde, 0xad}};
    assert_null(sim__table_find(&t, &none));
    /* for several masks: counts, creation-order selects and update-order selects agree with
     * a scan */
    for (uint32_t mask = 1; mask < (1u << CLS); mask += 3) {
        uint32_t want = 0;
        for (uint32_t i = 0; i < N; i++) {
            want += (mask >> recs[i].cls) & 1u;
        }
        assert_int_equal(sim__table_count(&t, mask), want);
        assert_int_equal(sim__fw_prefix(&t.fc, mask, N), want);
        uint32_t k = 0;
        for (uint32_t i = 0; i < N; i++) {
            if ((mask >> recs[i].cls) & 1u) {
                assert_int_equal(sim__fw_select(&t.fc, mask, k), i);
                k++;
            }
        }
        /* update order: live log entries of the classes, ascending time */
        k = 0;
        xs_time prev = 0;
        for (uint32_t p = 0; p < t.nlog; p++) {
            sim_rec *x = t.recs[t.log[p].idx];
            if (x->upos != p || ((mask >> x->cls) & 1u) == 0) {
                continue;
            }
            assert_int_equal(sim__fw_select(&t.fu, mask, k), p);
            assert_true(x->updated >= prev);
            prev = x->updated;
            k++;
        }
        assert_int_equal(k, want);
        /* If-Modified-Since: a binary search then counts */
        uint32_t from = sim__log_lower(&t, now + 3000);
        uint32_t since = 0;
        for (uint32_t i = 0; i < N; i++) {
            since += recs[i].updated >= now + 3000 && ((mask >> recs[i].cls) & 1u);
        }
        assert_int_equal(sim__fw_prefix(&t.fu, mask, t.nlog) - sim__fw_prefix(&t.fu, mask, from),
                         since);
    }
    /* re-sorting after a bulk load with past times keeps everything consistent */
    for (uint32_t i = 0; i < N; i += 7) {
        recs[i].updated = 5 + i % 13;
    }
    assert_int_equal(sim__table_resort(&t), XS_OK);
    for (uint32_t p = 1; p < t.nlog; p++) {
        assert_true(t.log[p - 1].t <= t.log[p].t);
    }
    assert_int_equal(sim__fw_prefix(&t.fu, 0x1F, t.nlog), N);
    free(t.recs);
    free(t.idh);
    free(t.log);
    for (int c = 0; c < SIM_MAX_CLASSES; c++) {
        free(t.fc.t[c]);
        free(t.fu.t[c]);
    }
    free(recs);
}

static void test_strings_and_text(void **state)
{
    (void)state;
    sim_strs s = {NULL};
    const char *vals[5] = {"alpha", NULL, "", "delta", "epsilon"};
    assert_int_equal(sim__strs_build(&s, vals, 5), XS_OK);
    assert_string_equal(sim__strs_get(&s, 0), "alpha");
    assert_string_equal(sim__strs_get(&s, 1), "");
    assert_string_equal(sim__strs_get(&s, 3), "delta");
    const char *back[5];
    sim__strs_load(&s, back, 5);
    /* rebuilding from pointers into the old storage is allowed */
    back[1] = "beta";
    assert_int_equal(sim__strs_build(&s, back, 5), XS_OK);
    assert_string_equal(sim__strs_get(&s, 1), "beta");
    assert_string_equal(sim__strs_get(&s, 4), "epsilon");
    sim__strs_free(&s);
    assert_string_equal(sim__strs_get(&s, 0), "");

    char k[64];
    sim__norm_key("  Acme   LTD\t ", k, sizeof(k));
    assert_string_equal(k, "acme ltd");
    assert_true(sim__norm_eq("ACME ltd", " acme  Ltd"));
    assert_false(sim__norm_eq("Acme Ltd", "Acme Ltd."));
    assert_int_equal(sim__utf8_len("Māori Ō"), 7);

    char *v = NULL;
    const char *form = "grant_type=refresh_token&refresh_token=a%2Bb%20c+d&x=";
    assert_int_equal(sim__form_get(form, strlen(form), "refresh_token", &v), XS_OK);
    assert_string_equal(v, "a+b c d");
    free(v);
    assert_int_equal(sim__form_get(form, strlen(form), "x", &v), XS_OK);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(sim__form_get(form, strlen(form), "nope", &v), XS_ENOTFOUND);
    assert_int_equal(sim__form_get("a=%4", 4, "a", &v), XS_EPARSE);
    assert_int_equal(sim__form_get("a=%00", 5, "a", &v), XS_EPARSE);

    xs_time t;
    assert_int_equal(sim__time_parse_http("Sun, 06 Nov 1994 08:49:37 GMT", &t), XS_OK);
    assert_int_equal(t, INT64_C(784111777000));
    assert_int_equal(sim__time_parse_http("Sun, 06 Nov 1994 08:49:37 PST", &t), XS_EPARSE);
    assert_int_equal(sim__time_parse_http("2024-01-01", &t), XS_EPARSE);
    char buf[XS_TIME_ISO_MAX];
    sim__time_format_plain(784111777000, buf);
    assert_string_equal(buf, "1994-11-06T08:49:37");
    sim__time_format_ms(784111777123, buf);
    assert_string_equal(buf, "1994-11-06T08:49:37.123");
    assert_int_equal(sim__day_start(784111777000), 784080000000);

    xs_uuid u;
    assert_true(xs_uuid_parse("0B8BB1C2-1111-4222-8333-944444444444", &u));
    char us[XS_UUID_STR];
    xs_uuid_format(&u, us);
    assert_string_equal(us, "0b8bb1c2-1111-4222-8333-944444444444");
    assert_false(xs_uuid_parse("0b8bb1c2-1111-4222-8333-94444444444", &u));
    assert_false(xs_uuid_parse("0b8bb1c2x1111-4222-8333-944444444444", &u));

    uint32_t ppm[SIM_FAULT_NKINDS] = {0};
    char why[160];
    assert_int_equal(sim__fault_rates_parse("500=0.25,hang=0.000001", ppm, why), XS_OK);
    assert_int_equal(ppm[SIM_FAULT_500], 250000);
    assert_int_equal(ppm[SIM_FAULT_HANG], 1);
    assert_int_equal(sim__fault_rates_parse("500=0.7,503=0.7", ppm, why), XS_EINVAL);
    assert_int_equal(sim__fault_rates_parse("meteor=0.1", ppm, why), XS_EINVAL);
    assert_int_equal(sim__fault_rates_parse("500=2", ppm, why), XS_EINVAL);
}

static xs_money m(const char *s)
{
    xs_money v;
    assert_int_equal(xs_money_parse(s, &v), XS_OK);
    return v;
}

static void expect_line(const char *q, const char *u, const char *rate, const char *want)
{
    xs_money out;
    assert_int_equal(sim__money_line(m(q), m(u), m(rate), &out), XS_OK);
    if (xs_money_cmp(out, m(want)) != 0) {
        char got[XS_MONEY_TEXT_MAX];
        xs_money_format_min(out, 2, got);
        fprintf(stderr, "%s x %s less %s%%: got %s, want %s\n", q, u, rate, got, want);
        fail();
    }
}

static void test_line_arithmetic(void **state)
{
    (void)state;
    expect_line("3", "19.99", "0", "59.97");
    expect_line("2.5", "10.1234", "0", "25.31"); /* 25.3085 */
    expect_line("1.3333", "3", "0", "4.00");     /* 3.9999 */
    expect_line("1", "0.005", "0", "0.01");      /* half away from zero */
    expect_line("-1", "0.005", "0", "-0.01");
    expect_line("4", "12.50", "12.5", "43.75");
    expect_line("3", "33.3333", "10", "90.00"); /* 89.99991 */
    expect_line("7", "0.0715", "0", "0.50");    /* 0.5005 */
    expect_line("0.0001", "0.0001", "0", "0.00");
    expect_line("1000000", "999999.9999", "0", "999999999900.00");
    expect_line("2", "5", "100", "0.00");
    xs_money out;
    assert_int_equal(sim__money_line(m("5000000"), m("5000000"), m("0"), &out), XS_ERANGE);
    assert_int_equal(sim__money_line(m("1"), m("1"), m("101"), &out), XS_ERANGE);

    /* totals: Exclusive tax per line, rounded half up; Inclusive tax is the tax part */
    sim_line l[2];
    memset(l, 0, sizeof(l));
    const char *v0[L_NSTR] = {"a", "", "200", "OUTPUT2"};
    const char *v1[L_NSTR] = {"b", "", "200", "OUTPUT2"};
    sim__strs_build(&l[0].s, v0, L_NSTR);
    sim__strs_build(&l[1].s, v1, L_NSTR);
    l[0].amount = m("59.97");
    l[1].amount = m("0.03");
    xs_money sub, tax, tot, disc;
    assert_int_equal(sim__lines_total(l, 2, SIM_LAT_EXCLUSIVE, &sub, &tax, &tot, &disc), XS_OK);
    assert_int_equal(xs_money_cmp(tax, m("9.00")), 0); /* 8.9955 -> 9.00, 0.0045 -> 0.00 */
    assert_int_equal(xs_money_cmp(tot, m("69.00")), 0);
    l[0].amount = m("115");
    l[1].amount = m("10");
    assert_int_equal(sim__lines_total(l, 2, SIM_LAT_INCLUSIVE, &sub, &tax, &tot, &disc), XS_OK);
    assert_int_equal(xs_money_cmp(tax, m("16.30")), 0);
    assert_int_equal(xs_money_cmp(sub, m("108.70")), 0);
    assert_int_equal(xs_money_cmp(tot, m("125.00")), 0);
    assert_int_equal(sim__lines_total(l, 2, SIM_LAT_NOTAX, &sub, &tax, &tot, &disc), XS_OK);
    assert_true(xs_money_is_zero(tax));
    sim__strs_free(&l[0].s);
    sim__strs_free(&l[1].s);
}

static void test_where(void **state)
{
    (void)state;
    char why[200];
    sim_where *w = sim__where_parse(
        &sim__invoice_ops, "Type==\"ACCREC\" AND (Status==\"DRAFT\" OR Status=\"PAID\")", why);
    assert_non_null(w);
    assert_true(sim__where_class_constrained(w));
    sim__where_free(w);
    w = sim__where_parse(&sim__invoice_ops,
                         "Contact.ContactID==Guid(\"0b8bb1c2-1111-4222-8333-944444444444\") && "
                         "Date>=DateTime(2020, 01, 01) && AmountDue > 0 && "
                         "!Reference.ToLower().Contains(\"x\")",
                         why);
    assert_non_null(w);
    assert_false(sim__where_class_constrained(w));
    sim__where_free(w);
    const char *bad[] = {"Nope==1",
                         "Status==",
                         "(Status==\"DRAFT\"",
                         "Status==\"DRAFT\" AND",
                         "\"lonely literal\"",
                         "Date>=DateTime(2020)",
                         "Status.Explode(\"x\")",
                         "Guid(\"nope\")==Status",
                         "Status==\"x",
                         "Status == @"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        w = sim__where_parse(&sim__invoice_ops, bad[i], why);
        if (w != NULL) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
        }
        assert_null(w);
        assert_true(strlen(why) > 0);
    }
}

static void test_counts_bounded(void **state)
{
    (void)state;
    sim_counts m;
    memset(&m, 0, sizeof(m));
    m.cap = 100;
    /* counts per key, as the faults' occurrence counts need */
    assert_int_equal(sim__counts_bump(&m, 7), 0);
    assert_int_equal(sim__counts_bump(&m, 7), 1);
    assert_int_equal(sim__counts_bump(&m, 8), 0);
    assert_int_equal(sim__counts_bump(&m, 7), 2);
    /* a flood of distinct keys: memory stays within two generations... */
    for (uint64_t k = 1000; k < 100000; k++) {
        sim__counts_bump(&m, k);
        assert_true(sim__counts_size(&m) <= 2 * (size_t)m.cap);
        /* ...while a key in use (a request being retried) keeps its count throughout */
        if (k % 50 == 0) {
            assert_int_equal(sim__counts_bump(&m, 7), 3 + (k - 1000) / 50);
        }
    }
    uint64_t seven = sim__counts_bump(&m, 7);
    /* a key not seen for more than cap other keys is forgotten: counted from 0 again */
    assert_int_equal(sim__counts_bump(&m, 8), 0);
    sim__counts_free(&m);
    assert_int_equal(sim__counts_size(&m), 0);
    assert_int_equal(m.cap, 100);
    assert_int_equal(sim__counts_bump(&m, 7), 0);
    assert_true(seven > 1000);
    sim__counts_free(&m);
    /* the default capacity */
    memset(&m, 0, sizeof(m));
    for (uint64_t k = 0; k < 3 * (uint64_t)SIM_COUNTS_CAP; k++) {
        sim__counts_bump(&m, k);
    }
    assert_true(sim__counts_size(&m) <= 2 * (size_t)SIM_COUNTS_CAP);
    assert_true(sim__counts_size(&m) >= SIM_COUNTS_CAP);
    sim__counts_free(&m);
}

static void test_url_append_grows(void **state)
{
    (void)state;
    xs_buf b = {0};
    assert_true(sim__url_append(&b, "http://x/cb?state=", false));
    char big[20001];
    memset(big, ' ', 20000);
    big[20000] = '\0';
    assert_true(sim__url_append(&b, big, true));
    assert_int_equal(b.len, strlen("http://x/cb?state=") + 3 * 20000);
    assert_int_equal(strlen(b.p), b.len);
    assert_int_equal(strncmp(b.p + 18, "%20%20", 6), 0);
    assert_false(b.failed);
    xs_buf_fini(&b);
    assert_null(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_against_model), cmocka_unit_test(test_strings_and_text),
        cmocka_unit_test(test_line_arithmetic),      cmocka_unit_test(test_where),
        cmocka_unit_test(test_counts_bounded),       cmocka_unit_test(test_url_append_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
