/*
 * xs-contacts: the contacts domain service. Syncs contacts (customers and suppliers) between
 * app.contacts and Xero: pull steps (a page, or up to 50 ids), push steps (up to 50 records),
 * conflict resolution and the host application's writes through the REST API.
 */
#include "contact.h"

static const xs_entity_ops *const entities[] = {&contact_ops, NULL};

static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
    {"sync.push", xs_domain_push},
    {"sync.resolve", xs_domain_resolve},
    {"local.upsert", xs_domain_local_upsert},
};

static const xs_svc_def def = {
    .name = "xs-contacts",
    .service = "contacts",
    .procmask = XS_PROC_CONTACTS,
    .domain = XS_BUS_DOMAIN_CONTACTS,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-contacts: syncs contacts (customers and suppliers) between app.contacts and "
             "Xero, one bounded step at a time as the orchestrator hands them out. It dials the "
             "orchestrator's bus (XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start as many "
             "replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_domain_svc_main(&def, entities, argc, argv);
}
