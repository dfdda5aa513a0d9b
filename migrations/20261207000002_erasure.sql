-- leadsync schema, part 4: the right to erasure (`leadsync forget`) and retention.
--
-- A forgotten person is remembered only as the SHA-256 of a normalised email, phone or
-- conversation uid, so that no later sync (the lookback, a backfill, a repair) stores their
-- leads again. One definition of "normalised", here, serves the erasure, the upsert's filter,
-- the rejects and verify (the matching itself is written out in src/store/erasure.rs).

CREATE TABLE forgotten_leads (
    kind         text        NOT NULL CHECK (kind IN ('email', 'phone', 'conversation')),
    value_sha256 text        NOT NULL CHECK (value_sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value_sha256)
);

COMMENT ON TABLE forgotten_leads IS 'Tombstones of erased leads (`leadsync forget`): a lead matching one is deleted and never stored again. Holds hashes, never the values; still, anyone who knows an address can test it against a hash, so keep this table as private as the leads.';
COMMENT ON COLUMN forgotten_leads.kind IS 'email, phone or conversation: what value_sha256 is the hash of.';
COMMENT ON COLUMN forgotten_leads.value_sha256 IS 'Hex SHA-256 of the normalised value: email_sha256(), phone_sha256() or conversation_sha256().';
COMMENT ON COLUMN forgotten_leads.created_at IS 'When the erasure was first requested.';

-- NULL for a value that normalises to nothing, so an empty email or phone never matches.
CREATE FUNCTION email_sha256(email text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(NULLIF(lower(btrim(email, E' \t\r\n')), ''), 'UTF8')), 'hex') $$;
COMMENT ON FUNCTION email_sha256(text) IS 'Hex SHA-256 of an email trimmed and lower-cased; NULL when empty.';

CREATE FUNCTION phone_sha256(phone text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(NULLIF(regexp_replace(phone, '[^0-9]', '', 'g'), ''), 'UTF8')), 'hex') $$;
COMMENT ON FUNCTION phone_sha256(text) IS 'Hex SHA-256 of a phone''s ASCII digits, in order (+1 555-0100 and 15550100 are the same); NULL when it has none.';

CREATE FUNCTION conversation_sha256(conversation_uid text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(NULLIF(conversation_uid, ''), 'UTF8')), 'hex') $$;
COMMENT ON FUNCTION conversation_sha256(text) IS 'Hex SHA-256 of a conversation uid, exactly as given; NULL when empty.';

-- retention.max_age_days travels with each of leadsync's sessions (a connection parameter), so
-- the sync applies its own configuration, whatever another process has.
CREATE FUNCTION is_expired(created_at timestamptz) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
        SELECT coalesce(created_at < now() - make_interval(days => NULLIF(
                   current_setting('leadsync.retention_max_age_days', true), '')::int), false)
    $$;
COMMENT ON FUNCTION is_expired(timestamptz) IS 'Whether a lead created then is older than the session''s leadsync.retention_max_age_days (retention.max_age_days); false when the session sets none.';

ALTER TABLE sync_runs ADD COLUMN forgotten integer NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN expired integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN sync_runs.forgotten IS 'Leads received that match a tombstone in forgotten_leads (erased by `leadsync forget`): not stored.';
COMMENT ON COLUMN sync_runs.expired IS 'Leads received older than retention.max_age_days: not stored (the retention job would delete them).';
