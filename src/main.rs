//! The `leadsync` binary: parse the command line, set up logging, load the config, run the
//! command, and turn its outcome into an exit code (see README, "Exit codes").

use std::{collections::HashMap, process::ExitCode};

use clap::Parser as _;
use leadsync::{
    cli::{Cli, Command},
    commands::{self, Outcome},
    config::{Config, ConfigError},
    demo,
    telemetry::{self, LogFormat},
};

/// Everything failed, or something outside the bots did (database, migrations).
const EXIT_FAILURE: u8 = 1;
/// Some bots failed while others succeeded.
const EXIT_PARTIAL: u8 = 3;
/// A flag's value is wrong (clap exits 2 for its own usage errors too).
const EXIT_USAGE: u8 = 2;
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
    exit_code(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Some(problem) = telemetry::env_filter_problem() {
        return Ok(Outcome::Config(ConfigError {
            setting: "RUST_LOG".into(),
            problem,
        }));
    }
    match &cli.command {
        Command::Demo {
            database_url,
            fault_rate,
            verbose,
        } => {
            // The tables are the demo's output; the runs' events only when asked for.
            let filter = if *verbose {
                "leadsync=info"
            } else {
                "leadsync=error"
            };
            telemetry::init(LogFormat::Text, filter);
            demo::run_demo(database_url, *fault_rate).await?;
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
            telemetry::init(LogFormat::Auto, leadsync::config::DEFAULT_LOG_FILTER);
            commands::serve_fake_api(*listen, *bots, *leads, *days, api_key, *fault_rate, *seed)
                .await?;
        }
        command => {
            let env: HashMap<String, String> = std::env::vars().collect();
            let config = match Config::load(cli.config.as_deref(), &env) {
                Ok(config) => config,
                Err(mut err) => {
                    // The path came from the environment, not the command line: say so.
                    let on_command_line = std::env::args().any(|arg| {
                        arg == "-c" || arg == "--config" || arg.starts_with("--config=")
                    });
                    if err.setting == "--config" && !on_command_line {
                        err.setting = "LEADSYNC_CONFIG".into();
                    }
                    return Ok(Outcome::Config(err));
                }
            };
            telemetry::init(config.log.format, &config.log.filter);
            return commands::execute(command, &config, &env).await;
        }
    }
    Ok(Outcome::Success)
}

fn exit_code(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(EXIT_FAILURE),
        Ok(Outcome::Partial) => ExitCode::from(EXIT_PARTIAL),
        Ok(Outcome::Config(err)) => config_error(&err),
        Ok(Outcome::Usage(err)) => {
            eprintln!("leadsync: usage error: {err}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(err) => {
            eprintln!("leadsync: {}", leadsync::errors::describe(&err));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn config_error(err: &ConfigError) -> ExitCode {
    eprintln!("leadsync: configuration error: {err}");
    ExitCode::from(EXIT_CONFIG)
}
