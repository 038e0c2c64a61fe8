/*
 * xs-jobs: the jobs domain service. Mirrors Xero Practice Manager's jobs, their states and
 * clients into app.jobs (pull only), and records the job events the host application reads,
 * one bounded pull step at a time as the orchestrator hands them out.
 */
#include "engine/svc.h"

static const xs_svc_route routes[] = {
    {NULL, NULL},
};

static const xs_svc_def def = {
    .name = "xs-jobs",
    .service = "jobs",
    .procmask = XS_PROC_JOBS,
    .domain = XS_BUS_DOMAIN_JOBS,
    .routes = routes,
    .nroutes = 0,
    .usage = "xs-jobs: mirrors Xero Practice Manager's jobs, job states and clients into "
             "app.jobs (nothing is written to XPM) and records the job events the host "
             "application reads (app.job_events), one bounded step at a time as the "
             "orchestrator hands them out. It dials the orchestrator's bus (XS_BUS_URL) and "
             "calls Xero at XS_XERO_API_URL. Start as many replicas as you like; stop with "
             "SIGTERM.",
    .json_arena = true,
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
