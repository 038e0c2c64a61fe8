-- 0012_edited_fields: when the host application last wrote each field of a row.
--
-- Sync decisions compare each field with the base (the version both sides last agreed). A
-- local write that puts back the agreed value (ARCHIVED, then ACTIVE again) while Xero's
-- change of that field waits read as no change, so Xero's change won although the local write
-- came later. edited_fields keeps, per field, the time (ms since the epoch, the row's
-- updated_at) of the host application's last write that changed it; a field written after
-- the base was agreed is a local change of it whatever its value, and last_write_wins
-- compares that field's time with Xero's.
--
-- Keys are the canonical names the engine's records use: a column's name, but contact_id and
-- invoice_id are contact and invoice, and a change to an invoice's lines (lines_version,
-- migration 0007) is lines; generated columns (email_key, name_key: not yet computed in a
-- BEFORE trigger) are left out. The engine's own writes (sync.engine_write) leave it as it
-- was.
ALTER TABLE app.contacts ADD COLUMN edited_fields jsonb;
ALTER TABLE app.invoices ADD COLUMN edited_fields jsonb;
ALTER TABLE app.payments ADD COLUMN edited_fields jsonb;
COMMENT ON COLUMN app.contacts.edited_fields IS
    'Kept by the database: {field: ms since the epoch} of the host application''s last write '
    'that changed each field (engine writes do not move it).';
COMMENT ON COLUMN app.invoices.edited_fields IS
    'Kept by the database: {field: ms since the epoch} of the host application''s last write '
    'that changed each field, lines for its lines (engine writes do not move it).';
COMMENT ON COLUMN app.payments.edited_fields IS
    'Kept by the database: {field: ms since the epoch} of the host application''s last write '
    'that changed each field (engine writes do not move it).';

CREATE OR REPLACE FUNCTION sync.touch_edited_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    at bigint;
    touched jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.edited_at := CASE WHEN sync.engine_write() THEN NULL ELSE NEW.updated_at END;
        NEW.edited_fields := NULL;
        RETURN NEW;
    END IF;
    IF sync.engine_write() THEN
        NEW.edited_at := OLD.edited_at;
        NEW.edited_fields := OLD.edited_fields;
        RETURN NEW;
    END IF;
    NEW.edited_at := CASE WHEN NEW.updated_at = OLD.updated_at THEN OLD.edited_at
                          ELSE NEW.updated_at END;
    at := (extract(epoch FROM NEW.updated_at) * 1000)::bigint;
    SELECT jsonb_object_agg(CASE n.key WHEN 'contact_id' THEN 'contact'
                                       WHEN 'invoice_id' THEN 'invoice'
                                       WHEN 'lines_version' THEN 'lines'
                                       ELSE n.key END, at)
      INTO touched
      FROM jsonb_each(to_jsonb(NEW)) n
     WHERE n.key NOT IN ('updated_at', 'edited_at', 'edited_fields', 'created_at', 'email_key',
                         'name_key')
       AND n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key;
    NEW.edited_fields := CASE WHEN touched IS NULL THEN OLD.edited_fields
                              ELSE coalesce(OLD.edited_fields, '{}'::jsonb) || touched END;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION sync.touch_edited_at() IS
    'BEFORE INSERT OR UPDATE row trigger, after touch_updated_at (triggers fire by name): '
    'edited_at follows updated_at, and edited_fields records the fields that changed, for '
    'writes that are not the engine''s own.';
