//! Which days a run asks for, and how a long range is cut into windows.
//!
//! The API filters by whole days, in a time zone it does not document, with an `end_date` that
//! may or may not be inclusive. So every range here is sent as `start_date..=end_date` with
//! `end > start`, consecutive windows share their boundary day, and the last window ends the day
//! after today (UTC): whichever way the unknowns fall, every day is covered at least once, and
//! the upsert absorbs what is read twice.

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::ApiBeliefs;

/// A range of API days, sent as `start_date` / `end_date`. `end > start`, so the range covers
/// its first day whether `end_date` is inclusive or not; only [`DayRange::head`] makes a single
/// day (`end == start`), for when `end_date` is known to be inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl DayRange {
    /// `None` unless `end > start`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        (end > start).then_some(Self { start, end })
    }

    pub fn span_days(self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// The window starting where this range starts, `span_days` long, not past this range's end.
    /// A span of 0 is the start day alone (`start_date = end_date`), which lists that day only
    /// when `end_date` is known to be inclusive: ask for it only then.
    pub fn head(self, span_days: i64) -> Self {
        let end = self
            .start
            .checked_add_days(Days::new(span_days.max(0) as u64))
            .map_or(self.end, |end| end.min(self.end));
        Self {
            start: self.start,
            end,
        }
    }

    /// What is left of this range after `window`, starting on `window`'s last day (shared, so an
    /// exclusive `end_date` cannot skip it). `None` when `window` reaches the end.
    pub fn rest_after(self, window: DayRange) -> Option<Self> {
        Self::new(window.end, self.end)
    }

    /// What is left after `window` when `end_date` is known to be inclusive: from the day after
    /// `window`'s last, so no day is read twice. A rest of one day is read as two (a range
    /// always has `end > start`); the extra day lies past the range, where nothing is lost.
    pub fn rest_after_inclusive(self, window: DayRange) -> Option<Self> {
        let next = window.end + Days::new(1);
        (next <= self.end).then(|| Self {
            start: next,
            end: self.end.max(next + Days::new(1)),
        })
    }

    /// Midnight UTC at the start of the range's first day.
    pub fn first_instant(self) -> DateTime<Utc> {
        midnight(self.start)
    }

    /// Midnight UTC after the range's last day (taking `end_date` as inclusive, the widest).
    pub fn end_instant(self) -> DateTime<Utc> {
        midnight(self.end + Days::new(1))
    }
}

/// Midnight UTC at the start of `day`.
pub fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// What the database remembers about a bot between runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The latest `created_at` among the bot's committed leads, as of the last completed window.
    /// Never ahead of committed data.
    pub high_water_mark: Option<DateTime<Utc>>,
    /// The first day the next run must read at the latest: the last day of the last completed
    /// window. It lets a first backfill over empty history resume where it stopped.
    pub resume_from: Option<NaiveDate>,
}

#[derive(Clone, Copy, Debug)]
pub struct PlanSettings {
    /// Where a bot's first sync starts.
    pub backfill_from: NaiveDate,
    /// How many days behind the high-water mark each run re-reads (late arrivals, the unknown
    /// time zone of the API's day filter).
    pub lookback_days: u32,
}

/// What one scheduled run reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunPlan {
    pub range: DayRange,
    /// Leads created before this day (UTC) were covered by earlier runs as far as the
    /// configured lookback reaches: a listing known to come newest first may stop below it.
    /// `None` for a first run, which reads everything.
    pub covered_before: Option<NaiveDate>,
}

/// The days one run reads: from `date(HWM) - lookback` (or the lookback before where the last
/// run stopped, or `backfill_from` for a first run) to the day after today, in UTC. The lookback
/// is the configured one, or more when the API was seen to list leads created later than their
/// range (see [`ApiBeliefs::lookback_days`]); the end moves a day later when it was seen to list
/// leads early (an eastern zone, which an exclusive `end_date` would otherwise cut). A
/// high-water mark in the future (clock skew on the API's side) is treated as now, so it cannot
/// push the start past today.
pub fn plan_run(
    state: SyncState,
    settings: PlanSettings,
    beliefs: &ApiBeliefs,
    now: DateTime<Utc>,
) -> RunPlan {
    let today = now.date_naive();
    let end = today + Days::new(u64::from(beliefs.early_margin_days()));
    let start_with = |lookback_days: u32| {
        let lookback = Days::new(u64::from(lookback_days));
        let from_hwm = state
            .high_water_mark
            .map(|hwm| hwm.min(now).date_naive() - lookback);
        let from_resume = state
            .resume_from
            .map(|day| day.min(today + Days::new(1)) - lookback);
        match (from_hwm, from_resume) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (Some(day), None) | (None, Some(day)) => Some(day),
            (None, None) => None,
        }
    };
    let start =
        start_with(beliefs.lookback_days(settings.lookback_days)).unwrap_or(settings.backfill_from);
    RunPlan {
        range: DayRange::new(start.min(today), end).expect("start <= today < end"),
        covered_before: start_with(settings.lookback_days).map(|day| day.min(today)),
    }
}

/// How many days the next window should span, given what the last one held: aim at
/// `max_leads` leads assuming the density stays the same; an empty window means "take the rest".
/// With an inclusive `end_date` a window of span `n` covers `n + 1` days, so a window of one
/// day (span 0) is the smallest.
pub fn next_span_days(
    previous: DayRange,
    previous_total: u64,
    max_leads: u64,
    end_inclusive: bool,
) -> i64 {
    if previous_total == 0 {
        return i64::MAX;
    }
    let extra = u64::from(end_inclusive);
    let covered = (previous.span_days().max(0) as u64 + extra).max(1);
    let days = (covered.saturating_mul(max_leads) / previous_total).max(1);
    i64::try_from(days - extra).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("date")
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("timestamp")
    }

    /// What a run learns of the plain API: an inclusive `end_date`, no lag.
    fn learned() -> ApiBeliefs {
        ApiBeliefs {
            end_date: super::super::EndDate::Inclusive,
            ..ApiBeliefs::default()
        }
    }

    fn settings() -> PlanSettings {
        PlanSettings {
            backfill_from: day("2023-01-01"),
            lookback_days: 2,
        }
    }

    #[test]
    fn a_first_run_reads_from_backfill_from_to_the_day_after_today() {
        let plan = plan_run(
            SyncState::default(),
            settings(),
            &learned(),
            at("2024-03-10T12:00:00Z"),
        )
        .range;
        assert_eq!(
            plan,
            DayRange {
                start: day("2023-01-01"),
                end: day("2024-03-11")
            }
        );
    }

    #[test]
    fn a_later_run_reads_from_the_lookback_behind_the_high_water_mark() {
        let state = SyncState {
            high_water_mark: Some(at("2024-03-09T01:00:00Z")),
            resume_from: Some(day("2024-03-11")),
        };
        let plan = plan_run(state, settings(), &learned(), at("2024-03-10T12:00:00Z")).range;
        assert_eq!(
            plan,
            DayRange {
                start: day("2024-03-07"),
                end: day("2024-03-11")
            }
        );
    }

    #[test]
    fn an_interrupted_backfill_over_empty_history_resumes_where_it_stopped_minus_the_lookback() {
        let state = SyncState {
            high_water_mark: None,
            resume_from: Some(day("2023-06-01")),
        };
        let plan = plan_run(state, settings(), &learned(), at("2024-03-10T12:00:00Z")).range;
        assert_eq!(plan.start, day("2023-05-30"));
    }

    #[test]
    fn a_high_water_mark_in_the_future_is_treated_as_now() {
        let state = SyncState {
            high_water_mark: Some(at("2030-01-01T00:00:00Z")),
            resume_from: Some(day("2030-01-02")),
        };
        let plan = plan_run(state, settings(), &learned(), at("2024-03-10T12:00:00Z")).range;
        assert_eq!(
            plan,
            DayRange {
                start: day("2024-03-08"),
                end: day("2024-03-11")
            }
        );
    }

    #[test]
    fn a_backfill_from_in_the_future_still_reads_today() {
        let settings = PlanSettings {
            backfill_from: day("2031-01-01"),
            ..settings()
        };
        let plan = plan_run(
            SyncState::default(),
            settings,
            &learned(),
            at("2024-03-10T12:00:00Z"),
        )
        .range;
        assert_eq!(
            plan,
            DayRange {
                start: day("2024-03-10"),
                end: day("2024-03-11")
            }
        );
    }

    #[test]
    fn an_end_date_not_known_inclusive_reads_a_day_more() {
        let state = SyncState {
            high_water_mark: Some(at("2024-03-09T01:00:00Z")),
            resume_from: Some(day("2024-03-11")),
        };
        let now = at("2024-03-10T12:00:00Z");
        let plan = plan_run(state, settings(), &ApiBeliefs::default(), now);
        assert_eq!(plan.range.start, day("2024-03-06"));
        assert_eq!(plan.covered_before, Some(day("2024-03-07")));
    }

    #[test]
    fn a_learned_lag_widens_the_start_but_not_what_earlier_runs_covered() {
        let state = SyncState {
            high_water_mark: Some(at("2024-03-09T01:00:00Z")),
            resume_from: Some(day("2024-03-11")),
        };
        let mut beliefs = learned();
        let now = at("2024-03-10T12:00:00Z");
        let plan = plan_run(state, settings(), &beliefs, now);
        assert_eq!(plan.covered_before, Some(day("2024-03-07")));
        assert_eq!(plan.range.start, day("2024-03-07"));
        // Leads listed up to 100 hours after their range: 5 days more than the 2 configured.
        beliefs.observe_overflow(0, 100 * 3600);
        let plan = plan_run(state, settings(), &beliefs, now);
        assert_eq!(plan.range.start, day("2024-03-02"));
        assert_eq!(plan.covered_before, Some(day("2024-03-07")));
        assert_eq!(plan.range.end, day("2024-03-11"));
        // Leads listed 14 hours early: a zone east of UTC; the end moves a day on.
        beliefs.observe_overflow(14 * 3600, 0);
        assert_eq!(
            plan_run(state, settings(), &beliefs, now).range.end,
            day("2024-03-12")
        );
        let first = plan_run(SyncState::default(), settings(), &beliefs, now);
        assert_eq!(first.covered_before, None);
    }

    #[test]
    fn with_an_inclusive_end_date_windows_abut_instead_of_sharing_a_day() {
        let range = DayRange::new(day("2024-01-01"), day("2024-01-10")).expect("range");
        let first = range.head(4);
        let rest = range.rest_after_inclusive(first).expect("more");
        assert_eq!(rest.start, day("2024-01-06"));
        assert_eq!(rest.end, day("2024-01-10"));
        let last = DayRange::new(day("2024-01-05"), day("2024-01-09")).expect("range");
        let tail = range
            .rest_after_inclusive(last)
            .expect("the range's last day");
        assert_eq!(
            (tail.start, tail.end),
            (day("2024-01-10"), day("2024-01-11"))
        );
        assert_eq!(range.rest_after_inclusive(range), None);
        assert_eq!(first.first_instant(), at("2024-01-01T00:00:00Z"));
        assert_eq!(first.end_instant(), at("2024-01-06T00:00:00Z"));
    }

    #[test]
    fn a_head_of_no_days_is_the_start_day_alone() {
        let range = DayRange::new(day("2024-01-01"), day("2024-01-10")).expect("range");
        let one = range.head(0);
        assert_eq!(
            (one.start, one.end, one.span_days()),
            (day("2024-01-01"), day("2024-01-01"), 0)
        );
        assert_eq!(range.head(-3), one);
        let rest = range.rest_after_inclusive(one).expect("more");
        assert_eq!(rest.start, day("2024-01-02"));
    }

    #[test]
    fn windows_share_their_boundary_day_and_end_where_the_range_ends() {
        let range = DayRange::new(day("2024-01-01"), day("2024-01-10")).expect("range");
        let first = range.head(4);
        assert_eq!(first.end, day("2024-01-05"));
        let rest = range.rest_after(first).expect("more to read");
        assert_eq!(rest.start, day("2024-01-05"));
        let last = rest.head(i64::MAX);
        assert_eq!(last.end, day("2024-01-10"));
        assert_eq!(rest.rest_after(last), None);
    }

    #[test]
    fn the_next_window_is_sized_from_the_density_of_the_last() {
        let previous = DayRange::new(day("2024-01-01"), day("2024-01-11")).expect("range");
        assert_eq!(next_span_days(previous, 2_000, 1_000, false), 5);
        assert_eq!(next_span_days(previous, 10, 1_000, false), 1_000);
        assert_eq!(next_span_days(previous, 0, 1_000, false), i64::MAX);
        assert_eq!(next_span_days(previous, 1_000_000, 1_000, false), 1);
        // Inclusive: a one-day window (span 0) holding 22 of at most 30 stays one day.
        let one_day = DayRange::new(day("2024-03-01"), day("2024-03-02"))
            .expect("range")
            .head(0);
        assert_eq!(next_span_days(one_day, 22, 30, true), 0);
        assert_eq!(next_span_days(one_day, 10, 30, true), 2);
        assert_eq!(next_span_days(one_day, 0, 30, true), i64::MAX);
        // Span 10 inclusive is 11 days: 1,100 leads, 500 wanted: 5 days, span 4.
        let eleven = DayRange::new(day("2024-03-01"), day("2024-03-11")).expect("range");
        assert_eq!(next_span_days(eleven, 1_100, 500, true), 4);
        assert_eq!(next_span_days(eleven, 1_100, 500, false), 4);
    }
}
