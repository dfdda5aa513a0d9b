use std::time::Duration;

use chrono::Utc;
use leadsync::{
    fake_api::{Fault, RetryAfter, WorldSettings},
    sync::{RunOutcome, SyncError},
};

use crate::helpers::*;

#[tokio::test]
async fn every_transient_fault_kind_is_retried_and_the_copy_ends_exact() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(60), days_ago(0), 20);
    let faults = [
        Fault::InternalError,
        Fault::ServiceUnavailable,
        Fault::BadGatewayHtml,
        Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(0)),
        },
        Fault::TooManyRequests {
            retry_after: Some(RetryAfter::HttpDate(Utc::now())),
        },
        Fault::TooManyRequests { retry_after: None },
        Fault::HtmlPage,
        Fault::TruncatedJson,
        Fault::ConnectionReset,
        Fault::AppError { code: 50001 },
        Fault::Latency(Duration::from_millis(5)),
    ];
    h.world.push_faults(Some(BOT_A), faults.clone());

    let reports = h
        .sync_with(&[("LEADSYNC__RETRY__MAX_ATTEMPTS", "12")])
        .await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let failed: Vec<_> = h
        .world
        .requests()
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    assert_eq!(
        failed,
        faults.to_vec(),
        "each scripted fault was served once, in order"
    );
    assert_eq!(
        report_for(&reports, BOT_A).counts.retries,
        10,
        "all but the latency fault were retried"
    );
}

#[tokio::test]
async fn a_quarter_of_requests_failing_at_random_still_ends_exact() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 1_200, days_ago(400), days_ago(0), 21);
    h.world
        .generate_leads(BOT_B, 400, days_ago(20), days_ago(0), 22);
    h.world.set_random_faults(0.25, 7);

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let failed = h
        .world
        .requests()
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert!(failed >= 10, "the faults were really injected ({failed})");

    // Right after, an incremental run costs only a few requests per bot.
    h.world.set_random_faults(0.0, 0);
    h.world.clear_requests();
    let reports = h.sync().await;
    assert_all_succeeded(&reports);
    for bot in [BOT_A, BOT_B] {
        let requests = h
            .world
            .requests()
            .iter()
            .filter(|r| r.bot_uid == bot)
            .count();
        assert!(
            requests <= 3,
            "{requests} requests for an incremental run of {bot}"
        );
    }
    h.assert_copy_is_exact().await;
}

#[tokio::test]
async fn refused_requests_fail_only_that_bot_and_leave_its_high_water_mark_alone() {
    for (fault, status) in [
        (Fault::Unauthorized, 401),
        (Fault::Forbidden, 403),
        (Fault::NotFound, 404),
    ] {
        let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
        h.world
            .generate_leads(BOT_A, 120, days_ago(10), days_ago(0), 23);
        h.world
            .generate_leads(BOT_B, 120, days_ago(10), days_ago(0), 24);
        h.sync().await;
        let hwm_before = h.high_water_mark(BOT_A).await;
        h.world
            .generate_leads(BOT_A, 10, days_ago(0), Utc::now(), 25);
        h.world
            .generate_leads(BOT_B, 10, days_ago(0), Utc::now(), 26);
        h.world.push_faults(Some(BOT_A), [fault.clone()]);
        h.world.clear_requests();

        let reports = h.sync().await;

        let a = report_for(&reports, BOT_A);
        match &a.outcome {
            RunOutcome::Failed(SyncError::Api(err)) => {
                assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
            }
            other => panic!("bot A should fail with {status}, got {other:?}"),
        }
        let a_requests = h
            .world
            .requests()
            .iter()
            .filter(|r| r.bot_uid == BOT_A)
            .count();
        assert_eq!(a_requests, 1, "a {status} is not retried");
        assert!(matches!(
            report_for(&reports, BOT_B).outcome,
            RunOutcome::Succeeded
        ));
        assert_eq!(h.high_water_mark(BOT_A).await, hwm_before);
        assert!(
            h.stored(BOT_B).await == h.world.truth(BOT_B),
            "bot B's copy is exact"
        );
        let (status_text, error): (String, Option<String>) = sqlx::query_as(
            "SELECT status, error FROM sync_runs WHERE bot_uid = $1 ORDER BY started_at DESC LIMIT 1",
        )
        .bind(BOT_A)
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger row");
        assert_eq!(status_text, "failed");
        assert!(
            error
                .expect("an error summary")
                .contains(&status.to_string())
        );
    }
}

#[tokio::test]
async fn a_real_forbidden_bot_fails_without_retries() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world.set_forbidden(BOT_A, true);

    let reports = h.sync().await;

    assert!(matches!(
        report_for(&reports, BOT_A).outcome,
        RunOutcome::Failed(_)
    ));
    assert_eq!(h.world.requests().len(), 1);
    assert_eq!(h.high_water_mark(BOT_A).await, None);
}
