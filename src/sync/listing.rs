use std::collections::HashMap;

use super::{SyncError, fetch::fetch_page, pagination::Pass, run::SyncContext};
use crate::{
    chatof::ChatofClient,
    domain::{BotUid, DayRange, Lead, RunCounts},
};

/// Reads every lead the API lists for `range`, without storing anything (for `verify`), with
/// the same rules for where the listing ends as a sync ([`Pass`]), and another pass (bounded)
/// when the listing shifted while it was read. Malformed records are left out.
pub async fn list_leads(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
) -> Result<HashMap<String, Lead>, SyncError> {
    let mut counts = RunCounts::default();
    let mut leads = HashMap::new();
    for _pass in 0..=ctx.max_window_rereads {
        let mut pass = Pass::default();
        let mut page_number = 1;
        loop {
            let page = fetch_page(ctx, client, bot, range, page_number, &mut counts).await?;
            let is_last = pass.take_in(&page, page_number, ctx.page_size);
            for lead in page.records.into_iter().flatten() {
                leads.insert(lead.conversation_uid.clone(), lead);
            }
            if is_last {
                break;
            }
            page_number += 1;
        }
        if !pass.missing() {
            break;
        }
    }
    Ok(leads)
}
