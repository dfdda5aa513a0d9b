//! The catalogue of named log events. Every line an operator may grep, count or alert on is
//! emitted here, so the names (the `message` of each line) and their fields are in one place.
//! Fields are ids, counts, durations and statuses: never the API key or lead content.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{debug, error, info, warn};

use crate::{
    chatof::{ApiError, LeadsPage},
    domain::{BotUid, DayRange, RunCounts},
    metrics::{
        LeadLabels, RequestLabels, RunLabels, bot as bot_labels, detail_uid, metrics,
        per_bot_detail,
    },
    sync::SyncError,
};

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn migrations_applied(applied: usize, elapsed: Duration) {
    info!(applied, elapsed_ms = ms(elapsed), "migrations_applied");
}

pub fn sync_run_started(range: DayRange, high_water_mark: Option<DateTime<Utc>>) {
    crate::progress::run_started(range);
    info!(
        range_start = %range.start,
        range_end = %range.end,
        high_water_mark = high_water_mark.map(|at| at.to_rfc3339()),
        "sync_run_started"
    );
}

pub fn sync_run_skipped(bot: &BotUid, reason: &'static str) {
    count_run(bot, "skipped");
    // Routine with several replicas: whoever ticks first syncs the bot, the others skip it.
    info!(reason, "sync_run_skipped");
}

fn count_run(bot: &BotUid, outcome: &'static str) {
    // Failed runs are alerted on per bot: they keep the uid whatever the detail.
    let bot_uid = if outcome == "failed" {
        bot.to_string()
    } else {
        detail_uid(bot.as_str())
    };
    metrics()
        .runs
        .get_or_create(&RunLabels { bot_uid, outcome })
        .inc();
}

fn count_leads(bot: &BotUid, counts: &RunCounts) {
    for (result, value) in [
        ("inserted", counts.inserted),
        ("updated", counts.updated),
        ("unchanged", counts.unchanged),
        ("rejected", counts.rejected),
        ("forgotten", counts.forgotten),
        ("expired", counts.expired),
    ] {
        metrics()
            .leads
            .get_or_create(&LeadLabels {
                bot_uid: detail_uid(bot.as_str()),
                result,
            })
            .inc_by(value);
    }
}

/// Counts one attempt at a request, by HTTP status or transport failure (metrics only: the
/// failures are logged by `request_retried` or the run's failure).
pub fn api_request_completed(result: &Result<LeadsPage, ApiError>) {
    let status = match result {
        Ok(_) => "200".to_owned(),
        Err(err) => err
            .status()
            .map_or_else(|| err.kind(), |status| status.as_u16().to_string()),
    };
    metrics()
        .api_requests
        .get_or_create(&RequestLabels { status })
        .inc();
}

pub fn runs_abandoned(count: u64) {
    warn!(count, "runs_abandoned");
}

/// A window of the run's `range` was read whole and committed: `counts` so far, `requests`
/// made so far, `elapsed` since the run started.
pub fn window_completed(
    range: DayRange,
    window: DayRange,
    counts: &RunCounts,
    requests: u64,
    elapsed: Duration,
) {
    crate::progress::window_completed(range, window, counts, requests, elapsed);
    debug!(
        window_start = %window.start,
        window_end = %window.end,
        inserted = counts.inserted,
        updated = counts.updated,
        unchanged = counts.unchanged,
        requests,
        "window_completed"
    );
}

pub fn window_sized(range: DayRange, total: Option<u64>, split: bool) {
    debug!(window_start = %range.start, window_end = %range.end, total, split, "window_sized");
}

pub fn page_fetched(
    range: DayRange,
    page: u32,
    records: usize,
    total: Option<u64>,
    request_id: Option<&str>,
    elapsed: Duration,
) {
    debug!(
        window_start = %range.start,
        window_end = %range.end,
        page,
        records,
        total,
        request_id,
        elapsed_ms = ms(elapsed),
        "page_fetched"
    );
}

pub fn request_retried(attempt: u64, err: &ApiError, delay: Duration) {
    metrics().retries.inc();
    warn!(
        attempt,
        error_kind = %err.kind(),
        status = err.status().map(|status| status.as_u16()),
        request_id = err.request_id(),
        delay_ms = ms(delay),
        error = %err,
        "request_retried"
    );
}

/// A page whose answer was over `api.max_body_bytes`, asked for again as `parts` smaller pages.
pub fn page_split(page: u32, page_size: u32, parts: usize) {
    info!(page, page_size, parts, "page_split");
}

/// A malformed record kept aside for the first time (a record every run re-reads is reported
/// once; `rejected_leads.times_seen` counts the rest).
pub fn lead_rejected(reason: &str, conversation_uid: Option<&str>, page: u32) {
    warn!(reason, conversation_uid, page, "lead_rejected");
}

/// A window read again because it listed fewer leads than its total: routine when leads
/// arrive while it is paged, hence info.
pub fn window_reread(range: DayRange, attempt: u32, seen: u64, total: u64) {
    info!(window_start = %range.start, window_end = %range.end, attempt, seen, total, "window_reread");
}

/// Still short of its total after every re-read: the leads it missed are the next run's
/// (they arrived while it paged) or a repair's (`verify`).
pub fn window_incomplete(range: DayRange, seen: u64, total: u64) {
    warn!(window_start = %range.start, window_end = %range.end, seen, total, "window_incomplete");
}

/// A listing that did not end within the record cap of a window that cannot be cut smaller:
/// what was read is stored, the rest of the day is not.
pub fn listing_cut_off(range: DayRange, records: u64) {
    warn!(window_start = %range.start, window_end = %range.end, records, "listing_cut_off");
}

/// What leadsync believes about one of the API's undocumented behaviours changed.
pub fn api_belief_changed(belief: &'static str, from: &str, to: &str) {
    info!(belief, from, to, "api_belief_changed");
}

/// Listed leads were seen created later than their range's last day: the lookback grows to
/// cover it (and `verify` reads the same margin).
pub fn lookback_widened(from_days: u32, to_days: u32, late_hours: i64) {
    info!(from_days, to_days, late_hours, "lookback_widened");
}

/// The probe of a range that cannot hold leads, and what it answered.
pub fn api_probed(records: usize, total: Option<u64>) {
    debug!(records, total, "api_probed");
}

/// The whole copy holds fewer leads than the API's whole-chatbot `total`, after a re-read.
/// Logged once per distinct shortfall.
pub fn copy_incomplete(total: u64, held: u64, shortfall: u64) {
    warn!(total, held, shortfall, "copy_incomplete");
}

pub fn high_water_mark_advanced(
    window: DayRange,
    high_water_mark: Option<DateTime<Utc>>,
    resume_from: NaiveDate,
) {
    info!(
        window_start = %window.start,
        window_end = %window.end,
        high_water_mark = high_water_mark.map(|at| at.to_rfc3339()),
        resume_from = %resume_from,
        "high_water_mark_advanced"
    );
}

pub fn sync_run_finished(
    bot: &BotUid,
    counts: &RunCounts,
    high_water_mark: Option<DateTime<Utc>>,
    elapsed: Duration,
) {
    count_run(bot, "succeeded");
    count_leads(bot, counts);
    let m = metrics();
    m.run_duration.observe(elapsed.as_secs_f64());
    let now = Utc::now();
    m.last_success
        .get_or_create(&bot_labels(bot.as_str()))
        .set(now.timestamp_millis() as f64 / 1000.0);
    if let Some(hwm) = high_water_mark
        && per_bot_detail()
    {
        let lag = (now - hwm).num_milliseconds().max(0) as f64 / 1000.0;
        m.hwm_lag.get_or_create(&bot_labels(bot.as_str())).set(lag);
    }
    info!(
        windows = counts.windows,
        pages = counts.pages,
        requests = counts.requests,
        retries = counts.retries,
        rereads = counts.rereads,
        fetched = counts.fetched,
        inserted = counts.inserted,
        updated = counts.updated,
        unchanged = counts.unchanged,
        rejected = counts.rejected,
        forgotten = counts.forgotten,
        expired = counts.expired,
        incomplete_windows = counts.incomplete_windows,
        elapsed_ms = ms(elapsed),
        "sync_run_finished"
    );
}

pub fn sync_run_interrupted(bot: &BotUid, counts: &RunCounts, elapsed: Duration) {
    count_run(bot, "interrupted");
    count_leads(bot, counts);
    warn!(
        requests = counts.requests,
        inserted = counts.inserted,
        updated = counts.updated,
        elapsed_ms = ms(elapsed),
        "sync_run_interrupted"
    );
}

pub fn sync_run_failed(bot: &BotUid, error: &SyncError, counts: &RunCounts, elapsed: Duration) {
    count_run(bot, "failed");
    count_leads(bot, counts);
    if matches!(error, SyncError::Database(_)) {
        metrics().database_errors.inc();
    }
    metrics().run_duration.observe(elapsed.as_secs_f64());
    error!(
        error = %error,
        error_kind = %error.kind(),
        status = error.status(),
        request_id = error.request_id(),
        hint = error.hint(),
        requests = counts.requests,
        inserted = counts.inserted,
        updated = counts.updated,
        elapsed_ms = ms(elapsed),
        "sync_run_failed"
    );
}

pub fn sync_pass_finished(
    bots: usize,
    succeeded: usize,
    failed: usize,
    skipped: usize,
    elapsed: Duration,
) {
    info!(
        bots,
        succeeded,
        failed,
        skipped,
        elapsed_ms = ms(elapsed),
        "sync_pass_finished"
    );
}

/// The API is reached through a proxy from the environment (said once, at start).
pub fn api_proxy(proxy: &crate::chatof::ProxyInUse) {
    info!(
        variable = proxy.variable,
        proxy = %proxy.proxy,
        no_proxy_set = proxy.no_proxy,
        "api_proxy"
    );
}

/// SIGHUP applied a new configuration: `bots` now, how many were added and removed, and the
/// sections read at start only that changed (they need a restart).
pub fn config_reloaded(bots: usize, added: usize, removed: usize, needs_restart: &str) {
    if needs_restart.is_empty() {
        info!(bots, added, removed, "config_reloaded");
    } else {
        warn!(bots, added, removed, needs_restart, "config_reloaded");
    }
}

/// SIGHUP read a configuration that is not valid: the running one stays.
pub fn config_reload_failed(err: &crate::config::ConfigError) {
    error!(setting = %err.setting, problem = %err.problem, "config_reload_failed");
}

pub fn daemon_started(bots: usize, http: Option<std::net::SocketAddr>) {
    info!(
        bots,
        http = http.map(|addr| addr.to_string()),
        "daemon_started"
    );
}

pub fn http_listening(addr: std::net::SocketAddr) {
    info!(addr = %addr, "http_listening");
}

pub fn database_unavailable(attempt: u32, error: &dyn std::fmt::Display, retry_in: Duration) {
    metrics().database_errors.inc();
    error!(attempt, error = %error, retry_in_ms = ms(retry_in), "database_unavailable");
}

/// The daemon could not record the configured bots' names (the views show them as NULL).
pub fn bots_not_recorded(error: &dyn std::fmt::Display) {
    warn!(error = %error, "bots_not_recorded");
}

/// `leadsync forget` erased leads. Counts only: the values are exactly what must not be kept.
pub fn leads_forgotten(
    emails: usize,
    phones: usize,
    conversations: usize,
    leads: u64,
    rejected: u64,
    tombstones: u64,
) {
    info!(
        emails,
        phones, conversations, leads, rejected, tombstones, "leads_forgotten"
    );
}

pub fn retention_applied(max_age_days: u32, leads: u64, rejected: u64, elapsed: Duration) {
    info!(
        max_age_days,
        leads,
        rejected,
        elapsed_ms = ms(elapsed),
        "retention_applied"
    );
}

pub fn retention_failed(error: &dyn std::fmt::Display) {
    error!(error = %error, "retention_failed");
}

pub fn sync_tick_skipped(bot: &BotUid) {
    metrics()
        .ticks_skipped
        .get_or_create(&bot_labels(&detail_uid(bot.as_str())))
        .inc();
    warn!(bot_uid = %bot, reason = "previous_run_active", "sync_tick_skipped");
}

/// A verify or retention tick found the previous one still going.
pub fn job_tick_skipped(job: &'static str) {
    info!(job, reason = "previous_run_active", "job_tick_skipped");
}

pub fn schedule_stalled(job: &str, schedule: &str, due: DateTime<Utc>) {
    error!(job, schedule, due = %due.to_rfc3339(), "schedule_stalled");
}

pub fn schedule_recovered(job: &str) {
    info!(job, "schedule_recovered");
}

/// systemd's notify socket (`NOTIFY_SOCKET`) refused a message: under `Type=notify` the unit
/// will not be seen as started, or its watchdog will fire.
pub fn systemd_notify_failed(error: &std::io::Error) {
    warn!(error = %error, "systemd_notify_failed");
}

pub fn shutdown_requested(signal: &str) {
    info!(signal, "shutdown_requested");
}

pub fn shutdown_forced(signal: &str) {
    warn!(signal, "shutdown_forced");
}

pub fn shutdown_completed(runs_in_flight: usize, elapsed: Duration, grace_expired: bool) {
    if grace_expired {
        warn!(
            runs_in_flight,
            elapsed_ms = ms(elapsed),
            "shutdown_grace_expired"
        );
    } else {
        info!(elapsed_ms = ms(elapsed), "shutdown_completed");
    }
}

/// After a successful run: whether the bot is quiet (its silence far past its usual gap
/// between leads). Logged once when it goes quiet, and once when leads come again; the gauge
/// follows every look.
pub fn bot_quiet_observed(bot: &BotUid, quiet: &crate::store::Quiet) {
    metrics()
        .bot_quiet
        .get_or_create(&bot_labels(bot.as_str()))
        .set(i64::from(quiet.now));
    let hours = |secs: Option<f64>| secs.map(|secs| (secs / 3600.0 * 10.0).round() / 10.0);
    if quiet.now && !quiet.before {
        info!(
            bot_uid = %bot,
            silence_hours = hours(quiet.silence_secs),
            usual_gap_hours = hours(quiet.usual_gap_secs),
            "bot_quiet"
        );
    } else if quiet.before && !quiet.now {
        info!(bot_uid = %bot, "bot_active_again");
    }
}

/// The look at a bot's silence failed (the run itself succeeded).
pub fn quiet_check_failed(bot: &BotUid, error: &sqlx::Error) {
    warn!(bot_uid = %bot, error = %crate::errors::describe_error(error), "quiet_check_failed");
}

/// A verify found `marked` stored leads the API no longer lists (now marked
/// `source_missing_since`), and `back` marked ones listed again (mark cleared).
pub fn leads_gone_at_source(bot: &BotUid, marked: u64, back: u64) {
    info!(bot_uid = %bot, marked, back, "leads_gone_at_source");
}

pub fn verify_day_drifted(
    bot: &BotUid,
    day: NaiveDate,
    api: usize,
    stored: usize,
    missing: usize,
    gone: usize,
) {
    warn!(bot_uid = %bot, day = %day, api, stored, missing, gone, "verify_day_drifted");
}

pub fn verify_finished(bot: &BotUid, days: u32, drifted: usize, repaired: bool) {
    metrics()
        .verify_drifted_days
        .get_or_create(&bot_labels(bot.as_str()))
        .set(i64::try_from(drifted).unwrap_or(i64::MAX));
    info!(bot_uid = %bot, days, drifted, repaired, "verify_finished");
}
