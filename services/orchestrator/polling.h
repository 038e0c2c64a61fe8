/*
 * polling.h: adaptive polling (polling.c). The scheduled incremental runs of a connection poll
 * only the entities it syncs, and each of them only when it is due: an entity whose poll found
 * nothing is next polled twice as long after, up to XS_POLL_MAX_EVERY; a poll that finds a
 * change, a webhook naming the entity, a push of it or another run's pull that finds a change
 * brings it back to the connection's incremental interval. The state is durable, per
 * connection and entity (sync.poll_state, migration 0019).
 *
 * The scheduler weighs a connection's entities each time its incremental schedule fires
 * (orch_poll_due), in the transaction that makes the run, and notes what the run polls
 * (orch_poll_note); what the run found is judged the next time the schedule fires.
 */
#ifndef ORCH_POLLING_H
#define ORCH_POLLING_H

#include <stdint.h>

#include <jansson.h>

#include "hookwatch.h"
#include "orch.h"
#include "xs/err.h"
#include "xs/pg.h"

/* orch_poll_entities is the array of entity names (new) an incremental run of a connection
 * whose settings are settings (borrowed) may poll: those it syncs that are pulled. */
json_t *orch_poll_entities(const json_t *settings);

/* orch_poll_due weighs, in the caller's transaction, the entities (borrowed array of names) of
 * connection conn whose incremental interval is base_ms, judging what their last poll found
 * and what happened since, and returns those due now (new array, maybe empty; NULL when the
 * database failed). */
json_t *orch_poll_due(orch *o, xs_pg *pg, const char *conn, const json_t *entities,
                      int64_t base_ms);

/* orch_poll_note records, in the caller's transaction, that run (of conn) polls entities
 * (borrowed array): each is next due its interval from now. */
xs_err orch_poll_note(orch *o, xs_pg *pg, const char *conn, const json_t *entities,
                      const char *run);

/* orch_poll_json is the stats' polling block of connection conn (new; NULL when the database
 * failed): {"calls_last_hour", "calls_per_hour_estimate", "max_every_ms", "entities": {entity:
 * {"every_ms", "empty_polls", "polled_at", "next_at"}}}. settings are the connection's
 * (borrowed); h its webhook state (borrowed; NULL when unknown), whose relaxed polling the
 * estimate takes in. */
json_t *orch_poll_json(orch *o, xs_pg *pg, const char *conn, const json_t *settings,
                       const orch_hookwatch *h);

#endif
