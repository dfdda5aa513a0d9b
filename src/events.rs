//! The catalogue of named log events. Every line an operator may grep, count or alert on is
//! emitted here, so the names (the `message` of each line) and their fields are in one place.
//! Fields are ids, counts, durations and statuses: never the API key or lead content.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tracing::{debug, error, info, warn};

use crate::{
    chatof::ApiError,
    domain::{DayRange, RunCounts},
};

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn migrations_applied(elapsed: Duration) {
    info!(elapsed_ms = ms(elapsed), "migrations_applied");
}

pub fn sync_run_started(range: DayRange, high_water_mark: Option<DateTime<Utc>>) {
    info!(
        range_start = %range.start,
        range_end = %range.end,
        high_water_mark = high_water_mark.map(|at| at.to_rfc3339()),
        "sync_run_started"
    );
}

pub fn sync_run_skipped(reason: &'static str) {
    warn!(reason, "sync_run_skipped");
}

pub fn runs_abandoned(count: u64) {
    warn!(count, "runs_abandoned");
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

/// A malformed record kept aside for the first time (a record every run re-reads is reported
/// once; `rejected_leads.times_seen` counts the rest).
pub fn lead_rejected(reason: &str, conversation_uid: Option<&str>, page: u32) {
    warn!(reason, conversation_uid, page, "lead_rejected");
}

pub fn window_reread(range: DayRange, attempt: u32, seen: u64, total: u64) {
    warn!(window_start = %range.start, window_end = %range.end, attempt, seen, total, "window_reread");
}

pub fn window_incomplete(range: DayRange, seen: u64, total: u64) {
    error!(window_start = %range.start, window_end = %range.end, seen, total, "window_incomplete");
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

pub fn sync_run_finished(counts: &RunCounts, elapsed: Duration) {
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
        incomplete_windows = counts.incomplete_windows,
        elapsed_ms = ms(elapsed),
        "sync_run_finished"
    );
}

pub fn sync_run_failed(
    error: &dyn std::fmt::Display,
    error_kind: &str,
    status: Option<u16>,
    request_id: Option<&str>,
    counts: &RunCounts,
    elapsed: Duration,
) {
    error!(
        error = %error,
        error_kind,
        status,
        request_id,
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
