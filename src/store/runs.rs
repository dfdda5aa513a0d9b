use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::{BotUid, DayRange, RunCounts};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    /// Stopped by a shutdown between pages; what it committed stays.
    Interrupted,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// Marks the bot's runs still `running` as `abandoned`: their process died (or was killed)
/// before it could finish them. Call only while holding the bot's lock, so no live run is hit.
pub async fn abandon_unfinished_runs(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sync_runs SET status = 'abandoned', finished_at = now()
          WHERE bot_uid = $1 AND status = 'running'",
    )
    .bind(bot.as_str())
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// What started a run, as the ledger's `kind` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Sync,
    Backfill,
    Repair,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Backfill => "backfill",
            Self::Repair => "repair",
        }
    }
}

pub async fn start_run(
    executor: impl PgExecutor<'_>,
    run_id: Uuid,
    bot: &BotUid,
    kind: RunKind,
    range: DayRange,
    hwm_before: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sync_runs (run_id, bot_uid, kind, status, range_start, range_end, hwm_before)
         VALUES ($1, $2, $3, 'running', $4, $5, $6)",
    )
    .bind(run_id)
    .bind(bot.as_str())
    .bind(kind.as_str())
    .bind(range.start)
    .bind(range.end)
    .bind(hwm_before)
    .execute(executor)
    .await?;
    Ok(())
}

/// `error` is a summary made of kinds, statuses and ids: never lead content.
pub async fn finish_run(
    executor: impl PgExecutor<'_>,
    run_id: Uuid,
    status: RunStatus,
    counts: &RunCounts,
    hwm_after: Option<DateTime<Utc>>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let count = |value: u64| i32::try_from(value).unwrap_or(i32::MAX);
    sqlx::query(
        "UPDATE sync_runs
            SET status = $2, finished_at = now(), windows = $3, pages = $4, requests = $5,
                retries = $6, rereads = $7, fetched = $8, inserted = $9, updated = $10,
                unchanged = $11, rejected = $12, incomplete_windows = $13, hwm_after = $14,
                error = $15, forgotten = $16, expired = $17
          WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(status.as_str())
    .bind(count(counts.windows))
    .bind(count(counts.pages))
    .bind(count(counts.requests))
    .bind(count(counts.retries))
    .bind(count(counts.rereads))
    .bind(count(counts.fetched))
    .bind(count(counts.inserted))
    .bind(count(counts.updated))
    .bind(count(counts.unchanged))
    .bind(count(counts.rejected))
    .bind(count(counts.incomplete_windows))
    .bind(hwm_after)
    .bind(error)
    .bind(count(counts.forgotten))
    .bind(count(counts.expired))
    .execute(executor)
    .await?;
    Ok(())
}
