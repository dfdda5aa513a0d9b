//! Progress on a terminal: one bar per sync run (days of its range read, leads stored,
//! requests, rate), drawn by `tracing-indicatif` for the `sync_run` span and kept above by
//! the log lines. Installed only for text logs on a terminal (see [`crate::telemetry`]);
//! everywhere else these calls do nothing.

use std::time::Duration;

use tracing::{Span, Subscriber};
use tracing_indicatif::{IndicatifLayer, span_ext::IndicatifSpanExt, style::ProgressStyle};
use tracing_subscriber::{
    Layer,
    filter::dynamic_filter_fn,
    fmt::{format::debug_fn, writer::BoxMakeWriter},
    registry::LookupSpan,
};

use crate::domain::{DayRange, RunCounts};

/// The span that gets a bar: one sync run.
pub const RUN_SPAN: &str = "sync_run";

/// The layer that draws a bar for each run, and the writer the log lines must go through so
/// they print above the bars instead of through them.
pub fn layer<S>() -> (impl Layer<S>, BoxMakeWriter)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let layer = IndicatifLayer::new()
        .with_progress_style(style())
        // The bot is what tells the bars apart; the run id is in the log lines.
        .with_span_field_formatter(debug_fn(|writer, field, value| {
            if field.name() == "bot_uid" {
                write!(writer, "{value:?}")
            } else {
                Ok(())
            }
        }));
    let writer = BoxMakeWriter::new(layer.get_stderr_writer());
    // Asked at every span, never cached per callsite: a callsite cached as "always" skips
    // `enabled()`, and a per-layer filter then reads what the last `enabled()` on the thread
    // left behind (sqlx asks one after every query), losing the bar (tokio-rs/tracing#2519).
    let runs_only = dynamic_filter_fn(|meta, _| meta.is_span() && meta.name() == RUN_SPAN);
    (layer.with_filter(runs_only), writer)
}

/// The bar's look: the bot, days read of the range, and the counts.
fn style() -> ProgressStyle {
    ProgressStyle::with_template("{span_fields} {wide_bar} {pos}/{len} days {msg}")
        .expect("a valid template")
}

/// A run reads `range`: the bar counts its days.
pub fn run_started(range: DayRange) {
    let span = Span::current();
    span.pb_set_length(days(range));
    span.pb_set_position(0);
}

/// A window of `range` is done, `counts` so far, `requests` made, `elapsed` since the start.
pub fn window_completed(
    range: DayRange,
    window: DayRange,
    counts: &RunCounts,
    requests: u64,
    elapsed: Duration,
) {
    let span = Span::current();
    let done = (window.end - range.start).num_days() + 1;
    span.pb_set_position(u64::try_from(done).unwrap_or(0).min(days(range)));
    span.pb_set_message(&message(counts, requests, elapsed));
}

/// What the bar says beside it: leads stored, requests made, leads a second.
fn message(counts: &RunCounts, requests: u64, elapsed: Duration) -> String {
    let stored = counts.inserted + counts.updated + counts.unchanged;
    let rate = stored as f64 / elapsed.as_secs_f64().max(0.001);
    format!("· {stored} leads · {requests} requests · {rate:.0} leads/s")
}

fn days(range: DayRange) -> u64 {
    u64::try_from(range.span_days() + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_gives_leads_requests_and_rate() {
        let counts = RunCounts {
            inserted: 1_000,
            updated: 200,
            unchanged: 300,
            ..RunCounts::default()
        };
        assert_eq!(
            message(&counts, 31, Duration::from_secs(3)),
            "· 1500 leads · 31 requests · 500 leads/s"
        );
        // At the very start: no division by zero.
        assert!(message(&RunCounts::default(), 0, Duration::ZERO).contains("0 leads/s"));
    }
}
