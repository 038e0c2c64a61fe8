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
                                        .margin_ms = 1000,
                                        .probe_ms = 300000};

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
    /* Full for every tenant until its first call leaves the window (61 s after 1,000). */
    assert_int_equal(orch_budget_app_wait(b, 3000), 61000 + 1000 - 3000);
    assert_int_equal(orch_budget_acquire_n(b, "new tenant", 3000, 1, NULL), 0);
    assert_int_equal(orch_budget_app_wait(b, 62000), 0);
    assert_int_equal(orch_budget_acquire_n(b, "new tenant", 62000, 1, NULL), 1);
    /* Seeded calls (from the audit after a restart) count. */
    orch_budget *c = NULL;
    assert_int_equal(orch_budget_create(&c, &XERO), XS_OK);
    for (int i = 0; i < 60; i++) {
        orch_budget_seed(c, "t", 500 + i);
    }
    assert_false(orch_budget_acquire_n(c, "t", 1000, 1, NULL));
    orch_budget_destroy(c);
    orch_budget_destroy(b);
    /* An app 429's Retry-After holds every tenant; a reply saying none is left, until the
     * window it spoke of ends. */
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    assert_int_equal(orch_budget_app_wait(b, 1000), 0);
    assert_int_equal(orch_budget_acquire_n(b, "t", 1000, 1, NULL), 1);
    orch_budget_seen seen = {.status = 429,
                             .min_remaining = -1,
                             .day_remaining = -1,
                             .app_min_remaining = -1,
                             .retry_after_s = 7,
                             .problem = "appminute"};
    orch_budget_release_n(b, "t", 1100, 1000, 1, 1, &seen);
    assert_int_equal(orch_budget_app_wait(b, 1100), 7000);
    assert_int_equal(orch_budget_app_wait(b, 8100), 0);
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

/* reply is a reply's limits: status, day remaining, Retry-After (-1: absent), problem. */
static orch_budget_seen reply(long status, int64_t day_remaining, int64_t retry_after_s,
                              const char *problem)
{
    return (orch_budget_seen){.status = status,
                              .min_remaining = 50,
                              .day_remaining = day_remaining,
                              .app_min_remaining = 9000,
                              .retry_after_s = retry_after_s,
                              .problem = problem};
}

/* A 429 for the day blocks the tenant exactly until its Retry-After, no longer (not a day
 * from the reply), and no other tenant; the block is reported once when it begins and once
 * when it ends. */
static void test_day_block_follows_retry_after(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    orch_budget_day d;
    assert_false(orch_budget_day_next(b, 0, &d));
    assert_int_equal(orch_budget_acquire_n(b, "t", 1000, 1, NULL), 1);
    orch_budget_seen day = reply(429, 0, 3600, "day");
    orch_budget_release_n(b, "t", 1200, 1000, 1, 1, &day);
    int64_t end = 1200 + 3600 * 1000;
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 1300, 1, &wait), 0);
    assert_int_equal(wait, end - 1300);
    assert_int_equal(orch_budget_acquire_n(b, "t", end - 1, 5, &wait), 0);
    assert_int_equal(wait, 1);
    /* Other tenants go on. */
    assert_int_equal(orch_budget_acquire_n(b, "u", 1300, 1, NULL), 1);
    orch_budget_release_n(b, "u", 1400, 1300, 1, 1, NULL);
    assert_true(orch_budget_day_next(b, 1500, &d));
    assert_string_equal(d.tenant, "t");
    assert_true(d.blocked && d.began && !d.ended);
    assert_int_equal(d.until_ms, end);
    assert_false(orch_budget_day_next(b, 1600, &d)); /* once */
    json_t *j = orch_budget_json(b, "t", 1600);
    assert_int_equal(json_integer_value(json_object_get(j, "blocked_ms")), end - 1600);
    assert_int_equal(json_integer_value(json_object_get(j, "day_left")), 0);
    assert_string_equal(json_string_value(json_object_get(j, "day_block")), "retry_after");
    json_decref(j);
    /* At its end, calls go again, as many as the other limits allow: the 429's "0 left"
     * lapses with it. */
    assert_true(orch_budget_day_next(b, end, &d));
    assert_true(!d.blocked && d.ended && !d.began);
    assert_int_equal(orch_budget_acquire_n(b, "t", end, 5, NULL), 5);
    j = orch_budget_json(b, "t", end);
    assert_int_equal(json_integer_value(json_object_get(j, "blocked_ms")), 0);
    assert_true(json_is_null(json_object_get(j, "day_block")));
    json_decref(j);
    assert_false(orch_budget_day_next(b, end + 1, &d));
    orch_budget_destroy(b);
}

/* lifted checks that at `at` tenant "t" of b is free of its day block: its end is reported,
 * and a step gets 3 permits; then frees b. */
static void lifted(orch_budget *b, int64_t at)
{
    orch_budget_day d;
    assert_int_equal(orch_budget_acquire_n(b, "t", at, 3, NULL), 3);
    assert_true(orch_budget_day_next(b, at, &d));
    assert_true(!d.blocked && d.ended && !d.began);
    orch_budget_destroy(b);
}

/* held makes a budget whose probes wait probe_ms, in which tenant "t" takes `calls` permits
 * at 0 and, at `at`, the reply to one of them says no calls are left today (new). */
static orch_budget *held(int64_t probe_ms, int calls, int64_t at)
{
    orch_budget_limits lim = XERO;
    lim.probe_ms = probe_ms;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    for (int i = 0; i < calls; i++) {
        assert_int_equal(orch_budget_acquire_n(b, "t", 0, 1, NULL), 1);
    }
    orch_budget_seen none = reply(200, 0, -1, NULL);
    orch_budget_release_n(b, "t", at, 0, 1, 1, &none);
    return b;
}

/* A success that says no calls are left today holds the tenant, and after the probe interval
 * lets exactly one probe step through; a probe that finds none left holds it again, and its
 * 429 then sets the exact block. */
static void test_day_exhausted_holds_and_probes(void **state)
{
    (void)state;
    orch_budget *b = held(60000, 2, 100);
    orch_budget_seen none = reply(200, 0, -1, NULL);
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 200, 1, &wait), 0);
    assert_int_equal(wait, 60100 - 200);
    assert_int_equal(orch_budget_acquire_n(b, "t", 60099, 1, NULL), 0);
    orch_budget_day d;
    assert_true(orch_budget_day_next(b, 300, &d));
    assert_true(d.blocked && d.began);
    assert_int_equal(d.until_ms, 60100);
    /* A reply to a call that left before the hold says nothing of it. */
    orch_budget_seen room = reply(200, 10, -1, NULL);
    orch_budget_release_n(b, "t", 400, 0, 1, 1, &room);
    assert_int_equal(orch_budget_acquire_n(b, "t", 500, 1, NULL), 0);
    assert_false(orch_budget_day_next(b, 500, &d));
    /* Other tenants go on. */
    assert_int_equal(orch_budget_acquire_n(b, "u", 500, 1, NULL), 1);
    /* The probe: one step, however many ask. */
    assert_int_equal(orch_budget_acquire_n(b, "t", 60100, 1, NULL), 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 60100, 1, &wait), 0);
    assert_true(wait >= 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 90000, 3, NULL), 0);
    /* It found none left: held again, for another interval from its reply. */
    orch_budget_release_n(b, "t", 90100, 60100, 1, 1, &none);
    assert_true(orch_budget_day_next(b, 90200, &d));
    assert_true(d.blocked && !d.began && !d.ended);
    assert_int_equal(d.until_ms, 150100);
    assert_int_equal(orch_budget_acquire_n(b, "t", 150099, 1, NULL), 0);
    /* A probe step of several calls (a push that re-reads) gets two at most. */
    assert_int_equal(orch_budget_acquire_n(b, "t", 150100, 8, NULL), 2);
    orch_budget_seen day = reply(429, 0, 30, "day");
    orch_budget_release_n(b, "t", 150200, 150100, 2, 1, &day);
    assert_int_equal(orch_budget_acquire_n(b, "t", 180199, 1, &wait), 0);
    assert_int_equal(wait, 1);
    assert_true(orch_budget_day_next(b, 180199, &d));
    assert_true(d.blocked && !d.began);
    assert_int_equal(d.until_ms, 180200);
    lifted(b, 180200);
}

/* A probe that finds calls left lifts the hold at once; so does, after a restart, the probe
 * of a block kept from before it, which holds the tenant until its time. */
static void test_day_probe_lifts(void **state)
{
    (void)state;
    orch_budget *b = held(1000, 1, 10);
    orch_budget_day d;
    assert_true(orch_budget_day_next(b, 20, &d));
    assert_true(d.blocked && d.began);
    assert_int_equal(orch_budget_acquire_n(b, "t", 1010, 1, NULL), 1);
    orch_budget_seen room = reply(200, 4000, -1, NULL);
    orch_budget_release_n(b, "t", 1020, 1010, 1, 1, &room);
    assert_int_equal(orch_budget_acquire_n(b, "t", 1030, 4, NULL), 4);
    assert_true(orch_budget_day_next(b, 1030, &d));
    assert_true(!d.blocked && d.ended && !d.began);
    /* Our count of what the last reply said was left, used up: a hold with a probe, not a day's
     * wait. */
    for (int i = 0; i < 4; i++) {
        orch_budget_release_n(b, "t", 1040, 1030, 1, 1, NULL);
    }
    orch_budget_seen two = reply(200, 2, -1, NULL);
    assert_int_equal(orch_budget_acquire_n(b, "t", 2000, 1, NULL), 1);
    orch_budget_release_n(b, "t", 2010, 2000, 1, 1, &two);
    assert_int_equal(orch_budget_acquire_n(b, "t", 2020, 5, NULL), 2);
    orch_budget_release_n(b, "t", 2030, 2020, 2, 2, NULL);
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 2040, 1, &wait), 0);
    assert_int_equal(wait, 1000);
    assert_int_equal(orch_budget_acquire_n(b, "t", 3040, 1, NULL), 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 3040, 1, NULL), 0);
    orch_budget_destroy(b);

    /* Restored: no call before the kept time, one probe at it, and it was reported. */
    orch_budget_limits lim = XERO;
    lim.probe_ms = 1000;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    orch_budget_day_restore(b, "t", 100, 5000);
    assert_false(orch_budget_day_next(b, 200, &d));
    assert_int_equal(orch_budget_acquire_n(b, "t", 4999, 1, &wait), 0);
    assert_int_equal(wait, 1);
    json_t *j = orch_budget_json(b, "t", 4000);
    assert_int_equal(json_integer_value(json_object_get(j, "blocked_ms")), 1000);
    assert_string_equal(json_string_value(json_object_get(j, "day_block")), "probe");
    json_decref(j);
    assert_int_equal(orch_budget_acquire_n(b, "t", 5000, 1, NULL), 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 5000, 1, NULL), 0);
    /* A probe that never called (it was given back) leaves the probe to the next step. */
    orch_budget_cancel(b, "t", 5000, 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 5001, 1, NULL), 1);
    orch_budget_release_n(b, "t", 5100, 5001, 1, 1, &room);
    lifted(b, 5200);
}

/* Our own count of the day window used up blocks the tenant until its oldest calls leave the
 * window, and that is a day block too. */
static void test_day_count_block(void **state)
{
    (void)state;
    orch_budget_limits lim = XERO;
    lim.tenant_day = 3;
    lim.day_ms = 96000; /* buckets of 1 s */
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    assert_int_equal(orch_budget_acquire_n(b, "t", 500, 3, NULL), 3);
    orch_budget_release_n(b, "t", 600, 500, 3, 3, NULL);
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 2000, 1, &wait), 0);
    /* the bucket [0, 1000) leaves when its start is no longer after now - day - margin - 1 s */
    int64_t free_at = 0 + 96000 + 1000 + 1000;
    assert_int_equal(wait, free_at - 2000);
    orch_budget_day d;
    assert_true(orch_budget_day_next(b, 2000, &d));
    assert_true(d.blocked && d.began);
    assert_int_equal(d.until_ms, free_at);
    json_t *j = orch_budget_json(b, "t", 2000);
    assert_string_equal(json_string_value(json_object_get(j, "day_block")), "count");
    json_decref(j);
    assert_true(orch_budget_day_next(b, free_at, &d));
    assert_true(d.ended);
    assert_int_equal(orch_budget_acquire_n(b, "t", free_at, 5, NULL), 3);
    orch_budget_destroy(b);
}

/* Paced: ten calls at once, then one a second (60 a minute), never the minute's 60 in one
 * burst followed by a wait of most of a minute; permits not used are given back. */
static void test_paced(void **state)
{
    (void)state;
    orch_budget_limits lim = XERO;
    lim.tenant_burst = 10;
    lim.tenant_concurrent = 1000;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(orch_budget_acquire_n(b, "t", 0, 1, NULL), 1);
    }
    int64_t wait = 0;
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 1, &wait), 0);
    assert_true(wait >= 900 && wait <= 1000);
    assert_int_equal(orch_budget_acquire_n(b, "t", 999, 1, NULL), 0);
    assert_int_equal(orch_budget_acquire_n(b, "t", 1000, 2, NULL), 1); /* one a second */
    /* Another tenant has its own pace. */
    assert_int_equal(orch_budget_acquire_n(b, "u", 1000, 5, NULL), 5);
    /* A steady second: 60 in the minute, evenly; the burst back after a quiet spell. */
    int got = 11;
    for (int64_t now = 2000; now < 61000; now += 1000) {
        got += (int)orch_budget_acquire_n(b, "t", now, 1, NULL);
    }
    assert_int_equal(got, 60);
    /* Permits a step did not use come back: a pull granted three that made one call. */
    orch_budget_destroy(b);
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 8, NULL), 8);
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 8, NULL), 2);
    orch_budget_release_n(b, "t", 10, 0, 8, 1, NULL);
    assert_int_equal(orch_budget_acquire_n(b, "t", 10, 10, NULL), 7);
    orch_budget_cancel(b, "t", 10, 7);
    assert_int_equal(orch_budget_acquire_n(b, "t", 10, 10, NULL), 7);
    orch_budget_destroy(b);
    /* A burst of tenant_minute or more: not paced (the whole minute at once). */
    lim.tenant_burst = 60;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    assert_int_equal(orch_budget_acquire_n(b, "t", 0, 60, NULL), 60);
    orch_budget_destroy(b);
}

/* minute_left is a reply of status 200 saying left calls remain this minute. */
static orch_budget_seen minute_left(int64_t left)
{
    return (orch_budget_seen){.status = 200,
                              .min_remaining = left,
                              .day_remaining = 4000,
                              .app_min_remaining = 9000,
                              .retry_after_s = -1,
                              .problem = NULL};
}

/* "None left this minute" holds until Xero's fixed window starts again, where replies showed
 * it starts (the first reply's window started by then; more left than the reply before: it
 * started again by then), not a whole minute from the reply. */
static void test_minute_correction_follows_the_window(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    const char *tenants[] = {"seen", "unseen"};
    for (int k = 0; k < 2; k++) {
        const char *t = tenants[k];
        orch_budget_seen s = minute_left(30);
        assert_int_equal(orch_budget_acquire_n(b, t, 0, 1, NULL), 1);
        orch_budget_release_n(b, t, 100, 0, 1, 1, &s);
        s = minute_left(k == 0 ? 59 : 29); /* "seen": the window started again by 5,100 */
        assert_int_equal(orch_budget_acquire_n(b, t, 5000, 1, NULL), 1);
        orch_budget_release_n(b, t, 5100, 5000, 1, 1, &s);
        s = minute_left(0);
        assert_int_equal(orch_budget_acquire_n(b, t, 10000, 1, NULL), 1);
        orch_budget_release_n(b, t, 10100, 10000, 1, 1, &s);
        int64_t wait = 0;
        assert_int_equal(orch_budget_acquire_n(b, t, 20000, 1, &wait), 0);
        /* seen: its next start, 5,100 + 60,000, plus the margin; unseen: the next start of
         * the first reply's window, 100 + 60,000, plus the margin (a minute and the margin
         * from the reply, 10,100 + 61,000, were it not known) */
        assert_int_equal(20000 + wait, k == 0 ? 66100 : 61100);
        assert_int_equal(orch_budget_acquire_n(b, t, 20000 + wait - 1, 1, NULL), 0);
        assert_int_equal(orch_budget_acquire_n(b, t, 20000 + wait, 1, NULL), 1);
    }
    orch_budget_destroy(b);
}

/* app_left is a reply of status 200 saying left calls remain of the app's minute. */
static orch_budget_seen app_left(int64_t left)
{
    orch_budget_seen s = minute_left(50);
    s.app_min_remaining = left;
    return s;
}

/* Replies come back in another order than Xero counted them: a count a little higher than the
 * last one, by no more than the calls in flight, is not the app's window starting again, and
 * does not move where the budget thinks it starts (later and later, each burst "none left" held
 * longer: a mass import's bursts came 14 s apart for a 10 s window). */
static void test_app_correction_replies_out_of_order(void **state)
{
    (void)state;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &XERO), XS_OK);
    const char *t[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(orch_budget_acquire_n(b, t[i], 1000, 1, NULL), 1);
    }
    /* A pull of 5 pages in flight throughout. */
    assert_int_equal(orch_budget_acquire_n(b, "pull", 1000, 5, NULL), 5);
    orch_budget_seen s = app_left(9000);
    orch_budget_release_n(b, "a", 1100, 1000, 1, 1, &s); /* the first count: since 1,100 */
    s = app_left(8990);
    orch_budget_release_n(b, "b", 1200, 1000, 1, 1, &s);
    s = app_left(8995); /* counted before b's, back after it: 5 more, 5 permits out */
    orch_budget_release_n(b, "c", 1300, 1000, 1, 1, &s);
    s = app_left(0);
    orch_budget_release_n(b, "pull", 5000, 1000, 5, 5, &s);
    /* None left from 5,000 until the window the first count was of starts again: 1,100 +
     * 60,000 and the margin (61,300 were the reordered reply taken for a start). */
    assert_int_equal(6000 + orch_budget_app_wait(b, 6000), 62100);
    /* A count well above the last (the window did start again) is taken for a start. */
    assert_int_equal(orch_budget_acquire_n(b, "a", 62100, 1, NULL), 1);
    s = app_left(9990);
    orch_budget_release_n(b, "a", 62200, 62100, 1, 1, &s);
    assert_int_equal(orch_budget_acquire_n(b, "b", 63000, 1, NULL), 1);
    s = app_left(0);
    orch_budget_release_n(b, "b", 63100, 63000, 1, 1, &s);
    assert_int_equal(64000 + orch_budget_app_wait(b, 64000), 62200 + 61000);
    orch_budget_destroy(b);
}

/* A step that made no call (a scan that found nothing to send) is charged nothing: all its
 * permits come back as if never taken, in the tenant's minute and the app's, and its
 * in-flight slot; a step that took no permit has nothing to give back; a probe that made no
 * call lets the next step be the probe at once, and its missing reply does not hold the
 * tenant longer. */
static void test_release_unused(void **state)
{
    (void)state;
    orch_budget_limits lim = XERO;
    lim.app_minute = 10;
    orch_budget *b = NULL;
    assert_int_equal(orch_budget_create(&b, &lim), XS_OK);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(orch_budget_acquire_n(b, "t", i * 10, 2, NULL), 2);
        orch_budget_release_n(b, "t", i * 10 + 5, i * 10, 2, 0, NULL);
    }
    /* 200 permits held and none charged: the app's 10 and the tenant's 60 are whole. */
    json_t *j = orch_budget_json(b, "t", 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "minute_left")), 60);
    assert_int_equal(json_integer_value(json_object_get(j, "in_flight")), 0);
    json_decref(j);
    j = orch_budget_gauges(b, 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "app_minute_left")), 10);
    json_decref(j);
    /* Of a step of 3 permits that made 1 call, 2 come back; one is charged. */
    assert_int_equal(orch_budget_acquire_n(b, "t", 1000, 3, NULL), 3);
    orch_budget_release_n(b, "t", 1010, 1000, 3, 1, NULL);
    j = orch_budget_gauges(b, 1020);
    assert_int_equal(json_integer_value(json_object_get(j, "app_minute_left")), 9);
    json_decref(j);
    /* A step that held no permit (granted 0) changes nothing, not even the in-flight count. */
    assert_int_equal(orch_budget_acquire_n(b, "t", 1030, 1, NULL), 1);
    orch_budget_release_n(b, "t", 1040, 1030, 0, 0, NULL);
    j = orch_budget_json(b, "t", 1040);
    assert_int_equal(json_integer_value(json_object_get(j, "in_flight")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "minute_left")), 58);
    json_decref(j);
    orch_budget_destroy(b);

    /* A held tenant's probe that made no call: the next step probes at once. */
    b = held(60000, 1, 100);
    assert_int_equal(orch_budget_acquire_n(b, "t", 60100, 1, NULL), 1);
    assert_int_equal(orch_budget_acquire_n(b, "t", 60100, 1, NULL), 0);
    orch_budget_release_n(b, "t", 60200, 60100, 1, 0, NULL);
    assert_int_equal(orch_budget_acquire_n(b, "t", 60300, 1, NULL), 1);
    orch_budget_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_minute_sliding_window),
        cmocka_unit_test(test_corrections),
        cmocka_unit_test(test_day_and_app),
        cmocka_unit_test(test_app_correction_replies_out_of_order),
        cmocka_unit_test(test_several_permits),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_release_unused),
        cmocka_unit_test(test_day_block_follows_retry_after),
        cmocka_unit_test(test_day_exhausted_holds_and_probes),
        cmocka_unit_test(test_day_probe_lifts),
        cmocka_unit_test(test_day_count_block),
        cmocka_unit_test(test_paced),
        cmocka_unit_test(test_minute_correction_follows_the_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
