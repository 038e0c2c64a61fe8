/*
 * limits.c: Xero's rate limits. Per tenant: calls in flight, calls per minute window and per
 * day window; per app: calls per minute window across all tenants. Windows are fixed (not
 * sliding) and each tenant's are shifted by a phase drawn from the seed, so they reset at
 * different times per tenant, as Xero's do. A refused call does not count against any
 * limit. Every accounting reply carries X-MinLimit-Remaining, X-DayLimit-Remaining and
 * X-AppMinLimit-Remaining; a 429 adds Retry-After (seconds to the window's end) and
 * X-Rate-Limit-Problem ("concurrent", "minute", "day" or "appminute").
 */
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "context.h"
#include "reply.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "util.h"

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t mod_pos(uint64_t h, int64_t len)
{
    return (int64_t)(h % (uint64_t)len);
}

/* roll moves a tenant's and the app's windows to now (lim_mu held). */
static void roll(sim *s, sim_tenant *t, const sim_settings *set, int64_t now)
{
    if (t != NULL) {
        int64_t mi = floordiv(now - mod_pos((uint64_t)t->phase_min, set->minute_window_ms),
                              set->minute_window_ms);
        if (mi != t->min_window) {
            t->min_window = mi;
            t->min_count = 0;
        }
        int64_t di =
            floordiv(now - mod_pos((uint64_t)t->phase_day, set->day_window_ms), set->day_window_ms);
        if (di != t->day_window) {
            t->day_window = di;
            t->day_count = 0;
        }
    }
    int64_t ai = floordiv(now, set->minute_window_ms);
    if (ai != s->app_window) {
        s->app_window = ai;
        s->app_count = 0;
    }
}

static int64_t secs_left(int64_t now, int64_t phase, int64_t len)
{
    int64_t idx = floordiv(now - phase, len);
    int64_t end = phase + (idx + 1) * len;
    int64_t ms = end - now;
    int64_t s = (ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

static void put_num(sim_call *c, const char *name, int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)(v < 0 ? 0 : v));
    sim__reply_header(c, name, buf);
}

/* refuse replies 429 for problem, retry seconds from now, in the gateway's problem form. */
static void refuse(sim_call *c, const char *problem, int64_t retry)
{
    snprintf(c->problem, sizeof(c->problem), "%s", problem);
    char detail[96];
    snprintf(detail, sizeof(detail), "Rate limit exceeded (%s)", problem);
    put_num(c, "Retry-After", retry);
    sim__reply_header(c, "X-Rate-Limit-Problem", problem);
    sim__reply_problem(c, 429, "Too Many Requests", detail);
}

bool sim__limits_acquire(sim_call *c)
{
    sim *s = c->s;
    sim_tenant *t = c->tenant;
    const sim_settings *set = &c->set;
    int64_t now = sim__now(s);
    const char *problem = NULL;
    int64_t retry = 1;
    pthread_mutex_lock(&s->lim_mu);
    roll(s, t, set, now);
    if (t->in_flight >= set->limit_concurrent) {
        problem = "concurrent";
        retry = 1;
    } else if (t->min_count >= set->limit_minute) {
        problem = "minute";
        retry = secs_left(now, mod_pos((uint64_t)t->phase_min, set->minute_window_ms),
                          set->minute_window_ms);
    } else if (t->day_count >= set->limit_day) {
        problem = "day";
        retry =
            secs_left(now, mod_pos((uint64_t)t->phase_day, set->day_window_ms), set->day_window_ms);
    } else if (s->app_count >= set->limit_app_minute) {
        problem = "appminute";
        retry = secs_left(now, 0, set->minute_window_ms);
    }
    if (problem == NULL) {
        t->in_flight++;
        t->min_count++;
        t->day_count++;
        s->app_count++;
        s->app_in_flight++;
        if (t->in_flight > t->max_in_flight) {
            t->max_in_flight = t->in_flight;
        }
        if (s->app_in_flight > s->app_max_in_flight) {
            s->app_max_in_flight = s->app_in_flight;
        }
        c->counted = true;
        c->win_min = t->min_window;
        c->win_day = t->day_window;
        c->win_app = s->app_window;
    }
    c->rem_min = set->limit_minute - t->min_count;
    c->rem_day = set->limit_day - t->day_count;
    c->rem_app = set->limit_app_minute - s->app_count;
    c->limited_tenant = true;
    pthread_mutex_unlock(&s->lim_mu);
    if (problem != NULL) {
        sim__stats_limited(s, problem);
        refuse(c, problem, retry);
        return false;
    }
    return true;
}

void sim__limits_fault_429(sim_call *c)
{
    sim *s = c->s;
    sim_tenant *t = c->tenant;
    const sim_settings *set = &c->set;
    int64_t now = sim__now(s);
    int64_t retry;
    pthread_mutex_lock(&s->lim_mu);
    roll(s, t, set, now);
    if (c->counted) {
        /* take the call back from each window it was counted in, unless that window has
         * ended meanwhile (its count started again without it) */
        t->in_flight--;
        s->app_in_flight--;
        t->min_count -= t->min_window == c->win_min && t->min_count > 0;
        t->day_count -= t->day_window == c->win_day && t->day_count > 0;
        s->app_count -= s->app_window == c->win_app && s->app_count > 0;
        c->counted = false;
    }
    if (t != NULL) {
        retry = secs_left(now, mod_pos((uint64_t)t->phase_min, set->minute_window_ms),
                          set->minute_window_ms);
        c->rem_min = set->limit_minute - t->min_count;
        c->rem_day = set->limit_day - t->day_count;
        c->rem_app = set->limit_app_minute - s->app_count;
    } else {
        retry = secs_left(now, 0, set->minute_window_ms);
    }
    pthread_mutex_unlock(&s->lim_mu);
    refuse(c, "minute", retry);
}

void sim__limits_release(sim_call *c)
{
    if (!c->counted) {
        return;
    }
    sim *s = c->s;
    pthread_mutex_lock(&s->lim_mu);
    c->tenant->in_flight--;
    s->app_in_flight--;
    pthread_mutex_unlock(&s->lim_mu);
    c->counted = false;
}

void sim__limits_headers(sim_call *c)
{
    sim *s = c->s;
    if (!c->limited_tenant) {
        /* not counted (401, 403): report the state of the named tenant, if any */
        int64_t now = sim__now(s);
        sim_tenant *t = c->tenant;
        if (t == NULL) {
            const char *tid = xs_http_req_header(c->req, "xero-tenant-id");
            xs_uuid id;
            if (tid != NULL && xs_uuid_parse(tid, &id)) {
                t = sim__tenant_find(s, &id);
            }
        }
        pthread_mutex_lock(&s->lim_mu);
        roll(s, t, &c->set, now);
        c->rem_min = c->set.limit_minute - (t ? t->min_count : 0);
        c->rem_day = c->set.limit_day - (t ? t->day_count : 0);
        c->rem_app = c->set.limit_app_minute - s->app_count;
        pthread_mutex_unlock(&s->lim_mu);
    }
    put_num(c, "X-MinLimit-Remaining", c->rem_min);
    put_num(c, "X-DayLimit-Remaining", c->rem_day);
    put_num(c, "X-AppMinLimit-Remaining", c->rem_app);
}

void sim__limits_reset(sim *s)
{
    pthread_rwlock_rdlock(&s->world_lock);
    pthread_mutex_lock(&s->lim_mu);
    for (size_t i = 0; i < s->ntenants; i++) {
        sim_tenant *t = s->tenants[i];
        t->min_count = t->day_count = 0;
        t->min_window = t->day_window = INT64_MIN;
        t->max_in_flight = t->in_flight;
    }
    s->app_count = 0;
    s->app_window = INT64_MIN;
    s->app_max_in_flight = s->app_in_flight;
    pthread_mutex_unlock(&s->lim_mu);
    pthread_rwlock_unlock(&s->world_lock);
}

void sim__tenant_phase(sim *s, sim_tenant *t)
{
    uint64_t seed = s->set.seed;
    t->phase_min = (int64_t)(sim__hash64(t->id.b, 16, seed ^ 0x6d696e) >> 1);
    t->phase_day = (int64_t)(sim__hash64(t->id.b, 16, seed ^ 0x646179) >> 1);
    t->min_window = t->day_window = INT64_MIN;
}

json_t *sim__limits_json(sim *s, sim_tenant *t)
{
    sim_settings set;
    sim__settings(s, &set);
    int64_t now = sim__now(s);
    pthread_mutex_lock(&s->lim_mu);
    roll(s, t, &set, now);
    int64_t pm = mod_pos((uint64_t)t->phase_min, set.minute_window_ms);
    int64_t pd = mod_pos((uint64_t)t->phase_day, set.day_window_ms);
    int64_t min_end = pm + (floordiv(now - pm, set.minute_window_ms) + 1) * set.minute_window_ms;
    int64_t day_end = pd + (floordiv(now - pd, set.day_window_ms) + 1) * set.day_window_ms;
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "in_flight", (json_int_t)t->in_flight,
                          "max_in_flight", (json_int_t)t->max_in_flight, "minute_count",
                          (json_int_t)t->min_count, "day_count", (json_int_t)t->day_count,
                          "minute_window_ms_left", (json_int_t)(min_end - now),
                          "day_window_ms_left", (json_int_t)(day_end - now));
    pthread_mutex_unlock(&s->lim_mu);
    return o;
}
