//! No personal data outside the leads tables: not in logs (even at debug level), not in the
//! run ledger or any other bookkeeping table, not in metrics, not in error messages.

use leadsync::fake_api::{FakeLead, Fault, WorldSettings};
use serde_json::{Value, json};

use crate::helpers::*;

/// Every string in a log line, keys and values, decoded (a value with a quote or a newline is
/// escaped in the raw JSON text, so searching only that text could miss it).
fn strings_of(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings_of(item, out)),
        Value::Object(fields) => {
            for (key, field) in fields {
                out.push(key.clone());
                strings_of(field, out);
            }
        }
        _ => {}
    }
}

/// Every value of every table but `leads` and `rejected_leads`, as text.
async fn bookkeeping_text(h: &Harness) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables
          WHERE schemaname = 'public' AND tablename NOT IN ('leads', 'rejected_leads')",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("catalog");
    assert!(tables.contains(&"sync_runs".to_owned()));
    let mut text = String::new();
    for table in tables {
        let values: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(value, '\n') FROM {table} t, jsonb_each_text(to_jsonb(t))"
        ))
        .fetch_one(&h.db.pool)
        .await
        .expect("table text");
        text.push_str(&values.unwrap_or_default());
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn no_served_name_email_phone_or_remark_appears_in_logs_ledger_metrics_or_errors() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    h.world
        .generate_leads(BOT_A, 300, days_ago(30), days_ago(0), 110);
    h.world
        .generate_leads(BOT_B, 100, days_ago(30), days_ago(0), 111);
    let malformed = json!({
        "bot_uid": BOT_A,
        "created_at": "not a date",
        "conversation_uid": "malformed-1",
        "name": "Rejected Person Name",
        "email": "rejected.person@example.com",
        "phone": "+33 6 12 34 56 78",
        "remark": "a remark nobody should log",
    });
    h.world
        .insert_lead(BOT_A, FakeLead::malformed(malformed.clone(), days_ago(1)));
    // Retried failures for one bot, a refused key for the other: every error path speaks.
    h.world.push_faults(
        Some(BOT_A),
        [
            Fault::TruncatedJson,
            Fault::HtmlPage,
            Fault::InternalError,
            Fault::ConnectionReset,
        ],
    );
    h.world.push_faults(Some(BOT_B), [Fault::Unauthorized]);

    let mut daemon = Process::start(
        write_config(&h.config_toml("")),
        &["run"],
        &[
            ("LEADSYNC__LOG__FILTER", "debug"),
            ("LEADSYNC__SYNC__SCHEDULE", "0 0 0 1 1 *"),
        ],
    );
    let addr = daemon.http_addr().await;
    daemon
        .wait_for("bot A's run", |line| {
            line["message"] == "sync_run_finished" && line["span"]["bot_uid"] == BOT_A
        })
        .await;
    let (_, metrics) = http_get(&format!("http://{addr}/metrics")).await;
    daemon.signal("TERM");
    let lines = daemon.all_lines().await;
    assert_eq!(daemon.exit_code().await, Some(0));

    // The scene happened: the failures were logged, the rows stored, the reject kept.
    let events: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["message"].as_str())
        .collect();
    for event in [
        "request_retried",
        "sync_run_failed",
        "lead_rejected",
        "page_fetched",
    ] {
        assert!(events.contains(&event), "no {event} in {events:?}");
    }
    assert_eq!(h.stored(BOT_A).await, h.world.truth(BOT_A));
    let failure: Option<String> =
        sqlx::query_scalar("SELECT error FROM sync_runs WHERE bot_uid = $1 AND status = 'failed'")
            .bind(BOT_B)
            .fetch_one(&h.db.pool)
            .await
            .expect("the failed run");
    assert!(failure.is_some());

    let mut log_strings = Vec::new();
    for line in &lines {
        strings_of(line, &mut log_strings);
    }
    let logs = log_strings.join("\n");
    let raw_logs: String = lines.iter().map(Value::to_string).collect();
    let bookkeeping = bookkeeping_text(&h).await;
    let mut personal: Vec<String> = [BOT_A, BOT_B]
        .iter()
        .flat_map(|bot| h.world.truth(bot))
        .flat_map(|lead| [lead.name, lead.email, lead.phone, lead.remark])
        .flatten()
        .collect();
    personal.extend(
        ["name", "email", "phone", "remark"]
            .iter()
            .filter_map(|field| malformed[field].as_str().map(str::to_owned)),
    );
    let mut checked = 0;
    for value in personal.iter().filter(|value| value.chars().count() >= 6) {
        checked += 1;
        // Say where, never what: the message itself must not print personal data.
        assert!(
            !logs.contains(value.as_str()),
            "a served value is in the logs"
        );
        assert!(
            !raw_logs.contains(value.as_str()),
            "a served value is in the logs"
        );
        assert!(
            !bookkeeping.contains(value.as_str()),
            "a served value is in a bookkeeping table"
        );
        assert!(
            !metrics.contains(value.as_str()),
            "a served value is in /metrics"
        );
    }
    assert!(checked > 500, "only {checked} values checked");
}
