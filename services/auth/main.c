/* xs-auth: the auth domain service. Holds Xero OAuth 2.0 connections and hands live access tokens
 * to the other services. */
#include "xs/svc.h"

static const xs_svc_def def = {
    .name = "xs-auth",
    .service = "auth",
    .procmask = XS_PROC_AUTH,
    .domain = XS_DOMAIN_AUTH,
    .routes = NULL,
    .nroutes = 0,
    .usage = "xs-auth: Holds Xero OAuth 2.0 connections and hands live access tokens to the other "
             "services. It dials the orchestrator's bus (XS_BUS_URL), takes requests from it, "
             "and publishes heartbeats. Start as many replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
