use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use tracing::{Instrument, field};
use uuid::Uuid;

use super::{
    SyncError,
    context::{Progress, RunRequests, RunScope, SyncContext},
    fetch::fetch_page_once,
    range::read_range,
};
use crate::{
    chatof::ChatofClient,
    domain::{ApiBeliefs, BotUid, DayRange, RunCounts, TotalMeaning, midnight, plan_run},
    events,
    retry::{Disposition, classify},
    store::{self, PgConnection, RunKind, RunStatus},
};

/// The range the probe asks for: years before ChatofAI existed, so it cannot hold leads.
/// What `total` says for it tells whether `total` counts the filtered listing.
const PROBE_RANGE: (NaiveDate, NaiveDate) = (
    NaiveDate::from_ymd_opt(1990, 1, 1).expect("valid date"),
    NaiveDate::from_ymd_opt(1990, 1, 2).expect("valid date"),
);

/// What a run reads: the planned days (from the high-water mark), or a range chosen by an
/// operator (`backfill`) or by `verify --repair`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRequest {
    pub kind: RunKind,
    pub range: Option<DayRange>,
}

impl RunRequest {
    pub const SCHEDULED: RunRequest = RunRequest {
        kind: RunKind::Sync,
        range: None,
    };

    pub fn backfill(range: DayRange) -> Self {
        Self {
            kind: RunKind::Backfill,
            range: Some(range),
        }
    }

    pub fn repair(range: DayRange) -> Self {
        Self {
            kind: RunKind::Repair,
            range: Some(range),
        }
    }
}

#[derive(Debug)]
pub enum RunOutcome {
    Succeeded,
    /// Another process holds the bot's lock: it is syncing this bot right now.
    Skipped,
    /// A shutdown stopped the run between pages; what it committed stays.
    Interrupted,
    Failed(SyncError),
}

/// What one run of one bot did.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: Uuid,
    pub bot: BotUid,
    pub outcome: RunOutcome,
    pub counts: RunCounts,
    pub high_water_mark: Option<DateTime<Utc>>,
    /// What leadsync believes about the API after the run.
    pub beliefs: ApiBeliefs,
    pub elapsed: Duration,
}

/// Performs one sync run of `bot` and reports how it went. Never panics on API or database
/// trouble: that is a `Failed` outcome, recorded in the run ledger when the database allows.
///
/// Dropping the future mid-run is safe: every batch of pages commits on its own, the mark only
/// moves with a window's last batch, and the next run marks this one `abandoned`.
pub async fn sync_bot(
    ctx: &SyncContext,
    bot: &BotUid,
    client: &ChatofClient,
    request: RunRequest,
    now: DateTime<Utc>,
) -> RunReport {
    let run_id = Uuid::now_v7();
    let span = tracing::info_span!(
        "sync_run",
        bot_uid = %bot,
        run_id = %run_id,
        kind = request.kind.as_str(),
        range = field::Empty
    );
    let started = Instant::now();
    let mut run = Run {
        scope: RunScope {
            ctx,
            bot,
            client,
            run_id,
            requests: RunRequests::new(ctx),
            now,
        },
        progress: Progress::new(ApiBeliefs::default(), None, ctx.plan.lookback_days),
    };
    let outcome = run.execute(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let _entered = span.enter();
    let Progress {
        counts,
        beliefs,
        high_water_mark,
        ..
    } = run.progress;
    match &outcome {
        RunOutcome::Succeeded => {
            events::sync_run_finished(bot, &counts, high_water_mark, elapsed);
        }
        RunOutcome::Skipped => events::sync_run_skipped(bot, "locked_by_another_process"),
        RunOutcome::Interrupted => events::sync_run_interrupted(bot, &counts, elapsed),
        RunOutcome::Failed(err) => events::sync_run_failed(bot, err, &counts, elapsed),
    }
    RunReport {
        run_id,
        bot: bot.clone(),
        outcome,
        counts,
        high_water_mark,
        beliefs,
        elapsed,
    }
}

struct Run<'a> {
    scope: RunScope<'a>,
    progress: Progress,
}

impl Run<'_> {
    async fn execute(&mut self, request: RunRequest) -> RunOutcome {
        let ctx = self.scope.ctx;
        let mut lock = match store::try_lock_bot(&ctx.pool, self.scope.bot).await {
            Ok(Some(lock)) => lock,
            Ok(None) => return RunOutcome::Skipped,
            Err(err) => return RunOutcome::Failed(err.into()),
        };
        let outcome = match self.locked(lock.connection(), request).await {
            Ok(()) => RunOutcome::Succeeded,
            Err(err) => {
                self.scope.requests.settle(&mut self.progress.counts);
                let (status, summary) = match err {
                    SyncError::Interrupted => (RunStatus::Interrupted, None),
                    _ => (RunStatus::Failed, Some(format!("{}: {err}", err.kind()))),
                };
                let recorded = store::finish_run(
                    &ctx.pool,
                    self.scope.run_id,
                    status,
                    &self.progress.counts,
                    self.progress.high_water_mark,
                    summary.as_deref(),
                )
                .await;
                // The ledger is best effort when the database is what failed; the log has it.
                drop(recorded);
                match err {
                    SyncError::Interrupted => RunOutcome::Interrupted,
                    err => RunOutcome::Failed(err),
                }
            }
        };
        // A failed unlock closes the session, which frees the lock anyway.
        drop(lock.release().await);
        outcome
    }

    /// The run proper, on the connection that holds the bot's lock.
    async fn locked(
        &mut self,
        conn: &mut PgConnection,
        request: RunRequest,
    ) -> Result<(), SyncError> {
        let (ctx, bot, now) = (self.scope.ctx, self.scope.bot, self.scope.now);
        let abandoned = store::abandon_unfinished_runs(&mut *conn, bot).await?;
        if abandoned > 0 {
            events::runs_abandoned(abandoned);
        }
        let state = store::load_sync_state(&mut *conn, bot).await?;
        let beliefs = store::load_beliefs(&mut *conn, bot).await?;
        self.progress = Progress::new(beliefs, state.high_water_mark, ctx.plan.lookback_days);
        let planned = plan_run(state, ctx.plan, &self.progress.beliefs, now);
        let (range, covered_before) = match request.range {
            Some(range) => (range, None),
            None => (planned.range, planned.covered_before.map(midnight)),
        };
        tracing::Span::current().record(
            "range",
            field::display(format_args!("{}..{}", range.start, range.end)),
        );
        store::start_run(
            &mut *conn,
            self.scope.run_id,
            bot,
            request.kind,
            range,
            state.high_water_mark,
        )
        .await?;
        events::sync_run_started(range, state.high_water_mark);

        read_range(&self.scope, conn, &mut self.progress, range, covered_before).await?;
        // After the listing, so a first run costs its pages first (it learns from them too),
        // and the whole-copy check below already knows what the total counts.
        if self.progress.beliefs.probe_due(now) {
            self.probe().await?;
        }
        self.check_whole_copy(conn, range).await?;

        self.scope.requests.settle(&mut self.progress.counts);
        store::save_beliefs(&mut *conn, bot, &self.progress.beliefs).await?;
        store::finish_run(
            &mut *conn,
            self.scope.run_id,
            RunStatus::Succeeded,
            &self.progress.counts,
            self.progress.high_water_mark,
            None,
        )
        .await?;
        Ok(())
    }

    /// Asks for a range that cannot hold leads (one attempt, once a day): what `total` says for
    /// it tells whether it counts the filtered listing. A failure teaches nothing and costs the
    /// run nothing; a refusal (4xx) is not asked again within a day, a hiccup is asked next run.
    async fn probe(&mut self) -> Result<(), SyncError> {
        let scope = &self.scope;
        let range = DayRange::new(PROBE_RANGE.0, PROBE_RANGE.1).expect("start < end");
        match fetch_page_once(scope.ctx, &scope.requests, scope.client, scope.bot, range).await {
            Ok(page) => {
                events::api_probed(page.records.len(), page.total);
                self.progress
                    .beliefs
                    .observe_probe(scope.now, page.records.len(), page.total);
            }
            Err(SyncError::Interrupted) => return Err(SyncError::Interrupted),
            Err(SyncError::Api(err)) if classify(&err) == Disposition::Permanent => {
                self.progress.beliefs.probed_at = Some(scope.now);
            }
            Err(_) => {}
        }
        self.progress
            .report_belief_changes(scope.ctx.plan.lookback_days);
        Ok(())
    }

    /// When `total` counts the whole chatbot, proves the whole copy complete instead of each
    /// window: the leads and rejected records held against the largest total of the run. A
    /// shortfall gets one re-read of the newest days (leads that arrived while the run paged),
    /// then one `copy_incomplete`, reported again only when the shortfall changes. Only for a
    /// copy meant to hold the whole history (no `backfill_from`, retention or erasure).
    async fn check_whole_copy(
        &mut self,
        conn: &mut PgConnection,
        range: DayRange,
    ) -> Result<(), SyncError> {
        let (ctx, bot) = (self.scope.ctx, self.scope.bot);
        if self.progress.beliefs.total != TotalMeaning::WholeBot || !ctx.copy_is_whole_history {
            return Ok(());
        }
        let Some(total) = self.progress.largest_total else {
            return Ok(());
        };
        if store::any_tombstones(&mut *conn).await? {
            return Ok(());
        }
        let mut held = store::held_records(&mut *conn, bot).await?;
        if held < total {
            let today = self.scope.now.date_naive();
            let newest =
                DayRange::new((today - Days::new(1)).max(range.start), range.end).unwrap_or(range);
            read_range(&self.scope, conn, &mut self.progress, newest, None).await?;
            held = store::held_records(&mut *conn, bot).await?;
        }
        let total = self.progress.largest_total.unwrap_or(total);
        if let Some(shortfall) = self.progress.beliefs.observe_whole_copy(total, held) {
            events::copy_incomplete(total, held, shortfall);
        }
        self.progress.report_belief_changes(ctx.plan.lookback_days);
        Ok(())
    }
}
