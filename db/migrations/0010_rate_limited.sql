-- 0010_rate_limited: a connection's tenant blocked by Xero's day limit, kept across restarts
-- (docs/ARCHITECTURE.md, "The rate budget").
--
-- The orchestrator writes rate_limited_until when its budget blocks the tenant by the day
-- limit (a 429 with X-Rate-Limit-Problem: day holds it exactly until Retry-After; a reply
-- that says no calls are left, without saying until when, holds it until one probe call may
-- go), moves it when that time moves, and clears both columns when the block ends. At start
-- it holds every tenant whose connections hold a time, so a restart sends no call into a
-- known block. The API shows both on the connection, its statistics and its waiting runs.
ALTER TABLE sync.connections ADD COLUMN rate_limited_until timestamptz;
ALTER TABLE sync.connections ADD COLUMN rate_limited_problem text;
ALTER TABLE sync.connections ADD CONSTRAINT connections_rate_limited
    CHECK ((rate_limited_until IS NULL) = (rate_limited_problem IS NULL)
           AND (rate_limited_problem IS NULL OR rate_limited_problem IN ('day')));
COMMENT ON COLUMN sync.connections.rate_limited_until IS
    'When calls to the tenant may go again, as far as known, while the rate budget blocks it '
    'by Xero''s day limit: the end a 429''s Retry-After gave, when the next probe call goes, or '
    'when the engine''s own count frees a call; NULL when it is not blocked (migration 0010).';
COMMENT ON COLUMN sync.connections.rate_limited_problem IS
    'What blocks the tenant, in the terms of Xero''s X-Rate-Limit-Problem: day; NULL with '
    'rate_limited_until.';
