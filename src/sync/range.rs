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
    domain::{ApiBeliefs, DayRange, next_span_days, plausible},
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
    let mut span = Sizing::of(scope, &progress.beliefs).initial_span();
    let mut previous: Option<Boundary> = None;
    // No window completed yet in this run: its end is shared with the next whatever is known.
    let mut first = true;
    let mut gallop: i64 = 1;
    // A listing met in this run that did not end within a single day's record cap.
    let mut endless = false;
    let mut planned = PlannedEnds::default();
    while let Some(rest) = remaining {
        if let Some(planned_span) = planned.span_for(rest) {
            span = planned_span;
        }
        let (window, first_page, later) =
            size_window(scope, progress, rest, &mut span, gallop > 1).await?;
        planned.chosen(window, later);
        let plan = WindowPlan {
            window,
            covered_before,
            can_shrink: window.span_days() > Sizing::of(scope, &progress.beliefs).shrink_floor()
                && !endless,
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
            span = Sizing::of(scope, &progress.beliefs).span_after_shrink(window, read.seen);
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
                .observe_boundary(common, before.lists_last_day, read.lists_first_day);
            progress.report_belief_changes(scope.ctx.plan.lookback_days);
        }
        endless |= read.end == End::RecordCap;
        progress.high_water_mark = progress.high_water_mark.max(read.newest);
        progress.counts.windows += 1;
        events::window_completed(
            range,
            window,
            &progress.counts,
            // Settled by the window's read: every request of the run so far.
            progress.counts.requests,
            (Utc::now() - scope.now).to_std().unwrap_or_default(),
        );
        if !read.stopped_early && read.end.ran_out() {
            let covered = window.end_instant().min(scope.now) - window.first_instant();
            let days = covered.num_seconds() as f64 / 86_400.0;
            progress.beliefs.observe_density(read.seen, days.max(1.0));
        }
        let sizing = Sizing::of(scope, &progress.beliefs);
        (span, gallop) = sizing.span_after(rest, window, read.seen, read.end, gallop);
        remaining = sizing.rest_after(rest, window, first);
        first = false;
        previous = Some(Boundary {
            window,
            keys: read.keys,
            lists_last_day: read.lists_last_day,
        });
    }
    Ok(())
}

/// The ends of the next windows, nearest last, when sizing planned them from the newest end.
#[derive(Debug, Default)]
struct PlannedEnds(Vec<NaiveDate>);

impl PlannedEnds {
    /// The span of the window that starts `rest`, when one was planned: up to the nearest
    /// planned end after its start.
    fn span_for(&mut self, rest: DayRange) -> Option<i64> {
        while self.0.last().is_some_and(|&end| end <= rest.start) {
            self.0.pop();
        }
        self.0.last().map(|&end| (end - rest.start).num_days())
    }

    /// `window` was chosen: a planned end it reaches is done with (read up to, or found to
    /// hold too much), and the ends sizing planned after it (`later`, oldest first) come next.
    fn chosen(&mut self, window: DayRange, later: Vec<NaiveDate>) {
        if self.0.last().is_some_and(|&end| window.end >= end) {
            self.0.pop();
        }
        self.0.extend(later.into_iter().rev());
    }
}

/// What a window's size is chosen from: the settings, and what was learned of the API. Every
/// decision on spans is made here, from plain values, so each can be tested alone.
#[derive(Clone, Copy, Debug)]
struct Sizing<'a> {
    beliefs: &'a ApiBeliefs,
    /// The page size asked for.
    page_size: u32,
    max_window_leads: u64,
}

impl<'a> Sizing<'a> {
    fn of(scope: &RunScope<'_>, beliefs: &'a ApiBeliefs) -> Self {
        Self {
            beliefs,
            page_size: scope.ctx.page_size,
            max_window_leads: scope.ctx.max_window_leads,
        }
    }

    /// The leads a window aims at: `sync.max_window_leads`, or what fits one page on a server
    /// that ignores `page`.
    fn target_leads(self) -> u64 {
        if self.beliefs.ignores_page {
            let page = self.beliefs.served_page_size().unwrap_or(self.page_size);
            (u64::from(page) * 6 / 10).max(1)
        } else {
            self.max_window_leads
        }
    }

    /// The smallest window: two days (so its first day is read whether `end_date` is inclusive
    /// or not), or one once `end_date` is known to be inclusive.
    fn min_span(self) -> i64 {
        if self.beliefs.windows_may_abut() {
            0
        } else {
            1
        }
    }

    /// The smallest window a window that holds too much is cut down to: [`Self::min_span`], or
    /// a single day on a server that ignores `page` (the only way to read a day there; a
    /// one-day window that lists anything also shows that `end_date` is inclusive).
    fn shrink_floor(self) -> i64 {
        if self.beliefs.ignores_page {
            0
        } else {
            self.min_span()
        }
    }

    /// The first window's span: from the density learned before when a total will confirm it,
    /// or the whole range (without a total, sizing plans the windows from the newest end).
    fn initial_span(self) -> i64 {
        match self.beliefs.leads_per_day {
            Some(density) if density > 0.0 && self.beliefs.total_counts_the_window() => {
                let days = self.target_leads() as f64 / density;
                (days.floor() as i64).max(1)
            }
            _ => i64::MAX,
        }
    }

    /// Whether a page is as long as the server's pages get.
    fn is_full(self, page: &LeadsPage) -> bool {
        let size = page
            .page_size
            .or(self.beliefs.served_page_size())
            .unwrap_or(self.page_size);
        !page.records.is_empty() && page.records.len() >= size as usize
    }

    /// The span to read `window`'s start again with, after `window` (which listed `seen`
    /// records) held too much for one window, or for one page on a server that ignores `page`.
    fn span_after_shrink(self, window: DayRange, seen: u64) -> i64 {
        let half = window.span_days() / 2;
        if self.beliefs.ignores_page {
            half
        } else {
            next_span_days(
                window,
                seen,
                self.target_leads(),
                self.beliefs.windows_may_abut(),
            )
            .min(half)
        }
        .max(self.shrink_floor())
    }

    /// The span of the window after `window` (the head of `rest`, which listed `seen` records
    /// and ended by `end`), and the next gallop factor (`gallop` is this one's).
    fn span_after(
        self,
        rest: DayRange,
        window: DayRange,
        seen: u64,
        end: End,
        gallop: i64,
    ) -> (i64, i64) {
        match seen {
            // Nothing here: the history may start much later than the range. With a total to
            // size by, try half of what is left (a guess assuming even density would creep up
            // on a late start); without one, double, so an empty stretch costs a few requests
            // and a guess from a dense page is not repeated.
            0 if self.beliefs.total_counts_the_window() => {
                ((rest.span_days() - window.span_days()).max(2) / 2, 1)
            }
            // A listing cut off says nothing of density either: widen as after nothing, each
            // time twice as much, so an endless listing costs a few windows, not one a day.
            _ if seen == 0 || matches!(end, End::RecordCap | End::PastTotal) => {
                let gallop = gallop.saturating_mul(2);
                (window.span_days().max(1).saturating_mul(gallop), gallop)
            }
            seen => (
                next_span_days(
                    window,
                    seen,
                    self.target_leads(),
                    self.beliefs.windows_may_abut(),
                ),
                1,
            ),
        }
    }

    /// What is left of `rest` after `window`. The first window of a run shares its last day
    /// with the next (to keep checking whether `end_date` is inclusive); later ones abut once
    /// it is known to be. A single day cannot share its boundary with the next window: it would
    /// start again.
    fn rest_after(self, rest: DayRange, window: DayRange, first: bool) -> Option<DayRange> {
        if window.span_days() == 0 || (!first && self.beliefs.windows_may_abut()) {
            rest.rest_after_inclusive(window)
        } else {
            rest.rest_after(window)
        }
    }

    /// Planning from the newest end: on a full page that lists newest first, how many days at
    /// `window`'s end hold the target, when that is well short of the window (under 2/3).
    fn newest_days_holding(self, page: &LeadsPage, window: DayRange) -> Option<i64> {
        if self.beliefs.ignores_page || !self.is_full(page) || !lists_newest_first(page) {
            return None;
        }
        days_holding(page, self.target_leads()).filter(|&d| d < window.span_days() * 2 / 3)
    }

    /// The span to try instead of `window`'s (more than [`Self::min_span`] days), from its
    /// first page: scaled down from a `trusted` total over the target, or, without one, from
    /// how densely a full first page's leads lie from the oldest one listed. `None` when the
    /// page says the window fits, or gives nothing to go by.
    fn smaller_span(self, page: &LeadsPage, window: DayRange, trusted: bool) -> Option<i64> {
        let days = window.span_days();
        let target = self.target_leads();
        let smaller = if trusted {
            let total = plausible(page.total).filter(|&total| total > target)?;
            let scaled = days as u128 * u128::from(target) * 9 / (10 * u128::from(total));
            i64::try_from(scaled).unwrap_or(i64::MAX)
        } else if !self.is_full(page) {
            return None;
        } else if self.beliefs.ignores_page {
            days / 2
        } else {
            // Oldest first (or no order): from the oldest lead listed, as dense as the page. The
            // days before it hold nothing: the cut is worth a request when it leaves out a
            // third of the days that hold leads.
            let oldest = oldest_day(page).unwrap_or(window.start).max(window.start);
            let empty = (oldest - window.start).num_days();
            let holding = days_holding(page, target)?;
            if holding >= (days - empty) * 2 / 3 {
                return None;
            }
            empty + holding
        };
        Some(smaller.clamp(self.min_span(), days - 1))
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
    let mut window = rest.head(*span);
    let mut page = fetch(scope, window, 1).await?;
    let mut later = Vec::new();
    let mut probes = 0;
    loop {
        let sizing = Sizing::of(scope, &progress.beliefs);
        if window.span_days() <= sizing.min_span() {
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
        if !trusted && let Some(needed) = sizing.newest_days_holding(&page, window) {
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
        let Some(smaller_days) = sizing.smaller_span(&page, window, trusted) else {
            break;
        };
        let smaller = rest.head(smaller_days);
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

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;
    use crate::domain::{BotUid, EndDate, Lead, TotalMeaning};

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn range(start: &str, end: &str) -> DayRange {
        DayRange::new(day(start), day(end)).expect("end > start")
    }

    /// A page listing leads created at `times` (RFC 3339), in that order.
    fn page(times: &[&str], page_size: Option<u32>, total: Option<u64>) -> LeadsPage {
        let bot = BotUid::parse("b").expect("uid");
        LeadsPage {
            records: times
                .iter()
                .enumerate()
                .map(|(i, at)| {
                    Lead::from_raw(
                        &bot,
                        json!({"conversation_uid": format!("c{i}"), "created_at": at}),
                    )
                })
                .collect(),
            page_size,
            total,
            request_id: None,
            bytes: 0,
        }
    }

    /// `n` leads `step` apart from `first`, newest first when `descending`.
    fn spread(n: usize, first: &str, step: TimeDelta, descending: bool) -> Vec<String> {
        let first: DateTime<Utc> = first.parse().expect("timestamp");
        let mut times: Vec<String> = (0..n)
            .map(|i| (first + step * i as i32).to_rfc3339())
            .collect();
        if descending {
            times.reverse();
        }
        times
    }

    fn page_of(times: &[String], page_size: Option<u32>, total: Option<u64>) -> LeadsPage {
        let times: Vec<&str> = times.iter().map(String::as_str).collect();
        page(&times, page_size, total)
    }

    fn sizing(beliefs: &ApiBeliefs) -> Sizing<'_> {
        Sizing {
            beliefs,
            page_size: 100,
            max_window_leads: 1_000,
        }
    }

    fn inclusive() -> ApiBeliefs {
        ApiBeliefs {
            end_date: EndDate::Inclusive,
            ..ApiBeliefs::default()
        }
    }

    fn ignoring_page() -> ApiBeliefs {
        ApiBeliefs {
            ignores_page: true,
            ..ApiBeliefs::default()
        }
    }

    fn total(total: TotalMeaning) -> ApiBeliefs {
        ApiBeliefs {
            total,
            ..ApiBeliefs::default()
        }
    }

    #[test]
    fn the_order_of_a_page_is_what_most_of_its_pairs_say() {
        let down = [
            "2024-01-03T00:00:00Z",
            "2024-01-02T00:00:00Z",
            "2024-01-01T00:00:00Z",
        ];
        assert!(lists_newest_first(&page(&down, None, None)));
        let up = [
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
            "2024-01-03T00:00:00Z",
        ];
        assert!(!lists_newest_first(&page(&up, None, None)));
        // As many pairs each way, or only ties: not newest first.
        let even = [
            "2024-01-02T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "2024-01-02T00:00:00Z",
        ];
        assert!(!lists_newest_first(&page(&even, None, None)));
        let ties = ["2024-01-02T00:00:00Z"; 3];
        assert!(!lists_newest_first(&page(&ties, None, None)));
        // A tie counts neither way: one pair down and one tie is newest first.
        let down_then_tie = [
            "2024-01-03T00:00:00Z",
            "2024-01-02T00:00:00Z",
            "2024-01-02T00:00:00Z",
        ];
        assert!(lists_newest_first(&page(&down_then_tie, None, None)));
        // Two down, one up: newest first.
        let mostly = [
            "2024-01-04T00:00:00Z",
            "2024-01-03T00:00:00Z",
            "2024-01-02T00:00:00Z",
            "2024-01-05T00:00:00Z",
        ];
        assert!(lists_newest_first(&page(&mostly, None, None)));
        assert!(!lists_newest_first(&page(&[], None, None)));
    }

    #[test]
    fn planned_windows_end_where_sizing_planned_them_nearest_first() {
        let mut planned = PlannedEnds::default();
        assert_eq!(planned.span_for(range("2024-01-01", "2024-03-01")), None);
        // Sizing cut the first window to end on 01-10, and planned ends on 01-20 and 01-30.
        planned.chosen(
            range("2024-01-01", "2024-01-10"),
            vec![day("2024-01-20"), day("2024-01-30")],
        );
        assert_eq!(
            planned.span_for(range("2024-01-10", "2024-03-01")),
            Some(10)
        );
        assert_eq!(planned.span_for(range("2024-01-11", "2024-03-01")), Some(9));
        // A window short of a planned end leaves it for the next.
        planned.chosen(range("2024-01-11", "2024-01-15"), vec![]);
        assert_eq!(planned.span_for(range("2024-01-15", "2024-03-01")), Some(5));
        // One that reaches it is done with it, even when it is read again from its start
        // (it held too much): the next planned end is the next one.
        planned.chosen(range("2024-01-15", "2024-01-20"), vec![]);
        assert_eq!(
            planned.span_for(range("2024-01-15", "2024-03-01")),
            Some(15)
        );
        planned.chosen(range("2024-01-15", "2024-01-31"), vec![]);
        assert_eq!(planned.span_for(range("2024-01-15", "2024-03-01")), None);
    }

    #[test]
    fn the_oldest_day_is_the_utc_day_of_the_oldest_lead() {
        let times = [
            "2024-01-03T10:00:00Z",
            "2024-01-01T23:59:59Z",
            "2024-01-02T00:00:00Z",
        ];
        assert_eq!(
            oldest_day(&page(&times, None, None)),
            Some(day("2024-01-01"))
        );
        assert_eq!(oldest_day(&page(&[], None, None)), None);
    }

    #[test]
    fn the_days_holding_a_target_follow_the_density_of_the_page() {
        // 100 leads over 99 hours: about 24.2 a day; 90 % of 1,000 is 37.1 days of them.
        let times = spread(100, "2024-01-01T00:00:00Z", TimeDelta::hours(1), false);
        assert_eq!(days_holding(&page_of(&times, None, None), 1_000), Some(37));
        // Denser than the target: one day at least.
        let times = spread(100, "2024-01-01T00:00:00Z", TimeDelta::seconds(1), false);
        assert_eq!(days_holding(&page_of(&times, None, None), 1_000), Some(1));
        // 99 s is 87,272 a day: 9,000,000 of them is 103 days.
        assert_eq!(
            days_holding(&page_of(&times, None, None), 10_000_000),
            Some(103)
        );
        // A spread under a minute is taken as a minute: 100 leads a minute is 144,000 a day.
        let instant = ["2024-01-01T00:00:00Z"; 100];
        assert_eq!(
            days_holding(&page(&instant, None, None), 10_000_000),
            Some(62)
        );
        assert_eq!(days_holding(&page(&[], None, None), 1_000), None);
    }

    #[test]
    fn a_page_is_full_at_the_size_it_reports_else_the_size_served_else_the_size_asked() {
        let beliefs = ApiBeliefs::default();
        let ten = spread(10, "2024-01-01T00:00:00Z", TimeDelta::hours(1), false);
        let sizing = sizing(&beliefs);
        assert!(sizing.is_full(&page_of(&ten, Some(10), None)));
        assert!(!sizing.is_full(&page_of(&ten, Some(11), None)));
        assert!(!sizing.is_full(&page_of(&ten, None, None)), "100 asked");
        let hundred = spread(100, "2024-01-01T00:00:00Z", TimeDelta::hours(1), false);
        assert!(sizing.is_full(&page_of(&hundred, None, None)));
        let served = ApiBeliefs {
            served_page_size: Some(10),
            served_page_size_evidence: 3,
            ..ApiBeliefs::default()
        };
        assert!(self::sizing(&served).is_full(&page_of(&ten, None, None)));
        // An empty page is never full, even of a page size of 0.
        assert!(!sizing.is_full(&page(&[], Some(0), None)));
    }

    #[test]
    fn a_window_aims_at_max_window_leads_or_at_most_of_a_page_when_page_is_ignored() {
        assert_eq!(sizing(&ApiBeliefs::default()).target_leads(), 1_000);
        assert_eq!(sizing(&ignoring_page()).target_leads(), 60);
        let served = ApiBeliefs {
            served_page_size: Some(20),
            served_page_size_evidence: 3,
            ..ignoring_page()
        };
        assert_eq!(sizing(&served).target_leads(), 12);
        let tiny = ApiBeliefs {
            served_page_size: Some(1),
            served_page_size_evidence: 3,
            ..ignoring_page()
        };
        assert_eq!(sizing(&tiny).target_leads(), 1);
    }

    #[test]
    fn the_smallest_windows_depend_on_what_end_date_and_page_are_known_to_do() {
        assert_eq!(sizing(&ApiBeliefs::default()).min_span(), 1);
        assert_eq!(sizing(&inclusive()).min_span(), 0);
        assert_eq!(sizing(&ApiBeliefs::default()).shrink_floor(), 1);
        assert_eq!(sizing(&inclusive()).shrink_floor(), 0);
        assert_eq!(sizing(&ignoring_page()).shrink_floor(), 0);
        assert_eq!(sizing(&ignoring_page()).min_span(), 1);
    }

    #[test]
    fn the_first_window_is_sized_from_a_learned_density_only_with_a_total_to_confirm_it() {
        let dense = ApiBeliefs {
            leads_per_day: Some(300.0),
            ..ApiBeliefs::default()
        };
        assert_eq!(sizing(&dense).initial_span(), 3);
        let denser = ApiBeliefs {
            leads_per_day: Some(5_000.0),
            ..dense
        };
        assert_eq!(sizing(&denser).initial_span(), 1);
        for beliefs in [
            ApiBeliefs::default(),
            ApiBeliefs {
                leads_per_day: Some(0.0),
                ..dense
            },
            ApiBeliefs {
                total: TotalMeaning::WholeBot,
                ..dense
            },
        ] {
            assert_eq!(sizing(&beliefs).initial_span(), i64::MAX, "{beliefs:?}");
        }
    }

    #[test]
    fn a_window_that_held_too_much_is_read_again_at_most_half_as_long() {
        let window = range("2024-01-01", "2024-01-21");
        // 4,000 listed in 20 days: 1,000 is 5 days.
        let plain = ApiBeliefs::default();
        assert_eq!(sizing(&plain).span_after_shrink(window, 4_000), 5);
        // 1,500 listed: 13 days by density, but at most half.
        assert_eq!(sizing(&plain).span_after_shrink(window, 1_500), 10);
        // Never under the floor.
        let short = range("2024-01-01", "2024-01-03");
        assert_eq!(sizing(&plain).span_after_shrink(short, 1_000_000), 1);
        assert_eq!(sizing(&inclusive()).span_after_shrink(short, 1_000_000), 0);
        // Ignoring `page`: halved, whatever was listed.
        assert_eq!(
            sizing(&ignoring_page()).span_after_shrink(window, 4_000),
            10
        );
        assert_eq!(sizing(&ignoring_page()).span_after_shrink(short, 4_000), 1);
        let one = range("2024-01-01", "2024-01-02");
        assert_eq!(sizing(&ignoring_page()).span_after_shrink(one, 4_000), 0);
    }

    #[test]
    fn after_an_empty_window_the_next_takes_half_the_rest_with_a_total_and_doubles_without() {
        let rest = range("2024-01-01", "2024-04-10");
        let window = rest.head(10);
        let counted = ApiBeliefs::default();
        assert_eq!(
            sizing(&counted).span_after(rest, window, 0, End::Empty, 4),
            (45, 1)
        );
        // Almost nothing left: at least a day.
        let last = rest.head(99);
        assert_eq!(
            sizing(&counted).span_after(rest, last, 0, End::Empty, 1),
            (1, 1)
        );
        for meaning in [
            TotalMeaning::Absent,
            TotalMeaning::WholeBot,
            TotalMeaning::Untrusted,
        ] {
            let beliefs = total(meaning);
            assert_eq!(
                sizing(&beliefs).span_after(rest, window, 0, End::Empty, 1),
                (20, 2),
                "{meaning:?}"
            );
            assert_eq!(
                sizing(&beliefs).span_after(rest, window, 0, End::Empty, 4),
                (80, 8)
            );
            // A single day gallops from one day.
            let single = rest.head(0);
            assert_eq!(
                sizing(&beliefs).span_after(rest, single, 0, End::Empty, 2),
                (4, 4)
            );
        }
        let capped = sizing(&counted).span_after(rest, window, 0, End::Empty, i64::MAX);
        assert_eq!(capped, (45, 1));
        let endless =
            sizing(&total(TotalMeaning::Absent)).span_after(rest, window, 0, End::Empty, i64::MAX);
        assert_eq!(endless, (i64::MAX, i64::MAX));
    }

    #[test]
    fn after_a_cut_off_listing_the_windows_widen_and_after_leads_they_follow_the_density() {
        let rest = range("2024-01-01", "2024-04-10");
        let window = rest.head(10);
        let beliefs = ApiBeliefs::default();
        for end in [End::RecordCap, End::PastTotal] {
            assert_eq!(
                sizing(&beliefs).span_after(rest, window, 4_000, end, 1),
                (20, 2),
                "{end:?}"
            );
        }
        // 500 leads in 10 days: 1,000 is 20 days, and the gallop ends.
        for end in [
            End::Empty,
            End::Short,
            End::Repeats,
            End::PageLimit,
            End::Covered,
        ] {
            assert_eq!(
                sizing(&beliefs).span_after(rest, window, 500, end, 8),
                (20, 1),
                "{end:?}"
            );
        }
        // With an inclusive `end_date` the window covered 11 days: 1,000 is 22 days, span 21.
        assert_eq!(
            sizing(&inclusive()).span_after(rest, window, 500, End::Empty, 1),
            (21, 1)
        );
        // Ignoring `page`: aiming at 60.
        assert_eq!(
            sizing(&ignoring_page()).span_after(rest, window, 500, End::Empty, 1),
            (1, 1)
        );
    }

    #[test]
    fn windows_share_their_boundary_day_unless_end_date_is_known_inclusive_after_the_first() {
        let rest = range("2024-01-01", "2024-01-31");
        let window = rest.head(10);
        let shared = Some(range("2024-01-11", "2024-01-31"));
        let abutting = Some(range("2024-01-12", "2024-01-31"));
        let unknown = ApiBeliefs::default();
        assert_eq!(sizing(&unknown).rest_after(rest, window, true), shared);
        assert_eq!(sizing(&unknown).rest_after(rest, window, false), shared);
        assert_eq!(sizing(&inclusive()).rest_after(rest, window, true), shared);
        assert_eq!(
            sizing(&inclusive()).rest_after(rest, window, false),
            abutting
        );
        // A single day is never read again, first or not.
        let single = rest.head(0);
        let next = Some(range("2024-01-02", "2024-01-31"));
        assert_eq!(sizing(&unknown).rest_after(rest, single, true), next);
        assert_eq!(sizing(&inclusive()).rest_after(rest, single, true), next);
        // The last window leaves nothing.
        assert_eq!(sizing(&unknown).rest_after(rest, rest, false), None);
    }

    #[test]
    fn a_full_newest_first_page_plans_the_days_at_the_windows_end() {
        let window = range("2024-01-01", "2024-04-10");
        // 100 leads an hour apart, newest first: 37 days hold 1,000.
        let times = spread(100, "2024-04-05T00:00:00Z", TimeDelta::hours(1), true);
        let full = page_of(&times, Some(100), None);
        let beliefs = ApiBeliefs::default();
        assert_eq!(
            sizing(&beliefs).newest_days_holding(&full, window),
            Some(37)
        );
        // Not under 2/3 of the window (56 days: 37): nothing to plan.
        let short_window = range("2024-01-01", "2024-02-26");
        assert_eq!(
            sizing(&beliefs).newest_days_holding(&full, short_window),
            None
        );
        let just_over = range("2024-01-01", "2024-02-27");
        assert_eq!(
            sizing(&beliefs).newest_days_holding(&full, just_over),
            Some(37)
        );
        // Oldest first, not full, or `page` ignored: no plan.
        let rising = spread(100, "2024-04-05T00:00:00Z", TimeDelta::hours(1), false);
        assert_eq!(
            sizing(&beliefs).newest_days_holding(&page_of(&rising, Some(100), None), window),
            None
        );
        assert_eq!(
            sizing(&beliefs).newest_days_holding(&page_of(&times, Some(101), None), window),
            None
        );
        assert_eq!(
            sizing(&ignoring_page()).newest_days_holding(&full, window),
            None
        );
    }

    #[test]
    fn a_trusted_total_over_the_target_scales_the_window_down() {
        let window = range("2024-01-01", "2024-04-10");
        let beliefs = ApiBeliefs::default();
        let empty = |total| page(&[], Some(100), Some(total));
        // 100 days holding 4,000: 90 % of a quarter.
        assert_eq!(
            sizing(&beliefs).smaller_span(&empty(4_000), window, true),
            Some(22)
        );
        // At or under the target: the window fits.
        assert_eq!(
            sizing(&beliefs).smaller_span(&empty(1_000), window, true),
            None
        );
        assert_eq!(
            sizing(&beliefs).smaller_span(&empty(1_001), window, true),
            Some(89)
        );
        // An absurd total is no total.
        assert_eq!(
            sizing(&beliefs).smaller_span(&empty(u64::MAX), window, true),
            None
        );
        assert_eq!(
            sizing(&beliefs).smaller_span(&page(&[], None, None), window, true),
            None
        );
        // Never under the smallest window.
        assert_eq!(
            sizing(&beliefs).smaller_span(&empty(100_000_000), window, true),
            Some(1)
        );
        assert_eq!(
            sizing(&inclusive()).smaller_span(&empty(100_000_000), window, true),
            Some(0)
        );
    }

    #[test]
    fn without_a_total_a_full_page_sizes_the_window_from_its_oldest_lead() {
        let window = range("2024-01-01", "2024-04-10");
        let beliefs = ApiBeliefs::default();
        // 100 leads an hour apart from 2024-01-11: 10 days in, then 37 days of them.
        let times = spread(100, "2024-01-11T00:00:00Z", TimeDelta::hours(1), false);
        let full = page_of(&times, Some(100), None);
        assert_eq!(
            sizing(&beliefs).smaller_span(&full, window, false),
            Some(47)
        );
        // A history that starts late in the window: cut after its first 37 days, as long as
        // that leaves out a third of the days after its start. From 2024-02-14 on, 37 days
        // are 2/3 of the 56 left: the window fits.
        let late = spread(100, "2024-02-14T00:00:00Z", TimeDelta::hours(1), false);
        assert_eq!(
            sizing(&beliefs).smaller_span(&page_of(&late, Some(100), None), window, false),
            None
        );
        let earlier = spread(100, "2024-02-13T00:00:00Z", TimeDelta::hours(1), false);
        assert_eq!(
            sizing(&beliefs).smaller_span(&page_of(&earlier, Some(100), None), window, false),
            Some(80)
        );
        // A lead before the window counts from the window's start.
        let early = spread(100, "2023-12-25T00:00:00Z", TimeDelta::hours(1), false);
        assert_eq!(
            sizing(&beliefs).smaller_span(&page_of(&early, Some(100), None), window, false),
            Some(37)
        );
        // A page that is not full says the window fits.
        assert_eq!(
            sizing(&beliefs).smaller_span(&page_of(&times, Some(101), None), window, false),
            None
        );
        // Ignoring `page`: halved.
        assert_eq!(
            sizing(&ignoring_page()).smaller_span(&full, window, false),
            Some(50)
        );
        // The total is not looked at when it is not trusted.
        assert_eq!(
            sizing(&beliefs).smaller_span(&page_of(&times, Some(100), Some(5)), window, false),
            Some(47)
        );
    }
}
