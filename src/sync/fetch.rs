use std::{cell::Cell, time::Instant};

use crate::{
    chatof::{ApiError, ChatofClient, LeadsPage, LeadsQuery},
    domain::{BotUid, DayRange, RunCounts},
    events,
    retry::RetryPolicy,
};

/// Fetches one page under the retry policy, counting requests and retries into `counts`.
pub(super) async fn fetch_page(
    client: &ChatofClient,
    retry: &RetryPolicy,
    bot: &BotUid,
    range: DayRange,
    page: u32,
    page_size: u32,
    counts: &mut RunCounts,
) -> Result<LeadsPage, ApiError> {
    let query = LeadsQuery {
        range: Some(range),
        page,
        page_size,
    };
    let attempts = Cell::new(0_u64);
    let started = Instant::now();
    let result = retry
        .run(
            || {
                attempts.set(attempts.get() + 1);
                client.fetch_leads_page(bot, &query)
            },
            |err, delay| events::request_retried(attempts.get(), err, delay),
        )
        .await;
    counts.requests += attempts.get();
    counts.retries += attempts.get().saturating_sub(1);
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
