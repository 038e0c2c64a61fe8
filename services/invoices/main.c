/*
 * xs-invoices: the invoices domain service. Syncs sales invoices and bills with their line
 * items both ways between app.invoices (+ app.invoice_lines) and Xero (invoice.c), and
 * mirrors Xero's chart of accounts into app.accounts, read-only (account.c): pull steps,
 * push steps, conflict resolution and the host application's writes through the REST API.
 */
#include "account.h"
#include "invoice.h"

static const xs_entity_ops *const entities[] = {&account_ops, &invoice_ops, NULL};

static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
    {"sync.push", xs_domain_push},
    {"sync.resolve", xs_domain_resolve},
    {"local.upsert", xs_domain_local_upsert},
};

static const xs_svc_def def = {
    .name = "xs-invoices",
    .service = "invoices",
    .procmask = XS_PROC_INVOICES,
    .domain = XS_BUS_DOMAIN_INVOICES,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-invoices: syncs invoices and bills with their lines between app.invoices and "
             "Xero, and mirrors Xero's chart of accounts into app.accounts, one bounded step at "
             "a time as the orchestrator hands them out. It dials the orchestrator's bus "
             "(XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start as many replicas as you "
             "like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_domain_svc_main(&def, entities, argc, argv);
}
