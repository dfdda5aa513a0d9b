//! The tracing subscriber: JSON lines for machines, a readable format for people.

use std::io::IsTerminal;

use serde::Deserialize;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

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
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // The filter is the log lines' own: the progress bars show whatever it lets through.
    let registry = tracing_subscriber::registry();
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    } else if std::io::stderr().is_terminal() {
        // A person is watching: a progress bar per run, the log lines printed above the bars.
        let (bars, writer) = crate::progress::layer();
        registry
            .with(bars)
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_ansi(true)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_filter(filter),
            )
            .try_init()
    };
    // Already installed (tests, or a second call): keep the first.
    drop(result);
}
