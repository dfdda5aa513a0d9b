use std::collections::HashMap;

use super::{
    SyncError,
    context::{RunRequests, SyncContext},
    fetch::fetch_page,
    pagination::{Pass, PassRules},
};
use crate::{
    chatof::ChatofClient,
    domain::{ApiBeliefs, BotUid, DayRange, Lead},
};

/// Reads every lead the API lists for `range`, without storing anything (for `verify`), with
/// the same rules for where the listing ends as a sync ([`Pass`], as far as `beliefs` say what
/// the server does), and another pass (bounded) when a trusted total says the listing shifted
/// while it was read. Malformed records are left out.
pub async fn list_leads(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    range: DayRange,
    beliefs: &ApiBeliefs,
) -> Result<HashMap<String, Lead>, SyncError> {
    let requests = RunRequests::new(ctx);
    let rules = PassRules {
        asked_page_size: ctx.page_size,
        served_page_size: beliefs.served_page_size(),
        trust_total: beliefs.total_counts_the_window(),
        // A verify reads days the sync read before; a listing far past that is not ending.
        record_cap: ctx.max_window_leads.saturating_mul(16),
    };
    let mut leads = HashMap::new();
    for _pass in 0..=ctx.max_window_rereads {
        let mut pass = Pass::new(rules);
        let mut page_number = 1;
        loop {
            let page = fetch_page(ctx, &requests, client, bot, range, page_number).await?;
            let end = pass.take_in(&page, page_number);
            for lead in page.records.into_iter().flatten() {
                leads.insert(lead.conversation_uid.clone(), lead);
            }
            if end.is_some() {
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
