/* budget.c: the rate budget (see budget.h). */
#include "budget.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DAY_BUCKETS 96

/* A sliding window of call times: a ring of at most cap timestamps, oldest first. */
typedef struct window {
    int64_t *t;
    int64_t cap, start, len;
} window;

static xs_err window_init(window *w, int64_t cap)
{
    w->cap = cap > 0 ? cap : 1;
    w->t = calloc((size_t)w->cap, sizeof(int64_t));
    w->start = w->len = 0;
    return w->t != NULL ? XS_OK : XS_ENOMEM;
}

/* window_trim forgets calls older than span. */
static void window_trim(window *w, int64_t now, int64_t span)
{
    while (w->len > 0 && w->t[w->start] <= now - span) {
        w->start = (w->start + 1) % w->cap;
        w->len--;
    }
}

/* window_push records a call (the ring is never fuller than cap: callers check first). */
static void window_push(window *w, int64_t at)
{
    if (w->len == w->cap) {
        w->start = (w->start + 1) % w->cap;
        w->len--;
    }
    w->t[(w->start + w->len) % w->cap] = at;
    w->len++;
}

/* window_drop forgets n calls recorded at `at` (the permits of one step it did not use or
 * used later), keeping the others in order. */
static void window_drop(window *w, int64_t at, int64_t n)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < w->len; i++) {
        int64_t v = w->t[(w->start + i) % w->cap];
        if (n > 0 && v == at) {
            n--;
            continue;
        }
        w->t[(w->start + kept) % w->cap] = v;
        kept++;
    }
    w->len = kept;
}

/* window_free_at is when the oldest call leaves the window. */
static int64_t window_free_at(const window *w, int64_t span)
{
    return w->len > 0 ? w->t[w->start] + span : 0;
}

/* What a reply said remains, counted from when it was said. */
typedef struct correction {
    int64_t left;  /* remaining at `since`, or -1 for none */
    int64_t since; /* monotonic ms */
    int64_t used;  /* permits taken since */
} correction;

typedef struct tenant {
    int64_t in_flight; /* steps holding permits */
    int64_t permits;   /* permits those steps hold (a pull step may hold several) */
    window minute;
    int64_t day_count[DAY_BUCKETS];
    int64_t day_bucket_start[DAY_BUCKETS];
    correction min, day;
    int64_t blocked_until;
} tenant;

struct orch_budget {
    pthread_mutex_t mu;
    orch_budget_limits lim;
    json_t *index; /* tenant id -> integer index into tenants */
    tenant **tenants;
    size_t ntenants, cap;
    window app;
    correction app_corr;
    int64_t app_blocked_until;
};

xs_err orch_budget_create(orch_budget **out, const orch_budget_limits *limits)
{
    orch_budget *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return XS_ENOMEM;
    }
    b->lim = *limits;
    b->index = json_object();
    b->app_corr.left = -1;
    if (b->index == NULL || window_init(&b->app, limits->app_minute) != XS_OK) {
        orch_budget_destroy(b);
        return XS_ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    *out = b;
    return XS_OK;
}

void orch_budget_destroy(orch_budget *b)
{
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->ntenants; i++) {
        free(b->tenants[i]->minute.t);
        free(b->tenants[i]);
    }
    free(b->tenants);
    free(b->app.t);
    json_decref(b->index);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* find returns the tenant's state, made when new (mu held); NULL when out of memory. */
static tenant *find(orch_budget *b, const char *id)
{
    json_t *v = json_object_get(b->index, id);
    if (v != NULL) {
        return b->tenants[json_integer_value(v)];
    }
    if (b->ntenants == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        tenant **n = realloc(b->tenants, cap * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        b->tenants = n;
        b->cap = cap;
    }
    tenant *t = calloc(1, sizeof(*t));
    if (t == NULL || window_init(&t->minute, b->lim.tenant_minute) != XS_OK) {
        free(t);
        return NULL;
    }
    t->min.left = t->day.left = -1;
    b->tenants[b->ntenants] = t;
    json_object_set_new(b->index, id, json_integer((json_int_t)b->ntenants));
    b->ntenants++;
    return t;
}

/* day_used counts the tenant's calls in the last day (buckets of day/96). */
static int64_t day_used(const orch_budget *b, const tenant *t, int64_t now)
{
    int64_t span = b->lim.day_ms + b->lim.margin_ms, n = 0;
    for (int i = 0; i < DAY_BUCKETS; i++) {
        if (t->day_count[i] > 0 &&
            t->day_bucket_start[i] > now - span - b->lim.day_ms / DAY_BUCKETS) {
            n += t->day_count[i];
        }
    }
    return n;
}

static void day_add(orch_budget *b, tenant *t, int64_t at)
{
    int64_t width = b->lim.day_ms / DAY_BUCKETS > 0 ? b->lim.day_ms / DAY_BUCKETS : 1;
    int64_t slot = at / width;
    int i = (int)(slot % DAY_BUCKETS);
    if (t->day_bucket_start[i] != slot * width) {
        t->day_bucket_start[i] = slot * width;
        t->day_count[i] = 0;
    }
    t->day_count[i]++;
}

static void day_sub(orch_budget *b, tenant *t, int64_t at, int64_t n)
{
    int64_t width = b->lim.day_ms / DAY_BUCKETS > 0 ? b->lim.day_ms / DAY_BUCKETS : 1;
    int64_t slot = at / width;
    int i = (int)(slot % DAY_BUCKETS);
    if (t->day_bucket_start[i] == slot * width) {
        t->day_count[i] = t->day_count[i] > n ? t->day_count[i] - n : 0;
    }
}

/* corr_room is how many more permits a correction leaves room for (INT64_MAX: no limit);
 * *until is when it lapses. */
static int64_t corr_room(const correction *c, int64_t now, int64_t span, int64_t *until)
{
    if (c->left < 0 || now >= c->since + span) {
        return INT64_MAX;
    }
    if (c->used < c->left) {
        return c->left - c->used;
    }
    *until = c->since + span;
    return 0;
}

static int64_t least(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t later(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

int64_t orch_budget_acquire_n(orch_budget *b, const char *tid, int64_t now, int64_t max,
                              int64_t *wait_ms)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    int64_t until = now + 1, n = 0;
    int64_t mspan = b->lim.minute_ms + b->lim.margin_ms;
    if (t == NULL || max < 1) {
        until = now + 100;
        goto out;
    }
    window_trim(&t->minute, now, mspan);
    window_trim(&b->app, now, mspan);
    if (now < t->blocked_until) {
        until = t->blocked_until;
        goto out;
    }
    if (now < b->app_blocked_until) {
        until = b->app_blocked_until;
        goto out;
    }
    if (t->in_flight >= b->lim.tenant_concurrent) {
        until = now + 10; /* when a call in flight ends */
        goto out;
    }
    if (t->minute.len >= b->lim.tenant_minute) {
        until = window_free_at(&t->minute, mspan);
        goto out;
    }
    if (b->app.len >= b->lim.app_minute) {
        until = window_free_at(&b->app, mspan);
        goto out;
    }
    int64_t dspan = b->lim.day_ms + b->lim.margin_ms;
    int64_t day_left = b->lim.tenant_day - day_used(b, t, now);
    if (day_left <= 0) {
        until = now + b->lim.day_ms / DAY_BUCKETS;
        goto out;
    }
    n = least(max, least(b->lim.tenant_minute - t->minute.len, b->app.cap - b->app.len));
    n = least(n, least(b->lim.app_minute - b->app.len, day_left));
    n = least(n, corr_room(&t->min, now, mspan, &until));
    n = least(n, corr_room(&t->day, now, dspan, &until));
    n = least(n, corr_room(&b->app_corr, now, mspan, &until));
    if (n <= 0) {
        n = 0;
        goto out;
    }
    t->in_flight++;
    t->permits += n;
    for (int64_t k = 0; k < n; k++) {
        window_push(&t->minute, now);
        window_push(&b->app, now);
        day_add(b, t, now);
    }
    t->min.used += n;
    t->day.used += n;
    b->app_corr.used += n;
out:
    pthread_mutex_unlock(&b->mu);
    if (n == 0 && wait_ms != NULL) {
        *wait_ms = until > now ? until - now : 1;
    }
    return n;
}

/* correct takes a remaining count a reply reported. Permits already out besides this call
 * may or may not be counted by Xero yet: they are counted as used, to be safe. */
static void correct(correction *c, int64_t left, int64_t now, int64_t in_flight)
{
    if (left < 0) {
        return;
    }
    c->left = left;
    c->since = now;
    c->used = in_flight;
}

void orch_budget_release_n(orch_budget *b, const char *tid, int64_t now, int64_t acquired,
                           int64_t granted, int64_t used, const orch_budget_seen *seen)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t == NULL) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    if (t->in_flight > 0) {
        t->in_flight--;
    }
    granted = granted > 0 ? granted : 1;
    used = used < 1 ? 1 : used > granted ? granted : used;
    t->permits = t->permits > granted ? t->permits - granted : 0;
    /* A call refused before it left still keeps its window slot (used counts it): giving it
     * back exactly would need its own timestamp, and keeping it only errs on the safe side.
     * Of several permits, the first call went out at once; the later ones went out by now,
     * so they count from now, and permits not used are given back. */
    if (granted > 1) {
        window_drop(&t->minute, acquired, granted - 1);
        window_drop(&b->app, acquired, granted - 1);
        day_sub(b, t, acquired, granted - 1);
        for (int64_t k = 1; k < used; k++) {
            window_push(&t->minute, now);
            window_push(&b->app, now);
            day_add(b, t, now);
        }
        int64_t back = granted - used;
        t->min.used = t->min.used > back ? t->min.used - back : 0;
        t->day.used = t->day.used > back ? t->day.used - back : 0;
        b->app_corr.used = b->app_corr.used > back ? b->app_corr.used - back : 0;
    }
    if (seen != NULL) {
        correct(&t->min, seen->min_remaining, now, t->permits);
        correct(&t->day, seen->day_remaining, now, t->permits);
        correct(&b->app_corr, seen->app_min_remaining, now, 0);
        if (seen->status == 429) {
            int64_t ra = seen->retry_after_s > 0 ? seen->retry_after_s * 1000 : 1000;
            bool app = seen->problem != NULL && strcmp(seen->problem, "appminute") == 0;
            if (app) {
                b->app_blocked_until = later(b->app_blocked_until, now + ra);
            } else {
                t->blocked_until = later(t->blocked_until, now + ra);
            }
        } else if (seen->status == 503 && seen->retry_after_s > 0) {
            t->blocked_until = later(t->blocked_until, now + seen->retry_after_s * 1000);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

void orch_budget_cancel(orch_budget *b, const char *tid, int64_t acquired, int64_t granted)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t != NULL && granted > 0) {
        if (t->in_flight > 0) {
            t->in_flight--;
        }
        t->permits = t->permits > granted ? t->permits - granted : 0;
        window_drop(&t->minute, acquired, granted);
        window_drop(&b->app, acquired, granted);
        day_sub(b, t, acquired, granted);
        t->min.used = t->min.used > granted ? t->min.used - granted : 0;
        t->day.used = t->day.used > granted ? t->day.used - granted : 0;
        b->app_corr.used = b->app_corr.used > granted ? b->app_corr.used - granted : 0;
    }
    pthread_mutex_unlock(&b->mu);
}

void orch_budget_seed(orch_budget *b, const char *tid, int64_t at)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t != NULL) {
        window_push(&t->minute, at);
        window_push(&b->app, at);
        day_add(b, t, at);
    }
    pthread_mutex_unlock(&b->mu);
}

json_t *orch_budget_json(orch_budget *b, const char *tid, int64_t now)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    json_t *out = NULL;
    if (t != NULL) {
        int64_t mspan = b->lim.minute_ms + b->lim.margin_ms;
        window_trim(&t->minute, now, mspan);
        int64_t min_left = b->lim.tenant_minute - t->minute.len;
        if (t->min.left >= 0 && now < t->min.since + mspan &&
            t->min.left - t->min.used < min_left) {
            min_left = t->min.left - t->min.used;
        }
        int64_t day_left = b->lim.tenant_day - day_used(b, t, now);
        if (t->day.left >= 0 && t->day.left - t->day.used < day_left) {
            day_left = t->day.left - t->day.used;
        }
        out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "in_flight", (json_int_t)t->in_flight,
                        "minute_left", (json_int_t)(min_left > 0 ? min_left : 0), "minute_limit",
                        (json_int_t)b->lim.tenant_minute, "day_left",
                        (json_int_t)(day_left > 0 ? day_left : 0), "day_limit",
                        (json_int_t)b->lim.tenant_day, "blocked_ms",
                        (json_int_t)(t->blocked_until > now ? t->blocked_until - now : 0));
    }
    pthread_mutex_unlock(&b->mu);
    return out;
}
