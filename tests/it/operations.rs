//! The operator commands: verify (and repair), backfill, status, check.

use chrono::{TimeDelta, Utc};
use leadsync::{
    domain::BotUid,
    fake_api::{FakeLead, WorldSettings},
};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn verify_finds_a_deleted_row_and_a_day_the_api_grew_and_repair_fixes_both() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(6), days_ago(0), 90);
    h.sync().await;
    let bot = BotUid::parse(BOT_A).expect("uid");
    let syncer = syncer(&h);
    assert!(
        syncer
            .verify(&bot, 7, false)
            .await
            .expect("verify")
            .is_empty(),
        "in sync after a sync"
    );

    // A row deleted by hand, and a lead that appeared 5 days back: both on UTC days behind the
    // lookback (2 days, and one more while `end_date` is not known inclusive) whatever the hour.
    let deleted: String = sqlx::query_scalar(
        "DELETE FROM leads WHERE conversation_uid = (SELECT conversation_uid FROM leads
          WHERE created_at < date_trunc('day', now(), 'UTC') - interval '4 days' LIMIT 1)
         RETURNING conversation_uid",
    )
    .fetch_one(&h.db.pool)
    .await
    .expect("delete a row");
    let grown_at = Utc::now() - TimeDelta::days(5);
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, "grew-later", grown_at.fixed_offset()),
    );
    h.sync().await;

    let drifts = syncer.verify(&bot, 7, false).await.expect("verify");
    assert_eq!(
        drifts.iter().map(|d| d.missing).sum::<usize>(),
        2,
        "{drifts:?}"
    );
    assert!(drifts.iter().any(|d| d.day == grown_at.date_naive()));
    assert!(
        h.stored(BOT_A)
            .await
            .iter()
            .all(|l| l.conversation_uid != deleted)
    );

    let left = syncer.verify(&bot, 7, true).await.expect("verify --repair");
    assert!(left.is_empty(), "{left:?}");
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn the_verify_command_exits_1_on_drift_and_0_after_repair() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 50, days_ago(3), days_ago(0), 91);
    h.sync().await;
    sqlx::query("DELETE FROM leads WHERE ctid IN (SELECT ctid FROM leads LIMIT 1)")
        .execute(&h.db.pool)
        .await
        .expect("delete");
    let config = h.config_toml("");
    let run = |args: &'static [&'static str]| {
        let config = write_config(&config);
        async move { Process::start(config, args, &[]).exit_code().await }
    };
    assert_eq!(run(&["verify", "--days", "5"]).await, Some(1));
    assert_eq!(run(&["verify", "--days", "5", "--repair"]).await, Some(0));
    assert_eq!(run(&["verify", "--days", "5"]).await, Some(0));
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn backfill_picks_up_old_edits_without_moving_the_high_water_mark_back() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 200, days_ago(60), days_ago(0), 92);
    h.sync().await;
    let hwm = h.high_water_mark(BOT_A).await;
    let old = h
        .world
        .truth(BOT_A)
        .into_iter()
        .find(|lead| lead.created_at < Utc::now() - TimeDelta::days(30))
        .expect("an old lead");
    h.world
        .edit_lead(&old.conversation_uid, "remark", json!("edited long after"));
    h.sync().await;
    assert_ne!(
        h.stored(BOT_A).await,
        h.world.truth(BOT_A),
        "a normal run does not see old edits"
    );

    let from = (Utc::now() - TimeDelta::days(61)).date_naive().to_string();
    let process = Process::start(
        write_config(&h.config_toml("")),
        &["backfill", "--bot", BOT_A, "--from", &from],
        &[],
    );
    assert_eq!(process.exit_code().await, Some(0));

    h.assert_copy_is_exact().await;
    assert_eq!(h.high_water_mark(BOT_A).await, hwm);
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM sync_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&h.db.pool)
            .await
            .expect("ledger");
    assert_eq!(kind, "backfill");
}

#[tokio::test]
async fn status_reports_each_bot_and_check_fails_for_a_bot_whose_key_is_refused() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 40, days_ago(3), days_ago(0), 93);
    h.sync().await;

    let config = h.config_toml("");
    // The fake API answers from this test's runtime: run the commands off it.
    let leadsync = |args: &'static [&'static str], key: &'static str| {
        let config = write_config(&config);
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_leadsync"))
                    .args(["--config", config.path()])
                    .args(args)
                    .env("CHATOFAI_API_KEY", key)
                    .env_remove("DATABASE_URL")
                    .output()
                    .expect("run leadsync")
            })
            .await
            .expect("join")
        }
    };
    let output = leadsync(&["status", "--json"], KEY).await;
    assert!(output.status.success());
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(status[0]["bot_uid"], BOT_A);
    assert_eq!(status[0]["leads"], 40);
    assert_eq!(status[0]["last_run_status"], "succeeded");
    // What the sync learned of the fake (a total that counts the window, newest first).
    assert_eq!(status[0]["api"]["total"], "filtered", "{status}");
    assert_eq!(status[0]["api"]["ignores_page"], false);
    // 2 configured, a day more while `end_date` is not known inclusive.
    let lookback = status[0]["lookback_days"].as_u64().expect("lookback_days");
    let inclusive = status[0]["api"]["end_date"] == "inclusive";
    assert_eq!(lookback, 2 + u64::from(!inclusive), "{status}");
    assert_eq!(status[1]["api"]["total"], "filtered", "{status}");
    let table = leadsync(&["status"], KEY).await;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("api learned       total filtered"),
        "{table}"
    );

    let good = leadsync(&["check"], KEY).await;
    let report = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{report}");
    assert!(report.contains(&format!("bot {BOT_A}: ok")), "{report}");
    assert!(report.contains("  api learned: total filtered"), "{report}");
    assert!(
        report.contains(&format!("lookback {lookback} d")),
        "{report}"
    );
    let bad = leadsync(&["check"], "wrong-key").await;
    let report = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1));
    assert!(report.contains("FAILED: HTTP 401"), "{report}");
}

async fn sync_position(h: &Harness) -> (Option<chrono::DateTime<Utc>>, Option<chrono::NaiveDate>) {
    sqlx::query_as("SELECT high_water_mark, resume_from FROM sync_state WHERE bot_uid = $1")
        .bind(BOT_A)
        .fetch_one(&h.db.pool)
        .await
        .expect("sync_state")
}

#[tokio::test]
async fn a_backfill_or_repair_of_old_days_never_moves_the_mark_backwards() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(60), days_ago(0), 94);
    h.sync().await;
    let before = sync_position(&h).await;
    assert!(before.0.is_some() && before.1.is_some());

    // A backfill that ends long before the mark: its windows complete with older leads.
    let day = |ago: i64| (Utc::now() - TimeDelta::days(ago)).date_naive().to_string();
    let process = Process::start(
        write_config(&h.config_toml("")),
        &[
            "backfill",
            "--bot",
            BOT_A,
            "--from",
            &day(61),
            "--to",
            &day(30),
        ],
        &[],
    );
    assert_eq!(process.exit_code().await, Some(0));
    assert_eq!(
        sync_position(&h).await,
        before,
        "after a backfill of old days"
    );
    let (kind, range_end): (String, chrono::NaiveDate) =
        sqlx::query_as("SELECT kind, range_end FROM sync_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&h.db.pool)
            .await
            .expect("ledger");
    assert_eq!(kind, "backfill");
    assert!(
        range_end.to_string() <= day(29),
        "the backfill read old days only"
    );

    // A repair of old days, as `verify --repair` runs it.
    let range = leadsync::domain::DayRange::new(
        day(50).parse().expect("date"),
        day(40).parse().expect("date"),
    )
    .expect("range");
    let bot = BotUid::parse(BOT_A).expect("uid");
    let report = syncer(&h)
        .run_bot(&bot, leadsync::sync::RunRequest::repair(range))
        .await;
    assert!(matches!(
        report.outcome,
        leadsync::sync::RunOutcome::Succeeded
    ));
    assert!(report.counts.windows >= 1 && report.counts.fetched > 0);
    assert_eq!(
        sync_position(&h).await,
        before,
        "after a repair of old days"
    );
    h.assert_copy_is_exact().await;
}

/// `source_missing_since` of a stored lead (`None` when not marked); panics if not stored.
async fn missing_since(h: &Harness, uid: &str) -> Option<chrono::DateTime<Utc>> {
    sqlx::query_scalar("SELECT source_missing_since FROM leads WHERE conversation_uid = $1")
        .bind(uid)
        .fetch_one(&h.db.pool)
        .await
        .expect("the lead is still stored")
}

async fn in_current_leads(h: &Harness, uid: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM current_leads WHERE conversation_uid = $1)")
        .bind(uid)
        .fetch_one(&h.db.pool)
        .await
        .expect("current_leads")
}

#[tokio::test]
async fn a_lead_the_api_deleted_is_marked_by_verify_never_deleted_and_unmarked_when_it_returns() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 60, days_ago(5), days_ago(0), 98);
    assert_all_succeeded(&h.sync().await);
    let bot = BotUid::parse(BOT_A).expect("uid");
    let syncer = syncer(&h);
    let gone = h.world.truth(BOT_A)[0].clone();
    let uid = gone.conversation_uid.as_str();
    assert!(h.world.remove_lead(uid));

    // Not a difference: marked, left out of current_leads, kept in leads.
    let drifts = syncer.verify(&bot, 7, false).await.expect("verify");
    assert!(drifts.is_empty(), "{drifts:?}");
    let marked = missing_since(&h, uid).await.expect("marked");
    assert!(!in_current_leads(&h, uid).await);
    let others: i64 =
        sqlx::query_scalar("SELECT count(*) FROM leads WHERE source_missing_since IS NOT NULL")
            .fetch_one(&h.db.pool)
            .await
            .expect("count");
    assert_eq!(others, 1, "only the deleted lead");
    // A sync and a second verify keep the first mark, and delete nothing.
    assert_all_succeeded(&h.sync().await);
    assert!(
        syncer
            .verify(&bot, 7, false)
            .await
            .expect("verify")
            .is_empty()
    );
    assert_eq!(missing_since(&h, uid).await, Some(marked));
    assert_eq!(h.stored(BOT_A).await.len(), 60);

    // It comes back (as it was): the next verify clears the mark.
    let back = FakeLead::new(BOT_A, uid, gone.created_at.fixed_offset());
    h.world.insert_lead(BOT_A, back);
    assert!(
        syncer
            .verify(&bot, 7, false)
            .await
            .expect("verify")
            .is_empty()
    );
    assert_eq!(missing_since(&h, uid).await, None);
    assert!(in_current_leads(&h, uid).await);
}
