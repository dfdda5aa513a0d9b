use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use leadsync::fake_api::{FakeLead, TotalMode, WorldSettings};
use serde_json::json;

use crate::helpers::*;

/// Midnight UTC of `day` plus `seconds`: data placed on a UTC day explicitly, so a test means
/// the same whatever the hour it runs at.
fn on_day(day: NaiveDate, seconds: i64) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight").and_utc() + TimeDelta::seconds(seconds)
}

fn start_date(request: &leadsync::fake_api::RecordedRequest) -> NaiveDate {
    request
        .start_date
        .as_deref()
        .expect("start_date")
        .parse()
        .expect("date")
}

#[tokio::test]
async fn a_second_run_asks_only_for_the_recent_days_and_changes_nothing() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 500, days_ago(120), days_ago(0), 10);
    h.sync().await;
    let hwm = h.high_water_mark(BOT_A).await.expect("a high-water mark");
    let times = change_times(&h.db.pool).await;
    h.world.clear_requests();

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    assert_eq!((counts.inserted, counts.updated), (0, 0));
    assert!(counts.unchanged > 0, "the lookback was re-read");
    // lookback_days = 2: exactly two UTC days before the mark's own day, and one more while
    // `end_date` is not known to be inclusive (a sparse history has few shared boundaries).
    let beliefs = &report_for(&reports, BOT_A).beliefs;
    let lookback = 2 + u64::from(!beliefs.windows_may_abut());
    let earliest = hwm.date_naive() - Days::new(lookback);
    let requests = h.world.requests();
    assert!(
        !requests.is_empty() && requests.len() <= 3,
        "{} requests",
        requests.len()
    );
    assert_eq!(start_date(&requests[0]), earliest);
    for request in &requests {
        assert!(
            start_date(request) >= earliest,
            "asked from before {earliest}"
        );
    }
    h.assert_copy_is_exact().await;
    assert_eq!(
        change_times(&h.db.pool).await,
        times,
        "an unchanged re-read rewrites nothing"
    );
}

#[tokio::test]
async fn arrivals_late_arrivals_and_edits_are_picked_up() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 200, days_ago(30), days_ago(0), 11);
    h.sync().await;
    let hwm = h.high_water_mark(BOT_A).await.expect("a high-water mark");
    let times = change_times(&h.db.pool).await;
    let mut newest = h.world.truth(BOT_A);
    newest.sort_by_key(|lead| std::cmp::Reverse(lead.created_at));

    // New leads; two late arrivals behind the mark, on the two UTC days the lookback re-reads
    // (the first second of the oldest one); an edit of a column and one of a field only the raw
    // payload has.
    h.world.generate_leads(
        BOT_A,
        5,
        Utc::now() - TimeDelta::minutes(30),
        Utc::now(),
        12,
    );
    let day = hwm.date_naive();
    for (uid, at) in [
        ("late-yesterday", on_day(day - Days::new(1), 3_600)),
        ("late-at-lookback-start", on_day(day - Days::new(2), 1)),
    ] {
        h.world
            .insert_lead(BOT_A, FakeLead::new(BOT_A, uid, at.fixed_offset()));
    }
    let edited = &newest[0].conversation_uid;
    let raw_edited = &newest[1].conversation_uid;
    assert!(
        h.world
            .edit_lead(edited, "remark", json!("filled in later"))
    );
    assert!(
        h.world
            .edit_lead(raw_edited, "utm_source", json!("newsletter"))
    );

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    assert_eq!(counts.inserted, 7);
    assert_eq!(counts.updated, 2);
    assert_eq!(
        counts.inserted + counts.updated + counts.unchanged + counts.rejected,
        counts.fetched,
        "every record read is counted once"
    );
    h.assert_copy_is_exact().await;
    let after = change_times(&h.db.pool).await;
    for (uid, (first_seen, last_changed)) in &times {
        let (first_now, last_now) = after[uid];
        assert_eq!(first_now, *first_seen, "first_seen_at of {uid} never moves");
        if uid == edited || uid == raw_edited {
            assert!(last_now > *last_changed, "an edit moves last_changed_at");
        } else {
            assert_eq!(last_now, *last_changed, "{uid} did not change");
        }
    }
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

#[tokio::test]
async fn when_a_lead_is_listed_twice_in_one_batch_the_later_copy_wins() {
    // Without a total nothing says a lead was missed, so the window is not read again: the
    // only copies are the two in the first pass's one batch.
    let settings = WorldSettings {
        total: TotalMode::Absent,
        ..WorldSettings::default()
    };
    let h = Harness::start(settings, &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 180, days_ago(3), days_ago(0), 14);
    let mut newest = h.world.truth(BOT_A);
    newest.sort_by_key(|lead| std::cmp::Reverse((lead.created_at, lead.conversation_uid.clone())));
    // After page 1 (the 50 newest), a lead arrives, pushing page 1's last lead onto page 2,
    // and that lead is edited: page 2 serves it again, edited, in the same write batch.
    let last_of_page_one = newest[49].conversation_uid.clone();
    let arrival = FakeLead::new(BOT_A, "arrived-mid-listing", Utc::now().fixed_offset());
    h.world.after_page(BOT_A, 1, vec![arrival]);
    h.world.edit_after_page(
        BOT_A,
        1,
        &last_of_page_one,
        "remark",
        json!("edited between pages"),
    );

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    let requests = h.world.requests();
    assert!(requests.iter().any(|r| r.page == Some(2)));
    let stored = h.stored(BOT_A).await;
    let lead = stored
        .iter()
        .find(|lead| lead.conversation_uid == last_of_page_one)
        .expect("stored");
    assert_eq!(lead.remark.as_deref(), Some("edited between pages"));
    assert_eq!(report_for(&reports, BOT_A).counts.rereads, 0);
    // The lead that arrived mid-listing is the next run's.
    h.sync().await;
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn a_high_water_mark_in_the_future_is_read_from_today() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 50, days_ago(10), days_ago(1), 15);
    h.sync().await;
    // Clock skew on the API's side once left a mark a year ahead.
    let future = Utc::now() + TimeDelta::days(365);
    sqlx::query("UPDATE sync_state SET high_water_mark = $1, resume_from = $2")
        .bind(future)
        .bind(future.date_naive())
        .execute(&h.db.pool)
        .await
        .expect("set the mark");
    h.world.generate_leads(
        BOT_A,
        5,
        Utc::now() - TimeDelta::minutes(10),
        Utc::now(),
        16,
    );
    h.world.clear_requests();

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    assert_eq!(report_for(&reports, BOT_A).counts.inserted, 5);
    let requests = h.world.requests();
    let today = Utc::now().date_naive();
    // The lookback behind today: 2, and a day more while `end_date` is not known inclusive.
    let lookback = report_for(&reports, BOT_A).beliefs.lookback_days(2);
    assert!(lookback <= 3, "{lookback}");
    assert_eq!(
        start_date(&requests[0]),
        today - Days::new(u64::from(lookback))
    );
    h.assert_copy_is_exact().await;
}
