-- leadsync schema, part 5: what leadsync has learned about the API's undocumented behaviour,
-- per bot (what `total` counts, the listing's order, whether `end_date` is inclusive, how far
-- listed leads lie outside their range, the page size served). Bookkeeping: no lead content.

CREATE TABLE api_beliefs (
    bot_uid    text        PRIMARY KEY,
    beliefs    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE api_beliefs IS 'What leadsync has learned about the ChatofAI API for each bot (see README, "What leadsync learns about the API"). Saved with the high-water mark it plans from; `leadsync check` and `status --json` show it. Deleting a row makes leadsync learn again from the safest assumptions.';
COMMENT ON COLUMN api_beliefs.beliefs IS 'The learned facts as JSON: total (unknown, filtered, whole_bot, absent, untrusted), order evidence, end_date, early_secs/late_secs (how far listed leads lie outside their range), served page size, leads per day, when the empty-range probe last ran.';
COMMENT ON COLUMN api_beliefs.updated_at IS 'When the beliefs were last saved.';
