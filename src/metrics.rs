//! Prometheus metrics (served on `/metrics` by `leadsync run`). One process-wide set, updated
//! by the events in `events.rs`, so every counted thing is also a log line. Labels are bot uids,
//! outcomes and statuses: never personal data.

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BotLabels {
    pub bot_uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub bot_uid: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeadLabels {
    pub bot_uid: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP status (`200`, `429`, ...) or the transport failure (`timeout`, `connect`, ...).
    pub status: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub runs: Family<RunLabels, Counter>,
    pub leads: Family<LeadLabels, Counter>,
    pub api_requests: Family<RequestLabels, Counter>,
    pub retries: Counter,
    pub run_duration: Histogram,
    pub last_success: Family<BotLabels, Gauge<f64, AtomicU64>>,
    pub hwm_lag: Family<BotLabels, Gauge<f64, AtomicU64>>,
    pub ticks_skipped: Family<BotLabels, Counter>,
    pub schedule_healthy: Gauge,
    pub verify_drifted_days: Family<BotLabels, Gauge>,
    pub bot_quiet: Family<BotLabels, Gauge>,
    pub database_errors: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("leadsync");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register("sync_runs", "Sync runs by bot and outcome", runs.clone());
        let leads = Family::<LeadLabels, Counter>::default();
        registry.register(
            "leads",
            "Leads received, by bot and what became of them (inserted, updated, unchanged, rejected, forgotten, expired)",
            leads.clone(),
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Requests to the ChatofAI API by HTTP status or transport failure",
            api_requests.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "api_retries",
            "Requests retried after a transient failure",
            retries.clone(),
        );
        let run_duration = Histogram::new([
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
        ]);
        registry.register(
            "sync_run_duration_seconds",
            "Duration of sync runs",
            run_duration.clone(),
        );
        let last_success = Family::<BotLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the bot's last successful run",
            last_success.clone(),
        );
        let hwm_lag = Family::<BotLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "high_water_mark_lag_seconds",
            "Age of the bot's newest stored lead when its last run ended",
            hwm_lag.clone(),
        );
        let ticks_skipped = Family::<BotLabels, Counter>::default();
        registry.register(
            "ticks_skipped",
            "Scheduled ticks skipped because the bot's previous run was still going",
            ticks_skipped.clone(),
        );
        let schedule_healthy = Gauge::default();
        registry.register(
            "schedule_healthy",
            "1 while every cron job ticks on time, 0 once one has stopped",
            schedule_healthy.clone(),
        );
        let verify_drifted_days = Family::<BotLabels, Gauge>::default();
        registry.register(
            "verify_drifted_days",
            "Days whose copy differed from the API at the bot's last verify",
            verify_drifted_days.clone(),
        );
        let bot_quiet = Family::<BotLabels, Gauge>::default();
        registry.register(
            "bot_quiet",
            "1 while the bot's newest lead is older than 8 times its usual gap between leads (at least 6 hours), else 0",
            bot_quiet.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Database failures: start-up migrations that could not reach it, runs failed on a database error",
            database_errors.clone(),
        );
        Self {
            registry,
            runs,
            leads,
            api_requests,
            retries,
            run_duration,
            last_success,
            hwm_lag,
            ticks_skipped,
            schedule_healthy,
            verify_drifted_days,
            bot_quiet,
            database_errors,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `http.per_bot_detail`. On (the default), every per-bot series carries the bot's uid. Off
/// (for thousands of bots), only what alerts select per bot does: the last success, failed
/// runs, verify drift and quiet bots; the leads by result, the runs that succeeded or were
/// skipped and the skipped ticks become one series for all bots each, and the mark's lag is
/// not served. Set once at start, before any series exists.
pub fn set_per_bot_detail(on: bool) {
    PER_BOT_DETAIL.store(on, Relaxed);
}

static PER_BOT_DETAIL: AtomicBool = AtomicBool::new(true);

/// Whether series that only describe a bot carry its uid.
pub fn per_bot_detail() -> bool {
    PER_BOT_DETAIL.load(Relaxed)
}

/// The `bot_uid` of a series that only describes the bot: its uid, or none without the detail
/// (an empty label value, which Prometheus stores as no label).
pub fn detail_uid(bot_uid: &str) -> String {
    if per_bot_detail() {
        bot_uid.to_owned()
    } else {
        String::new()
    }
}

pub fn bot(bot_uid: &str) -> BotLabels {
    BotLabels {
        bot_uid: bot_uid.to_owned(),
    }
}
