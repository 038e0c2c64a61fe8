-- 0009_push_claims: a write to Xero is made exactly once (docs/ARCHITECTURE.md, "Exactly
-- once").
--
-- sync.push_claims: which unfinished push step holds a local record. A push step claims the
-- records of its batch in the transaction that stores its request, before the call; a
-- record claimed by another live step (pending or running) is left to that step, and marked
-- `wanted` so that the step that holds it queues it again when it lets it go. The step lets
-- its claims go in the transaction that records Xero's reply (lib/xs/domain.c), or, when it
-- ends without one (failed, given up, its run over), the orchestrator does
-- (services/orchestrator/runs.c) -- except the claims of creates that may have reached Xero:
--
-- A create whose reply never came (lost, truncated, garbled, a 5xx after the write, a
-- time-out) is *in doubt*: Xero may hold the record without our knowing its id. Its claim
-- keeps what was sent (`sent`, the canonical record, local ids in its references) and the
-- time by which any send of it has landed or died (`settled_by`: the last send plus the
-- client's time-out). A pull that meets a Xero record no mapping knows first asks the
-- in-doubt creates of its connection and entity: one whose sent fields the record holds is
-- ours, and is linked to the local record that caused it instead of being imported. A claim
-- still in doubt when its step has ended is released, and its record queued to be sent again,
-- only once a pull has read everything Xero changed up to settled_by (the entity's cursor
-- passed it) without finding it.
CREATE TABLE sync.push_claims (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    entity         text NOT NULL CHECK (entity IN ('contact', 'invoice', 'payment')),
    local_id       uuid NOT NULL,
    step_id        bigint NOT NULL REFERENCES sync.run_steps (id) ON DELETE CASCADE,
    op             text NOT NULL CHECK (op IN ('create', 'update', 'retire')),
    sent           jsonb,
    settled_by     timestamptz,
    wanted         boolean NOT NULL DEFAULT false,
    claimed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, entity, local_id)
);
CREATE INDEX push_claims_step ON sync.push_claims (step_id);
CREATE INDEX push_claims_in_doubt ON sync.push_claims (connection_id, entity)
    WHERE op = 'create' AND settled_by IS NOT NULL;
COMMENT ON TABLE sync.push_claims IS
    'The local records an unfinished push step holds, and the creates that may be in Xero '
    'without a known id (migration 0009).';

-- The Xero ids of a record's parts that Xero names on their own (an invoice's LineItemIDs),
-- in the order of the base's parts: an update sends each unchanged part with its id, so Xero
-- keeps it as it is instead of replacing it (a paid invoice refuses replaced lines).
ALTER TABLE sync.mappings ADD COLUMN xero_parts jsonb;
COMMENT ON COLUMN sync.mappings.xero_parts IS
    'Xero''s ids of the base''s parts in order (an invoice''s LineItemIDs), or NULL.';
