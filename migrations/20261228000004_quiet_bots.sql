-- leadsync schema: a bot gone quiet. A bot whose widget broke stops producing leads while every
-- run still succeeds. From each bot's own history: its usual gap between leads (the 90th
-- percentile of the gaps between its last 500 leads of the last 90 days, once there are at
-- least 10), and a silence far longer than that (8 times, and at least 6 hours) is "quiet".
-- A bot that usually gets a lead a week is quiet only after about two months of nothing; one
-- with a lead an hour, after about a day.

CREATE FUNCTION bot_usual_gap(bot text) RETURNS interval
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN count(*) >= 10 THEN percentile_cont(0.9) WITHIN GROUP (ORDER BY gap) END
      FROM (SELECT created_at - lag(created_at) OVER (ORDER BY created_at) AS gap
              FROM (SELECT created_at FROM leads
                     WHERE bot_uid = bot AND created_at > now() - interval '90 days'
                     ORDER BY created_at DESC LIMIT 501) recent) gaps
     WHERE gap IS NOT NULL
    $$;
COMMENT ON FUNCTION bot_usual_gap(text) IS 'A bot''s usual gap between leads: the 90th percentile of the gaps between its last 500 leads of the last 90 days; NULL with fewer than 10 gaps.';

CREATE FUNCTION bot_quiet_after(usual_gap interval) RETURNS interval
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT greatest(usual_gap * 8, interval '6 hours') $$;
COMMENT ON FUNCTION bot_quiet_after(interval) IS 'How long a silence makes a bot quiet: 8 times its usual gap, at least 6 hours; NULL without a usual gap (never quiet).';

ALTER TABLE sync_state ADD COLUMN quiet_since timestamptz;
COMMENT ON COLUMN sync_state.quiet_since IS 'When a run first found the bot quiet (its silence past bot_quiet_after(bot_usual_gap)); NULL when it is not. Makes the bot_quiet event once per silence.';

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
       r.finished_at AS last_run_finished_at,
       g.usual_gap,
       coalesce(now() - s.high_water_mark > bot_quiet_after(g.usual_gap), false) AS quiet
  FROM known k
  LEFT JOIN bots b USING (bot_uid)
  LEFT JOIN sync_state s USING (bot_uid)
  LEFT JOIN LATERAL (SELECT bot_usual_gap(k.bot_uid) AS usual_gap) g ON true
  LEFT JOIN LATERAL (
        SELECT status, kind, started_at, finished_at FROM sync_runs
         WHERE sync_runs.bot_uid = k.bot_uid AND kind <> 'rewind'
         ORDER BY started_at DESC LIMIT 1) r ON true
  LEFT JOIN LATERAL (
        SELECT finished_at FROM sync_runs
         WHERE sync_runs.bot_uid = k.bot_uid AND status = 'succeeded' AND kind <> 'rewind'
         ORDER BY started_at DESC LIMIT 1) ok ON true;

COMMENT ON COLUMN sync_freshness.usual_gap IS 'The bot''s usual gap between leads (bot_usual_gap); NULL with fewer than 10 leads in 90 days.';
COMMENT ON COLUMN sync_freshness.quiet IS 'true when the bot''s newest lead is older than 8 times its usual gap (at least 6 hours): a widget that may have stopped working. Never for a bot without a usual gap.';
