-- 0017_jobs: the jobs domain (services/jobs, xs-jobs): a pull-only mirror of Xero Practice
-- Manager (XPM) jobs and clients per connection, the history of each job's states, and the
-- events the host application reads (and receives on its webhook) when a job enters or leaves
-- a state the connection maps to "needs documents" (docs/MAPPING.md, "XPM jobs").

-- The pull cursors take entity job (runs, their steps and item errors took it in 0016).
ALTER TABLE sync.cursors DROP CONSTRAINT cursors_entity_check;
ALTER TABLE sync.cursors ADD CONSTRAINT cursors_entity_check
    CHECK (entity IN ('contact', 'invoice', 'payment', 'account', 'bank_transaction', 'job'));

-- XPM's clients as last read, each linked to at most one local contact of the organisation
-- by the contacts' matching rules (e-mail, then name; only when exactly one contact matches),
-- or to none: unmatched clients are listed (GET /v1/connections/{id}/xpm-clients), not guessed.
CREATE TABLE app.xpm_clients (
    connection_id    uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    organisation_id  uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    xpm_uuid         text NOT NULL CHECK (length(xpm_uuid) BETWEEN 1 AND 64),
    name             text NOT NULL,
    email            text,
    contact_id       uuid REFERENCES app.contacts (id) ON DELETE SET NULL,
    matched_by       text CHECK (matched_by IN ('email', 'name')),
    unmatched_reason text CHECK (unmatched_reason IN ('no_match', 'ambiguous')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, xpm_uuid)
);
COMMENT ON TABLE app.xpm_clients IS
    'XPM clients per connection, linked to a local contact by e-mail then name, or unmatched.';
CREATE INDEX xpm_clients_unmatched ON app.xpm_clients (connection_id, name)
    WHERE contact_id IS NULL;

-- The jobs. current: the job was in XPM's list of current jobs (job.api/current) when it was
-- last read; recheck: it was current and is no longer, so its new state is still to be read
-- with job.api/get/{number}. needs_documents: its state is one of the connection's
-- xpm.needs_documents when it was last written.
CREATE TABLE app.jobs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    connection_id   uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    xpm_uuid        text NOT NULL CHECK (length(xpm_uuid) BETWEEN 1 AND 64),
    number          text NOT NULL CHECK (length(number) BETWEEN 1 AND 64),
    name            text NOT NULL,
    description     text,
    client_uuid     text,
    client_name     text,
    contact_id      uuid REFERENCES app.contacts (id) ON DELETE SET NULL,
    state           text NOT NULL,
    type            text,
    start_date      date,
    due_date        date,
    completed_date  date,
    needs_documents boolean NOT NULL DEFAULT false,
    current         boolean NOT NULL DEFAULT false,
    recheck         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, xpm_uuid)
);
COMMENT ON TABLE app.jobs IS 'XPM jobs, mirrored (pull only) per connection.';
CREATE INDEX jobs_org_number ON app.jobs (organisation_id, number, id);
CREATE INDEX jobs_recheck ON app.jobs (connection_id, number) WHERE recheck;
CREATE INDEX jobs_current ON app.jobs (connection_id) WHERE current;
CREATE INDEX jobs_client ON app.jobs (connection_id, client_uuid);

-- A job's states as the pulls saw them; from_state NULL is the job's first sight.
CREATE TABLE app.job_state_changes (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES app.jobs (id) ON DELETE CASCADE,
    from_state text,
    to_state   text NOT NULL,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_state_changes_job ON app.job_state_changes (job_id, id);

-- The host application's feed: a job entered (job.needs_documents) or left
-- (job.documents_done) a mapped state. webhook: the connection had xpm.webhook_url set when the
-- event was made, so the orchestrator delivers it (services/orchestrator/jobhooks.c) at least
-- once: delivered_at once the receiver answered 2xx, else attempts, next_attempt_at (back-off)
-- and last_error.
CREATE TABLE app.job_events (
    id              bigserial PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    connection_id   uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    job_id          uuid NOT NULL REFERENCES app.jobs (id) ON DELETE CASCADE,
    type            text NOT NULL CHECK (type IN ('job.needs_documents', 'job.documents_done')),
    state           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    webhook         boolean NOT NULL DEFAULT false,
    delivered_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX job_events_org ON app.job_events (organisation_id, id);
CREATE INDEX job_events_due ON app.job_events (next_attempt_at)
    WHERE webhook AND delivered_at IS NULL;

-- The incremental state of a connection's job pulls: when its clients were last read
-- (job.api's clients are asked for with modifiedSince this mark, in XPM's form).
CREATE TABLE app.xpm_sync_state (
    connection_id        uuid PRIMARY KEY REFERENCES sync.connections (id) ON DELETE CASCADE,
    clients_modified_since text,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- app.xpm_date is an XPM date ("2024-05-01" or "2024-05-01T00:00:00") as a date, NULL when
-- absent or not a date, so one bad field never fails a page.
CREATE FUNCTION app.xpm_date(p text) RETURNS date
    LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p IS NULL OR p !~ '^\d{4}-\d{2}-\d{2}' THEN
        RETURN NULL;
    END IF;
    RETURN left(p, 10)::date;
EXCEPTION WHEN others THEN
    RETURN NULL;
END;
$$;

-- app.xpm_job_apply writes one XPM job (j, as job.api returns it) of connection p_conn: created
-- or updated under its row's lock, with its history and its events decided in the same
-- transaction, so a page read twice (a retried step, a repeated run) adds nothing the first
-- did not. p_mapped: the connection's xpm.needs_documents (compared without case or outer
-- spaces); p_webhook: its events are to be delivered; p_current: true when j came from
-- job.api/current (the job is current), NULL to leave the mark as it is. Returns 'created',
-- 'updated' or 'unchanged', followed by a space and the event's type when it made one.
CREATE FUNCTION app.xpm_job_apply(p_conn uuid, p_org uuid, j jsonb, p_mapped text[],
                                  p_webhook boolean, p_current boolean) RETURNS text
    LANGUAGE plpgsql
AS $$
DECLARE
    v_uuid   text := j->>'uuid';
    v_state  text := coalesce(nullif(btrim(j->>'state'), ''), 'Unknown');
    v_client text := j->'client'->>'uuid';
    v_needs  boolean;
    v_old    app.jobs%ROWTYPE;
    v_id     uuid;
    v_was    boolean := false;
    v_result text;
BEGIN
    SELECT EXISTS (SELECT 1 FROM unnest(p_mapped) m WHERE lower(btrim(m)) = lower(v_state))
        INTO v_needs;
    SELECT * INTO v_old FROM app.jobs WHERE connection_id = p_conn AND xpm_uuid = v_uuid
        FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO app.jobs AS t (organisation_id, connection_id, xpm_uuid, number, name,
                                   description, client_uuid, client_name, contact_id, state, type,
                                   start_date, due_date, completed_date, needs_documents, current)
        VALUES (p_org, p_conn, v_uuid, j->>'id', coalesce(j->>'name', ''), j->>'description',
                v_client, j->'client'->>'name',
                (SELECT c.contact_id FROM app.xpm_clients c
                 WHERE c.connection_id = p_conn AND c.xpm_uuid = v_client),
                v_state, j->>'type', app.xpm_date(j->>'startDate'), app.xpm_date(j->>'dueDate'),
                app.xpm_date(j->>'completedDate'), v_needs, coalesce(p_current, false))
        ON CONFLICT (connection_id, xpm_uuid) DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NULL THEN
            -- Another step inserted it meanwhile: decide against its row, locked.
            SELECT * INTO v_old FROM app.jobs WHERE connection_id = p_conn AND xpm_uuid = v_uuid
                FOR UPDATE;
        ELSE
            INSERT INTO app.job_state_changes (job_id, from_state, to_state)
                VALUES (v_id, NULL, v_state);
            v_result := 'created';
        END IF;
    END IF;
    IF v_result IS NULL THEN
        v_id := v_old.id;
        v_was := v_old.needs_documents;
        UPDATE app.jobs SET number = j->>'id', name = coalesce(j->>'name', ''),
            description = j->>'description', client_uuid = v_client,
            client_name = j->'client'->>'name',
            contact_id = (SELECT c.contact_id FROM app.xpm_clients c
                          WHERE c.connection_id = p_conn AND c.xpm_uuid = v_client),
            state = v_state, type = j->>'type', start_date = app.xpm_date(j->>'startDate'),
            due_date = app.xpm_date(j->>'dueDate'),
            completed_date = app.xpm_date(j->>'completedDate'), needs_documents = v_needs,
            current = coalesce(p_current, current), recheck = false, updated_at = now()
        WHERE id = v_id
          AND (number, name, description, client_uuid, client_name, contact_id, state, type,
               start_date, due_date, completed_date, needs_documents, current, recheck)
              IS DISTINCT FROM
              (j->>'id', coalesce(j->>'name', ''), j->>'description', v_client,
               j->'client'->>'name',
               (SELECT c.contact_id FROM app.xpm_clients c
                WHERE c.connection_id = p_conn AND c.xpm_uuid = v_client),
               v_state, j->>'type', app.xpm_date(j->>'startDate'), app.xpm_date(j->>'dueDate'),
               app.xpm_date(j->>'completedDate'), v_needs, coalesce(p_current, current), false);
        v_result := CASE WHEN FOUND THEN 'updated' ELSE 'unchanged' END;
        IF v_old.state IS DISTINCT FROM v_state THEN
            INSERT INTO app.job_state_changes (job_id, from_state, to_state)
                VALUES (v_id, v_old.state, v_state);
        END IF;
    END IF;
    IF v_needs AND NOT v_was THEN
        INSERT INTO app.job_events (organisation_id, connection_id, job_id, type, state, webhook)
            VALUES (p_org, p_conn, v_id, 'job.needs_documents', v_state, p_webhook);
        RETURN v_result || ' job.needs_documents';
    ELSIF v_was AND NOT v_needs THEN
        INSERT INTO app.job_events (organisation_id, connection_id, job_id, type, state, webhook)
            VALUES (p_org, p_conn, v_id, 'job.documents_done', v_state, p_webhook);
        RETURN v_result || ' job.documents_done';
    END IF;
    RETURN v_result;
END;
$$;
