//! `leadsync run` as a real process: schedule, overlap, shutdown, replicas, a database that
//! goes away, health and metrics.

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use leadsync::fake_api::WorldSettings;

use crate::helpers::*;

const SYNC_SCHEDULE: &str = "LEADSYNC__SYNC__SCHEDULE";

/// A `leadsync run` syncing every second; `env` comes after, so it may override that too.
fn daemon(h: &Harness, env: &[(&str, &str)]) -> Process {
    let mut all = vec![(SYNC_SCHEDULE, "* * * * * *")];
    all.extend_from_slice(env);
    Process::start(write_config(&h.config_toml("")), &["run"], &all)
}

fn finished_with(line: &serde_json::Value, bot: &str) -> bool {
    line["message"] == "sync_run_finished" && line["span"]["bot_uid"] == bot
}

/// A ledger row: (started_at, finished_at, status).
type RunRow = (chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>, String);

/// Runs of `bot` in the ledger, oldest first.
async fn runs_of(h: &Harness, bot: &str) -> Vec<RunRow> {
    sqlx::query_as(
        "SELECT started_at, finished_at, status FROM sync_runs WHERE bot_uid = $1 ORDER BY started_at",
    )
    .bind(bot)
    .fetch_all(&h.db.pool)
    .await
    .expect("ledger")
}

fn assert_no_overlap(runs: &[RunRow]) {
    for pair in runs.windows(2) {
        let finished = pair[0].1.expect("every run but a live one has finished");
        assert!(
            pair[1].0 >= finished,
            "two runs of one bot overlapped: {pair:?}"
        );
    }
}

#[tokio::test]
async fn the_daemon_syncs_on_schedule_picks_up_new_leads_and_reports_health() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 200, days_ago(20), days_ago(0), 60);
    let mut d = daemon(&h, &[]);
    let addr = d.http_addr().await;

    let first = d
        .wait_for("the backfill", |l| finished_with(l, BOT_A))
        .await;
    assert_eq!(first["inserted"], 200);
    h.world
        .generate_leads(BOT_A, 5, Utc::now() - TimeDelta::minutes(5), Utc::now(), 61);
    d.wait_for("a run with the new leads", |l| {
        finished_with(l, BOT_A) && l["inserted"] == 5
    })
    .await;
    h.assert_copy_is_exact().await;

    assert_eq!(http_get(&format!("http://{addr}/healthz")).await.0, 200);
    assert_eq!(
        http_get(&format!("http://{addr}/readyz")).await,
        (200, "ready\n".to_owned())
    );
    let (status, metrics) = http_get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    let succeeded =
        format!("leadsync_sync_runs_total{{bot_uid=\"{BOT_A}\",outcome=\"succeeded\"}}");
    assert!(metrics.contains(&succeeded), "{metrics}");
    assert!(metrics.contains(&format!(
        "leadsync_leads_total{{bot_uid=\"{BOT_A}\",result=\"inserted\"}} 205"
    )));
    assert!(metrics.contains("leadsync_api_requests_total{status=\"200\"}"));
    assert!(metrics.contains("leadsync_schedule_healthy 1"));

    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_tick_never_starts_a_second_run_of_a_bot_that_is_still_running() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(20), days_ago(0), 62);
    let gate = h.world.hold_page(BOT_A, 2);
    let mut d = daemon(&h, &[]);

    gate.arrived().await;
    d.wait_for_event("sync_tick_skipped").await;
    d.wait_for_event("sync_tick_skipped").await;
    // Two ticks came and went while the first run was held: none started a run.
    let started: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs")
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger");
    assert_eq!(started, 1, "a tick started a second run of a running bot");
    gate.release();
    d.wait_for("the held run to finish", |l| finished_with(l, BOT_A))
        .await;
    d.wait_for("a later run", |l| finished_with(l, BOT_A)).await;
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));

    assert_no_overlap(&runs_of(&h, BOT_A).await);
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn sigterm_mid_backfill_exits_0_within_the_grace_period_and_a_restart_completes_exactly() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 400, days_ago(100), days_ago(0), 63);
    let gate = h.world.hold_page(BOT_A, 3);
    let d = daemon(&h, &[]);
    gate.arrived().await;

    let asked = Instant::now();
    d.signal("TERM");
    let code = d.exit_code().await;
    let took = asked.elapsed();

    assert_eq!(code, Some(0));
    assert!(
        took < Duration::from_secs(10),
        "shutdown took {took:?}, more than the grace period"
    );
    let runs = runs_of(&h, BOT_A).await;
    assert_eq!(runs.last().map(|r| r.2.as_str()), Some("interrupted"));
    assert_eq!(
        h.high_water_mark(BOT_A).await,
        None,
        "the window was not complete"
    );
    gate.release();

    let reports = h.sync().await;
    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn sigkill_mid_backfill_and_a_restarted_daemon_completes_exactly() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 400, days_ago(100), days_ago(0), 64);
    let gate = h.world.hold_page(BOT_A, 3);
    let d = daemon(&h, &[]);
    gate.arrived().await;
    d.signal("KILL");
    assert_eq!(d.exit_code().await, None, "killed by the signal");
    gate.release();
    wait_for_bot_locks_released(&h.db.pool).await;

    let mut restarted = daemon(&h, &[]);
    restarted
        .wait_for("a complete run", |l| finished_with(l, BOT_A))
        .await;
    restarted.signal("TERM");
    assert_eq!(restarted.exit_code().await, Some(0));
    h.assert_copy_is_exact().await;
    let statuses: Vec<String> = runs_of(&h, BOT_A).await.into_iter().map(|r| r.2).collect();
    assert_eq!(statuses.first().map(String::as_str), Some("abandoned"));
}

#[tokio::test]
async fn two_daemons_on_one_database_end_exact_and_never_sync_a_bot_twice_at_once() {
    let bots = [BOT_A, BOT_B, "bot-c", "bot-d"];
    let h = Harness::start(WorldSettings::default(), &bots).await;
    for (seed, bot) in bots.iter().enumerate() {
        h.world
            .generate_leads(bot, 250, days_ago(30), days_ago(0), 70 + seed as u64);
    }
    let mut first = daemon(&h, &[]);
    let mut second = daemon(&h, &[]);

    // Wait (by events, never by time) until every bot is in sync, then once more with arrivals.
    for round in 0..2 {
        if round == 1 {
            for (seed, bot) in bots.iter().enumerate() {
                h.world.generate_leads(
                    bot,
                    3,
                    Utc::now() - TimeDelta::minutes(1),
                    Utc::now(),
                    80 + seed as u64,
                );
            }
        }
        let mut exact = false;
        for _ in 0..200 {
            for daemon in [&mut first, &mut second] {
                daemon.wait_for("a run or a skip", ran_or_skipped).await;
            }
            exact = copies_are_exact(&h).await;
            if exact {
                break;
            }
        }
        assert!(exact, "the copies never became exact");
    }
    first.signal("TERM");
    second.signal("TERM");
    assert_eq!(first.exit_code().await, Some(0));
    assert_eq!(second.exit_code().await, Some(0));
    for bot in bots {
        assert_no_overlap(&runs_of(&h, bot).await);
    }
    h.assert_copy_is_exact().await;
}

fn ran_or_skipped(line: &serde_json::Value) -> bool {
    line["message"] == "sync_run_finished" || line["message"] == "sync_run_skipped"
}

async fn copies_are_exact(h: &Harness) -> bool {
    for bot in &h.bots {
        if h.stored(bot).await != h.world.truth(bot) {
            return false;
        }
    }
    true
}

#[tokio::test]
async fn a_database_connection_terminated_mid_run_is_recovered_on_the_next_tick() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(20), days_ago(0), 65);
    let gate = h.world.hold_page(BOT_A, 2);
    let mut d = daemon(&h, &[]);
    gate.arrived().await;

    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'leadsync'",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("terminate the daemon's connections");
    assert!(
        !terminated.is_empty(),
        "the daemon had connections to terminate"
    );
    gate.release();

    let failed = d.wait_for_event("sync_run_failed").await;
    assert_eq!(failed["error_kind"], "database");
    d.wait_for("a run after the failure", |l| finished_with(l, BOT_A))
        .await;
    h.assert_copy_is_exact().await;
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_database_down_at_start_keeps_the_daemon_alive_and_it_recovers_when_the_database_returns()
{
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 100, days_ago(5), days_ago(0), 66);
    // A port with nothing behind it, later a proxy to the real server.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = proxy.local_addr().expect("addr").port();
    drop(proxy);
    let mut url = url::Url::parse(&h.db.url).expect("url");
    url.set_port(Some(port)).expect("port");
    let mut d = daemon(
        &h,
        &[
            ("LEADSYNC__DATABASE__URL", url.as_str()),
            ("LEADSYNC__DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    );
    let addr = d.http_addr().await;

    d.wait_for_event("database_unavailable").await;
    assert_eq!(
        http_get(&format!("http://{addr}/healthz")).await.0,
        200,
        "alive while waiting"
    );
    assert_eq!(
        http_get(&format!("http://{addr}/readyz")).await.0,
        503,
        "not ready without a database"
    );

    let _proxy = start_proxy(port, h.db.url.clone()).await;
    d.wait_for("a run once the database is back", |l| {
        finished_with(l, BOT_A)
    })
    .await;
    assert_eq!(http_get(&format!("http://{addr}/readyz")).await.0, 200);
    h.assert_copy_is_exact().await;
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
}

/// Forwards 127.0.0.1:`port` to the test database's server.
pub async fn start_proxy(port: u16, database_url: String) -> tokio::task::JoinHandle<()> {
    let target = url::Url::parse(&database_url).expect("url");
    let target = format!(
        "{}:{}",
        target.host_str().expect("host"),
        target.port().unwrap_or(5432)
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("re-bind the port");
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

#[tokio::test]
async fn the_daemon_verifies_on_its_own_schedule_and_repairs_a_drifted_day() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 120, days_ago(2), days_ago(0), 67);
    h.sync().await;
    sqlx::query("DELETE FROM leads WHERE ctid IN (SELECT ctid FROM leads LIMIT 3)")
        .execute(&h.db.pool)
        .await
        .expect("lose three rows");
    // Only the verify job acts: syncs are yearly and not at start.
    let mut d = daemon(
        &h,
        &[
            (SYNC_SCHEDULE, "0 0 0 1 1 *"),
            ("LEADSYNC__SYNC__RUN_AT_START", "false"),
            ("LEADSYNC__VERIFY__SCHEDULE", "* * * * * *"),
            ("LEADSYNC__VERIFY__DAYS", "3"),
            ("LEADSYNC__VERIFY__REPAIR", "true"),
        ],
    );

    let drifted = d.wait_for_event("verify_day_drifted").await;
    assert!(drifted["missing"].as_u64().expect("missing") >= 1);
    let finished = d.wait_for_event("verify_finished").await;
    assert_eq!(finished["repaired"], true);
    assert_eq!(
        finished["drifted"], 0,
        "the second look after the repair is clean"
    );
    h.assert_copy_is_exact().await;
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_refused_database_is_reported_at_once_with_its_cause_and_sigterm_stops_the_wait() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let mut d = daemon(
        &h,
        &[
            (
                "LEADSYNC__DATABASE__URL",
                "postgres://postgres@127.0.0.1:1/x",
            ),
            // Were the first report to wait on the pool, it would come after five minutes.
            ("LEADSYNC__DATABASE__ACQUIRE_TIMEOUT_SECS", "300"),
        ],
    );
    let unavailable = d.wait_for_event("database_unavailable").await;
    let error = unavailable["error"].as_str().expect("error");
    assert!(error.contains("Connection refused"), "{error}");
    assert!(error.contains("127.0.0.1:1/x"), "{error}");
    d.signal("TERM");
    d.wait_for_event("shutdown_completed").await;
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn sigterm_stops_a_daemon_whose_database_does_not_answer_at_start() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    // Accepts connections and never answers: the start-up attempt hangs until SIGTERM.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "postgres://postgres@{}/x",
        silent.local_addr().expect("addr")
    );
    let mut d = daemon(
        &h,
        &[
            ("LEADSYNC__DATABASE__URL", url.as_str()),
            ("LEADSYNC__DATABASE__ACQUIRE_TIMEOUT_SECS", "300"),
        ],
    );
    let (_held, _) = silent.accept().await.expect("the daemon connects");
    d.signal("TERM");
    d.wait_for_event("shutdown_completed").await;
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_daemon_on_an_unmigrated_schema_says_to_run_leadsync_migrate() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let mut d = daemon(&h, &[("LEADSYNC__DATABASE__MIGRATE_ON_START", "false")]);
    let unavailable = d.wait_for_event("database_unavailable").await;
    let error = unavailable["error"].as_str().expect("error");
    assert!(error.contains("schema not migrated"), "{error}");
    assert!(error.contains("run `leadsync migrate`"), "{error}");
    d.signal("TERM");
    d.wait_for_event("shutdown_completed").await;
    assert_eq!(d.exit_code().await, Some(0));
}

#[tokio::test]
async fn by_default_the_daemon_logs_only_leadsyncs_own_events_and_an_idle_run_moves_no_mark() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 20, days_ago(2), days_ago(0), 91);
    // Migrated already, so the start-up migration meets "_sqlx_migrations already exists".
    let config = write_config(&h.config_toml(""));
    assert_eq!(leadsync_command(&config, &["migrate"]).await.0, Some(0));
    let mut d = daemon(&h, &[]);
    d.wait_for("the first run", |l| finished_with(l, BOT_A))
        .await;
    d.signal("TERM");
    let lines = d.all_lines().await;
    assert!(lines.iter().any(|l| l["message"] == "shutdown_completed"));
    for line in &lines {
        let target = line["target"].as_str().unwrap_or_default();
        assert!(target.starts_with("leadsync"), "a third-party line: {line}");
    }
}

#[tokio::test]
async fn a_read_only_database_is_named_and_the_daemon_is_not_ready_until_it_can_write() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 20, days_ago(3), days_ago(0), 67);
    assert_all_succeeded(&h.sync().await);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&h.db.pool)
        .await
        .expect("name");
    let set_read_only = |on: bool| {
        let statement = format!(
            "ALTER DATABASE \"{database}\" SET default_transaction_read_only = {}",
            if on { "on" } else { "off" }
        );
        let pool = h.db.pool.clone();
        async move {
            sqlx::query(&statement)
                .execute(&pool)
                .await
                .expect("alter database");
        }
    };
    set_read_only(true).await;

    let config = write_config(&h.config_toml(""));
    let (code, stdout, _) = leadsync_command(&config, &["check"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("database writes: FAILED: the session is read-only"),
        "{stdout}"
    );

    h.world
        .generate_leads(BOT_A, 5, Utc::now() - TimeDelta::minutes(5), Utc::now(), 68);
    let mut d = daemon(&h, &[]);
    let addr = d.http_addr().await;
    let waiting = d.wait_for_event("database_unavailable").await;
    assert!(
        waiting["error"]
            .as_str()
            .is_some_and(|error| error.contains("read-only")),
        "{waiting}"
    );
    assert_eq!(
        http_get(&format!("http://{addr}/readyz")).await.0,
        503,
        "not ready while the schedule waits"
    );

    set_read_only(false).await;
    d.wait_for("a run once the database can be written", |l| {
        finished_with(l, BOT_A) && l["inserted"] == 5
    })
    .await;
    assert_eq!(http_get(&format!("http://{addr}/readyz")).await.0, 200);
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
    let (code, stdout, _) = leadsync_command(&config, &["check"]).await;
    assert!(stdout.contains("database writes: ok"), "{stdout}");
    assert_eq!(code, Some(0), "{stdout}");
}

/// A notify socket in the way systemd offers one (`NOTIFY_SOCKET`), read by the test.
struct NotifySocket {
    socket: tokio::net::UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let path = std::env::temp_dir().join(format!("leadsync-notify-{}", uuid::Uuid::now_v7()));
        let socket = tokio::net::UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("a UTF-8 path")
    }

    /// The next message (bounded wait).
    async fn next(&self) -> String {
        let mut buf = vec![0; 4096];
        let len = tokio::time::timeout(Duration::from_secs(60), self.socket.recv(&mut buf))
            .await
            .expect("a notify message within 60 s")
            .expect("recv");
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    /// The next message that is not a watchdog ping.
    async fn next_but_pings(&self) -> String {
        loop {
            let message = self.next().await;
            if message != "WATCHDOG=1\n" {
                return message;
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test]
async fn systemd_is_told_ready_pinged_while_healthy_reloading_ready_again_then_stopping() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 20, days_ago(3), days_ago(0), 93);
    let notify = NotifySocket::bind();
    // A watchdog of 400 ms: a ping every 200 ms.
    let mut daemon = daemon(
        &h,
        &[
            ("NOTIFY_SOCKET", notify.path()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    assert_eq!(notify.next().await, "READY=1\n");
    // Ready means the schema is migrated and the schedule runs.
    let started = daemon.wait_for_event("daemon_started").await;
    assert_eq!(started["bots"], 1);
    let began = Instant::now();
    for _ in 0..3 {
        assert_eq!(notify.next().await, "WATCHDOG=1\n");
    }
    assert!(
        began.elapsed() >= Duration::from_millis(300),
        "{:?}",
        began.elapsed()
    );

    // A reload (the same file): RELOADING=1 with the monotonic time, then READY=1 again.
    daemon.signal("HUP");
    let reloading = notify.next_but_pings().await;
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(notify.next_but_pings().await, "READY=1\n");
    daemon.wait_for_event("config_reloaded").await;

    daemon.signal("TERM");
    assert_eq!(notify.next_but_pings().await, "STOPPING=1\n");
    assert_eq!(daemon.exit_code().await, Some(0));
}

#[tokio::test]
async fn without_a_notify_socket_the_daemon_runs_quietly() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    // A watchdog asked for, but no socket to tell: systemd is not there.
    let mut daemon = daemon(&h, &[("WATCHDOG_USEC", "400000")]);
    daemon
        .wait_for(BOT_A, |line| finished_with(line, BOT_A))
        .await;
    daemon.signal("TERM");
    let lines = daemon.all_lines().await;
    let warned: Vec<_> = lines
        .iter()
        .filter(|line| line["level"] == "WARN" || line["level"] == "ERROR")
        .collect();
    assert!(warned.is_empty(), "{warned:?}");
}

/// One cron job per schedule, not per bot: a tick starts each bot's run at the bot's own place
/// in the interval, in the order `spread` gives (the same on every replica), spread over the
/// interval instead of all in the same second, each bot once a tick.
#[tokio::test]
async fn a_tick_spreads_its_bots_runs_over_the_interval_in_their_stable_order() {
    let uids: Vec<&'static str> = (0..12)
        .map(|i| &*Box::leak(format!("5a9d0000-0000-4000-8000-{i:012}").into_boxed_str()))
        .collect();
    let h = Harness::start(WorldSettings::default(), &uids).await;
    let mut d = daemon(
        &h,
        &[
            (SYNC_SCHEDULE, "*/4 * * * * *"),
            ("LEADSYNC__SYNC__RUN_AT_START", "false"),
        ],
    );
    let mut starts: Vec<(chrono::DateTime<Utc>, String)> = Vec::new();
    while starts.len() < uids.len() {
        let line = d
            .wait_for("a run's start", |l| l["message"] == "sync_run_started")
            .await;
        let at = line["timestamp"]
            .as_str()
            .expect("timestamp")
            .parse()
            .expect("time");
        starts.push((
            at,
            line["span"]["bot_uid"].as_str().expect("bot").to_owned(),
        ));
    }
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));

    // The first tick: every bot once, in the order of their places.
    let expected: Vec<String> = leadsync::spread::Spread::new(
        uids.iter()
            .map(|uid| leadsync::domain::BotUid::parse(uid).expect("uid")),
    )
    .starts(Duration::from_secs(4))
    .map(|(_, bot)| bot.to_string())
    .collect();
    let order: Vec<String> = starts.iter().map(|(_, bot)| bot.clone()).collect();
    assert_eq!(order, expected);
    // Spread over the interval (12 places over 3.6 s), not one burst; within the tick.
    let spread = starts.last().expect("a start").0 - starts[0].0;
    assert!(
        spread > TimeDelta::milliseconds(1_000) && spread < TimeDelta::milliseconds(3_700),
        "{spread:?}: {starts:?}"
    );
}

/// The harness's config with only `bots` and the schedule `schedule`.
fn config_with(h: &Harness, bots: &[&str], schedule: &str, extra: &str) -> String {
    let full = h.config_toml(extra);
    let settings = full.split("[[bots]]").next().expect("settings");
    let mut toml = settings.replace(
        "[sync]\n",
        &format!("[sync]\nschedule = {schedule:?}\nrun_at_start = true\n"),
    );
    for bot in bots {
        toml.push_str(&format!("[[bots]]\nuid = {bot:?}\n"));
    }
    toml
}

/// SIGHUP re-reads the config file: a bot added runs, a bot removed no longer does, the new
/// schedule applies; a file that is not valid keeps the running config and names the setting.
#[tokio::test]
async fn sighup_applies_a_new_config_and_keeps_the_old_one_when_the_new_is_not_valid() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    for bot in [BOT_A, BOT_B] {
        h.world
            .generate_leads(bot, 30, days_ago(3), days_ago(0), 61);
    }
    // Bot A alone, on a schedule that never ticks here: it runs once, at start.
    let config = write_config(&config_with(&h, &[BOT_A], "0 0 0 1 1 *", ""));
    let path = config.path().to_owned();
    let mut d = Process::start(config, &["run"], &[]);
    d.wait_for("bot A's run at start", |l| finished_with(l, BOT_A))
        .await;

    // Bot B instead, every second.
    std::fs::write(&path, config_with(&h, &[BOT_B], "* * * * * *", "")).expect("rewrite");
    d.signal("HUP");
    let reloaded = d.wait_for_event("config_reloaded").await;
    assert_eq!(
        (&reloaded["bots"], &reloaded["added"], &reloaded["removed"]),
        (&1.into(), &1.into(), &1.into()),
        "{reloaded}"
    );
    assert_eq!(
        reloaded["level"], "INFO",
        "nothing read at start only changed: {reloaded}"
    );
    for _ in 0..2 {
        d.wait_for("a run of bot B on the new schedule", |l| {
            finished_with(l, BOT_B)
        })
        .await;
    }

    // A file that is not valid: the running config stays, the setting is named.
    let bad = config_with(&h, &[BOT_A], "* * * * * *", "")
        .replace("page_size = 50", "page_size = \"100\"");
    std::fs::write(&path, bad).expect("rewrite");
    d.signal("HUP");
    let failed = d.wait_for_event("config_reload_failed").await;
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["setting"], "api.page_size", "{failed}");
    d.wait_for("bot B still syncing", |l| finished_with(l, BOT_B))
        .await;
    d.signal("TERM");
    assert_eq!(d.exit_code().await, Some(0));
    // Bot A ran once, at start: never after it was removed, nor after the bad file named it.
    let runs_of_a = runs_of(&h, BOT_A).await;
    assert_eq!(runs_of_a.len(), 1, "{runs_of_a:?}");
    h.assert_copy_is_exact().await;
}
