use std::collections::HashSet;

use sqlx::{Connection as _, PgConnection, PgExecutor};

use crate::domain::{BotUid, ErasureKey, Lead};

/// An SQL condition: a tombstone in `forgotten_leads` matches the lead whose conversation uid,
/// email and phone are these SQL expressions (the hash functions, in the migration, hold the
/// normalisation). Written out in each statement rather than wrapped in an SQL function:
/// PostgreSQL never inlines a function holding a subquery, and called once per row it costs
/// about twenty times as much, on every lead the upsert stores. Each branch is one lookup in
/// the tombstones' primary key.
pub(super) fn matches_tombstone(conversation_uid: &str, email: &str, phone: &str) -> String {
    format!(
        "(EXISTS (SELECT FROM forgotten_leads f WHERE f.kind = 'conversation' \
                     AND f.value_sha256 = conversation_sha256({conversation_uid})) \
          OR EXISTS (SELECT FROM forgotten_leads f WHERE f.kind = 'email' \
                        AND f.value_sha256 = email_sha256({email})) \
          OR EXISTS (SELECT FROM forgotten_leads f WHERE f.kind = 'phone' \
                        AND f.value_sha256 = phone_sha256({phone})))"
    )
}

/// What an erasure removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub leads: u64,
    pub rejected: u64,
    /// Tombstones recorded now (a value forgotten before already has one).
    pub tombstones: u64,
}

/// Records a tombstone for each key and deletes every lead, and every rejected record, that
/// matches one, in one transaction.
///
/// The transaction first locks `leads` and `rejected_leads` against writers (SHARE ROW
/// EXCLUSIVE conflicts with the ROW EXCLUSIVE a sync's page takes). So a page being committed
/// right now is waited for and then deleted; a page that starts meanwhile waits for this
/// transaction, and its upsert, which takes its snapshot after getting the lock, sees the new
/// tombstones and skips the rows. Without the lock, a page committing concurrently could
/// bring a forgotten lead back.
pub async fn forget_leads(
    conn: &mut PgConnection,
    keys: &[ErasureKey],
) -> Result<Erased, sqlx::Error> {
    let kinds: Vec<&str> = keys.iter().map(ErasureKey::kind).collect();
    let values: Vec<&str> = keys.iter().map(ErasureKey::value).collect();
    let mut tx = conn.begin().await?;
    sqlx::query("LOCK TABLE leads, rejected_leads IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let tombstones = sqlx::query(
        r#"
        INSERT INTO forgotten_leads (kind, value_sha256)
        SELECT kind, CASE kind WHEN 'email' THEN email_sha256(value)
                               WHEN 'phone' THEN phone_sha256(value)
                               ELSE conversation_sha256(value) END
          FROM UNNEST($1::text[], $2::text[]) AS t(kind, value)
        ON CONFLICT (kind, value_sha256) DO NOTHING
        "#,
    )
    .bind(&kinds)
    .bind(&values)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Every tombstone, not only today's: whatever matches one must not be here.
    let leads = sqlx::query(&format!(
        "DELETE FROM leads WHERE {}",
        matches_tombstone("conversation_uid", "email", "phone")
    ))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // The history of a lead that stays (its email or phone changed since) may hold the
    // forgotten value: those rows go too. The history of a deleted lead went with it.
    let old = |field: &str| format!("CASE WHEN field = '{field}' THEN old_value END");
    let new = |field: &str| format!("CASE WHEN field = '{field}' THEN new_value END");
    sqlx::query(&format!(
        "DELETE FROM lead_changes WHERE field IN ('email', 'phone') AND ({} OR {})",
        matches_tombstone("NULL::text", &old("email"), &old("phone")),
        matches_tombstone("NULL::text", &new("email"), &new("phone"))
    ))
    .execute(&mut *tx)
    .await?;
    let rejected = sqlx::query(&format!(
        "DELETE FROM rejected_leads WHERE {}",
        matches_tombstone("raw->>'conversation_uid'", "raw->>'email'", "raw->>'phone'")
    ))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Erased {
        leads,
        rejected,
        tombstones,
    })
}

/// The conversation uids among `leads` that a sync would not store: matching a tombstone, or
/// older than this session's retention, or stored under another bot than `bot` (the same tests
/// as [`super::upsert_leads`]'s). Listed by the API, absent from the copy, and rightly so.
pub async fn unstorable_conversations(
    executor: impl PgExecutor<'_>,
    bot: &BotUid,
    leads: &[&Lead],
) -> Result<HashSet<String>, sqlx::Error> {
    let uids: Vec<&str> = leads.iter().map(|l| l.conversation_uid.as_str()).collect();
    let created: Vec<_> = leads.iter().map(|l| l.created_at).collect();
    let emails: Vec<Option<&str>> = leads.iter().map(|l| l.email.as_deref()).collect();
    let phones: Vec<Option<&str>> = leads.iter().map(|l| l.phone.as_deref()).collect();
    let unstorable: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT conversation_uid
           FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[])
                AS t(conversation_uid, created_at, email, phone)
          WHERE is_expired(created_at) OR {}
             OR EXISTS (SELECT FROM leads o
                         WHERE o.conversation_uid = t.conversation_uid AND o.bot_uid <> $5)",
        matches_tombstone("conversation_uid", "email", "phone")
    ))
    .bind(&uids)
    .bind(&created)
    .bind(&emails)
    .bind(&phones)
    .bind(bot.as_str())
    .fetch_all(executor)
    .await?;
    Ok(unstorable.into_iter().collect())
}
