/* xs-payments: the payments domain service. Syncs payments against invoices, and pulls bank
 * transactions. */
#include "xs/svc.h"

static const xs_svc_def def = {
    .name = "xs-payments",
    .service = "payments",
    .procmask = XS_PROC_PAYMENTS,
    .domain = XS_DOMAIN_PAYMENTS,
    .routes = NULL,
    .nroutes = 0,
    .usage = "xs-payments: Syncs payments against invoices, and pulls bank transactions. It dials "
             "the orchestrator's bus (XS_BUS_URL), takes requests from it, "
             "and publishes heartbeats. Start as many replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
