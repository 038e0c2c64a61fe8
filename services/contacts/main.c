/*
 * xs-contacts: the contacts domain service. Syncs contacts (customers and suppliers) between
 * app.contacts and Xero: pull steps (a page, or up to 50 ids), push steps (up to 50 records),
 * conflict resolution and the host application's writes through the REST API.
 */
#include "contact.h"
#include "domain_service.h"

static const xs_entity_ops *const entities[] = {&contact_ops, NULL};

int main(int argc, char **argv)
{
    return domain_service_run(XS_BUS_DOMAIN_CONTACTS, entities, argc, argv);
}
