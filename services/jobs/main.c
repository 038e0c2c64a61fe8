/*
 * xs-jobs: the jobs domain service. A pull-only mirror of Xero Practice Manager (XPM) jobs
 * and clients into app.jobs and app.xpm_clients, with each job's history of states and the
 * events of jobs entering and leaving the states a connection maps to "needs documents"
 * (app.job_events), one bounded pull step at a time as the orchestrator hands them out.
 */
#include <stdlib.h>

#include "jobs.h"
#include "engine/runtime.h"
#include "xs/config.h"

static xs_err init(const xs_proc *proc, xs_pg *pg, void **state)
{
    (void)pg;
    jobs_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return XS_ENOMEM;
    }
    xs_domain_xero_opts(proc->cfg, proc->log, &st->xero);
    st->window_days = xs_config_int(proc->cfg, "XS_XPM_JOB_WINDOW_DAYS");
    *state = st;
    return XS_OK;
}

static void fini(void *state)
{
    free(state);
}

/* worker_init gives each worker its own client (its own keep-alive connection to XPM). */
static xs_err worker_init(void *state, void **wstate)
{
    return xs_svc_xero_worker(&((jobs_state *)state)->xero, wstate);
}

static const xs_svc_route routes[] = {
    {"sync.pull", jobs_handle_pull},
};

static const xs_svc_def def = {
    .name = "xs-jobs",
    .service = "jobs",
    .procmask = XS_PROC_JOBS,
    .domain = XS_BUS_DOMAIN_JOBS,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-jobs: mirrors Xero Practice Manager (XPM) jobs and clients into app.jobs and "
             "app.xpm_clients (pull only; nothing is written to XPM), links each client to a "
             "local contact by e-mail then name, keeps each job's history of states and records "
             "a job.needs_documents or job.documents_done event in app.job_events when a job "
             "enters or leaves a state the connection maps, one bounded step at a time as the "
             "orchestrator hands them out. It dials the orchestrator's bus (XS_BUS_URL) and "
             "calls XPM at XS_XERO_API_URL. Start as many replicas as you like; stop with "
             "SIGTERM.",
    .init = init,
    .fini = fini,
    .worker_init = worker_init,
    .worker_fini = xs_svc_xero_worker_fini,
    .json_arena = true,
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
