-- leadsync schema, part 1: the leads (the analysts' contract) and the sync bookkeeping.

CREATE TABLE leads (
    conversation_uid text        PRIMARY KEY,
    bot_uid          text        NOT NULL,
    created_at       timestamptz NOT NULL,
    name             text,
    email            text,
    phone            text,
    remark           text,
    raw              jsonb       NOT NULL,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_changed_at  timestamptz NOT NULL DEFAULT now()
);

-- The analysts' usual questions are "this bot, this period" and "everything, this period".
CREATE INDEX leads_bot_created_at_idx ON leads (bot_uid, created_at DESC);
CREATE INDEX leads_created_at_idx ON leads (created_at DESC);

COMMENT ON TABLE leads IS 'One row per lead collected by a ChatofAI chatbot, kept in sync by leadsync. Personal data: names, emails, phones and remarks typed by website visitors.';
COMMENT ON COLUMN leads.conversation_uid IS 'ChatofAI conversation the lead came from; unique per lead.';
COMMENT ON COLUMN leads.bot_uid IS 'ChatofAI bot that collected the lead.';
COMMENT ON COLUMN leads.created_at IS 'When ChatofAI recorded the lead (stored in UTC; the API may send any offset).';
COMMENT ON COLUMN leads.name IS 'Name as typed by the visitor, exactly as received. NULL when the API sent null or nothing; empty string when it sent an empty string.';
COMMENT ON COLUMN leads.email IS 'Email as typed by the visitor, exactly as received (not validated). NULL when absent.';
COMMENT ON COLUMN leads.phone IS 'Phone as typed by the visitor, exactly as received (not normalised). NULL when absent.';
COMMENT ON COLUMN leads.remark IS 'Free-text remark left by the visitor, exactly as received. NULL when absent.';
COMMENT ON COLUMN leads.raw IS 'The lead record exactly as the API sent it (U+0000 replaced by U+FFFD), including fields added by ChatofAI after this schema was written.';
COMMENT ON COLUMN leads.first_seen_at IS 'When leadsync first stored this lead.';
COMMENT ON COLUMN leads.last_changed_at IS 'When leadsync last stored a change to this lead (equal to first_seen_at if never changed).';

CREATE TABLE sync_state (
    bot_uid         text        PRIMARY KEY,
    high_water_mark timestamptz,
    resume_from     date,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE sync_state IS 'Per-bot sync position. Moves only in the same transaction as the leads it covers.';
COMMENT ON COLUMN sync_state.bot_uid IS 'ChatofAI bot.';
COMMENT ON COLUMN sync_state.high_water_mark IS 'Latest created_at among committed leads as of the last completed window; never ahead of committed data. A run re-reads from this minus the lookback.';
COMMENT ON COLUMN sync_state.resume_from IS 'Last day of the last completed window: where an interrupted backfill resumes.';
COMMENT ON COLUMN sync_state.updated_at IS 'When the position last moved.';

CREATE TABLE sync_runs (
    run_id          uuid        PRIMARY KEY,
    bot_uid         text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    range_start     date,
    range_end       date,
    windows         integer     NOT NULL DEFAULT 0,
    pages           integer     NOT NULL DEFAULT 0,
    requests        integer     NOT NULL DEFAULT 0,
    retries         integer     NOT NULL DEFAULT 0,
    rereads         integer     NOT NULL DEFAULT 0,
    fetched         integer     NOT NULL DEFAULT 0,
    inserted        integer     NOT NULL DEFAULT 0,
    updated         integer     NOT NULL DEFAULT 0,
    unchanged       integer     NOT NULL DEFAULT 0,
    rejected        integer     NOT NULL DEFAULT 0,
    incomplete_windows integer  NOT NULL DEFAULT 0,
    hwm_before      timestamptz,
    hwm_after       timestamptz,
    error           text
);

CREATE INDEX sync_runs_bot_started_idx ON sync_runs (bot_uid, started_at DESC);

COMMENT ON TABLE sync_runs IS 'Run ledger: one row per bot per sync run. Holds counts, ids and error summaries, never lead content.';
COMMENT ON COLUMN sync_runs.run_id IS 'Also the run_id field of the run''s log lines.';
COMMENT ON COLUMN sync_runs.status IS 'running, succeeded, failed, or abandoned (the process died mid-run; found by the next run of that bot).';
COMMENT ON COLUMN sync_runs.range_start IS 'First API day the run asked for.';
COMMENT ON COLUMN sync_runs.range_end IS 'Last API day the run asked for (the day after today, UTC).';
COMMENT ON COLUMN sync_runs.windows IS 'Windows completed (each commits and moves the high-water mark).';
COMMENT ON COLUMN sync_runs.pages IS 'Pages of leads received.';
COMMENT ON COLUMN sync_runs.requests IS 'HTTP requests made, retries and window-sizing probes included.';
COMMENT ON COLUMN sync_runs.retries IS 'Requests retried after a transient failure.';
COMMENT ON COLUMN sync_runs.rereads IS 'Windows read again because the count did not match the API''s total.';
COMMENT ON COLUMN sync_runs.fetched IS 'Records received (duplicates across pages included).';
COMMENT ON COLUMN sync_runs.inserted IS 'Leads stored for the first time.';
COMMENT ON COLUMN sync_runs.updated IS 'Leads whose content changed since last stored.';
COMMENT ON COLUMN sync_runs.unchanged IS 'Leads received again with no change (not rewritten).';
COMMENT ON COLUMN sync_runs.rejected IS 'Records that could not be stored as leads (see rejected_leads).';
COMMENT ON COLUMN sync_runs.incomplete_windows IS 'Windows that still read fewer leads than the API''s total after all re-reads.';
COMMENT ON COLUMN sync_runs.hwm_before IS 'High-water mark when the run started.';
COMMENT ON COLUMN sync_runs.hwm_after IS 'High-water mark when the run ended.';
COMMENT ON COLUMN sync_runs.error IS 'Why the run failed: error kind, HTTP status and request_id; never lead content or the API key.';

CREATE TABLE rejected_leads (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bot_uid          text        NOT NULL,
    reason           text        NOT NULL,
    conversation_uid text,
    raw              jsonb       NOT NULL,
    raw_md5          text        NOT NULL GENERATED ALWAYS AS (md5(raw::text)) STORED,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at     timestamptz NOT NULL DEFAULT now(),
    times_seen       integer     NOT NULL DEFAULT 1,
    last_run_id      uuid        NOT NULL,
    UNIQUE (bot_uid, raw_md5)
);

COMMENT ON TABLE rejected_leads IS 'Records the API sent that could not be stored as leads, kept for an operator to inspect. One row per distinct payload per bot.';
COMMENT ON COLUMN rejected_leads.reason IS 'not_an_object, missing_conversation_uid, missing_created_at, invalid_created_at or bot_uid_mismatch.';
COMMENT ON COLUMN rejected_leads.conversation_uid IS 'The record''s conversation_uid when it had a usable one.';
COMMENT ON COLUMN rejected_leads.raw IS 'The record exactly as received (personal data: handle like leads).';
COMMENT ON COLUMN rejected_leads.raw_md5 IS 'Identifies the payload, so a record re-read by every run is kept once.';
COMMENT ON COLUMN rejected_leads.times_seen IS 'How many times the API served this exact record.';
COMMENT ON COLUMN rejected_leads.last_run_id IS 'The last run that received it (sync_runs.run_id).';
