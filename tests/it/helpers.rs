use std::{collections::HashMap, str::FromStr};

use chrono::{DateTime, TimeDelta, Utc};
use leadsync::{
    app,
    config::Config,
    domain::BotUid,
    fake_api::{FakeApi, TruthLead, World, WorldSettings},
    sync::{RunOutcome, RunReport},
};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgConnectOptions};

pub const KEY: &str = "test-key";
pub const BOT_A: &str = "86a2eb21-9711-4950-8ffd-50c04317956c";
pub const BOT_B: &str = "3f1c9e04-5b7a-4d2e-9c61-0a8f2b7d4e19";

/// The server the tests create their databases on.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let server = server_url();
        let mut admin = PgConnection::connect(&server).await.unwrap_or_else(|err| {
            panic!(
                "these tests need PostgreSQL: could not connect to {server} ({err}). \
                 Start it, or set TEST_DATABASE_URL to a server where this role may CREATE DATABASE."
            )
        });
        let name = format!("leadsync_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let options = PgConnectOptions::from_str(&server)
            .expect("TEST_DATABASE_URL")
            .database(&name);
        let url = with_database(&server, &name);
        let pool = PgPool::connect_with(options)
            .await
            .expect("connect to the test database");
        TestDb { pool, url, name }
    }
}

pub fn with_database(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
    url.set_path(name);
    url.to_string()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        clean_up_after_test(async move {
            if let Ok(mut admin) = PgConnection::connect(&server_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}

/// Runs async clean-up from a `Drop`: that runs inside the test's runtime, so the clean-up
/// gets a thread and a runtime of its own.
pub fn clean_up_after_test(cleanup: impl std::future::Future<Output = ()> + Send + 'static) {
    let worker = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(cleanup);
    });
    let _ = worker.join();
}

/// A test's world: its database, the fake API, and the config pointing one at the other.
pub struct Harness {
    pub db: TestDb,
    pub api: FakeApi,
    pub world: World,
    pub bots: Vec<&'static str>,
}

impl Harness {
    pub async fn start(settings: WorldSettings, bots: &[&'static str]) -> Harness {
        let world = World::new(settings);
        for bot in bots {
            world.add_bot(bot, KEY);
        }
        let api = FakeApi::start(world.clone())
            .await
            .expect("start the fake API");
        Harness {
            db: TestDb::new().await,
            api,
            world,
            bots: bots.to_vec(),
        }
    }

    /// The config file a test would write: fast retries, small windows; `extra` is appended.
    pub fn config_toml(&self, extra: &str) -> String {
        let mut toml = format!(
            "[database]\nurl = {:?}\nmax_connections = 6\n\
             [api]\nbase_url = {:?}\npage_size = 50\ntimeout_secs = 10\n\
             [retry]\nmax_attempts = 8\ninitial_delay_ms = 1\nmax_delay_ms = 5\nmax_retry_after_secs = 1\n\
             [sync]\nbackfill_from = \"2022-01-01\"\nlookback_days = 2\nmax_window_leads = 400\n\
             max_concurrent_bots = 2\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[shutdown]\ngrace_secs = 10\n",
            self.db.url,
            self.api.base_url()
        );
        toml.push_str(extra);
        for bot in &self.bots {
            toml.push_str(&format!("[[bots]]\nuid = {bot:?}\n"));
        }
        toml
    }

    /// One `leadsync sync` pass, in-process.
    pub async fn sync(&self) -> Vec<RunReport> {
        self.sync_with(&[]).await
    }

    /// A pass with settings overridden the way an operator would: `LEADSYNC__SECTION__KEY`.
    pub async fn sync_with(&self, overrides: &[(&str, &str)]) -> Vec<RunReport> {
        self.sync_toml(&self.config_toml(""), overrides).await
    }

    /// A pass with a config file of the test's own making (see [`Harness::config_toml`]).
    pub async fn sync_toml(&self, toml: &str, overrides: &[(&str, &str)]) -> Vec<RunReport> {
        let mut env: HashMap<String, String> = overrides
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        env.insert("CHATOFAI_API_KEY".to_owned(), KEY.to_owned());
        let config = Config::from_toml(toml, &env).expect("valid test config");
        let keys = config.resolve_api_keys(&env).expect("keys");
        let pool = app::connect(&config).expect("pool");
        let mut reports = app::sync_once(
            &config,
            &pool,
            &keys,
            &[],
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect("sync pass");
        pool.close().await;
        reports.sort_by(|a, b| a.bot.cmp(&b.bot));
        reports
    }

    pub async fn stored(&self, bot: &str) -> Vec<TruthLead> {
        stored_leads(&self.db.pool, bot).await
    }

    /// Every bot's copy equals the fake's truth.
    pub async fn assert_copy_is_exact(&self) {
        for bot in &self.bots {
            let truth = self.world.truth(bot);
            let stored = self.stored(bot).await;
            assert_eq!(stored.len(), truth.len(), "lead count of bot {bot}");
            let differing = stored.iter().zip(&truth).find(|(s, t)| s != t);
            // Print only the first difference: a whole table of leads helps nobody.
            assert!(
                differing.is_none(),
                "bot {bot}: stored {:?} but the API has {:?}",
                differing.map(|d| d.0),
                differing.map(|d| d.1)
            );
        }
    }

    pub async fn high_water_mark(&self, bot: &str) -> Option<DateTime<Utc>> {
        sqlx::query_scalar("SELECT high_water_mark FROM sync_state WHERE bot_uid = $1")
            .bind(bot)
            .fetch_optional(&self.db.pool)
            .await
            .expect("query sync_state")
            .flatten()
    }
}

/// conversation_uid, bot_uid, created_at, name, email, phone, remark, raw
type LeadRow = (
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    serde_json::Value,
);

pub async fn stored_leads(pool: &PgPool, bot: &str) -> Vec<TruthLead> {
    let rows: Vec<LeadRow> = sqlx::query_as(
        "SELECT conversation_uid, bot_uid, created_at, name, email, phone, remark, raw
               FROM leads WHERE bot_uid = $1 ORDER BY conversation_uid",
    )
    .bind(bot)
    .fetch_all(pool)
    .await
    .expect("query leads");
    rows.into_iter()
        .map(
            |(conversation_uid, bot_uid, created_at, name, email, phone, remark, raw)| TruthLead {
                conversation_uid,
                bot_uid,
                created_at,
                name,
                email,
                phone,
                remark,
                raw,
            },
        )
        .collect()
}

/// When each stored lead was first stored and last changed, by `conversation_uid`.
pub async fn change_times(pool: &PgPool) -> HashMap<String, (DateTime<Utc>, DateTime<Utc>)> {
    let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT conversation_uid, first_seen_at, last_changed_at FROM leads")
            .fetch_all(pool)
            .await
            .expect("query leads");
    rows.into_iter()
        .map(|(uid, first, last)| (uid, (first, last)))
        .collect()
}

pub async fn count_leads(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(pool)
        .await
        .expect("count leads")
}

/// Waits (bounded, by polling the database, never by sleeping) until exactly `count` leads are
/// committed, and fails the test if more ever are.
pub async fn wait_for_committed(pool: &PgPool, count: i64) {
    for _ in 0..20_000 {
        let committed = count_leads(pool).await;
        assert!(
            committed <= count,
            "{committed} leads committed, expected {count}"
        );
        if committed == count {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{count} leads were never committed");
}

pub fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - TimeDelta::days(days)
}

pub fn assert_all_succeeded(reports: &[RunReport]) {
    for report in reports {
        assert!(
            matches!(report.outcome, RunOutcome::Succeeded),
            "bot {} did not succeed: {:?}",
            report.bot,
            report.outcome
        );
    }
}

pub fn report_for<'a>(reports: &'a [RunReport], bot: &str) -> &'a RunReport {
    let uid = BotUid::parse(bot).expect("bot uid");
    reports
        .iter()
        .find(|report| report.bot == uid)
        .expect("a report for the bot")
}

/// A config file on disk, removed when dropped.
pub struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn write_config(text: &str) -> ConfigFile {
    let path = std::env::temp_dir().join(format!(
        "leadsync-test-{}.toml",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::write(&path, text).expect("write the config file");
    ConfigFile(path)
}

/// A killed process's session, and its advisory lock, end when the server notices the closed
/// socket: wait for that (bounded), so the next run is not skipped as "locked".
pub async fn wait_for_bot_locks_released(pool: &PgPool) {
    for _ in 0..20_000 {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
              WHERE l.locktype = 'advisory' AND d.datname = current_database()",
        )
        .fetch_one(pool)
        .await
        .expect("query pg_locks");
        if held == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("an advisory lock is still held after the process that took it died");
}

/// A `leadsync` process whose JSON log lines the test can wait for, in order.
pub struct Process {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    seen: Vec<String>,
    _config: Option<ConfigFile>,
}

impl Process {
    /// Starts `leadsync --config <config> <args>` with JSON logs on stderr.
    pub fn start(config: ConfigFile, args: &[&str], env: &[(&str, &str)]) -> Process {
        use std::io::BufRead as _;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_leadsync"));
        command
            .args(["--config", config.path()])
            .args(args)
            .env("CHATOFAI_API_KEY", KEY)
            .env("LEADSYNC__LOG__FORMAT", "json")
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn leadsync");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let value = serde_json::from_str(&line).unwrap_or_else(
                    |_| serde_json::json!({"message": "non_json_line", "text": line}),
                );
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
            _config: Some(config),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next log line matching `wanted` (lines before it are consumed). Fails the test after
    /// 60 s, or if the process ends first, showing the last lines seen.
    pub async fn wait_for(
        &mut self,
        what: &str,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.to_string());
                    if wanted(&line) {
                        return line;
                    }
                }
                Ok(None) => panic!("leadsync ended before {what}; last lines:\n{}", self.tail()),
                Err(_) => panic!("no {what} within 60 s; last lines:\n{}", self.tail()),
            }
        }
    }

    /// The next line whose `message` is `event`.
    /// Where the daemon's HTTP server listens (its `http_listening` line).
    pub async fn http_addr(&mut self) -> String {
        let line = self.wait_for_event("http_listening").await;
        line["addr"].as_str().expect("addr").to_owned()
    }

    pub async fn wait_for_event(&mut self, event: &str) -> serde_json::Value {
        self.wait_for(event, |line| line["message"] == event).await
    }

    /// Every line the process has written, read until it ends (ask it to stop first), or for
    /// at most 60 s.
    pub async fn all_lines(&mut self) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.seen.push(line.to_string());
        }
        self.seen
            .iter()
            .map(|line| serde_json::from_str(line).expect("kept as JSON"))
            .collect()
    }

    fn tail(&self) -> String {
        let start = self.seen.len().saturating_sub(15);
        self.seen[start..].join("\n")
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (bounded) for the process to exit; its exit code (`None`: killed by a signal).
    pub async fn exit_code(mut self) -> Option<i32> {
        let waited = tokio::task::spawn_blocking(move || self.child.wait());
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), waited)
            .await
            .expect("leadsync exited within 60 s")
            .expect("join")
            .expect("wait");
        status.code()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failed test must not leave a daemon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET (for the daemon's health endpoints): (status, body).
pub async fn http_get(url: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Runs `leadsync --config <config> <args>` to the end, as an operator would (the API key set,
/// no DATABASE_URL or RUST_LOG from the test's environment), on a blocking thread so the fake
/// API keeps answering. (exit code, stdout, stderr).
pub async fn leadsync_command(config: &ConfigFile, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_leadsync"));
    command
        .args(["--config", config.path()])
        .args(args)
        .env("CHATOFAI_API_KEY", KEY)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run leadsync");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The syncer a command builds from the harness's config (for `verify` and friends).
pub fn syncer(h: &Harness) -> leadsync::app::Syncer {
    let env = HashMap::from([("CHATOFAI_API_KEY".to_owned(), KEY.to_owned())]);
    let config = leadsync::config::Config::from_toml(&h.config_toml(""), &env).expect("config");
    let keys = config.resolve_api_keys(&env).expect("keys");
    leadsync::app::Syncer::new(
        &config,
        &h.db.pool,
        &keys,
        tokio_util::sync::CancellationToken::new(),
    )
    .expect("syncer")
}
