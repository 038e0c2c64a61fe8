/* xs-invoices: the invoices domain service. Syncs invoices (ACCREC and ACCPAY) with their line
 * items, and the chart of accounts. */
#include "xs/svc.h"

static const xs_svc_def def = {
    .name = "xs-invoices",
    .service = "invoices",
    .procmask = XS_PROC_INVOICES,
    .domain = XS_DOMAIN_INVOICES,
    .routes = NULL,
    .nroutes = 0,
    .usage = "xs-invoices: Syncs invoices (ACCREC and ACCPAY) with their line items, and the chart "
             "of accounts. It dials the orchestrator's bus (XS_BUS_URL), takes requests from it, "
             "and publishes heartbeats. Start as many replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
