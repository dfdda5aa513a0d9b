//! `leadsync demo` and `leadsync fake-api`: the bundled fake API with a few realistic bots.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{TimeDelta, Utc};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::{
    app,
    config::Config,
    domain::BotUid,
    fake_api::{FakeApi, FakeLead, World, WorldSettings},
    output::outln,
    store,
    sync::{RunOutcome, RunReport},
};

pub const DEMO_API_KEY: &str = "demo-key";

/// The demo's bots: (uid, name, leads, days of history). The uids are the demo's own (no
/// ChatofAI uid looks like them): each demo run clears what an earlier one stored for them, so
/// it starts with a real backfill and the analyst views show each bot once.
const DEMO_BOTS: [(&str, &str, usize, i64); 3] = [
    ("demo-website-support", "Website support", 1_500, 120),
    ("demo-pricing-page", "Pricing page", 600, 30),
    ("demo-careers", "Careers", 200, 700),
];

/// Stable uids for `leadsync fake-api`, so a config file written once keeps working.
const FAKE_API_BOT_UIDS: [&str; 3] = [
    "86a2eb21-9711-4950-8ffd-50c04317956c",
    "3f1c9e04-5b7a-4d2e-9c61-0a8f2b7d4e19",
    "c0ffee00-1234-4abc-8def-0123456789ab",
];

/// A world for `leadsync fake-api`: `bots` bots (three well-known uids first) with `leads` leads each
/// over the last `days` days. Returns the world and the bot uids.
pub fn fake_api_world(
    bots: usize,
    leads: usize,
    days: i64,
    api_key: &str,
    seed: u64,
) -> (World, Vec<String>) {
    let world = World::new(WorldSettings::default());
    let uids: Vec<String> = (0..bots)
        .map(|index| {
            FAKE_API_BOT_UIDS
                .get(index)
                .map_or_else(|| format!("bot-{index:04}"), |uid| (*uid).to_owned())
        })
        .collect();
    for (index, uid) in uids.iter().enumerate() {
        populate(&world, uid, api_key, leads, days, seed + index as u64);
    }
    (world, uids)
}

/// Adds a bot with `leads` synthetic leads over the last `days` days, and one malformed record
/// (so the rejects path shows too).
fn populate(world: &World, uid: &str, api_key: &str, leads: usize, days: i64, seed: u64) {
    let now = Utc::now();
    world.add_bot(uid, api_key);
    world.generate_leads(uid, leads, now - TimeDelta::days(days), now, seed);
    world.insert_lead(
        uid,
        FakeLead::malformed(
            serde_json::json!({"bot_uid": uid, "conversation_uid": format!("broken-{seed}"), "created_at": "not a date"}),
            now - TimeDelta::hours(3),
        ),
    );
}

/// Runs the demo: starts the fake API, syncs it into `database_url` twice (a backfill, then an
/// incremental run), and prints what happened and what to query next.
pub async fn run_demo(database_url: &str, fault_rate: f64) -> anyhow::Result<()> {
    let options = store::connect_options(&SecretString::from(database_url.to_owned()))
        .context("--database-url / DATABASE_URL")?;
    store::create_database_if_missing(&options).await.with_context(|| {
        "cannot reach PostgreSQL: start it, or point DATABASE_URL (or --database-url) at a server you can create a database on".to_string()
    })?;

    let world = World::new(WorldSettings::default());
    let uids: Vec<String> = DEMO_BOTS
        .iter()
        .map(|(uid, ..)| (*uid).to_owned())
        .collect();
    let seed = Utc::now().timestamp_micros() as u64;
    for (index, (uid, (_, _, leads, days))) in uids.iter().zip(DEMO_BOTS).enumerate() {
        populate(&world, uid, DEMO_API_KEY, leads, days, seed + index as u64);
    }
    world.set_random_faults(fault_rate.clamp(0.0, 0.9), 2024);
    let api = FakeApi::start(world.clone())
        .await
        .context("starting the fake API")?;

    let mut toml = format!(
        "[database]\nurl = {database_url:?}\n[api]\nbase_url = {:?}\npage_size = 100\n\
         [retry]\nmax_attempts = 10\ninitial_delay_ms = 10\nmax_delay_ms = 200\n\
         [sync]\nbackfill_from = \"2020-01-01\"\nmax_window_leads = 1000\n",
        api.base_url()
    );
    for (uid, (_, name, ..)) in uids.iter().zip(DEMO_BOTS) {
        toml.push_str(&format!("[[bots]]\nuid = {uid:?}\nname = {name:?}\n"));
    }
    let env = HashMap::from([("CHATOFAI_API_KEY".to_owned(), DEMO_API_KEY.to_owned())]);
    let config = Config::from_toml(&toml, &env)?;
    let keys = config.resolve_api_keys(&env)?;
    let pool = app::connect(&config)?;
    // A database an earlier demo filled: start again from an empty copy of the demo's bots.
    app::prepare_database(&config, &pool, app::SchemaUse::Write).await?;
    let bots: Vec<&BotUid> = config.bots.iter().map(|bot| &bot.uid).collect();
    let mut conn = pool.acquire().await.context("connecting to the database")?;
    store::clear_bots(&mut conn, &bots)
        .await
        .context("clearing an earlier demo's bots")?;
    drop(conn);

    outln!(
        "leadsync demo: fake ChatofAI API at {} ({:.0} % of requests fail), database {}",
        api.base_url(),
        fault_rate * 100.0,
        options.get_database().unwrap_or("?")
    );
    outln!("\n1) First sync (a backfill of all history):");
    let first = app::sync_once(&config, &pool, &keys, &[], CancellationToken::new()).await?;
    print_reports(&config, &first);

    world.set_random_faults(0.0, 0);
    let now = Utc::now();
    world.generate_leads(&uids[1], 5, now - TimeDelta::hours(2), now, seed + 99);
    let failed_first = app::tally(&first).1;
    if failed_first == 0 {
        outln!(
            "\n2) Five new leads arrive; the next sync reads only the days since the high-water mark:"
        );
    } else {
        outln!(
            "\n2) Five new leads arrive and the faults stop; the next sync reads the days since each \
             bot's high-water mark ({failed_first} bot(s) failed their first sync: they resume their \
             backfill from where it stopped):"
        );
    }
    let second = app::sync_once(&config, &pool, &keys, &[], CancellationToken::new()).await?;
    print_reports(&config, &second);
    api.stop().await;

    let mut all_match = true;
    for uid in &uids {
        let truth = world.truth(uid).len() as i64;
        let stored = store::count_leads(&pool, &BotUid::parse(uid)?).await?;
        all_match &= truth == stored;
    }
    outln!(
        "\nThe copy {} the fake API's leads.",
        if all_match {
            "matches"
        } else {
            "does NOT match"
        }
    );
    outln!(
        "\nTry next (psql {database_url}):\n\
         \x20 SELECT bot_name, day, leads FROM leads_per_bot_day ORDER BY day DESC, bot_name LIMIT 10;\n\
         \x20 SELECT created_at, bot_name, name, email, left(remark, 60) AS remark FROM latest_leads LIMIT 5;\n\
         \x20 SELECT * FROM sync_freshness;"
    );
    anyhow::ensure!(all_match, "the demo's copy does not match the fake API");
    let failed = failed_first + app::tally(&second).1;
    anyhow::ensure!(
        failed == 0,
        "{failed} of the demo's {} runs failed (the fake failed {:.0} % of requests): see the \
         sync_run_failed lines above",
        first.len() + second.len(),
        fault_rate * 100.0
    );
    Ok(())
}

fn print_reports(config: &Config, reports: &[RunReport]) {
    outln!(
        "   {:<18} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7} {:>8}",
        "bot",
        "outcome",
        "requests",
        "retries",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "ms"
    );
    for report in reports {
        let name = config
            .bots
            .iter()
            .find(|bot| bot.uid == report.bot)
            .and_then(|bot| bot.name.clone())
            .unwrap_or_else(|| report.bot.to_string());
        let outcome = match &report.outcome {
            RunOutcome::Succeeded => "ok",
            RunOutcome::Skipped => "skipped",
            RunOutcome::Interrupted => "stopped",
            RunOutcome::Failed(_) => "FAILED",
        };
        let c = &report.counts;
        outln!(
            "   {:<18} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7} {:>8}",
            name,
            outcome,
            c.requests,
            c.retries,
            c.inserted,
            c.updated,
            c.unchanged,
            c.rejected,
            report.elapsed.as_millis()
        );
    }
}
