use std::time::Duration;

use chrono::{Timelike as _, Utc};
use leadsync::{
    fake_api::{Fault, RecordedRequest, RetryAfter, WorldSettings},
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

    let report = report_for(&reports, BOT_A);
    let RunOutcome::Failed(err) = &report.outcome else {
        panic!("bot A should fail, got {:?}", report.outcome);
    };
    assert_eq!(err.kind(), "api:http_403");
    let requests = h.world.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(h.high_water_mark(BOT_A).await, None);
    // The API's request id reaches the error and the ledger, so a support ticket can cite it.
    let served = requests[0]
        .request_id
        .clone()
        .expect("the fake sent a request id");
    assert_eq!(err.request_id(), Some(served.as_str()));
    let error: String = sqlx::query_scalar("SELECT error FROM sync_runs WHERE bot_uid = $1")
        .bind(BOT_A)
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger row");
    assert!(error.contains(&served), "{error}");
    assert!(error.starts_with("api:http_403"), "{error}");
}

/// The request that got `fault` and the one after it.
async fn retried_after(
    fault: impl FnOnce() -> Fault,
    overrides: &[(&str, &str)],
) -> (RecordedRequest, RecordedRequest) {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 30, days_ago(3), days_ago(0), 27);
    h.world.push_faults(Some(BOT_A), [fault()]);

    let reports = h.sync_with(overrides).await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let requests = h.world.requests();
    let faulted = requests
        .iter()
        .position(|r| r.fault.is_some())
        .expect("the fault was served");
    let retry = requests.get(faulted + 1).expect("the request was retried");
    assert_eq!(
        (retry.start_date.as_deref(), retry.page),
        (
            requests[faulted].start_date.as_deref(),
            requests[faulted].page
        ),
        "the retry asks for the same page"
    );
    (requests[faulted].clone(), retry.clone())
}

/// The time between the request that got `fault` and the one after it.
async fn gap_after_fault(fault: Fault, overrides: &[(&str, &str)]) -> Duration {
    let (faulted, retry) = retried_after(|| fault, overrides).await;
    retry.received_at - faulted.received_at
}

#[tokio::test]
async fn a_429_with_retry_after_in_seconds_is_retried_no_sooner() {
    let gap = gap_after_fault(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(1)),
        },
        &[],
    )
    .await;
    // The backoff alone would be a few milliseconds (retry.max_delay_ms = 5).
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_as_an_http_date_is_retried_no_sooner() {
    // An HTTP date has whole seconds; the deadline is that second, on this machine's clock.
    let mut deadline = None;
    let (faulted, retry) = retried_after(
        || {
            let at = (Utc::now() + chrono::TimeDelta::seconds(3))
                .with_nanosecond(0)
                .expect("a valid instant");
            deadline = Some(std::time::Instant::now() + (at - Utc::now()).to_std().expect("ahead"));
            Fault::TooManyRequests {
                retry_after: Some(RetryAfter::HttpDate(at)),
            }
        },
        &[("LEADSYNC__RETRY__MAX_RETRY_AFTER_SECS", "10")],
    )
    .await;
    let deadline = deadline.expect("the fault was made");
    assert!(
        faulted.received_at + Duration::from_millis(300) < deadline,
        "the 429 came too late for the test to mean anything"
    );
    // A millisecond of slack for the clocks' rounding.
    assert!(
        retry.received_at + Duration::from_millis(1) >= deadline,
        "retried {:?} before the date",
        deadline - retry.received_at
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_waits_only_the_cap() {
    let gap = gap_after_fault(
        Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(3600)),
        },
        &[("LEADSYNC__RETRY__MAX_RETRY_AFTER_SECS", "1")],
    )
    .await;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_secs(30),
        "retried after {gap:?}"
    );
}

#[tokio::test]
async fn a_408_and_a_client_timeout_are_retried_and_the_copy_ends_exact() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 120, days_ago(5), days_ago(0), 28);
    // A proxy's 408, then an answer slower than api.timeout_secs.
    h.world.push_faults(
        Some(BOT_A),
        [
            Fault::RequestTimeout,
            Fault::Latency(Duration::from_millis(1_500)),
        ],
    );

    let reports = h.sync_with(&[("LEADSYNC__API__TIMEOUT_SECS", "1")]).await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(report_for(&reports, BOT_A).counts.retries, 2);
    let statuses: Vec<u16> = h.world.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[0], 408);
}

#[tokio::test]
async fn an_api_that_refuses_connections_fails_the_run_after_every_attempt() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let toml = h.config_toml("").replace(
        &h.api.base_url(),
        &format!("http://{closed}/api/v1/backend"),
    );

    let reports = h.sync_toml(&toml, &[]).await;

    let report = report_for(&reports, BOT_A);
    let RunOutcome::Failed(err) = &report.outcome else {
        panic!("the run should fail, got {:?}", report.outcome);
    };
    assert_eq!(err.kind(), "api:connect");
    // retry.max_attempts = 8 in the test config.
    assert_eq!((report.counts.requests, report.counts.retries), (8, 7));
    assert_eq!(h.high_water_mark(BOT_A).await, None);
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, error FROM sync_runs WHERE bot_uid = $1")
            .bind(BOT_A)
            .fetch_one(&h.db.pool)
            .await
            .expect("ledger row");
    assert_eq!(status, "failed");
    assert!(error.starts_with("api:connect"), "{error}");
}
