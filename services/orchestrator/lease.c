/*
 * lease.c: the shard leases (lease.h). One thread renews, balances and takes over; the
 * executors and the other threads read the shards held through orch_lease_shards.
 *
 * Time: the leases' expiry is the database's clock (now() + XS_LEASE_TTL at each renewal), so
 * orchestrators on hosts whose clocks differ agree on it. Locally a renewal counts from the
 * moment before it was sent (monotonic), which is no later than the database's now() of it:
 * a holder stops acting for its shards XS_LEASE_TTL less a margin after its last successful
 * renewal began, before any other orchestrator may take them.
 */
#include "lease.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runs.h"
#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"

/* A holder stops acting this long (a quarter of XS_LEASE_TTL) before its lease can expire:
 * room for a renewal's round trip and a step claimed just before. */
#define MARGIN_DIV 4
/* No orchestrator still runs a step this long after it started beyond twice XS_BUS_TIMEOUT
 * (the token's request, then the step's; then the outcome is written, retried for up to 10 s
 * when the database blinks), nor does a domain service work on it for one. */
#define INFLIGHT_EXTRA_MS 15000
/* The thread sleeps this long at a time between rounds, so a stop is seen soon. */
#define NAP_MS 100

struct orch_lease {
    char id[160];
    int64_t ttl_ms, margin_ms, inflight_ms;
    pthread_mutex_t mu;
    bool held[ORCH_SHARDS]; /* (mu) held at the last renewal */
    int nheld;              /* (mu) */
    int64_t valid_until;    /* (mu) monotonic ms: held surely until then */
    json_t *holders;        /* (mu) [{orchestrator, shards}] as last read */
    atomic_bool quit;       /* the thread ends at its next nap */
    /* The thread's own: when (the database's clock, text) each shard was last given back by
     * this orchestrator ("" never): a shard taken again is seeded only with the calls made
     * since. */
    char given_at[ORCH_SHARDS][40];
    orch_lease_seed_fn seed; /* the budget's seeding of the shards taken */
    pthread_t thread;
    bool started;
};

/* shards_literal writes the shards set in `set` as an int array literal; false when cap is
 * too small. */
static bool shards_literal(const bool set[ORCH_SHARDS], char *buf, size_t cap)
{
    size_t n = 0;
    if (cap < 3) {
        return false;
    }
    buf[n++] = '{';
    for (int s = 0; s < ORCH_SHARDS; s++) {
        if (!set[s]) {
            continue;
        }
        int w = snprintf(buf + n, cap - n, "%s%d", n > 1 ? "," : "", s);
        if (w < 0 || (size_t)w >= cap - n) {
            return false;
        }
        n += (size_t)w;
    }
    if (n + 2 > cap) {
        return false;
    }
    buf[n++] = '}';
    buf[n] = '\0';
    return true;
}

/* shards_of reads the first column of r (shard numbers) into set (cleared first); returns how
 * many. */
static int shards_of(const xs_pg_res *r, bool set[ORCH_SHARDS])
{
    memset(set, 0, ORCH_SHARDS * sizeof(bool));
    int n = 0;
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        int64_t s = -1;
        if (xs_pg_res_int(r, i, 0, &s) == XS_OK && s >= 0 && s < ORCH_SHARDS && !set[s]) {
            set[s] = true;
            n++;
        }
    }
    return n;
}

/* held_set replaces the shards held (under mu), valid until valid_until. */
static void held_set(orch_lease *l, const bool set[ORCH_SHARDS], int64_t valid_until)
{
    pthread_mutex_lock(&l->mu);
    memcpy(l->held, set, sizeof(l->held));
    l->nheld = 0;
    for (int s = 0; s < ORCH_SHARDS; s++) {
        l->nheld += set[s] ? 1 : 0;
    }
    l->valid_until = valid_until;
    pthread_mutex_unlock(&l->mu);
}

/* renew registers this orchestrator as alive (forgetting those gone for ten leases' time)
 * and renews the leases it still holds (those not expired: an expired one may have been
 * taken), into held; the count, or -1 when the
 * database failed (nothing changes: the leases lapse locally at valid_until). */
static int renew(orch *o, xs_pg *pg, bool held[ORCH_SHARDS])
{
    orch_lease *l = o->lease;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)l->ttl_ms);
    int64_t t0 = xs_clock_mono_ms();
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, NULL,
                "INSERT INTO sync.orchestrators (id, expires_at) VALUES ($1, now() + $2::bigint * "
                "interval '1 millisecond') ON CONFLICT (id) DO UPDATE SET expires_at = "
                "EXCLUDED.expires_at",
                l->id, ttl) != XS_OK ||
        xs_pg_q(pg, NULL,
                "DELETE FROM sync.orchestrators WHERE expires_at < now() - 10 * $1::bigint * "
                "interval '1 millisecond'",
                ttl) != XS_OK ||
        xs_pg_q(pg, &r,
                "UPDATE sync.shard_leases SET expires_at = now() + $2::bigint * interval '1 "
                "millisecond' WHERE holder = $1 AND expires_at > now() RETURNING shard",
                l->id, ttl) != XS_OK) {
        xs_log_warn(o->proc.log, "lease.renew_failed", "{s:s, s:s}", "orchestrator", l->id, "error",
                    xs_pg_error(pg));
        return -1;
    }
    int n = shards_of(r, held);
    xs_pg_res_free(r);
    held_set(l, held, t0 + l->ttl_ms - l->margin_ms);
    return n;
}

/* fair_share is how many shards each of the orchestrators alive now should hold at most
 * (rounded up, so that together they hold every shard); 0 when unknown. */
static int fair_share(xs_pg *pg)
{
    xs_pg_res *r = NULL;
    int64_t live = 0;
    if (xs_pg_q0(pg, &r, "SELECT count(*) FROM sync.orchestrators WHERE expires_at > now()") !=
            XS_OK ||
        xs_pg_res_int(r, 0, 0, &live) != XS_OK || live < 1) {
        xs_pg_res_free(r);
        return 0;
    }
    xs_pg_res_free(r);
    return (int)((ORCH_SHARDS + live - 1) / live);
}

/* give_back gives back the `extra` highest shards of held (taken out of use first). */
static void give_back(orch *o, xs_pg *pg, bool held[ORCH_SHARDS], int extra)
{
    orch_lease *l = o->lease;
    bool give[ORCH_SHARDS] = {false};
    for (int s = ORCH_SHARDS - 1; s >= 0 && extra > 0; s--) {
        if (held[s]) {
            give[s] = true;
            held[s] = false;
            extra--;
        }
    }
    pthread_mutex_lock(&l->mu);
    int64_t until = l->valid_until;
    pthread_mutex_unlock(&l->mu);
    held_set(l, held, until);
    char list[ORCH_LEASE_SHARDS_MAX];
    xs_pg_res *r = NULL;
    if (!shards_literal(give, list, sizeof(list)) ||
        xs_pg_q(pg, &r,
                "UPDATE sync.shard_leases SET holder = NULL, expires_at = '-infinity', taken_at = "
                "NULL, epoch = epoch + 1 WHERE holder = $1 AND shard = ANY($2::int[]) RETURNING "
                "shard, now()::text",
                l->id, list) != XS_OK) {
        /* Not given back: they expire at the database by themselves. */
        return;
    }
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        int64_t s = -1;
        if (xs_pg_res_int(r, i, 0, &s) == XS_OK && s >= 0 && s < ORCH_SHARDS) {
            snprintf(l->given_at[s], sizeof(l->given_at[s]), "%s", xs_pg_res_get(r, i, 1));
        }
    }
    xs_log_info(o->proc.log, "lease.given_back", "{s:s, s:i, s:s}", "orchestrator", l->id, "shards",
                xs_pg_res_nrows(r), "list", list);
    xs_pg_res_free(r);
}

/* take takes up to `want` free or expired shards into held and seeds their tenants' budgets
 * (l->seed); how many. The budget is seeded before the shards
 * are used, so no step of theirs runs on an empty budget. */
static int take(orch *o, xs_pg *pg, bool held[ORCH_SHARDS], int want)
{
    orch_lease *l = o->lease;
    char ttl[24], lim[16];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)l->ttl_ms);
    snprintf(lim, sizeof(lim), "%d", want);
    int64_t t0 = xs_clock_mono_ms();
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "UPDATE sync.shard_leases l SET holder = $1, expires_at = now() + $2::bigint * "
                "interval '1 millisecond', taken_at = now(), epoch = l.epoch + 1 FROM (SELECT "
                "shard FROM sync.shard_leases WHERE expires_at <= now() ORDER BY shard LIMIT "
                "$3::int FOR UPDATE SKIP LOCKED) f WHERE l.shard = f.shard AND l.expires_at <= "
                "now() RETURNING l.shard",
                l->id, ttl, lim) != XS_OK) {
        xs_log_warn(o->proc.log, "lease.take_failed", "{s:s, s:s}", "orchestrator", l->id, "error",
                    xs_pg_error(pg));
        return 0;
    }
    bool got[ORCH_SHARDS];
    int n = shards_of(r, got);
    xs_pg_res_free(r);
    if (n == 0) {
        return 0;
    }
    char list[ORCH_LEASE_SHARDS_MAX];
    json_t *since = json_object();
    for (int s = 0; s < ORCH_SHARDS; s++) {
        if (got[s] && l->given_at[s][0] != '\0') {
            char key[8];
            snprintf(key, sizeof(key), "%d", s);
            json_object_set_new(since, key, json_string(l->given_at[s]));
        }
    }
    char *st = xs_json_dump(since, 0);
    json_decref(since);
    if (shards_literal(got, list, sizeof(list)) && st != NULL) {
        l->seed(o, pg, list, st);
    }
    free(st);
    for (int s = 0; s < ORCH_SHARDS; s++) {
        held[s] = held[s] || got[s];
    }
    pthread_mutex_lock(&l->mu);
    int64_t until = l->valid_until;
    pthread_mutex_unlock(&l->mu);
    /* Shards held before keep their renewal's time; the new ones are younger. */
    held_set(l, held, until > 0 ? until : t0 + l->ttl_ms - l->margin_ms);
    xs_log_info(o->proc.log, "lease.taken", "{s:s, s:i, s:s}", "orchestrator", l->id, "shards", n,
                "list", list);
    return n;
}

/* recover makes runnable again, in the shards held, the steps nobody can still be running
 * (orch_recover): those its holder left when it died or gave the shard back, and any other
 * orchestrator's that ran a step of a shard it did not hold. */
static void recover(orch *o, xs_pg *pg, const bool held[ORCH_SHARDS])
{
    orch_lease *l = o->lease;
    char list[ORCH_LEASE_SHARDS_MAX];
    bool any = false;
    for (int s = 0; s < ORCH_SHARDS && !any; s++) {
        any = held[s];
    }
    if (any && shards_literal(held, list, sizeof(list))) {
        orch_recover(o, pg, l->id, list, l->inflight_ms);
    }
}

/* holders_read reads each live orchestrator with the shards it holds, for GET /health. */
static void holders_read(orch *o, xs_pg *pg)
{
    orch_lease *l = o->lease;
    xs_pg_res *r = NULL;
    if (xs_pg_q0(pg, &r,
                 "SELECT o.id, count(l.shard) FROM sync.orchestrators o LEFT JOIN "
                 "sync.shard_leases l ON l.holder = o.id AND l.expires_at > now() WHERE "
                 "o.expires_at > now() GROUP BY o.id ORDER BY o.id") != XS_OK) {
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        int64_t n = 0;
        xs_pg_res_int(r, i, 1, &n);
        json_array_append_new(list, json_pack("{s:s, s:I}", "orchestrator", xs_pg_res_get(r, i, 0),
                                              "shards", (json_int_t)n));
    }
    xs_pg_res_free(r);
    pthread_mutex_lock(&l->mu);
    json_decref(l->holders);
    l->holders = list;
    pthread_mutex_unlock(&l->mu);
}

/* round renews, balances to the fair share, takes over what it gained and recovers. */
static void round_once(orch *o, xs_pg *pg)
{
    bool held[ORCH_SHARDS];
    int n = renew(o, pg, held);
    if (n < 0) {
        return;
    }
    int share = fair_share(pg);
    if (share > 0 && n > share) {
        give_back(o, pg, held, n - share);
    } else if (share > n) {
        take(o, pg, held, share - n);
    }
    recover(o, pg, held);
    holders_read(o, pg);
}

static void *lease_main(void *arg)
{
    orch *o = arg;
    orch_lease *l = o->lease;
    xs_pg *pg = NULL;
    int64_t every = l->ttl_ms / 3;
    while (!atomic_load(&l->quit)) {
        if (pg == NULL || !xs_pg_is_ok(pg)) {
            xs_pg_close(pg);
            pg = NULL;
            xs_pg_connect(&pg, xs_config_str(o->proc.cfg, "XS_DATABASE_URL"),
                          "xs-orchestrator lease", 0, o->proc.log);
        }
        if (pg != NULL) {
            round_once(o, pg);
        }
        /* Naps, so that a stop is seen within NAP_MS. */
        for (int64_t slept = 0; slept < every && !atomic_load(&l->quit); slept += NAP_MS) {
            xs_clock_sleep_ms(NAP_MS);
        }
    }
    xs_pg_close(pg);
    return NULL;
}

/* make_id writes host, pid and a random part: unique among orchestrators, also after a
 * restart in the same container (same host, same pid). */
static void make_id(char *buf, size_t cap)
{
    char host[64] = "host";
    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "host");
    }
    host[sizeof(host) - 1] = '\0';
    uint32_t r = 0;
    xs_crypto_random(&r, sizeof(r));
    snprintf(buf, cap, "%s/%ld/%08x", host, (long)getpid(), (unsigned)r);
}

xs_err orch_lease_start(orch *o, orch_lease_seed_fn seed)
{
    orch_lease *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return XS_ENOMEM;
    }
    make_id(l->id, sizeof(l->id));
    l->seed = seed;
    l->ttl_ms = o->lease_ttl_ms;
    l->margin_ms = l->ttl_ms / MARGIN_DIV;
    l->inflight_ms = 2 * o->bus_timeout_ms + INFLIGHT_EXTRA_MS;
    l->holders = json_array();
    pthread_mutex_init(&l->mu, NULL);
    atomic_init(&l->quit, false);
    o->lease = l;
    xs_log_info(o->proc.log, "lease.id", "{s:s, s:I, s:I}", "orchestrator", l->id, "ttl_ms",
                (json_int_t)l->ttl_ms, "inflight_ms", (json_int_t)l->inflight_ms);
    /* The first round here, so the executors find their shards when they start. */
    xs_pg *pg = NULL;
    if (xs_pg_pool_acquire(o->pool, 5000, &pg) == XS_OK) {
        round_once(o, pg);
        xs_pg_pool_release(o->pool, pg);
    }
    if (pthread_create(&l->thread, NULL, lease_main, o) != 0) {
        return XS_ENOMEM;
    }
    l->started = true;
    return XS_OK;
}

void orch_lease_stop(orch *o)
{
    orch_lease *l = o->lease;
    if (l == NULL) {
        return;
    }
    if (l->started) {
        atomic_store(&l->quit, true);
        pthread_join(l->thread, NULL);
    }
    bool none[ORCH_SHARDS] = {false};
    held_set(l, none, 0);
    xs_pg *pg = NULL;
    if (xs_pg_pool_acquire(o->pool, 2000, &pg) == XS_OK) {
        xs_pg_res *r = NULL;
        if (xs_pg_q(pg, &r,
                    "UPDATE sync.shard_leases SET holder = NULL, expires_at = '-infinity', "
                    "taken_at = NULL, epoch = epoch + 1 WHERE holder = $1 RETURNING shard",
                    l->id) == XS_OK) {
            xs_log_info(o->proc.log, "lease.given_back", "{s:s, s:i, s:s}", "orchestrator", l->id,
                        "shards", xs_pg_res_nrows(r), "reason", "stop");
        }
        xs_pg_res_free(r);
        xs_pg_q(pg, NULL, "DELETE FROM sync.orchestrators WHERE id = $1", l->id);
        xs_pg_pool_release(o->pool, pg);
    }
    json_decref(l->holders);
    pthread_mutex_destroy(&l->mu);
    free(l);
    o->lease = NULL;
}

bool orch_lease_shards(orch *o, char *buf, size_t cap)
{
    orch_lease *l = o->lease;
    if (l == NULL) {
        return false;
    }
    char tmp[ORCH_LEASE_SHARDS_MAX];
    pthread_mutex_lock(&l->mu);
    bool ok = l->nheld > 0 && xs_clock_mono_ms() < l->valid_until &&
              shards_literal(l->held, tmp, sizeof(tmp));
    pthread_mutex_unlock(&l->mu);
    if (!ok || strlen(tmp) + 1 > cap) {
        return false;
    }
    memcpy(buf, tmp, strlen(tmp) + 1);
    return true;
}

bool orch_lease_holds(orch *o, const char *tenant)
{
    orch_lease *l = o->lease;
    size_t n = tenant != NULL ? strlen(tenant) : 0;
    unsigned shard = 0;
    if (l == NULL || n < 2 || sscanf(tenant + n - 2, "%2x", &shard) != 1 || shard >= ORCH_SHARDS) {
        return false;
    }
    pthread_mutex_lock(&l->mu);
    bool held = l->held[shard] && xs_clock_mono_ms() < l->valid_until;
    pthread_mutex_unlock(&l->mu);
    return held;
}

json_t *orch_lease_json(orch *o)
{
    orch_lease *l = o->lease;
    json_t *shards = json_array(), *holders = NULL;
    const char *id = "";
    if (l != NULL) {
        pthread_mutex_lock(&l->mu);
        bool valid = xs_clock_mono_ms() < l->valid_until;
        for (int s = 0; s < ORCH_SHARDS && valid; s++) {
            if (l->held[s]) {
                json_array_append_new(shards, json_integer(s));
            }
        }
        holders = json_deep_copy(l->holders);
        id = l->id;
        pthread_mutex_unlock(&l->mu);
    }
    return json_pack("{s:s, s:I, s:o, s:I, s:o}", "orchestrator", id, "shards",
                     (json_int_t)json_array_size(shards), "owned", shards, "ttl_ms",
                     (json_int_t)(l != NULL ? l->ttl_ms : 0), "holders",
                     holders != NULL ? holders : json_array());
}
