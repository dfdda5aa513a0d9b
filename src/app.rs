//! Wires the pieces for a command: the database pool, the API clients, the sync runs.

use std::{collections::HashMap, time::Instant};

use anyhow::Context as _;
use chrono::Utc;
use futures_util::{StreamExt as _, stream};
use secrecy::SecretString;

use crate::{
    chatof::ChatofClient,
    config::Config,
    domain::BotUid,
    events, store,
    sync::{RunOutcome, RunReport, SyncContext, sync_bot},
};

/// Connects to the database named in the config (lazily: nothing is sent yet).
pub fn connect(config: &Config) -> anyhow::Result<store::Pool> {
    let options = store::connect_options(&config.database.url).context("database.url")?;
    Ok(store::pool(
        options,
        config.database.max_connections,
        config.database.acquire_timeout,
    ))
}

/// `leadsync migrate`: brings the schema up to date.
pub async fn migrate(pool: &store::Pool) -> anyhow::Result<()> {
    let started = Instant::now();
    store::migrate(pool)
        .await
        .context("applying database migrations")?;
    events::migrations_applied(started.elapsed());
    Ok(())
}

/// `leadsync sync`: one pass over the selected bots (all when `only` is empty), at most
/// `sync.max_concurrent_bots` at a time. One bot failing does not stop the others.
pub async fn sync_once(
    config: &Config,
    pool: &store::Pool,
    keys: &HashMap<BotUid, SecretString>,
    only: &[BotUid],
) -> anyhow::Result<Vec<RunReport>> {
    if config.database.migrate_on_start {
        migrate(pool).await?;
    }
    let started = Instant::now();
    let ctx = SyncContext {
        pool: pool.clone(),
        retry: config.retry,
        page_size: config.api.page_size,
        plan: config.sync.plan,
        max_window_leads: config.sync.max_window_leads,
        max_window_rereads: config.sync.max_window_rereads,
    };
    let base_client = ChatofClient::new(&config.api.client, SecretString::from(String::new()))
        .context("building the HTTP client")?;
    let bots: Vec<(BotUid, ChatofClient)> = config
        .bots
        .iter()
        .filter(|bot| only.is_empty() || only.contains(&bot.uid))
        .map(|bot| {
            let key = keys
                .get(&bot.uid)
                .cloned()
                .expect("a key was resolved for every bot");
            (bot.uid.clone(), base_client.with_key(key))
        })
        .collect();
    let now = Utc::now();
    let reports: Vec<RunReport> = stream::iter(bots.iter())
        .map(|(bot, client)| sync_bot(&ctx, bot, client, now))
        .buffer_unordered(config.sync.max_concurrent_bots)
        .collect()
        .await;
    let (succeeded, failed, skipped) = tally(&reports);
    events::sync_pass_finished(reports.len(), succeeded, failed, skipped, started.elapsed());
    Ok(reports)
}

/// (succeeded, failed, skipped)
pub fn tally(reports: &[RunReport]) -> (usize, usize, usize) {
    reports
        .iter()
        .fold((0, 0, 0), |(ok, failed, skipped), report| {
            match report.outcome {
                RunOutcome::Succeeded => (ok + 1, failed, skipped),
                RunOutcome::Failed(_) => (ok, failed + 1, skipped),
                RunOutcome::Skipped => (ok, failed, skipped + 1),
            }
        })
}
