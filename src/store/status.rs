use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::BotUid;

/// What `leadsync status` shows for one bot.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct BotStatus {
    pub bot_uid: String,
    pub high_water_mark: Option<DateTime<Utc>>,
    pub resume_from: Option<NaiveDate>,
    pub leads: i64,
    pub rejected: i64,
    pub last_run_id: Option<Uuid>,
    pub last_run_kind: Option<String>,
    pub last_run_status: Option<String>,
    pub last_run_started_at: Option<DateTime<Utc>>,
    pub last_run_finished_at: Option<DateTime<Utc>>,
    pub last_run_requests: Option<i32>,
    pub last_run_inserted: Option<i32>,
    pub last_run_updated: Option<i32>,
    pub last_run_unchanged: Option<i32>,
    pub last_run_rejected: Option<i32>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub async fn bot_status(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
) -> Result<BotStatus, sqlx::Error> {
    sqlx::query_as(
        r#"
        SELECT $1::text AS bot_uid, s.high_water_mark, s.resume_from,
               (SELECT count(*) FROM leads WHERE bot_uid = $1) AS leads,
               (SELECT count(*) FROM rejected_leads WHERE bot_uid = $1) AS rejected,
               r.run_id AS last_run_id, r.kind AS last_run_kind, r.status AS last_run_status,
               r.started_at AS last_run_started_at, r.finished_at AS last_run_finished_at,
               r.requests AS last_run_requests, r.inserted AS last_run_inserted,
               r.updated AS last_run_updated, r.unchanged AS last_run_unchanged,
               r.rejected AS last_run_rejected,
               (SELECT max(finished_at) FROM sync_runs
                 WHERE bot_uid = $1 AND status = 'succeeded' AND kind <> 'rewind')
                 AS last_success_at,
               (SELECT error FROM sync_runs WHERE bot_uid = $1 AND status = 'failed'
                 ORDER BY started_at DESC LIMIT 1) AS last_error
          FROM (SELECT 1) AS one
          LEFT JOIN sync_state s ON s.bot_uid = $1
          LEFT JOIN LATERAL (SELECT * FROM sync_runs WHERE bot_uid = $1 AND kind <> 'rewind'
                              ORDER BY started_at DESC LIMIT 1) r ON true
        "#,
    )
    .bind(bot.as_str())
    .fetch_one(executor)
    .await
}

/// `(conversation_uid, created_at)` of the bot's leads created in `[from, to)` (UTC days).
pub async fn lead_keys_between(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT conversation_uid, created_at FROM leads
          WHERE bot_uid = $1 AND created_at >= $2::date::timestamp AT TIME ZONE 'UTC'
            AND created_at < $3::date::timestamp AT TIME ZONE 'UTC'",
    )
    .bind(bot.as_str())
    .bind(from)
    .bind(to)
    .fetch_all(executor)
    .await
}
