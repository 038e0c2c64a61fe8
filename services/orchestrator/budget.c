/* budget.c: the rate budget (see budget.h). */
#include "budget.h"

#include "appbudget.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_BUCKETS 96
/* A probe step of a held tenant makes at most this many calls (a push that re-reads: 2). */
#define PROBE_CALLS 2
/* How soon to look again while a probe is out. */
#define PROBE_POLL_MS 100

/* What holds a tenant by Xero's day limit (see budget.h). */
enum { DAY_NONE, DAY_EXACT, DAY_HELD };

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
    if (n <= 0) {
        return;
    }
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

/* window_since counts the calls recorded at or after `at` (read from the newest back). */
static int64_t window_since(const window *w, int64_t at)
{
    int64_t n = 0;
    for (int64_t i = w->len; i-- > 0 && w->t[(w->start + i) % w->cap] >= at;) {
        n++;
    }
    return n;
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
    /* When Xero's fixed window last started again, as far as replies tell (the first count,
     * or one higher than the one before by more than replies out of order make it): at or
     * after the real start, never before; 0: unknown. */
    int64_t reset_at;
} correction;

typedef struct tenant {
    char *id;
    int64_t in_flight; /* steps holding permits */
    int64_t permits;   /* permits those steps hold (a pull step may hold several) */
    window minute;
    int64_t day_count[DAY_BUCKETS];
    int64_t day_bucket_start[DAY_BUCKETS];
    correction min, day;
    int64_t blocked_until;
    /* Xero's day limit: DAY_EXACT until day_until (a 429's Retry-After), or DAY_HELD until a
     * probe at day_until answers; day_since is when it began. */
    int day_kind;
    int64_t day_until, day_since;
    bool probe_out; /* the probe step holds permits, taken at probe_at */
    int64_t probe_at;
    int64_t count_until; /* our own day count is used up until then (0: it is not) */
    /* the day block as orch_budget_day_next last reported it */
    bool said_blocked, said_dirty;
    int64_t said_until;
    /* pacing: thousandths of a call the tenant may make now (at most tenant_burst calls),
     * refilled at tenant_minute per minute_ms since pace_at */
    int64_t pace_milli, pace_at;
    bool pace_set;
} tenant;

struct orch_budget {
    pthread_mutex_t mu;
    orch_budget_limits lim;
    json_t *index; /* tenant id -> integer index into tenants */
    tenant **tenants;
    size_t ntenants, cap;
    window app;
    correction app_corr;
    int64_t permits_out; /* permits held by steps of every tenant (their calls may be in flight) */
    int64_t app_blocked_until;
    orch_appbudget *shared; /* the app's permits shared with other orchestrators, or NULL */
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
        free(b->tenants[i]->id);
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
    if (t == NULL || (t->id = strdup(id)) == NULL ||
        window_init(&t->minute, b->lim.tenant_minute) != XS_OK) {
        if (t != NULL) {
            free(t->id);
        }
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

/* day_free_at is when the oldest of the tenant's calls counted by day_used leaves the day. */
static int64_t day_free_at(const orch_budget *b, const tenant *t, int64_t now)
{
    int64_t span = b->lim.day_ms + b->lim.margin_ms;
    int64_t width = b->lim.day_ms / DAY_BUCKETS > 0 ? b->lim.day_ms / DAY_BUCKETS : 1;
    int64_t oldest = INT64_MAX;
    for (int i = 0; i < DAY_BUCKETS; i++) {
        int64_t start = t->day_bucket_start[i];
        if (t->day_count[i] > 0 && start > now - span - width && start < oldest) {
            oldest = start;
        }
    }
    return oldest != INT64_MAX && oldest + span + width > now ? oldest + span + width : now + 1;
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

/* corr_lapse is when what a correction said stops holding: span after it was said, or, for a
 * fixed window of length `fixed` (0: none) whose start a reply showed, the first start after
 * it was said (plus margin), whichever comes first. A start seen later than it happened makes
 * the next ones later too: never before Xero's. */
static int64_t corr_lapse(const correction *c, int64_t span, int64_t fixed, int64_t margin)
{
    int64_t lapse = c->since + span;
    if (fixed > 0 && c->reset_at > 0 && c->reset_at <= c->since) {
        int64_t next = c->reset_at + ((c->since - c->reset_at) / fixed + 1) * fixed + margin;
        lapse = next < lapse ? next : lapse;
    }
    return lapse;
}

/* corr_room is how many more permits a correction leaves room for (INT64_MAX: no limit);
 * *until is when it lapses (corr_lapse). */
static int64_t corr_room(const correction *c, int64_t now, int64_t span, int64_t fixed,
                         int64_t margin, int64_t *until)
{
    int64_t lapse = corr_lapse(c, span, fixed, margin);
    if (c->left < 0 || now >= lapse) {
        return INT64_MAX;
    }
    if (c->used < c->left) {
        return c->left - c->used;
    }
    *until = lapse;
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

/* hold holds the tenant by the day limit from now: one probe after probe_ms. */
static void hold(const orch_budget *b, tenant *t, int64_t now)
{
    t->day_kind = DAY_HELD;
    t->day_since = now;
    t->day_until = now + b->lim.probe_ms;
}

/* day_block tells whether the tenant is blocked by the day limit at now, and until when
 * (*until: see orch_budget_day); *kind names what blocks it, when kind is not NULL. */
static bool day_block(const tenant *t, int64_t now, int64_t *until, const char **kind)
{
    bool blocked = false;
    int64_t u = 0;
    const char *k = NULL;
    if (t->count_until > now) {
        blocked = true;
        u = t->count_until;
        k = "count";
    }
    if (t->day_kind == DAY_EXACT && now < t->day_until) {
        blocked = true;
        u = later(u, t->day_until);
        k = "retry_after";
    } else if (t->day_kind == DAY_HELD) {
        blocked = true;
        u = later(u, t->day_until);
        k = "probe";
    }
    *until = u;
    if (kind != NULL) {
        *kind = k;
    }
    return blocked;
}

/* paced tells whether the tenants' calls are paced (limits.tenant_burst). */
static bool paced(const orch_budget *b)
{
    return b->lim.tenant_burst > 0 && b->lim.tenant_burst < b->lim.tenant_minute &&
           b->lim.minute_ms > 0;
}

/* pace_refill brings the tenant's pacing allowance to now (mu held). */
static void pace_refill(const orch_budget *b, tenant *t, int64_t now)
{
    int64_t cap = b->lim.tenant_burst * 1000;
    if (!t->pace_set) {
        t->pace_set = true;
        t->pace_milli = cap;
        t->pace_at = now;
        return;
    }
    int64_t dt = now - t->pace_at;
    dt = dt < 0 ? 0 : dt > b->lim.minute_ms ? b->lim.minute_ms : dt;
    t->pace_milli += dt * b->lim.tenant_minute * 1000 / b->lim.minute_ms;
    t->pace_milli = t->pace_milli > cap ? cap : t->pace_milli;
    t->pace_at = now;
}

/* pace_back returns n calls to the tenant's pacing allowance (permits not used). */
static void pace_back(const orch_budget *b, tenant *t, int64_t n)
{
    if (paced(b) && n > 0) {
        int64_t cap = b->lim.tenant_burst * 1000;
        t->pace_milli = t->pace_milli + n * 1000 > cap ? cap : t->pace_milli + n * 1000;
    }
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
    if (t->day_kind == DAY_EXACT && now >= t->day_until) {
        /* Xero said when its day window has room again: now. What the 429 said was left (0)
         * is forgotten with it. */
        t->day_kind = DAY_NONE;
        t->day.left = -1;
    }
    if (t->day_kind == DAY_EXACT) {
        until = t->day_until;
        goto out;
    }
    bool probe = false;
    if (t->day_kind == DAY_HELD) {
        if (t->probe_out || now < t->day_until) {
            until = t->probe_out ? now + PROBE_POLL_MS : t->day_until;
            goto out;
        }
        probe = true; /* one step, to learn whether calls may go again */
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
        t->count_until = day_free_at(b, t, now);
        until = t->count_until;
        goto out;
    }
    t->count_until = 0;
    n = least(max, least(b->lim.tenant_minute - t->minute.len, b->app.cap - b->app.len));
    n = least(n, least(b->lim.app_minute - b->app.len, day_left));
    n = least(n, corr_room(&t->min, now, mspan, b->lim.minute_ms, b->lim.margin_ms, &until));
    if (probe) {
        n = least(n, PROBE_CALLS);
    } else {
        int64_t lapse = 0;
        int64_t room = corr_room(&t->day, now, dspan, 0, 0, &lapse);
        if (room <= 0) {
            /* What the last reply said was left is used up: Xero's window may have moved on
             * since, so hold and probe instead of waiting for a day. */
            hold(b, t, now);
            until = t->day_until;
            n = 0;
            goto out;
        }
        n = least(n, room);
    }
    n = least(n, corr_room(&b->app_corr, now, mspan, b->lim.minute_ms, b->lim.margin_ms, &until));
    if (n > 0 && paced(b)) {
        /* A busy tenant spends its minute evenly, not all at once and then nothing for most of
         * a minute (a realtime push waiting behind that gap waits for all of it). */
        pace_refill(b, t, now);
        if (t->pace_milli < 1000) {
            until = now +
                    ((1000 - t->pace_milli) * b->lim.minute_ms + b->lim.tenant_minute * 1000 - 1) /
                        (b->lim.tenant_minute * 1000);
            n = 0;
        } else {
            n = least(n, t->pace_milli / 1000);
        }
    }
    if (n > 0 && b->shared != NULL) {
        /* The app's limit is shared with the other orchestrators: the permits come from the
         * pool their ledger grants this one. */
        int64_t w = 0;
        n = orch_appbudget_take(b->shared, tid, now, n, &w);
        until = n == 0 ? now + w : until;
    }
    if (n <= 0) {
        n = 0;
        goto out;
    }
    if (paced(b)) {
        t->pace_milli -= n * 1000;
    }
    if (probe) {
        t->probe_out = true;
        t->probe_at = now;
    }
    t->in_flight++;
    t->permits += n;
    b->permits_out += n;
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

/* permits_back ends the hold of granted permits of t's (at most what it holds). */
static void permits_back(orch_budget *b, tenant *t, int64_t granted)
{
    int64_t n = granted < t->permits ? granted : t->permits;
    t->permits -= n;
    b->permits_out = b->permits_out > n ? b->permits_out - n : 0;
}

/* correct takes a remaining count a reply reported. Permits already out besides this call
 * (used) may or may not be counted by Xero yet: they are counted as used, to be safe. Replies
 * come back in another order than Xero counted them, by as many calls as were in flight
 * (in_flight): a count up to that many more than the last one is that, not the window
 * starting again. */
static void correct(correction *c, int64_t left, int64_t now, int64_t used, int64_t in_flight)
{
    if (left < 0) {
        return;
    }
    if (c->left < 0 || left > c->left + in_flight) {
        /* The first count seen, or more left than before: the window it is of started by now
         * (a start later than it happened, as every one seen is: never before Xero's). Until
         * then a "none left" of the first window held for a whole window from the reply that
         * said it: the first burst of a mass import waited its own length longer. */
        c->reset_at = now;
    }
    c->left = left;
    c->since = now;
    c->used = used;
}

void orch_budget_release_n(orch_budget *b, const char *tid, int64_t now, int64_t acquired,
                           int64_t granted, int64_t used, const orch_budget_seen *seen)
{
    if (granted <= 0) {
        return; /* the step held no permit: nothing to give back */
    }
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t == NULL) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    if (t->in_flight > 0) {
        t->in_flight--;
    }
    used = used < 0 ? 0 : used > granted ? granted : used;
    if (b->shared != NULL) {
        orch_appbudget_give(b->shared, tid, now, acquired, granted, used);
    }
    permits_back(b, t, granted);
    pace_back(b, t, granted - used);
    /* A call refused before it left still keeps its window slot (used counts it): giving it
     * back exactly would need its own timestamp, and keeping it only errs on the safe side.
     * Of several permits, the first call went out at once; the later ones went out by now,
     * so they count from now, and permits not used are given back: all of them when the
     * step made no call. */
    int64_t kept = used > 0 ? 1 : 0, back = granted - used;
    window_drop(&t->minute, acquired, granted - kept);
    window_drop(&b->app, acquired, granted - kept);
    day_sub(b, t, acquired, granted - kept);
    for (int64_t k = 1; k < used; k++) {
        window_push(&t->minute, now);
        window_push(&b->app, now);
        day_add(b, t, now);
    }
    t->min.used = t->min.used > back ? t->min.used - back : 0;
    t->day.used = t->day.used > back ? t->day.used - back : 0;
    b->app_corr.used = b->app_corr.used > back ? b->app_corr.used - back : 0;
    bool probe = t->probe_out && acquired == t->probe_at;
    if (probe) {
        t->probe_out = false;
    }
    if (used == 0) {
        /* No call went: nothing was said, and a probe that did not go leaves the next step
         * to be one. */
        pthread_mutex_unlock(&b->mu);
        return;
    }
    /* Only a reply to a call that left after a hold began tells whether it may end. */
    bool fresh = t->day_kind == DAY_HELD && acquired >= t->day_since;
    bool day429 = seen != NULL && seen->status == 429 && seen->problem != NULL &&
                  strcmp(seen->problem, "day") == 0;
    if (day429) {
        int64_t end = now + (seen->retry_after_s > 0 ? seen->retry_after_s * 1000 : 1000);
        if (t->day_kind != DAY_EXACT) {
            t->day_kind = DAY_EXACT;
            t->day_since = now;
            t->day_until = end;
        } else {
            t->day_until = later(t->day_until, end);
        }
    } else if (fresh) {
        if (seen != NULL && seen->day_remaining > 0) {
            t->day_kind = DAY_NONE; /* calls may go again */
        } else {
            t->day_until = now + b->lim.probe_ms; /* none left, or no word: probe again */
        }
    } else if (seen != NULL && seen->day_remaining == 0 && t->day_kind == DAY_NONE) {
        hold(b, t, now);
    }
    if (seen != NULL) {
        /* Xero may have counted after this call any call in flight as it went, or begun
         * since: the permits still out and the calls taken since it. */
        int64_t mine = t->permits + window_since(&t->minute, acquired);
        correct(&t->min, seen->min_remaining, now, t->permits, mine);
        correct(&t->day, seen->day_remaining, now, t->permits, mine);
        correct(&b->app_corr, seen->app_min_remaining, now, 0,
                b->permits_out + window_since(&b->app, acquired));
        if (seen->status == 429 && !day429) {
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
        if (t->probe_out && acquired == t->probe_at) {
            t->probe_out = false; /* the probe did not go: the next step may be it */
        }
        if (t->in_flight > 0) {
            t->in_flight--;
        }
        if (b->shared != NULL) {
            orch_appbudget_give(b->shared, tid, acquired, acquired, granted, 0);
        }
        permits_back(b, t, granted);
        pace_back(b, t, granted);
        window_drop(&t->minute, acquired, granted);
        window_drop(&b->app, acquired, granted);
        day_sub(b, t, acquired, granted);
        t->min.used = t->min.used > granted ? t->min.used - granted : 0;
        t->day.used = t->day.used > granted ? t->day.used - granted : 0;
        b->app_corr.used = b->app_corr.used > granted ? b->app_corr.used - granted : 0;
    }
    pthread_mutex_unlock(&b->mu);
}

void orch_budget_share(orch_budget *b, orch_appbudget *shared)
{
    pthread_mutex_lock(&b->mu);
    b->shared = shared;
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

/* tenant_left is what t has left now, as far as we know: calls this minute and today, and
 * until when (monotonic) it is blocked and by what day block (kind, or NULL); b->mu held. */
static void tenant_left(orch_budget *b, tenant *t, int64_t now, int64_t *min_left,
                        int64_t *day_left, int64_t *until, const char **kind)
{
    int64_t mspan = b->lim.minute_ms + b->lim.margin_ms;
    window_trim(&t->minute, now, mspan);
    *min_left = b->lim.tenant_minute - t->minute.len;
    if (t->min.left >= 0 && now < corr_lapse(&t->min, mspan, b->lim.minute_ms, b->lim.margin_ms) &&
        t->min.left - t->min.used < *min_left) {
        *min_left = t->min.left - t->min.used;
    }
    *day_left = b->lim.tenant_day - day_used(b, t, now);
    if (t->day.left >= 0 && t->day.left - t->day.used < *day_left) {
        *day_left = t->day.left - t->day.used;
    }
    *until = 0;
    *kind = NULL;
    if (day_block(t, now, until, kind)) {
        *day_left = 0;
    }
    *until = later(*until, t->blocked_until);
    *min_left = *min_left > 0 ? *min_left : 0;
    *day_left = *day_left > 0 ? *day_left : 0;
}

json_t *orch_budget_json(orch_budget *b, const char *tid, int64_t now)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    json_t *out = NULL;
    if (t != NULL) {
        int64_t min_left, day_left, until;
        const char *kind;
        tenant_left(b, t, now, &min_left, &day_left, &until, &kind);
        out = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:s?}", "in_flight", (json_int_t)t->in_flight,
            "minute_left", (json_int_t)min_left, "minute_limit", (json_int_t)b->lim.tenant_minute,
            "day_left", (json_int_t)day_left, "day_limit", (json_int_t)b->lim.tenant_day,
            "blocked_ms", (json_int_t)(until > now ? until - now : 0), "day_block", kind);
    }
    pthread_mutex_unlock(&b->mu);
    return out;
}

json_t *orch_budget_gauges(orch_budget *b, int64_t now)
{
    json_t *tenants = json_object();
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->ntenants; i++) {
        tenant *t = b->tenants[i];
        int64_t min_left, day_left, until;
        const char *kind;
        tenant_left(b, t, now, &min_left, &day_left, &until, &kind);
        json_object_set_new(tenants, t->id,
                            json_pack("{s:I, s:I, s:I}", "minute_left", (json_int_t)min_left,
                                      "day_left", (json_int_t)day_left, "in_flight",
                                      (json_int_t)t->in_flight));
    }
    int64_t mspan = b->lim.minute_ms + b->lim.margin_ms, until = 0;
    window_trim(&b->app, now, mspan);
    int64_t app_left =
        least(b->lim.app_minute - b->app.len,
              corr_room(&b->app_corr, now, mspan, b->lim.minute_ms, b->lim.margin_ms, &until));
    if (now < b->app_blocked_until) {
        app_left = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return json_pack("{s:o, s:I, s:I}", "tenants", tenants, "app_minute_left",
                     (json_int_t)(app_left > 0 ? app_left : 0), "app_minute_limit",
                     (json_int_t)b->lim.app_minute);
}

int64_t orch_budget_app_wait(orch_budget *b, int64_t now)
{
    pthread_mutex_lock(&b->mu);
    int64_t mspan = b->lim.minute_ms + b->lim.margin_ms, until = now + 1;
    window_trim(&b->app, now, mspan);
    int64_t wait = 0;
    if (now < b->app_blocked_until) {
        wait = b->app_blocked_until - now;
    } else if (b->app.len >= b->lim.app_minute) {
        wait = window_free_at(&b->app, mspan) - now;
    } else if (corr_room(&b->app_corr, now, mspan, b->lim.minute_ms, b->lim.margin_ms, &until) <=
               0) {
        wait = until - now;
    } else if (b->shared != NULL) {
        wait = orch_appbudget_wait(b->shared, now); /* the other orchestrators' share */
    }
    pthread_mutex_unlock(&b->mu);
    return wait > 0 ? wait : 0;
}

bool orch_budget_day_next(orch_budget *b, int64_t now, orch_budget_day *out)
{
    bool found = false;
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->ntenants && !found; i++) {
        tenant *t = b->tenants[i];
        int64_t until = 0;
        bool blocked = day_block(t, now, &until, NULL);
        if (!t->said_dirty && blocked == t->said_blocked && (!blocked || until == t->said_until)) {
            continue;
        }
        memset(out, 0, sizeof(*out));
        snprintf(out->tenant, sizeof(out->tenant), "%s", t->id);
        out->blocked = blocked;
        out->began = blocked && !t->said_blocked;
        out->ended = !blocked && t->said_blocked;
        out->until_ms = until;
        t->said_blocked = blocked;
        t->said_until = until;
        t->said_dirty = false;
        found = true;
    }
    pthread_mutex_unlock(&b->mu);
    return found;
}

void orch_budget_day_retry(orch_budget *b, const char *tid)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t != NULL) {
        t->said_dirty = true;
    }
    pthread_mutex_unlock(&b->mu);
}

void orch_budget_day_restore(orch_budget *b, const char *tid, int64_t now, int64_t until)
{
    pthread_mutex_lock(&b->mu);
    tenant *t = find(b, tid);
    if (t != NULL) {
        t->day_kind = DAY_HELD;
        t->day_since = now;
        t->day_until = until;
        int64_t shown = 0;
        t->said_blocked = day_block(t, now, &shown, NULL);
        t->said_until = shown;
    }
    pthread_mutex_unlock(&b->mu);
}
