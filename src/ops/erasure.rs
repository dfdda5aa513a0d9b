use anyhow::Context as _;

use crate::{
    domain::ErasureKey,
    events,
    store::{self, Erased, Pool},
};

/// `leadsync forget`: erases the leads matching `keys`, and keeps them erased.
pub async fn forget(pool: &Pool, keys: &[ErasureKey]) -> anyhow::Result<Erased> {
    let mut conn = pool.acquire().await.context("connecting to the database")?;
    let erased = store::forget_leads(&mut conn, keys)
        .await
        .context("erasing the leads")?;
    let count = |kind: &str| keys.iter().filter(|key| key.kind() == kind).count();
    events::leads_forgotten(
        count("email"),
        count("phone"),
        count("conversation"),
        erased.leads,
        erased.rejected,
        erased.tombstones,
    );
    Ok(erased)
}
