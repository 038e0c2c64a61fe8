/*
 * domain_service.h: the whole main() of a domain service that syncs entities (xs-contacts,
 * xs-invoices, xs-payments), so that each of their mains is only its table of entities.
 *
 * domain_service_run serves the four requests of the sync engine (sync.pull, sync.push,
 * sync.resolve, local.upsert) over the given entities, under the identity of its bus domain:
 * the binary's name, the service's name, the variables it reads and its --help text, kept in
 * one table in domain_service.c. It must not hold what a service does: that is its entities'
 * (xs_entity_ops) and the engine's (engine/domain.h, engine/runtime.h).
 */
#ifndef DOMAIN_SERVICE_H
#define DOMAIN_SERVICE_H

#include "xs/bus.h"
#include "engine/domain.h"

/* domain_service_run runs the domain service of bus domain `domain` (contacts, invoices or
 * payments) syncing entities (NULL-terminated, static, borrowed for the process's life) and
 * returns the process's exit code; XS_EXIT_FAIL at once for a domain with no such service,
 * or whose entities disagree with the table of entities (xs_domain_entities_check). */
int domain_service_run(xs_bus_domain domain, const xs_entity_ops *const *entities, int argc,
                       char **argv);

#endif
