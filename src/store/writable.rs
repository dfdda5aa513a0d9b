use sqlx::PgExecutor;

/// The tables a sync writes (inserts into and updates; `lead_changes` through the trigger on
/// `leads`, with the session's rights).
const SYNC_TABLES: [&str; 7] = [
    "leads",
    "lead_changes",
    "sync_state",
    "sync_runs",
    "rejected_leads",
    "api_beliefs",
    "bots",
];

/// Why this session could not do a sync's writes, or `None` if it can: a read-only session
/// (`default_transaction_read_only`, a hot standby) or a role without INSERT and UPDATE on a
/// sync table that exists. Asked before any write, so that the cause is named instead of
/// surfacing as the first failed statement of every run.
pub async fn why_not_writable(
    executor: impl PgExecutor<'_>,
) -> Result<Option<String>, sqlx::Error> {
    let (read_only, standby, denied): (bool, bool, Vec<String>) = sqlx::query_as(
        "SELECT current_setting('transaction_read_only') = 'on', pg_is_in_recovery(),
                array(SELECT t FROM unnest($1::text[]) AS t
                       WHERE to_regclass(t) IS NOT NULL
                         AND NOT (has_table_privilege(t, 'INSERT')
                                  AND has_table_privilege(t, 'UPDATE')))",
    )
    .bind(SYNC_TABLES)
    .fetch_one(executor)
    .await?;
    Ok(if standby {
        Some(
            "the database is a read-only standby (in recovery): point database.url at the primary"
                .into(),
        )
    } else if read_only {
        Some(
            "the session is read-only (default_transaction_read_only is on for this database \
             or role): leadsync must write"
                .into(),
        )
    } else if !denied.is_empty() {
        Some(format!(
            "the role may not insert into and update {} (see deploy/sql/roles.sql)",
            denied.join(", ")
        ))
    } else {
        None
    })
}
