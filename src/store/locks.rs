use sqlx::{PgPool, Postgres, pool::PoolConnection};

use crate::domain::BotUid;

/// A per-bot Postgres advisory lock, held for one sync run so that two processes (a second
/// replica, a manual `sync` during the daemon's run) never sync the same bot at once.
///
/// The lock belongs to a database session, so the connection is held with it. If the guard is
/// dropped without [`BotLock::release`] (a cancelled run), the connection is closed rather than
/// returned to the pool: the server then frees the lock with the session.
#[derive(Debug)]
pub struct BotLock {
    connection: Option<PoolConnection<Postgres>>,
    key: String,
}

/// Tries to take the bot's lock without waiting. `None`: another session holds it.
pub async fn try_lock_bot(pool: &PgPool, bot: &BotUid) -> Result<Option<BotLock>, sqlx::Error> {
    let key = format!("leadsync:bot:{bot}");
    let mut connection = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(&key)
        .fetch_one(&mut *connection)
        .await?;
    Ok(locked.then_some(BotLock {
        connection: Some(connection),
        key,
    }))
}

impl BotLock {
    /// The session holding the lock. A run does all its writes here: if the session dies (the
    /// server restarted, an operator terminated it), the lock is gone too, and the run's next
    /// statement fails instead of carrying on unprotected.
    pub fn connection(&mut self) -> &mut sqlx::PgConnection {
        self.connection
            .as_mut()
            .expect("the connection is only taken on release or drop")
    }

    pub async fn release(mut self) -> Result<(), sqlx::Error> {
        if let Some(mut connection) = self.connection.take() {
            sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                .bind(&self.key)
                .execute(&mut *connection)
                .await?;
        }
        Ok(())
    }
}

impl Drop for BotLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}
