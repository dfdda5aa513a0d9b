use std::{
    collections::VecDeque,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

use super::{
    SyncError,
    context::{RunRequests, SyncContext},
};
use crate::{
    chatof::{ApiError, ChatofClient, LeadsPage, LeadsQuery},
    domain::{BotUid, DayRange},
    events,
};

/// Fetches one page under the retry policy, counting each attempt in `requests`. Each attempt
/// waits for a slot of the run's share and one of the process-wide cap on requests in flight.
/// A shutdown abandons the request (and any backoff) at once: nothing is half-written by a fetch.
/// A page whose answer is over `api.max_body_bytes` is read as smaller pages instead.
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
    match fetch_query(ctx, requests, client, bot, query).await {
        Err(SyncError::Api(too_large @ ApiError::TooLarge { .. })) => {
            fetch_in_parts(ctx, requests, client, bot, query, too_large).await
        }
        result => result,
    }
}

/// Page `query.page` as the smaller pages that hold the same records (page 3 of 100 is pages
/// 5 and 6 of 50), each split again while its answer is too large. Gives up with `too_large`
/// when a page of one lead is still too large, or when the server does not honour the smaller
/// `page_size` (its pages would not line up).
async fn fetch_in_parts(
    ctx: &SyncContext,
    requests: &RunRequests,
    client: &ChatofClient,
    bot: &BotUid,
    query: LeadsQuery,
    too_large: ApiError,
) -> Result<LeadsPage, SyncError> {
    let mut parts: VecDeque<LeadsQuery> = VecDeque::new();
    let mut pending = Some(query);
    let mut merged = LeadsPage {
        records: Vec::new(),
        page_size: Some(query.page_size),
        total: None,
        request_id: None,
        bytes: 0,
    };
    loop {
        if let Some(whole) = pending.take() {
            let Some(smaller) = split(whole) else {
                return Err(too_large.into());
            };
            events::page_split(whole.page, whole.page_size, smaller.len());
            for part in smaller.into_iter().rev() {
                parts.push_front(part);
            }
        }
        let Some(part) = parts.pop_front() else {
            return Ok(merged);
        };
        match fetch_query(ctx, requests, client, bot, part).await {
            Ok(answer) => {
                if answer
                    .page_size
                    .is_some_and(|served| served != part.page_size)
                {
                    return Err(too_large.into());
                }
                // A short page that says its size ends the listing: the rest would be empty.
                let ends =
                    answer.page_size.is_some() && answer.records.len() < part.page_size as usize;
                merged.page_size = merged
                    .page_size
                    .and(answer.page_size)
                    .map(|_| query.page_size);
                merged.total = answer.total;
                merged.request_id = merged.request_id.or(answer.request_id);
                merged.bytes += answer.bytes;
                merged.records.extend(answer.records);
                if ends {
                    return Ok(merged);
                }
            }
            Err(SyncError::Api(ApiError::TooLarge { .. })) => pending = Some(part),
            Err(err) => return Err(err),
        }
    }
}

/// The pages of the largest smaller size that divides `query`'s and that hold its records,
/// in order; `None` for a page of one lead (or page numbers past `u32`).
fn split(query: LeadsQuery) -> Option<Vec<LeadsQuery>> {
    let size = query.page_size;
    let part = (1..size).rev().find(|part| size % part == 0)?;
    let per_page = size / part;
    let first = (query.page - 1).checked_mul(per_page)?.checked_add(1)?;
    let last = first.checked_add(per_page - 1)?;
    Some(
        (first..=last)
            .map(|page| LeadsQuery {
                page,
                page_size: part,
                ..query
            })
            .collect(),
    )
}

/// One query under the retry policy (see [`fetch_page`]).
async fn fetch_query(
    ctx: &SyncContext,
    requests: &RunRequests,
    client: &ChatofClient,
    bot: &BotUid,
    query: LeadsQuery,
) -> Result<LeadsPage, SyncError> {
    let range = query.range.expect("a sync asks for a day range");
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
            query.page,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(page: u32, page_size: u32) -> LeadsQuery {
        LeadsQuery {
            range: None,
            page,
            page_size,
        }
    }

    fn pages(parts: Option<Vec<LeadsQuery>>) -> Option<Vec<(u32, u32)>> {
        parts.map(|parts| parts.iter().map(|q| (q.page, q.page_size)).collect())
    }

    #[test]
    fn a_page_splits_into_the_smaller_pages_that_hold_the_same_records() {
        assert_eq!(pages(split(query(3, 100))), Some(vec![(5, 50), (6, 50)]));
        assert_eq!(pages(split(query(1, 50))), Some(vec![(1, 25), (2, 25)]));
        assert_eq!(
            pages(split(query(2, 25))),
            Some((6..=10).map(|page| (page, 5)).collect())
        );
        // A prime size can only become pages of one.
        assert_eq!(
            pages(split(query(2, 7))),
            Some((8..=14).map(|page| (page, 1)).collect())
        );
        assert_eq!(pages(split(query(4, 1))), None, "one lead cannot be split");
        assert_eq!(pages(split(query(u32::MAX, 2))), None, "past u32");
    }
}
