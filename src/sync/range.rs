//! How a run cuts its range of days into windows and reads them, oldest first, so each
//! completed window can move the high-water mark.
//!
//! A window aims at `sync.max_window_leads` leads: sized from `total` while `total` counts the
//! listing, else from the density actually read (and, before anything was read, from the
//! spread of a first page). An empty stretch of history costs one request when the total can
//! be trusted, and a few (windows that double) when it cannot; never a walk of small windows.
//! Adjacent windows share their boundary day unless `end_date` is known to be inclusive; the
//! first boundary of every run is shared anyway, to keep checking that belief.

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::{
    SyncError,
    context::{Progress, RunScope},
    fetch::fetch_page,
    pagination::{End, Keys, page_keys},
    window::{WindowPlan, WindowReader},
};
use crate::{
    chatof::LeadsPage,
    domain::{DayRange, next_span_days, plausible},
    events,
    store::PgConnection,
};

/// Page-1 requests spent on sizing one window, at most.
const MAX_SIZING_PROBES: u32 = 8;

/// A window just read, for the boundary check against the next one.
struct Boundary {
    window: DayRange,
    keys: Keys,
    lists_last_day: bool,
}

/// Reads `range` window by window. `covered_before`: see [`WindowPlan::covered_before`].
pub(super) async fn read_range(
    scope: &RunScope<'_>,
    conn: &mut PgConnection,
    progress: &mut Progress,
    range: DayRange,
    covered_before: Option<DateTime<Utc>>,
) -> Result<(), SyncError> {
    let mut remaining = Some(range);
    let mut span = initial_span(scope, progress);
    let mut previous: Option<Boundary> = None;
    let mut boundaries = 0;
    let mut gallop: i64 = 1;
    // A listing met in this run that did not end within a single day's record cap.
    let mut endless = false;
    // Ends of the next windows, nearest last, when sizing planned them from the newest end.
    let mut planned: Vec<NaiveDate> = Vec::new();
    while let Some(rest) = remaining {
        while planned.last().is_some_and(|&end| end <= rest.start) {
            planned.pop();
        }
        if let Some(&end) = planned.last() {
            span = (end - rest.start).num_days();
        }
        let (window, first_page, later) =
            size_window(scope, progress, rest, &mut span, gallop > 1).await?;
        if window.end >= planned.last().copied().unwrap_or(NaiveDate::MAX) {
            planned.pop();
        }
        planned.extend(later.into_iter().rev());
        let plan = WindowPlan {
            window,
            covered_before,
            can_shrink: window.span_days() > shrink_floor(progress) && !endless,
            now: scope.now,
            mark_before: progress.high_water_mark,
        };
        let read = WindowReader::new(scope, plan, &mut progress.beliefs)
            .read(conn, first_page, &mut progress.counts)
            .await?;
        progress.largest_total = progress.largest_total.max(read.total);
        let one_day_probe = window.span_days() == 0 && !progress.beliefs.windows_may_abut();
        if one_day_probe {
            progress.beliefs.observe_one_day_window(read.seen);
        }
        progress.report_belief_changes(scope.ctx.plan.lookback_days);
        if one_day_probe && read.seen == 0 {
            // Cut down to one day on a server that ignores `page`, and that day listed nothing:
            // either `end_date` is exclusive (and the day holds more than a page, which such a
            // server cannot list) or the leads are all on the next day. Reported, not assumed.
            progress.counts.incomplete_windows += 1;
            events::window_incomplete(window, 0, read.total.unwrap_or(0));
        }
        if read.shrink {
            // Too much for one window (or for one page, on a server that ignores `page`):
            // the same start again, smaller. Nothing moved.
            span = if progress.beliefs.ignores_page {
                window.span_days() / 2
            } else {
                next_span_days(
                    window,
                    read.seen,
                    target_leads(scope, progress),
                    progress.beliefs.windows_may_abut(),
                )
                .min(window.span_days() / 2)
            }
            .max(shrink_floor(progress));
            // Something to read here after all: no longer galloping past nothing.
            gallop = 1;
            continue;
        }
        if let Some(before) = previous.take()
            && before.window.end == window.start
        {
            let common = read.keys.intersection(&before.keys).count() as u64;
            progress
                .beliefs
                .observe_boundary(common, before.lists_last_day && read.lists_first_day);
            progress.report_belief_changes(scope.ctx.plan.lookback_days);
        }
        endless |= read.end == End::RecordCap;
        progress.high_water_mark = progress.high_water_mark.max(read.newest);
        progress.counts.windows += 1;
        if !read.stopped_early && read.end.ran_out() {
            let days = (window.end_instant().min(scope.now) - window.first_instant()).num_days();
            progress.beliefs.observe_density(read.seen, days.max(1));
        }
        span = match read.seen {
            // Nothing here: the history may start much later than the range. With a total to
            // size by, try half of what is left (a guess assuming even density would creep up
            // on a late start); without one, double, so an empty stretch costs a few requests
            // and a guess from a dense page is not repeated.
            0 if progress.beliefs.total_counts_the_window() => {
                gallop = 1;
                (rest.span_days() - window.span_days()).max(2) / 2
            }
            // A listing cut off says nothing of density either: widen as after nothing, each
            // time twice as much, so an endless listing costs a few windows, not one a day.
            _ if read.seen == 0 || matches!(read.end, End::RecordCap | End::PastTotal) => {
                gallop = gallop.saturating_mul(2);
                window.span_days().max(1).saturating_mul(gallop)
            }
            seen => {
                gallop = 1;
                next_span_days(
                    window,
                    seen,
                    target_leads(scope, progress),
                    progress.beliefs.windows_may_abut(),
                )
            }
        };
        // A single day cannot share its boundary with the next window: it would start again.
        remaining =
            if window.span_days() == 0 || (boundaries > 0 && progress.beliefs.windows_may_abut()) {
                rest.rest_after_inclusive(window)
            } else {
                rest.rest_after(window)
            };
        boundaries += 1;
        previous = Some(Boundary {
            window,
            keys: read.keys,
            lists_last_day: read.lists_last_day,
        });
    }
    Ok(())
}

/// The leads a window aims at: `sync.max_window_leads`, or what fits one page on a server that
/// ignores `page`.
fn target_leads(scope: &RunScope<'_>, progress: &Progress) -> u64 {
    if progress.beliefs.ignores_page {
        let page = progress
            .beliefs
            .served_page_size()
            .unwrap_or(scope.ctx.page_size);
        (u64::from(page) * 6 / 10).max(1)
    } else {
        scope.ctx.max_window_leads
    }
}

/// The smallest window: two days (so its first day is read whether `end_date` is inclusive or
/// not), or one once `end_date` is known to be inclusive.
fn min_span(progress: &Progress) -> i64 {
    if progress.beliefs.windows_may_abut() {
        0
    } else {
        1
    }
}

/// The smallest window a window that holds too much is cut down to: [`min_span`], or a single
/// day on a server that ignores `page` (the only way to read a day there; a one-day window
/// that lists anything also shows that `end_date` is inclusive).
fn shrink_floor(progress: &Progress) -> i64 {
    if progress.beliefs.ignores_page {
        0
    } else {
        min_span(progress)
    }
}

/// The first window's span: from the density learned before when a total will confirm it, or
/// the whole range (without a total, sizing plans the windows from the newest end).
fn initial_span(scope: &RunScope<'_>, progress: &Progress) -> i64 {
    match progress.beliefs.leads_per_day {
        Some(density) if density > 0.0 && progress.beliefs.total_counts_the_window() => {
            let days = target_leads(scope, progress) as f64 / density;
            (days.floor() as i64).max(1)
        }
        _ => i64::MAX,
    }
}

/// Chooses the window that starts `rest` and fetches its first page: the span asked for,
/// cut down while page 1 says it holds too much (by a trusted total, or by how densely the
/// leads of a full first page lie). Also returns the ends of the windows after it, oldest
/// first, when it planned them.
///
/// Without a total, a full first page says how dense the leads are at one end of the window:
/// the oldest end when the page lists oldest first (the window is cut to hold the target from
/// there), the newest end when it lists newest first. Then the window's history may begin
/// much later than its first day, so the windows are planned from the newest end back: each
/// step asks for page 1 of what is older than the windows planned so far, until that fits one
/// page. One request per window, and an empty stretch of history costs nothing more.
async fn size_window(
    scope: &RunScope<'_>,
    progress: &mut Progress,
    rest: DayRange,
    span: &mut i64,
    galloping: bool,
) -> Result<(DayRange, LeadsPage, Vec<NaiveDate>), SyncError> {
    let target = target_leads(scope, progress);
    let mut window = rest.head(*span);
    let mut page = fetch(scope, window, 1).await?;
    let mut later = Vec::new();
    let mut probes = 0;
    let smallest = min_span(progress);
    loop {
        let days = window.span_days();
        if days <= smallest {
            break;
        }
        let trusted = progress.beliefs.total_counts_the_window() && plausible(page.total).is_some();
        // Galloping past windows that gave nothing to go by (empty, or cut off), only a page
        // that lists newest first is taken for a density (planning from the newest end is
        // safe however late the history starts); a window too big for the record cap is cut
        // down after it.
        if !trusted && galloping && !lists_newest_first(&page) {
            break;
        }
        if !trusted
            && !progress.beliefs.ignores_page
            && is_full(scope, progress, &page)
            && lists_newest_first(&page)
            && let Some(needed) = days_holding(&page, target).filter(|&d| d < days * 2 / 3)
        {
            // Each step plans one window: bounded by the days of the range.
            later.push(window.end);
            window = DayRange::new(window.start, window.end - Days::new(needed as u64))
                .unwrap_or(window.head(1));
            page = fetch(scope, window, 1).await?;
            *span = window.span_days();
            continue;
        }
        probes += 1;
        if probes > MAX_SIZING_PROBES {
            break;
        }
        let smaller_days = if trusted {
            match plausible(page.total) {
                Some(total) if total > target => {
                    let scaled = days as u128 * u128::from(target) * 9 / (10 * u128::from(total));
                    i64::try_from(scaled).unwrap_or(i64::MAX)
                }
                _ => break,
            }
        } else if is_full(scope, progress, &page) {
            if progress.beliefs.ignores_page {
                days / 2
            } else {
                // Oldest first (or no order): from the oldest lead listed, as dense as the page.
                let oldest = oldest_day(&page).unwrap_or(window.start).max(window.start);
                match days_holding(&page, target) {
                    Some(needed) => {
                        let estimate = (oldest - window.start).num_days() + needed;
                        if estimate >= days * 2 / 3 {
                            break;
                        }
                        estimate
                    }
                    None => break,
                }
            }
        } else {
            break;
        };
        let smaller = rest.head(smaller_days.clamp(smallest, days - 1));
        let smaller_page = fetch(scope, smaller, 1).await?;
        if trusted
            && plausible(smaller_page.total).is_some()
            && plausible(smaller_page.total) == plausible(page.total)
            && page_keys(&smaller_page) != page_keys(&page)
        {
            // A smaller window, other leads listed first, the same total: it counts more than
            // the window's listing.
            progress.beliefs.observe_total_ignores_dates();
            progress.report_belief_changes(scope.ctx.plan.lookback_days);
        }
        window = smaller;
        page = smaller_page;
        *span = window.span_days();
    }
    later.reverse();
    Ok((window, page, later))
}

/// Whether a page lists its leads newest first (more strictly descending pairs than rising).
fn lists_newest_first(page: &LeadsPage) -> bool {
    let created: Vec<_> = page
        .records
        .iter()
        .flatten()
        .map(|lead| lead.created_at)
        .collect();
    let (mut down, mut up) = (0, 0);
    for pair in created.windows(2) {
        if pair[0] > pair[1] {
            down += 1;
        } else if pair[0] < pair[1] {
            up += 1;
        }
    }
    down > up
}

/// The UTC day of the oldest lead on the page.
fn oldest_day(page: &LeadsPage) -> Option<NaiveDate> {
    page.records
        .iter()
        .flatten()
        .map(|lead| lead.created_at.date_naive())
        .min()
}

/// Whether a page is as long as the server's pages get.
fn is_full(scope: &RunScope<'_>, progress: &Progress, page: &LeadsPage) -> bool {
    let size = page
        .page_size
        .or(progress.beliefs.served_page_size())
        .unwrap_or(scope.ctx.page_size);
    !page.records.is_empty() && page.records.len() >= size as usize
}

/// How many days would hold `target` leads at the density of this full page's leads.
fn days_holding(page: &LeadsPage, target: u64) -> Option<i64> {
    let created = || page.records.iter().flatten().map(|lead| lead.created_at);
    let (oldest, newest) = (created().min()?, created().max()?);
    let spread_secs = (newest - oldest).num_seconds().max(60) as f64;
    let per_day = page.records.len() as f64 * 86_400.0 / spread_secs;
    Some(((target as f64 * 0.9 / per_day).floor() as i64).max(1))
}

async fn fetch(scope: &RunScope<'_>, window: DayRange, page: u32) -> Result<LeadsPage, SyncError> {
    fetch_page(
        scope.ctx,
        &scope.requests,
        scope.client,
        scope.bot,
        window,
        page,
    )
    .await
}
