use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use super::{SyncError, run::SyncContext};
use crate::{
    chatof::{ChatofClient, LeadsPage, LeadsQuery},
    domain::{BotUid, DayRange, RunCounts},
    events,
};

/// Fetches one page under the retry policy, counting requests and retries into `counts`.
/// Each attempt waits for a slot under the process-wide cap on requests in flight. A shutdown
/// abandons the request (and any backoff) at once: nothing is half-written by a fetch.
pub(super) async fn fetch_page(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
    page: u32,
    counts: &mut RunCounts,
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
            let _slot = ctx.requests_in_flight.acquire().await;
            attempts.fetch_add(1, Relaxed);
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
    let attempts = attempts.load(Relaxed);
    counts.requests += attempts;
    counts.retries += attempts.saturating_sub(1);
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
