use std::process::{Command, Stdio};

use leadsync::fake_api::WorldSettings;

use crate::helpers::*;

async fn committed_leads(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&h.db.pool)
        .await
        .expect("count leads")
}

async fn run_statuses(h: &Harness) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM sync_runs ORDER BY started_at")
        .fetch_all(&h.db.pool)
        .await
        .expect("ledger")
}

#[tokio::test]
async fn a_run_dropped_mid_window_leaves_the_mark_alone_and_the_next_run_completes_exactly() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 380, days_ago(30), days_ago(0), 40);
    let gate = h.world.hold_page(BOT_A, 4);

    tokio::select! {
        _ = h.sync() => panic!("the run finished although page 4 was held"),
        () = gate.arrived() => {}
    }
    // The run's future is gone mid-window: what it committed stays, the mark has not moved.
    assert!(committed_leads(&h).await < 380);
    assert_eq!(
        h.high_water_mark(BOT_A).await,
        None,
        "the mark never runs ahead of the data"
    );
    gate.release();
    wait_for_bot_locks_released(&h.db.pool).await;

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(run_statuses(&h).await, ["abandoned", "succeeded"]);
}

#[tokio::test]
async fn a_process_killed_mid_window_loses_and_duplicates_nothing() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 380, days_ago(30), days_ago(0), 41);
    // A first complete run, then new leads, so the killed run starts from a real mark.
    h.sync().await;
    let hwm_before = h.high_water_mark(BOT_A).await;
    h.world
        .generate_leads(BOT_A, 200, days_ago(1), days_ago(0), 42);
    let config = write_config(&h.config_toml(""));
    let gate = h.world.hold_page(BOT_A, 3);

    let mut child = Command::new(env!("CARGO_BIN_EXE_leadsync"))
        .args(["--config", config.path(), "sync"])
        .env("CHATOFAI_API_KEY", KEY)
        // Re-read the whole month, so the run is long enough to be killed mid-window.
        .env("LEADSYNC__SYNC__LOOKBACK_DAYS", "40")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn leadsync");
    gate.arrived().await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    gate.release();

    assert_eq!(
        h.high_water_mark(BOT_A).await,
        hwm_before,
        "the killed run moved nothing"
    );
    wait_for_bot_locks_released(&h.db.pool).await;
    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(
        run_statuses(&h).await,
        ["succeeded", "abandoned", "succeeded"]
    );
}
