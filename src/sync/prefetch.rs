use futures_util::{StreamExt as _, stream};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::Instrument as _;

use super::{
    SyncError,
    context::{RunRequests, SyncContext},
    fetch::fetch_page,
};
use crate::{
    chatof::{ChatofClient, LeadsPage},
    domain::{BotUid, DayRange},
};

/// Pages fetched at once per window, ahead of the one being stored, at most (each still
/// waits for a slot of the run's share and of the process-wide `api.max_in_flight`).
pub(super) const PAGE_LOOKAHEAD: usize = 4;

/// Pages `first..=last` of a window, fetched ahead by a task of their own once the evidence
/// says they exist (a trusted total, or the density of what was read before), and handed over
/// in page order: the next pages download while the current batch is written, and a slow API
/// is asked several pages at a time. Pages past `last` are fetched one by one by the reader.
/// Dropping this stops the fetching; the requests it made are counted in the run's tally
/// whether or not their pages were used.
pub(super) struct Prefetch {
    pages: mpsc::Receiver<Fetched>,
    task: JoinHandle<()>,
    next: u32,
    last: u32,
}

struct Fetched {
    page: u32,
    result: Result<LeadsPage, SyncError>,
}

impl Prefetch {
    pub(super) fn start(
        ctx: &SyncContext,
        requests: &RunRequests,
        client: &ChatofClient,
        bot: &BotUid,
        window: DayRange,
        (first, last): (u32, u32),
    ) -> Self {
        let lookahead = PAGE_LOOKAHEAD.min(ctx.per_run_in_flight).max(1);
        let (sender, pages) = mpsc::channel(lookahead);
        let (ctx, requests, client, bot) =
            (ctx.clone(), requests.clone(), client.clone(), bot.clone());
        let task = tokio::spawn(
            async move {
                let mut fetched = stream::iter(first..=last)
                    .map(|page| {
                        let (ctx, requests, client, bot) = (&ctx, &requests, &client, &bot);
                        async move {
                            let result = fetch_page(ctx, requests, client, bot, window, page).await;
                            Fetched { page, result }
                        }
                    })
                    .buffered(lookahead);
                while let Some(page) = fetched.next().await {
                    if sender.send(page).await.is_err() {
                        return;
                    }
                }
            }
            // The run's span, so the read-ahead's log lines carry bot_uid and run_id.
            .in_current_span(),
        );
        Self {
            pages,
            task,
            next: first,
            last,
        }
    }

    /// Whether `page` is the next one this prefetch delivers.
    pub(super) fn delivers(&self, page: u32) -> bool {
        page == self.next && page <= self.last
    }

    /// The next page.
    pub(super) async fn take(&mut self) -> Result<LeadsPage, SyncError> {
        let fetched = self.pages.recv().await.ok_or(SyncError::Interrupted)?;
        debug_assert_eq!(fetched.page, self.next, "pages arrive in order");
        self.next += 1;
        fetched.result
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many pages `records` records fill at `page_size` a page.
pub(super) fn pages_for(records: u64, page_size: u32) -> u32 {
    u32::try_from(records.div_ceil(u64::from(page_size.max(1)))).unwrap_or(u32::MAX)
}
