/* invoice.h: the invoice entity of xs-invoices (invoice.c): sales invoices (ACCREC) and bills
 * (ACCPAY) with their line items, in two-way sync with app.invoices and app.invoice_lines. */
#ifndef INVOICE_H
#define INVOICE_H

#include "engine/domain.h"

extern const xs_entity_ops invoice_ops;

/* invoice_transition_ok tells whether Xero lets an invoice go from status `from` (NULL: not in
 * Xero yet) to `to`, with amount_paid (decimal text, NULL for none) paid against it; false
 * with the reason in why (256 bytes). */
bool invoice_transition_ok(const char *from, const char *to, const char *amount_paid, char *why);

#endif
