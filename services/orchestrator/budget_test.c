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
        assert_true(orch_budget_acquire_n(b, "t1", 1000, 1, NULL));
    }
    int64_t wait = 0;
    assert_false(orch_budget_acquire_n(b, "t1", 1000, 1, &wait));
    assert_true(wait >= 1);
    /* Another tenant is not held up. */
    assert_true(orch_budget_acquire_n(b, "t2", 1000, 1, NULL));
    orch_budget_release_n(b, "t1", 1100, 1100, 1, 1, NULL);
    assert_true(orch_budget_acquire_n(b, "t1", 1100, 1, NULL));
    orch_budget_destroy(b);
}

/* No 60 s from any of the call times (ascending) hold more than 60 calls. */
static void assert_at_most_60_a_minute(const int64_t *times, int n)
{
    for (int i = 0; i < n; i++) {
        int in = 0;
        for (int j = i; j < n && times[j] < times[i] + 60000; j++) {
            in++;
        }
        assert_true(in <= 60);
    }
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
        if (orch_budget_acquire_n(b, "t", now, 1, NULL)) {
            times[n++] = now;
            orch_budget_release_n(b, "t", now + 10, now + 10, 1, 1, NULL);
        }
    }
    assert_true(n >= 180);
    assert_at_most_60_a_minute(times, n);
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
    assert_true(orch_budget_acquire_n(b, "t", 0, 1, NULL));
    orch_budget_seen seen = {.status = 200,
                             .min_remaining = 1,
                             .day_remaining = 4000,
                             .app_min_remaining = 9000,
                             .retry_after_s = -1};
    orch_budget_release_n(b, "t", 10, 10, 1, 1, &seen);
    assert_true(orch_budget_acquire_n(b, "t", 20, 1, NULL));
    orch_budget_release_n(b, "t", 30, 30, 1, 1, NULL);
    int64_t wait = 0;
    assert_false(orch_budget_acquire_n(b, "t", 40, 1, &wait));
    assert_true(wait > 50000);
    assert_true(orch_budget_acquire_n(b, "t", 61100, 1, NULL));
    orch_budget_seen limited = {.status = 429,
                                .min_remaining = 0,
                                .day_remaining = -1,
                                .app_min_remaining = -1,
                                .retry_after_s = 7,
                                .problem = "minute"};
    orch_budget_release_n(b, "t", 61200, 61200, 1, 1, &limited);
    assert_false(orch_budget_acquire_n(b, "t", 62000, 1, &wait));
    assert_true(wait >= 6000);
    assert_true(orch_budget_acquire_n(b, "other", 62000, 1, NULL));
    orch_budget_release_n(b, "other", 62000, 62000, 1, 1, NULL);
    /* An app-wide 429 stops every tenant. */
    orch_budget_seen app = {.status = 429,
                            .min_remaining = -1,
                            .day_remaining = -1,
                            .app_min_remaining = 0,
                            .retry_after_s = 3,
                            .problem = "appminute"};
    assert_true(orch_budget_acquire_n(b, "other", 62100, 1, NULL));
    orch_budget_release_n(b, "other", 62100, 62100, 1, 1, &app);
    assert_false(orch_budget_acquire_n(b, "third", 62200, 1, NULL));
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
        got += orch_budget_acquire_n(b, "t", 1000 + i, 1, NULL);
    }
    assert_int_equal(got, 100);
    got = 0;
    for (int i = 0; i < 200; i++) {
        got += orch_budget_acquire_n(b, "u", 2000 + i, 1, NULL);
    }
    assert_int_equal(got, 50); /* the app's 150 a minute */
    /* Seeded calls (from the audit after a restart) count. */
    orch_budget *c = NULL;
    assert_int_equal(orch_budget_create(&c, &XERO), XS_OK);
    for (int i = 0; i < 60; i++) {
        orch_budget_seed(c, "t", 500 + i);
    }
    assert_false(orch_budget_acquire_n(c, "t", 1000, 1, NULL));
    orch_budget_destroy(c);
    orch_budget_destroy(b);
}

/* Steps holding several permits (a pull reading pages one after another): at most what is
 * left is granted, one call is in flight per step, unused permits come back at once, and
 * the calls made count from when they could have gone out: never more than 60 calls in any
 * 60 s, judged by when they were really made. */
static void test_several_permits(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 10, NULL), 10);
    orch_budget_release_n(b, "t", 500, 0, 10, 2, NULL);
    /* 2 used; the 8 others are back: 58 left this minute. */
    assert_int_equal(orch_budget_acquire_n(b, "t", 600, 100, NULL), 58);
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 700, 1, &wait), 0);
    assert_true(wait > 50000);
    orch_budget_release_n(b, "t", 900, 600, 58, 58, NULL);
    /* Of each step, the first call counts from when the step began (0 and 600), the rest
     * from when it ended (500 and 900). With the margin of 1 s, a minute frees them at
     * 61.0, 61.5, 61.6 and 61.9 s. */
    int64_t frees[] = {61200, 61500, 61700};
    for (size_t i = 0; i < sizeof(frees) / sizeof(frees[0]); i++) {
        assert_int_equal(orch_budget_acquire_n(b, "t", frees[i], 5, NULL), 1);
        orch_budget_release_n(b, "t", frees[i] + 50, frees[i], 1, 1, NULL);
    }
    assert_int_equal(orch_budget_acquire_n(b, "t", 61800, 5, &wait), 0);
    assert_int_equal(orch_budget_acquire_n(b, "t", 62000, 100, NULL), 57);
    orch_budget_destroy(b);

    /* A simulated run: steps of up to 8 pages, a call every 40 ms within a step, each step
     * ending after its calls; the real call times never exceed 60 in 60 s. */
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    int64_t times[2000];
    int n = 0;
    for (int64_t now = 0; now < 300000 && n < 1990;) {
        int64_t got = orch_budget_acquire_n(b, "t", now, 8, NULL);
        if (got == 0) {
            now += 25;
            continue;
        }
        int64_t use = got > 3 ? got - 1 : got; /* the last page comes early sometimes */
        for (int64_t k = 0; k < use; k++) {
            times[n++] = now + k * 40;
        }
        int64_t end = now + use * 40;
        orch_budget_release_n(b, "t", end, now, got, use, NULL);
        now = end;
    }
    assert_true(n >= 240);
    assert_at_most_60_a_minute(times, n);
    /* One step at a time per in-flight slot: a tenant at its limit of 5 steps gets none. */
    for (int i = 0; i < 5; i++) {
        assert_true(orch_budget_acquire_n(b, "u", 0, 3, NULL) >= 1);
    }
    assert_int_equal(orch_budget_acquire_n(b, "u", 0, 3, NULL), 0);
    orch_budget_destroy(b);
}

/* A step that needs two permits and got one gives it back: nothing is counted, and the
 * minute's last permit is there for the next step. */
static void test_cancel(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 59, NULL), 59);
    orch_budget_release_n(b, "t", 100, 0, 59, 59, NULL);
    assert_int_equal(orch_budget_acquire_n(b, "t", 200, 2, NULL), 1);
    orch_budget_cancel(b, "t", 200, 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 300, 2, NULL), 1);
    orch_budget_release_n(b, "t", 400, 300, 1, 1, NULL);
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 500, 1, &wait), 0);
    /* Nor does a cancelled step hold an in-flight slot. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(orch_budget_acquire_n(b, "u", 0, 1, NULL), 1);
        orch_budget_cancel(b, "u", 0, 1);
    }
    assert_int_equal(orch_budget_acquire_n(b, "u", 0, 1, NULL), 1);
    orch_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrency),     cmocka_unit_test(test_minute_sliding_window),
        cmocka_unit_test(test_corrections),     cmocka_unit_test(test_day_and_app),
        cmocka_unit_test(test_several_permits), cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
