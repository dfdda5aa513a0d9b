//! The tracing subscriber: JSON lines for machines, a readable format for people.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, fmt, fmt::writer::BoxMakeWriter, prelude::*};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stderr is a terminal.
    #[default]
    Auto,
    Json,
    Text,
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Parses a filter (`log.filter`, `RUST_LOG`). Stricter than `EnvFilter`, which takes a bare
/// word such as `infoo` for a target name and then shows nothing: a bare word must be a level,
/// anything else `target=level`.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is neither a level (trace, debug, info, warn, error, off) nor \
                 target=level (such as leadsync=debug)"
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|err| format!("invalid filter ({err})"))
}

/// `RUST_LOG`, when set: an invalid one is an error, not silently ignored.
pub fn env_filter_problem() -> Option<String> {
    let text = std::env::var("RUST_LOG").ok()?;
    parse_filter(&text).err()
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => Err(format!("{text:?} is not one of auto, json, text")),
        }
    }
}

/// Installs the global subscriber, writing to stderr (stdout is kept for command output such
/// as summaries). `RUST_LOG`, when set, overrides `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let output = if json {
        Output::Json(BoxMakeWriter::new(std::io::stderr))
    } else if terminal {
        Output::Terminal
    } else {
        Output::Text(BoxMakeWriter::new(std::io::stderr))
    };
    install(subscriber(output, filter));
}

/// Makes `subscriber` the process's, and the `log` crate's records its events. Already
/// installed (tests, or a second call): keeps the first.
pub fn install(subscriber: Box<dyn Subscriber + Send + Sync>) {
    drop(subscriber.try_init());
}

/// Where the log lines go and how they look.
#[derive(Debug)]
pub enum Output {
    /// One JSON object a line.
    Json(BoxMakeWriter),
    /// Readable lines, no colours.
    Text(BoxMakeWriter),
    /// A person is watching stderr: coloured lines printed above a progress bar per run.
    Terminal,
}

/// The subscriber [`init`] installs, for `output` and `filter`.
///
/// The filter applies to every layer at once (a global filter), not to the log lines' layer
/// alone: a per-layer filter learns from a thread-local left by the last `enabled()` call,
/// which a callsite cached as "always" skips, so after sqlx asks whether its own query log is
/// enabled (after every query) the next span or event could vanish from the log, a run's
/// lines losing their `bot_uid` and `run_id` (tokio-rs/tracing#2519).
pub fn subscriber(output: Output, filter: EnvFilter) -> Box<dyn Subscriber + Send + Sync> {
    let registry = tracing_subscriber::registry().with(filter);
    match output {
        Output::Json(writer) => Box::new(
            registry.with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            ),
        ),
        Output::Text(writer) => {
            Box::new(registry.with(fmt::layer().with_writer(writer).with_ansi(false)))
        }
        Output::Terminal => {
            // The bars show whatever the filter lets through; the lines print above them.
            let (bars, writer) = crate::progress::layer();
            Box::new(
                registry
                    .with(bars)
                    .with(fmt::layer().with_writer(writer).with_ansi(true)),
            )
        }
    }
}
