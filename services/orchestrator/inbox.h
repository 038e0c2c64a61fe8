/*
 * inbox.h: Xero's webhook events turned into runs. A thread takes the events the receiver
 * (webhooks.h) stored, once a connection's oldest pending one is XS_WEBHOOK_DELAY old (so a
 * burst is coalesced), and makes one run of that connection (mode entity, trigger webhook,
 * realtime priority) that fetches exactly the records the events name, by id, in dependency
 * order, through the normal pull path: conflicts, echo prevention and records that wait for
 * others (an invoice whose contact is not here yet) hold as in any run. An event about a
 * version the connection holds already (its record's mapping knows Xero's version of the
 * event's time or later: the echo of the engine's own push, or one a pull overtook) costs no
 * call: it is done at once. The events are marked done in the run's transaction; those of
 * categories the engine does not sync, of entities the connection does not sync, or of a tenant
 * with no active connection are marked ignored. It owns sync.webhook_events' status; it makes no
 * call to Xero itself.
 */
#ifndef ORCH_INBOX_H
#define ORCH_INBOX_H

#include <stdbool.h>

#include "orch.h"

/* orch_inbox_start starts the thread; orch_inbox_stop stops and joins it (o->stop set). */
xs_err orch_inbox_start(orch *o);
void orch_inbox_stop(orch *o);

/* orch_inbox_take turns what is due in the inbox into runs, on pg (its own transaction);
 * *runs counts the runs made. */
xs_err orch_inbox_take(orch *o, xs_pg *pg, int *runs);

/* orch_inbox_entity_of is the entity (static) an event category names, or NULL when the
 * engine does not sync it from webhooks: CONTACT contact, INVOICE invoice. */
const char *orch_inbox_entity_of(const char *category);

/* orch_inbox_realtime tells whether Xero sends webhook events of entity (contact, invoice):
 * the others come only from incremental and full runs. */
bool orch_inbox_realtime(const char *entity);

#endif
