use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use super::{
    SyncError,
    context::{RunRequests, SyncContext},
};
use crate::{
    chatof::{ChatofClient, LeadsPage, LeadsQuery},
    domain::{BotUid, DayRange},
    events,
};

/// Fetches one page under the retry policy, counting each attempt in `requests`. Each attempt
/// waits for a slot of the run's share and one of the process-wide cap on requests in flight.
/// A shutdown abandons the request (and any backoff) at once: nothing is half-written by a fetch.
pub(super) async fn fetch_page(
    ctx: &SyncContext,
    requests: &RunRequests,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
    page: u32,
) -> Result<LeadsPage, SyncError> {
    let query = LeadsQuery {
        range: Some(range),
        page,
        page_size: ctx.page_size,
    };
    let attempts = AtomicU64::new(0);
    let started = Instant::now();
    let fetch = ctx.retry.run(
        || async {
            let _share = requests.share.acquire().await;
            let _slot = ctx.requests_in_flight.acquire().await;
            let retry = attempts.fetch_add(1, Relaxed) > 0;
            requests.count_attempt(retry);
            let result = client.fetch_leads_page(bot, &query).await;
            events::api_request_completed(&result);
            result
        },
        |err, delay| events::request_retried(attempts.load(Relaxed), err, delay),
    );
    let result = tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(SyncError::Interrupted),
        result = fetch => result.map_err(SyncError::from),
    };
    if let Ok(leads) = &result {
        events::page_fetched(
            range,
            page,
            leads.records.len(),
            leads.total,
            leads.request_id.as_deref(),
            started.elapsed(),
        );
    }
    result
}

/// One attempt, no retries: for the probe, whose answer is a hint that a run can do without.
pub(super) async fn fetch_page_once(
    ctx: &SyncContext,
    requests: &RunRequests,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
) -> Result<LeadsPage, SyncError> {
    let query = LeadsQuery {
        range: Some(range),
        page: 1,
        page_size: ctx.page_size,
    };
    let attempt = async {
        let _share = requests.share.acquire().await;
        let _slot = ctx.requests_in_flight.acquire().await;
        requests.count_attempt(false);
        let result = client.fetch_leads_page(bot, &query).await;
        events::api_request_completed(&result);
        result
    };
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(SyncError::Interrupted),
        result = attempt => result.map_err(SyncError::from),
    }
}
