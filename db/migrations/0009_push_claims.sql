-- 0009_push_claims: a write to Xero is made exactly once (docs/ARCHITECTURE.md, "Exactly
-- once").
--
-- sync.push_claims: which unfinished push step holds a local record. A push step claims the
-- records of its batch in the transaction that stores its request, before the call; a
-- record claimed by another live step (pending or running, of a run not over) is left to
-- that step, and marked `wanted` so that the step that holds it queues it again when it lets
-- it go. The step lets
-- its claims go in the transaction that records Xero's reply (lib/xs/domain.c), or, when it
-- ends without one (failed, given up, its run over), the orchestrator does
-- (services/orchestrator/runs.c) -- except the claims of creates that may have reached Xero:
--
-- Each claim of a create or an update keeps what was sent (`sent`, the canonical record,
-- local ids in its references): a Xero record that holds what an update of ours sent, while
-- its reply is not recorded, holds our write, not a Xero edit (lib/xs/domain.c, holds_sent).
--
-- A create whose reply never came (lost, truncated, garbled, a 5xx after the write, a
-- time-out) is *in doubt*: Xero may hold the record without our knowing its id. Its claim
-- keeps what was sent and the
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

-- When the host application last changed a row (edited_at): the local time last_write_wins
-- compares with Xero's UpdatedDateUTC. updated_at also moves when the engine writes the row
-- (Xero's totals after a payment, say), which is no edit of a person's: taken as the local
-- side's time, it made an older local edit look newer than a later one made in Xero. The
-- engine's own writes (sync.engine_write) leave edited_at as it was; rows the engine creates
-- start without one (coalesce with updated_at where a time is needed).
CREATE FUNCTION sync.touch_edited_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.edited_at := CASE WHEN sync.engine_write() THEN NULL ELSE NEW.updated_at END;
    ELSIF sync.engine_write() OR NEW.updated_at = OLD.updated_at THEN
        NEW.edited_at := OLD.edited_at;
    ELSE
        NEW.edited_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION sync.touch_edited_at() IS
    'BEFORE INSERT OR UPDATE row trigger, after touch_updated_at (triggers fire by name): '
    'edited_at follows updated_at for writes that are not the engine''s own.';

ALTER TABLE app.contacts ADD COLUMN edited_at timestamptz;
ALTER TABLE app.invoices ADD COLUMN edited_at timestamptz;
ALTER TABLE app.payments ADD COLUMN edited_at timestamptz;
COMMENT ON COLUMN app.contacts.edited_at IS
    'Kept by the database: when the host application last changed the row (engine writes '
    'do not move it).';
COMMENT ON COLUMN app.invoices.edited_at IS
    'Kept by the database: when the host application last changed the invoice or its lines '
    '(engine writes do not move it).';
COMMENT ON COLUMN app.payments.edited_at IS
    'Kept by the database: when the host application last changed the row (engine writes '
    'do not move it).';
CREATE TRIGGER touched_by_person BEFORE INSERT OR UPDATE ON app.contacts
    FOR EACH ROW EXECUTE FUNCTION sync.touch_edited_at();
CREATE TRIGGER touched_by_person BEFORE INSERT OR UPDATE ON app.invoices
    FOR EACH ROW EXECUTE FUNCTION sync.touch_edited_at();
CREATE TRIGGER touched_by_person BEFORE INSERT OR UPDATE ON app.payments
    FOR EACH ROW EXECUTE FUNCTION sync.touch_edited_at();
