use leadsync::fake_api::{FakeLead, WorldSettings};
use serde_json::json;

use crate::{capture::LogCapture, helpers::*};

#[tokio::test]
async fn malformed_records_are_kept_aside_and_the_rest_is_stored() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 120, days_ago(5), days_ago(0), 30);
    let filed = days_ago(1);
    for raw in [
        json!({"bot_uid": BOT_A, "created_at": "2024-01-01T00:00:00Z", "email": "x@example.com"}),
        json!({"bot_uid": BOT_A, "conversation_uid": "no-date"}),
        json!({"bot_uid": BOT_A, "conversation_uid": "bad-date", "created_at": "31/12/2024"}),
        json!({"bot_uid": "someone-else", "conversation_uid": "wrong-bot", "created_at": "2024-01-01T00:00:00Z"}),
    ] {
        h.world.insert_lead(BOT_A, FakeLead::malformed(raw, filed));
    }
    assert_eq!(h.world.malformed_count(BOT_A), 4);
    let (logs, _guard) = LogCapture::start();

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    assert_eq!(report_for(&reports, BOT_A).counts.rejected, 4);
    let mut reasons: Vec<String> =
        sqlx::query_scalar("SELECT reason FROM rejected_leads WHERE bot_uid = $1 ORDER BY reason")
            .bind(BOT_A)
            .fetch_all(&h.db.pool)
            .await
            .expect("rejects");
    reasons.sort();
    assert_eq!(
        logs.count("lead_rejected"),
        4,
        "each reject is logged when first seen"
    );
    assert_eq!(
        reasons,
        [
            "bot_uid_mismatch",
            "invalid_created_at",
            "missing_conversation_uid",
            "missing_created_at"
        ]
    );

    // Read again by the next run's lookback: counted again, stored once, not logged again.
    logs.clear();
    h.sync().await;
    assert_eq!(logs.count("lead_rejected"), 0);
    let (rows, seen): (i64, i64) =
        sqlx::query_as("SELECT count(*), sum(times_seen) FROM rejected_leads WHERE bot_uid = $1")
            .bind(BOT_A)
            .fetch_one(&h.db.pool)
            .await
            .expect("rejects");
    assert_eq!((rows, seen), (4, 8));
}

#[tokio::test]
async fn nasty_but_legal_text_is_stored_exactly_as_received() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let created = days_ago(1).fixed_offset();
    let nasty = [
        ("quotes", json!("O'Brien \"the\" \\ back\\slash")),
        ("newlines", json!("line one\nline two\r\n\ttabbed")),
        ("unicode", json!("Zoë 李雷 مرحبا שלום 🦀")),
        ("sql", json!("'); DROP TABLE leads;--")),
        ("long", json!("x".repeat(10_000))),
        ("empty", json!("")),
        ("null", json!(null)),
    ];
    for (id, value) in &nasty {
        h.world.insert_lead(
            BOT_A,
            FakeLead::new(BOT_A, id, created).with_field("remark", value.clone()),
        );
    }
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, "missing", created).without_field("remark"),
    );

    let reports = h.sync().await;

    assert_all_succeeded(&reports);
    h.assert_copy_is_exact().await;
    let null_count: i64 = sqlx::query_scalar("SELECT count(*) FROM leads WHERE remark IS NULL")
        .fetch_one(&h.db.pool)
        .await
        .expect("count");
    assert_eq!(
        null_count, 2,
        "null and missing are NULL, the empty string is not"
    );
}
