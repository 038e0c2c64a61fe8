/*
 * lease.h: the shards of connections this orchestrator acts for (lease.c). Connections are
 * spread over ORCH_SHARDS shards (sync.shard_of, the last byte of a connection's id); each
 * shard is leased in sync.shard_leases (migration 0020) to one orchestrator at a time, renewed
 * every XS_LEASE_TTL / 3 and taken over by another when its holder stops renewing. Every
 * orchestrator takes up to its fair share (ORCH_SHARDS / the orchestrators alive), gives back
 * what is above it (so one that joins gets its part) and gives everything back when it stops
 * cleanly. What it gains it takes over: the steps the previous holder left running are made
 * runnable again once no domain service can still be working on them for that holder, and
 * the budgets of the shards' tenants are seeded from the calls made meanwhile.
 */
#ifndef ORCH_LEASE_H
#define ORCH_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "orch.h"
#include "xs/err.h"

/* The room orch_lease_shards needs for every shard: "{0,1,...,255}". */
#define ORCH_LEASE_SHARDS_MAX (ORCH_SHARDS * 4 + 3)

/* An orch_lease_seed_fn fills the budget of the tenants of the shards listed (an int array
 * literal) just taken, with what the audit says they spent; since (JSON, shard -> timestamp)
 * names the shards held before, whose calls until then are counted already. pg is borrowed.
 * The engine's (engine.c): the lease module calls it without depending on the engine. */
typedef void (*orch_lease_seed_fn)(orch *o, xs_pg *pg, const char *shards, const char *since);

/* orch_lease_start makes this orchestrator's id (host, pid, a random part; logged as
 * lease.id), takes its first shards (seeding their budgets with seed, before they are used)
 * and starts the thread that renews them. o->pool must exist. XS_OK also when the database
 * is down: the thread keeps trying, and no shard is held meanwhile. */
xs_err orch_lease_start(orch *o, orch_lease_seed_fn seed);

/* orch_lease_stop stops the thread and gives every lease back (o->stop set first, the
 * executors stopped), so the others take the shards at their next renewal rather than after
 * XS_LEASE_TTL. NULL lease or never started: nothing. */
void orch_lease_stop(orch *o);

/* orch_lease_shards writes into buf (cap bytes, ORCH_LEASE_SHARDS_MAX suffices) a PostgreSQL
 * int array literal, e.g. "{0,1,7}", of the shards this orchestrator may act for now: those
 * whose last successful renewal is recent enough that no other orchestrator can hold them
 * (XS_LEASE_TTL less a margin). false, buf untouched, when there are none or buf is too
 * small. Safe from any thread. */
bool orch_lease_shards(orch *o, char *buf, size_t cap);

/* orch_lease_holds tells whether this orchestrator may act now for the Xero tenant whose id
 * (text) is tenant: its shard, the last byte of the id, is among orch_lease_shards'. */
bool orch_lease_holds(orch *o, const char *tenant);

/* orch_lease_json describes the leases for GET /health (new): this orchestrator's id, the
 * shards it may act for now, and each live orchestrator with how many shards it holds, as
 * last read by the lease thread. */
json_t *orch_lease_json(orch *o);

#endif
