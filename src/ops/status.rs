use std::fmt::Write as _;

use anyhow::Context as _;

use serde::Serialize;

use crate::{
    config::{BotSettings, Config},
    domain::{BeliefSummary, BotUid},
    store::{self, BotStatus, Pool},
};

/// One bot's line of `leadsync status`: its sync state, what was learned about the API for it,
/// and the lookback its next run plans with (the configured one, or more when learned).
#[derive(Serialize)]
struct StatusRow {
    /// The configured `name`, for people (`null` when none).
    name: Option<String>,
    #[serde(flatten)]
    status: BotStatus,
    api: BeliefSummary,
    lookback_days: u32,
}

/// `leadsync status` (and `state show`): the state of the configured bots in `only` (every
/// one when empty), as a table or as JSON.
pub async fn status(
    config: &Config,
    pool: &Pool,
    only: &[BotUid],
    json: bool,
) -> anyhow::Result<String> {
    let shown = |bot: &&BotSettings| only.is_empty() || only.contains(&bot.uid);
    let bots: Vec<&BotSettings> = config.bots.iter().filter(shown).collect();
    let mut rows = Vec::with_capacity(bots.len());
    for bot in &bots {
        let status = store::bot_status(pool, &bot.uid)
            .await
            .context("reading the sync state")?;
        let beliefs = store::load_beliefs(pool, &bot.uid)
            .await
            .context("reading what was learned about the API")?;
        rows.push(StatusRow {
            name: bot.name.clone(),
            status,
            api: beliefs.summary(),
            lookback_days: beliefs.lookback_days(config.sync.plan.lookback_days),
        });
    }
    if json {
        return Ok(serde_json::to_string_pretty(&rows)? + "\n");
    }
    Ok(table(&bots, &rows))
}

fn table(bots: &[&BotSettings], rows: &[StatusRow]) -> String {
    let mut out = String::new();
    for (bot, full) in bots.iter().zip(rows) {
        let row = &full.status;
        let when = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map_or_else(
                || "-".to_owned(),
                |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            )
        };
        let _ = writeln!(
            out,
            "{}{}",
            row.bot_uid,
            bot.name
                .as_ref()
                .map(|name| format!(" ({name})"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "  leads stored      {}", row.leads);
        let _ = writeln!(out, "  high-water mark   {}", when(row.high_water_mark));
        let _ = writeln!(
            out,
            "  resume point      {}",
            row.resume_from
                .map_or_else(|| "-".to_owned(), |day| day.to_string())
        );
        match row.last_run_id {
            Some(id) => {
                let _ = writeln!(
                    out,
                    "  last run          {} {} {id}, started {}",
                    row.last_run_kind.as_deref().unwrap_or("-"),
                    row.last_run_status.as_deref().unwrap_or("-"),
                    when(row.last_run_started_at)
                );
            }
            None => {
                let _ = writeln!(out, "  last run          never");
            }
        }
        if row.last_run_id.is_some() {
            let _ = writeln!(
                out,
                "  last run counts   requests {} inserted {} updated {} unchanged {} rejected {}",
                row.last_run_requests.unwrap_or(0),
                row.last_run_inserted.unwrap_or(0),
                row.last_run_updated.unwrap_or(0),
                row.last_run_unchanged.unwrap_or(0),
                row.last_run_rejected.unwrap_or(0)
            );
        }
        let _ = writeln!(out, "  last success      {}", when(row.last_success_at));
        let _ = writeln!(out, "  rejected records  {}", row.rejected);
        let _ = writeln!(
            out,
            "  last error        {}",
            row.last_error.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "  api learned       {}",
            describe(&full.api, full.lookback_days)
        );
    }
    out
}

/// What was learned about the API for a bot, on one line (also `leadsync check`).
pub fn describe(api: &BeliefSummary, lookback_days: u32) -> String {
    format!(
        "total {}, order {}, end_date {}, page size {}{}, leads seen up to {} h early and {} h late, lookback {} d",
        api.total,
        api.order,
        api.end_date,
        api.served_page_size.map_or_else(
            || "as asked or reported".to_owned(),
            |size| format!("{size} (silent clamp)")
        ),
        if api.ignores_page {
            ", page ignored"
        } else {
            ""
        },
        api.early_hours,
        api.late_hours,
        lookback_days
    )
}
