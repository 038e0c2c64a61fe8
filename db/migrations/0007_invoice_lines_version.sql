-- 0007_invoice_lines_version: a change to an invoice's lines is a change of the invoice, so
-- its updated_at moves too. The sync engine tells a changed local record by updated_at (a
-- full run's scan skips rows still at their mapping's local_updated_at); before this, a line
-- edited on its own reached the outbox but left the invoice's updated_at where it was.
--
-- The line trigger now also bumps app.invoices.lines_version (the invoice row changes, so
-- sync.touch_updated_at moves updated_at). Writes the engine marks as its own bump nothing:
-- the engine writes an invoice and its lines together and records the invoice's updated_at
-- as it wrote it.
ALTER TABLE app.invoices ADD COLUMN lines_version bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN app.invoices.lines_version IS
    'Kept by the database: counts the host application''s changes to the invoice''s lines, so '
    'that each moves the invoice''s updated_at.';

CREATE OR REPLACE FUNCTION sync.capture_invoice_line_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sync.engine_write() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM sync.record_change(OLD.organisation_id, 'invoice', OLD.invoice_id, 'update');
        UPDATE app.invoices SET lines_version = lines_version + 1 WHERE id = OLD.invoice_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.invoice_id, NEW.organisation_id)
                            IS DISTINCT FROM (OLD.invoice_id, OLD.organisation_id)) THEN
        PERFORM sync.record_change(NEW.organisation_id, 'invoice', NEW.invoice_id, 'update');
        UPDATE app.invoices SET lines_version = lines_version + 1 WHERE id = NEW.invoice_id;
    END IF;
    RETURN NULL;
END
$$;
