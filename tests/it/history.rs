//! The change history of the leads: one row per changed field and run, nothing for an
//! unchanged re-read, erased with the person, and the leads as they were at a time.

use chrono::{DateTime, Utc};
use serde_json::json;

use leadsync::fake_api::WorldSettings;

use crate::helpers::*;

/// `(field, old_value, new_value, run_id)` of a lead's history, oldest first.
type Change = (String, Option<String>, Option<String>, Option<uuid::Uuid>);

async fn history(h: &Harness, conversation_uid: &str) -> Vec<Change> {
    sqlx::query_as(
        "SELECT field, old_value, new_value, run_id FROM lead_changes
          WHERE conversation_uid = $1 ORDER BY id",
    )
    .bind(conversation_uid)
    .fetch_all(&h.db.pool)
    .await
    .expect("history")
}

async fn changes(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lead_changes")
        .fetch_one(&h.db.pool)
        .await
        .expect("count")
}

/// `(name, email)` of a lead in `leads_as_of(at)`; `None` when it is left out.
async fn as_of(h: &Harness, conversation_uid: &str, at: DateTime<Utc>) -> Option<(String, String)> {
    sqlx::query_as("SELECT name, email FROM leads_as_of($2) WHERE conversation_uid = $1")
        .bind(conversation_uid)
        .bind(at)
        .fetch_optional(&h.db.pool)
        .await
        .expect("as of")
}

#[tokio::test]
async fn an_edit_leaves_a_row_per_changed_field_and_an_unchanged_reread_none() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 40, days_ago(1), days_ago(0), 96);
    assert_all_succeeded(&h.sync().await);
    assert_all_succeeded(&h.sync().await);
    assert_eq!(
        changes(&h).await,
        0,
        "stored once, read again unchanged: no history"
    );

    let lead = h.world.truth(BOT_A)[0].clone();
    let uid = lead.conversation_uid.as_str();
    let before: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&h.db.pool)
        .await
        .expect("now");
    h.world.edit_lead(uid, "name", json!("Renamed"));
    h.world
        .edit_lead(uid, "email", json!("renamed@example.test"));
    h.world.edit_lead(uid, "score", json!(7));
    let reports = h.sync().await;
    assert_all_succeeded(&reports);
    assert_eq!(reports[0].counts.updated, 1);
    let run = Some(reports[0].run_id);
    let old = |value: &Option<String>| value.clone();
    assert_eq!(
        history(&h, uid).await,
        vec![
            (
                "name".to_owned(),
                old(&lead.name),
                Some("Renamed".to_owned()),
                run
            ),
            (
                "email".to_owned(),
                old(&lead.email),
                Some("renamed@example.test".to_owned()),
                run
            ),
            ("raw.score".to_owned(), None, Some("7".to_owned()), run),
        ]
    );
    assert_eq!(changes(&h).await, 3, "only the edited lead");

    // Read again, unchanged: nothing more.
    assert_all_succeeded(&h.sync().await);
    assert_eq!(changes(&h).await, 3);

    // The lead as it was, and as it is.
    let then = as_of(&h, uid, before)
        .await
        .expect("stored before the edit");
    assert_eq!(
        (Some(then.0), Some(then.1)),
        (lead.name.clone(), lead.email.clone())
    );
    assert_eq!(
        as_of(&h, uid, Utc::now()).await,
        Some(("Renamed".to_owned(), "renamed@example.test".to_owned()))
    );
    // Before it was first stored, it is not there.
    assert_eq!(as_of(&h, uid, days_ago(30)).await, None);
}

#[tokio::test]
async fn forget_leaves_no_history_row_holding_the_person() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 10, days_ago(1), days_ago(0), 97);
    let leads = h.world.truth(BOT_A);
    let moved = leads[0].conversation_uid.clone();
    let old_email = "Old-Address@example.test".to_owned();
    h.world.edit_lead(&moved, "email", json!(old_email));
    assert_all_succeeded(&h.sync().await);
    // One person changed their address; another lead is erased outright.
    h.world
        .edit_lead(&moved, "email", json!("new-address@example.test"));
    let erased = leads[1].conversation_uid.clone();
    h.world.edit_lead(&erased, "remark", json!("changed"));
    assert_all_succeeded(&h.sync().await);
    assert_eq!(history(&h, &moved).await.len(), 1);
    assert_eq!(history(&h, &erased).await.len(), 1);

    let config = write_config(&h.config_toml(""));
    let (code, _, stderr) = leadsync_command(
        &config,
        &[
            "forget",
            "--email",
            "old-address@EXAMPLE.test",
            "--conversation",
            &erased,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        history(&h, &moved).await.is_empty(),
        "the old address is gone"
    );
    assert!(history(&h, &erased).await.is_empty(), "with its lead");
    let holding: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM lead_changes WHERE old_value ILIKE $1 OR new_value ILIKE $1",
    )
    .bind(format!("%{old_email}%"))
    .fetch_one(&h.db.pool)
    .await
    .expect("count");
    assert_eq!(holding, 0);
    // The lead with the new address stays.
    let stays: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE conversation_uid = $1")
        .bind(&moved)
        .fetch_one(&h.db.pool)
        .await
        .expect("count");
    assert_eq!(stays, 1);
}
