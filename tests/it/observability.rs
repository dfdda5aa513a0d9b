//! What operators watch, checked against a real daemon: every metric that the alert rules
//! (deploy/prometheus/), the dashboard (deploy/grafana/leadsync.json) and the READMEs name is
//! served on `/metrics`, with the labels they select on; and the daemon's JSON log, holding the
//! event of every alert, is kept at `target/observability/leadsync.log`, where `.ci/check-logs`
//! runs the log-based alert examples (jq) against it.

use std::collections::{BTreeMap, BTreeSet};

use leadsync::fake_api::{Fault, RetryAfter, WorldSettings};

use crate::{daemon::start_proxy, helpers::*};

/// Where the log of the test below is kept for `.ci/check-logs`.
const LOG_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/observability/leadsync.log"
);

/// `leadsync_*` words in the READMEs that are not metrics: roles and the demo's database.
const NOT_METRICS: [&str; 3] = ["leadsync_app", "leadsync_analyst", "leadsync_demo"];

/// Files whose metric names must exist, relative to the repository.
const USERS: [&str; 5] = [
    "deploy/prometheus/leadsync.rules.yaml",
    "deploy/prometheus/leadsync.prometheusrule.yaml",
    "deploy/grafana/leadsync.json",
    "README.md",
    "deploy/README.md",
];

#[tokio::test]
async fn every_metric_the_alerts_dashboard_and_readmes_name_is_served_and_the_log_has_each_alerts_event()
 {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 150, days_ago(10), days_ago(0), 90);
    h.world
        .generate_leads(BOT_B, 40, days_ago(10), days_ago(0), 91);
    assert_all_succeeded(&h.sync().await);
    // Verify drift: rows lost on days older than the lookback, which no sync re-reads.
    let lost = sqlx::query(
        "DELETE FROM leads WHERE bot_uid = $1
            AND created_at BETWEEN now() - interval '8 days' AND now() - interval '5 days'",
    )
    .bind(BOT_A)
    .execute(&h.db.pool)
    .await
    .expect("lose old rows")
    .rows_affected();
    assert!(lost > 0, "the fake had leads 5 to 8 days ago");
    // API rate-limited: bot A's next requests answer 429 (and are retried).
    let too_many = Fault::TooManyRequests {
        retry_after: Some(RetryAfter::Seconds(0)),
    };
    h.world.push_faults(Some(BOT_A), vec![too_many; 3]);
    // Failed runs: bot B's key is refused from now on.
    h.world.set_forbidden(BOT_B, true);
    // Skipped ticks: bot A's first two requests for a page 1 are held. They are its first sync
    // run's and its first verify's (neither job starts another while one is held), so a run
    // of bot A is held, and its next ticks are skipped.
    let held = [h.world.hold_page(BOT_A, 1), h.world.hold_page(BOT_A, 1)];
    // Database unreachable: at start the daemon's database is a port nothing listens on.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let mut unreachable = url::Url::parse(&h.db.url).expect("url");
    unreachable.set_port(Some(port)).expect("port");

    let mut d = Process::start(
        write_config(&h.config_toml("")),
        &["run"],
        &[
            ("LEADSYNC__SYNC__SCHEDULE", "* * * * * *"),
            ("LEADSYNC__VERIFY__SCHEDULE", "* * * * * *"),
            ("LEADSYNC__VERIFY__DAYS", "9"),
            ("LEADSYNC__DATABASE__URL", unreachable.as_str()),
            ("LEADSYNC__DATABASE__ACQUIRE_TIMEOUT_SECS", "1"),
        ],
    );
    let addr = d.http_addr().await;
    d.wait_for_event("database_unavailable").await;
    d.wait_for_event("database_unavailable").await;
    let _proxy = start_proxy(port, h.db.url.clone()).await;
    for gate in &held {
        gate.arrived().await;
    }
    d.wait_for("a skipped tick of bot A", |l| {
        l["message"] == "sync_tick_skipped" && l["bot_uid"] == BOT_A
    })
    .await;
    for gate in &held {
        gate.release();
    }

    d.wait_for("a 429 retried", |l| {
        l["message"] == "request_retried" && l["status"] == 429
    })
    .await;
    for _ in 0..4 {
        d.wait_for("a failed run of bot B", |l| {
            l["message"] == "sync_run_failed" && l["span"]["bot_uid"] == BOT_B
        })
        .await;
    }
    d.wait_for("bot A's drift", |l| {
        l["message"] == "verify_day_drifted" && l["bot_uid"] == BOT_A
    })
    .await;
    d.wait_for("a run of bot A", |l| {
        l["message"] == "sync_run_finished" && l["span"]["bot_uid"] == BOT_A
    })
    .await;

    let (status, text) = http_get(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, 200);
    let served = Exposition::parse(&text);
    assert!(
        served.value("leadsync_database_errors_total") >= 2.0,
        "the two failed start-up migrations are counted:\n{text}"
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let mut missing = Vec::new();
    for file in USERS {
        let body = std::fs::read_to_string(format!("{root}/{file}")).expect("read");
        let names = metric_words(&body);
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            if !served.has(&name) {
                missing.push(format!("{file}: {name}"));
            }
        }
        for (name, label) in selected_labels(&body) {
            if served.has_samples(&name) && !served.labels_of(&name).contains(&label) {
                missing.push(format!("{file}: label {label} of {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not served by /metrics:\n{}\n\n/metrics:\n{text}",
        missing.join("\n")
    );
    // Every family an alert or panel selects labels of had samples here, so the labels were
    // checked, not skipped.
    for family in [
        "leadsync_sync_runs_total",
        "leadsync_leads_total",
        "leadsync_api_requests_total",
        "leadsync_last_success_timestamp_seconds",
        "leadsync_verify_drifted_days",
        "leadsync_ticks_skipped_total",
    ] {
        assert!(served.has_samples(family), "no sample of {family}");
    }

    d.signal("TERM");
    let lines = d.all_lines().await;
    let events: BTreeSet<&str> = lines
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    for event in [
        "database_unavailable",
        "request_retried",
        "sync_run_failed",
        "verify_day_drifted",
        "sync_run_finished",
        "sync_tick_skipped",
    ] {
        assert!(events.contains(event), "no {event} in the log");
    }
    assert!(
        lines.iter().all(|line| line["message"] != "non_json_line"),
        "every line is JSON"
    );
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::create_dir_all(std::path::Path::new(LOG_FILE).parent().expect("dir")).expect("mkdir");
    std::fs::write(LOG_FILE, text).expect("write the log file");
}

/// Every `leadsync_...` metric name in a file (rules, dashboard or prose).
fn metric_words(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("leadsync_") {
        let start = at + found;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        let word = &text[start..end];
        // Metric names go on with a letter (`leadsync_0.1.0-1_amd64.deb` is a file).
        let a_name = bytes
            .get(start + "leadsync_".len())
            .is_some_and(u8::is_ascii_lowercase);
        let inside_a_word = before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if a_name && !inside_a_word && !NOT_METRICS.contains(&word) {
            names.insert(word.to_owned());
        }
        at = end;
    }
    names
}

/// `(metric, label)` for every `metric{label="..."...}` selector in a file.
fn selected_labels(text: &str) -> BTreeSet<(String, String)> {
    let mut selected = BTreeSet::new();
    for name in metric_words(text) {
        let opening = format!("{name}{{");
        let mut at = 0;
        while let Some(found) = text[at..].find(&opening) {
            let start = at + found + opening.len();
            let end = start + text[start..].find('}').expect("a closed selector");
            for matcher in text[start..end].split(',') {
                let label: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !label.is_empty() {
                    selected.insert((name.clone(), label));
                }
            }
            at = end;
        }
    }
    selected
}

/// What `/metrics` serves: the names of the families it declares (a counter `x` serves
/// `x_total`, a histogram `x_bucket`, `x_sum` and `x_count`) and the labels of its samples.
struct Exposition {
    names: BTreeSet<String>,
    samples: BTreeMap<String, (BTreeSet<String>, f64)>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut names = BTreeSet::new();
        let mut samples: BTreeMap<String, (BTreeSet<String>, f64)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (family, kind) = declared.split_once(' ').expect("# TYPE name kind");
                names.insert(family.to_owned());
                match kind {
                    "counter" => {
                        names.insert(format!("{family}_total"));
                    }
                    "histogram" => {
                        for suffix in ["bucket", "sum", "count"] {
                            names.insert(format!("{family}_{suffix}"));
                        }
                    }
                    _ => {}
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let name_end = line.find(['{', ' ']).expect("a sample");
                let name = &line[..name_end];
                let labels = line[name_end..]
                    .strip_prefix('{')
                    .and_then(|rest| rest.split_once('}'))
                    .map(|(inside, _)| {
                        inside
                            .split(',')
                            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_owned()))
                            .collect::<BTreeSet<String>>()
                    })
                    .unwrap_or_default();
                let value = line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                let entry = samples.entry(name.to_owned()).or_default();
                entry.0.extend(labels);
                entry.1 = value;
                names.insert(name.to_owned());
            }
        }
        Exposition { names, samples }
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    fn has_samples(&self, name: &str) -> bool {
        self.samples.contains_key(name)
    }

    fn labels_of(&self, name: &str) -> BTreeSet<String> {
        self.samples
            .get(name)
            .map(|s| s.0.clone())
            .unwrap_or_default()
    }

    /// The last sample's value of an unlabelled series.
    fn value(&self, name: &str) -> f64 {
        self.samples.get(name).map_or(f64::NAN, |s| s.1)
    }
}

/// Runs `leadsync --config <config> sync` on a pseudo-terminal (util-linux `script`), with
/// `env` set: what the terminal showed.
async fn sync_on_a_terminal(config: &ConfigFile, env: &[(&str, &str)]) -> String {
    let line = format!(
        "{} --config {} sync",
        env!("CARGO_BIN_EXE_leadsync"),
        config.path()
    );
    let mut command = std::process::Command::new("script");
    command
        .args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .env("CHATOFAI_API_KEY", KEY)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run script");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_terminal_shows_a_progress_bar_per_run_and_json_logs_or_a_pipe_never_do() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    for bot in [BOT_A, BOT_B] {
        h.world
            .generate_leads(bot, 400, days_ago(60), days_ago(0), 92);
    }
    // Answers that take a moment, so the bars are drawn while the runs read.
    h.world.set_latency(std::time::Duration::from_millis(20));
    let config = write_config(&h.config_toml(""));

    let screen = sync_on_a_terminal(&config, &[]).await;
    for bot in [BOT_A, BOT_B] {
        assert!(screen.contains(bot), "a bar names each bot: {screen}");
    }
    assert!(screen.contains(" days"), "{screen}");
    assert!(screen.contains(" leads · "), "{screen}");
    assert!(screen.contains(" requests · "), "{screen}");
    assert!(screen.contains("leads/s"), "{screen}");

    // JSON logs, even on a terminal: every line is JSON, no bar among them.
    let screen = sync_on_a_terminal(&config, &[("LEADSYNC__LOG__FORMAT", "json")]).await;
    assert!(!screen.contains("leads/s"), "{screen}");
    let lines: Vec<&str> = screen
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert!(lines.len() > 4, "{screen}");
    for line in lines {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line.trim());
        assert!(parsed.is_ok(), "not JSON: {line:?}");
    }

    // Not a terminal (a pipe, a journal): no bar, whatever the format.
    let (code, stdout, stderr) = leadsync_command(&config, &["sync"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stderr.contains("leads/s") && !stdout.contains("leads/s"),
        "{stderr}"
    );
    let text = write_config(&h.config_toml("[log]\nformat = \"text\"\n"));
    let (code, _, stderr) = leadsync_command(&text, &["sync"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("leads/s"), "{stderr}");
    assert!(stderr.contains("sync_run_finished"), "{stderr}");
}

/// A writer the test reads back: what the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The installed subscriber (the production one, JSON, leadsync's trace events on) keeps every
/// line of a run in its span, though sqlx asks after every query (through `log`) whether its
/// own trace log is enabled: with the filter on the log layer alone, that "no" was read for
/// the next span or event, which then lost its `bot_uid` and `run_id` or was not logged at all
/// (tokio-rs/tracing#2519).
#[tokio::test]
async fn every_line_a_run_logs_carries_its_span_whatever_sqlx_asked_before() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    for bot in [BOT_A, BOT_B] {
        h.world
            .generate_leads(bot, 300, days_ago(30), days_ago(0), 41);
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = leadsync::telemetry::subscriber(
        leadsync::telemetry::Output::Json(tracing_subscriber::fmt::writer::BoxMakeWriter::new(
            move || writer.clone(),
        )),
        leadsync::telemetry::parse_filter("warn,leadsync=trace").expect("filter"),
    );
    leadsync::telemetry::install(subscriber);
    for _ in 0..3 {
        assert_all_succeeded(&h.sync().await);
    }
    h.assert_copy_is_exact().await;

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    let in_runs = [
        "sync_run_started",
        "window_completed",
        "api_belief_changed",
        "high_water_mark_advanced",
        "sync_run_finished",
    ];
    let mut finished = BTreeMap::<String, usize>::new();
    for line in lines
        .iter()
        .filter(|l| in_runs.iter().any(|e| l["message"] == *e))
    {
        let bot = line["span"]["bot_uid"].as_str().unwrap_or_default();
        assert!([BOT_A, BOT_B].contains(&bot), "{line}");
        assert!(line["span"]["run_id"].is_string(), "{line}");
        if line["message"] == "sync_run_finished" {
            *finished.entry(bot.to_owned()).or_default() += 1;
        }
    }
    // Three runs of each bot, each logged its end: none went missing.
    assert_eq!(
        finished.values().copied().collect::<Vec<_>>(),
        [3, 3],
        "{text}"
    );

    // What a run's last window reports (and its bar shows) counts the requests made so far:
    // at least the pages the run read, at most what the run reports at its end.
    for end in lines.iter().filter(|l| l["message"] == "sync_run_finished") {
        let run = &end["span"]["run_id"];
        let last_window = lines
            .iter()
            .rfind(|l| l["message"] == "window_completed" && l["span"]["run_id"] == *run)
            .unwrap_or_else(|| panic!("a window of run {run}: {text}"));
        let so_far = last_window["requests"].as_u64().expect("requests");
        let pages = end["pages"].as_u64().expect("pages");
        let requests = end["requests"].as_u64().expect("requests");
        assert!(
            pages >= 1 && (pages..=requests).contains(&so_far),
            "{last_window} {end}"
        );
    }
}

/// `http.per_bot_detail = false` (for thousands of bots): a real daemon's `/metrics` keeps the
/// bot's uid only on what the alerts select per bot (last success, failed runs), serves the rest
/// as one series for all bots each, and leaves out the mark's lag; with the default, every
/// per-bot series carries its bot.
#[tokio::test]
async fn without_per_bot_detail_only_what_alerts_select_per_bot_carries_the_bot() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 60, days_ago(5), days_ago(0), 93);
    h.world.set_forbidden(BOT_B, true);
    for (detail, env) in [("false", "false"), ("true", "true")] {
        let mut d = Process::start(
            write_config(&h.config_toml("")),
            &["run"],
            &[
                ("LEADSYNC__HTTP__PER_BOT_DETAIL", env),
                ("LEADSYNC__SYNC__SCHEDULE", "0 0 0 1 1 *"),
            ],
        );
        let addr = d.http_addr().await;
        // run_at_start: one run of each bot, A succeeding and B refused, in either order.
        let mut ended = BTreeSet::new();
        while ended.len() < 2 {
            let end = d
                .wait_for("a run's end", |l| {
                    (l["message"] == "sync_run_finished" && l["span"]["bot_uid"] == BOT_A)
                        || (l["message"] == "sync_run_failed" && l["span"]["bot_uid"] == BOT_B)
                })
                .await;
            ended.insert(end["span"]["bot_uid"].as_str().expect("bot").to_owned());
        }
        let (status, text) = http_get(&format!("http://{addr}/metrics")).await;
        assert_eq!(status, 200);
        d.signal("TERM");
        d.exit_code().await;

        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let of = |name: &str| -> Vec<&str> {
            samples
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .collect()
        };
        let failed = format!("leadsync_sync_runs_total{{bot_uid=\"{BOT_B}\",outcome=\"failed\"}}");
        assert!(samples.iter().any(|l| l.starts_with(&failed)), "{text}");
        assert!(
            of("leadsync_last_success_timestamp_seconds")
                .iter()
                .any(|l| l.contains(BOT_A)),
            "{text}"
        );
        let inserted = of("leadsync_leads_total")
            .into_iter()
            .find(|l| l.contains("result=\"inserted\""))
            .unwrap_or_else(|| panic!("leads inserted: {text}"));
        let succeeded = of("leadsync_sync_runs_total")
            .into_iter()
            .find(|l| l.contains("outcome=\"succeeded\""))
            .unwrap_or_else(|| panic!("runs succeeded: {text}"));
        if detail == "false" {
            assert!(
                inserted.starts_with("leadsync_leads_total{bot_uid=\"\","),
                "{text}"
            );
            assert!(inserted.ends_with(" 60"), "{text}");
            assert!(succeeded.contains("bot_uid=\"\""), "{text}");
            assert!(
                of("leadsync_high_water_mark_lag_seconds").is_empty(),
                "{text}"
            );
            // Bot A is named by its last success alone; bot B by its failed run alone.
            assert_eq!(
                samples.iter().filter(|l| l.contains(BOT_A)).count(),
                2,
                "{text}"
            );
            assert_eq!(
                samples.iter().filter(|l| l.contains(BOT_B)).count(),
                1,
                "{text}"
            );
        } else {
            let of_a = |name: &str, with: &str| {
                of(name)
                    .iter()
                    .any(|l| l.contains(&format!("bot_uid=\"{BOT_A}\"")) && l.contains(with))
            };
            assert!(
                of_a("leadsync_leads_total", "result=\"inserted\""),
                "{text}"
            );
            assert!(
                of_a("leadsync_sync_runs_total", "outcome=\"succeeded\""),
                "{text}"
            );
            assert_eq!(
                of("leadsync_high_water_mark_lag_seconds").len(),
                1,
                "{text}"
            );
            assert!(
                samples.iter().filter(|l| l.contains(BOT_A)).count() > 6,
                "{text}"
            );
        }
    }
}
