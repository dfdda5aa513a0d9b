//! The command line's commands, one function each, from parsed arguments to an [`Outcome`].
//! They print their results on stdout; `main` only turns the outcome into an exit code.

use std::{collections::HashMap, net::SocketAddr};

use anyhow::Context as _;
use chrono::{Days, NaiveDate, Utc};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{self, SchemaUse, Syncer},
    cli::{Command, StateAction},
    config::{Config, ConfigError},
    daemon, demo,
    domain::{BotUid, DayRange, ErasureKey, InvalidErasureKey},
    fake_api::FakeApi,
    ops,
    output::{out, outln},
    shutdown,
    store::{self, Pool},
    sync::{RunOutcome, RunRequest},
};

/// How a command ended (README, "Exit codes"). An `Err` from a command is a failure too.
#[derive(Debug)]
pub enum Outcome {
    Success,
    /// The command reported what failed itself.
    Failed,
    /// Some bots failed while others succeeded.
    Partial,
    /// A setting is wrong; nothing was done.
    Config(ConfigError),
    /// A flag's value is wrong (exit 2, as for clap's own usage errors); nothing was done.
    Usage(ConfigError),
}

impl From<ConfigError> for Outcome {
    fn from(err: ConfigError) -> Self {
        Self::Config(err)
    }
}

/// The API key of each configured bot.
type Keys = HashMap<BotUid, SecretString>;

/// Runs a command that needs the configuration (all but `demo` and `fake-api`).
pub async fn execute(
    command: &Command,
    config: &Config,
    env: &HashMap<String, String>,
) -> anyhow::Result<Outcome> {
    let pool = app::connect(config)?;
    match command {
        // `check` reports the database itself, with everything else.
        Command::Check => {}
        Command::Migrate => {
            use sqlx::Connection as _;
            let _ = app::reach_database(config).await?.close().await;
        }
        Command::Status { .. }
        | Command::State {
            action: StateAction::Show { .. },
        } => app::prepare_database(config, &pool, SchemaUse::Read).await?,
        Command::State {
            action: StateAction::Rewind { .. },
        } => app::prepare_database(config, &pool, SchemaUse::Write).await?,
        _ => {}
    }
    match command {
        Command::Migrate => {
            let pending = store::pending_migrations(&pool).await.unwrap_or_default();
            app::migrate(&pool).await?;
            outln!(
                "applied {} migration(s); the schema is current ({} in all)",
                pending.len(),
                store::MIGRATOR.iter().count()
            );
            Ok(Outcome::Success)
        }
        Command::Status { json } => {
            out!("{}", ops::status(config, &pool, &[], *json).await?);
            Ok(Outcome::Success)
        }
        Command::State {
            action: StateAction::Show { bots, json },
        } => {
            let only: Vec<BotUid> = match bots
                .iter()
                .map(|name| configured_bot(config, name))
                .collect()
            {
                Ok(only) => only,
                Err(err) => return Ok(Outcome::Usage(err)),
            };
            out!("{}", ops::status(config, &pool, &only, *json).await?);
            Ok(Outcome::Success)
        }
        Command::State {
            action: StateAction::Rewind { bot, to },
        } => rewind(config, &pool, bot, *to).await,
        Command::Forget {
            emails,
            phones,
            conversations,
        } => forget(config, &pool, emails, phones, conversations).await,
        Command::Retention => retention(config, &pool).await,
        _ => {
            let keys = match config.resolve_api_keys(env) {
                Ok(keys) => keys,
                Err(err) => return Ok(err.into()),
            };
            if let Command::Check = command {
                let (report, ok) = ops::check(config, &pool, &keys).await;
                out!("{report}");
                return Ok(if ok {
                    Outcome::Success
                } else {
                    Outcome::Failed
                });
            }
            let cancel = shutdown::on_signals().context("listening for SIGTERM and SIGINT")?;
            with_api(command, config, &pool, &keys, cancel).await
        }
    }
}

/// The commands that call the API and stop cleanly on a signal.
async fn with_api(
    command: &Command,
    config: &Config,
    pool: &Pool,
    keys: &Keys,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    match command {
        Command::Sync { bots } => {
            let only: Vec<BotUid> = match bots
                .iter()
                .map(|name| configured_bot(config, name))
                .collect()
            {
                Ok(only) => only,
                Err(err) => return Ok(Outcome::Usage(err)),
            };
            let reports = app::sync_once(config, pool, keys, &only, cancel).await?;
            Ok(match app::tally(&reports) {
                (_, 0, _) => Outcome::Success,
                (0, _, 0) => Outcome::Failed,
                _ => Outcome::Partial,
            })
        }
        Command::Run => {
            // SIGHUP reads the same file and the environment again.
            let file = config.file.clone();
            let reload: daemon::Reload = Box::new(move || {
                let env: HashMap<String, String> = std::env::vars().collect();
                let config = Config::load(file.as_deref(), &env)?;
                let keys = config.resolve_api_keys(&env)?;
                Ok((config, keys))
            });
            daemon::run(config, keys, cancel, reload)
                .await
                .map(|()| Outcome::Success)
        }
        Command::Backfill { bot, from, to } => {
            backfill(config, pool, keys, bot, *from, *to, cancel).await
        }
        Command::Verify {
            bot,
            days,
            repair,
            json,
        } => {
            let bots = match bot {
                Some(name) => match configured_bot(config, name) {
                    Ok(bot) => vec![bot],
                    Err(err) => return Ok(Outcome::Usage(err)),
                },
                None => config.bots.iter().map(|bot| bot.uid.clone()).collect(),
            };
            app::prepare_database(config, pool, SchemaUse::Write).await?;
            let syncer = Syncer::new(config, pool, keys, cancel)?;
            verify(&syncer, &bots, *days, *repair, *json).await
        }
        other => unreachable!("{other:?} does not call the API"),
    }
}

async fn backfill(
    config: &Config,
    pool: &Pool,
    keys: &Keys,
    bot: &str,
    from: NaiveDate,
    to: Option<NaiveDate>,
    cancel: CancellationToken,
) -> anyhow::Result<Outcome> {
    let bot = match configured_bot(config, bot) {
        Ok(bot) => bot,
        Err(err) => return Ok(Outcome::Usage(err)),
    };
    let last = to.unwrap_or_else(|| Utc::now().date_naive());
    let Some(range) = DayRange::new(from, last + Days::new(1)) else {
        return Ok(Outcome::Usage(ConfigError {
            setting: "--from".into(),
            problem: format!("{from} is after --to {last}"),
        }));
    };
    app::prepare_database(config, pool, SchemaUse::Write).await?;
    let syncer = Syncer::new(config, pool, keys, cancel)?;
    let report = syncer.run_bot(&bot, RunRequest::backfill(range)).await;
    match report.outcome {
        RunOutcome::Succeeded => {
            let c = report.counts;
            // Days inclusive here (as the flags); the logs' ranges end exclusive, a day later.
            outln!(
                "backfill of {bot} from {from} through {last}: {} requests, {} inserted, \
                 {} updated, {} unchanged, {} expired (older than retention.max_age_days, not \
                 stored), {} forgotten (erased, not stored), {} rejected",
                c.requests,
                c.inserted,
                c.updated,
                c.unchanged,
                c.expired,
                c.forgotten,
                c.rejected
            );
            Ok(Outcome::Success)
        }
        RunOutcome::Skipped => {
            // As for `sync`, a bot another process holds counts as success (README, "Exit
            // codes"): nothing is wrong, the other process is doing the work.
            outln!(
                "backfill of {bot} skipped: another process is syncing it; run it again when that ends"
            );
            Ok(Outcome::Success)
        }
        RunOutcome::Interrupted => Ok(Outcome::Failed),
        RunOutcome::Failed(err) => Err(err.into()),
    }
}

async fn rewind(config: &Config, pool: &Pool, bot: &str, to: NaiveDate) -> anyhow::Result<Outcome> {
    let bot = match configured_bot(config, bot) {
        Ok(bot) => bot,
        Err(err) => return Ok(Outcome::Usage(err)),
    };
    Ok(match ops::rewind(pool, &bot, to).await? {
        ops::Rewind::Moved(moved) => {
            let beliefs = store::load_beliefs(pool, &bot).await?;
            let lookback = beliefs.lookback_days(config.sync.plan.lookback_days);
            let reads_from = to - Days::new(u64::from(lookback));
            outln!(
                "{bot}: high-water mark moved back from {} to {}; its next run reads from \
                 {reads_from} (the day, minus a lookback of {lookback} days)",
                moved.before.to_rfc3339(),
                moved.after.to_rfc3339()
            );
            Outcome::Success
        }
        ops::Rewind::NotAfter(mark) => {
            return Ok(Outcome::Usage(ConfigError {
                setting: "--to".into(),
                problem: format!(
                    "{to} is not before the bot's high-water mark ({}): nothing to move back",
                    mark.map_or_else(|| "none yet".to_owned(), |at| at.to_rfc3339())
                ),
            }));
        }
        ops::Rewind::Locked => {
            outln!(
                "{bot}: rewind refused: a run of this bot is in progress (it holds the bot's \
                 lock); run it again when the run ends"
            );
            Outcome::Failed
        }
    })
}

async fn verify(
    syncer: &Syncer,
    bots: &[BotUid],
    days: u32,
    repair: bool,
    json: bool,
) -> anyhow::Result<Outcome> {
    let mut all = serde_json::Map::new();
    let mut clean = true;
    for bot in bots {
        match syncer.verify(bot, days, repair).await {
            Ok(drifts) => {
                clean &= drifts.is_empty();
                if json {
                    all.insert(bot.to_string(), serde_json::json!(drifts));
                } else if drifts.is_empty() {
                    outln!("{bot}: the last {days} days match the API");
                } else {
                    let n = drifts.len();
                    outln!(
                        "{bot}: {n} {} from the API",
                        if n == 1 { "day differs" } else { "days differ" }
                    );
                    for d in &drifts {
                        outln!(
                            "  {}  api {}  stored {}  missing {}  gone {}",
                            d.day,
                            d.api,
                            d.stored,
                            d.missing,
                            d.gone
                        );
                    }
                }
            }
            Err(err) => {
                clean = false;
                eprintln!("leadsync: verify of {bot} failed: {err}");
            }
        }
    }
    if json {
        outln!("{}", serde_json::Value::Object(all));
    }
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

async fn forget(
    config: &Config,
    pool: &Pool,
    emails: &[String],
    phones: &[String],
    conversations: &[String],
) -> anyhow::Result<Outcome> {
    let keys = match erasure_keys(emails, phones, conversations) {
        Ok(keys) => keys,
        Err(err) => return Ok(Outcome::Usage(err)),
    };
    app::prepare_database(config, pool, SchemaUse::Write).await?;
    let erased = ops::forget(pool, &keys).await?;
    outln!(
        "forgot {} value(s): removed {} lead(s) and {} rejected record(s); \
         no later sync will store them again",
        keys.len(),
        erased.leads,
        erased.rejected
    );
    Ok(Outcome::Success)
}

async fn retention(config: &Config, pool: &Pool) -> anyhow::Result<Outcome> {
    let Some(max_age_days) = config.retention.max_age_days else {
        return Ok(Outcome::Config(ConfigError {
            setting: "retention.max_age_days".into(),
            problem: "not set: leads are kept forever, there is nothing to delete".into(),
        }));
    };
    app::prepare_database(config, pool, SchemaUse::Write).await?;
    let expired = ops::apply_retention(pool, max_age_days).await?;
    outln!(
        "deleted {} lead(s) older than {max_age_days} days and {} rejected record(s) not seen since",
        expired.leads,
        expired.rejected
    );
    Ok(Outcome::Success)
}

/// `leadsync fake-api`: serves until Ctrl-C.
pub async fn serve_fake_api(
    listen: SocketAddr,
    bots: usize,
    leads: usize,
    days: i64,
    api_key: &str,
    fault_rate: f64,
    seed: u64,
) -> anyhow::Result<()> {
    let (world, uids) = demo::fake_api_world(bots, leads, days, api_key, seed);
    world.set_random_faults(fault_rate.clamp(0.0, 0.9), seed);
    let api = FakeApi::start_on(world, listen)
        .await
        .with_context(|| format!("--listen: cannot listen on {listen}"))?;
    outln!(
        "fake ChatofAI API at {} (Bearer key {api_key:?})",
        api.base_url()
    );
    for uid in &uids {
        outln!("  bot {uid}: {leads} leads over {days} days");
    }
    tokio::signal::ctrl_c().await?;
    api.stop().await;
    Ok(())
}

/// The command line's values, parsed; an error names the flag, never the value.
fn erasure_keys(
    emails: &[String],
    phones: &[String],
    conversations: &[String],
) -> Result<Vec<ErasureKey>, ConfigError> {
    let parse = |flag: &str,
                 values: &[String],
                 parse: fn(&str) -> Result<ErasureKey, InvalidErasureKey>| {
        values
            .iter()
            .map(|value| {
                parse(value).map_err(|err| ConfigError {
                    setting: flag.into(),
                    problem: format!("a value {err}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut keys = parse("--email", emails, ErasureKey::email)?;
    keys.extend(parse("--phone", phones, ErasureKey::phone)?);
    keys.extend(parse(
        "--conversation",
        conversations,
        ErasureKey::conversation,
    )?);
    Ok(keys)
}

fn configured_bot(config: &Config, name: &str) -> Result<BotUid, ConfigError> {
    BotUid::parse(name)
        .ok()
        .filter(|uid| config.bots.iter().any(|bot| &bot.uid == uid))
        .ok_or_else(|| ConfigError {
            setting: "--bot".into(),
            problem: format!("{name:?} is not a configured bot"),
        })
}
