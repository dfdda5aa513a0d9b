use sqlx::PgExecutor;

use crate::domain::BotUid;

/// Records the configured bots and their names (for the analysts' views). A name that did not
/// change is not rewritten; a bot no longer configured is kept, as its leads are.
pub async fn upsert_bots(
    executor: impl PgExecutor<'_>,
    bots: &[(&BotUid, Option<&str>)],
) -> Result<(), sqlx::Error> {
    let uids: Vec<&str> = bots.iter().map(|(uid, _)| uid.as_str()).collect();
    let names: Vec<Option<&str>> = bots.iter().map(|(_, name)| *name).collect();
    sqlx::query(
        r#"
        INSERT INTO bots AS b (bot_uid, name)
        SELECT * FROM UNNEST($1::text[], $2::text[])
        ON CONFLICT (bot_uid) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
         WHERE b.name IS DISTINCT FROM EXCLUDED.name
        "#,
    )
    .bind(&uids)
    .bind(&names)
    .execute(executor)
    .await?;
    Ok(())
}

/// Deletes everything kept for these bots: their leads, rejected records, runs, sync state,
/// beliefs and names, in one transaction. For the demo, whose bots are its own and whose every
/// run starts again from an empty copy; no command offers it for real bots.
pub async fn clear_bots(
    conn: &mut sqlx::PgConnection,
    bots: &[&BotUid],
) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let uids: Vec<&str> = bots.iter().map(|uid| uid.as_str()).collect();
    let mut tx = conn.begin().await?;
    for table in [
        "leads",
        "rejected_leads",
        "sync_runs",
        "sync_state",
        "api_beliefs",
        "bots",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE bot_uid = ANY($1)"))
            .bind(&uids)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
