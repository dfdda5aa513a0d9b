//! All SQL lives here, as named functions over `impl PgExecutor`. Nothing outside this module
//! writes a query.

mod beliefs;
mod bots;
mod erasure;
mod leads;
mod locks;
mod rejected;
mod retention;
mod runs;
mod status;
mod sync_state;
mod writable;

use std::{str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    ConnectOptions, Connection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

pub use beliefs::{any_tombstones, held_records, load_beliefs, save_beliefs};
pub use bots::{clear_bots, upsert_bots};
pub use erasure::{Erased, forget_leads, unstorable_conversations};
pub use leads::{Upserted, count_leads, mark_source_missing, tag_changes, upsert_leads};
pub use locks::{BotLock, try_lock_bot};
pub use rejected::record_rejected_leads;
pub use retention::{delete_expired_leads, delete_expired_rejects};
pub use runs::{RunKind, RunStatus, abandon_unfinished_runs, finish_run, start_run};
pub use sqlx::{Error as DbError, PgConnection, PgPool as Pool, Postgres, Transaction};
pub use writable::why_not_writable;

/// Lets the current transaction commit without waiting for its WAL to reach disk.
///
/// Used for every batch of a window but the last. It is safe because the window's last batch,
/// which moves the high-water mark, commits synchronously: its WAL flush covers every earlier
/// commit of the window, and if the server crashes before it, the mark has not moved and the
/// next run reads those pages again. One fsync per window instead of one per batch.
pub async fn defer_durability(executor: impl sqlx::PgExecutor<'_>) -> Result<(), DbError> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(executor)
        .await?;
    Ok(())
}

/// Starts a transaction on `conn`.
pub async fn begin(conn: &mut PgConnection) -> Result<Transaction<'_, Postgres>, DbError> {
    Connection::begin(conn).await
}
pub use status::{BotStatus, bot_status, lead_keys_between};
pub use sync_state::{
    Quiet, Rewound, complete_window, load_sync_state, observe_quiet, rewind_mark,
};

/// The schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!();

pub fn connect_options(url: &SecretString) -> Result<PgConnectOptions, DbError> {
    Ok(PgConnectOptions::from_str(url.expose_secret())?
        .application_name("leadsync")
        // Statement text is ours and carries no personal data, but keep the log quiet anyway.
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(5)))
}

/// Makes every session of these options refuse to store leads older than `max_age_days`
/// (`retention.max_age_days`): [`upsert_leads`] reads the setting, so a backfill or a repair
/// of old days does not bring back what the retention job deletes.
pub fn limit_lead_age(options: PgConnectOptions, max_age_days: u32) -> PgConnectOptions {
    options.options([("leadsync.retention_max_age_days", max_age_days.to_string())])
}

/// A pool that connects lazily: a database that is down at start-up shows as an error on first
/// use, with the setting named, instead of a hang.
pub fn pool(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .connect_lazy_with(options)
}

/// Creates the database named in `options` if it does not exist yet (for `demo` and tests),
/// connecting to the server's `postgres` database to do so. Returns whether it created it.
pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<bool, DbError> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    Ok(!exists)
}

/// The versions of the embedded migrations not applied yet (all of them on an empty database).
pub async fn pending_migrations(pool: &PgPool) -> Result<Vec<i64>, DbError> {
    let applied: Vec<i64> =
        match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
        {
            Ok(applied) => applied,
            // 42P01 undefined_table: nothing was ever migrated here.
            Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("42P01") => Vec::new(),
            Err(err) => return Err(err),
        };
    Ok(MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .filter(|version| !applied.contains(version))
        .collect())
}

/// Applies pending migrations. Safe to run from several processes at once (sqlx takes an
/// advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
