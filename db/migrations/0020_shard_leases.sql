-- 0020_shard_leases: several orchestrators share the tenants (docs/ARCHITECTURE.md, "Several
-- orchestrators"). A Xero tenant belongs to one of 256 shards, sync.shard_of(tenant id) (the
-- last byte of the id, migration 0018), and so do its connections; each shard is leased to at
-- most one orchestrator at a time, which alone acts for the shard's connections (claims their
-- steps, holds and seeds their tenants' budgets, recovers their steps).

-- One row per shard, made here once. holder is the orchestrator holding the lease (its id:
-- host, pid and a random part, logged at start), NULL when free; a lease whose expires_at has
-- passed is free to take. epoch counts the changes of holder, so that a holder whose row was
-- taken from it (renewal too late) sees it has lost the shard. taken_at is when the holder
-- took it: a step it finds running that started before then was started by a previous holder.
CREATE TABLE sync.shard_leases (
    shard      int PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
    holder     text CHECK (holder IS NULL OR length(holder) BETWEEN 1 AND 200),
    expires_at timestamptz NOT NULL DEFAULT '-infinity',
    taken_at   timestamptz,
    epoch      bigint NOT NULL DEFAULT 0
);
INSERT INTO sync.shard_leases (shard) SELECT generate_series(0, 255);
CREATE INDEX shard_leases_holder ON sync.shard_leases (holder) WHERE holder IS NOT NULL;
COMMENT ON TABLE sync.shard_leases IS
    'Which orchestrator acts for each of the 256 shards of connections, until when (migration '
    '0020).';

-- The orchestrators alive now: each renews its row with its leases, so that one holding no
-- shard yet (just started) counts when the others work out their fair share (256 / live), and
-- gives it back when it stops cleanly.
CREATE TABLE sync.orchestrators (
    id         text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE sync.orchestrators IS
    'The orchestrators that renewed their presence lately, for the shards'' fair share '
    '(migration 0020).';

-- Finding a shard's steps left running by a previous holder (services/orchestrator/lease.c)
-- reads the running steps only.
CREATE INDEX run_steps_running ON sync.run_steps (run_id) WHERE status = 'running';
