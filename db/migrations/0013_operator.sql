-- 0013_operator: what the operator routes need (docs/API.md): a run's cancellation, and a
-- conflict a person chose to ignore.
--
-- sync.runs.cancel_requested_at: when POST /v1/runs/{id}/cancel asked to stop the run. From
-- then no step of it is started; a step under way finishes (its writes are whole) and the run
-- ends `canceled` (finished_at set). A run still `running` with it set is one whose last step
-- has not finished yet; at a restart the orchestrator ends it instead of resuming it.
ALTER TABLE sync.runs ADD COLUMN cancel_requested_at timestamptz;
COMMENT ON COLUMN sync.runs.cancel_requested_at IS
    'When cancelling the run was asked for (POST /v1/runs/{id}/cancel); no step of it starts '
    'after this, and it ends canceled once the step under way (if any) has finished.';

-- A conflict resolved as IGNORED keeps status IGNORED with resolution IGNORED: nothing is
-- sent either way, and while neither side changes the record again (its local and Xero
-- versions are still those of the conflict) no run raises it again (engine/mappings.c,
-- map_ignored_conflicts). Every settled conflict says how it was settled.
ALTER TABLE sync.conflicts DROP CONSTRAINT conflicts_resolution_check;
ALTER TABLE sync.conflicts DROP CONSTRAINT conflicts_check;
ALTER TABLE sync.conflicts ADD CONSTRAINT conflicts_resolution_check
    CHECK (resolution IN ('KEEP_LOCAL', 'KEEP_XERO', 'MERGED', 'AUTO', 'IGNORED'));
ALTER TABLE sync.conflicts ADD CONSTRAINT conflicts_settled_check
    CHECK ((status = 'PENDING') = (resolution IS NULL)
           AND (status = 'IGNORED') = (resolution IS NOT DISTINCT FROM 'IGNORED'));
COMMENT ON COLUMN sync.conflicts.status IS
    'PENDING: held for a person; RESOLVED: settled (by a policy: resolution AUTO, or a person); '
    'IGNORED: a person chose to leave the divergence as it is, until either side changes again.';

-- The conflicts of one record, latest first: what the runs read to tell whether the last one
-- was ignored.
CREATE INDEX conflicts_record ON sync.conflicts (connection_id, entity, local_id, detected_at DESC);
