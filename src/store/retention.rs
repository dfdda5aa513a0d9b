use sqlx::PgExecutor;

/// Deletes the leads created more than `max_age_days` ago. Returns how many.
pub async fn delete_expired_leads(
    executor: impl PgExecutor<'_>,
    max_age_days: u32,
) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM leads WHERE created_at < now() - make_interval(days => $1)")
            .bind(days(max_age_days))
            .execute(executor)
            .await?;
    Ok(done.rows_affected())
}

/// Deletes the rejected records the API has not served for `max_age_days` (a malformed record
/// has no trustworthy `created_at`; one still served within the lookback is kept for repair).
pub async fn delete_expired_rejects(
    executor: impl PgExecutor<'_>,
    max_age_days: u32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM rejected_leads WHERE last_seen_at < now() - make_interval(days => $1)",
    )
    .bind(days(max_age_days))
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

fn days(max_age_days: u32) -> i32 {
    i32::try_from(max_age_days).unwrap_or(i32::MAX)
}
