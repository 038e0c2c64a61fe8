-- 0016_documents: the host application's documents, pushed by xs-files to Xero Files
-- (docs/MAPPING.md, "Documents").
--
-- app.documents holds each document: its bytes in PostgreSQL (content) or a file under
-- XS_DOCUMENTS_DIR (path, relative), the SHA-256 of those bytes, and the local contact or
-- invoice it belongs to (neither: it only goes into the folder). A change of a document goes
-- to the outbox like any other app table (sync.capture_change), as entity 'document'.
--
-- Per connection, sync.document_pushes keeps where each document stands in Xero; the same
-- bytes are uploaded once per connection (sync.document_uploads, keyed by the SHA-256), and
-- the folder they go into is found or created once (sync.document_folders). Each of these
-- rows is one per document, upload or folder of a connection: nothing grows without bound,
-- so retention leaves them alone, and a purged connection takes them with it (ON DELETE
-- CASCADE).

CREATE TABLE app.documents (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id  uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    file_name        text NOT NULL
                     CHECK (btrim(file_name) <> '' AND length(file_name) <= 255
                            AND file_name !~ '[/\\[:cntrl:]]'),
    mime_type        text NOT NULL
                     CHECK (mime_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$'
                            AND length(mime_type) <= 127),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content          bytea,
    path             text CHECK (path <> '' AND length(path) <= 1024 AND path !~ '^/'
                                 AND path !~ '(^|/)\.\.(/|$)' AND path !~ '[[:cntrl:]]'),
    contact_id       uuid,
    invoice_id       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((content IS NULL) <> (path IS NULL)),
    CHECK (content IS NULL OR (octet_length(content) = size_bytes
                               AND encode(sha256(content), 'hex') = sha256)),
    CHECK (num_nonnulls(contact_id, invoice_id) <= 1),
    FOREIGN KEY (organisation_id, contact_id) REFERENCES app.contacts (organisation_id, id)
        ON DELETE SET NULL (contact_id),
    FOREIGN KEY (organisation_id, invoice_id) REFERENCES app.invoices (organisation_id, id)
        ON DELETE SET NULL (invoice_id)
);
COMMENT ON TABLE app.documents IS
    'Documents of the host application, pushed to Xero Files into the connection''s folder and '
    'associated with their contact or invoice.';
COMMENT ON COLUMN app.documents.sha256 IS
    'Hex SHA-256 of the bytes; checked here against content, by xs-files against a file on disk.';
COMMENT ON COLUMN app.documents.path IS
    'The file, relative to XS_DOCUMENTS_DIR, when the bytes are not in content; xs-files refuses '
    'a path that leads out of that folder.';
CREATE INDEX documents_organisation ON app.documents (organisation_id, id);
CREATE INDEX documents_contact ON app.documents (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX documents_invoice ON app.documents (invoice_id) WHERE invoice_id IS NOT NULL;

CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON app.documents
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

-- The outbox takes documents too; runs, their steps and their item errors take the two
-- entities of issue 22 (document here, job for xs-jobs), so later migrations need not touch
-- these lists again.
ALTER TABLE sync.changes DROP CONSTRAINT changes_entity_check;
ALTER TABLE sync.changes ADD CONSTRAINT changes_entity_check
    CHECK (entity IN ('contact', 'invoice', 'payment', 'document'));
ALTER TABLE sync.runs DROP CONSTRAINT runs_entities_check;
ALTER TABLE sync.runs ADD CONSTRAINT runs_entities_check
    CHECK (entities <@ ARRAY['contact', 'invoice', 'payment', 'account', 'bank_transaction',
                             'job', 'document']::text[]);
ALTER TABLE sync.run_steps DROP CONSTRAINT run_steps_entity_check;
ALTER TABLE sync.run_steps ADD CONSTRAINT run_steps_entity_check
    CHECK (entity IN ('contact', 'invoice', 'payment', 'account', 'bank_transaction', 'job',
                      'document'));
ALTER TABLE sync.run_item_errors DROP CONSTRAINT run_item_errors_entity_check;
ALTER TABLE sync.run_item_errors ADD CONSTRAINT run_item_errors_entity_check
    CHECK (entity IN ('contact', 'invoice', 'payment', 'account', 'bank_transaction', 'job',
                      'document'));

CREATE TRIGGER capture_change AFTER INSERT OR DELETE ON app.documents
    FOR EACH ROW WHEN (NOT sync.engine_write()) EXECUTE FUNCTION sync.capture_change('document');
CREATE TRIGGER capture_change_update AFTER UPDATE ON app.documents
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.* AND NOT sync.engine_write())
    EXECUTE FUNCTION sync.capture_change('document');

CREATE TABLE sync.document_folders (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (btrim(name) <> ''),
    xero_id        uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, name)
);
COMMENT ON TABLE sync.document_folders IS
    'The Xero Files folder of each folder name a connection pushed documents into.';

CREATE TABLE sync.document_uploads (
    connection_id    uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    folder_id        uuid NOT NULL,
    file_name        text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    idempotency_key  text NOT NULL,
    sent_at          timestamptz,
    xero_file_id     uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, sha256)
);
COMMENT ON TABLE sync.document_uploads IS
    'The bytes a connection uploaded to Xero Files, once each. The row is written and committed '
    'before the upload is sent (sent_at); xero_file_id once Xero''s reply is recorded. A row sent '
    'and without a file id is in doubt: the next attempt looks the file up in Xero (folder, name, '
    'size) before it uploads.';
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON sync.document_uploads
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

CREATE TABLE sync.document_pushes (
    connection_id        uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    document_id          uuid NOT NULL REFERENCES app.documents (id) ON DELETE CASCADE,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'pushed', 'failed', 'skipped')),
    message              text,
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at      timestamptz,
    sha256               text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    xero_file_id         uuid,
    object_group         text CHECK (object_group IN ('Contact', 'Invoice')),
    object_id            uuid,
    association_sent_at  timestamptz,
    associated_at        timestamptz,
    blocked_entity       text CHECK (blocked_entity IN ('contact', 'invoice')),
    blocked_on           uuid,
    pushed_at            timestamptz,
    document_updated_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, document_id),
    CHECK ((blocked_entity IS NULL) = (blocked_on IS NULL)),
    CHECK ((object_group IS NULL) = (object_id IS NULL))
);
COMMENT ON TABLE sync.document_pushes IS
    'Where each document stands on each connection: pending (waiting, or to be tried again at '
    'next_attempt_at), pushed, failed (Xero''s message, or why here) or skipped (over a limit). '
    'sha256, xero_file_id, object_* are the bytes and the association pushed; blocked_* the '
    'local contact or invoice it waits for (no Xero id yet). An association sent and not '
    'recorded (association_sent_at without associated_at) is checked with a GET before it is '
    'sent again. document_updated_at is the document''s updated_at its status was decided on: '
    'a document changed since is looked at again.';
CREATE INDEX document_pushes_due ON sync.document_pushes (next_attempt_at)
    WHERE status = 'pending' AND next_attempt_at IS NOT NULL;
CREATE INDEX document_pushes_blocked ON sync.document_pushes (connection_id, blocked_entity,
                                                              blocked_on)
    WHERE blocked_on IS NOT NULL;
CREATE INDEX document_pushes_document ON sync.document_pushes (document_id);
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON sync.document_pushes
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

-- sync.release_blocked_documents queues, when a contact or invoice gets its first mapping on
-- a connection, the documents that wait for it there: they are pushed without a run of
-- their own.
CREATE FUNCTION sync.release_blocked_documents() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM sync.record_change(d.organisation_id, 'document', d.id, 'update')
    FROM sync.document_pushes p JOIN app.documents d ON d.id = p.document_id
    WHERE p.connection_id = NEW.connection_id AND p.blocked_entity = NEW.entity
      AND p.blocked_on = NEW.local_id AND p.status = 'pending';
    RETURN NULL;
END
$$;

CREATE TRIGGER release_blocked_documents AFTER INSERT ON sync.mappings
    FOR EACH ROW WHEN (NEW.entity IN ('contact', 'invoice'))
    EXECUTE FUNCTION sync.release_blocked_documents();
