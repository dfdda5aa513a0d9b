use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};
use uuid::Uuid;

use super::{SyncError, fetch::fetch_page, window::WindowReader};
use crate::{
    chatof::ChatofClient,
    domain::{BotUid, DayRange, PlanSettings, RunCounts, next_span_days, plan_run},
    events,
    retry::RetryPolicy,
    store::{self, PgConnection, Pool, RunKind, RunStatus},
};

/// Everything a run needs besides the bot and its client.
#[derive(Clone, Debug)]
pub struct SyncContext {
    pub pool: Pool,
    pub retry: RetryPolicy,
    pub page_size: u32,
    pub plan: PlanSettings,
    /// A window is cut down (by halving its days) until it holds at most this many leads.
    pub max_window_leads: u64,
    pub max_window_rereads: u32,
    /// Caps the requests in flight across every bot of the process.
    pub requests_in_flight: Arc<Semaphore>,
    /// Cancelled on shutdown: runs stop between pages and record themselves `interrupted`.
    pub cancel: CancellationToken,
}

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
        ctx,
        bot,
        client,
        run_id,
        counts: RunCounts::default(),
        high_water_mark: None,
    };
    let outcome = run.execute(request, now).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let _entered = span.enter();
    match &outcome {
        RunOutcome::Succeeded => {
            events::sync_run_finished(bot, &run.counts, run.high_water_mark, elapsed);
        }
        RunOutcome::Skipped => events::sync_run_skipped(bot, "locked_by_another_process"),
        RunOutcome::Interrupted => events::sync_run_interrupted(bot, &run.counts, elapsed),
        RunOutcome::Failed(err) => events::sync_run_failed(bot, err, &run.counts, elapsed),
    }
    RunReport {
        run_id,
        bot: bot.clone(),
        outcome,
        counts: run.counts,
        high_water_mark: run.high_water_mark,
        elapsed,
    }
}

struct Run<'a> {
    ctx: &'a SyncContext,
    bot: &'a BotUid,
    client: &'a ChatofClient,
    run_id: Uuid,
    counts: RunCounts,
    high_water_mark: Option<DateTime<Utc>>,
}

impl Run<'_> {
    async fn execute(&mut self, request: RunRequest, now: DateTime<Utc>) -> RunOutcome {
        let mut lock = match store::try_lock_bot(&self.ctx.pool, self.bot).await {
            Ok(Some(lock)) => lock,
            Ok(None) => return RunOutcome::Skipped,
            Err(err) => return RunOutcome::Failed(err.into()),
        };
        let outcome = match self.locked(lock.connection(), request, now).await {
            Ok(()) => RunOutcome::Succeeded,
            Err(err) => {
                let (status, summary) = match err {
                    SyncError::Interrupted => (RunStatus::Interrupted, None),
                    _ => (RunStatus::Failed, Some(format!("{}: {err}", err.kind()))),
                };
                let recorded = store::finish_run(
                    &self.ctx.pool,
                    self.run_id,
                    status,
                    &self.counts,
                    self.high_water_mark,
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
        now: DateTime<Utc>,
    ) -> Result<(), SyncError> {
        let abandoned = store::abandon_unfinished_runs(&mut *conn, self.bot).await?;
        if abandoned > 0 {
            events::runs_abandoned(abandoned);
        }
        let state = store::load_sync_state(&mut *conn, self.bot).await?;
        self.high_water_mark = state.high_water_mark;
        let range = request
            .range
            .unwrap_or_else(|| plan_run(state, self.ctx.plan, now));
        tracing::Span::current().record(
            "range",
            field::display(format_args!("{}..{}", range.start, range.end)),
        );
        store::start_run(
            &mut *conn,
            self.run_id,
            self.bot,
            request.kind,
            range,
            state.high_water_mark,
        )
        .await?;
        events::sync_run_started(range, state.high_water_mark);

        self.read_range(conn, range).await?;

        store::finish_run(
            &mut *conn,
            self.run_id,
            RunStatus::Succeeded,
            &self.counts,
            self.high_water_mark,
            None,
        )
        .await?;
        Ok(())
    }

    /// Cuts `range` into windows of at most `max_window_leads` leads (as far as whole days
    /// allow) and reads them oldest first, so each completed window can move the high-water
    /// mark. An empty stretch of history costs one request, however long it is.
    async fn read_range(
        &mut self,
        conn: &mut PgConnection,
        range: DayRange,
    ) -> Result<(), SyncError> {
        let mut remaining = Some(range);
        let mut span_days = i64::MAX;
        while let Some(rest) = remaining {
            let mut window = rest.head(span_days);
            let first_page = loop {
                let page = self.fetch(window, 1).await?;
                let too_big = page.total.unwrap_or(0) > self.ctx.max_window_leads;
                let half = if too_big { window.first_half() } else { None };
                events::window_sized(window, page.total, half.is_some());
                match half {
                    Some(half) => window = half,
                    None => break page,
                }
            };
            let total = first_page.total.unwrap_or(0);
            let mut reader =
                WindowReader::new(self.ctx, self.bot, self.client, self.run_id, window);
            let hwm = reader.read(conn, first_page, &mut self.counts).await?;
            self.high_water_mark = self.high_water_mark.max(hwm);
            self.counts.windows += 1;
            span_days = next_span_days(window, total, self.ctx.max_window_leads);
            remaining = rest.rest_after(window);
        }
        Ok(())
    }

    async fn fetch(
        &mut self,
        window: DayRange,
        page: u32,
    ) -> Result<crate::chatof::LeadsPage, SyncError> {
        fetch_page(
            self.ctx,
            self.client,
            self.bot,
            window,
            page,
            &mut self.counts,
        )
        .await
    }
}
