/* budget_test.c: the rate budget against Xero's rules, with a simulated clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "budget.h"

static const orch_budget_limits XERO = {.tenant_concurrent = 5,
                                        .tenant_minute = 60,
                                        .tenant_day = 5000,
                                        .app_minute = 10000,
                                        .minute_ms = 60000,
                                        .day_ms = 86400000,
                                        .margin_ms = 1000};

static void test_concurrency(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    for (int i = 0; i < 5; i++) {
        assert_true(orch_budget_acquire(b, "t1", 1000, NULL));
    }
    int64_t wait = 0;
    assert_false(orch_budget_acquire(b, "t1", 1000, &wait));
    assert_true(wait >= 1);
    /* Another tenant is not held up. */
    assert_true(orch_budget_acquire(b, "t2", 1000, NULL));
    orch_budget_release(b, "t1", 1100, true, NULL);
    assert_true(orch_budget_acquire(b, "t1", 1100, NULL));
    orch_budget_destroy(b);
}

/* Never more than 60 in any 60 s: so never more than 60 in any of Xero's fixed windows,
 * whatever their phase. */
static void test_minute_sliding_window(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    int64_t times[400];
    int n = 0;
    for (int64_t now = 0; now < 240000 && n < 400; now += 50) {
        if (orch_budget_acquire(b, "t", now, NULL)) {
            times[n++] = now;
            orch_budget_release(b, "t", now + 10, true, NULL);
        }
    }
    assert_true(n >= 180);
    for (int i = 0; i < n; i++) {
        int in = 0;
        for (int j = i; j < n && times[j] < times[i] + 60000; j++) {
            in++;
        }
        assert_true(in <= 60);
    }
    json_t *j = orch_budget_json(b, "t", 240000);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "minute_limit")), 60);
    json_decref(j);
    orch_budget_destroy(b);
}

/* A reply's remaining count and a 429's Retry-After are obeyed. */
static void test_corrections(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    assert_true(orch_budget_acquire(b, "t", 0, NULL));
    orch_budget_seen seen = {.status = 200,
                             .min_remaining = 1,
                             .day_remaining = 4000,
                             .app_min_remaining = 9000,
                             .retry_after_s = -1};
    orch_budget_release(b, "t", 10, true, &seen);
    assert_true(orch_budget_acquire(b, "t", 20, NULL));
    orch_budget_release(b, "t", 30, true, NULL);
    int64_t wait = 0;
    assert_false(orch_budget_acquire(b, "t", 40, &wait));
    assert_true(wait > 50000);
    assert_true(orch_budget_acquire(b, "t", 61100, NULL));
    orch_budget_seen limited = {.status = 429,
                                .min_remaining = 0,
                                .day_remaining = -1,
                                .app_min_remaining = -1,
                                .retry_after_s = 7,
                                .problem = "minute"};
    orch_budget_release(b, "t", 61200, true, &limited);
    assert_false(orch_budget_acquire(b, "t", 62000, &wait));
    assert_true(wait >= 6000);
    assert_true(orch_budget_acquire(b, "other", 62000, NULL));
    orch_budget_release(b, "other", 62000, true, NULL);
    /* An app-wide 429 stops every tenant. */
    orch_budget_seen app = {.status = 429,
                            .min_remaining = -1,
                            .day_remaining = -1,
                            .app_min_remaining = 0,
                            .retry_after_s = 3,
                            .problem = "appminute"};
    assert_true(orch_budget_acquire(b, "other", 62100, NULL));
    orch_budget_release(b, "other", 62100, true, &app);
    assert_false(orch_budget_acquire(b, "third", 62200, NULL));
    orch_budget_destroy(b);
}

static void test_day_and_app(void **state)
{
    (void)state;
    orch_budget_limits lim = XERO;
    lim.tenant_day = 100;
    lim.tenant_minute = 1000;
    lim.tenant_concurrent = 1000;
    lim.app_minute = 150;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    int got = 0;
    for (int i = 0; i < 200; i++) {
        got += orch_budget_acquire(b, "t", 1000 + i, NULL);
    }
    assert_int_equal(got, 100);
    got = 0;
    for (int i = 0; i < 200; i++) {
        got += orch_budget_acquire(b, "u", 2000 + i, NULL);
    }
    assert_int_equal(got, 50); /* the app's 150 a minute */
    /* Seeded calls (from the audit after a restart) count. */
    orch_budget *c = NULL;
    assert_int_equal(orch_budget_create(&c, &XERO), XS_OK);
    for (int i = 0; i < 60; i++) {
        orch_budget_seed(c, "t", 500 + i);
    }
    assert_false(orch_budget_acquire(c, "t", 1000, NULL));
    orch_budget_destroy(c);
    orch_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_minute_sliding_window),
        cmocka_unit_test(test_corrections),
        cmocka_unit_test(test_day_and_app),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
