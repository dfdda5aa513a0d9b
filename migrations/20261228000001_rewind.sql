-- leadsync schema: `leadsync state rewind` moves a bot's high-water mark back on purpose and
-- records it in the ledger as a row of its own kind. Such a row is not a sync: the freshness
-- view's last run and last success leave it out.

ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_kind_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_kind_check
    CHECK (kind IN ('sync', 'backfill', 'repair', 'rewind'));

COMMENT ON COLUMN sync_runs.kind IS 'sync (scheduled or `leadsync sync`), backfill (`leadsync backfill`, a chosen range), repair (`leadsync verify --repair`), rewind (`leadsync state rewind`: no request made; hwm_before and hwm_after are the mark moved back, range_start the day it was moved to).';

CREATE OR REPLACE VIEW sync_freshness AS
WITH known AS (
    SELECT bot_uid FROM bots
    UNION
    SELECT bot_uid FROM sync_state
)
SELECT k.bot_uid,
       b.name AS bot_name,
       ok.finished_at AS last_success_at,
       now() - ok.finished_at AS since_last_success,
       s.high_water_mark AS newest_lead_at,
       now() - s.high_water_mark AS newest_lead_lag,
       r.status AS last_run_status,
       r.kind AS last_run_kind,
       r.started_at AS last_run_started_at,
       r.finished_at AS last_run_finished_at
  FROM known k
  LEFT JOIN bots b USING (bot_uid)
  LEFT JOIN sync_state s USING (bot_uid)
  LEFT JOIN LATERAL (
        SELECT status, kind, started_at, finished_at FROM sync_runs
         WHERE sync_runs.bot_uid = k.bot_uid AND kind <> 'rewind'
         ORDER BY started_at DESC LIMIT 1) r ON true
  LEFT JOIN LATERAL (
        SELECT finished_at FROM sync_runs
         WHERE sync_runs.bot_uid = k.bot_uid AND status = 'succeeded' AND kind <> 'rewind'
         ORDER BY started_at DESC LIMIT 1) ok ON true;
