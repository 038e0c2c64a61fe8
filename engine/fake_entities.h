/*
 * engine/fake_entities.h: entities described for the engine's unit tests, one of each shape
 * Xero's lists come in (paged and fetched by IDs=, typed, fetched by where=Guid, listed
 * whole). Only list paths and ids are described: no entity here reads or writes a record.
 * Test code only.
 */
#ifndef XS_ENGINE_FAKE_ENTITIES_H
#define XS_ENGINE_FAKE_ENTITIES_H

#include "engine/domain.h"

/* Two Xero ids. */
#define FAKE_A "0a1b2c3d-0000-4000-8000-00000000000a"
#define FAKE_B "0a1b2c3d-0000-4000-8000-00000000000b"

/* A contact-like entity: paged, fetched by IDs=, an extra list parameter. */
extern const xs_entity_ops FAKE_CONTACTS;

/* An invoice-like entity: paged, fetched by IDs=, typed. */
extern const xs_entity_ops FAKE_INVOICES;

/* A payment-like entity: its list takes no IDs=, so ids go in a where. */
extern const xs_entity_ops FAKE_PAYMENTS;

/* An account-like entity: listed whole, typed. */
extern const xs_entity_ops FAKE_ACCOUNTS;

#endif
