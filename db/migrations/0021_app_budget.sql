-- 0021_app_budget: the app-wide rate budget shared by every orchestrator of a deployment
-- (services/orchestrator/appbudget.c; docs/ARCHITECTURE.md, "The shared app budget").
--
-- Xero limits calls per minute across every tenant of the app. Each orchestrator takes the
-- app's permits from this ledger in small chunks (a row: who holds it, when it was granted,
-- how many permits, how many of them were given back unused), and spends a chunk only within
-- its time to live after the grant. A chunk therefore counts, for whoever asks next, from its
-- grant until a window (the minute, its margin and the time to live) has passed: any call made
-- with its permits is covered for a whole minute after it left. Grants are serialized by one
-- advisory lock, taken for the transaction of sync.app_budget_take; the time is the database's
-- own (clock_timestamp()), so the orchestrators' clocks never matter. A holder that dies
-- leaves its chunks counted until they leave the window: safe, and they free themselves.
CREATE TABLE sync.app_budget_grants (
    id         bigserial PRIMARY KEY,
    holder     text NOT NULL CHECK (length(holder) BETWEEN 1 AND 200),
    granted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    permits    integer NOT NULL CHECK (permits > 0),
    returned   integer NOT NULL DEFAULT 0 CHECK (returned >= 0 AND returned <= permits)
);
CREATE INDEX app_budget_grants_at ON sync.app_budget_grants (granted_at);

-- sync.app_budget_take grants holder up to p_want permits, as many as leave the chunks counted
-- in the last p_window_ms (permits less those given back) at most p_limit; p_force grants
-- p_want whatever is left (calls already made, to be counted: they may take the sum past the
-- limit, and the others then wait). It answers the chunk's id and permits (no row when none
-- was granted), how many are counted now, and when (ms from now) the oldest counted chunk
-- leaves the window. Rows long out of every window are deleted on the way.
CREATE FUNCTION sync.app_budget_take(p_holder text, p_want integer, p_limit integer,
                                     p_window_ms bigint, p_force boolean DEFAULT false)
RETURNS TABLE (grant_id bigint, permits integer, counted bigint, frees_in_ms bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now    timestamptz;
    v_since  timestamptz;
    v_used   bigint;
    v_oldest timestamptz;
    v_got    integer;
    v_id     bigint;
BEGIN
    IF p_want < 1 OR p_limit < 1 OR p_window_ms < 1 THEN
        RAISE EXCEPTION 'app_budget_take: want, limit and window must be positive'
            USING ERRCODE = '22023';
    END IF;
    -- One grant at a time across the deployment: the sum read below is not raced. The key is
    -- "xs-appbu" in ASCII, beside the migrator's and the retention's own.
    PERFORM pg_advisory_xact_lock(8679330803394568821);
    v_now := clock_timestamp();
    v_since := v_now - p_window_ms * interval '1 millisecond';
    DELETE FROM sync.app_budget_grants g WHERE g.granted_at < v_since - interval '10 minutes';
    SELECT coalesce(sum(g.permits - g.returned), 0), min(g.granted_at)
      INTO v_used, v_oldest
      FROM sync.app_budget_grants g
     WHERE g.granted_at > v_since AND g.permits > g.returned;
    v_got := CASE WHEN p_force THEN p_want ELSE least(p_want, p_limit - v_used)::integer END;
    IF v_got > 0 THEN
        INSERT INTO sync.app_budget_grants (holder, granted_at, permits)
        VALUES (p_holder, v_now, v_got) RETURNING id INTO v_id;
        v_used := v_used + v_got;
        v_oldest := coalesce(v_oldest, v_now);
    END IF;
    RETURN QUERY SELECT v_id, greatest(v_got, 0), v_used,
        coalesce(ceil(extract(epoch FROM v_oldest + p_window_ms * interval '1 millisecond'
                                         - v_now) * 1000)::bigint, 0);
END $$;

-- sync.app_budget_give_back records that n permits of chunk p_id were never used: they no
-- longer count (at most the chunk's permits are ever given back).
CREATE FUNCTION sync.app_budget_give_back(p_id bigint, p_n integer) RETURNS void
LANGUAGE sql AS $$
    UPDATE sync.app_budget_grants SET returned = least(permits, returned + greatest(p_n, 0))
     WHERE id = p_id;
$$;
