use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgExecutor;

use crate::domain::{BotUid, SyncState};

pub async fn load_sync_state(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
) -> Result<SyncState, sqlx::Error> {
    let row: Option<(Option<DateTime<Utc>>, Option<NaiveDate>)> =
        sqlx::query_as("SELECT high_water_mark, resume_from FROM sync_state WHERE bot_uid = $1")
            .bind(bot.as_str())
            .fetch_optional(executor)
            .await?;
    Ok(
        row.map_or_else(SyncState::default, |(high_water_mark, resume_from)| {
            SyncState {
                high_water_mark,
                resume_from,
            }
        }),
    )
}

/// Records that a window is fully committed.
///
/// Must run in the same transaction as the window's last page, after every other page of the
/// window has committed: then the high-water mark can never be ahead of committed leads.
/// Both values only move forward (GREATEST ignores NULL), so re-reading an old range
/// (a backfill) never moves them back. Returns the high-water mark now stored.
pub async fn complete_window(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    high_water_mark: Option<DateTime<Utc>>,
    resume_from: NaiveDate,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        INSERT INTO sync_state AS s (bot_uid, high_water_mark, resume_from, updated_at)
        VALUES ($1, $2, $3, now())
        ON CONFLICT (bot_uid) DO UPDATE
           SET high_water_mark = GREATEST(s.high_water_mark, EXCLUDED.high_water_mark),
               resume_from = GREATEST(s.resume_from, EXCLUDED.resume_from),
               updated_at = now()
        RETURNING high_water_mark
        "#,
    )
    .bind(bot.as_str())
    .bind(high_water_mark)
    .bind(resume_from)
    .fetch_one(executor)
    .await
}
