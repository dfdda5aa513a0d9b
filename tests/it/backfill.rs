use chrono::{FixedOffset, NaiveDate};
use leadsync::fake_api::{Order, TotalMode, WorldSettings};

use crate::helpers::*;

#[tokio::test]
async fn a_first_backfill_stores_exactly_what_the_api_holds() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 900, days_ago(300), days_ago(0), 1);
    h.world
        .generate_leads(BOT_B, 250, days_ago(40), days_ago(0), 2);

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let a = report_for(&reports, BOT_A);
    assert_eq!(a.counts.inserted, 900);
    assert_eq!(a.counts.rejected, 0);
    assert!(
        a.counts.windows >= 3,
        "900 leads with max_window_leads = 400 need several windows"
    );
    let newest = h
        .world
        .truth(BOT_A)
        .iter()
        .map(|lead| lead.created_at)
        .max();
    assert_eq!(h.high_water_mark(BOT_A).await, newest);
}

#[tokio::test]
async fn an_empty_stretch_of_history_costs_about_as_many_requests_as_there_are_pages() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    // Three years allowed, leads only in the last 90 days: 300 leads = 6 pages of 50.
    h.world
        .generate_leads(BOT_A, 300, days_ago(90), days_ago(0), 3);

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let requests = h.world.requests().len();
    assert!(
        requests <= 6 + 3,
        "{requests} requests for 6 pages over ~5 years of days"
    );
}

#[tokio::test]
async fn the_copy_is_exact_whichever_way_the_undocumented_behaviours_fall() {
    let variants = [
        WorldSettings {
            end_date_inclusive: false,
            ..WorldSettings::default()
        },
        WorldSettings {
            day_filter_offset: FixedOffset::east_opt(14 * 3600).expect("offset"),
            ..WorldSettings::default()
        },
        WorldSettings {
            day_filter_offset: FixedOffset::west_opt(12 * 3600).expect("offset"),
            end_date_inclusive: false,
            ..WorldSettings::default()
        },
        WorldSettings {
            order: Order::OldestFirst,
            ..WorldSettings::default()
        },
        WorldSettings {
            max_page_size: 7,
            ..WorldSettings::default()
        },
        // A server that clamps the page size silently, with and without a total.
        WorldSettings {
            max_page_size: 30,
            reports_page_size: false,
            ..WorldSettings::default()
        },
        WorldSettings {
            max_page_size: 30,
            reports_page_size: false,
            total: TotalMode::Absent,
            ..WorldSettings::default()
        },
    ];
    for settings in variants {
        let label = format!("{settings:?}");
        let h = Harness::start(settings, &[BOT_A]).await;
        h.world
            .generate_leads(BOT_A, 600, days_ago(200), days_ago(0), 4);

        let reports = h.sync().await;

        assert_all_succeeded(&reports);
        let truth = h.world.truth(BOT_A);
        assert!(
            h.stored(BOT_A).await == truth,
            "copy differs from the truth with {label}"
        );
        assert_eq!(truth.len(), 600);
    }
}

#[tokio::test]
async fn a_day_holding_more_than_a_window_is_read_whole() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world.generate_leads(
        BOT_A,
        700,
        days_ago(1),
        days_ago(1) + chrono::TimeDelta::hours(2),
        5,
    );

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn backfill_from_bounds_the_first_request() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 20, days_ago(10), days_ago(0), 6);

    h.sync().await;

    let first = h.world.requests().into_iter().next().expect("a request");
    let start: NaiveDate = first
        .start_date
        .expect("start_date sent")
        .parse()
        .expect("a date");
    assert_eq!(start, NaiveDate::from_ymd_opt(2022, 1, 1).expect("date"));
    assert_eq!(first.page, Some(1));
    assert_eq!(first.page_size, Some(50));
}
