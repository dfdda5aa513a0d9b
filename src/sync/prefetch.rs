use futures_util::{StreamExt as _, stream};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{SyncError, fetch::fetch_page, run::SyncContext};
use crate::{
    chatof::{ChatofClient, LeadsPage},
    domain::{BotUid, DayRange, RunCounts},
};

/// Pages fetched at once per window, ahead of the one being stored (each still waits for a
/// slot under the process-wide `api.max_in_flight`).
const PAGE_LOOKAHEAD: usize = 4;

/// Pages `first..=last` of a window, fetched ahead by a task of their own once the first page
/// has told how many there are, and handed over in page order: the next pages download while
/// the current batch is written, and a slow API is asked several pages at a time. Pages past
/// `last` (the listing grew) are fetched one by one by the reader, as before. Dropping this
/// stops the fetching.
pub(super) struct Prefetch {
    pages: mpsc::Receiver<Fetched>,
    task: JoinHandle<()>,
    next: u32,
    last: u32,
}

struct Fetched {
    page: u32,
    result: Result<LeadsPage, SyncError>,
    counts: RunCounts,
}

impl Prefetch {
    pub(super) fn start(
        ctx: &SyncContext,
        client: &ChatofClient,
        bot: &BotUid,
        window: DayRange,
        first: u32,
        last: u32,
    ) -> Self {
        let (sender, pages) = mpsc::channel(PAGE_LOOKAHEAD);
        let (ctx, client, bot) = (ctx.clone(), client.clone(), bot.clone());
        let task = tokio::spawn(async move {
            let mut fetched = stream::iter(first..=last)
                .map(|page| {
                    let (ctx, client, bot) = (&ctx, &client, &bot);
                    async move {
                        let mut counts = RunCounts::default();
                        let result = fetch_page(ctx, client, bot, window, page, &mut counts).await;
                        Fetched {
                            page,
                            result,
                            counts,
                        }
                    }
                })
                .buffered(PAGE_LOOKAHEAD);
            while let Some(page) = fetched.next().await {
                if sender.send(page).await.is_err() {
                    return;
                }
            }
        });
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

    /// The next page, adding its requests and retries to `counts`.
    pub(super) async fn take(&mut self, counts: &mut RunCounts) -> Result<LeadsPage, SyncError> {
        let fetched = self.pages.recv().await.ok_or(SyncError::Interrupted)?;
        debug_assert_eq!(fetched.page, self.next, "pages arrive in order");
        self.next += 1;
        counts.requests += fetched.counts.requests;
        counts.retries += fetched.counts.retries;
        fetched.result
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many pages a listing of `total` records has with the page size the server reported.
pub(super) fn page_count(page: &LeadsPage, asked_page_size: u32) -> Option<u32> {
    let size = u64::from(page.page_size.unwrap_or(asked_page_size).max(1));
    page.total
        .map(|total| u32::try_from(total.div_ceil(size)).unwrap_or(u32::MAX))
}
