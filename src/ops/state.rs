//! `leadsync state rewind`: a bot's high-water mark moved back on purpose, under the bot's
//! lock, so that nobody edits `sync_state` by hand. (`state show` is [`super::status`].)

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{
    domain::{BotUid, midnight},
    store::{self, Pool, Rewound},
};

/// What a rewind did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewind {
    Moved(Rewound),
    /// The mark (if any) is not after the day asked for: nothing moved.
    NotAfter(Option<DateTime<Utc>>),
    /// A run holds the bot: nothing moved.
    Locked,
}

/// Moves `bot`'s mark back to the start of `to` (UTC), recorded in the ledger; refused while
/// another process holds the bot's lock.
pub async fn rewind(pool: &Pool, bot: &BotUid, to: NaiveDate) -> anyhow::Result<Rewind> {
    let Some(mut lock) = store::try_lock_bot(pool, bot)
        .await
        .context("taking the bot's lock")?
    else {
        return Ok(Rewind::Locked);
    };
    let moved = store::rewind_mark(lock.connection(), bot, midnight(to), Uuid::now_v7())
        .await
        .context("moving the high-water mark")?;
    let outcome = match moved {
        Some(moved) => Rewind::Moved(moved),
        None => {
            let state = store::load_sync_state(lock.connection(), bot)
                .await
                .context("reading the sync state")?;
            Rewind::NotAfter(state.high_water_mark)
        }
    };
    lock.release().await.context("releasing the bot's lock")?;
    Ok(outcome)
}
