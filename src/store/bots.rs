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
