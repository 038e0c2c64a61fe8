/*
 * xs-invoices: the invoices domain service. Serves the chart of accounts: pull steps that
 * mirror Xero's accounts into app.accounts (read-only; see account.c). Invoices with their
 * line items are to follow (issue 6).
 */
#include "account.h"

static const xs_entity_ops *const entities[] = {&account_ops, NULL};

static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
};

static const xs_svc_def def = {
    .name = "xs-invoices",
    .service = "invoices",
    .procmask = XS_PROC_INVOICES,
    .domain = XS_DOMAIN_INVOICES,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-invoices: mirrors Xero's chart of accounts into app.accounts, one bounded step "
             "at a time as the orchestrator hands them out (invoices to follow). It dials the "
             "orchestrator's bus (XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start as many "
             "replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_domain_svc_main(&def, entities, argc, argv);
}
