//! The right to erasure: `leadsync forget` removes a person's leads, and no later sync — the
//! lookback, a backfill, verify — brings them back.

use leadsync::fake_api::{FakeLead, WorldSettings};
use serde_json::json;

use crate::helpers::*;

const EMAIL_UID: &str = "erase-by-email";
const PHONE_UID: &str = "erase-by-phone";
const CONVERSATION_UID: &str = "erase-by-conversation";
/// As typed by the visitor; the command is given other spellings of the same values.
const EMAIL: &str = "Ada.Lovelace@Example.com";
const PHONE: &str = "+44 20 7946-0958";

/// Three people to forget among generated leads, all of yesterday (inside the lookback), and
/// a malformed record carrying the email (kept in rejected_leads until forgotten).
fn people_to_forget(h: &Harness) {
    let yesterday = days_ago(1).fixed_offset();
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, EMAIL_UID, yesterday).with_field("email", json!(EMAIL)),
    );
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, PHONE_UID, yesterday)
            .with_field("email", json!("someone.else@example.net"))
            .with_field("phone", json!(PHONE)),
    );
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, CONVERSATION_UID, yesterday)
            .with_field("email", json!("a.third.person@example.org")),
    );
    h.world.insert_lead(
        BOT_A,
        FakeLead::malformed(
            json!({"bot_uid": BOT_A, "created_at": yesterday.to_rfc3339(), "email": EMAIL}),
            days_ago(1),
        ),
    );
}

const FORGOTTEN: [&str; 3] = [EMAIL_UID, PHONE_UID, CONVERSATION_UID];

/// The fake's truth, less the forgotten leads: what the copy must hold.
fn truth_without_forgotten(h: &Harness) -> Vec<leadsync::fake_api::TruthLead> {
    h.world
        .truth(BOT_A)
        .into_iter()
        .filter(|lead| !FORGOTTEN.contains(&lead.conversation_uid.as_str()))
        .collect()
}

async fn forget_the_three(config: &ConfigFile) -> (Option<i32>, String, String) {
    leadsync_command(
        config,
        &[
            "forget",
            "--email",
            "  ada.LOVELACE@example.COM ",
            "--phone",
            "00 44 (20) 79460958",
            "--conversation",
            CONVERSATION_UID,
        ],
    )
    .await
}

#[tokio::test]
async fn forgotten_leads_stay_gone_after_a_resync_of_their_day_and_a_backfill() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 150, days_ago(10), days_ago(0), 90);
    people_to_forget(&h);
    assert_all_succeeded(&h.sync().await);
    assert_eq!(h.stored(BOT_A).await, h.world.truth(BOT_A));
    let config = write_config(&h.config_toml(""));

    let (code, stdout, stderr) = forget_the_three(&config).await;

    assert_eq!(code, Some(0), "{stderr}");
    // "00 44 ..." and "+44 ..." differ in digits: the phone matches on its digits exactly.
    assert!(
        stdout.contains("removed 2 lead(s) and 1 rejected record(s)"),
        "{stdout}"
    );
    let (code, stdout, stderr) =
        leadsync_command(&config, &["forget", "--phone", "44 20 7946 0958"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("removed 1 lead(s)"), "{stdout}");
    assert_eq!(h.stored(BOT_A).await, truth_without_forgotten(&h));
    assert_eq!(rejected_records(&h).await, 0);

    // The next run re-reads yesterday (the lookback): the three are skipped and counted.
    let reports = h.sync().await;
    assert_all_succeeded(&reports);
    let run = report_for(&reports, BOT_A);
    assert_eq!(run.counts.forgotten, 3);
    assert_eq!(run.counts.inserted + run.counts.updated, 0);
    assert_eq!(
        run.counts.unchanged + run.counts.forgotten + run.counts.rejected,
        run.counts.fetched,
        "every record read is counted once"
    );
    let ledger: i32 = sqlx::query_scalar("SELECT forgotten FROM sync_runs WHERE run_id = $1")
        .bind(run.run_id)
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger");
    assert_eq!(ledger, 3);
    assert_eq!(h.stored(BOT_A).await, truth_without_forgotten(&h));

    // A backfill over their day (and the whole history) does not bring them back either, nor
    // the malformed record.
    let from = days_ago(12).date_naive().to_string();
    let (code, stdout, stderr) =
        leadsync_command(&config, &["backfill", "--bot", BOT_A, "--from", &from]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("0 inserted, 0 updated"), "{stdout}");
    assert!(
        stdout.contains(", 3 forgotten"),
        "the summary counts them: {stdout}"
    );
    assert_eq!(h.stored(BOT_A).await, truth_without_forgotten(&h));
    assert_eq!(rejected_records(&h).await, 0);

    // And verify knows they are missing on purpose: no drift to repair for ever.
    let (code, stdout, stderr) = leadsync_command(&config, &["verify", "--days", "3"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[tokio::test]
async fn a_person_forgotten_before_their_lead_arrives_is_never_stored() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 40, days_ago(3), days_ago(0), 91);
    assert_all_succeeded(&h.sync().await);
    let config = write_config(&h.config_toml(""));
    let (code, stdout, stderr) = forget_the_three(&config).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("removed 0 lead(s)"), "{stdout}");

    // They chat afterwards: new arrivals, and an edit that adds the email to a stored lead
    // (a recent one, which the lookback re-reads).
    people_to_forget(&h);
    let edited = h
        .world
        .truth(BOT_A)
        .into_iter()
        .max_by_key(|lead| lead.created_at)
        .expect("a lead")
        .conversation_uid;
    h.world
        .edit_lead(&edited, "email", json!(EMAIL.to_uppercase()));
    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    // The email's lead, the conversation's, and the edited one; "+44 ..." is another number.
    assert_eq!(report_for(&reports, BOT_A).counts.forgotten, 3);
    let stored: Vec<String> = h
        .stored(BOT_A)
        .await
        .into_iter()
        .map(|lead| lead.conversation_uid)
        .collect();
    assert!(stored.contains(&PHONE_UID.to_owned()));
    for gone in [EMAIL_UID, CONVERSATION_UID] {
        assert!(!stored.contains(&gone.to_owned()), "{gone} was stored");
    }
    // The edited lead was stored before it carried the email: now it is that person's lead,
    // and the sync deletes the old copy rather than keep it.
    let edited_still_stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM leads WHERE conversation_uid = $1)")
            .bind(&edited)
            .fetch_one(&h.db.pool)
            .await
            .expect("leads");
    assert!(!edited_still_stored);
}

#[tokio::test]
async fn the_tombstones_hold_hashes_of_the_normalised_values_never_the_values() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    assert_all_succeeded(&h.sync().await);
    let config = write_config(&h.config_toml(""));
    let (code, _, stderr) = forget_the_three(&config).await;
    assert_eq!(code, Some(0), "{stderr}");

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, value_sha256 FROM forgotten_leads ORDER BY kind")
            .fetch_all(&h.db.pool)
            .await
            .expect("tombstones");
    // Hashed here independently of the migration's functions.
    let expected: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, encode(sha256(convert_to(value, 'UTF8')), 'hex')
           FROM (VALUES ('conversation', $1), ('email', 'ada.lovelace@example.com'),
                        ('phone', '00442079460958')) AS t(kind, value)
          ORDER BY kind",
    )
    .bind(CONVERSATION_UID)
    .fetch_all(&h.db.pool)
    .await
    .expect("hashes");
    assert_eq!(rows, expected);
    let everything: String =
        sqlx::query_scalar("SELECT coalesce(string_agg(t::text, ' '), '') FROM forgotten_leads t")
            .fetch_one(&h.db.pool)
            .await
            .expect("tombstones");
    for plain in ["lovelace", "LOVELACE", "7946", "79460958", CONVERSATION_UID] {
        assert!(!everything.contains(plain), "{plain} is in forgotten_leads");
    }
}

#[tokio::test]
async fn forget_needs_a_value_and_refuses_blank_ones_without_echoing_them() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let config = write_config(&h.config_toml(""));

    let (code, _, stderr) = leadsync_command(&config, &["forget"]).await;
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    let (code, _, stderr) = leadsync_command(&config, &["forget", "--email", "  "]).await;
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--email"), "{stderr}");
    let (code, _, stderr) =
        leadsync_command(&config, &["forget", "--phone", "call me maybe"]).await;
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    assert!(
        stderr.contains("--phone") && !stderr.contains("call me"),
        "{stderr}"
    );
}

#[tokio::test]
async fn forget_waits_for_a_page_being_committed_and_erases_what_it_stored() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    assert_all_succeeded(&h.sync().await);
    let bot = leadsync::domain::BotUid::parse(BOT_A).expect("uid");
    let lead = leadsync::domain::Lead::from_raw(
        &bot,
        json!({"bot_uid": BOT_A, "conversation_uid": EMAIL_UID,
               "created_at": days_ago(1).to_rfc3339(), "email": EMAIL}),
    )
    .expect("a lead");

    // A sync's page, upserted but not committed yet.
    let mut page = h.db.pool.acquire().await.expect("connection");
    sqlx::query("BEGIN")
        .execute(&mut *page)
        .await
        .expect("begin");
    leadsync::store::upsert_leads(&mut *page, &bot, &[&lead])
        .await
        .expect("upsert");
    let pool = h.db.pool.clone();
    let forget = tokio::spawn(async move {
        let key = leadsync::domain::ErasureKey::email("ada.lovelace@example.com").expect("key");
        leadsync::ops::forget(&pool, &[key]).await
    });
    // The erasure waits for the page's lock (no sleep: poll the server's view of it).
    loop {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM pg_stat_activity
                             WHERE datname = current_database() AND wait_event_type = 'Lock'
                               AND query LIKE 'LOCK TABLE leads%')",
        )
        .fetch_one(&h.db.pool)
        .await
        .expect("pg_stat_activity");
        if waiting {
            break;
        }
        assert!(!forget.is_finished(), "forget did not wait for the page");
        tokio::task::yield_now().await;
    }
    sqlx::query("COMMIT")
        .execute(&mut *page)
        .await
        .expect("commit");

    let erased = forget.await.expect("join").expect("forget");
    assert_eq!(erased.leads, 1);
    assert!(h.stored(BOT_A).await.is_empty());
}

async fn rejected_records(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM rejected_leads")
        .fetch_one(&h.db.pool)
        .await
        .expect("rejects")
}
