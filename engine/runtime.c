/* runtime.c: see runtime.h. */
#include "engine/runtime.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/pull.h"
#include "engine/push.h"
#include "engine/resolve.h"

/* The requests every domain service answers: the sync engine's. */
static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
    {"sync.push", xs_domain_push},
    {"sync.resolve", xs_domain_resolve},
    {"local.upsert", xs_domain_local_upsert},
};

/* The entities of this process's domain service (xs_domain_svc_main). */
static const xs_entity_ops *const *svc_entities;

static xs_err svc_init(const xs_proc *proc, xs_pg *pg, void **state)
{
    (void)pg;
    xs_domain_svc *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return XS_ENOMEM;
    }
    d->entities = svc_entities;
    xs_domain_xero_opts(proc->cfg, proc->log, &d->xero);
    d->db_url = xs_config_str(proc->cfg, "XS_DATABASE_URL");
    snprintf(d->ahead_app, sizeof(d->ahead_app), "%s read-ahead", proc->name);
    d->log = proc->log;
    *state = d;
    return XS_OK;
}

static void svc_fini(void *state)
{
    free(state);
}

void xs_domain_worker_fini(void *wstate)
{
    domain_worker *w = wstate;
    if (w != NULL) {
        xs_xero_destroy(w->x);
        xs_xero_destroy(w->ahead);
        xs_pg_close(w->db_ahead);
        free(w);
    }
}

xs_err xs_domain_worker_init(void *state, void **wstate)
{
    xs_domain_svc *d = state;
    domain_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return XS_ENOMEM;
    }
    xs_err e = xs_xero_create(&w->x, &d->xero);
    if (e == XS_OK) {
        e = xs_xero_create(&w->ahead, &d->xero);
    }
    if (e != XS_OK) {
        xs_domain_worker_fini(w);
        return e;
    }
    w->svc = d;
    *wstate = w;
    return XS_OK;
}

int xs_domain_svc_main(const xs_svc_def *def, const xs_entity_ops *const *entities, int argc,
                       char **argv)
{
    svc_entities = entities;
    xs_svc_def d = *def;
    d.init = svc_init;
    d.fini = svc_fini;
    d.worker_init = xs_domain_worker_init;
    d.worker_fini = xs_domain_worker_fini;
    d.routes = routes;
    d.nroutes = sizeof(routes) / sizeof(routes[0]);
    d.json_arena = true; /* a step's values all die with its reply */
    return xs_svc_main(&d, argc, argv);
}

void xs_domain_xero_opts(const xs_config *cfg, xs_log *log, xs_xero_opts *out)
{
    *out = (xs_xero_opts){.login_url = xs_config_str(cfg, "XS_XERO_LOGIN_URL"),
                          .identity_url = xs_config_str(cfg, "XS_XERO_IDENTITY_URL"),
                          .api_url = xs_config_str(cfg, "XS_XERO_API_URL"),
                          .timeout_ms = xs_config_int(cfg, "XS_XERO_TIMEOUT"),
                          .log = log};
}
