/* banktx.h: the bank transaction entity of xs-payments (banktx.c): Xero's bank transactions,
 * mirrored read-only into app.bank_transactions. */
#ifndef BANKTX_H
#define BANKTX_H

#include "engine/domain.h"

extern const xs_entity_ops bank_transaction_ops;

#endif
