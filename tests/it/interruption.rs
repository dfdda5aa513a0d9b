//! A run stopped at any instant (its future dropped, its process killed) loses nothing,
//! duplicates nothing, and leaves the high-water mark behind what is committed. The windows here
//! hold several write batches (a batch is ~1,000 records: 20 pages of 50), so the test stops a
//! run after its window's first batch has committed and before its last one.

use std::process::{Command, Stdio};

use chrono::{TimeDelta, Utc};
use leadsync::fake_api::WorldSettings;

use crate::helpers::*;

/// One window of 2,600 leads: 52 pages of 50, three write batches.
const ONE_BIG_WINDOW: (&str, &str) = ("LEADSYNC__SYNC__MAX_WINDOW_LEADS", "5000");

async fn run_statuses(h: &Harness) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM sync_runs ORDER BY started_at")
        .fetch_all(&h.db.pool)
        .await
        .expect("ledger")
}

#[tokio::test]
async fn a_run_dropped_after_its_windows_first_batch_keeps_the_batch_and_leaves_the_mark_alone() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 2_600, days_ago(20), days_ago(0), 40);
    // Page 30 is in the second batch (pages 21-40): the first has committed when it is asked.
    let gate = h.world.hold_page(BOT_A, 30);

    tokio::select! {
        _ = h.sync_with(&[ONE_BIG_WINDOW]) => panic!("the run finished although page 30 was held"),
        () = async {
            gate.arrived().await;
            wait_for_committed(&h.db.pool, 1_000).await;
        } => {}
    }
    // The run's future is gone mid-window: its first batch stays, the mark has not moved.
    assert_eq!(count_leads(&h.db.pool).await, 1_000);
    assert_eq!(
        h.high_water_mark(BOT_A).await,
        None,
        "the mark never runs ahead of the data"
    );
    gate.release();
    wait_for_bot_locks_released(&h.db.pool).await;

    let reports = h.sync_with(&[ONE_BIG_WINDOW]).await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(run_statuses(&h).await, ["abandoned", "succeeded"]);
}

#[tokio::test]
async fn a_process_killed_after_a_windows_first_batch_leaves_the_mark_where_it_was() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 2_600, days_ago(20), days_ago(0), 41);
    // A first complete run, then new leads, so the killed run starts from a real mark.
    assert_all_succeeded(&h.sync_with(&[ONE_BIG_WINDOW]).await);
    let hwm_before = h.high_water_mark(BOT_A).await.expect("a mark");
    h.world
        .generate_leads(BOT_A, 100, Utc::now() - TimeDelta::hours(1), Utc::now(), 42);
    let config = write_config(&h.config_toml(""));
    let gate = h.world.hold_page(BOT_A, 30);

    let mut child = Command::new(env!("CARGO_BIN_EXE_leadsync"))
        .args(["--config", config.path(), "sync"])
        .env("CHATOFAI_API_KEY", KEY)
        // Re-read the whole history in one window of three batches; the newest leads are on
        // the first pages (newest first), so the first batch holds the 100 new ones.
        .env("LEADSYNC__SYNC__LOOKBACK_DAYS", "40")
        .env(ONE_BIG_WINDOW.0, ONE_BIG_WINDOW.1)
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn leadsync");
    gate.arrived().await;
    wait_for_committed(&h.db.pool, 2_700).await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    gate.release();

    assert_eq!(
        h.high_water_mark(BOT_A).await,
        Some(hwm_before),
        "a batch that was not the window's last moved the mark"
    );
    assert_eq!(count_leads(&h.db.pool).await, 2_700, "the batch stays");
    wait_for_bot_locks_released(&h.db.pool).await;
    let reports = h.sync_with(&[ONE_BIG_WINDOW]).await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert!(h.high_water_mark(BOT_A).await > Some(hwm_before));
    assert_eq!(
        run_statuses(&h).await,
        ["succeeded", "abandoned", "succeeded"]
    );
}

#[tokio::test]
async fn a_batch_is_bounded_by_bytes_as_well_as_records() {
    // 150 leads of 170 KB each: 3 pages of 8.5 MB. By count they would be one batch (and with
    // remarks of megabytes, a statement Postgres refuses); by bytes (16 MiB) pages 1-2 are one.
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let uids = h
        .world
        .generate_leads(BOT_A, 150, days_ago(20), days_ago(0), 43);
    let remark = serde_json::Value::String("r".repeat(170_000));
    for uid in &uids {
        assert!(h.world.edit_lead(uid, "remark", remark.clone()));
    }
    let gate = h.world.hold_page(BOT_A, 3);

    tokio::select! {
        _ = h.sync() => panic!("the run finished although page 3 was held"),
        () = async {
            gate.arrived().await;
            wait_for_committed(&h.db.pool, 100).await;
        } => {}
    }
    assert_eq!(count_leads(&h.db.pool).await, 100, "pages 1-2, one batch");
    assert_eq!(h.high_water_mark(BOT_A).await, None);
    gate.release();
    wait_for_bot_locks_released(&h.db.pool).await;

    assert_all_succeeded(&h.sync().await);
    h.assert_copy_is_exact().await;
}
