-- 0003_sync: the sync engine's state.
--
-- Entity names used throughout: contact, invoice, payment, account, bank_transaction.
-- Enumerated text is CHECKed; statuses written by Xero are upper case, the engine's own are
-- lower case. Rows that belong to a connection go with it (ON DELETE CASCADE); history that
-- outlives what it points at (audit, per-item errors) loses the link (SET NULL) instead.

CREATE TABLE sync.grants (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id       uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    xero_user_id          text,
    auth_event_id         text,
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'needs_reauth', 'revoked')),
    access_token_sealed   bytea,
    refresh_token_sealed  bytea,
    key_id                text,
    access_expires_at     timestamptz,
    last_refresh_at       timestamptz,
    refresh_count         bigint NOT NULL DEFAULT 0,
    scopes                text[] NOT NULL DEFAULT '{}',
    last_error            text,
    last_error_at         timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((access_token_sealed IS NULL) = (key_id IS NULL)),
    CHECK (refresh_token_sealed IS NULL OR key_id IS NOT NULL)
);
COMMENT ON TABLE sync.grants IS
    'One OAuth consent: the token set Xero issued when a person connected one or more '
    'tenants. Every tenant chosen in that consent shares it, and a refresh rotates it for all '
    'of them, so tokens live here and not on each connection.';
COMMENT ON COLUMN sync.grants.auth_event_id IS
    'authentication_event_id of the consent; GET /connections?authEventId= lists its tenants.';
COMMENT ON COLUMN sync.grants.status IS
    'active: tokens usable; needs_reauth: Xero refused the refresh token (invalid_grant), a '
    'person must connect again; revoked: revoked at Xero by a disconnect.';
COMMENT ON COLUMN sync.grants.access_token_sealed IS
    'AES-256-GCM (nonce || ciphertext || tag) of the access token, sealed with key key_id and '
    'bound to this row (additional data "xs:grant:<id>:access").';
COMMENT ON COLUMN sync.grants.refresh_token_sealed IS
    'AES-256-GCM of the refresh token (additional data "xs:grant:<id>:refresh"). Refresh '
    'tokens rotate: whoever refreshes holds this row locked (SELECT ... FOR UPDATE) from '
    'reading the token to committing its successor, so two refreshes never use one token.';
COMMENT ON COLUMN sync.grants.key_id IS
    'Id of the sealing key (first 16 hex of its SHA-256), so keys can be rotated '
    '(xs-auth rotate-key).';
COMMENT ON COLUMN sync.grants.refresh_count IS 'Refreshes done with this grant, for operators.';
CREATE INDEX grants_organisation ON sync.grants (organisation_id);
CREATE INDEX grants_key ON sync.grants (key_id);
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON sync.grants
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

CREATE TABLE sync.connections (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organisation_id       uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    tenant_id             uuid NOT NULL,
    tenant_name           text,
    tenant_type           text,
    xero_connection_id    uuid,
    grant_id              uuid REFERENCES sync.grants (id) ON DELETE SET NULL,
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'needs_reauth', 'disconnected', 'paused')),
    last_error            text,
    last_error_at         timestamptz,
    settings              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    connected_at          timestamptz NOT NULL DEFAULT now(),
    disconnected_at       timestamptz,
    UNIQUE (organisation_id, tenant_id),
    CHECK (status = 'disconnected' OR grant_id IS NOT NULL)
);
COMMENT ON TABLE sync.connections IS
    'One Xero tenant connected by one organisation. Its tokens are those of its grant.';
COMMENT ON COLUMN sync.connections.tenant_id IS
    'Xero tenant id (the Xero-Tenant-Id header; the tenantId of webhook events).';
COMMENT ON COLUMN sync.connections.tenant_type IS
    'Xero tenantType as given (ORGANISATION, PRACTICEMANAGER, ...); not constrained.';
COMMENT ON COLUMN sync.connections.xero_connection_id IS
    'Id of the connection in Xero''s /connections list; DELETE /connections/{id} removes it.';
COMMENT ON COLUMN sync.connections.grant_id IS
    'The consent whose tokens act for this tenant; a later consent that includes the tenant '
    'takes it over.';
COMMENT ON COLUMN sync.connections.status IS
    'active: syncing; needs_reauth: the refresh token was refused, a person must connect '
    'again (syncing paused, the reason in last_error); disconnected: revoked or removed; '
    'paused: kept but not scheduled.';
COMMENT ON COLUMN sync.connections.settings IS
    'Per-connection options: conflict policy per entity, entities enabled, schedules, ...';
CREATE INDEX connections_tenant ON sync.connections (tenant_id);
CREATE INDEX connections_grant ON sync.connections (grant_id);
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON sync.connections
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

CREATE TABLE sync.oauth_states (
    state_hash            text PRIMARY KEY,
    organisation_id       uuid NOT NULL REFERENCES app.organisations (id) ON DELETE CASCADE,
    code_verifier_sealed  bytea NOT NULL,
    key_id                text NOT NULL,
    redirect_uri          text NOT NULL,
    scopes                text[] NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);
COMMENT ON TABLE sync.oauth_states IS
    'Pending OAuth authorisations: one row per connect, consumed once by the callback.';
COMMENT ON COLUMN sync.oauth_states.state_hash IS
    'Hex SHA-256 of the CSRF state sent to Xero; the state itself is never stored.';
COMMENT ON COLUMN sync.oauth_states.code_verifier_sealed IS
    'AES-256-GCM of the PKCE code verifier, sealed with key key_id.';
COMMENT ON COLUMN sync.oauth_states.used_at IS
    'Set when the callback consumed the state; a second use is refused.';
CREATE INDEX oauth_states_expires ON sync.oauth_states (expires_at);

CREATE TABLE sync.mappings (
    id                bigserial PRIMARY KEY,
    connection_id     uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    entity            text NOT NULL
                      CHECK (entity IN ('contact', 'invoice', 'payment', 'account',
                                        'bank_transaction')),
    local_id          uuid NOT NULL,
    xero_id           uuid NOT NULL,
    base              jsonb,
    base_checksum     text,
    xero_updated_at   timestamptz,
    local_updated_at  timestamptz,
    last_synced_at    timestamptz,
    sync_version      integer NOT NULL DEFAULT 0,
    last_txid         text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, entity, local_id),
    UNIQUE (connection_id, entity, xero_id)
);
COMMENT ON TABLE sync.mappings IS
    'The link between a local row (app.*) and its Xero record, unique both ways per '
    'connection. local_id has no foreign key (it points into one of several tables); a '
    'mapping of a deleted local row stays until the engine has processed the delete.';
COMMENT ON COLUMN sync.mappings.base IS
    'Canonical form of the record as both sides last agreed on it: the base of three-way '
    'conflict detection and merge.';
COMMENT ON COLUMN sync.mappings.base_checksum IS
    'Hex SHA-256 of the canonical form in base; an equal checksum means nothing to do.';
COMMENT ON COLUMN sync.mappings.xero_updated_at IS
    'Xero UpdatedDateUTC of the record when base was taken.';
COMMENT ON COLUMN sync.mappings.local_updated_at IS
    'app.*.updated_at of the local row when base was taken; a full scan skips rows still at '
    'it. -infinity: the local row is known to differ from the base (it is queued for Xero).';
COMMENT ON COLUMN sync.mappings.sync_version IS
    'Bumped on every sync write of this record; for optimistic concurrency between workers.';
COMMENT ON COLUMN sync.mappings.last_txid IS
    'Id of the engine transaction (xs.txid) that last wrote this record on either side, for '
    'echo detection.';

CREATE TABLE sync.runs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    mode           text NOT NULL
                   CHECK (mode IN ('full', 'incremental', 'push', 'entity', 'initial')),
    direction      text NOT NULL DEFAULT 'both' CHECK (direction IN ('pull', 'push', 'both')),
    trigger        text NOT NULL
                   CHECK (trigger IN ('schedule', 'manual', 'webhook', 'realtime', 'api')),
    entities       text[] NOT NULL DEFAULT '{}'
                   CHECK (entities <@ ARRAY['contact', 'invoice', 'payment', 'account',
                                            'bank_transaction']::text[]),
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'partial',
                                     'canceled')),
    priority       integer NOT NULL DEFAULT 0,
    params         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    phases         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(phases) = 'array'),
    phase          integer NOT NULL DEFAULT 0 CHECK (phase >= 0),
    counts         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counts) = 'object'),
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    CHECK (finished_at IS NULL OR status IN ('succeeded', 'failed', 'partial', 'canceled'))
);
COMMENT ON TABLE sync.runs IS 'One sync run of a connection: what was asked and how it went.';
COMMENT ON COLUMN sync.runs.mode IS
    'full: everything; incremental: changed since the cursors; push: local changes; entity: '
    'the entities listed; initial: the one-time first import.';
COMMENT ON COLUMN sync.runs.entities IS 'Entities the run covers; empty means all enabled.';
COMMENT ON COLUMN sync.runs.priority IS 'Higher runs first (realtime work before scheduled).';
COMMENT ON COLUMN sync.runs.params IS
    'Mode options, e.g. {"months": 12} for the two-phase invoice import, or ids to fetch.';
COMMENT ON COLUMN sync.runs.phases IS
    'What the run does, in order: [{"entity": "contact", "op": "pull"|"push"|"scan"|"fetch"}, '
    '...]; pulls in dependency order, then pushes in dependency order.';
COMMENT ON COLUMN sync.runs.phase IS
    'Index of the phase in progress; a phase starts when every step of the one before is done.';
COMMENT ON COLUMN sync.runs.counts IS
    'Per entity: {"contact": {"processed", "created", "updated", "unchanged", "failed", '
    '"conflicts", "skipped"}, ...}.';
CREATE INDEX runs_connection_created ON sync.runs (connection_id, created_at DESC);
CREATE INDEX runs_queue ON sync.runs (priority DESC, created_at)
    WHERE status IN ('queued', 'running');

CREATE TABLE sync.run_steps (
    id               bigserial PRIMARY KEY,
    run_id           uuid NOT NULL REFERENCES sync.runs (id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    phase            integer NOT NULL DEFAULT 0,
    entity           text NOT NULL
                     CHECK (entity IN ('contact', 'invoice', 'payment', 'account',
                                       'bank_transaction')),
    kind             text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'running', 'done', 'failed')),
    input            jsonb NOT NULL DEFAULT '{}',
    result           jsonb,
    attempts         integer NOT NULL DEFAULT 0,
    idempotency_key  text,
    request_body     text,
    request_items    jsonb,
    not_before       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text,
    UNIQUE (run_id, seq)
);
COMMENT ON TABLE sync.run_steps IS
    'The durable job queue: one bounded unit of a run (one Xero API call: a page, a set of '
    'ids, a batch), retried with back-off until done or failed.';
COMMENT ON COLUMN sync.run_steps.kind IS
    'What the step does, e.g. pull_page, fetch_ids, push_batch.';
COMMENT ON COLUMN sync.run_steps.input IS
    'What the step needs to run again from scratch: the cursor, page, ids or batch.';
COMMENT ON COLUMN sync.run_steps.result IS 'Counts, what comes next, rate headers seen.';
COMMENT ON COLUMN sync.run_steps.idempotency_key IS
    'Sent as Xero''s Idempotency-Key on writes, so a retried push cannot create twice.';
COMMENT ON COLUMN sync.run_steps.request_body IS
    'The exact body of a write, stored before it is sent: a retried step sends these same '
    'bytes with the same Idempotency-Key, so Xero applies it once. Cleared once applied.';
COMMENT ON COLUMN sync.run_steps.request_items IS
    'What each item of request_body stands for (local id, Xero id, the canonical record sent).';
COMMENT ON COLUMN sync.run_steps.not_before IS 'Back-off: do not start before this time.';
CREATE INDEX run_steps_idempotency_key ON sync.run_steps (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX run_steps_ready ON sync.run_steps (not_before)
    WHERE status IN ('pending', 'running');
CREATE INDEX run_steps_run_phase ON sync.run_steps (run_id, phase, status);
CREATE INDEX run_steps_in_flight ON sync.run_steps (run_id) WHERE request_body IS NOT NULL;

CREATE TABLE sync.run_item_errors (
    id          bigserial PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES sync.runs (id) ON DELETE CASCADE,
    step_id     bigint REFERENCES sync.run_steps (id) ON DELETE SET NULL,
    entity      text NOT NULL
                CHECK (entity IN ('contact', 'invoice', 'payment', 'account',
                                  'bank_transaction')),
    local_id    uuid,
    xero_id     uuid,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sync.run_item_errors IS
    'Records that failed within a run (validation errors from Xero, blocked dependencies).';
CREATE INDEX run_item_errors_run ON sync.run_item_errors (run_id);

CREATE TABLE sync.cursors (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    entity         text NOT NULL
                   CHECK (entity IN ('contact', 'invoice', 'payment', 'account',
                                     'bank_transaction')),
    high_water     timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, entity)
);
COMMENT ON TABLE sync.cursors IS 'Incremental pull position per connection and entity.';
COMMENT ON COLUMN sync.cursors.high_water IS
    'Greatest Xero UpdatedDateUTC fully pulled; the next incremental pull asks for records '
    'modified since (If-Modified-Since). NULL: never pulled.';
CREATE TRIGGER touch_updated_at BEFORE INSERT OR UPDATE ON sync.cursors
    FOR EACH ROW EXECUTE FUNCTION sync.touch_updated_at();

CREATE TABLE sync.schedules (
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('full', 'incremental')),
    next_run_at    timestamptz NOT NULL,
    settings       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    PRIMARY KEY (connection_id, kind)
);
COMMENT ON TABLE sync.schedules IS 'When the scheduler next starts a run of each kind.';
COMMENT ON COLUMN sync.schedules.settings IS
    'E.g. {"enabled": true, "at": "02:00"} for full, {"every_minutes": 15} for incremental.';
CREATE INDEX schedules_due ON sync.schedules (next_run_at);

CREATE TABLE sync.conflicts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connection_id  uuid NOT NULL REFERENCES sync.connections (id) ON DELETE CASCADE,
    entity         text NOT NULL
                   CHECK (entity IN ('contact', 'invoice', 'payment', 'account',
                                     'bank_transaction')),
    local_id       uuid NOT NULL,
    xero_id        uuid,
    base           jsonb,
    local_version  jsonb,
    xero_version   jsonb,
    policy         text NOT NULL
                   CHECK (policy IN ('last_write_wins', 'local_wins', 'xero_wins', 'manual',
                                     'merge')),
    status         text NOT NULL DEFAULT 'PENDING'
                   CHECK (status IN ('PENDING', 'RESOLVED', 'IGNORED')),
    resolution     text CHECK (resolution IN ('KEEP_LOCAL', 'KEEP_XERO', 'MERGED', 'AUTO')),
    resolved_by    text,
    resolved_at    timestamptz,
    merged_data    jsonb,
    reason         text,
    detected_at    timestamptz NOT NULL DEFAULT now(),
    run_id         uuid REFERENCES sync.runs (id) ON DELETE SET NULL,
    CHECK ((status = 'RESOLVED') = (resolution IS NOT NULL)),
    CHECK (resolution IS DISTINCT FROM 'MERGED' OR merged_data IS NOT NULL)
);
COMMENT ON TABLE sync.conflicts IS
    'Records changed on both sides since the base, with all three versions. Conflicts a '
    'policy settled are kept as RESOLVED/AUTO (every decision is logged); manual ones wait '
    'as PENDING for a person.';
COMMENT ON COLUMN sync.conflicts.policy IS 'The policy in force when it was detected.';
COMMENT ON COLUMN sync.conflicts.resolved_by IS 'Who settled it: a user id, or "engine".';
COMMENT ON COLUMN sync.conflicts.merged_data IS 'The chosen canonical form for MERGED.';
CREATE UNIQUE INDEX conflicts_one_pending ON sync.conflicts (connection_id, entity, local_id)
    WHERE status = 'PENDING';
CREATE INDEX conflicts_connection_detected ON sync.conflicts (connection_id, detected_at DESC);

CREATE SEQUENCE sync.changes_seq;
CREATE TABLE sync.changes (
    id               bigserial PRIMARY KEY,
    organisation_id  uuid NOT NULL,
    entity           text NOT NULL CHECK (entity IN ('contact', 'invoice', 'payment')),
    local_id         uuid NOT NULL,
    op               text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    seq              bigint NOT NULL DEFAULT nextval('sync.changes_seq'),
    changed_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    processed_at     timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text
);
ALTER SEQUENCE sync.changes_seq OWNED BY sync.changes.seq;
COMMENT ON TABLE sync.changes IS
    'The outbox of local changes, written by triggers on app.* (not for writes the engine '
    'marked as its own, and not for TRUNCATE). At most one unprocessed row per record: a '
    'newer change updates it (op, changed_at, a new seq). No foreign key to organisations, '
    'so deleting an organisation (whose cascaded deletes write here) cannot fail.';
COMMENT ON COLUMN sync.changes.op IS
    'A hint of what happened (insert, update, delete), coalesced: a pending insert stays '
    'insert, a delete wins. The engine reads the current row to decide.';
COMMENT ON COLUMN sync.changes.seq IS
    'Order of the latest change, from sync.changes_seq; bumped on every coalesced change. A '
    'worker finishes a row with UPDATE ... SET processed_at = now() WHERE id = $1 AND seq = '
    '$2: when the record changed again meanwhile, seq differs and the row stays pending.';
COMMENT ON COLUMN sync.changes.claimed_at IS
    'When a worker took the row; a claim older than the step timeout may be taken again.';
CREATE UNIQUE INDEX changes_one_pending ON sync.changes (organisation_id, entity, local_id)
    WHERE processed_at IS NULL;
CREATE INDEX changes_pending ON sync.changes (organisation_id, seq) WHERE processed_at IS NULL;
CREATE INDEX changes_processed ON sync.changes (processed_at) WHERE processed_at IS NOT NULL;

CREATE TABLE sync.webhook_events (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    tenant_id       uuid NOT NULL,
    event_category  text NOT NULL CHECK (event_category ~ '^[A-Z_]+$'),
    event_type      text NOT NULL CHECK (event_type ~ '^[A-Z_]+$'),
    resource_id     uuid NOT NULL,
    resource_url    text,
    event_date_utc  timestamptz NOT NULL,
    raw             jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'processing', 'done', 'failed', 'ignored')),
    attempts        integer NOT NULL DEFAULT 0,
    error           text,
    processed_at    timestamptz,
    UNIQUE (tenant_id, event_category, event_type, resource_id, event_date_utc)
);
COMMENT ON TABLE sync.webhook_events IS
    'The inbox of Xero webhook events, stored before the HTTP answer; a redelivered event '
    'hits the unique key and is stored once (INSERT ... ON CONFLICT DO NOTHING).';
COMMENT ON COLUMN sync.webhook_events.event_category IS 'Xero eventCategory: CONTACT, INVOICE, ...';
COMMENT ON COLUMN sync.webhook_events.event_type IS 'Xero eventType: CREATE, UPDATE, ...';
COMMENT ON COLUMN sync.webhook_events.raw IS 'The event object exactly as received.';
COMMENT ON COLUMN sync.webhook_events.status IS
    'ignored: for a tenant with no active connection, or a category not synced.';
CREATE INDEX webhook_events_pending ON sync.webhook_events (received_at)
    WHERE status IN ('pending', 'processing');

CREATE TABLE sync.api_calls (
    id                 bigserial PRIMARY KEY,
    at                 timestamptz NOT NULL DEFAULT now(),
    connection_id      uuid REFERENCES sync.connections (id) ON DELETE SET NULL,
    tenant_id          uuid,
    run_id             uuid,
    step_id            bigint,
    method             text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'DELETE', 'PATCH')),
    path               text NOT NULL,
    status             integer,
    duration_ms        integer CHECK (duration_ms >= 0),
    min_remaining      integer,
    day_remaining      integer,
    app_min_remaining  integer,
    retry_after        integer,
    rate_problem       text,
    error              text
);
COMMENT ON TABLE sync.api_calls IS
    'Audit of every call to Xero. run_id and step_id are plain values, not foreign keys, so '
    'the audit outlives the runs it belongs to and costs no lookups to write.';
COMMENT ON COLUMN sync.api_calls.path IS 'Path and query, without host; never a token.';
COMMENT ON COLUMN sync.api_calls.status IS 'HTTP status; NULL when the call failed in transport.';
COMMENT ON COLUMN sync.api_calls.min_remaining IS 'X-MinLimit-Remaining (per tenant, per minute).';
COMMENT ON COLUMN sync.api_calls.day_remaining IS 'X-DayLimit-Remaining (per tenant, per day).';
COMMENT ON COLUMN sync.api_calls.app_min_remaining IS
    'X-AppMinLimit-Remaining (whole app, per minute).';
COMMENT ON COLUMN sync.api_calls.retry_after IS 'Retry-After in seconds, on a 429.';
COMMENT ON COLUMN sync.api_calls.rate_problem IS
    'X-Rate-Limit-Problem on a 429: minute, day, appminute or concurrent.';
CREATE INDEX api_calls_connection_at ON sync.api_calls (connection_id, at);
CREATE INDEX api_calls_at ON sync.api_calls (at);
CREATE INDEX api_calls_run ON sync.api_calls (run_id) WHERE run_id IS NOT NULL;
