//! `leadsync run`: the long-running service. Waits for the database, serves health and
//! metrics, triggers runs on schedule (never two of one bot at once), and drains on shutdown.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use chrono::Utc;
use secrecy::SecretString;
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    app::{self, SchemaUse, Syncer},
    config::{Config, ConfigError},
    domain::BotUid,
    events, http,
    scheduler::{ScheduleHealth, Scheduler, Trigger, WATCHDOG_PERIOD},
    spread::Spread,
    store,
    sync::RunRequest,
    systemd,
};

/// What SIGHUP does: reads the configuration again (the same file, the environment, the keys),
/// validated in full.
pub type Reload = Box<dyn Fn() -> Result<(Config, Keys), ConfigError> + Send + Sync>;

type Keys = HashMap<BotUid, SecretString>;

/// Runs the daemon until `cancel` fires, then drains within `shutdown.grace_secs`; on SIGHUP,
/// applies what `reload` reads (see [`Live::reload`]).
pub async fn run(
    config: &Config,
    keys: &Keys,
    cancel: CancellationToken,
    reload: Reload,
) -> anyhow::Result<()> {
    // Before anything else: SIGHUP's default action ends the process.
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let pool = app::connect(config)?;
    crate::metrics::set_per_bot_detail(config.http.per_bot_detail);
    let schedule_health = Arc::new(OnceLock::new());
    let http_stop = CancellationToken::new();
    let mut http_addr = None;
    let mut http_task = None;
    if let Some(listen) = config.http.listen {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("http.listen: cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        events::http_listening(addr);
        http_addr = Some(addr);
        let state = http::HealthState {
            pool: pool.clone(),
            schedule: schedule_health.clone(),
        };
        http_task = Some(tokio::spawn(http::serve(
            listener,
            state,
            http_stop.clone(),
        )));
    }

    let ready = wait_for_database(config, &pool, &cancel).await?;
    if !ready {
        // Stopped while waiting for the database: no run was started.
        systemd::stopping();
        events::shutdown_completed(0, Duration::ZERO, false);
    } else {
        // Names are labels for the analysts' views: a failure must not stop the syncing.
        if let Err(err) = app::record_bots(config, &pool).await {
            events::bots_not_recorded(&crate::errors::describe(&err));
        }
        let health = Arc::new(ScheduleHealth::default());
        let tracker = TaskTracker::new();
        let shared = Shared {
            pool: &pool,
            cancel: &cancel,
            health: &health,
            tracker: &tracker,
        };
        let mut live = Live::start(config, keys, &shared, None).await?;
        let _ = schedule_health.set(health.clone());
        events::daemon_started(config.bots.len(), http_addr);
        systemd::ready();
        if config.sync.run_at_start {
            for bot in &config.bots {
                live.runner.trigger(&bot.uid);
            }
        }
        let mut watch = ScheduleWatch::new();
        while let Wake::Hangup = watch
            .until_stop_or_hangup(&health, &cancel, &mut hangup)
            .await
        {
            live = live.reload(&reload, &shared).await;
        }

        systemd::stopping();
        let started = Instant::now();
        live.scheduler.shutdown().await;
        tracker.close();
        let grace_expired = tokio::time::timeout(live.grace, tracker.wait())
            .await
            .is_err();
        events::shutdown_completed(tracker.len(), started.elapsed(), grace_expired);
    }
    http_stop.cancel();
    if let Some(task) = http_task {
        let _ = task.await;
    }
    Ok(())
}

/// Waits until the database answers and the schema is current (migrated first when
/// `database.migrate_on_start`), retrying with backoff; `false` if a shutdown came first, even
/// in the middle of an attempt. A role that may not migrate is not retried: it never will be.
async fn wait_for_database(
    config: &Config,
    pool: &store::Pool,
    cancel: &CancellationToken,
) -> anyhow::Result<bool> {
    let mut delay = Duration::from_secs(1);
    for attempt in 1.. {
        let result = tokio::select! {
            () = cancel.cancelled() => return Ok(false),
            result = app::prepare_database(config, pool, SchemaUse::Write) => result,
        };
        match result {
            Ok(()) => return Ok(true),
            Err(err) if err.downcast_ref::<app::MigrationDenied>().is_some() => return Err(err),
            Err(err) => {
                events::database_unavailable(attempt, &crate::errors::describe(&err), delay);
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(false),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
    Ok(false)
}

/// What the daemon's lifetime shares across reloads.
struct Shared<'a> {
    pool: &'a store::Pool,
    cancel: &'a CancellationToken,
    health: &'a Arc<ScheduleHealth>,
    /// Every run, of whichever configuration: the shutdown waits for them all.
    tracker: &'a TaskTracker,
}

/// The configuration being applied: its cron jobs, its runner, and what a reload compares.
struct Live {
    scheduler: Scheduler,
    runner: Arc<BotRunner>,
    bots: BTreeSet<BotUid>,
    grace: Duration,
    /// The settings read once at start, as text, by name: a reload that changes one says so.
    at_start: Vec<(&'static str, String)>,
}

impl Live {
    /// Starts the cron jobs of `config`. `before`: the configuration it replaces, whose
    /// runs in progress keep their claims (a bot still running is not started twice).
    async fn start(
        config: &Config,
        keys: &Keys,
        shared: &Shared<'_>,
        before: Option<&BotRunner>,
    ) -> anyhow::Result<Self> {
        let syncer = Arc::new(Syncer::new(
            config,
            shared.pool,
            keys,
            shared.cancel.clone(),
        )?);
        let runner = Arc::new(BotRunner::new(syncer, config, shared.tracker, before));
        let scheduler = Scheduler::start(jobs(config, &runner), shared.health.clone()).await?;
        Ok(Self {
            scheduler,
            runner,
            bots: config.bots.iter().map(|bot| bot.uid.clone()).collect(),
            grace: config.shutdown.grace,
            at_start: vec![
                ("database", format!("{:?}", config.database)),
                ("http", format!("{:?}", config.http)),
                ("log", format!("{:?}", config.log)),
            ],
        })
    }

    /// SIGHUP: reads the configuration again and, if it is valid, applies it: bots added,
    /// removed or renamed, schedules and the other settings, from the next tick on. Runs in
    /// progress finish under the configuration they started with. If it is not valid, keeps
    /// this one and logs `config_reload_failed` naming the setting. The database, `http` and
    /// `log` sections are read at start only: a change there is named (`needs_restart`).
    async fn reload(self, reload: &Reload, shared: &Shared<'_>) -> Self {
        systemd::reloading();
        let (config, keys) = match reload() {
            Ok(read) => read,
            Err(err) => {
                events::config_reload_failed(&err);
                systemd::ready();
                return self;
            }
        };
        let next = match Live::start(&config, &keys, shared, Some(&self.runner)).await {
            Ok(next) => next,
            Err(err) => {
                events::config_reload_failed(&ConfigError::new(
                    "config",
                    crate::errors::describe(&err),
                ));
                systemd::ready();
                return self;
            }
        };
        self.scheduler.shutdown().await;
        if let Err(err) = app::record_bots(&config, shared.pool).await {
            events::bots_not_recorded(&crate::errors::describe(&err));
        }
        let added = next.bots.difference(&self.bots).count();
        let removed = self.bots.difference(&next.bots).count();
        let needs_restart: Vec<&str> = self
            .at_start
            .iter()
            .zip(&next.at_start)
            .filter(|(before, after)| before.1 != after.1)
            .map(|(before, _)| before.0)
            .collect();
        events::config_reloaded(next.bots.len(), added, removed, &needs_restart.join(","));
        systemd::ready();
        Self {
            at_start: self.at_start,
            ..next
        }
    }
}

/// Why the daemon's main loop woke up.
enum Wake {
    Stop,
    Hangup,
}

/// Checks the schedule every few seconds, and pings systemd's watchdog (when it has one) at
/// half its timeout, but only while no job is stalled.
struct ScheduleWatch {
    ping: Option<Duration>,
    period: tokio::time::Interval,
}

impl ScheduleWatch {
    fn new() -> Self {
        let ping = systemd::watchdog_period();
        let every = ping.map_or(WATCHDOG_PERIOD, |ping| ping.min(WATCHDOG_PERIOD));
        let mut period = tokio::time::interval(every);
        period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { ping, period }
    }

    /// Watches until shutdown or a SIGHUP.
    async fn until_stop_or_hangup(
        &mut self,
        health: &ScheduleHealth,
        cancel: &CancellationToken,
        hangup: &mut Signal,
    ) -> Wake {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Wake::Stop,
                _ = hangup.recv() => return Wake::Hangup,
                _ = self.period.tick() => {
                    let stalled = health.check(Utc::now());
                    if self.ping.is_some() && stalled.is_empty() {
                        systemd::watchdog_ping();
                    }
                }
            }
        }
    }
}

fn jobs(
    config: &Config,
    runner: &Arc<BotRunner>,
) -> Vec<(String, crate::schedule::Schedule, Trigger)> {
    // One job per distinct schedule, not per bot: its tick starts each bot's run at the bot's
    // own place in the interval (see `spread`), so 10,000 bots are not 10,000 jobs firing in
    // the same second.
    let mut schedules: BTreeMap<&str, (&crate::schedule::Schedule, Vec<BotUid>)> = BTreeMap::new();
    for bot in &config.bots {
        let schedule = config.schedule_of(bot);
        schedules
            .entry(schedule.as_str())
            .or_insert_with(|| (schedule, Vec::new()))
            .1
            .push(bot.uid.clone());
    }
    let mut jobs: Vec<(String, crate::schedule::Schedule, Trigger)> = schedules
        .into_values()
        .map(|(schedule, bots)| {
            let runner = runner.clone();
            let spread = Arc::new(Spread::new(bots));
            let ticks = schedule.clone();
            let trigger: Trigger =
                Arc::new(move || BotRunner::trigger_spread(&runner, &ticks, &spread));
            (
                format!("sync {}", schedule.as_str()),
                schedule.clone(),
                trigger,
            )
        })
        .collect();
    if let Some(schedule) = &config.verify.schedule {
        let runner = runner.clone();
        let (days, repair) = (config.verify.days, config.verify.repair);
        let trigger: Trigger = Arc::new(move || runner.trigger_verify(days, repair));
        jobs.push(("verify".to_owned(), schedule.clone(), trigger));
    }
    if let Some(max_age_days) = config.retention.max_age_days {
        let runner = runner.clone();
        let trigger: Trigger = Arc::new(move || runner.trigger_retention(max_age_days));
        jobs.push((
            "retention".to_owned(),
            config.retention.schedule.clone(),
            trigger,
        ));
    }
    jobs
}

/// Starts runs on request: at most one per bot at a time (a tick that finds the bot's previous
/// run still going is skipped and logged), at most `sync.max_concurrent_bots` at once.
struct BotRunner {
    syncer: Arc<Syncer>,
    running: HashMap<BotUid, Busy>,
    verifying: Busy,
    retaining: Busy,
    concurrency: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// Whether a job is going; claimed by a tick, released when the work ends (even by a panic or
/// an abort: the claim releases on drop).
#[derive(Clone, Default)]
struct Busy(Arc<AtomicBool>);

struct Claim(Arc<AtomicBool>);

impl Busy {
    /// `None` while the previous claim is held.
    fn claim(&self) -> Option<Claim> {
        (!self.0.swap(true, Ordering::SeqCst)).then(|| Claim(self.0.clone()))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl BotRunner {
    /// `before`: the runner of the configuration this one replaces; a bot both know, verify
    /// and retention keep its claims, so what it still runs is not started twice.
    fn new(
        syncer: Arc<Syncer>,
        config: &Config,
        tracker: &TaskTracker,
        before: Option<&BotRunner>,
    ) -> Self {
        let carried = |bot: &BotUid| {
            before
                .and_then(|runner| runner.running.get(bot).cloned())
                .unwrap_or_default()
        };
        Self {
            syncer,
            running: config
                .bots
                .iter()
                .map(|bot| (bot.uid.clone(), carried(&bot.uid)))
                .collect(),
            verifying: before
                .map(|runner| runner.verifying.clone())
                .unwrap_or_default(),
            retaining: before
                .map(|runner| runner.retaining.clone())
                .unwrap_or_default(),
            concurrency: Arc::new(Semaphore::new(config.sync.max_concurrent_bots)),
            tracker: tracker.clone(),
        }
    }

    fn trigger(&self, bot: &BotUid) {
        if self.syncer.ctx.cancel.is_cancelled() {
            return;
        }
        let Some(busy) = self.running.get(bot) else {
            return;
        };
        let Some(claim) = busy.claim() else {
            events::sync_tick_skipped(bot);
            return;
        };
        let (syncer, concurrency, bot) =
            (self.syncer.clone(), self.concurrency.clone(), bot.clone());
        self.tracker.spawn(async move {
            let _claim = claim;
            if let Ok(_slot) = concurrency.acquire().await
                && !syncer.ctx.cancel.is_cancelled()
            {
                syncer.run_bot(&bot, RunRequest::SCHEDULED).await;
            }
        });
    }

    /// A tick of a schedule: starts each of its bots' runs at the bot's place in the time
    /// until the next tick, in one task that sleeps between them (not a timer per bot).
    fn trigger_spread(
        runner: &Arc<Self>,
        schedule: &crate::schedule::Schedule,
        spread: &Arc<Spread>,
    ) {
        if runner.syncer.ctx.cancel.is_cancelled() {
            return;
        }
        let now = Utc::now();
        let interval = schedule
            .next_after(now)
            .and_then(|next| (next - now).to_std().ok())
            .unwrap_or_default();
        let tick = tokio::time::Instant::now();
        let (tracker, cancel) = (runner.tracker.clone(), runner.syncer.ctx.cancel.clone());
        let (runner, spread) = (runner.clone(), spread.clone());
        tracker.spawn(async move {
            for (after, bot) in spread.starts(interval) {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep_until(tick + after) => runner.trigger(bot),
                }
            }
        });
    }

    fn trigger_retention(&self, max_age_days: u32) {
        let Some(claim) = self.retaining.claim() else {
            events::job_tick_skipped("retention");
            return;
        };
        let pool = self.syncer.ctx.pool.clone();
        self.tracker.spawn(async move {
            let _claim = claim;
            if let Err(err) = crate::ops::apply_retention(&pool, max_age_days).await {
                events::retention_failed(&crate::errors::describe(&err));
            }
        });
    }

    fn trigger_verify(&self, days: u32, repair: bool) {
        let Some(claim) = self.verifying.claim() else {
            events::job_tick_skipped("verify");
            return;
        };
        let syncer = self.syncer.clone();
        let bots: Vec<BotUid> = self.running.keys().cloned().collect();
        self.tracker.spawn(async move {
            let _claim = claim;
            for bot in bots {
                if syncer.ctx.cancel.is_cancelled() {
                    return;
                }
                if let Err(err) = syncer.verify(&bot, days, repair).await {
                    tracing::error!(bot_uid = %bot, error = %err, "verify_failed");
                }
            }
        });
    }
}
