//! Retention: leads older than `retention.max_age_days` are deleted (by `leadsync retention`
//! or the daemon on its schedule), and no sync stores them again.

use leadsync::fake_api::WorldSettings;

use crate::helpers::*;

const MAX_AGE: &str = "[retention]\nmax_age_days = 30\n";

/// 80 leads well past 30 days, 50 well inside: no lead sits near the boundary.
fn old_and_recent_leads(h: &Harness) -> usize {
    h.world
        .generate_leads(BOT_A, 80, days_ago(70), days_ago(40), 100);
    h.world
        .generate_leads(BOT_A, 50, days_ago(20), days_ago(0), 101);
    80
}

async fn stored_count(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM leads")
        .fetch_one(&h.db.pool)
        .await
        .expect("leads")
}

#[tokio::test]
async fn retention_deletes_old_leads_and_a_backfill_does_not_bring_them_back() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let old = old_and_recent_leads(&h);
    // Synced while everything was kept.
    assert_all_succeeded(&h.sync().await);
    assert_eq!(stored_count(&h).await, 130);
    let config = write_config(&h.config_toml(MAX_AGE));

    let (code, stdout, stderr) = leadsync_command(&config, &["retention"]).await;

    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("deleted {old} lead(s) older than 30 days")),
        "{stdout}"
    );
    assert_eq!(stored_count(&h).await, 50);

    let from = days_ago(80).date_naive().to_string();
    let (code, stdout, stderr) =
        leadsync_command(&config, &["backfill", "--bot", BOT_A, "--from", &from]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("0 inserted"), "{stdout}");
    assert!(
        stdout.contains(", 80 expired"),
        "the summary counts them: {stdout}"
    );
    assert!(
        stdout.contains(&format!("from {from} through ")),
        "{stdout}"
    );
    assert_eq!(stored_count(&h).await, 50);
    let (kind, expired): (String, i32) =
        sqlx::query_as("SELECT kind, expired FROM sync_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&h.db.pool)
            .await
            .expect("ledger");
    assert_eq!((kind.as_str(), expired), ("backfill", 80));

    // A first sync with all history allowed does not store them either.
    let fresh = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    old_and_recent_leads(&fresh);
    let reports = fresh
        .sync_with(&[("LEADSYNC__RETENTION__MAX_AGE_DAYS", "30")])
        .await;
    assert_all_succeeded(&reports);
    let counts = report_for(&reports, BOT_A).counts;
    assert_eq!(
        (counts.expired, counts.inserted, counts.unchanged),
        (80, 50, 0)
    );
    assert_eq!(counts.fetched, 130, "every record read is counted once");
    assert_eq!(stored_count(&fresh).await, 50);
}

#[tokio::test]
async fn the_daemon_applies_retention_on_its_schedule_and_logs_the_count() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let old = old_and_recent_leads(&h);
    assert_all_succeeded(&h.sync().await);

    let mut daemon = Process::start(
        write_config(&h.config_toml(MAX_AGE)),
        &["run"],
        &[("LEADSYNC__RETENTION__SCHEDULE", "* * * * * *")],
    );
    let applied = daemon.wait_for_event("retention_applied").await;

    assert_eq!(applied["leads"], old);
    assert_eq!(applied["max_age_days"], 30);
    assert_eq!(stored_count(&h).await, 50);
    daemon.signal("TERM");
    assert_eq!(daemon.exit_code().await, Some(0));
}

#[tokio::test]
async fn the_retention_command_without_a_max_age_is_a_configuration_error() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let config = write_config(&h.config_toml(""));

    let (code, _, stderr) = leadsync_command(&config, &["retention"]).await;

    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("retention.max_age_days"), "{stderr}");
}
