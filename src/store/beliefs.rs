use sqlx::PgExecutor;

use crate::domain::{ApiBeliefs, BotUid};

/// What leadsync has learned about the API for this bot; nothing yet when never saved (or
/// saved by a version whose fields no longer parse: learning starts again, which is safe).
pub async fn load_beliefs(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
) -> Result<ApiBeliefs, sqlx::Error> {
    let saved: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT beliefs FROM api_beliefs WHERE bot_uid = $1")
            .bind(bot.as_str())
            .fetch_optional(executor)
            .await?;
    Ok(saved
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default())
}

/// Saves the beliefs. A window's last transaction calls this with the mark it moves, so the
/// lookback that the next run plans with is never older than the mark.
pub async fn save_beliefs(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    beliefs: &ApiBeliefs,
) -> Result<(), sqlx::Error> {
    let value = serde_json::to_value(beliefs).expect("beliefs are plain data");
    sqlx::query(
        "INSERT INTO api_beliefs (bot_uid, beliefs, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (bot_uid) DO UPDATE SET beliefs = EXCLUDED.beliefs, updated_at = now()",
    )
    .bind(bot.as_str())
    .bind(value)
    .execute(executor)
    .await?;
    Ok(())
}

/// The records held for the bot, stored or kept aside: what a whole-chatbot `total` is
/// compared with.
pub async fn held_records(executor: impl PgExecutor<'_>, bot: &BotUid) -> Result<u64, sqlx::Error> {
    let held: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM leads WHERE bot_uid = $1)
              + (SELECT count(*) FROM rejected_leads WHERE bot_uid = $1)",
    )
    .bind(bot.as_str())
    .fetch_one(executor)
    .await?;
    Ok(held.max(0) as u64)
}

/// Whether `leadsync forget` ever erased anything: then the copy leaves out leads on purpose.
pub async fn any_tombstones(executor: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM forgotten_leads)")
        .fetch_one(executor)
        .await
}
