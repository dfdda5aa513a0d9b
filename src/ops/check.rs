use std::{collections::HashMap, fmt::Write as _, time::Duration};

use chrono::{Days, Utc};
use secrecy::SecretString;

use crate::{
    chatof::{ChatofClient, LeadsQuery},
    config::Config,
    domain::{BotUid, DayRange, TotalMeaning},
    store::{self, Pool},
};

/// `leadsync check`: the configuration is valid (it was loaded), the database answers, the
/// schema state is known, and each bot's key works (one page of one lead per bot). Returns the
/// report and whether everything passed.
pub async fn check(
    config: &Config,
    pool: &Pool,
    keys: &HashMap<BotUid, SecretString>,
) -> (String, bool) {
    let mut out = String::from("config: ok\n");
    let mut ok = true;
    let reached = crate::app::reach_database(config).await;
    match reached {
        Err(err) => {
            ok = false;
            let _ = writeln!(out, "database: FAILED: {}", crate::errors::describe(&err));
        }
        Ok(mut conn) => {
            match tokio::time::timeout(Duration::from_secs(10), store::pending_migrations(pool))
                .await
            {
                Ok(Ok(pending)) => {
                    let _ = writeln!(out, "database: ok");
                    match store::why_not_writable(&mut conn).await {
                        Ok(None) => {
                            let _ = writeln!(out, "database writes: ok");
                        }
                        Ok(Some(why)) => {
                            ok = false;
                            let _ = writeln!(out, "database writes: FAILED: {why}");
                        }
                        Err(err) => {
                            ok = false;
                            let _ = writeln!(
                                out,
                                "database writes: FAILED: {}",
                                crate::errors::describe_error(&err)
                            );
                        }
                    }
                    if pending.is_empty() {
                        let _ = writeln!(out, "migrations: up to date");
                    } else if config.database.migrate_on_start {
                        let _ = writeln!(
                            out,
                            "migrations: {} pending (applied at start: database.migrate_on_start = true)",
                            pending.len()
                        );
                    } else {
                        ok = false;
                        let _ = writeln!(
                            out,
                            "migrations: FAILED: {} pending and database.migrate_on_start = false: run `leadsync migrate`",
                            pending.len()
                        );
                    }
                }
                Ok(Err(err)) => {
                    ok = false;
                    let _ = writeln!(
                        out,
                        "database: FAILED: {}",
                        crate::errors::describe_error(&err)
                    );
                }
                Err(_) => {
                    ok = false;
                    let _ = writeln!(out, "database: FAILED: no answer within 10 s");
                }
            }
        }
    }
    let base = match ChatofClient::new(&config.api.client, SecretString::from(String::new())) {
        Ok(client) => client,
        Err(err) => {
            let _ = writeln!(out, "api: FAILED: cannot build the HTTP client: {err}");
            return (out, false);
        }
    };
    let today = Utc::now().date_naive();
    let query = LeadsQuery {
        range: DayRange::new(today, today + Days::new(1)),
        page: 1,
        page_size: 1,
    };
    for bot in &config.bots {
        let Some(key) = keys.get(&bot.uid) else {
            ok = false;
            let _ = writeln!(out, "bot {}: FAILED: no API key", bot.uid);
            continue;
        };
        // The normal retry policy: `check` is the unit's ExecStartPre, and one 503 must not
        // keep the daemon from starting.
        let client = base.with_key(key.clone());
        let mut attempts = 1_u64;
        let result = config
            .retry
            .run(
                || client.fetch_leads_page(&bot.uid, &query),
                |err, delay| {
                    crate::events::request_retried(attempts, err, delay);
                    attempts += 1;
                },
            )
            .await;
        match result {
            Ok(page) => {
                let beliefs = store::load_beliefs(pool, &bot.uid).await.ok();
                // Under a whole-chatbot total the number is not today's.
                let counted = match beliefs.as_ref().map(|b| b.total) {
                    Some(TotalMeaning::WholeBot) => "leads in all",
                    _ => "leads today",
                };
                let _ = writeln!(
                    out,
                    "bot {}: ok ({} {counted}{})",
                    bot.uid,
                    page.total
                        .map_or_else(|| "?".to_owned(), |total| total.to_string()),
                    page.request_id
                        .map(|id| format!(", request_id {id}"))
                        .unwrap_or_default()
                );
                if let Some(beliefs) = beliefs {
                    let _ = writeln!(
                        out,
                        "  api learned: {}",
                        super::status::describe(
                            &beliefs.summary(),
                            beliefs.lookback_days(config.sync.plan.lookback_days)
                        )
                    );
                }
            }
            Err(err) => {
                ok = false;
                let _ = writeln!(out, "bot {}: FAILED: {err}", bot.uid);
                if let Some(hint) = err.hint() {
                    let _ = writeln!(out, "  GET {}: {hint}", base.leads_url(&bot.uid));
                }
            }
        }
    }
    (out, ok)
}
