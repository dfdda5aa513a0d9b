-- leadsync schema, part 3: views for the analysts' usual questions, so they never need the
-- sync bookkeeping tables (sync_state, sync_runs, rejected_leads), and the bots' names from
-- the configuration, which `sync` and `run` record at start.
--
-- The views are ordinary (not security_invoker) views: they read with their owner's rights, so
-- an analyst granted SELECT on a view needs no right on the tables behind it
-- (deploy/sql/roles.sql grants exactly that).

CREATE TABLE bots (
    bot_uid    text        PRIMARY KEY,
    name       text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE bots IS 'The bots in leadsync''s configuration, with their names; recorded by `leadsync sync` and `leadsync run` at start. A bot removed from the configuration stays here.';
COMMENT ON COLUMN bots.bot_uid IS 'ChatofAI bot uid (leads.bot_uid).';
COMMENT ON COLUMN bots.name IS 'The configured [[bots]] name, a label for people; NULL when none is configured.';
COMMENT ON COLUMN bots.updated_at IS 'When the name last changed.';

CREATE VIEW leads_per_bot_day AS
SELECT l.bot_uid,
       b.name AS bot_name,
       (l.created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS leads
  FROM leads l
  LEFT JOIN bots b USING (bot_uid)
 GROUP BY l.bot_uid, b.name, (l.created_at AT TIME ZONE 'UTC')::date;

COMMENT ON VIEW leads_per_bot_day IS 'Leads per bot per UTC day (days without leads have no row).';
COMMENT ON COLUMN leads_per_bot_day.bot_uid IS 'ChatofAI bot that collected the leads.';
COMMENT ON COLUMN leads_per_bot_day.bot_name IS 'The bot''s configured name; NULL when none is configured.';
COMMENT ON COLUMN leads_per_bot_day.day IS 'The UTC day of the leads'' created_at (whatever the session time zone).';
COMMENT ON COLUMN leads_per_bot_day.leads IS 'Leads created that day.';

CREATE VIEW latest_leads AS
SELECT l.created_at,
       l.bot_uid,
       b.name AS bot_name,
       l.conversation_uid,
       l.name,
       l.email,
       l.phone,
       l.remark,
       l.raw
  FROM leads l
  LEFT JOIN bots b USING (bot_uid)
 WHERE l.created_at > now() - interval '30 days'
 ORDER BY l.created_at DESC;

COMMENT ON VIEW latest_leads IS 'Leads of the last 30 days, newest first, with the bot''s configured name. Personal data.';
COMMENT ON COLUMN latest_leads.created_at IS 'When ChatofAI recorded the lead.';
COMMENT ON COLUMN latest_leads.bot_uid IS 'ChatofAI bot that collected the lead.';
COMMENT ON COLUMN latest_leads.bot_name IS 'The bot''s configured name; NULL when none is configured.';
COMMENT ON COLUMN latest_leads.conversation_uid IS 'ChatofAI conversation the lead came from; unique per lead.';
COMMENT ON COLUMN latest_leads.name IS 'Name as typed by the visitor; NULL when absent.';
COMMENT ON COLUMN latest_leads.email IS 'Email as typed by the visitor (not validated); NULL when absent.';
COMMENT ON COLUMN latest_leads.phone IS 'Phone as typed by the visitor (not normalised); NULL when absent.';
COMMENT ON COLUMN latest_leads.remark IS 'Free-text remark left by the visitor; NULL when absent.';
COMMENT ON COLUMN latest_leads.raw IS 'The record as the API sent it: raw->>''field'' reaches fields ChatofAI added after this schema was written.';

-- One row per bot known from the configuration or from a sync; index-backed lookups of each
-- bot's newest run, so the view stays cheap however long the ledger grows.
CREATE VIEW sync_freshness AS
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
         WHERE sync_runs.bot_uid = k.bot_uid
         ORDER BY started_at DESC LIMIT 1) r ON true
  LEFT JOIN LATERAL (
        SELECT finished_at FROM sync_runs
         WHERE sync_runs.bot_uid = k.bot_uid AND status = 'succeeded'
         ORDER BY started_at DESC LIMIT 1) ok ON true;

COMMENT ON VIEW sync_freshness IS 'Per bot: how fresh the copy is, for a dashboard. Built on the sync bookkeeping, which analysts need not read.';
COMMENT ON COLUMN sync_freshness.bot_uid IS 'ChatofAI bot.';
COMMENT ON COLUMN sync_freshness.bot_name IS 'The bot''s configured name; NULL when none is configured.';
COMMENT ON COLUMN sync_freshness.last_success_at IS 'When the bot''s last successful run finished; NULL if none has.';
COMMENT ON COLUMN sync_freshness.since_last_success IS 'now() - last_success_at: alert when this grows past a few schedule intervals.';
COMMENT ON COLUMN sync_freshness.newest_lead_at IS 'created_at of the newest lead stored (the high-water mark); NULL before the first lead.';
COMMENT ON COLUMN sync_freshness.newest_lead_lag IS 'now() - newest_lead_at: how old the newest stored lead is (large for a quiet bot, too).';
COMMENT ON COLUMN sync_freshness.last_run_status IS 'Status of the bot''s latest run: running, succeeded, failed, interrupted or abandoned.';
COMMENT ON COLUMN sync_freshness.last_run_kind IS 'sync, backfill or repair.';
COMMENT ON COLUMN sync_freshness.last_run_started_at IS 'When the latest run started.';
COMMENT ON COLUMN sync_freshness.last_run_finished_at IS 'When the latest run finished; NULL while it runs.';
