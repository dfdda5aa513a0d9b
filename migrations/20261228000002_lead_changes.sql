-- leadsync schema: the change history of the leads. Every update of a lead that changes what
-- the API says (the upsert rewrites a row only then) leaves one row per changed field, with its
-- old and new value, when, and the run that stored it. An unchanged re-read writes nothing.
-- The history goes with its lead: `forget` and retention delete the lead, and its history
-- with it (ON DELETE CASCADE); `forget` also deletes any history row holding a forgotten email
-- or phone of a lead that stays (src/store/erasure.rs).

CREATE TABLE lead_changes (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_uid text        NOT NULL REFERENCES leads ON DELETE CASCADE,
    bot_uid          text        NOT NULL,
    changed_at       timestamptz NOT NULL DEFAULT now(),
    run_id           uuid,
    field            text        NOT NULL,
    old_value        text,
    new_value        text
);

CREATE INDEX lead_changes_lead_idx ON lead_changes (conversation_uid, changed_at);
CREATE INDEX lead_changes_changed_at_idx ON lead_changes (changed_at DESC);

COMMENT ON TABLE lead_changes IS 'Change history of the leads: one row per field that changed when leadsync stored a new version of a lead. Personal data, like leads; deleted with its lead (forget, retention).';
COMMENT ON COLUMN lead_changes.id IS 'Order of the changes (increasing).';
COMMENT ON COLUMN lead_changes.conversation_uid IS 'The lead that changed.';
COMMENT ON COLUMN lead_changes.bot_uid IS 'The bot that collected it.';
COMMENT ON COLUMN lead_changes.changed_at IS 'When leadsync stored the change (the transaction''s time).';
COMMENT ON COLUMN lead_changes.run_id IS 'The sync run that stored it (sync_runs.run_id, the run_id of its log lines); NULL for a change made outside a run.';
COMMENT ON COLUMN lead_changes.field IS 'created_at, name, email, phone or remark (a column of leads), or raw.<key> for another field of the record as the API sent it.';
COMMENT ON COLUMN lead_changes.old_value IS 'The value before, as text (created_at in UTC, ISO 8601; raw.<key> as JSON); NULL when it was NULL or absent.';
COMMENT ON COLUMN lead_changes.new_value IS 'The value after, in the same form; NULL when it is NULL or absent.';

CREATE FUNCTION record_lead_changes() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    run uuid := NULLIF(current_setting('leadsync.run_id', true), '')::uuid;
BEGIN
    INSERT INTO lead_changes (conversation_uid, bot_uid, run_id, field, old_value, new_value)
    SELECT NEW.conversation_uid, NEW.bot_uid, run, f.field, f.old_value, f.new_value
      FROM (VALUES
              ('created_at',
               to_char(OLD.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
              ('name', OLD.name, NEW.name),
              ('email', OLD.email, NEW.email),
              ('phone', OLD.phone, NEW.phone),
              ('remark', OLD.remark, NEW.remark)) AS f(field, old_value, new_value)
     WHERE f.old_value IS DISTINCT FROM f.new_value
    UNION ALL
    SELECT NEW.conversation_uid, NEW.bot_uid, run, 'raw.' || k.key,
           (OLD.raw -> k.key)::text, (NEW.raw -> k.key)::text
      FROM (SELECT jsonb_object_keys(OLD.raw) AS key WHERE jsonb_typeof(OLD.raw) = 'object'
            UNION
            SELECT jsonb_object_keys(NEW.raw) WHERE jsonb_typeof(NEW.raw) = 'object') AS k
     WHERE k.key NOT IN ('conversation_uid', 'created_at', 'name', 'email', 'phone', 'remark')
       AND (OLD.raw -> k.key) IS DISTINCT FROM (NEW.raw -> k.key);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION record_lead_changes() IS 'Trigger of leads: writes lead_changes for each field an update changed, with the run in the leadsync.run_id setting.';

CREATE TRIGGER leads_record_changes
    AFTER UPDATE ON leads
    FOR EACH ROW
    WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.email IS DISTINCT FROM NEW.email OR OLD.phone IS DISTINCT FROM NEW.phone
          OR OLD.remark IS DISTINCT FROM NEW.remark OR OLD.raw IS DISTINCT FROM NEW.raw)
    EXECUTE FUNCTION record_lead_changes();

-- A lead as it was at a time: today's values with every change since undone (the oldest change
-- after `at` holds the value then). Leads first stored after `at` are left out.
CREATE FUNCTION leads_as_of(at timestamptz)
    RETURNS TABLE (conversation_uid text, bot_uid text, created_at timestamptz, name text,
                   email text, phone text, remark text)
    LANGUAGE sql STABLE
    AS $$
    SELECT l.conversation_uid, l.bot_uid,
           CASE WHEN c.created_at_changed THEN c.created_at::timestamptz ELSE l.created_at END,
           CASE WHEN c.name_changed THEN c.name ELSE l.name END,
           CASE WHEN c.email_changed THEN c.email ELSE l.email END,
           CASE WHEN c.phone_changed THEN c.phone ELSE l.phone END,
           CASE WHEN c.remark_changed THEN c.remark ELSE l.remark END
      FROM leads l
      LEFT JOIN LATERAL (
            SELECT bool_or(field = 'created_at') AS created_at_changed,
                   (array_agg(old_value ORDER BY id) FILTER (WHERE field = 'created_at'))[1] AS created_at,
                   bool_or(field = 'name') AS name_changed,
                   (array_agg(old_value ORDER BY id) FILTER (WHERE field = 'name'))[1] AS name,
                   bool_or(field = 'email') AS email_changed,
                   (array_agg(old_value ORDER BY id) FILTER (WHERE field = 'email'))[1] AS email,
                   bool_or(field = 'phone') AS phone_changed,
                   (array_agg(old_value ORDER BY id) FILTER (WHERE field = 'phone'))[1] AS phone,
                   bool_or(field = 'remark') AS remark_changed,
                   (array_agg(old_value ORDER BY id) FILTER (WHERE field = 'remark'))[1] AS remark
              FROM lead_changes ch
             WHERE ch.conversation_uid = l.conversation_uid AND ch.changed_at > at) c ON true
     WHERE l.first_seen_at <= at
    $$;
COMMENT ON FUNCTION leads_as_of(timestamptz) IS 'The leads as they were at a time (SELECT * FROM leads_as_of(''2026-11-01'')): current values with every later change undone; leads first stored after it are left out.';
