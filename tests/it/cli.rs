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
    let cases: [(&str, &str); 17] = [
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\nbase_url = \"http://api.example.com/v1\"\n[[bots]]\nuid = \"b\"\n",
            "api.base_url",
        ),
        (
            "[database]\nurl = \"postgres://x/y?sslmode=bogus\"\n[[bots]]\nuid = \"b\"\n",
            "database.url",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[log]\nfilter = \"infoo\"\n[[bots]]\nuid = \"b\"\n",
            "log.filter",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[log]\nformat = \"yaml\"\n[[bots]]\nuid = \"b\"\n",
            "log.format",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\npage_size = \"100\"\n[[bots]]\nuid = \"b\"\n",
            "api.page_size",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[api]\npage_size = 10.5\n[[bots]]\nuid = \"b\"\n",
            "api.page_size",
        ),
        (
            "[database]\nurl = \"postgres://x/y\"\n[sync]\nrun_at_start = \"yes\"\n[[bots]]\nuid = \"b\"\n",
            "sync.run_at_start",
        ),
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
fn an_api_key_a_header_cannot_carry_is_refused_by_name_without_showing_it() {
    let config = write_config(VALID);
    for key in ["sk-secret\nX-Forged: 1", "sk-secr\u{e9}t", "sk-\u{7}secret"] {
        let out = leadsync(&config, &[("CHATOFAI_API_KEY", key)], &["sync"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("CHATOFAI_API_KEY"), "{stderr}");
        assert!(!stderr.contains("secr"), "the key is not shown: {stderr}");
    }
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

/// A config whose database is `url`, waiting up to five minutes for a pooled connection: a
/// command that waited on the pool instead of failing at once would take that long.
fn config_with_database(url: &str, extra: &str) -> ConfigFile {
    write_config(&format!(
        "[database]\nurl = {url:?}\nacquire_timeout_secs = 300\n{extra}[[bots]]\nuid = {BOT_A:?}\n"
    ))
}

#[test]
fn database_trouble_fails_at_once_naming_the_cause_once_and_where() {
    let missing_database = with_database(&server_url(), "leadsync_no_such_database");
    let mut missing_role = url::Url::parse(&server_url()).expect("server URL");
    missing_role
        .set_username("leadsync_no_such_role")
        .expect("a username");
    let cases = [
        (
            "postgres://postgres@127.0.0.1:1/x".to_owned(),
            "Connection refused",
            "127.0.0.1:1/x",
        ),
        (
            missing_database,
            "database \"leadsync_no_such_database\" does not exist",
            "/leadsync_no_such_database as ",
        ),
        (
            missing_role.to_string(),
            "role \"leadsync_no_such_role\" does not exist",
            " as leadsync_no_such_role",
        ),
    ];
    let commands: [&[&str]; 5] = [
        &["sync"],
        &["migrate"],
        &["status"],
        &["backfill", "--bot", BOT_A, "--from", "2024-01-01"],
        &["verify"],
    ];
    for (url, cause, target) in &cases {
        let config = config_with_database(url, "");
        for args in commands {
            let started = std::time::Instant::now();
            let out = leadsync(&config, &[("CHATOFAI_API_KEY", "k")], args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let what = format!("{args:?} with {cause}: {stderr}");
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {what}");
            assert_eq!(stderr.matches(cause).count(), 1, "the cause once: {what}");
            assert!(stderr.contains(target), "where: {what}");
            assert!(stderr.contains("database.url"), "the setting: {what}");
            assert!(!stderr.contains("pool timed out"), "{what}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{args:?} waited for the pool instead of failing at once"
            );
        }
    }
}

#[tokio::test]
async fn an_unmigrated_schema_says_to_run_leadsync_migrate_and_which_setting() {
    let db = TestDb::new().await;
    let config = config_with_database(
        &db.url,
        "migrate_on_start = false\n[retention]\nmax_age_days = 30\n",
    );
    let commands: [&[&str]; 5] = [
        &["status"],
        &["sync"],
        &["retention"],
        &["forget", "--email", "someone@example.com"],
        &["backfill", "--bot", BOT_A, "--from", "2024-01-01"],
    ];
    for args in commands {
        let (code, _, stderr) = leadsync_command(&config, args).await;
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        for wanted in [
            "schema not migrated",
            "run `leadsync migrate`",
            "database.migrate_on_start = true",
        ] {
            assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        }
        assert!(!stderr.contains("does not exist"), "{args:?}: {stderr}");
    }

    let all = leadsync::store::MIGRATOR.iter().count();
    let (code, stdout, stderr) = leadsync_command(&config, &["migrate"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("applied {all} migration(s)")),
        "{stdout}"
    );
    let (code, stdout, _) = leadsync_command(&config, &["migrate"]).await;
    assert_eq!(code, Some(0));
    assert!(stdout.contains("applied 0 migration(s)"), "{stdout}");
    let (code, _, stderr) = leadsync_command(&config, &["status"]).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// `leadsync ARGS` with no `--config`, the environment cleared but for `env`.
fn leadsync_bare(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leadsync"));
    command.args(args).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run leadsync")
}

#[test]
fn an_invalid_rust_log_and_a_missing_config_file_exit_78_saying_so() {
    let config = write_config(VALID);
    let out = leadsync(
        &config,
        &[("CHATOFAI_API_KEY", "k"), ("RUST_LOG", "infoo")],
        &["sync"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("RUST_LOG"), "{stderr}");

    let out = leadsync_bare(&[("CHATOFAI_API_KEY", "k")], &["sync"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no config file was given"), "{stderr}");

    let out = leadsync_bare(
        &[("LEADSYNC_CONFIG", "/nonexistent/leadsync.toml")],
        &["sync"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("LEADSYNC_CONFIG: /nonexistent/leadsync.toml"),
        "{stderr}"
    );
}

#[test]
fn command_line_mistakes_exit_2_naming_the_flag() {
    let config = write_config(VALID);
    let cases: [(&[&str], &str); 9] = [
        (
            &[
                "backfill",
                "--bot",
                BOT_A,
                "--from",
                "2024-02-01",
                "--to",
                "2024-01-01",
            ],
            "--from",
        ),
        (
            &["backfill", "--bot", BOT_A, "--from", "2024/01/01"],
            "YYYY-MM-DD",
        ),
        (
            &["backfill", "--bot", "nope", "--from", "2024-01-01"],
            "--bot",
        ),
        (&["sync", "--bot", "nope"], "--bot"),
        (&["verify", "--bot", "nope"], "--bot"),
        (&["forget", "--email", ""], "--email"),
        (&["verify", "--days", "0"], "--days"),
        (&["verify", "--days", "100000"], "1..=366"),
        (&["demo", "--fault-rate", "1.0"], "0.0 to 0.9"),
    ];
    for (args, wanted) in cases {
        let out = leadsync(&config, &[("CHATOFAI_API_KEY", "k")], args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_backfill_of_a_bot_another_process_holds_is_skipped_with_exit_0() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    assert_all_succeeded(&h.sync().await);
    let bot = leadsync::domain::BotUid::parse(BOT_A).expect("uid");
    let lock = leadsync::store::try_lock_bot(&h.db.pool, &bot)
        .await
        .expect("query")
        .expect("the lock is free");
    let config = write_config(&h.config_toml(""));
    let (code, stdout, stderr) = leadsync_command(
        &config,
        &["backfill", "--bot", BOT_A, "--from", "2024-01-01"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("skipped"), "{stdout}");
    lock.release().await.expect("release the lock");
}

#[tokio::test]
async fn check_retries_a_transient_failure_and_points_a_401_at_the_key_and_a_404_at_the_url() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let config = write_config(&h.config_toml(""));
    assert_eq!(leadsync_command(&config, &["migrate"]).await.0, Some(0));

    // One 503, as a load balancer sends: retried with the normal policy, so check passes.
    h.world
        .push_faults(Some(BOT_A), [Fault::ServiceUnavailable]);
    let (code, stdout, stderr) = leadsync_command(&config, &["check"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("bot {BOT_A}: ok")), "{stdout}");

    h.world.push_faults(Some(BOT_A), [Fault::Unauthorized]);
    let (code, stdout, _) = leadsync_command(&config, &["check"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("HTTP 401"), "{stdout}");
    assert!(stdout.contains("CHATOFAI_API_KEY"), "{stdout}");

    // A base_url without the API's path: the 404 shows what was asked for.
    let base = h.api.base_url();
    let wrong = base.trim_end_matches("/api/v1/backend").to_owned();
    assert_ne!(wrong, base, "the fake serves under /api/v1/backend");
    let toml = h.config_toml("").replace(
        &format!("base_url = {base:?}"),
        &format!("base_url = {wrong:?}"),
    );
    let (code, stdout, _) = leadsync_command(&write_config(&toml), &["check"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("HTTP 404"), "{stdout}");
    assert!(
        stdout.contains(&format!("GET {wrong}/chatbot/{BOT_A}/leads")),
        "{stdout}"
    );
    assert!(stdout.contains("api.base_url"), "{stdout}");
}

#[tokio::test]
async fn every_line_of_a_run_carries_its_span_prefetched_pages_included() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(3), days_ago(0), 90);
    // Transient faults on many requests: the retried pages are mostly read ahead.
    h.world.set_random_faults(0.3, 7);
    let config = write_config(&h.config_toml("[log]\nformat = \"json\"\n"));
    let (code, _, stderr) = leadsync_command(&config, &["sync"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    let retried: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "request_retried")
        .collect();
    assert!(retried.len() >= 3, "{stderr}");
    for line in retried {
        assert_eq!(line["span"]["bot_uid"], BOT_A, "{line}");
        assert!(line["span"]["run_id"].is_string(), "{line}");
    }
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn status_of_a_never_synced_bot_says_never_and_its_json_names_the_bot() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let toml = h.config_toml("").replace(
        &format!("uid = {BOT_A:?}\n"),
        &format!("uid = {BOT_A:?}\nname = \"Sales\"\n"),
    );
    let config = write_config(&toml);
    assert_eq!(leadsync_command(&config, &["migrate"]).await.0, Some(0));
    let (code, stdout, stderr) = leadsync_command(&config, &["status"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("  last run          never\n"), "{stdout}");
    let (code, stdout, _) = leadsync_command(&config, &["status", "--json"]).await;
    assert_eq!(code, Some(0));
    let rows: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(rows[0]["name"], "Sales", "{stdout}");
    assert_eq!(rows[0]["bot_uid"], BOT_A, "{stdout}");
}

#[test]
fn fake_api_on_a_busy_port_names_the_address() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_leadsync"))
        .args(["fake-api", "--listen", &addr])
        .output()
        .expect("run fake-api");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--listen: cannot listen on {addr}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_demo_whose_runs_fail_says_so_and_exits_1() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let out = run_demo(url, &["--fault-rate", "0.9"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("failed their first sync"), "{stdout}");
    assert!(!stdout.contains("reads only the days"), "{stdout}");
    assert!(stderr.contains("of the demo's 6 runs failed"), "{stderr}");
}

#[tokio::test]
async fn the_demo_prints_its_tables_and_logs_the_runs_only_with_verbose() {
    // Twice on one database: the second demo starts again from an empty copy of its bots.
    let db = TestDb::new().await;
    for verbose in [false, true] {
        let url = db.url.clone();
        let flags: &[&str] = if verbose {
            &["--fault-rate", "0.0", "--verbose"]
        } else {
            &["--fault-rate", "0.0"]
        };
        let out = run_demo(url, flags).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("The copy matches"), "{stdout}");
        assert_eq!(stderr.contains("sync_run_finished"), verbose, "{stderr}");
        if !verbose {
            assert_eq!(stderr, "", "no log lines without --verbose");
        }
    }
    let pool = sqlx::PgPool::connect(&db.url)
        .await
        .expect("the demo's database");
    let (bots, runs): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM bots), (SELECT count(*) FROM sync_runs)")
            .fetch_one(&pool)
            .await
            .expect("counts");
    assert_eq!(
        (bots, runs),
        (3, 6),
        "each bot once, and only the second demo's runs"
    );
}

#[tokio::test]
async fn a_reader_that_closes_stdout_ends_the_output_quietly() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let config = write_config(&h.config_toml(""));
    assert_eq!(leadsync_command(&config, &["migrate"]).await.0, Some(0));
    for args in [&["status"][..], &["status", "--json"]] {
        // `leadsync status | head -c0`: the pipe's read end is closed before anything is written.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_leadsync"))
            .args(["--config", config.path()])
            .args(args)
            .env("CHATOFAI_API_KEY", KEY)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run leadsync");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.trim().is_empty(), "quietly: {stderr}");
    }
    // The demo prints its tables the same way (`leadsync demo | head -1`).
    let db = TestDb::new().await;
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_leadsync"))
            .args(["demo", "--database-url", &url, "--fault-rate", "0.0"])
            .env_remove("RUST_LOG")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
    })
    .await
    .expect("join")
    .expect("run the demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "demo: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `leadsync demo --database-url URL FLAGS...`, with `RUST_LOG` unset.
async fn run_demo(url: String, flags: &[&str]) -> Output {
    let flags: Vec<String> = flags.iter().map(|flag| (*flag).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_leadsync"))
            .args(["demo", "--database-url", &url])
            .args(&flags)
            .env_remove("RUST_LOG")
            .output()
    })
    .await
    .expect("join")
    .expect("run the demo")
}

#[tokio::test]
async fn a_proxy_from_the_environment_is_said_once_without_credentials_and_no_proxy_bypasses_it() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 5, days_ago(2), days_ago(0), 71);
    let config = write_config(&h.config_toml(""));
    // Nothing listens on port 9: the sync only works because NO_PROXY exempts the fake API.
    // (Blocking elsewhere: the fake API answers on this test's runtime.)
    let out = tokio::task::spawn_blocking(move || {
        leadsync(
            &config,
            &[
                ("CHATOFAI_API_KEY", KEY),
                ("HTTP_PROXY", "http://user:secret-pw@127.0.0.1:9"),
                ("NO_PROXY", "127.0.0.1"),
                ("RUST_LOG", "info"),
            ],
            &["sync"],
        )
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("api_proxy"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("http://127.0.0.1:9"), "{}", said[0]);
    assert!(!stderr.contains("secret-pw"), "{stderr}");
    h.assert_copy_is_exact().await;

    // Without NO_PROXY the requests do go to the proxy, which is not there.
    let config = write_config(&h.config_toml(""));
    let out = tokio::task::spawn_blocking(move || {
        leadsync(
            &config,
            &[
                ("CHATOFAI_API_KEY", KEY),
                ("HTTP_PROXY", "http://127.0.0.1:9"),
            ],
            &["sync"],
        )
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("api:connect"), "{stderr}");
}

/// `sync_runs` rows of the bot of one kind: (hwm_before, hwm_after, range_start).
type MarkMove = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::NaiveDate>,
);

async fn ledger_of_kind(h: &Harness, kind: &str) -> Vec<MarkMove> {
    sqlx::query_as(
        "SELECT hwm_before, hwm_after, range_start FROM sync_runs
          WHERE bot_uid = $1 AND kind = $2 ORDER BY started_at",
    )
    .bind(BOT_A)
    .bind(kind)
    .fetch_all(&h.db.pool)
    .await
    .expect("ledger")
}

#[tokio::test]
async fn state_rewind_moves_the_mark_back_on_the_record_and_the_next_run_reads_from_there() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(40), days_ago(0), 94);
    assert_all_succeeded(&h.sync().await);
    let mark = h.high_water_mark(BOT_A).await.expect("a mark");
    let config = write_config(&h.config_toml(""));

    // `state show` for one bot: its mark and resume point, as text and as JSON.
    let (code, stdout, stderr) =
        leadsync_command(&config, &["state", "show", "--bot", BOT_A]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(BOT_A) && !stdout.contains(BOT_B),
        "{stdout}"
    );
    assert!(stdout.contains("resume point"), "{stdout}");
    let (code, stdout, _) =
        leadsync_command(&config, &["state", "show", "--bot", BOT_A, "--json"]).await;
    assert_eq!(code, Some(0));
    let shown: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown[0]["bot_uid"], BOT_A);
    assert!(shown[0]["high_water_mark"].is_string(), "{shown}");

    // Back to 20 days ago: the mark and resume point move, and the ledger says so.
    let to = days_ago(20).date_naive();
    let (code, stdout, stderr) = leadsync_command(
        &config,
        &["state", "rewind", "--bot", BOT_A, "--to", &to.to_string()],
    )
    .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("moved back"), "{stdout}");
    let midnight = to.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    assert_eq!(h.high_water_mark(BOT_A).await, Some(midnight));
    assert_eq!(
        ledger_of_kind(&h, "rewind").await,
        vec![(Some(mark), Some(midnight), Some(to))]
    );
    // A rewind is not a run: the freshness view's last run is still the sync.
    let last_kind: Option<String> =
        sqlx::query_scalar("SELECT last_run_kind FROM sync_freshness WHERE bot_uid = $1")
            .bind(BOT_A)
            .fetch_one(&h.db.pool)
            .await
            .expect("freshness");
    assert_eq!(last_kind.as_deref(), Some("sync"));

    // The next run reads from that day minus the lookback, as the command said, and moves the
    // mark on.
    h.world.clear_requests();
    let reports = h.sync_with(&[]).await;
    assert_all_succeeded(&reports);
    let earliest = h
        .world
        .requests()
        .iter()
        .filter(|r| r.bot_uid == BOT_A)
        .filter_map(|r| r.start_date.clone())
        .filter(|day| day.as_str() > "2000-01-01")
        .min();
    let said = stdout
        .split("reads from ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the day the next run reads from");
    assert!(said < to.to_string().as_str(), "{stdout}");
    assert_eq!(earliest.as_deref(), Some(said), "{stdout}");
    assert_eq!(h.high_water_mark(BOT_A).await, Some(mark));
    h.assert_copy_is_exact().await;

    // Not a move back: a usage error naming --to, nothing written.
    let later = (mark.date_naive() + chrono::Days::new(1)).to_string();
    let (code, _, stderr) = leadsync_command(
        &config,
        &["state", "rewind", "--bot", BOT_A, "--to", &later],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--to"), "{stderr}");
    assert_eq!(ledger_of_kind(&h, "rewind").await.len(), 1);
}

#[tokio::test]
async fn state_rewind_is_refused_while_a_run_holds_the_bot() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 50, days_ago(10), days_ago(0), 95);
    assert_all_succeeded(&h.sync().await);
    let mark = h.high_water_mark(BOT_A).await;
    let bot = leadsync::domain::BotUid::parse(BOT_A).expect("uid");
    let lock = leadsync::store::try_lock_bot(&h.db.pool, &bot)
        .await
        .expect("query")
        .expect("the lock is free");
    let config = write_config(&h.config_toml(""));
    let to = days_ago(5).date_naive().to_string();
    let (code, stdout, stderr) =
        leadsync_command(&config, &["state", "rewind", "--bot", BOT_A, "--to", &to]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("refused"), "{stdout}");
    assert_eq!(h.high_water_mark(BOT_A).await, mark);
    assert!(ledger_of_kind(&h, "rewind").await.is_empty());
    lock.release().await.expect("release the lock");
}
