use std::sync::LazyLock;

use sqlx::PgExecutor;

use super::erasure::matches_tombstone;

use crate::domain::{BotUid, Lead, UpsertCounts};

/// The statement of [`upsert_leads`], built once with the tombstone match written in.
static UPSERT_LEADS: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"
        WITH incoming AS (
            SELECT * FROM UNNEST($2::text[], $3::timestamptz[], $4::text[], $5::text[],
                                 $6::text[], $7::text[], $8::jsonb[])
                AS t(conversation_uid, created_at, name, email, phone, remark, raw)
        ), classified AS (
            SELECT i.*,
                   -- The uncorrelated EXISTS is evaluated once: no tombstones, no hashing.
                   (EXISTS (SELECT FROM forgotten_leads)
                    AND {matches_tombstone}) AS forgotten,
                   is_expired(i.created_at) AS expired,
                   -- Stored under another bot: the first owner keeps it (see `upsert_leads`).
                   EXISTS (SELECT FROM leads o
                            WHERE o.conversation_uid = i.conversation_uid AND o.bot_uid <> $1)
                       AS elsewhere
              FROM incoming i
        ), purged AS (
            -- A stored lead that now matches a tombstone (an email added to it since) goes too.
            DELETE FROM leads WHERE conversation_uid IN
                (SELECT conversation_uid FROM classified WHERE forgotten)
        ), written AS (
            INSERT INTO leads AS l (conversation_uid, bot_uid, created_at, name, email, phone, remark, raw)
            SELECT conversation_uid, $1, created_at, name, email, phone, remark, raw FROM classified
             WHERE NOT (forgotten OR expired OR elsewhere)
            ON CONFLICT (conversation_uid) DO UPDATE
               SET created_at = EXCLUDED.created_at,
                   name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
                   remark = EXCLUDED.remark, raw = EXCLUDED.raw, last_changed_at = now(),
                   source_missing_since = NULL
             -- The owner check again: another bot's run may have inserted it meanwhile.
             WHERE l.bot_uid = EXCLUDED.bot_uid
               AND (l.created_at, l.name, l.email, l.phone, l.remark, l.raw)
                   IS DISTINCT FROM
                   (EXCLUDED.created_at, EXCLUDED.name, EXCLUDED.email,
                    EXCLUDED.phone, EXCLUDED.remark, EXCLUDED.raw)
            -- xmax = 0 only on a freshly inserted row version.
            RETURNING (xmax = 0) AS inserted
        )
        SELECT (SELECT count(*) FILTER (WHERE inserted) FROM written),
               (SELECT count(*) FILTER (WHERE NOT inserted) FROM written),
               (SELECT count(*) FILTER (WHERE forgotten) FROM classified),
               (SELECT count(*) FILTER (WHERE expired AND NOT forgotten) FROM classified),
               (SELECT coalesce(array_agg(conversation_uid), '{{}}') FROM classified
                 WHERE elsewhere AND NOT (forgotten OR expired))
        "#,
        matches_tombstone = matches_tombstone("i.conversation_uid", "i.email", "i.phone")
    )
});

/// What [`upsert_leads`] did.
#[derive(Debug, Default)]
pub struct Upserted {
    pub counts: UpsertCounts,
    /// Conversations already stored under another bot: not written (the caller keeps them
    /// aside as rejected).
    pub owned_elsewhere: Vec<String>,
}

/// Upserts one page of leads in one statement, keyed on `conversation_uid`.
///
/// `leads` must not repeat a `conversation_uid` (Postgres refuses to touch a row twice in one
/// statement): the caller deduplicates. A row whose content is the same as stored is not
/// rewritten (the `IS DISTINCT FROM` guard: no dead tuple, no WAL, `last_changed_at` kept);
/// it counts as unchanged.
///
/// Two kinds of lead are not stored, in the same statement (so within the page's transaction):
/// a lead matching a tombstone of `leadsync forget` (counted `forgotten`), and a lead older
/// than `retention.max_age_days`, which the connection carries (see [`super::limit_lead_age`];
/// counted `expired`): the retention job would only delete it again. Either way no sync — the
/// lookback, a backfill, a repair — brings such a lead back.
///
/// A `conversation_uid` is one lead, so it has one owner: the bot that stored it first. The
/// same uid listed by another bot is not written (its row would change owner on every run of
/// either bot) and is returned in `owned_elsewhere`.
pub async fn upsert_leads(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    leads: &[&Lead],
) -> Result<Upserted, sqlx::Error> {
    if leads.is_empty() {
        return Ok(Upserted::default());
    }
    let mut uids = Vec::with_capacity(leads.len());
    let mut created = Vec::with_capacity(leads.len());
    let mut names = Vec::with_capacity(leads.len());
    let mut emails = Vec::with_capacity(leads.len());
    let mut phones = Vec::with_capacity(leads.len());
    let mut remarks = Vec::with_capacity(leads.len());
    let mut raws = Vec::with_capacity(leads.len());
    for lead in leads {
        uids.push(lead.conversation_uid.as_str());
        created.push(lead.created_at);
        names.push(lead.name.as_deref());
        emails.push(lead.email.as_deref());
        phones.push(lead.phone.as_deref());
        remarks.push(lead.remark.as_deref());
        raws.push(&lead.raw);
    }
    let (inserted, updated, forgotten, expired, owned_elsewhere): (
        i64,
        i64,
        i64,
        i64,
        Vec<String>,
    ) = sqlx::query_as(&UPSERT_LEADS)
        .bind(bot.as_str())
        .bind(&uids)
        .bind(&created)
        .bind(&names)
        .bind(&emails)
        .bind(&phones)
        .bind(&remarks)
        .bind(&raws)
        .fetch_one(executor)
        .await?;
    let [inserted, updated, forgotten, expired] =
        [inserted, updated, forgotten, expired].map(|count| count as u64);
    let elsewhere = owned_elsewhere.len() as u64;
    Ok(Upserted {
        counts: UpsertCounts {
            inserted,
            updated,
            unchanged: leads.len() as u64 - inserted - updated - forgotten - expired - elsewhere,
            forgotten,
            expired,
        },
        owned_elsewhere,
    })
}

pub async fn count_leads(executor: impl PgExecutor<'_>, bot: &BotUid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM leads WHERE bot_uid = $1")
        .bind(bot.as_str())
        .fetch_one(executor)
        .await
}

/// Tags the lead changes the current transaction stores with the run that stores them
/// (`lead_changes.run_id`, written by the `leads` trigger). Transaction-local.
pub async fn tag_changes(
    executor: impl PgExecutor<'_>,
    run_id: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('leadsync.run_id', $1, true)")
        .bind(run_id.to_string())
        .execute(executor)
        .await?;
    Ok(())
}

/// After a verify: marks the bot's stored leads in `gone` (no longer listed by the API) with
/// `source_missing_since` = now, unless marked already, and clears the mark of those in
/// `listed`. Never deletes. Returns (newly marked, cleared).
pub async fn mark_source_missing(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    gone: &[&str],
    listed: &[&str],
) -> Result<(u64, u64), sqlx::Error> {
    let (marked, cleared): (i64, i64) = sqlx::query_as(
        "WITH marked AS (
             UPDATE leads SET source_missing_since = now()
              WHERE bot_uid = $1 AND conversation_uid = ANY($2) AND source_missing_since IS NULL
             RETURNING 1
         ), cleared AS (
             UPDATE leads SET source_missing_since = NULL
              WHERE bot_uid = $1 AND conversation_uid = ANY($3)
                AND source_missing_since IS NOT NULL
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM marked), (SELECT count(*) FROM cleared)",
    )
    .bind(bot.as_str())
    .bind(gone)
    .bind(listed)
    .fetch_one(executor)
    .await?;
    Ok((marked as u64, cleared as u64))
}
