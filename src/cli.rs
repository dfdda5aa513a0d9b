//! The command line: commands and flags, nothing else.

use std::{net::SocketAddr, path::PathBuf};

use chrono::NaiveDate;

use clap::{ArgGroup, Parser, Subcommand};

pub const DEFAULT_DEMO_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/leadsync_demo";

#[derive(Debug, Parser)]
#[command(
    name = "leadsync",
    // `0.1.0 (commit 206f7a9c1d2e, release build)`: see build.rs.
    version = env!("LEADSYNC_VERSION"),
    about = "Keeps a PostgreSQL copy of the leads ChatofAI chatbots collect"
)]
pub struct Cli {
    /// The TOML configuration file (settings can also come from `LEADSYNC__<SECTION>__<KEY>`).
    #[arg(
        long,
        short,
        global = true,
        env = "LEADSYNC_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the database schema, then exit.
    Migrate,
    /// One sync pass over every configured bot (or the ones named with --bot), then exit.
    Sync {
        /// Sync only this bot (repeatable). It must be configured.
        #[arg(long = "bot", value_name = "UID")]
        bots: Vec<String>,
    },
    /// The daemon: sync every bot on its schedule, serve /healthz, /readyz and /metrics,
    /// until SIGTERM or SIGINT.
    Run,
    /// Each bot's high-water mark, last run, lead count and last error.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// A bot's sync position: show it, or move its high-water mark back on purpose.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Validate the config, reach the database, report pending migrations, and make one
    /// cheap authenticated request per bot. Exits non-zero if anything failed.
    Check,
    /// Re-read a range of days for one bot (after an outage, or to pick up edits older than
    /// the lookback). Never moves the high-water mark backwards.
    Backfill {
        /// The bot to re-read; it must be configured.
        #[arg(long, value_name = "UID")]
        bot: String,
        /// First day, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
        from: NaiveDate,
        /// Last day, YYYY-MM-DD, included (default: today, UTC).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
        to: Option<NaiveDate>,
    },
    /// Prove the copy complete: for each of the last N days, compare the leads the API lists
    /// with the rows stored. Exits non-zero if any day differs.
    Verify {
        /// Only this bot (default: all configured bots).
        #[arg(long, value_name = "UID")]
        bot: Option<String>,
        /// How many days back from today, UTC (1 to 366, as verify.days).
        #[arg(long, default_value_t = 7, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Re-sync the days that differ, then look again.
        #[arg(long)]
        repair: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Right to erasure: delete every lead (and rejected record) with this email, phone or
    /// conversation, and keep a tombstone (a hash, not the value) so no later sync, lookback
    /// or backfill stores it again. Prints how many rows it removed.
    #[command(group(ArgGroup::new("whom").required(true).multiple(true)))]
    Forget {
        /// Email, compared trimmed and case-insensitively (repeatable).
        #[arg(long = "email", value_name = "ADDRESS", group = "whom")]
        emails: Vec<String>,
        /// Phone, compared on its digits only: "+1 555-0100" matches "15550100" (repeatable).
        #[arg(long = "phone", value_name = "NUMBER", group = "whom")]
        phones: Vec<String>,
        /// Conversation uid, exactly (repeatable).
        #[arg(long = "conversation", value_name = "UID", group = "whom")]
        conversations: Vec<String>,
    },
    /// Delete the leads older than retention.max_age_days now (the daemon does it on
    /// retention.schedule).
    Retention,
    /// See it work: the bundled fake API, a real sync into Postgres, a summary. Needs no config.
    Demo {
        /// Where to put the demo's tables (the database is created if missing).
        #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DEMO_DATABASE_URL)]
        database_url: String,
        /// Share of API requests the fake fails in assorted ways (0.0 to 0.9).
        #[arg(long, default_value_t = 0.15, value_parser = parse_fault_rate)]
        fault_rate: f64,
        /// Also log every run's events (windows, retries, runs finished) on stderr; without it
        /// only errors are logged and the tables are the output.
        #[arg(long)]
        verbose: bool,
    },
    /// Serve the fake ChatofAI API for local experiments, until Ctrl-C.
    FakeApi {
        /// Address to serve on (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: SocketAddr,
        /// How many bots (their uids are printed at start).
        #[arg(long, default_value_t = 3)]
        bots: usize,
        /// Leads per bot.
        #[arg(long, default_value_t = 1000)]
        leads: usize,
        /// Spread the leads over this many days up to now.
        #[arg(long, default_value_t = 90)]
        days: i64,
        /// The Bearer key the fake accepts.
        #[arg(long, default_value = "demo-key")]
        api_key: String,
        /// Share of requests failing in assorted transient ways (0.0 to 0.9).
        #[arg(long, default_value_t = 0.0, value_parser = parse_fault_rate)]
        fault_rate: f64,
        /// Seed of the generated leads and faults: the same seed serves the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Each bot's high-water mark, resume point, what was learned about the API and last run
    /// (as `status`, for the bots named).
    Show {
        /// Only this bot (repeatable; default: every configured bot). It must be configured.
        #[arg(long = "bot", value_name = "UID")]
        bots: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Move a bot's high-water mark back to the start of a day (UTC), so that its next run
    /// reads again from that day, minus the lookback. Refused while a run holds the bot;
    /// recorded in the run ledger (kind `rewind`). Later runs move the mark forward as usual.
    Rewind {
        /// The bot; it must be configured.
        #[arg(long, value_name = "UID")]
        bot: String,
        /// The day to move the mark back to, YYYY-MM-DD; before the mark's own day.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_day)]
        to: NaiveDate,
    },
}

/// A day as `YYYY-MM-DD`; the error says so (chrono's own says "input contains invalid
/// characters").
fn parse_day(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date YYYY-MM-DD"))
}

/// A share of requests to fail, 0.0 to 0.9 (at 1.0 nothing would ever succeed).
fn parse_fault_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=0.9).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a share from 0.0 to 0.9")),
    }
}
