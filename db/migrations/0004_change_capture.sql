-- 0004_change_capture: local changes to contacts, invoices (with their lines) and payments
-- go to the outbox sync.changes, and a NOTIFY on channel xs_changes (payload: the
-- organisation id) wakes the orchestrator, which LISTENs there.
--
-- Writes the engine marks as its own (xs_pg_mark_engine: set_config('xs.origin', 'engine',
-- true) in the writing transaction) are not captured, so a pulled record is never pushed
-- back. An UPDATE that changes nothing is not captured either (the triggers fire only WHEN
-- OLD.* IS DISTINCT FROM NEW.*; sync.touch_updated_at keeps updated_at as it was then).
-- PostgreSQL folds identical notifications of one transaction into one.
--
-- The trigger functions are SECURITY DEFINER with a fixed search_path: the host
-- application's role needs no rights on schema sync to write its own tables. The triggers'
-- WHEN clauses skip the engine's own writes before any function is called (a page of a
-- thousand pulled records then costs no trigger call at all); the functions check again.

-- sync.record_change adds a pending change of (organisation, entity, local_id), or folds it
-- into the pending one: op becomes the combined hint, seq a new number, changed_at now, and
-- the retry state starts over (the record is different now).
CREATE FUNCTION sync.record_change(p_org uuid, p_entity text, p_local_id uuid, p_op text)
    RETURNS void
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO sync.changes AS c (organisation_id, entity, local_id, op)
    VALUES (p_org, p_entity, p_local_id, p_op)
    ON CONFLICT (organisation_id, entity, local_id) WHERE processed_at IS NULL
    DO UPDATE SET
        op = CASE
                 WHEN excluded.op = 'delete' THEN 'delete'
                 -- not yet seen by the engine: still new to it
                 WHEN c.op = 'insert' THEN 'insert'
                 -- a line changed after its invoice was deleted (a cascade): still deleted
                 WHEN c.op = 'delete' AND excluded.op = 'update' THEN 'delete'
                 ELSE excluded.op
             END,
        seq = excluded.seq,
        changed_at = excluded.changed_at,
        attempts = 0,
        last_error = NULL;
    SELECT pg_notify('xs_changes', p_org::text);
END;

-- sync.engine_write tells whether the current transaction is marked as the engine's.
CREATE FUNCTION sync.engine_write() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(current_setting('xs.origin', true), '') = 'engine';

-- sync.capture_change is the row trigger of contacts, invoices and payments; TG_ARGV[0] is
-- the entity name. A row moved to another id or organisation is a delete plus an insert.
CREATE FUNCTION sync.capture_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF sync.engine_write() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM sync.record_change(NEW.organisation_id, TG_ARGV[0], NEW.id, 'insert');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM sync.record_change(OLD.organisation_id, TG_ARGV[0], OLD.id, 'delete');
    ELSIF (NEW.id, NEW.organisation_id) IS DISTINCT FROM (OLD.id, OLD.organisation_id) THEN
        PERFORM sync.record_change(OLD.organisation_id, TG_ARGV[0], OLD.id, 'delete');
        PERFORM sync.record_change(NEW.organisation_id, TG_ARGV[0], NEW.id, 'insert');
    ELSE
        PERFORM sync.record_change(NEW.organisation_id, TG_ARGV[0], NEW.id, 'update');
    END IF;
    RETURN NULL;
END
$$;

-- sync.capture_invoice_line_change records a change of a line as an update of its invoice
-- (of both invoices when a line moves from one to another).
CREATE FUNCTION sync.capture_invoice_line_change() RETURNS trigger
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
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.invoice_id, NEW.organisation_id)
                            IS DISTINCT FROM (OLD.invoice_id, OLD.organisation_id)) THEN
        PERFORM sync.record_change(NEW.organisation_id, 'invoice', NEW.invoice_id, 'update');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER capture_change AFTER INSERT OR DELETE ON app.contacts
    FOR EACH ROW WHEN (NOT sync.engine_write()) EXECUTE FUNCTION sync.capture_change('contact');
CREATE TRIGGER capture_change_update AFTER UPDATE ON app.contacts
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.* AND NOT sync.engine_write())
    EXECUTE FUNCTION sync.capture_change('contact');

CREATE TRIGGER capture_change AFTER INSERT OR DELETE ON app.invoices
    FOR EACH ROW WHEN (NOT sync.engine_write()) EXECUTE FUNCTION sync.capture_change('invoice');
CREATE TRIGGER capture_change_update AFTER UPDATE ON app.invoices
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.* AND NOT sync.engine_write())
    EXECUTE FUNCTION sync.capture_change('invoice');

CREATE TRIGGER capture_change AFTER INSERT OR DELETE ON app.invoice_lines
    FOR EACH ROW WHEN (NOT sync.engine_write()) EXECUTE FUNCTION sync.capture_invoice_line_change();
CREATE TRIGGER capture_change_update AFTER UPDATE ON app.invoice_lines
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.* AND NOT sync.engine_write())
    EXECUTE FUNCTION sync.capture_invoice_line_change();

CREATE TRIGGER capture_change AFTER INSERT OR DELETE ON app.payments
    FOR EACH ROW WHEN (NOT sync.engine_write()) EXECUTE FUNCTION sync.capture_change('payment');
CREATE TRIGGER capture_change_update AFTER UPDATE ON app.payments
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.* AND NOT sync.engine_write())
    EXECUTE FUNCTION sync.capture_change('payment');
