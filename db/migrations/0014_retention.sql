-- 0014_retention: indexes that make the orchestrator's pruning of old history cheap
-- (services/orchestrator/retention.c; docs/ARCHITECTURE.md, "Retention").
--
-- Each pruning statement takes the oldest rows past their cut-off, a few hundred at a time:
-- runs by when they finished, processed webhook events by when they were processed (the
-- outbox's processed changes and the API-call audit have such indexes already:
-- changes_processed, api_calls_at). Deleting a run deletes its steps and item errors, and
-- PostgreSQL then looks for the rows that point at them: conflicts by run (ON DELETE SET
-- NULL) and item errors by step (ON DELETE SET NULL) had no index, so every deleted run or
-- step read the whole of those tables.
CREATE INDEX runs_finished ON sync.runs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX webhook_events_processed ON sync.webhook_events (coalesce(processed_at, received_at))
    WHERE status IN ('done', 'failed', 'ignored');
CREATE INDEX conflicts_run ON sync.conflicts (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX run_item_errors_step ON sync.run_item_errors (step_id) WHERE step_id IS NOT NULL;
