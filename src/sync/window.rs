use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    SyncError,
    context::{RunRequests, RunScope, SyncContext},
    fetch::fetch_page,
    pagination::{End, Keys, Pass, PassRules, page_keys},
    prefetch::{Prefetch, pages_for},
};
use crate::{
    chatof::{ChatofClient, LeadsPage},
    domain::{
        ApiBeliefs, BotUid, DayRange, Lead, ListingOrder, RejectReason, RejectedLead, RunCounts,
        plausible,
    },
    events,
    store::{self, PgConnection},
};

/// Pages read but not yet stored go to the database together once they hold this many
/// records (or the listing ends): one statement and one transaction per batch instead of per
/// page. A crash loses at most one batch of reading, never data: the mark has not moved.
const WRITE_BATCH_RECORDS: usize = 1_000;

/// ... or once their bodies add up to this many bytes: leads with megabytes of remark each
/// would otherwise make one statement of gigabytes, which Postgres refuses (a message is at
/// most 1 GB), on every run. A page is never split: one page is bounded by `api.max_body_bytes`.
const WRITE_BATCH_BYTES: usize = 16 << 20;

/// A window never reads more than this many times its target size (`sync.max_window_leads`),
/// whatever the server says: past it, a window of several days is cut smaller, and a single
/// day is given up on (a listing that never ends).
const RECORD_CAP_FACTOR: u64 = 4;

/// One upsert statement binds at most about this much lead data (twice over: the text columns
/// and `raw`); a batch of bigger leads is written in several statements of one transaction.
const STATEMENT_BYTES: usize = 8 << 20;

/// A first page bigger than this is not read ahead: the read-ahead holds up to twice
/// `PAGE_LOOKAHEAD` pages at once.
const READ_AHEAD_PAGE_BYTES: usize = 2 << 20;

/// How far past now a lead's `created_at` may move the high-water mark (clock skew).
const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// `leads` in runs of at most `limit` bytes of data (at least one lead each): one statement
/// each, so that a batch of huge leads binds tens of megabytes at a time, not all of it.
fn by_bytes<'l, 'a>(leads: &'l [&'a Lead], limit: usize) -> Vec<&'l [&'a Lead]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (at, lead) in leads.iter().enumerate() {
        let size = lead.approx_bytes();
        if at > start && bytes + size > limit {
            runs.push(&leads[start..at]);
            (start, bytes) = (at, 0);
        }
        bytes += size;
    }
    if start < leads.len() {
        runs.push(&leads[start..]);
    }
    runs
}

/// The copies of leads that another bot owns, to keep aside as rejected.
fn owned_by_another_bot(leads: &[&Lead], uids: &[String]) -> Vec<RejectedLead> {
    if uids.is_empty() {
        return Vec::new();
    }
    let uids: std::collections::HashSet<&str> = uids.iter().map(String::as_str).collect();
    leads
        .iter()
        .filter(|lead| uids.contains(lead.conversation_uid.as_str()))
        .map(|lead| {
            RejectedLead::new(
                RejectReason::OwnedByAnotherBot,
                Some(lead.conversation_uid.clone()),
                lead.raw.clone(),
            )
        })
        .collect()
}

/// What a pass that reached the end of its listing says of the window.
#[derive(Clone, Copy, Debug)]
struct PassOutcome {
    end: End,
    /// The window spans more than a day (see [`WindowPlan::can_shrink`]).
    can_shrink: bool,
    ignores_page: bool,
    /// Fewer distinct records than a trusted total.
    missing: bool,
    /// The same records as the pass before.
    same_as_before: bool,
    /// Nothing shifted while the pass paged.
    steady: bool,
    /// `sync.max_window_rereads` allows another pass.
    rereads_left: bool,
}

/// What follows a pass that reached its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterPass {
    /// Too big for one window, or a server that ignores `page`: cut the window smaller.
    Shrink,
    /// A listing that cannot be read whole in a window that cannot shrink: kept as read.
    CutOff,
    /// Read whole (nothing missing, or stopped where earlier runs had covered).
    Complete,
    /// Short of its total twice with the same records: the total is off, not the read.
    Steady,
    /// Still short of its total after every allowed re-read.
    Incomplete,
    /// Short of its total: read the window again.
    Reread,
}

impl AfterPass {
    /// Whether the window is done with: its last batch may move the high-water mark.
    fn is_final(self) -> bool {
        !matches!(self, Self::Shrink | Self::Reread)
    }
}

fn after_pass(pass: PassOutcome) -> AfterPass {
    let cut = matches!(pass.end, End::RecordCap | End::PastTotal) || pass.ignores_page;
    if pass.can_shrink && (pass.end == End::RecordCap || pass.ignores_page) {
        AfterPass::Shrink
    } else if cut {
        AfterPass::CutOff
    } else if pass.end == End::Covered || !pass.missing {
        AfterPass::Complete
    } else if pass.same_as_before && pass.steady {
        AfterPass::Steady
    } else if !pass.rereads_left {
        AfterPass::Incomplete
    } else {
        AfterPass::Reread
    }
}

/// What a run tells the reader of one window.
#[derive(Clone, Copy, Debug)]
pub(super) struct WindowPlan {
    pub(super) window: DayRange,
    /// Leads created before this were covered by earlier runs: a listing believed newest
    /// first may stop once it passes below it (a scheduled run's lookback).
    pub(super) covered_before: Option<DateTime<Utc>>,
    /// The window spans more than one day, so a listing too big for it can be cut smaller
    /// (and this run has not met a listing that never ends: cutting would only read more).
    pub(super) can_shrink: bool,
    /// When the run started: a `created_at` further ahead than a day is not a lag to learn.
    pub(super) now: DateTime<Utc>,
    /// The high-water mark before this window.
    pub(super) mark_before: Option<DateTime<Utc>>,
}

/// How a window's read ended.
#[derive(Debug)]
pub(super) struct WindowRead {
    /// The latest `created_at` among leads committed from this window, across re-reads.
    pub(super) newest: Option<DateTime<Utc>>,
    /// The largest plausible `total` of the last pass.
    pub(super) total: Option<u64>,
    /// Distinct records of the last pass.
    pub(super) seen: u64,
    pub(super) keys: Keys,
    pub(super) end: End,
    /// The window is too big for what the server does (a listing past the record cap, or a
    /// server ignoring `page`): read it again smaller. The mark did not move.
    pub(super) shrink: bool,
    /// The listing stopped where earlier runs covered it: its count says nothing of density.
    pub(super) stopped_early: bool,
    /// It listed a lead created (UTC) on its first day, and on its last.
    pub(super) lists_first_day: bool,
    pub(super) lists_last_day: bool,
}

/// Reads one window page by page (fetching ahead when the evidence says how many pages there
/// are), and stores the pages in batches, one transaction each.
///
/// The listing's order is undocumented and it is paged by offset, so the world can shift under
/// us: a lead that arrives while we page pushes every later record one place down (we see one
/// twice and miss the new one). So: read until a page comes back empty, or short with nothing
/// missing; when `total` counts the listing, count the distinct records seen against it and
/// on a shortfall read the window again (bounded). Duplicates are harmless: the upsert keys on
/// `conversation_uid`. Only the transaction of the window's final batch moves the high-water
/// mark, and it saves what the window taught about the API with it.
pub(super) struct WindowReader<'a> {
    ctx: &'a SyncContext,
    requests: &'a RunRequests,
    bot: &'a BotUid,
    client: &'a ChatofClient,
    run_id: Uuid,
    plan: WindowPlan,
    beliefs: &'a mut ApiBeliefs,
    newest: Option<DateTime<Utc>>,
}

/// One pass's running facts beyond the [`Pass`]: for the order, the early stop and the served
/// page size.
#[derive(Default)]
struct PassFacts {
    last_created: Option<DateTime<Utc>>,
    /// No record of this pass came after a newer one.
    descending: bool,
    /// The previous page's length, when the server did not report its page size.
    unreported_len: Option<u32>,
    first_page_keys: Option<Keys>,
    first_page_full: bool,
    ignores_page: bool,
    lists_first_day: bool,
    lists_last_day: bool,
}

impl<'a> WindowReader<'a> {
    pub(super) fn new(
        scope: &'a RunScope<'a>,
        plan: WindowPlan,
        beliefs: &'a mut ApiBeliefs,
    ) -> Self {
        Self {
            ctx: scope.ctx,
            requests: &scope.requests,
            bot: scope.bot,
            client: scope.client,
            run_id: scope.run_id,
            plan,
            beliefs,
            newest: None,
        }
    }

    /// Reads the window, starting with its already fetched first page.
    pub(super) async fn read(
        &mut self,
        conn: &mut PgConnection,
        first_page: LeadsPage,
        counts: &mut RunCounts,
    ) -> Result<WindowRead, SyncError> {
        let window = self.plan.window;
        let mut first_page = Some(first_page);
        let mut reread = 0;
        let mut previous_keys: Option<Keys> = None;
        // Decided once per window: a belief that changes while it is read applies next time.
        let covered_before = self
            .plan
            .covered_before
            .filter(|_| self.beliefs.order() == ListingOrder::NewestFirst);
        loop {
            let rules = PassRules {
                asked_page_size: self.ctx.page_size,
                served_page_size: self.beliefs.served_page_size(),
                trust_total: self.beliefs.total_counts_the_window(),
                record_cap: self.ctx.max_window_leads.saturating_mul(RECORD_CAP_FACTOR),
            };
            let mut pass = Pass::new(rules);
            let mut facts = PassFacts {
                descending: true,
                ..PassFacts::default()
            };
            let mut page_number = 1;
            let mut batch = Vec::new();
            let (mut batched, mut batched_bytes) = (0, 0);
            let mut ahead: Option<Prefetch> = None;
            let (end, after) = loop {
                let page = match (first_page.take(), ahead.as_mut()) {
                    (Some(page), _) => page,
                    (None, Some(prefetch)) if prefetch.delivers(page_number) => {
                        prefetch.take().await?
                    }
                    (None, _) => self.fetch(page_number).await?,
                };
                if page_number == 1 {
                    ahead = self.read_ahead(&page, rules, covered_before);
                }
                self.observe_page(&page, page_number, &mut facts);
                let mut end = pass.take_in(&page, page_number);
                if end.is_none()
                    && let Some(cutoff) = covered_before
                    && facts.descending
                    && page
                        .records
                        .iter()
                        .flatten()
                        .any(|lead| lead.created_at < cutoff)
                {
                    end = Some(End::Covered);
                }
                if end == Some(End::Repeats)
                    && page_number == 2
                    && facts.first_page_full
                    && facts.first_page_keys.as_ref() == Some(&page_keys(&page))
                {
                    facts.ignores_page = true;
                }
                // Decided here, where the window's last batch is committed: only a pass after
                // which nothing is read again may move the mark.
                let after = end.map(|end| {
                    after_pass(PassOutcome {
                        end,
                        can_shrink: self.plan.can_shrink,
                        ignores_page: facts.ignores_page,
                        missing: pass.missing(),
                        same_as_before: previous_keys.as_ref() == Some(pass.keys()),
                        steady: pass.steady(),
                        rereads_left: reread < self.ctx.max_window_rereads,
                    })
                });
                let complete = after.is_some_and(AfterPass::is_final);
                batched += page.records.len();
                batched_bytes += page.bytes;
                batch.push(page);
                if end.is_some()
                    || batched >= WRITE_BATCH_RECORDS
                    || batched_bytes >= WRITE_BATCH_BYTES
                {
                    let pages = std::mem::take(&mut batch);
                    self.commit_pages(conn, pages, page_number, complete, counts)
                        .await?;
                    (batched, batched_bytes) = (0, 0);
                }
                if let (Some(end), Some(after)) = (end, after) {
                    break (end, after);
                }
                page_number += 1;
            };
            drop(ahead);
            self.requests.settle(counts);
            let seen = pass.seen();
            let total = pass.total();
            let same_as_before = previous_keys.as_ref() == Some(pass.keys());
            let read = |pass: Pass, shrink: bool, newest| WindowRead {
                newest,
                total,
                seen,
                keys: pass.into_keys(),
                end,
                shrink,
                stopped_early: end == End::Covered,
                lists_first_day: facts.lists_first_day,
                lists_last_day: facts.lists_last_day,
            };
            if facts.ignores_page {
                self.beliefs.observe_ignored_page();
            }
            if end.ran_out() {
                self.beliefs
                    .observe_pass(seen, total, pass.steady(), same_as_before);
            }
            match after {
                AfterPass::Shrink => return Ok(read(pass, true, self.newest)),
                AfterPass::CutOff => {
                    counts.incomplete_windows += 1;
                    events::listing_cut_off(window, seen);
                    return Ok(read(pass, false, self.newest));
                }
                // Read twice, the same leads both times: the total is what is off, not the
                // read. (The belief change is logged by the run.)
                AfterPass::Complete | AfterPass::Steady => {
                    return Ok(read(pass, false, self.newest));
                }
                AfterPass::Incomplete => {
                    counts.incomplete_windows += 1;
                    events::window_incomplete(window, seen, total.unwrap_or(seen));
                    return Ok(read(pass, false, self.newest));
                }
                AfterPass::Reread => {}
            }
            reread += 1;
            counts.rereads += 1;
            events::window_reread(window, reread, seen, total.unwrap_or(seen));
            previous_keys = Some(pass.into_keys());
        }
    }

    /// The read-ahead for the pages after `first`, as far as the evidence says pages exist:
    /// a total that counts the listing, or else the density of what was read before (in a
    /// listing that may stop early, only the part above where it stops).
    fn read_ahead(
        &self,
        first: &LeadsPage,
        rules: PassRules,
        covered_before: Option<DateTime<Utc>>,
    ) -> Option<Prefetch> {
        let page_size = first
            .page_size
            .or(rules.served_page_size)
            .unwrap_or(self.ctx.page_size);
        if first.records.len() < page_size as usize || first.bytes > READ_AHEAD_PAGE_BYTES {
            return None;
        }
        let expected = match plausible(first.total) {
            Some(total) if rules.trust_total && covered_before.is_none() => total,
            _ => {
                let window = self.plan.window;
                let from = covered_before.map_or(window.first_instant(), |cutoff| {
                    cutoff.max(window.first_instant())
                });
                let days = (window.end_instant().min(self.plan.now) - from).num_seconds() as f64
                    / 86_400.0;
                let density = self.beliefs.leads_per_day.unwrap_or(0.0);
                // A little short of the estimate: what is past it is fetched one by one.
                (density * days.max(0.0) * 0.9) as u64
            }
        };
        let last = pages_for(expected.min(rules.record_cap), page_size);
        (last > 1).then(|| {
            Prefetch::start(
                self.ctx,
                self.requests,
                self.client,
                self.bot,
                self.plan.window,
                (2, last),
            )
        })
    }

    /// What a page says about the API: the order of its records, how far their `created_at`
    /// lies outside the window, the page size served.
    fn observe_page(&mut self, page: &LeadsPage, page_number: u32, facts: &mut PassFacts) {
        let window = self.plan.window;
        let len = u32::try_from(page.records.len()).unwrap_or(u32::MAX);
        if page.page_size.is_none() {
            if len > 0
                && let Some(previous) = facts.unreported_len
            {
                self.beliefs.observe_full_page(previous);
            }
            self.beliefs.observe_page_length(len);
            facts.unreported_len = Some(len);
        }
        if page_number == 1 {
            facts.first_page_keys = Some(page_keys(page));
            let full_at = page
                .page_size
                .or(self.beliefs.served_page_size())
                .unwrap_or(self.ctx.page_size);
            facts.first_page_full = len > 0 && len >= full_at;
        }
        let (first_instant, end_instant) = (window.first_instant(), window.end_instant());
        let horizon = self.plan.now + chrono::TimeDelta::days(1);
        for lead in page.records.iter().flatten() {
            let created = lead.created_at;
            if let Some(last) = facts.last_created {
                self.beliefs.observe_pair(last, created);
                if created > last {
                    facts.descending = false;
                }
            }
            facts.last_created = Some(created);
            let early = (first_instant - created).num_seconds().max(0);
            let late = if created <= horizon {
                (created - end_instant).num_seconds().max(0)
            } else {
                0
            };
            self.beliefs.observe_overflow(early, late);
            let day = created.date_naive();
            facts.lists_first_day |= day == window.start;
            facts.lists_last_day |= day == window.end;
        }
    }

    async fn fetch(&self, page: u32) -> Result<LeadsPage, SyncError> {
        fetch_page(
            self.ctx,
            self.requests,
            self.client,
            self.bot,
            self.plan.window,
            page,
        )
        .await
    }

    /// Stores a batch of pages in one statement and one transaction; the window's final batch
    /// also moves the high-water mark and saves the beliefs, in the same transaction, after
    /// every earlier batch of the window has committed. `page_number` is the batch's last page.
    async fn commit_pages(
        &mut self,
        conn: &mut PgConnection,
        pages: Vec<LeadsPage>,
        page_number: u32,
        completes_window: bool,
        counts: &mut RunCounts,
    ) -> Result<(), SyncError> {
        let records = pages.iter().map(|page| page.records.len()).sum::<usize>();
        counts.pages += pages.len() as u64;
        counts.fetched += records as u64;
        let mut latest: HashMap<&str, &Lead> = HashMap::with_capacity(records);
        let mut rejected: Vec<&RejectedLead> = Vec::new();
        for record in pages.iter().flat_map(|page| &page.records) {
            match record {
                // Later copies win: the listing may repeat a lead (it shifted while we paged).
                Ok(lead) => {
                    latest.insert(lead.conversation_uid.as_str(), lead);
                }
                Err(record) => rejected.push(record),
            }
        }
        let leads: Vec<&Lead> = latest.into_values().collect();
        // A lead dated in the future (a server's clock, or `9999-12-31`) is stored, but the
        // mark goes no further than now and a little skew: it would blind the lag gauge and
        // the freshness view for good.
        let page_newest = leads
            .iter()
            .map(|lead| lead.created_at)
            .max()
            .map(|newest| newest.min(self.plan.now + MAX_FUTURE_SKEW));

        let mut tx = store::begin(conn).await?;
        store::tag_changes(&mut *tx, self.run_id).await?;
        if !completes_window {
            store::defer_durability(&mut *tx).await?;
        }
        let mut written = Vec::new();
        let mut owned_elsewhere = Vec::new();
        for statement in by_bytes(&leads, STATEMENT_BYTES) {
            let upserted = store::upsert_leads(&mut *tx, self.bot, statement).await?;
            written.push(upserted.counts);
            owned_elsewhere.extend(upserted.owned_elsewhere);
        }
        counts.unchanged += (records - rejected.len() - leads.len()) as u64;
        let elsewhere = owned_by_another_bot(&leads, &owned_elsewhere);
        rejected.extend(&elsewhere);
        let first_seen =
            store::record_rejected_leads(&mut *tx, self.bot, self.run_id, &rejected).await?;
        let newest = self.newest.max(page_newest);
        let stored_mark = if completes_window {
            let window = self.plan.window;
            let mark = store::complete_window(&mut *tx, self.bot, newest, window.end).await?;
            store::save_beliefs(&mut *tx, self.bot, self.beliefs).await?;
            Some(mark)
        } else {
            None
        };
        tx.commit().await?;

        for written in written {
            *counts += written;
        }
        counts.rejected += rejected.len() as u64;
        self.newest = newest;
        for (reason, conversation_uid) in &first_seen {
            events::lead_rejected(reason, conversation_uid.as_deref(), page_number);
        }
        if let Some(stored_mark) = stored_mark
            && stored_mark > self.plan.mark_before
        {
            events::high_water_mark_advanced(self.plan.window, stored_mark, self.plan.window.end);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass that listed its window whole: an empty last page, nothing missing.
    const WHOLE: PassOutcome = PassOutcome {
        end: End::Empty,
        can_shrink: true,
        ignores_page: false,
        missing: false,
        same_as_before: false,
        steady: true,
        rereads_left: true,
    };

    /// A pass that came up short of its trusted total.
    const SHORT: PassOutcome = PassOutcome {
        missing: true,
        steady: false,
        ..WHOLE
    };

    #[test]
    fn a_pass_short_of_its_total_is_read_again_and_moves_no_mark_until_then() {
        for end in [End::Empty, End::Short, End::Repeats, End::PageLimit] {
            let pass = PassOutcome { end, ..SHORT };
            assert_eq!(after_pass(pass), AfterPass::Reread, "{end:?}");
            assert!(!after_pass(pass).is_final());
            // Nothing missing: done, whatever else.
            assert_eq!(
                after_pass(PassOutcome {
                    missing: false,
                    ..pass
                }),
                AfterPass::Complete
            );
            // The same records twice while nothing shifted: the total is off.
            let again = PassOutcome {
                same_as_before: true,
                steady: true,
                ..pass
            };
            assert_eq!(after_pass(again), AfterPass::Steady);
            // The same records but the listing shifted, or other records while steady: again.
            for (same_as_before, steady) in [(true, false), (false, true)] {
                let pass = PassOutcome {
                    same_as_before,
                    steady,
                    ..pass
                };
                assert_eq!(
                    after_pass(pass),
                    AfterPass::Reread,
                    "{same_as_before} {steady}"
                );
            }
            let last = PassOutcome {
                rereads_left: false,
                ..pass
            };
            assert_eq!(after_pass(last), AfterPass::Incomplete);
            assert!(after_pass(last).is_final());
        }
    }

    #[test]
    fn big_leads_are_written_in_statements_of_bounded_size() {
        let bot = BotUid::parse("b").expect("uid");
        let lead = |remark_bytes: usize| {
            Lead::from_raw(
                &bot,
                serde_json::json!({"conversation_uid": "c", "created_at": "2024-01-01T00:00:00Z",
                                   "remark": "r".repeat(remark_bytes)}),
            )
            .expect("a lead")
        };
        let (small, big) = (lead(10), lead(400));
        let sizes = |runs: Vec<&[&Lead]>| runs.iter().map(|run| run.len()).collect::<Vec<_>>();
        assert_eq!(sizes(by_bytes(&[&small; 5], 10_000)), [5], "one statement");
        assert_eq!(sizes(by_bytes(&[], 10_000)), Vec::<usize>::new());
        // 400-byte remarks, twice over (column and raw): two fit under 2,000 bytes, not three.
        let size = big.approx_bytes();
        assert!((800..1_000).contains(&size), "{size}");
        assert_eq!(sizes(by_bytes(&[&big; 5], 2 * size)), [2, 2, 1]);
        assert_eq!(sizes(by_bytes(&[&big; 3], 2 * size - 1)), [1, 1, 1]);
        // A lead bigger than the limit still goes, alone.
        assert_eq!(sizes(by_bytes(&[&small, &big, &small], 100)), [1, 1, 1]);
    }

    #[test]
    fn a_listing_that_stopped_where_earlier_runs_covered_is_complete_even_if_short() {
        let covered = PassOutcome {
            end: End::Covered,
            ..SHORT
        };
        assert_eq!(after_pass(covered), AfterPass::Complete);
        assert!(after_pass(covered).is_final());
    }

    #[test]
    fn a_listing_too_big_or_not_paged_is_cut_smaller_where_it_can_be_and_kept_where_not() {
        for end in [End::RecordCap, End::Empty] {
            let pass = PassOutcome {
                end,
                ignores_page: end != End::RecordCap,
                ..SHORT
            };
            assert_eq!(after_pass(pass), AfterPass::Shrink, "{end:?}");
            assert!(!after_pass(pass).is_final());
            let one_day = PassOutcome {
                can_shrink: false,
                ..pass
            };
            assert_eq!(after_pass(one_day), AfterPass::CutOff, "{end:?}");
            assert!(after_pass(one_day).is_final());
        }
        // Past the total: cut off even where the window could shrink (it would only read more).
        let past = PassOutcome {
            end: End::PastTotal,
            ..SHORT
        };
        assert_eq!(after_pass(past), AfterPass::CutOff);
        assert_eq!(
            after_pass(PassOutcome {
                can_shrink: false,
                ..past
            }),
            AfterPass::CutOff
        );
        assert_eq!(after_pass(WHOLE), AfterPass::Complete);
        assert!(after_pass(WHOLE).is_final());
    }
}
