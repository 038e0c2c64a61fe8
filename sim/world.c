/* world.c: the tenant list: adding organisations, creating the configured ones, and
 * resetting the simulator to its state at start. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world.h"
#include "context.h"
#include "faults.h"
#include "files.h"
#include "identity.h"
#include "kinds.h"
#include "limits.h"
#include "seed.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "webhooks.h"
#include "xpm.h"

xs_err sim__tenant_add(sim *s, const xs_uuid *id, const char *name, const char *currency,
                       sim_tenant **out)
{
    if (s->ntenants == s->captenants) {
        size_t cap = s->captenants ? s->captenants * 2 : 8;
        sim_tenant **n = realloc(s->tenants, cap * sizeof(*n));
        if (n == NULL) {
            return XS_ENOMEM;
        }
        s->tenants = n;
        s->captenants = cap;
    }
    sim_tenant *t = NULL;
    xs_err e = sim__tenant_create(&t, id, name, currency, s->set.seed);
    if (e != XS_OK) {
        return e;
    }
    t->created = sim__now(s);
    if ((e = sim__seed_accounts(t, t->created)) != XS_OK || (e = sim__files_init(s, t)) != XS_OK ||
        (e = sim__xpm_attach(t, s->set.seed)) != XS_OK) {
        sim__tenant_destroy(t);
        return e;
    }
    char k[XS_UUID_STR];
    xs_uuid_format(id, k);
    if ((e = sim__smap_put(&s->tenant_ids, k, t, NULL)) != XS_OK) {
        sim__tenant_destroy(t);
        return e;
    }
    sim__tenant_phase(s, t);
    s->tenants[s->ntenants++] = t;
    *out = t;
    return XS_OK;
}

xs_err sim__tenants_start(sim *s)
{
    for (int64_t i = 0; i < s->init_tenants; i++) {
        sim_rng r = {s->set.seed ^ UINT64_C(0x74656e616e74) ^ (uint64_t)i * 7919};
        xs_uuid id;
        sim__rng_uuid(&r, &id);
        char name[64];
        if (i == 0) {
            snprintf(name, sizeof(name), "Demo Company (NZ)");
        } else {
            snprintf(name, sizeof(name), "Demo Company (NZ) %lld", (long long)i + 1);
        }
        sim_tenant *t = NULL;
        xs_err e = sim__tenant_add(s, &id, name, "NZD", &t);
        if (e != XS_OK) {
            return e;
        }
        if (s->init_records > 0) {
            sim_seed_spec sp = {0};
            sp.seed = s->set.seed;
            sp.now = sim__now(s);
            sp.span_days = 730;
            sp.contacts = (uint32_t)(s->init_records / 5);
            sp.invoices = (uint32_t)(s->init_records / 2);
            sp.payments = (uint32_t)(s->init_records / 5);
            sp.banktx = (uint32_t)(s->init_records - sp.contacts - sp.invoices - sp.payments);
            pthread_rwlock_wrlock(&t->lock);
            e = sim__seed(s, t, &sp, NULL);
            pthread_rwlock_unlock(&t->lock);
            if (e != XS_OK) {
                return e;
            }
        }
        if (s->init_xpm_clients > 0) {
            /* after the contacts: some XPM clients are the organisation's contacts */
            pthread_rwlock_wrlock(&t->lock);
            e = sim__xpm_seed(t, (uint32_t)s->init_xpm_clients, s->set.seed, sim__now(s));
            pthread_rwlock_unlock(&t->lock);
            if (e != XS_OK) {
                return e;
            }
        }
    }
    return XS_OK;
}

/* resets_end ends a reset begun in sim__reset: hangs wait again. */
static void resets_end(sim *s)
{
    pthread_mutex_lock(&s->hang_mu);
    s->resets--;
    pthread_mutex_unlock(&s->hang_mu);
}

xs_err sim__reset(sim *s)
{
    /* wake injected hangs and latency sleeps so their calls end and release the world, and
     * (marked before the wake-up, under the same mutex) keep any that start before the write
     * lock is ours from waiting: otherwise one call could hold the reset for XS_SIM_HANG */
    pthread_mutex_lock(&s->hang_mu);
    s->resets++;
    s->hang_gen++;
    pthread_cond_broadcast(&s->hang_cv);
    pthread_mutex_unlock(&s->hang_mu);
    sim_settings set;
    xs_err e = sim__settings_from_config(s->cfg, &set, s->log);
    if (e != XS_OK) {
        resets_end(s);
        return e;
    }
    pthread_rwlock_wrlock(&s->world_lock);
    /* no call is inside the world now, so none is hanging or can start to */
    resets_end(s);
    for (size_t i = 0; i < s->ntenants; i++) {
        sim__tenant_destroy(s->tenants[i]);
    }
    s->ntenants = 0;
    sim__smap_free(&s->tenant_ids, NULL);
    s->nconsent = 0;
    pthread_mutex_lock(&s->set_mu);
    s->set = set;
    s->clock_offset = 0;
    pthread_mutex_unlock(&s->set_mu);
    sim__identity_reset(s);
    pthread_mutex_lock(&s->lim_mu);
    s->app_count = s->app_max_in_flight = 0;
    s->app_window = INT64_MIN;
    pthread_mutex_unlock(&s->lim_mu);
    sim__faults_reset(s);
    sim__stats_reset(s);
    sim__webhooks_reset(s);
    e = sim__tenants_start(s);
    pthread_rwlock_unlock(&s->world_lock);
    return e;
}
