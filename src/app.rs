//! Wires the pieces for a command: the database pool, the API clients, the sync runs.

use std::{collections::HashMap, sync::Arc, time::Instant};

use anyhow::Context as _;
use chrono::Utc;
use futures_util::{StreamExt as _, stream};
use secrecy::SecretString;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::{
    chatof::ChatofClient,
    config::Config,
    domain::BotUid,
    events, store,
    sync::{RunOutcome, RunReport, RunRequest, SyncContext, sync_bot},
};

/// Connects to the database named in the config (lazily: nothing is sent yet).
pub fn connect(config: &Config) -> anyhow::Result<store::Pool> {
    let mut options = store::connect_options(&config.database.url).context("database.url")?;
    if let Some(max_age_days) = config.retention.max_age_days {
        options = store::limit_lead_age(options, max_age_days);
    }
    Ok(store::pool(
        options,
        config.database.max_connections,
        config.database.acquire_timeout,
    ))
}

/// `leadsync migrate`: brings the schema up to date. A role that may not create tables gets
/// told what to do instead.
pub async fn migrate(pool: &store::Pool) -> anyhow::Result<()> {
    let started = Instant::now();
    let pending = store::pending_migrations(pool).await.unwrap_or_default();
    if let Err(err) = store::migrate(pool).await {
        let denied = matches!(&err, sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(db))
            if db.code().as_deref() == Some(INSUFFICIENT_PRIVILEGE));
        let err = if denied {
            anyhow::Error::new(MigrationDenied {
                cause: crate::errors::describe_error(&err),
            })
        } else {
            anyhow::Error::from(err)
        };
        return Err(err.context("applying database migrations"));
    }
    events::migrations_applied(pending.len(), started.elapsed());
    Ok(())
}

/// Migrating failed for want of privileges: retrying will not help.
#[derive(Debug, thiserror::Error)]
#[error(
    "{cause} (this role may not change the schema: run `leadsync migrate` as the role that owns \
     it, and set database.migrate_on_start = false for this one)"
)]
pub struct MigrationDenied {
    cause: String,
}

/// SQLSTATE 42501.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// Where `database.url` points, for messages: `host:port/database as user`, never the password.
pub fn database_target(config: &Config) -> String {
    match store::connect_options(&config.database.url) {
        Ok(options) => format!(
            "{}:{}/{} as {}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)"),
            options.get_username()
        ),
        Err(_) => "database.url".to_owned(),
    }
}

/// Connects once, directly. The pool retries a refused connection until
/// `database.acquire_timeout_secs` and then reports only "pool timed out"; this fails at once
/// with the cause (refused, no such database or role, wrong password, TLS) and where. The
/// connection is the caller's, outside the pool (close it when done).
pub async fn reach_database(config: &Config) -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection as _;
    let options = store::connect_options(&config.database.url).context("database.url")?;
    let target = database_target(config);
    let timeout = config.database.acquire_timeout;
    match tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(anyhow::anyhow!(
            "cannot connect to the database at {target} (database.url): {}",
            crate::errors::describe_error(&err)
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot connect to the database at {target} (database.url): no answer within {} s \
             (database.acquire_timeout_secs)",
            timeout.as_secs()
        )),
    }
}

/// What a command needs of the schema before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaUse {
    /// Reads only (`status`): the schema must be current; nothing is migrated.
    Read,
    /// Writes: migrated first when `database.migrate_on_start` is true, else it must be current.
    Write,
}

/// Before a command's first query: the database answers (see [`reach_database`]) and the
/// schema is current, or made so. An unmigrated schema fails here, with what to do, instead of
/// on whichever table or function the command happens to touch first.
pub async fn prepare_database(
    config: &Config,
    pool: &store::Pool,
    schema: SchemaUse,
) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = reach_database(config).await?;
    // On that fresh connection, not the pool's: a session keeps the read-only default it
    // started with, so a pooled one would stay read-only after the database is made writable.
    let writable = match schema {
        SchemaUse::Write => store::why_not_writable(&mut conn)
            .await
            .context("asking whether the database can be written")?,
        SchemaUse::Read => None,
    };
    let _ = conn.close().await;
    if let Some(why) = writable {
        anyhow::bail!("{why}");
    }
    if schema == SchemaUse::Write && config.database.migrate_on_start {
        return migrate(pool).await;
    }
    schema_is_current(pool).await
}

/// Fails with what to do when migrations are pending.
pub async fn schema_is_current(pool: &store::Pool) -> anyhow::Result<()> {
    let pending = store::pending_migrations(pool)
        .await
        .context("reading the applied migrations")?;
    if pending.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "schema not migrated ({} of {} migrations pending): run `leadsync migrate`, or set \
         database.migrate_on_start = true",
        pending.len(),
        store::MIGRATOR.iter().count()
    )
}

/// Records the configured bots' names for the analysts' views (`bots`, `latest_leads`, ...).
pub async fn record_bots(config: &Config, pool: &store::Pool) -> anyhow::Result<()> {
    let bots: Vec<(&BotUid, Option<&str>)> = config
        .bots
        .iter()
        .map(|bot| (&bot.uid, bot.name.as_deref()))
        .collect();
    store::upsert_bots(pool, &bots)
        .await
        .context("recording the configured bots")
}

/// Everything needed to run syncs: the shared run context and one API client per bot.
#[derive(Debug)]
pub struct Syncer {
    pub ctx: SyncContext,
    clients: HashMap<BotUid, ChatofClient>,
    max_concurrent_bots: usize,
}

impl Syncer {
    pub fn new(
        config: &Config,
        pool: &store::Pool,
        keys: &HashMap<BotUid, SecretString>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        let base = ChatofClient::new(&config.api.client, SecretString::from(String::new()))
            .context("building the HTTP client")?;
        if let Some(proxy) = base.proxy() {
            events::api_proxy(&proxy);
        }
        let clients = config
            .bots
            .iter()
            .map(|bot| {
                let key = keys
                    .get(&bot.uid)
                    .cloned()
                    .context("no API key for a bot")?;
                Ok((bot.uid.clone(), base.with_key(key)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            ctx: SyncContext {
                pool: pool.clone(),
                retry: config.retry,
                page_size: config.api.page_size,
                plan: config.sync.plan,
                max_window_leads: config.sync.max_window_leads,
                max_window_rereads: config.sync.max_window_rereads,
                requests_in_flight: Arc::new(Semaphore::new(config.api.max_in_flight)),
                per_run_in_flight: SyncContext::share_of(
                    config.api.max_in_flight,
                    config.sync.max_concurrent_bots.min(config.bots.len()),
                ),
                copy_is_whole_history: config.sync.plan.backfill_from
                    == crate::config::ALL_HISTORY_FROM
                    && config.retention.max_age_days.is_none(),
                cancel,
            },
            clients,
            max_concurrent_bots: config.sync.max_concurrent_bots,
        })
    }

    pub fn client(&self, bot: &BotUid) -> &ChatofClient {
        self.clients
            .get(bot)
            .expect("a client for every configured bot")
    }

    /// One run of `bot`.
    /// One run of `bot`; after a successful one, a look at whether the bot has gone quiet.
    pub async fn run_bot(&self, bot: &BotUid, request: RunRequest) -> RunReport {
        let report = sync_bot(&self.ctx, bot, self.client(bot), request, Utc::now()).await;
        if matches!(report.outcome, RunOutcome::Succeeded) {
            match store::observe_quiet(&self.ctx.pool, bot).await {
                Ok(quiet) => events::bot_quiet_observed(bot, &quiet),
                Err(err) => events::quiet_check_failed(bot, &err),
            }
        }
        report
    }

    /// One run of each bot, at most `sync.max_concurrent_bots` at a time. One bot failing
    /// does not stop the others.
    pub async fn run_bots(&self, bots: &[BotUid], request: RunRequest) -> Vec<RunReport> {
        let started = Instant::now();
        let reports: Vec<RunReport> = stream::iter(bots)
            .map(|bot| self.run_bot(bot, request))
            .buffer_unordered(self.max_concurrent_bots)
            .collect()
            .await;
        let (succeeded, failed, skipped) = tally(&reports);
        events::sync_pass_finished(reports.len(), succeeded, failed, skipped, started.elapsed());
        reports
    }
}

/// `leadsync sync`: one pass over the selected bots (all when `only` is empty).
pub async fn sync_once(
    config: &Config,
    pool: &store::Pool,
    keys: &HashMap<BotUid, SecretString>,
    only: &[BotUid],
    cancel: CancellationToken,
) -> anyhow::Result<Vec<RunReport>> {
    prepare_database(config, pool, SchemaUse::Write).await?;
    record_bots(config, pool).await?;
    let syncer = Syncer::new(config, pool, keys, cancel)?;
    let bots: Vec<BotUid> = config
        .bots
        .iter()
        .map(|bot| bot.uid.clone())
        .filter(|uid| only.is_empty() || only.contains(uid))
        .collect();
    Ok(syncer.run_bots(&bots, RunRequest::SCHEDULED).await)
}

/// (succeeded, failed, skipped); an interrupted run counts as failed (it did not finish).
pub fn tally(reports: &[RunReport]) -> (usize, usize, usize) {
    reports
        .iter()
        .fold((0, 0, 0), |(ok, failed, skipped), report| {
            match report.outcome {
                RunOutcome::Succeeded => (ok + 1, failed, skipped),
                RunOutcome::Failed(_) | RunOutcome::Interrupted => (ok, failed + 1, skipped),
                RunOutcome::Skipped => (ok, failed, skipped + 1),
            }
        })
}

impl Syncer {
    /// `verify` for one bot: the drifted days, and with `repair` a re-sync of just those days
    /// (then a second look, whose drifts are returned).
    pub async fn verify(
        &self,
        bot: &BotUid,
        days: u32,
        repair: bool,
    ) -> Result<Vec<crate::ops::DayDrift>, crate::sync::SyncError> {
        let today = Utc::now().date_naive();
        let drifts = crate::ops::verify_bot(&self.ctx, self.client(bot), bot, days, today).await?;
        if !repair || drifts.is_empty() {
            events::verify_finished(bot, days, drifts.len(), false);
            return Ok(drifts);
        }
        let beliefs = crate::store::load_beliefs(&self.ctx.pool, bot).await?;
        for range in crate::ops::repair_ranges(&drifts, crate::ops::margins(&beliefs)) {
            let report = self.run_bot(bot, RunRequest::repair(range)).await;
            if let RunOutcome::Failed(err) = report.outcome {
                return Err(err);
            }
        }
        let left = crate::ops::verify_bot(&self.ctx, self.client(bot), bot, days, today).await?;
        events::verify_finished(bot, days, left.len(), true);
        Ok(left)
    }
}
