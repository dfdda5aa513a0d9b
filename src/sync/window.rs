use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SyncError,
    fetch::fetch_page,
    pagination::Pass,
    prefetch::{Prefetch, page_count},
    run::SyncContext,
};
use crate::{
    chatof::{ChatofClient, LeadsPage},
    domain::{BotUid, DayRange, Lead, RejectedLead, RunCounts},
    events,
    store::{self, PgConnection},
};

/// Reads one window page by page (fetching ahead once the first page gave the total), and
/// stores the pages in batches, one transaction each.
///
/// The listing's order is undocumented and it is paged by offset, so the world can shift under
/// us: a lead that arrives while we page pushes every later record one place down (we see one
/// twice and miss the new one). So: read until a page comes back empty, or short with nothing
/// missing; count the distinct records seen against the largest `total` the server reported;
/// on a shortfall read the window again (bounded). Duplicates are harmless: the upsert keys on
/// `conversation_uid`. Only the transaction of the window's final batch moves the high-water mark.
pub(super) struct WindowReader<'a> {
    ctx: &'a SyncContext,
    bot: &'a BotUid,
    client: &'a ChatofClient,
    run_id: Uuid,
    window: DayRange,
    /// The latest `created_at` among leads committed from this window, across re-reads.
    newest: Option<DateTime<Utc>>,
}

/// Pages read but not yet stored go to the database together once they hold this many
/// records (or the listing ends): one statement and one transaction per batch instead of per
/// page. A crash loses at most one batch of reading, never data: the mark has not moved.
const WRITE_BATCH_RECORDS: usize = 1_000;

impl<'a> WindowReader<'a> {
    pub(super) fn new(
        ctx: &'a SyncContext,
        bot: &'a BotUid,
        client: &'a ChatofClient,
        run_id: Uuid,
        window: DayRange,
    ) -> Self {
        Self {
            ctx,
            bot,
            client,
            run_id,
            window,
            newest: None,
        }
    }

    /// Reads the window, starting with its already fetched first page. Returns the window's
    /// newest committed `created_at`.
    pub(super) async fn read(
        &mut self,
        conn: &mut PgConnection,
        first_page: LeadsPage,
        counts: &mut RunCounts,
    ) -> Result<Option<DateTime<Utc>>, SyncError> {
        let mut first_page = Some(first_page);
        let mut reread = 0;
        loop {
            let mut pass = Pass::default();
            let mut page_number = 1;
            let mut batch = Vec::new();
            let mut batched = 0;
            let mut ahead: Option<Prefetch> = None;
            loop {
                let page = match (first_page.take(), ahead.as_mut()) {
                    (Some(page), _) => page,
                    (None, Some(prefetch)) if prefetch.delivers(page_number) => {
                        prefetch.take(counts).await?
                    }
                    (None, _) => self.fetch(page_number, counts).await?,
                };
                if page_number == 1
                    && let Some(last) =
                        page_count(&page, self.ctx.page_size).filter(|&last| last > 1)
                {
                    ahead = Some(Prefetch::start(
                        self.ctx,
                        self.client,
                        self.bot,
                        self.window,
                        2,
                        last,
                    ));
                }
                let is_last = pass.take_in(&page, page_number, self.ctx.page_size);
                let complete =
                    is_last && (!pass.missing() || reread >= self.ctx.max_window_rereads);
                batched += page.records.len();
                batch.push(page);
                if is_last || batched >= WRITE_BATCH_RECORDS {
                    let pages = std::mem::take(&mut batch);
                    self.commit_pages(conn, pages, page_number, complete, counts)
                        .await?;
                    batched = 0;
                }
                if is_last {
                    break;
                }
                page_number += 1;
            }
            let seen = pass.seen();
            let total = pass.total().unwrap_or(seen);
            if !pass.missing() {
                return Ok(self.newest);
            }
            if reread >= self.ctx.max_window_rereads {
                counts.incomplete_windows += 1;
                events::window_incomplete(self.window, seen, total);
                return Ok(self.newest);
            }
            reread += 1;
            counts.rereads += 1;
            events::window_reread(self.window, reread, seen, total);
        }
    }

    async fn fetch(&self, page: u32, counts: &mut RunCounts) -> Result<LeadsPage, SyncError> {
        fetch_page(self.ctx, self.client, self.bot, self.window, page, counts).await
    }

    /// Stores a batch of pages in one statement and one transaction; the window's final batch
    /// also moves the high-water mark, in the same transaction, after every earlier batch of
    /// the window has committed. `page_number` is the batch's last page.
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
        let page_newest = leads.iter().map(|lead| lead.created_at).max();

        let mut tx = store::begin(conn).await?;
        if !completes_window {
            store::defer_durability(&mut *tx).await?;
        }
        let written = store::upsert_leads(&mut *tx, self.bot, &leads).await?;
        counts.unchanged += (records - rejected.len() - leads.len()) as u64;
        let first_seen =
            store::record_rejected_leads(&mut *tx, self.bot, self.run_id, &rejected).await?;
        let newest = self.newest.max(page_newest);
        let stored_mark = if completes_window {
            Some(store::complete_window(&mut *tx, self.bot, newest, self.window.end).await?)
        } else {
            None
        };
        tx.commit().await?;

        *counts += written;
        counts.rejected += rejected.len() as u64;
        self.newest = newest;
        for (reason, conversation_uid) in &first_seen {
            events::lead_rejected(reason, conversation_uid.as_deref(), page_number);
        }
        if let Some(stored_mark) = stored_mark {
            events::high_water_mark_advanced(self.window, stored_mark, self.window.end);
        }
        Ok(())
    }
}
