/*
 * replicas.h: the orchestrator's view of which domain-service replicas are alive, built from
 * their heartbeats (event.heartbeat). A replica is live while its last heartbeat is younger
 * than three heartbeat intervals and it has not announced that it is stopping. Safe to use
 * from several threads.
 */
#ifndef ORCH_REPLICAS_H
#define ORCH_REPLICAS_H

#include <jansson.h>
#include <stdint.h>

#include "proto.h"
#include "xs/bus.h"
#include "xs/err.h"

typedef struct orch_replicas orch_replicas;

/* orch_replicas_create makes an empty registry for heartbeats every heartbeat_ms. */
xs_err orch_replicas_create(orch_replicas **out, int64_t heartbeat_ms);

/* orch_replicas_destroy frees r; NULL accepted. */
void orch_replicas_destroy(orch_replicas *r);

/* orch_replicas_observe records a decoded event.heartbeat (borrowed) seen at now_ms
 * (monotonic). Heartbeats of an unknown domain are ignored (XS_EINVAL). */
xs_err orch_replicas_observe(orch_replicas *r, const xs_msg *hb, int64_t now_ms);

/* orch_replicas_live counts the live replicas of domain at now_ms. */
int orch_replicas_live(orch_replicas *r, xs_bus_domain domain, int64_t now_ms);

/* orch_replicas_counters sums the counters replicas report in their heartbeats (field
 * "counters", proto/README.md) into a new object: "name\x1f{labels as sorted JSON}" ->
 * {"name", "labels", "value"}. Each replica's counters are cumulative since its start; the
 * last value of each replica is kept and summed, and when a replica is forgotten (silent for
 * 30 intervals) or starts again under the same id (another pid or start time), its last
 * values move into a sum of retired replicas. So a sum never goes backwards while the
 * orchestrator runs, whatever replicas do; what a replica counted after its last heartbeat
 * that arrived is lost. */
json_t *orch_replicas_counters(orch_replicas *r);

/* orch_replicas_json describes the live replicas of domain (new reference): an array of
 * {replica, pid, version, started_at, workers, busy, handled, failed, last_seen_ms}. */
json_t *orch_replicas_json(orch_replicas *r, xs_bus_domain domain, int64_t now_ms);

#endif
