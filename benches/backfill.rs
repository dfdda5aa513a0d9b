//! The backfill benchmark: the real `leadsync` binary against the fake API on loopback and a
//! fresh PostgreSQL database, side by side with the floors measured in the same run.
//!
//! ```text
//! cargo bench --bench backfill -- --bots 20 --leads 50000          # 1,000,000 leads
//! cargo bench --bench backfill -- --bots 100 --leads 2000 --latency-ms 200
//! ```
//!
//! `--api all` runs the same history once per undocumented API behaviour (what `total`
//! counts, the day filter, `end_date`, an ignored `page`) and prints one row each: requests
//! against the pages that exist, leads served per lead stored, the incremental run, and
//! whether the copy is exact. `--shape mixed|campaign` spreads the leads unevenly.
//!
//! Prints one table: wall time, leads/s, requests, CPU time and peak RSS of `leadsync sync`
//! (cold backfill, an incremental run after 1 % new leads, and a run after those leads are
//! edited, with the change-history rows it wrote), and their ratio to the floors:
//! fetching every page with a tight client (4 keep-alive connections, no parsing) and `\copy`
//! of the same rows into an empty table shaped like `leads`. With latency, the floor is
//! `requests x latency / api.max_in_flight`. It prints figures; it asserts nothing.
//! Needs PostgreSQL (`TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres),
//! `psql` and GNU `time` (`apt-get install postgresql-client time`).

use std::{
    fmt::Write as _,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Days, TimeDelta, Utc};
use clap::Parser;
use leadsync::fake_api::{FakeApi, FilterOn, TotalMode, World, WorldSettings};
use support::BenchDb;

#[path = "support/mod.rs"]
mod support;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 20)]
    bots: usize,
    #[arg(long, default_value_t = 5_000)]
    leads: usize,
    /// Days of history the leads spread over.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Latency the fake API adds to every answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// leadsync's `api.max_in_flight`.
    #[arg(long, default_value_t = 8)]
    max_in_flight: usize,
    /// leadsync's `sync.max_concurrent_bots`.
    #[arg(long, default_value_t = 4)]
    max_concurrent_bots: usize,
    /// How the fake API behaves where the docs leave it open: `plain`, `whole-bot-total`,
    /// `no-total`, `lagging-total`, `conversation-start` (the filter selects by when the
    /// conversation started, up to 30 h before the lead), `exclusive-end`, `page-ignored`, or
    /// `all` (one row per behaviour, no floors).
    #[arg(long, default_value = "plain")]
    api: String,
    /// How the leads spread: `uniform`; `mixed` (one bot in ten has 5x the leads, the others a
    /// fifth); `campaign` (every seventh day has 3x the leads of the others).
    #[arg(long, default_value = "uniform")]
    shape: String,
    /// cargo passes this to every bench binary.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one process run cost.
struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
    requests: usize,
    /// Leads the API listed over all the run's answers (a lead read twice counts twice).
    served: usize,
}

const BEHAVIOURS: [&str; 7] = [
    "plain",
    "whole-bot-total",
    "no-total",
    "lagging-total",
    "conversation-start",
    "exclusive-end",
    "page-ignored",
];

fn world_settings(behaviour: &str, page_size: u32) -> anyhow::Result<WorldSettings> {
    let plain = WorldSettings {
        max_page_size: page_size,
        ..WorldSettings::default()
    };
    Ok(match behaviour {
        "plain" => plain,
        "whole-bot-total" => WorldSettings {
            total: TotalMode::WholeBot,
            ..plain
        },
        "no-total" => WorldSettings {
            total: TotalMode::Absent,
            ..plain
        },
        "lagging-total" => WorldSettings {
            total: TotalMode::Lagging(7),
            ..plain
        },
        "conversation-start" => WorldSettings {
            filter_on: FilterOn::ConversationStart {
                max_lag: Duration::from_secs(30 * 3600),
            },
            ..plain
        },
        "exclusive-end" => WorldSettings {
            end_date_inclusive: false,
            ..plain
        },
        "page-ignored" => WorldSettings {
            ignores_page: true,
            ..plain
        },
        other => anyhow::bail!("--api {other}: expected one of {BEHAVIOURS:?} or all"),
    })
}

/// Fills the world with the bots' leads in the shape asked for; returns each bot's count.
fn populate(
    world: &World,
    args: &Args,
    bots: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<usize>> {
    let from = now - TimeDelta::days(args.days);
    let mut counts = Vec::with_capacity(bots.len());
    for (i, bot) in bots.iter().enumerate() {
        world.add_bot(bot, "bench-key");
        let seed = 1_000 + i as u64;
        let count = match args.shape.as_str() {
            "uniform" => world.generate_leads(bot, args.leads, from, now, seed).len(),
            "mixed" => {
                let leads = if i % 10 == 0 {
                    args.leads * 5
                } else {
                    (args.leads / 5).max(1)
                };
                world.generate_leads(bot, leads, from, now, seed).len()
            }
            "campaign" => {
                // Every seventh day gets 3x: a third of the leads spread evenly, plus the rest
                // divided over the campaign days (weights 1 for a plain day, 3 for a campaign day).
                let days = args.days.max(1);
                let campaigns: Vec<i64> = (0..days).filter(|day| day % 7 == 3).collect();
                let weight = days as usize + 2 * campaigns.len();
                let per_weight = args.leads / weight.max(1);
                let mut stored = world
                    .generate_leads(bot, per_weight * days as usize, from, now, seed)
                    .len();
                for (k, &day) in campaigns.iter().enumerate() {
                    let start = from + TimeDelta::days(day);
                    stored += world
                        .generate_leads(
                            bot,
                            per_weight * 2,
                            start,
                            (start + TimeDelta::days(1)).min(now),
                            seed * 1_000 + k as u64,
                        )
                        .len();
                }
                stored
            }
            other => anyhow::bail!("--shape {other}: expected uniform, mixed or campaign"),
        };
        counts.push(count);
    }
    Ok(counts)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if args.api == "all" {
        return compare_behaviours(&args).await;
    }
    let settings = world_settings(&args.api, args.page_size)?;
    let world = World::new(settings);
    let now = Utc::now();
    let bots: Vec<String> = (0..args.bots)
        .map(|i| format!("bench-bot-{i:04}"))
        .collect();
    eprintln!("generating the leads of {} bots ...", args.bots);
    let counts = populate(&world, &args, &bots, now)?;
    let total: usize = counts.iter().sum();
    let pages = pages_floor(&counts, args.page_size);
    let api = FakeApi::start(world.clone()).await?;
    let db = BenchDb::create().await?;
    let from = (now - TimeDelta::days(args.days + 1)).date_naive();
    let config = config_file(&args, &api, &db, &bots, from)?;
    leadsync(&config, &["migrate"])?;

    let mut rows = Vec::new();
    // The floors read the listing as the plain API serves it.
    if args.latency_ms == 0 && args.api == "plain" {
        eprintln!("floor: fetching every page ...");
        let (fetch_floor, pages) = fetch_floor(&api, &bots, from, args.page_size).await?;
        eprintln!("floor: \\copy ...");
        let copy_floor = copy_floor(&db, &pages)?;
        rows.push(("floor: fetch all pages (4 conns)".to_owned(), fetch_floor));
        rows.push(("floor: \\copy into empty leads".to_owned(), copy_floor));
    }
    world.set_latency(Duration::from_millis(args.latency_ms));

    world.clear_requests();
    let cold = run_sync(&config, &world)?;
    let stored = db.count_rows("leads").await?;
    world.set_latency(Duration::ZERO);
    let mut arrived = Vec::new();
    for (i, (bot, count)) in bots.iter().zip(&counts).enumerate() {
        let new = (count / 100).max(1);
        arrived.extend(world.generate_leads(
            bot,
            new,
            now - TimeDelta::hours(1),
            Utc::now(),
            9_000 + i as u64,
        ));
    }
    world.set_latency(Duration::from_millis(args.latency_ms));
    world.clear_requests();
    let incremental = run_sync(&config, &world)?;

    // The same leads edited at the source (one field each): the next run re-reads them in its
    // lookback, and the change history gains one row per edited field, nothing else.
    let history_before = db.count_rows("lead_changes").await?;
    for uid in &arrived {
        world.edit_lead(
            uid,
            "remark",
            serde_json::Value::from("edited for the benchmark"),
        );
    }
    world.clear_requests();
    let edited = run_sync(&config, &world)?;
    let history_rows = db.count_rows("lead_changes").await? - history_before;

    println!(
        "\nleadsync backfill benchmark: {} bots, {total} leads ({} shape, {} days), API {}, page size {}, \
         latency {} ms, max_in_flight {}, max_concurrent_bots {}; stored after backfill: {stored}; \
         pages that exist: {pages}; backfill: {:.3} requests per page, {:.3} leads served per lead; \
         change history after {} edits of one field: {history_rows} rows",
        args.bots,
        args.shape,
        args.days,
        args.api,
        args.page_size,
        args.latency_ms,
        args.max_in_flight,
        args.max_concurrent_bots,
        cold.requests as f64 / pages.max(1) as f64,
        cold.served as f64 / total.max(1) as f64,
        arrived.len(),
    );
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<34} {:>9} {:>10} {:>9} {:>8} {:>9}  ratio to floors",
        "run", "wall s", "leads/s", "requests", "cpu s", "peak MiB"
    );
    for (name, wall) in &rows {
        let _ = writeln!(
            table,
            "{name:<34} {:>9.2} {:>10.0} {:>9} {:>8} {:>9}",
            wall.as_secs_f64(),
            total as f64 / wall.as_secs_f64(),
            "-",
            "-",
            "-"
        );
    }
    let floors = &rows;
    for (name, measured, leads) in [
        ("leadsync sync: cold backfill", &cold, total),
        (
            "leadsync sync: incremental (+1 %)",
            &incremental,
            arrived.len(),
        ),
        ("leadsync sync: after 1 % edited", &edited, arrived.len()),
    ] {
        let mut ratios = String::new();
        if name.contains("cold") {
            for (floor, wall) in floors {
                let _ = write!(
                    ratios,
                    "{:.2}x {}  ",
                    measured.wall.as_secs_f64() / wall.as_secs_f64(),
                    floor.trim_start_matches("floor: ")
                );
            }
            if args.latency_ms > 0 {
                let ideal = measured.requests as f64 * args.latency_ms as f64
                    / 1000.0
                    / args.max_in_flight as f64;
                let _ = write!(
                    ratios,
                    "{:.2}x requests*latency/max_in_flight ({ideal:.1} s)",
                    measured.wall.as_secs_f64() / ideal
                );
            }
        } else {
            let _ = write!(
                ratios,
                "{:.1} % of the cold wall time, {:.2} requests per bot",
                100.0 * measured.wall.as_secs_f64() / cold.wall.as_secs_f64(),
                measured.requests as f64 / args.bots as f64
            );
        }
        let _ = writeln!(
            table,
            "{name:<34} {:>9.2} {:>10.0} {:>9} {:>8.2} {:>9.1}  {ratios}",
            measured.wall.as_secs_f64(),
            leads as f64 / measured.wall.as_secs_f64(),
            measured.requests,
            measured.cpu.as_secs_f64(),
            measured.peak_rss_kib as f64 / 1024.0,
        );
    }
    print!("{table}");
    api.stop().await;
    db.drop_database().await?;
    Ok(())
}

/// The pages that exist: every bot's leads in full pages and one short one.
fn pages_floor(counts: &[usize], page_size: u32) -> usize {
    counts
        .iter()
        .map(|count| count.div_ceil(page_size as usize))
        .sum()
}

/// `--api all`: the same history under each behaviour, a fresh database each, one row each.
async fn compare_behaviours(args: &Args) -> anyhow::Result<()> {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<20} {:>8} {:>9} {:>7} {:>9} {:>9} {:>8} {:>9} {:>8}  exact",
        "API",
        "leads",
        "requests",
        "pages",
        "req/page",
        "served/l",
        "wall s",
        "incr req",
        "per bot"
    );
    let mut plain = None;
    for behaviour in BEHAVIOURS {
        let world = World::new(world_settings(behaviour, args.page_size)?);
        let now = Utc::now();
        let bots: Vec<String> = (0..args.bots)
            .map(|i| format!("bench-bot-{i:04}"))
            .collect();
        let counts = populate(&world, args, &bots, now)?;
        let total: usize = counts.iter().sum();
        let pages = pages_floor(&counts, args.page_size);
        let api = FakeApi::start(world.clone()).await?;
        let db = BenchDb::create().await?;
        let from = (now - TimeDelta::days(args.days + 1)).date_naive();
        let config = config_file(args, &api, &db, &bots, from)?;
        leadsync(&config, &["migrate"])?;
        eprintln!("{behaviour}: backfill of {total} leads ...");
        world.set_latency(Duration::from_millis(args.latency_ms));
        world.clear_requests();
        let cold = run_sync(&config, &world)?;
        for (i, (bot, count)) in bots.iter().zip(&counts).enumerate() {
            world.generate_leads(
                bot,
                (count / 100).max(1),
                Utc::now() - TimeDelta::hours(1),
                Utc::now(),
                9_000 + i as u64,
            );
        }
        world.clear_requests();
        let incremental = run_sync(&config, &world)?;
        let expected: usize = bots.iter().map(|bot| world.truth(bot).len()).sum();
        let stored = db.count_rows("leads").await?;
        let ratio = |value: usize, floor: usize| value as f64 / floor.max(1) as f64;
        let vs_plain = plain.map_or_else(String::new, |(backfill, incr): (usize, usize)| {
            format!(
                "  {:.2}x / {:.2}x plain",
                ratio(cold.requests, backfill),
                ratio(incremental.requests, incr)
            )
        });
        let _ = writeln!(
            table,
            "{behaviour:<20} {total:>8} {:>9} {pages:>7} {:>9.3} {:>9.3} {:>8.2} {:>9} {:>8.2}  {}{vs_plain}",
            cold.requests,
            ratio(cold.requests, pages),
            ratio(cold.served, total),
            cold.wall.as_secs_f64(),
            incremental.requests,
            ratio(incremental.requests, args.bots),
            if stored as usize == expected {
                "yes"
            } else {
                "NO"
            },
        );
        if behaviour == "plain" {
            plain = Some((cold.requests, incremental.requests));
        }
        api.stop().await;
        db.drop_database().await?;
    }
    println!(
        "\nleadsync under each API behaviour: {} bots, {} shape over {} days, page size {}, latency {} ms \
         (requests and leads served per page and per lead of the backfill; `incr`: the run after 1 % new leads)",
        args.bots, args.shape, args.days, args.page_size, args.latency_ms
    );
    print!("{table}");
    Ok(())
}

fn config_file(
    args: &Args,
    api: &FakeApi,
    db: &BenchDb,
    bots: &[String],
    from: chrono::NaiveDate,
) -> anyhow::Result<std::path::PathBuf> {
    let mut toml = format!(
        "[database]\nurl = {:?}\nmax_connections = {}\n[api]\nbase_url = {:?}\npage_size = {}\nmax_in_flight = {}\n\
         [sync]\nbackfill_from = \"{from}\"\nmax_concurrent_bots = {}\n[log]\nformat = \"json\"\nfilter = \"warn\"\n",
        db.url,
        args.max_concurrent_bots + 4,
        api.base_url(),
        args.page_size,
        args.max_in_flight,
        args.max_concurrent_bots,
    );
    for bot in bots {
        toml.push_str(&format!("[[bots]]\nuid = {bot:?}\n"));
    }
    let path = std::env::temp_dir().join(format!("leadsync-bench-{}.toml", std::process::id()));
    std::fs::write(&path, toml)?;
    Ok(path)
}

fn leadsync(config: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(env!("CARGO_BIN_EXE_leadsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CHATOFAI_API_KEY", "bench-key")
        .status()?;
    anyhow::ensure!(status.success(), "leadsync {args:?} failed: {status}");
    Ok(())
}

/// `leadsync sync` under GNU time, with what the fake API served.
fn run_sync(config: &std::path::Path, world: &World) -> anyhow::Result<Measured> {
    let timed = support::time_leadsync(config, &["sync"])?;
    anyhow::ensure!(timed.succeeded, "leadsync sync failed");
    Ok(Measured {
        wall: timed.wall,
        cpu: timed.cpu,
        peak_rss_kib: timed.peak_rss_kib,
        requests: world.requests().len(),
        served: world.requests().iter().map(|request| request.records).sum(),
    })
}

/// Every page of every bot with 4 keep-alive connections, bodies kept but not parsed.
async fn fetch_floor(
    api: &FakeApi,
    bots: &[String],
    from: chrono::NaiveDate,
    page_size: u32,
) -> anyhow::Result<(Duration, Vec<axum::body::Bytes>)> {
    let client = reqwest::Client::new();
    let end = Utc::now().date_naive() + Days::new(1);
    // Page counts from one request per bot, outside the timing.
    let mut jobs = Vec::new();
    for bot in bots {
        let url = format!("{}/chatbot/{bot}/leads", api.base_url());
        let body = client
            .get(&url)
            .bearer_auth("bench-key")
            .query(&[
                ("start_date", from.to_string()),
                ("end_date", end.to_string()),
                ("page_size", "1".into()),
            ])
            .send()
            .await?
            .bytes()
            .await?;
        let total = serde_json::from_slice::<serde_json::Value>(&body)?["data"]["total"]
            .as_u64()
            .unwrap_or(0);
        for page in 1..=total.div_ceil(u64::from(page_size)) {
            jobs.push((url.clone(), page));
        }
    }
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (client, jobs, next) = (client.clone(), jobs.clone(), next.clone());
            let (from, end) = (from.to_string(), end.to_string());
            tokio::spawn(async move {
                let mut bodies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((url, page)) = jobs.get(index) else {
                        break;
                    };
                    let body = client
                        .get(url)
                        .bearer_auth("bench-key")
                        .query(&[
                            ("start_date", from.clone()),
                            ("end_date", end.clone()),
                            ("page", page.to_string()),
                            ("page_size", page_size.to_string()),
                        ])
                        .send()
                        .await?
                        .bytes()
                        .await?;
                    bodies.push(body);
                }
                Ok::<_, reqwest::Error>(bodies)
            })
        })
        .collect();
    let mut pages = Vec::new();
    for worker in workers {
        pages.extend(worker.await??);
    }
    Ok((started.elapsed(), pages))
}

/// `\copy` of the rows the pages hold into an empty table shaped like `leads` (same keys and
/// indexes), timed around psql.
fn copy_floor(db: &BenchDb, pages: &[axum::body::Bytes]) -> anyhow::Result<Duration> {
    let mut csv = String::new();
    let field = |value: &serde_json::Value| match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(text) => format!("\"{}\"", text.replace('"', "\"\"")),
        other => format!("\"{}\"", other.to_string().replace('"', "\"\"")),
    };
    for body in pages {
        let page: serde_json::Value = serde_json::from_slice(body)?;
        for lead in page["data"]["leads"].as_array().into_iter().flatten() {
            let raw = serde_json::Value::String(lead.to_string());
            let columns = [
                "conversation_uid",
                "bot_uid",
                "created_at",
                "name",
                "email",
                "phone",
                "remark",
            ]
            .map(|key| field(lead.get(key).unwrap_or(&serde_json::Value::Null)));
            let _ = writeln!(csv, "{},{}", columns.join(","), field(&raw));
        }
    }
    let path = std::env::temp_dir().join(format!("leadsync-bench-{}.csv", std::process::id()));
    std::fs::write(&path, csv)?;
    let psql = |sql: &str| {
        Command::new("psql")
            .args([db.url.as_str(), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .status()
    };
    anyhow::ensure!(
        psql("CREATE TABLE copy_floor (LIKE leads INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")?.success(),
        "creating the copy floor table"
    );
    let started = Instant::now();
    let copied = psql(&format!(
        "\\copy copy_floor (conversation_uid, bot_uid, created_at, name, email, phone, remark, raw) FROM '{}' WITH (FORMAT csv)",
        path.display()
    ))?;
    let elapsed = started.elapsed();
    anyhow::ensure!(copied.success(), "\\copy failed");
    let _ = std::fs::remove_file(path);
    Ok(elapsed)
}
