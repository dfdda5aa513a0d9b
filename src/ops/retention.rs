use std::time::Instant;

use anyhow::Context as _;

use crate::{
    events,
    store::{self, Pool},
};

/// What one application of the retention policy deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    pub leads: u64,
    pub rejected: u64,
}

/// Deletes the leads created more than `max_age_days` ago, and the rejected records not served
/// for that long (`leadsync retention`, and the daemon on `retention.schedule`).
pub async fn apply_retention(pool: &Pool, max_age_days: u32) -> anyhow::Result<Expired> {
    let started = Instant::now();
    let leads = store::delete_expired_leads(pool, max_age_days)
        .await
        .context("deleting expired leads")?;
    let rejected = store::delete_expired_rejects(pool, max_age_days)
        .await
        .context("deleting expired rejected records")?;
    events::retention_applied(max_age_days, leads, rejected, started.elapsed());
    Ok(Expired { leads, rejected })
}
