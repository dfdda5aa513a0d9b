use std::collections::HashSet;

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::{BotUid, RejectedLead};

/// A rejected record stored for the first time: (reason, conversation_uid).
pub type NewRejection = (String, Option<String>);

/// Keeps records that could not become leads, once per distinct payload per bot: a malformed
/// record that every run re-reads bumps `times_seen` instead of piling up. Returns the ones
/// seen for the first time, so they are reported once rather than on every run.
///
/// A record whose raw conversation uid, email or phone matches a tombstone of
/// `leadsync forget` is not kept: an erased person's data stays erased, malformed or not.
pub async fn record_rejected_leads(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    run_id: Uuid,
    rejected: &[&RejectedLead],
) -> Result<Vec<NewRejection>, sqlx::Error> {
    let mut seen = HashSet::new();
    let mut reasons = Vec::new();
    let mut uids = Vec::new();
    let mut raws = Vec::new();
    for record in rejected {
        // One statement may not touch the same row twice: drop repeats of a payload.
        if seen.insert(record.raw.to_string()) {
            reasons.push(record.reason.as_str());
            uids.push(record.conversation_uid.as_deref());
            raws.push(&record.raw);
        }
    }
    if raws.is_empty() {
        return Ok(Vec::new());
    }
    let written: Vec<(bool, String, Option<String>)> = sqlx::query_as(&format!(
        r#"
        INSERT INTO rejected_leads AS r (bot_uid, last_run_id, reason, conversation_uid, raw)
        SELECT $1, $2, reason, conversation_uid, raw
          FROM UNNEST($3::text[], $4::text[], $5::jsonb[]) AS t(reason, conversation_uid, raw)
         WHERE NOT {}
        ON CONFLICT (bot_uid, raw_md5) DO UPDATE
           SET last_seen_at = now(), times_seen = r.times_seen + 1, last_run_id = EXCLUDED.last_run_id
        RETURNING (xmax = 0), reason, conversation_uid
        "#,
        super::erasure::matches_tombstone(
            "raw->>'conversation_uid'",
            "raw->>'email'",
            "raw->>'phone'"
        )
    ))
    .bind(bot.as_str())
    .bind(run_id)
    .bind(&reasons)
    .bind(&uids)
    .bind(&raws)
    .fetch_all(executor)
    .await?;
    Ok(written
        .into_iter()
        .filter(|(new, ..)| *new)
        .map(|(_, reason, conversation_uid)| (reason, conversation_uid))
        .collect())
}
