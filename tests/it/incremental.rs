use chrono::{NaiveDate, TimeDelta, Utc};
use leadsync::fake_api::{FakeLead, WorldSettings};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_second_run_asks_only_for_the_recent_days_and_changes_nothing() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 500, days_ago(120), days_ago(0), 10);
    h.sync().await;
    let hwm = h.high_water_mark(BOT_A).await.expect("a high-water mark");
    h.world.clear_requests();

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    assert_eq!((counts.inserted, counts.updated), (0, 0));
    let earliest = hwm.date_naive() - TimeDelta::days(2);
    let requests = h.world.requests();
    assert!(
        !requests.is_empty() && requests.len() <= 3,
        "{} requests",
        requests.len()
    );
    for request in requests {
        let start: NaiveDate = request
            .start_date
            .expect("start_date")
            .parse()
            .expect("date");
        assert!(start >= earliest, "asked from {start}, before {earliest}");
    }
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn arrivals_late_arrivals_and_edits_are_picked_up() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 200, days_ago(30), days_ago(0), 11);
    h.sync().await;
    let hwm = h.high_water_mark(BOT_A).await.expect("a high-water mark");
    let newest = h
        .world
        .truth(BOT_A)
        .into_iter()
        .max_by_key(|lead| lead.created_at)
        .expect("leads");

    // New leads, one created behind the high-water mark but inside the lookback, and an edit.
    h.world.generate_leads(
        BOT_A,
        5,
        Utc::now() - TimeDelta::minutes(30),
        Utc::now(),
        12,
    );
    let late = hwm - TimeDelta::hours(20);
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, "late-arrival", late.fixed_offset()),
    );
    assert!(
        h.world
            .edit_lead(&newest.conversation_uid, "remark", json!("filled in later"))
    );

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    assert_eq!(counts.inserted, 6);
    assert_eq!(counts.updated, 1);
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn a_lead_inserted_while_the_client_pages_is_not_missed() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 180, days_ago(3), days_ago(0), 13);
    // Newest-first offset paging: a lead arriving after page 1 shifts every later page.
    let arrival = FakeLead::new(BOT_A, "arrived-mid-listing", Utc::now().fixed_offset());
    h.world.after_page(BOT_A, 1, vec![arrival]);

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert!(
        report_for(&reports, BOT_A).counts.rereads >= 1,
        "the shortfall was noticed"
    );
}
