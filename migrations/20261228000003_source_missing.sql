-- leadsync schema: leads the API no longer lists. `verify` (and the check after a repair) marks
-- a stored lead that the API does not list any more for its day, and clears the mark when it is
-- listed again: leadsync never deletes a lead on its own. `current_leads` leaves the marked out.

ALTER TABLE leads ADD COLUMN source_missing_since timestamptz;

COMMENT ON COLUMN leads.source_missing_since IS 'When a verify first found the API no longer listing this lead (deleted in ChatofAI, most likely); NULL while it is listed. Cleared when it is listed again. The lead is kept: see current_leads.';

CREATE VIEW current_leads AS
SELECT conversation_uid, bot_uid, created_at, name, email, phone, remark, raw,
       first_seen_at, last_changed_at
  FROM leads
 WHERE source_missing_since IS NULL;

COMMENT ON VIEW current_leads IS 'The leads the API still lists: leads without source_missing_since.';
COMMENT ON COLUMN current_leads.conversation_uid IS 'ChatofAI conversation the lead came from; unique per lead.';
COMMENT ON COLUMN current_leads.bot_uid IS 'ChatofAI bot that collected the lead.';
COMMENT ON COLUMN current_leads.created_at IS 'When ChatofAI recorded the lead.';
COMMENT ON COLUMN current_leads.name IS 'Name as typed by the visitor.';
COMMENT ON COLUMN current_leads.email IS 'Email as typed by the visitor.';
COMMENT ON COLUMN current_leads.phone IS 'Phone as typed by the visitor.';
COMMENT ON COLUMN current_leads.remark IS 'Free-text remark left by the visitor.';
COMMENT ON COLUMN current_leads.raw IS 'The lead record exactly as the API sent it.';
COMMENT ON COLUMN current_leads.first_seen_at IS 'When leadsync first stored this lead.';
COMMENT ON COLUMN current_leads.last_changed_at IS 'When leadsync last stored a change to this lead.';
