//! What leadsync has learned about the API's undocumented semantics, for one bot, and what it
//! may do because of it.
//!
//! API.md leaves open what `total` counts, what the day filter selects on and in which zone,
//! whether `end_date` is inclusive, the listing's order and the real page size. leadsync starts
//! by assuming the worst of each and learns from what the API answers (the pages it reads
//! anyway, plus one cheap probe of a range that cannot hold leads). The rule (README,
//! "What leadsync learns about the API"): a belief narrows a margin only on strong evidence and
//! widens it at the first contrary sign; nothing learned here can lose a lead, it can only save
//! requests, and `verify` uses the same margins.
//!
//! Pure data and arithmetic: the sync feeds observations in, the store keeps the result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const DAY_SECS: i64 = 86_400;

/// Strict pairs of records in one order, with none in the other since, before the order is
/// believed: a random order of 50 pairs is sorted with odds far below one in a million.
pub const ORDER_EVIDENCE: u64 = 50;
/// Leads listed by both windows on either side of a boundary day before `end_date` is believed
/// inclusive. Under an exclusive `end_date` two adjacent windows can never share a lead
/// (each lead has one filter day), so any shared lead is evidence; ten rule out a lead that
/// merely moved between the reads.
pub const INCLUSIVE_EVIDENCE: u32 = 10;
/// Boundaries that looked exclusive (see [`ApiBeliefs::observe_boundary`]) before it is believed.
pub const EXCLUSIVE_EVIDENCE: u32 = 2;
/// Full pages of one size, without a report of the size, before that size is believed served.
pub const PAGE_SIZE_EVIDENCE: u32 = 3;
/// Runs in a row whose whole-copy count fell short of a whole-chatbot `total` (after a
/// re-read) before that total is no longer trusted to prove anything.
pub const SHORTFALL_RUNS_BEFORE_UNTRUSTED: u32 = 3;
/// A learned lag adds at most this many days to the lookback: a lead whose `created_at` lies months
/// outside the range it was listed for is an outlier (or hostile), not a lag to cover on every run.
pub const MAX_LEARNED_LOOKBACK_DAYS: u32 = 31;
/// A `total` above this is not a count of anybody's leads: it is treated as absent.
pub const MAX_PLAUSIBLE_TOTAL: u64 = 100_000_000;

/// What `data.total` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TotalMeaning {
    /// Not known yet: treated as the filtered count, and watched.
    #[default]
    Unknown,
    /// The leads matching the request's dates: proves each window complete.
    Filtered,
    /// More than the filtered listing (an empty range reports leads): taken as the whole
    /// chatbot's count, which proves the whole copy complete instead.
    WholeBot,
    /// The server sends none.
    Absent,
    /// Contradicted by the listings (fewer than were listed, or more that re-reading never
    /// finds): proves nothing; only short and empty pages end a listing.
    Untrusted,
}

impl TotalMeaning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Filtered => "filtered",
            Self::WholeBot => "whole_bot",
            Self::Absent => "absent",
            Self::Untrusted => "untrusted",
        }
    }
}

/// The order the listing comes in, by `created_at`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingOrder {
    #[default]
    Unknown,
    NewestFirst,
    OldestFirst,
}

impl ListingOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::NewestFirst => "newest_first",
            Self::OldestFirst => "oldest_first",
        }
    }
}

/// Whether `end_date` includes that day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndDate {
    #[default]
    Unknown,
    Inclusive,
    Exclusive,
}

impl EndDate {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Inclusive => "inclusive",
            Self::Exclusive => "exclusive",
        }
    }
}

/// Everything learned about the API, as the database keeps it (`api_beliefs.beliefs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiBeliefs {
    pub total: TotalMeaning,
    /// Observations that agreed with `total` since it last changed.
    pub total_evidence: u32,
    /// Runs in a row with an unexplained whole-copy shortfall (see [`TotalMeaning::WholeBot`]).
    pub shortfall_runs: u32,
    /// The shortfall last reported (`copy_incomplete`), so it is reported once, not every run.
    pub reported_shortfall: Option<u64>,
    /// The page size the server serves when it does not say (a silent clamp), and how many
    /// full pages of that size were seen with a page after them.
    pub served_page_size: Option<u32>,
    pub served_page_size_evidence: u32,
    /// Strict newest-first pairs since the last oldest-first one, and the reverse.
    pub newest_first_pairs: u64,
    pub oldest_first_pairs: u64,
    pub end_date: EndDate,
    pub inclusive_evidence: u32,
    pub exclusive_evidence: u32,
    /// The most a listed lead's `created_at` lay before the first day of the range it was
    /// listed for (UTC), and after its last day: the filter's zone, and how far a
    /// conversation can start before its lead is recorded.
    pub early_secs: i64,
    pub late_secs: i64,
    /// Leads per day in the last window read whole.
    pub leads_per_day: Option<f64>,
    /// The server serves page 1 whatever `page` asks: every window must fit one page.
    pub ignores_page: bool,
    /// When the empty-range probe last ran.
    pub probed_at: Option<DateTime<Utc>>,
}

/// The beliefs an operator reads (`check`, `status --json`) and the sync acts on; a change of
/// any field is logged once (`api_belief_changed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BeliefSummary {
    pub total: &'static str,
    pub order: &'static str,
    pub end_date: &'static str,
    /// The page size the server serves without saying so (`None`: it says, or not known).
    pub served_page_size: Option<u32>,
    pub ignores_page: bool,
    /// Hours a listed lead was seen created before its range's first day, and after its last.
    pub early_hours: i64,
    pub late_hours: i64,
}

impl ApiBeliefs {
    pub fn summary(&self) -> BeliefSummary {
        BeliefSummary {
            total: self.total.as_str(),
            order: self.order().as_str(),
            end_date: self.end_date.as_str(),
            served_page_size: self.served_page_size(),
            ignores_page: self.ignores_page,
            early_hours: self.early_secs.div_euclid(3600),
            late_hours: self.late_secs.div_euclid(3600),
        }
    }

    // ---- what the sync may do ----

    /// The days re-read behind the mark: the configured lookback (late arrivals, in UTC days)
    /// plus the most a listed lead was seen created after its range's last day (a
    /// conversation-start filter, a western zone), rounded up to days and capped: a late
    /// arrival is filed under a day up to that much before its `created_at`. Plus a day until
    /// `end_date` is known to be inclusive: that lag is measured from the end of a range's last
    /// day, which an exclusive `end_date` (in a western zone, or with a lag) would make a day
    /// short, and a western zone under an exclusive `end_date` lists nothing late at all.
    pub fn lookback_days(&self, configured: u32) -> u32 {
        let lag = u32::try_from(days_up(self.late_secs)).unwrap_or(u32::MAX);
        let unsure = u32::from(!self.windows_may_abut());
        configured.saturating_add(lag.min(MAX_LEARNED_LOOKBACK_DAYS).saturating_add(unsure))
    }

    /// Days of margin before a range for a lead created on its first day: one for an unknown
    /// zone, plus the observed lag.
    pub fn late_margin_days(&self) -> u32 {
        u32::try_from(days_up(self.late_secs) + 1).unwrap_or(u32::MAX)
    }

    /// Days of margin after a range for a lead created on its last day: one for an unknown zone
    /// and an exclusive end, plus what leads were seen listed early (an eastern zone).
    pub fn early_margin_days(&self) -> u32 {
        u32::try_from(days_up(self.early_secs) + 1)
            .unwrap_or(u32::MAX)
            .min(MAX_LEARNED_LOOKBACK_DAYS)
    }

    /// Whether `total` is read as the count of the window's listing (today's assumption, kept
    /// until contradicted).
    pub fn total_counts_the_window(&self) -> bool {
        matches!(self.total, TotalMeaning::Filtered | TotalMeaning::Unknown)
    }

    pub fn order(&self) -> ListingOrder {
        if self.newest_first_pairs >= ORDER_EVIDENCE {
            ListingOrder::NewestFirst
        } else if self.oldest_first_pairs >= ORDER_EVIDENCE {
            ListingOrder::OldestFirst
        } else {
            ListingOrder::Unknown
        }
    }

    /// Windows may start the day after the previous one ends, instead of on it.
    pub fn windows_may_abut(&self) -> bool {
        self.end_date == EndDate::Inclusive
    }

    /// The page size to take for "a full page" when the server does not report one.
    pub fn served_page_size(&self) -> Option<u32> {
        self.served_page_size
            .filter(|_| self.served_page_size_evidence >= PAGE_SIZE_EVIDENCE)
    }

    /// Whether the empty-range probe is due: never ran, or not within a day.
    pub fn probe_due(&self, now: DateTime<Utc>) -> bool {
        self.probed_at
            .is_none_or(|at| now - at > chrono::TimeDelta::days(1) || at > now)
    }

    // ---- what the sync observed ----

    /// Two consecutive records of one pass, by `created_at`. Equal times say nothing.
    pub fn observe_pair(&mut self, earlier_listed: DateTime<Utc>, later_listed: DateTime<Utc>) {
        if earlier_listed > later_listed {
            self.newest_first_pairs = self.newest_first_pairs.saturating_add(1);
            self.oldest_first_pairs = 0;
        } else if earlier_listed < later_listed {
            self.oldest_first_pairs = self.oldest_first_pairs.saturating_add(1);
            self.newest_first_pairs = 0;
        }
    }

    /// A lead listed for a range was created `early_secs` before its first day began (UTC) or
    /// `late_secs` after its last day ended. Only grows.
    pub fn observe_overflow(&mut self, early_secs: i64, late_secs: i64) {
        self.early_secs = self.early_secs.max(early_secs);
        self.late_secs = self.late_secs.max(late_secs);
    }

    /// A page of `len` records, without a reported page size, after which the listing went
    /// on (so it was full).
    pub fn observe_full_page(&mut self, len: u32) {
        match self.served_page_size {
            Some(size) if size == len => {
                self.served_page_size_evidence = self.served_page_size_evidence.saturating_add(1);
            }
            // A longer page: the size believed was not the server's; start again.
            _ => {
                if self.served_page_size.is_none_or(|size| len > size) {
                    self.served_page_size = Some(len);
                    self.served_page_size_evidence = 1;
                }
            }
        }
    }

    /// A page longer than the size believed served: that size was wrong.
    pub fn observe_page_length(&mut self, len: u32) {
        if self.served_page_size.is_some_and(|size| len > size) {
            self.served_page_size = Some(len);
            self.served_page_size_evidence = 0;
        }
    }

    /// The answer to the probe of a range that cannot hold leads.
    pub fn observe_probe(&mut self, now: DateTime<Utc>, listed: usize, total: Option<u64>) {
        self.probed_at = Some(now);
        match (listed, plausible(total)) {
            // Leads for a range before ChatofAI existed: the dates filter nothing we can
            // reason about; learn nothing about `total` from it.
            (1.., _) => {}
            (0, None) if total.is_some() => self.set_total(TotalMeaning::Untrusted),
            (0, None) => self.set_total(TotalMeaning::Absent),
            // The total follows the dates: it counts the filtered listing (the passes over
            // windows keep checking that).
            (0, Some(0)) => self.set_total(TotalMeaning::Filtered),
            // More than the (empty) filtered listing: the chatbot's count, unless listings
            // already showed the total to be off, which a whole-chatbot count does not explain
            // better than a wrong one.
            (0, Some(_)) => {
                if self.total != TotalMeaning::Untrusted {
                    self.set_total(TotalMeaning::WholeBot);
                }
            }
        }
    }

    /// A window's listing was cut to a smaller window with the same start, and the server
    /// gave the same `total` for both while listing different leads first: the total does
    /// not count the filtered listing.
    pub fn observe_total_ignores_dates(&mut self) {
        if self.total_counts_the_window() {
            self.set_total(TotalMeaning::WholeBot);
        }
    }

    /// A pass over a window that ended on an empty or short page: `seen` distinct records,
    /// `total` the largest (plausible) one reported, `steady` when every page reported the same.
    /// `same_as_before` when this pass re-read exactly what the previous one found.
    pub fn observe_pass(
        &mut self,
        seen: u64,
        total: Option<u64>,
        steady: bool,
        same_as_before: bool,
    ) {
        match total {
            None => {
                if self.total != TotalMeaning::Absent && self.total != TotalMeaning::Untrusted {
                    self.set_total(TotalMeaning::Absent);
                }
            }
            Some(total) if !self.total_counts_the_window() => {
                let _ = total;
            }
            Some(total) if seen == total && steady => match self.total {
                TotalMeaning::Filtered => self.agree_on_total(),
                _ => self.set_total(TotalMeaning::Filtered),
            },
            // More leads listed than the total says there are: it lags or under-reports.
            Some(total) if seen > total => self.set_total(TotalMeaning::Untrusted),
            // Fewer, and reading again found exactly the same: nothing shifted, the total is off.
            Some(total) if seen < total && same_as_before && steady => {
                self.set_total(TotalMeaning::Untrusted);
            }
            Some(_) => {}
        }
    }

    /// At a boundary day shared by two adjacent windows of one run: `common` leads were listed
    /// by both; `earlier_lists_day`/`later_lists_day` when that window listed a lead created on
    /// that day (UTC).
    ///
    /// Under an inclusive `end_date` the boundary day's leads are in both windows (whatever the
    /// zone or a conversation-start lag), so a shared lead is evidence of it; under an exclusive
    /// one the windows never share a lead, so none shared while both list leads created that
    /// day is evidence of that.
    pub fn observe_boundary(
        &mut self,
        common: u64,
        earlier_lists_day: bool,
        later_lists_day: bool,
    ) {
        if common > 0 {
            self.exclusive_evidence = 0;
            let common = u32::try_from(common).unwrap_or(u32::MAX);
            self.inclusive_evidence = self.inclusive_evidence.saturating_add(common);
            if self.inclusive_evidence >= INCLUSIVE_EVIDENCE {
                self.end_date = EndDate::Inclusive;
            } else if self.end_date == EndDate::Exclusive {
                self.end_date = EndDate::Unknown;
            }
        } else if earlier_lists_day && later_lists_day {
            self.inclusive_evidence = 0;
            self.exclusive_evidence = self.exclusive_evidence.saturating_add(1);
            self.end_date = if self.exclusive_evidence >= EXCLUSIVE_EVIDENCE {
                EndDate::Exclusive
            } else {
                EndDate::Unknown
            };
        }
    }

    /// A window from a day to the same day listed leads: under an exclusive `end_date` it would
    /// be empty, so the end day is included.
    pub fn observe_one_day_window(&mut self, listed: u64) {
        if listed > 0 {
            self.exclusive_evidence = 0;
            self.inclusive_evidence = self.inclusive_evidence.max(INCLUSIVE_EVIDENCE);
            self.end_date = EndDate::Inclusive;
        }
    }

    /// The leads per day of a window read whole, over the `days` it covered (a fraction when
    /// it ends today: a window of a day and a half is not taken for one of a day).
    pub fn observe_density(&mut self, leads: u64, days: f64) {
        if leads > 0 && days > 0.0 {
            self.leads_per_day = Some(leads as f64 / days);
        }
    }

    pub fn observe_ignored_page(&mut self) {
        self.ignores_page = true;
    }

    /// The whole-copy check under a whole-chatbot total: `ours` leads held (stored and
    /// rejected) against `total`. Returns the shortfall to report, once per distinct value.
    pub fn observe_whole_copy(&mut self, total: u64, ours: u64) -> Option<u64> {
        if self.total != TotalMeaning::WholeBot {
            return None;
        }
        if ours >= total {
            self.shortfall_runs = 0;
            self.reported_shortfall = None;
            self.agree_on_total();
            return None;
        }
        let shortfall = total - ours;
        self.shortfall_runs = self.shortfall_runs.saturating_add(1);
        if self.shortfall_runs >= SHORTFALL_RUNS_BEFORE_UNTRUSTED {
            self.set_total(TotalMeaning::Untrusted);
        }
        if self.reported_shortfall == Some(shortfall) {
            return None;
        }
        self.reported_shortfall = Some(shortfall);
        Some(shortfall)
    }

    fn set_total(&mut self, meaning: TotalMeaning) {
        if self.total != meaning {
            self.total = meaning;
            self.total_evidence = 1;
            self.shortfall_runs = 0;
            self.reported_shortfall = None;
        } else {
            self.agree_on_total();
        }
    }

    fn agree_on_total(&mut self) {
        self.total_evidence = self.total_evidence.saturating_add(1);
    }
}

/// Whole days covering `secs` (none for a negative span).
fn days_up(secs: i64) -> u64 {
    (secs.max(0) as u64).div_ceil(DAY_SECS as u64)
}

/// `total` unless it is beyond any real count (then: as if absent).
pub fn plausible(total: Option<u64>) -> Option<u64> {
    total.filter(|&total| total <= MAX_PLAUSIBLE_TOTAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("timestamp")
    }

    #[test]
    fn an_empty_range_with_leads_in_its_total_means_the_total_counts_the_chatbot() {
        let now = at("2026-12-01T00:00:00Z");
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_probe(now, 0, Some(20_000));
        assert_eq!(beliefs.total, TotalMeaning::WholeBot);
        assert!(!beliefs.total_counts_the_window());
        assert!(!beliefs.probe_due(now + chrono::TimeDelta::hours(23)));
        assert!(beliefs.probe_due(now + chrono::TimeDelta::hours(25)));
        // Exactly a day later, or at the same instant: not yet. A probe "in the future" (the
        // clock went back): due.
        assert!(!beliefs.probe_due(now + chrono::TimeDelta::days(1)));
        assert!(!beliefs.probe_due(now));
        assert!(beliefs.probe_due(now - chrono::TimeDelta::seconds(1)));

        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_probe(now, 0, Some(0));
        assert_eq!(beliefs.total, TotalMeaning::Filtered);
        beliefs.observe_probe(now, 0, None);
        assert_eq!(beliefs.total, TotalMeaning::Absent);
        beliefs.observe_probe(now, 0, Some(u64::MAX));
        assert_eq!(beliefs.total, TotalMeaning::Untrusted, "an absurd total");
        beliefs.observe_probe(now, 3, Some(0));
        assert_eq!(
            beliefs.total,
            TotalMeaning::Untrusted,
            "leads for 1990 teach nothing"
        );
        assert_eq!(ApiBeliefs::default().probed_at, None);
        assert!(ApiBeliefs::default().probe_due(now));
    }

    #[test]
    fn a_pass_that_matches_its_total_confirms_a_filtered_total_and_one_that_exceeds_it_refutes_it()
    {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_pass(120, Some(120), true, false);
        assert_eq!(beliefs.total, TotalMeaning::Filtered);
        beliefs.observe_pass(80, Some(80), true, false);
        assert_eq!(beliefs.total_evidence, 2);
        // A lead arrived while paging: short, and not the same on re-reading: no verdict.
        beliefs.observe_pass(80, Some(81), false, false);
        assert_eq!(beliefs.total, TotalMeaning::Filtered);
        beliefs.observe_pass(120, Some(60), true, false);
        assert_eq!(beliefs.total, TotalMeaning::Untrusted);

        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_pass(95, Some(100), true, true);
        assert_eq!(
            beliefs.total,
            TotalMeaning::Untrusted,
            "a re-read found the same 95"
        );
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_pass(95, None, true, false);
        assert_eq!(beliefs.total, TotalMeaning::Absent);

        // A total proven wrong stays so when it goes missing.
        let mut beliefs = ApiBeliefs {
            total: TotalMeaning::Untrusted,
            ..ApiBeliefs::default()
        };
        beliefs.observe_pass(95, None, true, false);
        assert_eq!(beliefs.total, TotalMeaning::Untrusted);

        // A whole-chatbot total says nothing of a window: neither a pass that happens to match
        // it nor one above it changes the belief.
        let mut beliefs = ApiBeliefs {
            total: TotalMeaning::WholeBot,
            ..ApiBeliefs::default()
        };
        beliefs.observe_pass(50, Some(50), true, false);
        beliefs.observe_pass(80, Some(50), true, false);
        assert_eq!(beliefs.total, TotalMeaning::WholeBot);

        // Short of the total: only a steady re-read that found the very same leads refutes it.
        let filtered = || ApiBeliefs {
            total: TotalMeaning::Filtered,
            ..ApiBeliefs::default()
        };
        for (steady, same_as_before) in [(true, false), (false, true), (false, false)] {
            let mut beliefs = filtered();
            beliefs.observe_pass(95, Some(100), steady, same_as_before);
            assert_eq!(
                beliefs.total,
                TotalMeaning::Filtered,
                "{steady} {same_as_before}"
            );
        }
        // As many as the total, but the total moved while paging: no verdict either way.
        let mut beliefs = filtered();
        beliefs.observe_pass(100, Some(100), false, false);
        assert_eq!(beliefs.total, TotalMeaning::Filtered);
    }

    #[test]
    fn the_same_total_for_a_smaller_window_means_it_does_not_count_the_window() {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_total_ignores_dates();
        assert_eq!(beliefs.total, TotalMeaning::WholeBot);
        let mut beliefs = ApiBeliefs {
            total: TotalMeaning::Absent,
            ..ApiBeliefs::default()
        };
        beliefs.observe_total_ignores_dates();
        assert_eq!(beliefs.total, TotalMeaning::Absent);
    }

    #[test]
    fn a_one_day_window_that_lists_leads_proves_end_date_inclusive_and_an_empty_one_nothing() {
        let mut beliefs = ApiBeliefs {
            exclusive_evidence: 1,
            ..ApiBeliefs::default()
        };
        beliefs.observe_one_day_window(0);
        assert_eq!(beliefs.end_date, EndDate::Unknown);
        assert_eq!(beliefs.exclusive_evidence, 1);
        beliefs.observe_one_day_window(1);
        assert_eq!(beliefs.end_date, EndDate::Inclusive);
        assert!(beliefs.windows_may_abut());
        assert_eq!(beliefs.exclusive_evidence, 0);
        assert_eq!(beliefs.inclusive_evidence, INCLUSIVE_EVIDENCE);
    }

    #[test]
    fn density_is_leads_per_day_of_a_window_that_held_some() {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_density(0, 5.0);
        beliefs.observe_density(10, 0.0);
        assert_eq!(beliefs.leads_per_day, None);
        beliefs.observe_density(100, 4.0);
        assert_eq!(beliefs.leads_per_day, Some(25.0));
        beliefs.observe_density(150, 1.5);
        assert_eq!(
            beliefs.leads_per_day,
            Some(100.0),
            "a part of a day counts as that part"
        );
        beliefs.observe_density(1, 1.0);
        assert_eq!(beliefs.leads_per_day, Some(1.0), "the last window counts");
        beliefs.observe_density(0, 3.0);
        assert_eq!(
            beliefs.leads_per_day,
            Some(1.0),
            "an empty one says nothing"
        );
        assert!(!beliefs.ignores_page);
        beliefs.observe_ignored_page();
        assert!(beliefs.ignores_page);
    }

    #[test]
    fn each_belief_has_the_name_operators_read() {
        let names = |total: TotalMeaning, end_date: EndDate, newest: u64, oldest: u64| {
            let beliefs = ApiBeliefs {
                total,
                end_date,
                newest_first_pairs: newest,
                oldest_first_pairs: oldest,
                ..ApiBeliefs::default()
            };
            let summary = beliefs.summary();
            (summary.total, summary.end_date, summary.order)
        };
        assert_eq!(
            names(TotalMeaning::Unknown, EndDate::Unknown, 0, 0),
            ("unknown", "unknown", "unknown")
        );
        assert_eq!(
            names(
                TotalMeaning::Filtered,
                EndDate::Inclusive,
                ORDER_EVIDENCE,
                0
            ),
            ("filtered", "inclusive", "newest_first")
        );
        assert_eq!(
            names(
                TotalMeaning::WholeBot,
                EndDate::Exclusive,
                0,
                ORDER_EVIDENCE
            ),
            ("whole_bot", "exclusive", "oldest_first")
        );
        assert_eq!(
            names(TotalMeaning::Absent, EndDate::Unknown, 0, 0).0,
            "absent"
        );
        assert_eq!(
            names(TotalMeaning::Untrusted, EndDate::Unknown, 0, 0).0,
            "untrusted"
        );
    }

    #[test]
    fn the_lookback_adds_the_largest_lag_seen_rounded_up_and_capped() {
        let mut beliefs = ApiBeliefs::default();
        assert_eq!(
            beliefs.lookback_days(2),
            3,
            "a day more while end_date is unknown"
        );
        beliefs.end_date = EndDate::Exclusive;
        assert_eq!(beliefs.lookback_days(2), 3, "and while it is exclusive");
        beliefs.end_date = EndDate::Inclusive;
        assert_eq!(beliefs.lookback_days(2), 2);
        beliefs.observe_overflow(0, 12 * 3600);
        assert_eq!(beliefs.lookback_days(2), 3, "half a day: a day more");
        beliefs.observe_overflow(0, 7 * DAY_SECS - 60);
        assert_eq!(beliefs.lookback_days(2), 9);
        beliefs.observe_overflow(0, 3 * DAY_SECS);
        assert_eq!(beliefs.lookback_days(2), 9, "the margin never narrows");
        assert_eq!(beliefs.lookback_days(10), 17);
        beliefs.observe_overflow(0, 400 * DAY_SECS);
        assert_eq!(beliefs.lookback_days(2), 2 + MAX_LEARNED_LOOKBACK_DAYS);
        assert_eq!(beliefs.early_margin_days(), 1);
        beliefs.observe_overflow(14 * 3600, 0);
        assert_eq!(beliefs.early_margin_days(), 2);
        assert_eq!(beliefs.summary().early_hours, 14);
    }

    #[test]
    fn the_order_is_believed_after_fifty_strict_pairs_and_dropped_at_one_contrary_pair() {
        let mut beliefs = ApiBeliefs::default();
        let t = at("2024-01-01T00:00:00Z");
        for i in 0..49 {
            beliefs.observe_pair(
                t - chrono::TimeDelta::minutes(i),
                t - chrono::TimeDelta::minutes(i + 1),
            );
        }
        beliefs.observe_pair(t, t);
        assert_eq!(beliefs.order(), ListingOrder::Unknown, "49 pairs, one tie");
        beliefs.observe_pair(t, t - chrono::TimeDelta::seconds(1));
        assert_eq!(beliefs.order(), ListingOrder::NewestFirst);
        beliefs.observe_pair(t - chrono::TimeDelta::seconds(1), t);
        assert_eq!(beliefs.order(), ListingOrder::Unknown);
        for _ in 0..ORDER_EVIDENCE {
            beliefs.observe_pair(t - chrono::TimeDelta::seconds(1), t);
        }
        assert_eq!(beliefs.order(), ListingOrder::OldestFirst);
    }

    #[test]
    fn shared_boundary_leads_make_end_date_inclusive_and_a_contrary_boundary_undoes_it() {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_boundary(9, true, true);
        assert_eq!(beliefs.end_date, EndDate::Unknown);
        assert!(!beliefs.windows_may_abut());
        beliefs.observe_boundary(1, true, true);
        assert_eq!(beliefs.end_date, EndDate::Inclusive);
        assert!(beliefs.windows_may_abut());
        for (earlier, later) in [(false, false), (true, false), (false, true)] {
            beliefs.observe_boundary(0, earlier, later);
            assert_eq!(
                beliefs.end_date,
                EndDate::Inclusive,
                "a day empty in either window says nothing"
            );
        }
        beliefs.observe_boundary(0, true, true);
        assert_eq!(
            beliefs.end_date,
            EndDate::Unknown,
            "widened at the first sign"
        );
        beliefs.observe_boundary(0, true, true);
        assert_eq!(beliefs.end_date, EndDate::Exclusive);
        beliefs.observe_boundary(2, true, true);
        assert_eq!(beliefs.end_date, EndDate::Unknown);
        assert_eq!(beliefs.inclusive_evidence, 2);
    }

    #[test]
    fn a_silent_clamp_is_believed_after_three_full_pages_and_forgotten_at_a_longer_one() {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_full_page(30);
        beliefs.observe_full_page(30);
        assert_eq!(beliefs.served_page_size(), None);
        beliefs.observe_full_page(30);
        assert_eq!(beliefs.served_page_size(), Some(30));
        beliefs.observe_full_page(20);
        assert_eq!(
            beliefs.served_page_size(),
            Some(30),
            "a shorter page is not a clamp"
        );
        beliefs.observe_page_length(30);
        assert_eq!(
            beliefs.served_page_size(),
            Some(30),
            "a page of the size: still believed"
        );
        beliefs.observe_page_length(31);
        assert_eq!(beliefs.served_page_size(), None);
        beliefs.observe_full_page(40);
        assert_eq!(beliefs.served_page_size, Some(40));
        assert_eq!(beliefs.served_page_size_evidence, 1);
    }

    #[test]
    fn a_whole_copy_shortfall_is_reported_once_per_value_and_untrusted_when_it_persists() {
        let mut beliefs = ApiBeliefs {
            total: TotalMeaning::WholeBot,
            ..ApiBeliefs::default()
        };
        assert_eq!(beliefs.observe_whole_copy(100, 100), None);
        assert_eq!(beliefs.observe_whole_copy(100, 97), Some(3));
        assert_eq!(
            beliefs.observe_whole_copy(100, 97),
            None,
            "already reported"
        );
        assert_eq!(beliefs.total, TotalMeaning::WholeBot);
        assert_eq!(beliefs.observe_whole_copy(101, 97), Some(4), "a new value");
        assert_eq!(beliefs.total, TotalMeaning::Untrusted, "three runs short");
        let mut beliefs = ApiBeliefs {
            total: TotalMeaning::WholeBot,
            ..ApiBeliefs::default()
        };
        assert_eq!(beliefs.observe_whole_copy(10, 9), Some(1));
        assert_eq!(beliefs.observe_whole_copy(10, 10), None);
        assert_eq!(beliefs.reported_shortfall, None, "complete again");
        assert_eq!(
            beliefs.observe_whole_copy(10, 9),
            Some(1),
            "a new shortfall"
        );
        let mut filtered = ApiBeliefs::default();
        assert_eq!(filtered.observe_whole_copy(10, 1), None);
    }

    #[test]
    fn an_implausible_total_counts_as_absent() {
        assert_eq!(
            plausible(Some(MAX_PLAUSIBLE_TOTAL)),
            Some(MAX_PLAUSIBLE_TOTAL)
        );
        assert_eq!(plausible(Some(1 << 63)), None);
        assert_eq!(plausible(None), None);
    }

    #[test]
    fn beliefs_survive_the_database_as_json_and_missing_fields_take_defaults() {
        let mut beliefs = ApiBeliefs::default();
        beliefs.observe_overflow(3600, 7200);
        beliefs.observe_density(500, 10.0);
        let json = serde_json::to_value(&beliefs).expect("serialise");
        let back: ApiBeliefs = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, beliefs);
        let old: ApiBeliefs =
            serde_json::from_value(serde_json::json!({"total": "filtered"})).expect("partial");
        assert_eq!(old.total, TotalMeaning::Filtered);
        assert_eq!(old.late_secs, 0);
    }
}
