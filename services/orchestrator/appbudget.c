/* appbudget.c: the app-wide budget shared through PostgreSQL (see appbudget.h). */
#include "appbudget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/clock.h"
#include "xs/pg.h"

/* How often the thread looks at the pool when nothing wakes it. */
#define TICK_MS 20
/* How long the thread keeps the pool topped up after the last step took from it: a step that
 * comes after a pause finds permits there, without waiting on a grant. */
#define KEEP_MULTIPLE 10
/* Waits between grants when the ledger has no room, and between reconnections. */
#define RETRY_MIN_MS 5
#define RETRY_MAX_MS 200

/* A step's permits taken from one chunk (gen, its ledger id): every step of a tenant that
 * acquired at the same ms took from the same chunk (orch_appbudget_take makes sure), so a
 * step's unused permits go back exactly where they came from. */
typedef struct draw {
    char tenant[64];
    int64_t at, gen, id, n;
    int64_t expires; /* when the chunk's time is up */
} draw;

/* Permits of chunk id never used, to give back to the ledger. */
typedef struct giveback {
    int64_t id, n;
} giveback;

struct orch_appbudget {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    orch_appbudget_opts o;
    char *url, *holder;
    /* The chunk being spent (id 0: none): its generation, permits left, when its time is up
     * (monotonic). */
    int64_t id, gen, credit, expires;
    int64_t debt;      /* calls made after their chunk's time, not in the ledger yet */
    bool wanted;       /* a step found the pool short */
    int64_t last_take; /* when a step last took from the pool */
    int64_t retry_at;  /* no grant asked for before this (the ledger had no room) */
    draw *draws;
    size_t ndraws, cap_draws;
    giveback *back;
    size_t nback, cap_back;
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

xs_err orch_appbudget_create(orch_appbudget **out, const orch_appbudget_opts *opts)
{
    if (opts->limit < 1 || opts->chunk < 1 || opts->ttl_ms < 1 || opts->window_ms < 1) {
        return XS_EINVAL;
    }
    orch_appbudget *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return XS_ENOMEM;
    }
    a->o = *opts;
    a->url = strdup(opts->db_url);
    a->holder = strdup(opts->holder);
    if (a->url == NULL || a->holder == NULL) {
        free(a->url);
        free(a->holder);
        free(a);
        return XS_ENOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    *out = a;
    return XS_OK;
}

/* add_back notes n permits of chunk id to give back to the ledger (mu held). */
static void add_back(orch_appbudget *a, int64_t id, int64_t n)
{
    if (n <= 0 || id == 0) {
        return;
    }
    for (size_t i = 0; i < a->nback; i++) {
        if (a->back[i].id == id) {
            a->back[i].n += n;
            return;
        }
    }
    if (a->nback == a->cap_back) {
        size_t cap = a->cap_back ? a->cap_back * 2 : 16;
        giveback *g = realloc(a->back, cap * sizeof(*g));
        if (g == NULL) {
            return; /* kept counted until it leaves the window: safe */
        }
        a->back = g;
        a->cap_back = cap;
    }
    a->back[a->nback++] = (giveback){.id = id, .n = n};
}

/* retire ends the chunk being spent when its time is up at now: what is left goes back to
 * the ledger (mu held). */
static void retire(orch_appbudget *a, int64_t now)
{
    if (a->id != 0 && now >= a->expires) {
        add_back(a, a->id, a->credit);
        a->id = 0;
        a->credit = 0;
    }
}

/* find_draw returns the draw of tenant at `at`, or NULL (mu held). */
static draw *find_draw(orch_appbudget *a, const char *tenant, int64_t at)
{
    for (size_t i = 0; i < a->ndraws; i++) {
        if (a->draws[i].at == at && strcmp(a->draws[i].tenant, tenant) == 0) {
            return &a->draws[i];
        }
    }
    return NULL;
}

int64_t orch_appbudget_take(orch_appbudget *a, const char *tenant, int64_t now, int64_t want,
                            int64_t *wait_ms)
{
    pthread_mutex_lock(&a->mu);
    retire(a, now);
    a->last_take = now;
    int64_t got = 0, wait = RETRY_MIN_MS;
    draw *d = find_draw(a, tenant, now);
    if (d != NULL && d->gen != a->gen) {
        wait = 1; /* a step of the tenant took from another chunk this ms: the next ms */
    } else if (a->id != 0 && a->credit > 0 && want > 0) {
        if (d == NULL && a->ndraws == a->cap_draws) {
            size_t cap = a->cap_draws ? a->cap_draws * 2 : 16;
            draw *nd = realloc(a->draws, cap * sizeof(*nd));
            if (nd != NULL) {
                a->draws = nd;
                a->cap_draws = cap;
            }
        }
        if (d == NULL && a->ndraws < a->cap_draws) {
            d = &a->draws[a->ndraws++];
            memset(d, 0, sizeof(*d));
            snprintf(d->tenant, sizeof(d->tenant), "%s", tenant);
            d->at = now;
            d->gen = a->gen;
            d->id = a->id;
            d->expires = a->expires;
        }
        if (d != NULL) {
            got = want < a->credit ? want : a->credit;
            a->credit -= got;
            d->n += got;
        }
    }
    if (got < want || a->credit <= a->o.chunk / 4) {
        a->wanted = a->wanted || got < want;
        pthread_cond_signal(&a->cv);
    }
    if (got == 0 && a->retry_at > now) {
        wait = a->retry_at - now;
    }
    pthread_mutex_unlock(&a->mu);
    if (got == 0 && wait_ms != NULL) {
        *wait_ms = wait;
    }
    return got;
}

int64_t orch_appbudget_wait(orch_appbudget *a, int64_t now)
{
    pthread_mutex_lock(&a->mu);
    retire(a, now);
    int64_t wait = 0;
    if (a->id == 0 || a->credit <= 0) {
        a->wanted = true; /* the pool is empty: the thread asks the ledger for more */
        pthread_cond_signal(&a->cv);
        wait = a->retry_at > now ? a->retry_at - now : RETRY_MIN_MS;
    }
    pthread_mutex_unlock(&a->mu);
    return wait;
}

void orch_appbudget_give(orch_appbudget *a, const char *tenant, int64_t now, int64_t acquired,
                         int64_t granted, int64_t used)
{
    pthread_mutex_lock(&a->mu);
    draw *d = find_draw(a, tenant, acquired);
    if (d == NULL || granted <= 0) {
        pthread_mutex_unlock(&a->mu);
        return;
    }
    used = used < 0 ? 0 : used > granted ? granted : used;
    if (a->id != 0 && a->gen == d->gen && now < a->expires) {
        a->credit += granted - used; /* still the chunk being spent */
    } else {
        add_back(a, d->id, granted - used);
    }
    if (now >= d->expires && used > 1) {
        /* The calls after the first may have gone out after the chunk's time was up, beyond
         * what its grant covers: the ledger counts them from now on. */
        a->debt += used - 1;
    }
    d->n -= granted;
    if (d->n <= 0) {
        *d = a->draws[--a->ndraws];
    }
    if (a->debt > 0 || a->nback > 0) {
        pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
}

/* ledger_take asks the ledger for want permits (force: whatever is left) into *id and *got;
 * *frees_ms is when the oldest counted chunk leaves the window. */
static xs_err ledger_take(orch_appbudget *a, xs_pg *pg, int64_t want, bool force, int64_t *id,
                          int64_t *got, int64_t *frees_ms)
{
    char w[24], lim[24], win[24];
    snprintf(w, sizeof(w), "%lld", (long long)want);
    snprintf(lim, sizeof(lim), "%lld", (long long)a->o.limit);
    snprintf(win, sizeof(win), "%lld", (long long)(a->o.window_ms + a->o.ttl_ms));
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT coalesce(grant_id, 0), permits, frees_in_ms FROM "
                       "sync.app_budget_take($1, $2::int, $3::int, $4::bigint, $5::boolean)",
                       a->holder, w, lim, win, force ? "true" : "false");
    *id = *got = *frees_ms = 0;
    if (e == XS_OK && xs_pg_res_nrows(r) == 1) {
        xs_pg_res_int(r, 0, 0, id);
        xs_pg_res_int(r, 0, 1, got);
        xs_pg_res_int(r, 0, 2, frees_ms);
    }
    xs_pg_res_free(r);
    return e;
}

/* flush writes to the ledger what went back and the calls made past their chunk's time; what
 * could not be written waits for the next round. */
static xs_err flush(orch_appbudget *a, xs_pg *pg)
{
    pthread_mutex_lock(&a->mu);
    giveback *back = a->back;
    size_t nback = a->nback;
    int64_t debt = a->debt;
    a->back = NULL;
    a->nback = a->cap_back = 0;
    a->debt = 0;
    pthread_mutex_unlock(&a->mu);
    xs_err e = XS_OK;
    int64_t id = 0, got = 0, frees = 0;
    if (debt > 0 && (e = ledger_take(a, pg, debt, true, &id, &got, &frees)) == XS_OK) {
        debt = 0;
    }
    size_t i = 0;
    for (; e == XS_OK && i < nback; i++) {
        char id_s[24], n_s[24];
        snprintf(id_s, sizeof(id_s), "%lld", (long long)back[i].id);
        snprintf(n_s, sizeof(n_s), "%lld", (long long)back[i].n);
        e = xs_pg_q(pg, NULL, "SELECT sync.app_budget_give_back($1::bigint, $2::int)", id_s, n_s);
    }
    pthread_mutex_lock(&a->mu);
    a->debt += debt;
    for (size_t k = e == XS_OK ? nback : i; k < nback; k++) {
        add_back(a, back[k].id, back[k].n);
    }
    pthread_mutex_unlock(&a->mu);
    free(back);
    return e;
}

/* refill asks the ledger for a chunk when the pool needs one: a step found it short, or it is
 * running low while steps take from it. The new chunk replaces the one being spent, whose
 * permits left go back. */
static xs_err refill(orch_appbudget *a, xs_pg *pg)
{
    int64_t now = xs_clock_mono_ms();
    pthread_mutex_lock(&a->mu);
    retire(a, now);
    bool busy = now - a->last_take < KEEP_MULTIPLE * a->o.ttl_ms;
    bool need =
        now >= a->retry_at && (a->wanted || (busy && (a->id == 0 || a->credit <= a->o.chunk / 4)));
    pthread_mutex_unlock(&a->mu);
    if (!need) {
        return XS_OK;
    }
    int64_t id = 0, got = 0, frees = 0;
    xs_err e = ledger_take(a, pg, a->o.chunk, false, &id, &got, &frees);
    bool filled = e == XS_OK && got > 0;
    pthread_mutex_lock(&a->mu);
    if (filled) {
        retire(a, INT64_MAX);
        a->id = id;
        a->gen++;
        a->credit = got;
        a->expires = now + a->o.ttl_ms; /* asked for before the grant: never later than it */
        a->wanted = false;
        a->retry_at = 0;
    } else {
        int64_t wait = e == XS_OK ? frees : RETRY_MAX_MS;
        wait = wait < RETRY_MIN_MS ? RETRY_MIN_MS : wait > RETRY_MAX_MS ? RETRY_MAX_MS : wait;
        a->retry_at = now + wait;
    }
    pthread_mutex_unlock(&a->mu);
    if (filled && a->o.granted != NULL) {
        a->o.granted(a->o.arg);
    }
    return e;
}

static void *appbudget_main(void *arg)
{
    orch_appbudget *a = arg;
    xs_pg *pg = NULL;
    while (!atomic_load(&a->stop)) {
        if (pg == NULL || !xs_pg_is_ok(pg)) {
            xs_pg_close(pg);
            pg = NULL;
            if (xs_pg_connect(&pg, a->url, "xs-orchestrator appbudget", 0, a->o.log) != XS_OK) {
                pg = NULL;
                xs_clock_sleep_ms(RETRY_MAX_MS);
                continue;
            }
        }
        xs_err e = flush(a, pg);
        if (e == XS_OK) {
            e = refill(a, pg);
        }
        if (e != XS_OK) {
            if (a->o.log != NULL) {
                xs_log_warn(a->o.log, "budget.shared_failed", "{s:s, s:s}", "err", xs_err_name(e),
                            "error", xs_pg_error(pg));
            }
            xs_clock_sleep_ms(RETRY_MAX_MS);
        }
        pthread_mutex_lock(&a->mu);
        bool idle = !a->wanted && a->debt == 0 && a->nback == 0;
        bool full = a->wanted && a->retry_at > xs_clock_mono_ms();
        if (!atomic_load(&a->stop) && idle) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += TICK_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&a->cv, &a->mu, &ts);
        }
        pthread_mutex_unlock(&a->mu);
        if (full) {
            xs_clock_sleep_ms(RETRY_MIN_MS); /* the ledger had no room: not a busy loop */
        }
    }
    /* Stopping: what the pool holds goes back, so the others need not wait for it. */
    if (pg != NULL && xs_pg_is_ok(pg)) {
        pthread_mutex_lock(&a->mu);
        retire(a, INT64_MAX);
        pthread_mutex_unlock(&a->mu);
        flush(a, pg);
    }
    xs_pg_close(pg);
    return NULL;
}

xs_err orch_appbudget_start(orch_appbudget *a)
{
    if (pthread_create(&a->thread, NULL, appbudget_main, a) != 0) {
        return XS_ENOMEM;
    }
    a->started = true;
    return XS_OK;
}

void orch_appbudget_destroy(orch_appbudget *a)
{
    if (a == NULL) {
        return;
    }
    if (a->started) {
        atomic_store(&a->stop, true);
        pthread_mutex_lock(&a->mu);
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->draws);
    free(a->back);
    free(a->url);
    free(a->holder);
    free(a);
}
