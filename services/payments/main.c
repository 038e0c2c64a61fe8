/*
 * xs-payments: the payments domain service. Serves bank transactions: pull steps that mirror
 * Xero's bank transactions into app.bank_transactions (read-only; see banktx.c). Payments
 * against invoices are to follow (issue 6).
 */
#include "banktx.h"

static const xs_entity_ops *const entities[] = {&bank_transaction_ops, NULL};

static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
};

static const xs_svc_def def = {
    .name = "xs-payments",
    .service = "payments",
    .procmask = XS_PROC_PAYMENTS,
    .domain = XS_DOMAIN_PAYMENTS,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-payments: mirrors Xero's bank transactions into app.bank_transactions, one "
             "bounded step at a time as the orchestrator hands them out (payments to follow). It "
             "dials the orchestrator's bus (XS_BUS_URL) and calls Xero at XS_XERO_API_URL. Start "
             "as many replicas as you like; stop with SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_domain_svc_main(&def, entities, argc, argv);
}
