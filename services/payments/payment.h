/* payment.h: the payment entity of xs-payments (payment.c): payments against invoices, in
 * two-way sync with app.payments. Xero never edits a payment, it only deletes one. */
#ifndef PAYMENT_H
#define PAYMENT_H

#include "engine/domain.h"

extern const xs_entity_ops payment_ops;

#endif
