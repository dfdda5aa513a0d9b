use std::process::{Command, Output};

use leadsync::fake_api::{Fault, WorldSettings};

use crate::helpers::*;

fn leadsync(config: &ConfigFile, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadsync"));
    command
        .args(["--config", config.path()])
        .args(args)
        .env_remove("DATABASE_URL");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run leadsync")
}

const VALID: &str = "[database]\nurl = \"postgres://postgres@127.0.0.1:1/none\"\n\
                     [[bots]]\nuid = \"86a2eb21-9711-4950-8ffd-50c04317956c\"\n";

#[test]
fn configuration_errors_exit_78_with_one_line_naming_the_setting() {
    let cases: [(&str, &str); 10] = [
        (
            "[database]\nurl = \"postgres://x/y\"\nmax_connection = 3\n[[bots]]\nuid = \"b\"\n",
            "max_connection",
        ),
        (
            "[database]\nurl = \"not a url\"\n[[bots]]\nuid = \"b\"\n",
            "database.url",
        ),
        (
            "[database]\nurl = \"mysql://x/y\"\n[[bots]]\nuid = \"b\"\n",
            "database.url",
        ),
        ("[database]\nurl = \"postgres://x/y\"\n", "bots"),
        (
            "[database]\nurl = \"postgres://x/y\"\n[[bots]]\nuid = \"b\"\n[[bots]]\nuid = \"b\"\n",
            "bots[1].uid",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\npage_size = 0\n[[bots]]\nuid = \"b\"\n",
            "api.page_size",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\nbase_url = \"ftp://x\"\n[[bots]]\nuid = \"b\"\n",
            "api.base_url",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[sync]\nbackfill_from = \"yesterday\"\n[[bots]]\nuid = \"b\"\n",
            "sync.backfill_from",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\npage_size = \"many\"\n[[bots]]\nuid = \"b\"\n",
            "api.page_size",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[[bots]]\nuid = \"../etc\"\n",
            "bots[0].uid",
        ),
    ];
    for (toml, setting) in cases {
        let config = write_config(toml);
        let out = leadsync(&config, &[("CHATOFAI_API_KEY", "k")], &["sync"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{setting}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one line for {setting}: {stderr}"
        );
        assert!(stderr.contains(setting), "{stderr:?} should name {setting}");
    }
}

#[test]
fn a_missing_api_key_is_a_configuration_error_before_any_work() {
    let config = write_config(VALID);
    let out = leadsync(&config, &[], &["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("CHATOFAI_API_KEY"), "{stderr}");
}

#[test]
fn the_environment_overrides_the_file() {
    let config = write_config(VALID);
    let out = leadsync(&config, &[("LEADSYNC__API__PAGE_SIZE", "0")], &["sync"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api.page_size"));
}

#[tokio::test]
async fn sync_exits_3_when_one_bot_fails_and_logs_json_without_secrets_or_personal_data() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 60, days_ago(5), days_ago(0), 50);
    h.world
        .generate_leads(BOT_B, 60, days_ago(5), days_ago(0), 51);
    h.world.push_faults(Some(BOT_B), [Fault::Unauthorized]);
    let config = write_config(&h.config_toml("[log]\nformat = \"json\"\nfilter = \"debug\"\n"));

    let out = tokio::task::spawn_blocking(move || {
        leadsync(&config, &[("CHATOFAI_API_KEY", KEY)], &["sync"])
    })
    .await
    .expect("join");

    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{logs}");
    assert_eq!(h.stored(BOT_A).await, h.world.truth(BOT_A));
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    let finished = lines
        .iter()
        .find(|line| line["message"] == "sync_run_finished")
        .expect("a sync_run_finished event");
    assert_eq!(finished["span"]["bot_uid"], BOT_A);
    assert!(finished["span"]["run_id"].is_string());
    let failed = lines
        .iter()
        .find(|line| line["message"] == "sync_run_failed")
        .expect("a sync_run_failed event");
    assert_eq!(failed["span"]["bot_uid"], BOT_B);
    assert_eq!(failed["status"], 401);
    assert!(!logs.contains(KEY), "the API key leaked into the logs");
    for lead in h.world.truth(BOT_A) {
        for value in [lead.name, lead.email, lead.phone, lead.remark]
            .into_iter()
            .flatten()
        {
            if value.chars().count() >= 6 {
                assert!(!logs.contains(&value), "personal data leaked into the logs");
            }
        }
    }
}

#[test]
fn every_bundled_config_file_is_valid() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in [
        "config/leadsync.toml",
        "deploy/compose/leadsync.toml",
        "deploy/k8s/common/leadsync.toml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
        // The deployments pass the database URL as a secret environment variable.
        let env = std::collections::HashMap::from([(
            "DATABASE_URL".to_owned(),
            "postgres://leadsync@db/leadsync".to_owned(),
        )]);
        let config = leadsync::config::Config::from_toml(&text, &env);
        assert!(config.is_ok(), "{file}: {:?}", config.err());
    }
}

#[tokio::test]
async fn fake_api_serves_the_bots_it_prints_until_stopped() {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadsync"))
        .args([
            "fake-api",
            "--listen",
            "127.0.0.1:0",
            "--bots",
            "2",
            "--leads",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fake-api");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let banner = lines.next().expect("a first line").expect("utf-8");
    let base_url = banner
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .expect("the base URL is printed")
        .to_owned();
    let bot_line = lines.next().expect("a bot line").expect("utf-8");
    let bot = bot_line
        .split_whitespace()
        .nth(1)
        .expect("bot uid")
        .trim_end_matches(':')
        .to_owned();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let body = reqwest::Client::new()
        .get(format!("{base_url}/chatbot/{bot}/leads?page_size=100"))
        .bearer_auth("demo-key")
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    let _ = child.kill();
    let _ = child.wait();
    let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(page["code"], 0);
    // 30 leads and the one malformed record every fake-api bot carries.
    assert_eq!(page["data"]["total"], 31);
}
