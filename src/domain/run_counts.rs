use std::ops::AddAssign;

/// What one sync run did, as counted for the run ledger, the logs and the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub windows: u64,
    pub pages: u64,
    pub requests: u64,
    pub retries: u64,
    pub rereads: u64,
    pub fetched: u64,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Leads received that match a tombstone of `leadsync forget`: not stored.
    pub forgotten: u64,
    /// Leads received older than `retention.max_age_days`: not stored.
    pub expired: u64,
    pub incomplete_windows: u64,
}

/// How a batch of leads landed in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    /// Already stored with the same content: not rewritten.
    pub unchanged: u64,
    /// Not stored: erased by `leadsync forget`.
    pub forgotten: u64,
    /// Not stored: older than `retention.max_age_days`.
    pub expired: u64,
}

impl AddAssign<UpsertCounts> for RunCounts {
    fn add_assign(&mut self, batch: UpsertCounts) {
        self.inserted += batch.inserted;
        self.updated += batch.updated;
        self.unchanged += batch.unchanged;
        self.forgotten += batch.forgotten;
        self.expired += batch.expired;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_adds_every_one_of_its_counts_to_the_run() {
        let mut run = RunCounts {
            unchanged: 1,
            ..RunCounts::default()
        };
        run += UpsertCounts {
            inserted: 2,
            updated: 3,
            unchanged: 4,
            forgotten: 5,
            expired: 6,
        };
        assert_eq!(
            (
                run.inserted,
                run.updated,
                run.unchanged,
                run.forgotten,
                run.expired
            ),
            (2, 3, 5, 5, 6)
        );
    }
}
