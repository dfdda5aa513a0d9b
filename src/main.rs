//! The `leadsync` binary: parse the command line, load the config, call the library, and turn
//! the outcome into an exit code (see README, "Exit codes").

use std::{collections::HashMap, process::ExitCode};

use chrono::{Days, Utc};
use clap::Parser as _;
use leadsync::{
    app::{self, Syncer},
    cli::{Cli, Command},
    config::{Config, ConfigError},
    daemon, demo,
    domain::{BotUid, DayRange, ErasureKey},
    fake_api::FakeApi,
    ops, shutdown,
    sync::{RunOutcome, RunRequest},
    telemetry::{self, LogFormat},
};

/// Everything failed, or something outside the bots did (database, migrations).
const EXIT_FAILURE: u8 = 1;
/// Some bots failed while others succeeded.
const EXIT_PARTIAL: u8 = 3;
/// The configuration is invalid (sysexits' EX_CONFIG); nothing was done.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("leadsync: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    match cli.command {
        Command::Demo {
            ref database_url,
            fault_rate,
        } => {
            // The run's info events (windows committed, runs finished) are the progress display.
            telemetry::init(LogFormat::Text, "leadsync=info");
            finish(demo::run_demo(database_url, fault_rate).await)
        }
        Command::FakeApi {
            listen,
            bots,
            leads,
            days,
            ref api_key,
            fault_rate,
            seed,
        } => {
            telemetry::init(LogFormat::Auto, "info");
            finish(serve_fake_api(listen, bots, leads, days, api_key, fault_rate, seed).await)
        }
        _ => match Config::load(cli.config.as_deref(), &env) {
            Ok(config) => {
                telemetry::init(config.log.format, &config.log.filter);
                with_config(&cli.command, &config, &env).await
            }
            Err(err) => config_error(&err),
        },
    }
}

async fn with_config(
    command: &Command,
    config: &Config,
    env: &HashMap<String, String>,
) -> ExitCode {
    let pool = match app::connect(config) {
        Ok(pool) => pool,
        Err(err) => return finish::<()>(Err(err)),
    };
    match command {
        Command::Migrate => finish(app::migrate(&pool).await),
        Command::Status { json } => match ops::status(config, &pool, *json).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(err) => finish::<()>(Err(err)),
        },
        Command::Forget {
            emails,
            phones,
            conversations,
        } => {
            let keys = match erasure_keys(emails, phones, conversations) {
                Ok(keys) => keys,
                Err(err) => return config_error(&err),
            };
            let result = async {
                if config.database.migrate_on_start {
                    app::migrate(&pool).await?;
                }
                ops::forget(&pool, &keys).await
            };
            match result.await {
                Ok(erased) => {
                    println!(
                        "forgot {} value(s): removed {} lead(s) and {} rejected record(s); \
                         no later sync will store them again",
                        keys.len(),
                        erased.leads,
                        erased.rejected
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => finish::<()>(Err(err)),
            }
        }
        Command::Retention => {
            let Some(max_age_days) = config.retention.max_age_days else {
                return config_error(&ConfigError {
                    setting: "retention.max_age_days".into(),
                    problem: "not set: leads are kept forever, there is nothing to delete".into(),
                });
            };
            let result = async {
                if config.database.migrate_on_start {
                    app::migrate(&pool).await?;
                }
                ops::apply_retention(&pool, max_age_days).await
            };
            match result.await {
                Ok(expired) => {
                    println!(
                        "deleted {} lead(s) older than {max_age_days} days and {} rejected record(s) not seen since",
                        expired.leads, expired.rejected
                    );
                    ExitCode::SUCCESS
                }
                Err(err) => finish::<()>(Err(err)),
            }
        }
        _ => {
            let keys = match config.resolve_api_keys(env) {
                Ok(keys) => keys,
                Err(err) => return config_error(&err),
            };
            with_keys(command, config, &pool, &keys).await
        }
    }
}

async fn with_keys(
    command: &Command,
    config: &Config,
    pool: &leadsync::store::Pool,
    keys: &HashMap<BotUid, secrecy::SecretString>,
) -> ExitCode {
    if let Command::Check = command {
        let (report, ok) = ops::check(config, pool, keys).await;
        print!("{report}");
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILURE)
        };
    }
    let cancel = match shutdown::on_signals() {
        Ok(cancel) => cancel,
        Err(err) => return finish::<()>(Err(err.into())),
    };
    match command {
        Command::Sync { bots } => {
            let only: Vec<BotUid> = match bots
                .iter()
                .map(|name| configured_bot(config, name))
                .collect()
            {
                Ok(only) => only,
                Err(err) => return config_error(&err),
            };
            match app::sync_once(config, pool, keys, &only, cancel).await {
                Ok(reports) => match app::tally(&reports) {
                    (_, 0, _) => ExitCode::SUCCESS,
                    (0, _, 0) => ExitCode::from(EXIT_FAILURE),
                    _ => ExitCode::from(EXIT_PARTIAL),
                },
                Err(err) => finish::<()>(Err(err)),
            }
        }
        Command::Run => finish(daemon::run(config, keys, cancel).await),
        Command::Backfill { bot, from, to } => {
            let bot = match configured_bot(config, bot) {
                Ok(bot) => bot,
                Err(err) => return config_error(&err),
            };
            let last = to.unwrap_or_else(|| Utc::now().date_naive());
            let Some(range) = DayRange::new(*from, last + Days::new(1)) else {
                return config_error(&ConfigError {
                    setting: "--from".into(),
                    problem: format!("{from} is after --to {last}"),
                });
            };
            let result = async {
                if config.database.migrate_on_start {
                    app::migrate(pool).await?;
                }
                let syncer = Syncer::new(config, pool, keys, cancel)?;
                Ok(syncer.run_bot(&bot, RunRequest::backfill(range)).await)
            };
            match result.await {
                Ok(report) => match report.outcome {
                    RunOutcome::Succeeded => {
                        let c = report.counts;
                        println!(
                            "backfill of {bot} {}..{}: {} requests, {} inserted, {} updated, {} unchanged, {} rejected",
                            range.start,
                            last,
                            c.requests,
                            c.inserted,
                            c.updated,
                            c.unchanged,
                            c.rejected
                        );
                        ExitCode::SUCCESS
                    }
                    RunOutcome::Skipped => {
                        eprintln!("leadsync: {bot} is being synced by another process; try again");
                        ExitCode::from(EXIT_FAILURE)
                    }
                    RunOutcome::Interrupted => ExitCode::from(EXIT_FAILURE),
                    RunOutcome::Failed(err) => finish::<()>(Err(err.into())),
                },
                Err(err) => finish::<()>(Err(err)),
            }
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
                    Err(err) => return config_error(&err),
                },
                None => config.bots.iter().map(|bot| bot.uid.clone()).collect(),
            };
            verify(config, pool, keys, &bots, *days, *repair, *json, cancel).await
        }
        _ => unreachable!("handled above"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn verify(
    config: &Config,
    pool: &leadsync::store::Pool,
    keys: &HashMap<BotUid, secrecy::SecretString>,
    bots: &[BotUid],
    days: u32,
    repair: bool,
    json: bool,
    cancel: tokio_util::sync::CancellationToken,
) -> ExitCode {
    let syncer = match Syncer::new(config, pool, keys, cancel) {
        Ok(syncer) => syncer,
        Err(err) => return finish::<()>(Err(err)),
    };
    let mut all = serde_json::Map::new();
    let mut clean = true;
    for bot in bots {
        match syncer.verify(bot, days, repair).await {
            Ok(drifts) => {
                clean &= drifts.is_empty();
                if json {
                    all.insert(bot.to_string(), serde_json::json!(drifts));
                } else if drifts.is_empty() {
                    println!("{bot}: the last {days} days match the API");
                } else {
                    println!("{bot}: {} days differ from the API", drifts.len());
                    for d in &drifts {
                        println!(
                            "  {}  api {}  stored {}  missing {}  extra {}",
                            d.day, d.api, d.stored, d.missing, d.extra
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
        println!("{}", serde_json::Value::Object(all));
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// The command line's values, parsed; an error names the flag, never the value.
fn erasure_keys(
    emails: &[String],
    phones: &[String],
    conversations: &[String],
) -> Result<Vec<ErasureKey>, ConfigError> {
    let parse = |flag: &str, values: &[String], parse: fn(&str) -> Result<ErasureKey, _>| {
        values
            .iter()
            .map(|value| {
                parse(value).map_err(|err: leadsync::domain::InvalidErasureKey| ConfigError {
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

fn config_error(err: &ConfigError) -> ExitCode {
    eprintln!("leadsync: configuration error: {err}");
    ExitCode::from(EXIT_CONFIG)
}

fn finish<T>(result: anyhow::Result<T>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("leadsync: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn serve_fake_api(
    listen: std::net::SocketAddr,
    bots: usize,
    leads: usize,
    days: i64,
    api_key: &str,
    fault_rate: f64,
    seed: u64,
) -> anyhow::Result<()> {
    let (world, uids) = demo::fake_api_world(bots, leads, days, api_key, seed);
    world.set_random_faults(fault_rate.clamp(0.0, 0.9), seed);
    let api = FakeApi::start_on(world, listen).await?;
    println!(
        "fake ChatofAI API at {} (Bearer key {api_key:?})",
        api.base_url()
    );
    for uid in &uids {
        println!("  bot {uid}: {leads} leads over {days} days");
    }
    tokio::signal::ctrl_c().await?;
    api.stop().await;
    Ok(())
}
