-- leadsync schema, part 2: runs can be interrupted by a shutdown, and are scheduled syncs,
-- backfills of a chosen range, or verify repairs.

ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'abandoned'));
ALTER TABLE sync_runs ADD COLUMN kind text NOT NULL DEFAULT 'sync'
    CHECK (kind IN ('sync', 'backfill', 'repair'));

COMMENT ON COLUMN sync_runs.status IS 'running, succeeded, failed, interrupted (stopped by a shutdown; its committed pages stay), or abandoned (the process died mid-run; found by the next run of that bot).';
COMMENT ON COLUMN sync_runs.kind IS 'sync (scheduled or `leadsync sync`), backfill (`leadsync backfill`, a chosen range), repair (`leadsync verify --repair`).';
