use std::collections::HashMap;

use super::{SyncError, fetch::fetch_page, run::SyncContext};
use crate::{
    chatof::ChatofClient,
    domain::{BotUid, DayRange, Lead, RunCounts},
};

/// Reads every lead the API lists for `range`, without storing anything (for `verify`).
/// Pages until one comes back empty, or short with nothing missing against `total`; one more
/// pass if the listing shifted while it was read. Malformed records are left out.
pub async fn list_leads(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
) -> Result<HashMap<String, Lead>, SyncError> {
    let mut counts = RunCounts::default();
    let mut leads = HashMap::new();
    for _pass in 0..=ctx.max_window_rereads {
        let mut seen = 0_u64;
        let mut max_total = 0_u64;
        let mut page_number = 1;
        loop {
            let page = fetch_page(ctx, client, bot, range, page_number, &mut counts).await?;
            max_total = max_total.max(page.total.unwrap_or(0));
            let page_size = page.page_size.unwrap_or(ctx.page_size) as usize;
            let len = page.records.len();
            for record in page.records {
                seen += 1;
                if let Ok(lead) = record {
                    leads.insert(lead.conversation_uid.clone(), lead);
                }
            }
            if len == 0 || len < page_size || u64::from(page_number) > max_total + 1 {
                break;
            }
            page_number += 1;
        }
        if seen >= max_total {
            break;
        }
    }
    Ok(leads)
}
