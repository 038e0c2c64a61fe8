/*
 * xs-payments: the payments domain service. Syncs payments against invoices both ways between
 * app.payments and Xero (payment.c: Xero never edits a payment), and mirrors Xero's bank
 * transactions into app.bank_transactions, read-only (banktx.c).
 */
#include "banktx.h"
#include "payment.h"

static const xs_entity_ops *const entities[] = {&payment_ops, &bank_transaction_ops, NULL};

static const xs_svc_route routes[] = {
    {"sync.pull", xs_domain_pull},
    {"sync.push", xs_domain_push},
    {"sync.resolve", xs_domain_resolve},
    {"local.upsert", xs_domain_local_upsert},
};

static const xs_svc_def def = {
    .name = "xs-payments",
    .service = "payments",
    .procmask = XS_PROC_PAYMENTS,
    .domain = XS_BUS_DOMAIN_PAYMENTS,
    .routes = routes,
    .nroutes = sizeof(routes) / sizeof(routes[0]),
    .usage = "xs-payments: syncs payments between app.payments and Xero, and mirrors Xero's "
             "bank transactions into app.bank_transactions, one bounded step at a time as the "
             "orchestrator hands them out. It dials the orchestrator's bus (XS_BUS_URL) and "
             "calls Xero at XS_XERO_API_URL. Start as many replicas as you like; stop with "
             "SIGTERM.",
};

int main(int argc, char **argv)
{
    return xs_domain_svc_main(&def, entities, argc, argv);
}
