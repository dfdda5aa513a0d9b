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
    pub incomplete_windows: u64,
}

/// How a batch of leads landed in the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl AddAssign<UpsertCounts> for RunCounts {
    fn add_assign(&mut self, batch: UpsertCounts) {
        self.inserted += batch.inserted;
        self.updated += batch.updated;
        self.unchanged += batch.unchanged;
    }
}
