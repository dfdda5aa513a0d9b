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

/// A mark moved back by [`rewind_mark`]: where it was, where it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewound {
    pub before: DateTime<Utc>,
    pub after: DateTime<Utc>,
}

/// Moves the bot's high-water mark back to `to` (and its resume point to `to`'s day at the
/// latest), and records it in the run ledger as a `rewind` row, in one transaction. `None`,
/// and nothing written, when the bot has no mark or it is not after `to`. The caller holds
/// the bot's lock, so no run is moving the mark meanwhile.
pub async fn rewind_mark(
    conn: &mut sqlx::PgConnection,
    bot: &BotUid,
    to: DateTime<Utc>,
    run_id: uuid::Uuid,
) -> Result<Option<Rewound>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let before: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT high_water_mark FROM sync_state WHERE bot_uid = $1 AND high_water_mark > $2
            FOR UPDATE",
    )
    .bind(bot.as_str())
    .bind(to)
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let Some(before) = before else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE sync_state
            SET high_water_mark = $2, resume_from = LEAST(resume_from, $3), updated_at = now()
          WHERE bot_uid = $1",
    )
    .bind(bot.as_str())
    .bind(to)
    .bind(to.date_naive())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sync_runs
                (run_id, bot_uid, kind, status, finished_at, range_start, range_end, hwm_before, hwm_after)
         VALUES ($1, $2, 'rewind', 'succeeded', now(), $3, $3, $4, $5)",
    )
    .bind(run_id)
    .bind(bot.as_str())
    .bind(to.date_naive())
    .bind(before)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(Rewound { before, after: to }))
}

/// Whether a bot is quiet now (see the `bot_usual_gap` migration), and whether it was at its
/// last look; `quiet_since` is kept in step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quiet {
    pub now: bool,
    pub before: bool,
    /// The usual gap between its leads, in seconds (none with too few leads).
    pub usual_gap_secs: Option<f64>,
    /// Since its newest lead, in seconds (none without a lead).
    pub silence_secs: Option<f64>,
}

/// Looks at the bot's silence against its usual gap, and records when it went quiet.
pub async fn observe_quiet(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
) -> Result<Quiet, sqlx::Error> {
    let (now, before, usual_gap_secs, silence_secs): (
        bool,
        Option<bool>,
        Option<f64>,
        Option<f64>,
    ) = sqlx::query_as(
        r#"
            WITH look AS (
                SELECT g.usual_gap, now() - s.high_water_mark AS silence,
                       coalesce(now() - s.high_water_mark > bot_quiet_after(g.usual_gap), false)
                           AS quiet,
                       s.quiet_since
                  FROM sync_state s, LATERAL (SELECT bot_usual_gap($1) AS usual_gap) g
                 WHERE s.bot_uid = $1
            ), kept AS (
                UPDATE sync_state
                   SET quiet_since = CASE WHEN (SELECT quiet FROM look)
                                          THEN coalesce(quiet_since, now()) END
                 WHERE bot_uid = $1
            )
            SELECT coalesce((SELECT quiet FROM look), false),
                   (SELECT quiet_since IS NOT NULL FROM look),
                   (SELECT extract(epoch FROM usual_gap)::float8 FROM look),
                   (SELECT extract(epoch FROM silence)::float8 FROM look)
            "#,
    )
    .bind(bot.as_str())
    .fetch_one(executor)
    .await?;
    Ok(Quiet {
        now,
        before: before.unwrap_or(false),
        usual_gap_secs,
        silence_secs,
    })
}
