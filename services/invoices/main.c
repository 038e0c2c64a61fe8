/*
 * xs-invoices: the invoices domain service. Syncs sales invoices and bills with their line
 * items both ways between app.invoices (+ app.invoice_lines) and Xero (invoice.c), and
 * mirrors Xero's chart of accounts into app.accounts, read-only (account.c): pull steps,
 * push steps, conflict resolution and the host application's writes through the REST API.
 */
#include "account.h"
#include "invoice.h"
#include "domain_service.h"

static const xs_entity_ops *const entities[] = {&account_ops, &invoice_ops, NULL};

int main(int argc, char **argv)
{
    return domain_service_run(XS_BUS_DOMAIN_INVOICES, entities, argc, argv);
}
