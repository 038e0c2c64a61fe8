/* xs-contacts: the contacts domain service. Syncs contacts (customers and suppliers) between
 * app.contacts and Xero. */
#include "xs/svc.h"

static const xs_svc_def def = {
    .name = "xs-contacts",
    .service = "contacts",
    .procmask = XS_PROC_CONTACTS,
    .domain = XS_DOMAIN_CONTACTS,
    .routes = NULL,
    .nroutes = 0,
    .usage = "xs-contacts: Syncs contacts (customers and suppliers) between app.contacts and Xero. "
             "It dials the orchestrator's bus (XS_BUS_URL), takes requests from it, "
             "and publishes heartbeats. Start as many replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_svc_main(&def, argc, argv);
}
