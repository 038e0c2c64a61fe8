/* account.h: the account entity of xs-invoices (account.c): Xero's chart of accounts,
 * mirrored read-only into app.accounts. */
#ifndef ACCOUNT_H
#define ACCOUNT_H

#include "engine/domain.h"

extern const xs_entity_ops account_ops;

#endif
