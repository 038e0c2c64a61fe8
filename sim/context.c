/* context.c: the simulator's clock, its settings, the tenant lookup and the waits that a
 * reset or a stop interrupts. */
#include <pthread.h>
#include <time.h>

#include "context.h"
#include "settings.h"
#include "store.h"

xs_time sim__now(sim *s)
{
    pthread_mutex_lock(&s->set_mu);
    int64_t off = s->clock_offset;
    pthread_mutex_unlock(&s->set_mu);
    return xs_clock_now() + off;
}

void sim__settings(sim *s, sim_settings *out)
{
    pthread_mutex_lock(&s->set_mu);
    *out = s->set;
    pthread_mutex_unlock(&s->set_mu);
}

sim_tenant *sim__tenant_find(sim *s, const xs_uuid *id)
{
    char k[XS_UUID_STR];
    xs_uuid_format(id, k);
    return sim__smap_get(&s->tenant_ids, k);
}

void sim__hang(sim *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&s->hang_mu);
    uint64_t gen = s->hang_gen;
    /* a reset in progress needs every caller out of the world lock: do not start waiting */
    while (!s->stopping && s->resets == 0 && gen == s->hang_gen) {
        if (pthread_cond_timedwait(&s->hang_cv, &s->hang_mu, &ts) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&s->hang_mu);
}
