/*
 * xs-payments: the payments domain service. Syncs payments against invoices both ways between
 * app.payments and Xero (payment.c: Xero never edits a payment), and mirrors Xero's bank
 * transactions into app.bank_transactions, read-only (banktx.c).
 */
#include "banktx.h"
#include "payment.h"
#include "domain_service.h"

static const xs_entity_ops *const entities[] = {&payment_ops, &bank_transaction_ops, NULL};

int main(int argc, char **argv)
{
    return domain_service_run(XS_BUS_DOMAIN_PAYMENTS, entities, argc, argv);
}
