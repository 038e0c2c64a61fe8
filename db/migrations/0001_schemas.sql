-- 0001_schemas: the two schemas and the helpers the tables of both share.
--
-- Every migration file runs inside one transaction opened by xs_migrate_apply, together with
-- its row in sync.schema_migrations: a file must not BEGIN, COMMIT or VACUUM, and must not use
-- statements that refuse to run in a transaction (CREATE INDEX CONCURRENTLY, ...).
--
-- The schema `sync` and its ledger sync.schema_migrations are made by xs_migrate_apply itself
-- before any migration runs (it has to read the ledger to know what to run), hence
-- IF NOT EXISTS for `sync` here.

CREATE SCHEMA app;
COMMENT ON SCHEMA app IS
    'The host application''s business data (contacts, invoices, payments, accounts, ...), '
    'every row scoped by organisation_id. Written by the host application and by the sync '
    'engine; the engine marks its own writes (xs.origin = engine) so they are not echoed back.';

CREATE SCHEMA IF NOT EXISTS sync;
COMMENT ON SCHEMA sync IS
    'The sync engine''s state: connections and sealed tokens, id mappings, runs, cursors, '
    'conflicts, the change outbox, the webhook inbox and the Xero API-call audit.';

-- sync.touch_updated_at keeps updated_at: set on insert; on an update moved forward only when
-- some other column changed (a no-op update leaves the row exactly as it was), and always
-- strictly later than before, so "changed since T" comparisons never miss an update made by
-- a transaction that started earlier than the last one to touch the row.
CREATE FUNCTION sync.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.updated_at := now();
        RETURN NEW;
    END IF;
    NEW.updated_at := OLD.updated_at;
    -- The trigger's arguments name generated columns: in a BEFORE trigger they are not yet
    -- computed in NEW, so they are left out of the comparison.
    IF (TG_NARGS = 0 AND NEW IS NOT DISTINCT FROM OLD)
       OR (TG_NARGS > 0 AND to_jsonb(NEW) - TG_ARGV = to_jsonb(OLD) - TG_ARGV) THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION sync.touch_updated_at() IS
    'BEFORE INSERT OR UPDATE row trigger: updated_at is owned by the database. A value the '
    'writer supplies is ignored; an update that changes nothing else keeps the old value. '
    'Arguments: the table''s generated columns, left out of that comparison.';

-- sync.normalise_name is the normalised form of a name used to match records on first link:
-- lower case, punctuation removed, runs of white space collapsed to one space, trimmed
-- ("ACME  Ltd." and "Acme Ltd" are one name). It is IMMUTABLE so it can be indexed; matching
-- code compares sync.normalise_name(a) = sync.normalise_name(b) to use the index.
CREATE FUNCTION sync.normalise_name(name text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    RETURN btrim(regexp_replace(regexp_replace(lower(name), '[[:punct:]]+', '', 'g'), '\s+',
                                ' ', 'g'));
COMMENT ON FUNCTION sync.normalise_name(text) IS
    'Name matching key: lower case, no punctuation, runs of white space one space, trimmed.';

-- sync.iso writes a timestamptz the way every xero-sync message and API reply writes time:
-- ISO 8601 UTC with milliseconds and "Z" (lib/xs/clock.h, xs_time_format_iso).
CREATE FUNCTION sync.iso(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
COMMENT ON FUNCTION sync.iso(timestamptz) IS
    'ISO 8601 UTC text with milliseconds, e.g. 2026-12-01T10:00:00.000Z.';
