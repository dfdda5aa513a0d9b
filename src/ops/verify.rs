use std::collections::{BTreeMap, HashSet};

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::{
    chatof::ChatofClient,
    domain::{BotUid, DayRange},
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
    /// Stored, no longer listed by the API (deleted at the source; a repair does not delete).
    pub extra: usize,
}

/// Compares, for each of the last `days` UTC days up to `today`, the leads the API lists with
/// the rows stored, lead by lead. The API's day filter has an undocumented time zone, so its
/// own per-day `total` cannot be matched to UTC days: the range is read with a day of margin on
/// each side and bucketed by each lead's `created_at` instead. Logs one `verify_day_drifted`
/// per day that differs. A lead the sync would not store (erased by `forget`, or older than
/// `retention.max_age_days`) is not expected in the copy.
pub async fn verify_bot(
    ctx: &SyncContext,
    client: &ChatofClient,
    bot: &BotUid,
    days: u32,
    today: NaiveDate,
) -> Result<Vec<DayDrift>, SyncError> {
    let first = today - Days::new(u64::from(days.max(1)) - 1);
    let tomorrow = today + Days::new(1);
    let read = DayRange::new(first - Days::new(1), tomorrow).expect("first <= today");
    let listed = list_leads(ctx, client, bot, read).await?;
    // Erased or past retention: listed by the API, rightly absent from the copy.
    let unstorable =
        store::unstorable_conversations(&ctx.pool, &listed.values().collect::<Vec<_>>()).await?;
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
    let drifts: Vec<DayDrift> = by_day
        .into_iter()
        .filter_map(|(day, (api, db))| {
            let missing = api.difference(&db).count();
            let extra = db.difference(&api).count();
            (missing + extra > 0).then_some(DayDrift {
                day,
                api: api.len(),
                stored: db.len(),
                missing,
                extra,
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
            drift.extra,
        );
    }
    Ok(drifts)
}

/// The ranges to re-sync for `drifts`: each run of consecutive days, with a day of margin on
/// each side (the API's day filter zone is unknown).
pub fn repair_ranges(drifts: &[DayDrift]) -> Vec<DayRange> {
    let mut ranges: Vec<DayRange> = Vec::new();
    for drift in drifts {
        let start = drift.day - Days::new(1);
        let end = drift.day + Days::new(1);
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
            extra: 0,
        }
    }

    #[test]
    fn consecutive_drifted_days_are_repaired_in_one_range_with_margins() {
        let ranges = repair_ranges(&[
            drift("2024-01-02"),
            drift("2024-01-03"),
            drift("2024-01-07"),
        ]);
        let day = |text: &str| text.parse::<NaiveDate>().expect("date");
        assert_eq!(
            ranges,
            [
                DayRange::new(day("2024-01-01"), day("2024-01-04")).expect("range"),
                DayRange::new(day("2024-01-06"), day("2024-01-08")).expect("range"),
            ]
        );
    }
}
