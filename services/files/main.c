/*
 * xs-files: the files domain service. Puts the host application's documents (app.documents)
 * into Xero Files, in the connection's folder, and associates each with its contact's or
 * invoice's Xero record, one bounded push step at a time as the orchestrator hands them out.
 */
#include "engine/svc.h"

static const xs_svc_route routes[] = {
    {NULL, NULL},
};

static const xs_svc_def def = {
    .name = "xs-files",
    .service = "files",
    .procmask = XS_PROC_FILES,
    .domain = XS_BUS_DOMAIN_FILES,
    .routes = routes,
    .nroutes = 0,
    .usage = "xs-files: puts the host application's documents (app.documents) into Xero Files "
             "and associates each with its contact or invoice in Xero, one bounded step at a "
             "time as the orchestrator hands them out. It dials the orchestrator's bus "
             "(XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start as many replicas as you "
             "like; stop with SIGTERM.",
    .json_arena = true,
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
