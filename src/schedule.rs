//! Cron schedules, as tokio-cron-scheduler reads them (six fields, seconds first, UTC), parsed
//! once at the edge so a bad expression is a configuration error, and so the watchdog can
//! compute on its own when the next tick is due.

use std::fmt;

use chrono::{DateTime, Utc};
use croner::{Cron, parser::CronParser, parser::Seconds};

#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// `sec min hour day-of-month month day-of-week`, e.g. `0 */5 * * * *` (every five minutes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|err| {
                format!("{text:?} is not a cron expression with a seconds field ({err})")
            })?;
        Ok(Self {
            text: text.to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_fields_with_seconds_first() {
        let schedule = Schedule::parse("0 */5 * * * *").expect("valid");
        let at: DateTime<Utc> = "2024-01-01T10:02:30Z".parse().expect("time");
        assert_eq!(
            schedule.next_after(at),
            Some("2024-01-01T10:05:00Z".parse().expect("time"))
        );
        let every_two_seconds = Schedule::parse("*/2 * * * * *").expect("valid");
        assert_eq!(
            every_two_seconds.next_after(at),
            Some("2024-01-01T10:02:32Z".parse().expect("time"))
        );
    }

    #[test]
    fn five_field_and_garbage_expressions_are_refused() {
        assert!(Schedule::parse("*/5 * * * *").is_err());
        assert!(Schedule::parse("every minute").is_err());
    }
}
