//! The `leadsync` binary: parse the command line, load the config, call the library, and turn
//! the outcome into an exit code (see README, "Exit codes").

use std::{collections::HashMap, process::ExitCode};

use clap::Parser as _;
use leadsync::{
    app,
    cli::{Cli, Command},
    config::{Config, ConfigError},
    demo,
    domain::BotUid,
    fake_api::FakeApi,
    telemetry::{self, LogFormat},
};

/// Some bots failed while others succeeded.
const EXIT_PARTIAL: u8 = 3;
/// Everything failed, or something outside the bots did (database, migrations).
const EXIT_FAILURE: u8 = 1;
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
            database_url,
            fault_rate,
        } => {
            // The run's info events (windows committed, runs finished) are the progress display.
            telemetry::init(LogFormat::Text, "leadsync=info");
            finish(demo::run_demo(&database_url, fault_rate).await)
        }
        Command::FakeApi {
            listen,
            bots,
            leads,
            days,
            api_key,
            fault_rate,
            seed,
        } => {
            telemetry::init(LogFormat::Auto, "info");
            finish(serve_fake_api(listen, bots, leads, days, &api_key, fault_rate, seed).await)
        }
        Command::Migrate => {
            let config = match load_config(&cli, &env) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let result = async {
                let pool = app::connect(&config)?;
                app::migrate(&pool).await
            };
            finish(result.await)
        }
        Command::Sync { ref bots } => {
            let config = match load_config(&cli, &env) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let only = match selected_bots(&config, bots) {
                Ok(only) => only,
                Err(err) => return config_error(&err),
            };
            let keys = match config.resolve_api_keys(&env) {
                Ok(keys) => keys,
                Err(err) => return config_error(&err),
            };
            let result = async {
                let pool = app::connect(&config)?;
                app::sync_once(&config, &pool, &keys, &only).await
            };
            match result.await {
                Ok(reports) => match app::tally(&reports) {
                    (_, 0, _) => ExitCode::SUCCESS,
                    (0, _, 0) => ExitCode::from(EXIT_FAILURE),
                    _ => ExitCode::from(EXIT_PARTIAL),
                },
                Err(err) => finish::<()>(Err(err)),
            }
        }
    }
}

fn load_config(cli: &Cli, env: &HashMap<String, String>) -> Result<Config, ExitCode> {
    let config = Config::load(cli.config.as_deref(), env).map_err(|err| config_error(&err))?;
    telemetry::init(config.log.format, &config.log.filter);
    Ok(config)
}

fn selected_bots(config: &Config, names: &[String]) -> Result<Vec<BotUid>, ConfigError> {
    names
        .iter()
        .map(|name| {
            BotUid::parse(name)
                .ok()
                .filter(|uid| config.bots.iter().any(|bot| &bot.uid == uid))
                .ok_or_else(|| ConfigError {
                    setting: "--bot".into(),
                    problem: format!("{name:?} is not a configured bot"),
                })
        })
        .collect()
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
