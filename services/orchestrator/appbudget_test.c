/* appbudget_test.c: the app budget shared through PostgreSQL (appbudget.h), against a
 * throwaway database: two pools (two orchestrators' worth) racing for more than the limit
 * never make more than it in any window together, and a holder killed with SIGKILL keeps its
 * chunk counted until it leaves the window, no longer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "appbudget.h"
#include "harness.h"
#include "xs/clock.h"
#include "xs/pg.h"

#define LIMIT     12
#define WINDOW_MS 800
#define TTL_MS    150
#define CHUNK     3
#define RACE_MS   4000
#define MAX_CALLS 4096

static char *url;
static xs_pg *pg;

static int group_setup(void **state)
{
    (void)state;
    url = xst_db_migrated("appbudget");
    return xs_pg_connect(&pg, url, "appbudget-test", 5000, NULL) == XS_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    xs_pg_close(pg);
    free(url);
    return 0;
}

/* value runs q with up to two parameters and returns its first value as a number (-1: none). */
static long value(const char *q, const char *p1, const char *p2)
{
    const char *params[2] = {p1, p2};
    xs_pg_res *r = NULL;
    if (xs_pg_exec(pg, &r, q, p2 != NULL ? 2 : p1 != NULL ? 1 : 0, params) != XS_OK) {
        fail_msg("%s: %s", q, xs_pg_error(pg));
    }
    long v = xs_pg_res_nrows(r) > 0 && xs_pg_res_get(r, 0, 0) != NULL ? atol(xs_pg_res_get(r, 0, 0))
                                                                      : -1;
    xs_pg_res_free(r);
    return v;
}

static orch_appbudget *pool(const char *holder, int64_t limit, int64_t chunk)
{
    orch_appbudget_opts o = {.db_url = url,
                             .holder = holder,
                             .limit = limit,
                             .window_ms = WINDOW_MS,
                             .chunk = chunk,
                             .ttl_ms = TTL_MS};
    orch_appbudget *a = NULL;
    assert_int_equal(orch_appbudget_create(&a, &o), XS_OK);
    assert_int_equal(orch_appbudget_start(a), XS_OK);
    return a;
}

/* take_one waits until a takes a permit for tenant, at most timeout_ms; the time it did
 * (monotonic), or -1. */
static int64_t take_one(orch_appbudget *a, const char *tenant, int64_t timeout_ms)
{
    for (int64_t end = xs_clock_mono_ms() + timeout_ms; xs_clock_mono_ms() < end;) {
        int64_t now = xs_clock_mono_ms(), wait = 0;
        if (orch_appbudget_take(a, tenant, now, 1, &wait) == 1) {
            orch_appbudget_give(a, tenant, now, now, 1, 1);
            return now;
        }
        xs_clock_sleep_ms(wait < 5 ? wait : 5);
    }
    return -1;
}

/* A holder killed (SIGKILL) with a whole window's permits taken: its chunk stays counted, so
 * no other holder gets a permit until it has left the window (the window and a chunk's time
 * to live after its grant, by the database's clock), and then they do. */
static void test_holder_killed(void **state)
{
    (void)state;
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        orch_appbudget *a = pool("doomed", LIMIT, LIMIT);
        int taken = 0;
        for (int64_t end = xs_clock_mono_ms() + 10000; taken < LIMIT && xs_clock_mono_ms() < end;) {
            int64_t now = xs_clock_mono_ms();
            int64_t got = orch_appbudget_take(a, "t", now, LIMIT - taken, NULL);
            taken += (int)got;
            if (got == 0) {
                xs_clock_sleep_ms(2);
            }
        }
        char c = taken == LIMIT ? 'y' : 'n';
        (void)!write(ready[1], &c, 1);
        raise(SIGKILL); /* the permits taken, never used nor given back */
        _exit(3);
    }
    close(ready[1]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'y');
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(value("SELECT sum(permits - returned) FROM sync.app_budget_grants WHERE "
                           "holder = 'doomed'",
                           NULL, NULL),
                     LIMIT);
    orch_appbudget *b = pool("survivor", LIMIT, CHUNK);
    assert_true(take_one(b, "u", 5000) >= 0);
    /* Not before the dead holder's chunk left the window, by the database's clock. */
    long gap = value("SELECT (extract(epoch FROM (SELECT min(granted_at) FROM "
                     "sync.app_budget_grants WHERE holder = 'survivor') - (SELECT max(granted_at) "
                     "FROM sync.app_budget_grants WHERE holder = 'doomed')) * 1000)::bigint",
                     NULL, NULL);
    assert_true(gap >= WINDOW_MS + TTL_MS);
    assert_true(gap < WINDOW_MS + TTL_MS + 1000);
    orch_appbudget_destroy(b);
    xs_pg_exec(pg, NULL, "DELETE FROM sync.app_budget_grants", 0, NULL);
}

/* What racers made: every call's time (monotonic), and how many each pool made. */
typedef struct race {
    pthread_mutex_t mu;
    int64_t times[MAX_CALLS];
    int n;
    int by[2];
} race;

typedef struct racer {
    race *r;
    orch_appbudget *a;
    int which;
    char tenant[16];
} racer;

/* racer_main takes permits as fast as its pool gives them, two at a time, and uses one of
 * each two (a call at once), giving the other back; for RACE_MS. */
static void *racer_main(void *arg)
{
    racer *me = arg;
    for (int64_t end = xs_clock_mono_ms() + RACE_MS; xs_clock_mono_ms() < end;) {
        int64_t now = xs_clock_mono_ms(), wait = 0;
        int64_t got = orch_appbudget_take(me->a, me->tenant, now, 2, &wait);
        if (got == 0) {
            xs_clock_sleep_ms(wait < 3 ? wait : 3);
            continue;
        }
        pthread_mutex_lock(&me->r->mu);
        if (me->r->n < MAX_CALLS) {
            me->r->times[me->r->n++] = now;
            me->r->by[me->which]++;
        }
        pthread_mutex_unlock(&me->r->mu);
        xs_clock_sleep_ms(1);
        orch_appbudget_give(me->a, me->tenant, xs_clock_mono_ms(), now, got, 1);
    }
    return NULL;
}

static int cmp64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* Two pools, two racers each, all wanting far more than the limit: in no window of WINDOW_MS
 * do they make more than LIMIT calls together, both get calls, and together they use most of
 * what the limit allows (given-back permits go to others). The ledger agrees: no grant left
 * more than LIMIT counted. */
static void test_two_pools_never_exceed(void **state)
{
    (void)state;
    static race r;
    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.mu, NULL);
    orch_appbudget *pools[2] = {pool("orch-a", LIMIT, CHUNK), pool("orch-b", LIMIT, CHUNK)};
    racer racers[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        racers[i] = (racer){.r = &r, .a = pools[i % 2], .which = i % 2};
        snprintf(racers[i].tenant, sizeof(racers[i].tenant), "t%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, racer_main, &racers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    orch_appbudget_destroy(pools[0]);
    orch_appbudget_destroy(pools[1]);
    qsort(r.times, (size_t)r.n, sizeof(int64_t), cmp64);
    int most = 0;
    for (int i = 0; i < r.n; i++) {
        int in = 0;
        for (int j = i; j < r.n && r.times[j] < r.times[i] + WINDOW_MS; j++) {
            in++;
        }
        most = in > most ? in : most;
    }
    fprintf(stderr, "calls %d (a %d, b %d), at most %d in a window of %d ms\n", r.n, r.by[0],
            r.by[1], most, WINDOW_MS);
    assert_true(most <= LIMIT);
    assert_true(r.by[0] > 0 && r.by[1] > 0);
    /* At best LIMIT a window of WINDOW_MS + TTL_MS (a chunk counts that long): at least half. */
    assert_true(r.n >= RACE_MS / (WINDOW_MS + TTL_MS) * LIMIT / 2);
    char span[24], lim[24];
    snprintf(span, sizeof(span), "%d", WINDOW_MS + TTL_MS);
    snprintf(lim, sizeof(lim), "%d", LIMIT);
    assert_true(value("SELECT count(*) FROM sync.app_budget_grants g WHERE (SELECT sum(h.permits "
                      "- h.returned) FROM sync.app_budget_grants h WHERE h.granted_at <= "
                      "g.granted_at AND h.granted_at > g.granted_at - $1::bigint * interval '1 "
                      "millisecond') > $2::int",
                      span, lim) == 0);
    assert_true(value("SELECT count(DISTINCT holder) FROM sync.app_budget_grants", NULL, NULL) ==
                2);
    pthread_mutex_destroy(&r.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holder_killed),
        cmocka_unit_test(test_two_pools_never_exceed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
