//! What every part of a run needs: the process-wide settings and caps ([`SyncContext`]), and
//! what one run's requests share ([`RunRequests`]). The other files of `sync` use this one;
//! it uses none of them.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    chatof::ChatofClient,
    domain::{ApiBeliefs, BeliefSummary, BotUid, PlanSettings, RunCounts},
    events,
    retry::RetryPolicy,
    store::Pool,
};

/// Everything a run needs besides the bot and its client.
#[derive(Clone, Debug)]
pub struct SyncContext {
    pub pool: Pool,
    pub retry: RetryPolicy,
    pub page_size: u32,
    pub plan: PlanSettings,
    /// A window is cut down until it holds about this many leads.
    pub max_window_leads: u64,
    pub max_window_rereads: u32,
    /// Caps the requests in flight across every bot of the process.
    pub requests_in_flight: Arc<Semaphore>,
    /// One run's share of those: its own requests and its read-ahead together never hold more,
    /// so bots whose API calls hang cannot take every slot from the others.
    pub per_run_in_flight: usize,
    /// The copy is meant to hold the bot's whole history (no `sync.backfill_from`, no
    /// retention), so a whole-chatbot `total` can prove it complete.
    pub copy_is_whole_history: bool,
    /// Cancelled on shutdown: runs stop between pages and record themselves `interrupted`.
    pub cancel: CancellationToken,
}

impl SyncContext {
    /// Each run's share of `max_in_flight` when `concurrent_runs` run at once (at least one).
    pub fn share_of(max_in_flight: usize, concurrent_runs: usize) -> usize {
        (max_in_flight / concurrent_runs.max(1)).max(1)
    }
}

/// What the requests of one run share, wherever they are made (the reader or its read-ahead):
/// the tally the ledger counts, and the run's share of the request slots.
#[derive(Clone, Debug)]
pub(super) struct RunRequests {
    tally: Arc<Tally>,
    pub(super) share: Arc<Semaphore>,
}

#[derive(Debug, Default)]
struct Tally {
    requests: AtomicU64,
    retries: AtomicU64,
}

impl RunRequests {
    pub(super) fn new(ctx: &SyncContext) -> Self {
        Self {
            tally: Arc::default(),
            share: Arc::new(Semaphore::new(ctx.per_run_in_flight.max(1))),
        }
    }

    /// One attempt made (a retry when it is not the first of its request).
    pub(super) fn count_attempt(&self, retry: bool) {
        self.tally.requests.fetch_add(1, Relaxed);
        if retry {
            self.tally.retries.fetch_add(1, Relaxed);
        }
    }

    /// Moves the requests and retries counted so far into `counts`: every request made counts,
    /// the ones whose page was never used (read ahead past the end) included.
    pub(super) fn settle(&self, counts: &mut RunCounts) {
        counts.requests += self.tally.requests.swap(0, Relaxed);
        counts.retries += self.tally.retries.swap(0, Relaxed);
    }
}

/// One run's fixed surroundings, handed to every part of it.
#[derive(Debug)]
pub(super) struct RunScope<'a> {
    pub(super) ctx: &'a SyncContext,
    pub(super) bot: &'a BotUid,
    pub(super) client: &'a ChatofClient,
    pub(super) run_id: Uuid,
    pub(super) requests: RunRequests,
    /// When the run started.
    pub(super) now: DateTime<Utc>,
}

/// What a run has done and learned so far.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) counts: RunCounts,
    pub(super) beliefs: ApiBeliefs,
    /// The mark as stored after the last completed window.
    pub(super) high_water_mark: Option<DateTime<Utc>>,
    /// The largest plausible `total` any page of the run reported.
    pub(super) largest_total: Option<u64>,
    /// What was last logged of the beliefs, so each change is logged once.
    reported: BeliefSummary,
    reported_lookback: u32,
}

impl Progress {
    pub(super) fn new(
        beliefs: ApiBeliefs,
        high_water_mark: Option<DateTime<Utc>>,
        lookback_days: u32,
    ) -> Self {
        Self {
            counts: RunCounts::default(),
            reported: beliefs.summary(),
            reported_lookback: beliefs.lookback_days(lookback_days),
            beliefs,
            high_water_mark,
            largest_total: None,
        }
    }

    /// Logs what changed in the beliefs since the last call: one `api_belief_changed` per
    /// belief, and `lookback_widened` when the lookback grew.
    pub(super) fn report_belief_changes(&mut self, configured_lookback: u32) {
        let now = self.beliefs.summary();
        let was = &self.reported;
        let changes: [(&'static str, String, String); 5] = [
            ("total", was.total.into(), now.total.into()),
            ("order", was.order.into(), now.order.into()),
            ("end_date", was.end_date.into(), now.end_date.into()),
            (
                "served_page_size",
                format!("{:?}", was.served_page_size),
                format!("{:?}", now.served_page_size),
            ),
            (
                "ignores_page",
                was.ignores_page.to_string(),
                now.ignores_page.to_string(),
            ),
        ];
        for (belief, from, to) in changes {
            if from != to {
                events::api_belief_changed(belief, &from, &to);
            }
        }
        let lookback = self.beliefs.lookback_days(configured_lookback);
        if lookback > self.reported_lookback {
            events::lookback_widened(self.reported_lookback, lookback, now.late_hours);
            self.reported_lookback = lookback;
        }
        self.reported = now;
    }
}
