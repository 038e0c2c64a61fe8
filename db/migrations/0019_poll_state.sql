-- 0019_poll_state: adaptive polling (services/orchestrator/polling.c). The scheduled
-- incremental runs poll each entity a connection syncs at the connection's interval; an entity
-- whose polls find nothing is polled twice as long after each such poll, up to
-- XS_POLL_MAX_EVERY, and back at the interval once a pull finds a change, a webhook names it
-- or a push of it happens.

CREATE TABLE sync.poll_state (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    entity         text NOT NULL CHECK (entity ~ '^[a-z_]+$'),
    every_ms       bigint NOT NULL CHECK (every_ms > 0),
    next_at        timestamptz NOT NULL,
    empty_polls    integer NOT NULL DEFAULT 0 CHECK (empty_polls >= 0),
    polls          bigint NOT NULL DEFAULT 0 CHECK (polls >= 0),
    polled_at      timestamptz,
    run_id         uuid,
    checked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, entity)
);
COMMENT ON TABLE sync.poll_state IS
    'Per connection and entity: how often the scheduled incremental runs poll it, and when next.';
COMMENT ON COLUMN sync.poll_state.every_ms IS
    'The interval now: the connection''s incremental interval, doubled by each poll that found '
    'nothing, up to XS_POLL_MAX_EVERY.';
COMMENT ON COLUMN sync.poll_state.empty_polls IS 'Polls in a row that found nothing.';
COMMENT ON COLUMN sync.poll_state.polls IS 'Scheduled polls of the entity, ever.';
COMMENT ON COLUMN sync.poll_state.run_id IS
    'The scheduled incremental run of the last poll, until what it found has been judged (no '
    'foreign key: retention may delete the run first, which leaves nothing to judge).';
COMMENT ON COLUMN sync.poll_state.checked_at IS
    'When the scheduler last weighed the entity: webhooks, pushes and other pulls since count.';

-- sync.pull_found tells whether the counts of a pull (a run's counts -> entity -> 'pull')
-- show a change in Xero: records created, updated, in conflict, linked, retired, failed or
-- waiting here; not those fetched again unchanged (the cursor's second is read again) or
-- skipped. NULL counts (no pull) found nothing.
CREATE FUNCTION sync.pull_found(counts jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT sum((v)::bigint) > 0 FROM jsonb_each_text(counts) AS c(k, v)
                     WHERE k IN ('created', 'updated', 'conflicts', 'linked', 'retired', 'failed',
                                 'queued', 'deferred') AND v ~ '^[0-9]+$'), false)
$$;
