//! A bot gone quiet: flagged from its own history, once; a bot that is usually quiet is not.

use chrono::TimeDelta;
use leadsync::fake_api::{FakeLead, WorldSettings};

use crate::{capture::LogCapture, helpers::*};

/// `every` apart, from `first` on, `count` of them.
fn leads_every(
    h: &Harness,
    bot: &str,
    first: chrono::DateTime<chrono::Utc>,
    every: TimeDelta,
    count: i32,
) {
    for i in 0..count {
        let at = first + every * i;
        h.world.insert_lead(
            bot,
            FakeLead::new(bot, &format!("{bot}-{i}"), at.fixed_offset()),
        );
    }
}

async fn quiet_in_view(h: &Harness, bot: &str) -> bool {
    sqlx::query_scalar("SELECT quiet FROM sync_freshness WHERE bot_uid = $1")
        .bind(bot)
        .fetch_one(&h.db.pool)
        .await
        .expect("sync_freshness")
}

fn gauge(bot: &str) -> Option<String> {
    let text = leadsync::metrics::metrics().render();
    let prefix = format!("leadsync_bot_quiet{{bot_uid=\"{bot}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[tokio::test]
async fn a_bot_with_a_lead_an_hour_and_then_none_for_a_day_is_flagged_once_and_a_weekly_one_is_not()
{
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    // A: a lead an hour for three weeks, then nothing for a day. B: a lead a week for a
    // year, the last five days ago.
    leads_every(&h, BOT_A, days_ago(22), TimeDelta::hours(1), 21 * 24);
    leads_every(
        &h,
        BOT_B,
        days_ago(5) - TimeDelta::weeks(51),
        TimeDelta::weeks(1),
        52,
    );
    let (logs, _guard) = LogCapture::start();

    assert_all_succeeded(&h.sync().await);
    assert_all_succeeded(&h.sync().await);
    let flagged = logs.named("bot_quiet");
    assert_eq!(flagged.len(), 1, "{:?}", logs.events());
    assert_eq!(flagged[0].field("bot_uid"), Some(BOT_A));
    assert_eq!(flagged[0].field("usual_gap_hours"), Some("1.0"));
    assert!(quiet_in_view(&h, BOT_A).await);
    assert!(!quiet_in_view(&h, BOT_B).await);
    assert_eq!(gauge(BOT_A).as_deref(), Some("1"));
    assert_eq!(gauge(BOT_B).as_deref(), Some("0"));
    logs.assert_quiet("a quiet bot is news, not a warning");

    // A lead again: A is active, said once.
    h.world.insert_lead(
        BOT_A,
        FakeLead::new(BOT_A, "back", chrono::Utc::now().fixed_offset()),
    );
    assert_all_succeeded(&h.sync().await);
    assert_all_succeeded(&h.sync().await);
    assert_eq!(logs.count("bot_active_again"), 1);
    assert_eq!(logs.count("bot_quiet"), 1);
    assert!(!quiet_in_view(&h, BOT_A).await);
    assert_eq!(gauge(BOT_A).as_deref(), Some("0"));
}
