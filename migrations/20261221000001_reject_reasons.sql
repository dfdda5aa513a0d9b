-- Two more reasons a record is kept aside (issue 11): a record the JSON parser cannot take no
-- longer fails its whole page.
COMMENT ON COLUMN rejected_leads.reason IS 'not_an_object, missing_conversation_uid, missing_created_at, invalid_created_at, bot_uid_mismatch, invalid_text (bytes that are not UTF-8 or a raw control character inside a string, each replaced by ?) or unparseable_value (a number out of range or a lone surrogate; raw holds the record''s text as a JSON string).';
