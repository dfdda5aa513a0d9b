//! Which days a run asks for, and how a long range is cut into windows.
//!
//! The API filters by whole days, in a time zone it does not document, with an `end_date` that
//! may or may not be inclusive. So every range here is sent as `start_date..=end_date` with
//! `end > start`, consecutive windows share their boundary day, and the last window ends the day
//! after today (UTC): whichever way the unknowns fall, every day is covered at least once, and
//! the upsert absorbs what is read twice.

use chrono::{DateTime, Days, NaiveDate, Utc};

/// A range of API days, sent as `start_date` / `end_date`. Always `end > start`.
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

    /// The first half of the range, for when it holds more leads than one window should.
    /// `None` when it is already the smallest range (two days) that covers its start day
    /// whether `end_date` is inclusive or not.
    pub fn first_half(self) -> Option<Self> {
        let span = self.span_days();
        (span > 1).then(|| Self {
            start: self.start,
            end: self.start + Days::new((span / 2).max(1) as u64),
        })
    }

    /// The window starting where this range starts, `span_days` long, not past this range's end.
    pub fn head(self, span_days: i64) -> Self {
        let end = self
            .start
            .checked_add_days(Days::new(span_days.max(1) as u64))
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

/// The days one run reads: from `date(HWM) - lookback` (or the lookback before where the last
/// run stopped, or `backfill_from` for a first run) to the day after today, in UTC. A high-water
/// mark in the future (clock skew on the API's side) is treated as now, so it cannot push the
/// start past today.
pub fn plan_run(state: SyncState, settings: PlanSettings, now: DateTime<Utc>) -> DayRange {
    let today = now.date_naive();
    let end = today + Days::new(1);
    let lookback = Days::new(u64::from(settings.lookback_days));
    let from_hwm = state
        .high_water_mark
        .map(|hwm| hwm.min(now).date_naive() - lookback);
    let from_resume = state.resume_from.map(|day| day.min(end) - lookback);
    let start = match (from_hwm, from_resume) {
        (Some(a), Some(b)) => a.min(b),
        (Some(day), None) | (None, Some(day)) => day,
        (None, None) => settings.backfill_from,
    };
    DayRange::new(start.min(today), end).expect("start <= today < end")
}

/// How many days the next window should span, given what the last one held: aim at
/// `max_leads` leads assuming the density stays the same; an empty window means "take the rest".
pub fn next_span_days(previous: DayRange, previous_total: u64, max_leads: u64) -> i64 {
    let span = previous.span_days().max(1) as u64;
    if previous_total == 0 {
        return i64::MAX;
    }
    let scaled = span.saturating_mul(max_leads) / previous_total;
    i64::try_from(scaled.max(1)).unwrap_or(i64::MAX)
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

    fn settings() -> PlanSettings {
        PlanSettings {
            backfill_from: day("2023-01-01"),
            lookback_days: 2,
        }
    }

    #[test]
    fn a_first_run_reads_from_backfill_from_to_the_day_after_today() {
        let plan = plan_run(SyncState::default(), settings(), at("2024-03-10T12:00:00Z"));
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
        let plan = plan_run(state, settings(), at("2024-03-10T12:00:00Z"));
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
        let plan = plan_run(state, settings(), at("2024-03-10T12:00:00Z"));
        assert_eq!(plan.start, day("2023-05-30"));
    }

    #[test]
    fn a_high_water_mark_in_the_future_is_treated_as_now() {
        let state = SyncState {
            high_water_mark: Some(at("2030-01-01T00:00:00Z")),
            resume_from: Some(day("2030-01-02")),
        };
        let plan = plan_run(state, settings(), at("2024-03-10T12:00:00Z"));
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
        let plan = plan_run(SyncState::default(), settings, at("2024-03-10T12:00:00Z"));
        assert_eq!(
            plan,
            DayRange {
                start: day("2024-03-10"),
                end: day("2024-03-11")
            }
        );
    }

    #[test]
    fn halving_stops_at_two_days_so_the_start_day_is_read_whatever_end_date_means() {
        let range = DayRange::new(day("2024-01-01"), day("2024-01-10")).expect("range");
        let half = range.first_half().expect("splittable");
        assert_eq!(
            half,
            DayRange {
                start: day("2024-01-01"),
                end: day("2024-01-05")
            }
        );
        let smallest = DayRange::new(day("2024-01-01"), day("2024-01-02")).expect("range");
        assert_eq!(smallest.first_half(), None);
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
        assert_eq!(next_span_days(previous, 2_000, 1_000), 5);
        assert_eq!(next_span_days(previous, 10, 1_000), 1_000);
        assert_eq!(next_span_days(previous, 0, 1_000), i64::MAX);
        assert_eq!(next_span_days(previous, 1_000_000, 1_000), 1);
    }
}
