use std::collections::{BTreeMap, HashSet};

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::{
    chatof::ChatofClient,
    domain::{ApiBeliefs, BotUid, DayRange},
    events, store,
    sync::{SyncContext, SyncError, list_leads},
};

/// One UTC day whose copy differs from the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayDrift {
    pub day: NaiveDate,
    /// Leads the API lists for that day.
    pub api: usize,
    /// Rows stored for that day.
    pub stored: usize,
    /// Listed by the API, not stored (a lost or deleted row, or a late arrival not synced yet).
    pub missing: usize,
    /// Stored, no longer listed by the API (deleted at the source): marked
    /// `source_missing_since`, never deleted, and not a difference by themselves.
    pub gone: usize,
}

/// Compares, for each of the last `days` UTC days up to `today`, the leads the API lists with
/// the rows stored, lead by lead. The API's day filter has an undocumented time zone and may
/// select on when a conversation started, so its own per-day `total` cannot be matched to UTC
/// days: the range is read with the margins the sync uses (a day on each side, more when
/// leads were seen listed outside their range, see [`ApiBeliefs`]) and bucketed by each lead's
/// `created_at` instead. Logs one `verify_day_drifted` per day that differs. A lead the sync
/// would not store (erased by `forget`, or older than `retention.max_age_days`) is not
/// expected in the copy. A stored lead the API no longer lists is marked
/// `source_missing_since` (and the mark cleared once it is listed again): not a difference.
pub async fn verify_bot(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    days: u32,
    today: NaiveDate,
) -> Result<Vec<DayDrift>, SyncError> {
    let beliefs = store::load_beliefs(&ctx.pool, bot).await?;
    let first = today - Days::new(u64::from(days.max(1)) - 1);
    let tomorrow = today + Days::new(1);
    let read = margins(&beliefs).around(first, today);
    let listed = list_leads(ctx, client, bot, read, &beliefs).await?;
    // Erased, past retention or another bot's: listed by the API, rightly absent from the copy.
    let unstorable =
        store::unstorable_conversations(&ctx.pool, bot, &listed.values().collect::<Vec<_>>())
            .await?;
    let stored = store::lead_keys_between(&ctx.pool, bot, first, tomorrow).await?;

    let mut by_day: BTreeMap<NaiveDate, (HashSet<String>, HashSet<String>)> = BTreeMap::new();
    let mut day = first;
    while day <= today {
        by_day.insert(day, Default::default());
        day = day + Days::new(1);
    }
    for lead in listed
        .values()
        .filter(|lead| !unstorable.contains(&lead.conversation_uid))
    {
        if let Some((api, _)) = by_day.get_mut(&lead.created_at.date_naive()) {
            api.insert(lead.conversation_uid.clone());
        }
    }
    for (uid, created_at) in stored {
        if let Some((_, db)) = by_day.get_mut(&created_at.date_naive()) {
            db.insert(uid);
        }
    }
    let gone: Vec<&str> = by_day
        .values()
        .flat_map(|(api, db)| db.difference(api))
        .map(String::as_str)
        .collect();
    let still: Vec<&str> = by_day
        .values()
        .flat_map(|(api, db)| api.intersection(db))
        .map(String::as_str)
        .collect();
    let (marked, back) = store::mark_source_missing(&ctx.pool, bot, &gone, &still).await?;
    if marked + back > 0 {
        events::leads_gone_at_source(bot, marked, back);
    }
    let drifts: Vec<DayDrift> = by_day
        .into_iter()
        .filter_map(|(day, (api, db))| {
            let missing = api.difference(&db).count();
            (missing > 0).then(|| DayDrift {
                day,
                api: api.len(),
                stored: db.len(),
                missing,
                gone: db.difference(&api).count(),
            })
        })
        .collect();
    for drift in &drifts {
        events::verify_day_drifted(
            bot,
            drift.day,
            drift.api,
            drift.stored,
            drift.missing,
            drift.gone,
        );
    }
    Ok(drifts)
}

/// How many days before and after a run of UTC days the API must be asked for, to list every
/// lead created on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Margins {
    pub before: u32,
    pub after: u32,
}

impl Margins {
    /// The API range listing every lead created from `first` to `last` (UTC days).
    pub fn around(self, first: NaiveDate, last: NaiveDate) -> DayRange {
        DayRange::new(
            first - Days::new(u64::from(self.before)),
            last + Days::new(u64::from(self.after.max(1))),
        )
        .expect("first <= last")
    }
}

/// The margins the sync's beliefs call for: at least a day each side.
pub fn margins(beliefs: &ApiBeliefs) -> Margins {
    Margins {
        before: beliefs.late_margin_days(),
        after: beliefs.early_margin_days(),
    }
}

/// The ranges to re-sync for `drifts`: each run of consecutive days, with the margins on
/// each side.
pub fn repair_ranges(drifts: &[DayDrift], margins: Margins) -> Vec<DayRange> {
    let mut ranges: Vec<DayRange> = Vec::new();
    for drift in drifts {
        let DayRange { start, end } = margins.around(drift.day, drift.day);
        match ranges.last_mut() {
            Some(last) if start <= last.end => last.end = last.end.max(end),
            _ => ranges.push(DayRange::new(start, end).expect("start < end")),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(day: &str) -> DayDrift {
        DayDrift {
            day: day.parse().expect("date"),
            api: 1,
            stored: 0,
            missing: 1,
            gone: 0,
        }
    }

    #[test]
    fn consecutive_drifted_days_are_repaired_in_one_range_with_margins() {
        let one_day = Margins {
            before: 1,
            after: 1,
        };
        let ranges = repair_ranges(
            &[
                drift("2024-01-02"),
                drift("2024-01-03"),
                drift("2024-01-07"),
            ],
            one_day,
        );
        let day = |text: &str| text.parse::<NaiveDate>().expect("date");
        assert_eq!(
            ranges,
            [
                DayRange::new(day("2024-01-01"), day("2024-01-04")).expect("range"),
                DayRange::new(day("2024-01-06"), day("2024-01-08")).expect("range"),
            ]
        );
    }

    #[test]
    fn a_learned_lag_widens_what_verify_and_repair_read() {
        let day = |text: &str| text.parse::<NaiveDate>().expect("date");
        let mut beliefs = ApiBeliefs::default();
        assert_eq!(
            margins(&beliefs),
            Margins {
                before: 1,
                after: 1
            }
        );
        beliefs.observe_overflow(10 * 3600, 100 * 3600);
        let wide = margins(&beliefs);
        assert_eq!(
            wide,
            Margins {
                before: 6,
                after: 2
            }
        );
        assert_eq!(
            wide.around(day("2024-01-10"), day("2024-01-12")),
            DayRange::new(day("2024-01-04"), day("2024-01-14")).expect("range")
        );
        assert_eq!(
            repair_ranges(&[drift("2024-01-10")], wide),
            [DayRange::new(day("2024-01-04"), day("2024-01-12")).expect("range")]
        );
    }
}
