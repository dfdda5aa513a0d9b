use std::collections::HashSet;

use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::{BotUid, RejectedLead};

/// Keeps records that could not become leads, once per distinct payload per bot: a malformed
/// record that every run re-reads bumps `times_seen` instead of piling up.
pub async fn record_rejected_leads(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    run_id: Uuid,
    rejected: &[&RejectedLead],
) -> Result<(), sqlx::Error> {
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
        return Ok(());
    }
    sqlx::query(
        r#"
        INSERT INTO rejected_leads AS r (bot_uid, last_run_id, reason, conversation_uid, raw)
        SELECT $1, $2, reason, conversation_uid, raw
          FROM UNNEST($3::text[], $4::text[], $5::jsonb[]) AS t(reason, conversation_uid, raw)
        ON CONFLICT (bot_uid, raw_md5) DO UPDATE
           SET last_seen_at = now(), times_seen = r.times_seen + 1, last_run_id = EXCLUDED.last_run_id
        "#,
    )
    .bind(bot.as_str())
    .bind(run_id)
    .bind(&reasons)
    .bind(&uids)
    .bind(&raws)
    .execute(executor)
    .await?;
    Ok(())
}
