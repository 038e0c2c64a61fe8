-- 0018_fair_claim: what the step claim needs to be fair by construction and cheap at any queue
-- length (services/orchestrator/engine.c, claim()). The engine goes round the connections with
-- ready work, one connection after another in id order, within each priority: it reads the
-- next few connections after the last one served straight from an index, never a window of the
-- oldest steps (which one busy tenant could fill) and never every pending row.

-- A tenant's shard (0..255): the last byte of its Xero tenant id. Orchestrators hold leases
-- on shards and act only for the connections of the tenants of the shards they hold, so a
-- tenant's budget is in one orchestrator however many connections it has.
CREATE FUNCTION sync.shard_of(id uuid) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT get_byte(uuid_send(id), 15) $$;
COMMENT ON FUNCTION sync.shard_of(uuid) IS
    'The shard (0..255) of a Xero tenant: the last byte of its id (leases are per shard).';

-- Each step carries its run's connection and priority, so the claim's index holds them.
ALTER TABLE sync.run_steps ADD COLUMN connection_id uuid, ADD COLUMN priority integer;
UPDATE sync.run_steps s SET connection_id = r.connection_id, priority = r.priority
    FROM sync.runs r WHERE r.id = s.run_id;
ALTER TABLE sync.run_steps ALTER COLUMN connection_id SET NOT NULL,
    ALTER COLUMN priority SET NOT NULL;
COMMENT ON COLUMN sync.run_steps.connection_id IS 'Its run''s connection (set by a trigger).';
COMMENT ON COLUMN sync.run_steps.priority IS 'Its run''s priority (set by a trigger).';

CREATE FUNCTION sync.run_steps_fill() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.connection_id, r.priority INTO NEW.connection_id, NEW.priority
        FROM sync.runs r WHERE r.id = NEW.run_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER run_steps_fill BEFORE INSERT ON sync.run_steps
    FOR EACH ROW EXECUTE FUNCTION sync.run_steps_fill();

-- A run's priority is set when it is made; should it ever change, its steps follow.
CREATE FUNCTION sync.runs_priority_follow() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sync.run_steps SET priority = NEW.priority WHERE run_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER runs_priority_follow AFTER UPDATE OF priority ON sync.runs
    FOR EACH ROW WHEN (OLD.priority IS DISTINCT FROM NEW.priority)
    EXECUTE FUNCTION sync.runs_priority_follow();

-- The claim: the priorities with pending work (a skip scan), the next connections after the
-- last one served at a priority (one probe each), and a connection's oldest pending steps.
CREATE INDEX run_steps_claim ON sync.run_steps (priority, connection_id, id)
    WHERE status = 'pending';
