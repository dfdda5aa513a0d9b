//! How a window's listing is read: where it ends whatever `total` says, re-reads when it shifts,
//! how many requests are in flight, and the per-bot lock.

use std::time::Duration;

use leadsync::{
    fake_api::{Gate, TotalMode, WorldSettings},
    sync::RunOutcome,
};
use sqlx::Connection;

use crate::{capture::LogCapture, helpers::*};

/// Fails the test instead of hanging when what it waits for never happens.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 30 s"))
}

async fn all_arrived(gates: &[Gate]) {
    for gate in gates {
        gate.arrived().await;
    }
}

#[tokio::test]
async fn a_total_that_lags_behind_the_listing_loses_nothing_and_raises_no_alarm() {
    for (label, total) in [
        ("lagging by half", TotalMode::Lagging(60)),
        ("lagging by one", TotalMode::Lagging(1)),
    ] {
        let settings = WorldSettings {
            total,
            ..WorldSettings::default()
        };
        let h = Harness::start(settings, &[BOT_A]).await;
        // 120 leads, pages of 50: a listing trusting `total: 60` would stop after page 2.
        h.world
            .generate_leads(BOT_A, 120, days_ago(10), days_ago(0), 50);
        let (logs, _guard) = LogCapture::start();

        let reports = h.sync().await;

        assert_all_succeeded(&reports);
        h.assert_copy_is_exact().await;
        let counts = report_for(&reports, BOT_A).counts;
        assert_eq!((counts.inserted, counts.rereads), (120, 0), "{label}");
        logs.assert_quiet(label);
    }
}

#[tokio::test]
async fn a_listing_that_keeps_growing_is_read_again_up_to_the_limit_then_reported_once() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 120, days_ago(10), days_ago(0), 51);
    // A lead arrives each time page 1 is served: every pass falls one short of the new total.
    h.world.keep_arriving(BOT_A, 1);
    let (logs, _guard) = LogCapture::start();

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    // sync.max_window_rereads defaults to 2.
    assert_eq!((counts.rereads, counts.incomplete_windows), (2, 1));
    assert_eq!(logs.count("window_reread"), 2);
    let incomplete = logs.named("window_incomplete");
    assert_eq!(incomplete.len(), 1);
    assert_eq!(incomplete[0].field("bot_uid"), Some(BOT_A));
    let recorded: i32 = sqlx::query_scalar("SELECT incomplete_windows FROM sync_runs")
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger");
    assert_eq!(recorded, 1);

    // Once the arrivals stop, the next run is complete, and quiet.
    h.world.stop_arriving(BOT_A);
    logs.clear();
    let reports = h.sync().await;
    assert_all_succeeded(&reports);
    assert_eq!(report_for(&reports, BOT_A).counts.incomplete_windows, 0);
    h.assert_copy_is_exact().await;
    logs.assert_quiet("after the arrivals stopped");
}

#[tokio::test]
async fn requests_in_flight_never_exceed_api_max_in_flight_across_bots() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 500, days_ago(10), days_ago(0), 52);
    h.world
        .generate_leads(BOT_B, 500, days_ago(10), days_ago(0), 53);
    let held = [h.world.hold_page(BOT_A, 2), h.world.hold_page(BOT_A, 3)];
    let overrides = [
        ("LEADSYNC__API__MAX_IN_FLIGHT", "2"),
        ("LEADSYNC__SYNC__MAX_WINDOW_LEADS", "5000"),
    ];

    let (reports, ()) = tokio::join!(h.sync_with(&overrides), async {
        within("two held requests", all_arrived(&held)).await;
        // Both slots are taken by held requests: nothing else may be in flight now.
        assert_eq!(h.world.in_flight_peak(), 2);
        for gate in &held {
            gate.release();
        }
    });

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(
        h.world.in_flight_peak(),
        2,
        "never more than api.max_in_flight"
    );
}

#[tokio::test]
async fn a_window_fetches_four_pages_ahead_and_no_more() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 1_000, days_ago(10), days_ago(0), 54);
    let ahead: Vec<Gate> = (2..=5).map(|page| h.world.hold_page(BOT_A, page)).collect();
    let sixth = h.world.hold_page(BOT_A, 6);

    let (reports, ()) = tokio::join!(
        h.sync_with(&[("LEADSYNC__SYNC__MAX_WINDOW_LEADS", "5000")]),
        async {
            within("pages 2-5 at once", all_arrived(&ahead)).await;
            // Page 6 goes out only once one of the four is answered.
            ahead[0].release();
            within("page 6", sixth.arrived()).await;
            for gate in ahead.iter().chain([&sixth]) {
                gate.release();
            }
        }
    );

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(h.world.in_flight_peak_of(BOT_A), 4);
}

#[tokio::test]
async fn a_bot_locked_by_another_session_is_skipped_and_nothing_is_read_or_stored() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 50, days_ago(5), days_ago(0), 55);
    // The test itself plays the other process: it holds the bot's advisory lock.
    let mut other = sqlx::PgConnection::connect(&h.db.url)
        .await
        .expect("connect");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(format!("leadsync:bot:{BOT_A}"))
        .fetch_one(&mut other)
        .await
        .expect("lock");
    assert!(locked);

    let reports = h.sync().await;

    assert!(matches!(
        report_for(&reports, BOT_A).outcome,
        RunOutcome::Skipped
    ));
    assert!(h.world.requests().is_empty(), "a skipped run asks nothing");
    assert_eq!(count_leads(&h.db.pool).await, 0);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs")
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger");
    assert_eq!(runs, 0, "a skipped run leaves no ledger row");

    other.close().await.expect("release by closing the session");
    wait_for_bot_locks_released(&h.db.pool).await;
    assert_all_succeeded(&h.sync().await);
    h.assert_copy_is_exact().await;
}
