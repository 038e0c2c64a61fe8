/* worker.c: what the orchestrator's threads share (see worker.h). */
#include "worker.h"

#include <pthread.h>

#include "xs/clock.h"
#include "xs/config.h"

bool orch_pg_open(orch *o, xs_pg **pg, const char *app, const char *channel, int64_t retry_ms)
{
    xs_pg_close(*pg);
    *pg = NULL;
    xs_pg *c = NULL;
    if (xs_pg_connect(&c, xs_config_str(o->proc.cfg, "XS_DATABASE_URL"), app, 0, o->proc.log) !=
            XS_OK ||
        (channel != NULL && xs_pg_listen(c, channel) != XS_OK)) {
        xs_pg_close(c);
        xs_clock_sleep_ms(retry_ms);
        return false;
    }
    *pg = c;
    return true;
}

void orch_executors_wake(orch *o)
{
    pthread_mutex_lock(&o->disp_mu);
    pthread_cond_broadcast(&o->disp_cv);
    pthread_mutex_unlock(&o->disp_mu);
}
