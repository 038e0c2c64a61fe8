-- 0008_unlinked_contacts: the local contacts each connection has not linked yet, so that a
-- pull matches a page of Xero contacts against those alone (lib/xs/domain.c, contacts'
-- match). Before this, matching joined the page's keys with every local contact of the
-- organisation and then dropped the linked ones: at 100,000 contacts whose e-mails repeat,
-- 13,000 rows a page were fetched and checked to find none.
--
-- The database keeps the set, so no writer can forget it:
--   - a contact inserted by anyone becomes unlinked for each connection of its organisation,
--     except when a pull of the organisation's only connection creates it (that pull links
--     it in the same transaction, and says so with sync.mark_pull);
--   - a new connection starts with every contact of its organisation unlinked;
--   - a mapping of a contact that goes away, or moves to another contact, leaves that contact
--     unlinked again;
--   - a contact moved to another organisation or id is unlinked for that organisation's
--     connections.
-- The engine removes a contact from the set when it writes its mapping (write_mappings).
-- A row that stays after its contact was linked some other way costs matching a lookup and
-- is never matched (matching checks sync.mappings as well); deleting a contact removes its
-- rows (the foreign key).

CREATE TABLE sync.unlinked_contacts (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    contact_id     uuid NOT NULL REFERENCES app.contacts (id) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (connection_id, contact_id)
);
CREATE INDEX unlinked_contacts_contact ON sync.unlinked_contacts (contact_id);
COMMENT ON TABLE sync.unlinked_contacts IS
    'Local contacts a connection has no mapping for: the rows a pull matches Xero contacts '
    'against on first link. Kept by triggers and by the engine (migration 0008).';

-- Everything unlinked now.
INSERT INTO sync.unlinked_contacts (connection_id, contact_id)
SELECT k.id, c.id
FROM sync.connections k
JOIN app.contacts c ON c.organisation_id = k.organisation_id
WHERE NOT EXISTS (SELECT 1 FROM sync.mappings m
                  WHERE m.connection_id = k.id AND m.entity = 'contact' AND m.local_id = c.id);

-- sync.mark_pull marks the current transaction as connection p_conn's pull: the contacts it
-- creates are linked to p_conn in the same transaction (lib/xs/domain.c, apply_page), so they
-- are not recorded as unlinked for it. When p_conn is its organisation's only connection,
-- they are unlinked for none, and the row trigger below is not even called.
CREATE FUNCTION sync.mark_pull(p_conn uuid) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    SELECT set_config('xs.pull_connection', p_conn::text, true),
           set_config('xs.pull_sole',
                      CASE WHEN EXISTS (SELECT 1 FROM sync.connections k
                                        JOIN sync.connections o
                                          ON o.organisation_id = k.organisation_id
                                         AND o.id <> k.id
                                        WHERE k.id = p_conn)
                           THEN 'off' ELSE 'on' END,
                      true);
END;

-- A new contact, or one moved to another organisation or id: unlinked for every connection of
-- its organisation that has no mapping of it (but the pulling one: see sync.mark_pull), and no
-- longer for the connections of an organisation it left.
CREATE FUNCTION sync.unlink_contact() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM sync.unlinked_contacts u
        USING sync.connections k
        WHERE u.contact_id = NEW.id AND k.id = u.connection_id
          AND k.organisation_id <> NEW.organisation_id;
    END IF;
    INSERT INTO sync.unlinked_contacts (connection_id, contact_id)
    SELECT k.id, NEW.id
    FROM sync.connections k
    WHERE k.organisation_id = NEW.organisation_id
      AND k.id::text IS DISTINCT FROM nullif(current_setting('xs.pull_connection', true), '')
      AND NOT EXISTS (SELECT 1 FROM sync.mappings m
                      WHERE m.connection_id = k.id AND m.entity = 'contact' AND m.local_id = NEW.id)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER unlink_new AFTER INSERT ON app.contacts
    FOR EACH ROW WHEN (current_setting('xs.pull_sole', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION sync.unlink_contact();
CREATE TRIGGER unlink_moved AFTER UPDATE ON app.contacts
    FOR EACH ROW WHEN ((OLD.id, OLD.organisation_id) IS DISTINCT FROM (NEW.id, NEW.organisation_id))
    EXECUTE FUNCTION sync.unlink_contact();

-- A new connection: every contact of its organisation.
CREATE FUNCTION sync.unlink_for_connection() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO sync.unlinked_contacts (connection_id, contact_id)
    SELECT NEW.id, c.id FROM app.contacts c WHERE c.organisation_id = NEW.organisation_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER unlink_all AFTER INSERT ON sync.connections
    FOR EACH ROW EXECUTE FUNCTION sync.unlink_for_connection();

-- A mapping gone, or moved off a contact: that contact, if it is still there and still has
-- no mapping (its connection still there too: a connection's deletion removes its mappings).
CREATE FUNCTION sync.relink_contact(p_conn uuid, p_contact uuid) RETURNS void
    LANGUAGE sql
BEGIN ATOMIC
    INSERT INTO sync.unlinked_contacts (connection_id, contact_id)
    SELECT k.id, c.id
    FROM sync.connections k
    JOIN app.contacts c ON c.id = p_contact AND c.organisation_id = k.organisation_id
    WHERE k.id = p_conn
      AND NOT EXISTS (SELECT 1 FROM sync.mappings m
                      WHERE m.connection_id = p_conn AND m.entity = 'contact'
                        AND m.local_id = p_contact)
    ON CONFLICT DO NOTHING;
END;

CREATE FUNCTION sync.relink_contacts() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sync.relink_contact(o.connection_id, o.local_id)
        FROM (SELECT DISTINCT connection_id, local_id FROM old_mappings
              WHERE entity = 'contact') o;
    ELSE
        PERFORM sync.relink_contact(OLD.connection_id, OLD.local_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER relink_deleted AFTER DELETE ON sync.mappings
    REFERENCING OLD TABLE AS old_mappings
    FOR EACH STATEMENT EXECUTE FUNCTION sync.relink_contacts();
CREATE TRIGGER relink_moved AFTER UPDATE ON sync.mappings
    FOR EACH ROW WHEN (OLD.entity = 'contact' AND (OLD.connection_id, OLD.entity, OLD.local_id)
                       IS DISTINCT FROM (NEW.connection_id, NEW.entity, NEW.local_id))
    EXECUTE FUNCTION sync.relink_contacts();
