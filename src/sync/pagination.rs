use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
};

use crate::{chatof::LeadsPage, domain::plausible};

/// Why a listing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// An empty page.
    Empty,
    /// A page shorter than the page size the server serves, with nothing missing.
    Short,
    /// A page of nothing but records already seen: the server is not paging.
    Repeats,
    /// Past what a trusted `total` allows: the listing cannot be what it says.
    PageLimit,
    /// More records than any window should hold: a listing that never ends.
    RecordCap,
    /// Far past the trusted total (twice it, and two pages more): a listing that never ends.
    PastTotal,
    /// A newest-first listing passed below what earlier runs covered.
    Covered,
}

impl End {
    /// The listing ran out by itself (an empty or short page), rather than being cut.
    pub(super) fn ran_out(self) -> bool {
        matches!(self, Self::Empty | Self::Short)
    }
}

/// How a pass decides where a listing ends: what it knows of the server.
#[derive(Clone, Copy, Debug)]
pub(super) struct PassRules {
    /// The page size asked for.
    pub(super) asked_page_size: u32,
    /// The page size the server is believed to serve without saying so (a silent clamp).
    pub(super) served_page_size: Option<u32>,
    /// Whether `total` counts this listing (then it bounds the pages and proves the count).
    pub(super) trust_total: bool,
    /// At most this many records are read, whatever the server says.
    pub(super) record_cap: u64,
}

/// One pass over a listing's pages, and the rules that say where the listing ends.
///
/// The API pages by offset in an undocumented order, so the listing can shift while it is read
/// (a lead arriving pushes every later record one place down). Hence: read until a page comes
/// back empty, or short with nothing missing; never stop just because `total` says so; count
/// the distinct records seen against the largest `total` reported when it counts the listing;
/// and stop, whatever else, past `record_cap` records.
#[derive(Debug)]
pub(super) struct Pass {
    rules: PassRules,
    seen: Keys,
    records: u64,
    max_total: Option<u64>,
    totals_differ: bool,
    longest_page: usize,
}

impl Pass {
    pub(super) fn new(rules: PassRules) -> Self {
        Self {
            rules,
            seen: HashSet::new(),
            records: 0,
            max_total: None,
            totals_differ: false,
            longest_page: 0,
        }
    }

    /// Distinct records seen so far (leads by uid, rejected records by uid or payload).
    pub(super) fn seen(&self) -> u64 {
        self.seen.len() as u64
    }

    /// The keys of the records seen.
    pub(super) fn keys(&self) -> &Keys {
        &self.seen
    }

    pub(super) fn into_keys(self) -> Keys {
        self.seen
    }

    /// The largest plausible `total` the server reported, if it reported any.
    pub(super) fn total(&self) -> Option<u64> {
        self.max_total
    }

    /// Every page reported the same total (or none did).
    pub(super) fn steady(&self) -> bool {
        !self.totals_differ
    }

    /// Fewer distinct records seen than a trusted total says there are.
    pub(super) fn missing(&self) -> bool {
        self.rules.trust_total && self.max_total.is_some_and(|total| self.seen() < total)
    }

    /// Notes what `page` (number `page_number`) adds; `Some` when it is the listing's last.
    pub(super) fn take_in(&mut self, page: &LeadsPage, page_number: u32) -> Option<End> {
        if let Some(total) = plausible(page.total) {
            if self.max_total.is_some_and(|max| max != total) {
                self.totals_differ = true;
            }
            self.max_total = Some(self.max_total.map_or(total, |max| max.max(total)));
        }
        self.longest_page = self.longest_page.max(page.records.len());
        let mut new_records = 0;
        for record in &page.records {
            if self.seen.insert(record_key(record)) {
                new_records += 1;
            }
        }
        let len = page.records.len();
        self.records += len as u64;
        // Trust the page size the server reports; it may clamp what we asked for. Without it,
        // a page shorter than asked may be a silent clamp rather than the end: a clamp seen
        // often enough to be believed, or a trusted total, can tell; otherwise only an empty
        // page ends the listing.
        let short = match (page.page_size, self.rules.served_page_size) {
            (Some(size), _) => len < size as usize,
            (None, Some(served)) => len < served as usize,
            (None, None) => {
                self.rules.trust_total
                    && self.max_total.is_some()
                    && len < self.rules.asked_page_size as usize
            }
        };
        if len == 0 {
            Some(End::Empty)
        } else if short && !self.missing() {
            Some(End::Short)
        } else if new_records == 0 && page_number > 1 {
            Some(End::Repeats)
        } else if page_number >= self.page_limit() {
            Some(End::PageLimit)
        } else if self.far_past_total() {
            Some(End::PastTotal)
        } else if self.records >= self.rules.record_cap {
            Some(End::RecordCap)
        } else {
            None
        }
    }

    /// Read twice the trusted total and two pages more: the listing is not what its total
    /// says (one that never ends), not merely shifted or lagging.
    fn far_past_total(&self) -> bool {
        self.rules.trust_total
            && self.max_total.is_some_and(|total| {
                self.seen() > total.saturating_mul(2) + 2 * u64::from(self.rules.asked_page_size)
            })
    }

    /// Past this many pages the listing cannot be what a trusted `total` says: stop rather
    /// than loop. A `total` already exceeded is plainly wrong, and bounds nothing.
    fn page_limit(&self) -> u32 {
        match self.max_total {
            Some(total) if self.rules.trust_total && total >= self.seen() => {
                let per_page = self.longest_page.max(1) as u64;
                u32::try_from(total.div_ceil(per_page) + 2).unwrap_or(u32::MAX)
            }
            _ => u32::MAX,
        }
    }
}

/// What identifies a record within a listing: a 64-bit hash of its `conversation_uid` (or, for a
/// record without one, of its payload). A window keeps one per record it read, and up to two
/// windows' worth are held at once, so a hash instead of the uid keeps a run's memory flat
/// however large its windows are. Two uids sharing a hash (odds of about 1 in 10^10 for a
/// window of 80,000 records) would only make a count look one short: a re-read, never a lead
/// lost, since leads are stored by their full uid.
pub(super) type RecordKey = u64;

/// The keys of a listing's records.
pub(super) type Keys = HashSet<RecordKey>;

pub(super) fn record_key(
    record: &Result<crate::domain::Lead, crate::domain::RejectedLead>,
) -> RecordKey {
    let mut hasher = DefaultHasher::new();
    match record {
        Ok(lead) => lead.conversation_uid.hash(&mut hasher),
        Err(rejected) => match &rejected.conversation_uid {
            Some(uid) => uid.hash(&mut hasher),
            None => {
                // Not a uid: the raw payload, marked so it cannot equal one.
                0xffu8.hash(&mut hasher);
                rejected.raw.to_string().hash(&mut hasher);
            }
        },
    }
    hasher.finish()
}

/// The keys of one page's records.
pub(super) fn page_keys(page: &LeadsPage) -> Keys {
    page.records.iter().map(record_key).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{BotUid, Lead};

    fn page(uids: &[&str], page_size: Option<u32>, total: Option<u64>) -> LeadsPage {
        let bot = BotUid::parse("b").expect("uid");
        LeadsPage {
            records: uids
                .iter()
                .map(|uid| {
                    Lead::from_raw(
                        &bot,
                        json!({"conversation_uid": uid, "created_at": "2024-01-01T00:00:00Z"}),
                    )
                })
                .collect(),
            page_size,
            total,
            request_id: None,
            bytes: 0,
        }
    }

    fn rules(asked: u32) -> PassRules {
        PassRules {
            asked_page_size: asked,
            served_page_size: None,
            trust_total: true,
            record_cap: 1_000,
        }
    }

    fn uids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    #[test]
    fn a_short_page_ends_the_listing_only_when_nothing_is_missing() {
        let mut pass = Pass::new(rules(2));
        assert_eq!(pass.take_in(&page(&["a", "b"], Some(2), Some(4)), 1), None);
        // A lead arrived: the page is short of the new total, so read on.
        assert_eq!(pass.take_in(&page(&["c"], Some(2), Some(5)), 2), None);
        assert!(pass.missing());
        assert!(!pass.steady());
        assert_eq!(
            pass.take_in(&page(&[], Some(2), Some(5)), 3),
            Some(End::Empty)
        );
        let mut pass = Pass::new(rules(2));
        pass.take_in(&page(&["a", "b"], Some(2), Some(3)), 1);
        assert_eq!(
            pass.take_in(&page(&["c"], Some(2), Some(3)), 2),
            Some(End::Short)
        );
        assert!(pass.steady() && !pass.missing());
        assert_eq!(pass.seen(), 3);
    }

    #[test]
    fn without_a_reported_page_size_a_clamp_is_not_taken_for_the_end() {
        let thirty = uids("l", 30);
        let thirty: Vec<&str> = thirty.iter().map(String::as_str).collect();
        let mut pass = Pass::new(rules(100));
        // Asked for 100, got 30 with no page size and no total: maybe a silent clamp.
        assert_eq!(pass.take_in(&page(&thirty, None, None), 1), None);
        assert_eq!(pass.take_in(&page(&[], None, None), 2), Some(End::Empty));
        // With a total that counts the listing, a page short of what was asked ends it.
        let mut pass = Pass::new(rules(100));
        assert_eq!(
            pass.take_in(&page(&thirty, None, Some(30)), 1),
            Some(End::Short)
        );
        // With a clamp believed, a page shorter than it ends the listing, total or not.
        let mut pass = Pass::new(PassRules {
            served_page_size: Some(30),
            trust_total: false,
            ..rules(100)
        });
        assert_eq!(pass.take_in(&page(&thirty, None, None), 1), None);
        assert_eq!(pass.take_in(&page(&["x"], None, None), 2), Some(End::Short));
        // A page exactly as long as the clamp is full: not the end.
        let mut pass = Pass::new(PassRules {
            served_page_size: Some(30),
            trust_total: false,
            ..rules(100)
        });
        let mut first = thirty.clone();
        first.truncate(29);
        first.push("y");
        assert_eq!(pass.take_in(&page(&first, None, None), 1), None);
    }

    #[test]
    fn a_page_of_repeats_ends_a_listing_that_ignores_the_page_number() {
        let mut pass = Pass::new(rules(2));
        assert_eq!(pass.take_in(&page(&["a", "b"], Some(2), None), 1), None);
        assert_eq!(
            pass.take_in(&page(&["a", "b"], Some(2), None), 2),
            Some(End::Repeats)
        );
    }

    #[test]
    fn a_listing_that_never_ends_is_cut_off_past_what_its_total_allows() {
        // Every page repeats one record and adds one: never empty, never short, never all
        // repeats. With a total of 10 at 2 per page, page 7 (5 pages + 2 of slack) is the last.
        let mut pass = Pass::new(rules(2));
        let mut last_page = None;
        for number in 1..=20 {
            let new = format!("n{number}");
            if let Some(end) = pass.take_in(&page(&["same", &new], Some(2), Some(10)), number) {
                last_page = Some((number, end));
                break;
            }
        }
        assert_eq!(last_page, Some((7, End::PageLimit)));
        assert!(
            pass.missing(),
            "the count says the window must be read again"
        );
    }

    #[test]
    fn without_a_trusted_total_the_record_cap_ends_a_listing_that_never_ends() {
        let mut pass = Pass::new(PassRules {
            trust_total: false,
            record_cap: 10,
            ..rules(2)
        });
        let mut ended = None;
        for number in 1..=20 {
            let (a, b) = (format!("a{number}"), format!("b{number}"));
            // An absurd total counts as none.
            if let Some(end) = pass.take_in(&page(&[&a, &b], Some(2), Some(u64::MAX)), number) {
                ended = Some((number, end));
                break;
            }
        }
        assert_eq!(ended, Some((5, End::RecordCap)));
        assert_eq!(pass.total(), None);
        assert!(!pass.missing(), "an untrusted total proves no shortfall");
        assert!(!End::RecordCap.ran_out() && End::Short.ran_out() && End::Empty.ran_out());
        assert_eq!(pass.keys().len(), 10);
    }

    #[test]
    fn a_listing_far_past_its_trusted_total_is_cut_there() {
        // A total of 2 at 2 a page: 2 * 2 + 2 pages of 2 = 8 records, then it is cut.
        let mut pass = Pass::new(rules(2));
        let mut ended = None;
        for number in 1..=20 {
            let (a, b) = (format!("a{number}"), format!("b{number}"));
            if let Some(end) = pass.take_in(&page(&[&a, &b], Some(2), Some(2)), number) {
                ended = Some((number, end));
                break;
            }
        }
        assert_eq!(ended, Some((5, End::PastTotal)));
        assert_eq!(pass.seen(), 10);
    }

    #[test]
    fn records_are_told_apart_by_uid_or_else_by_payload() {
        let bot = BotUid::parse("b").expect("uid");
        let record = |raw: serde_json::Value| Lead::from_raw(&bot, raw);
        let lead = record(json!({"conversation_uid": "c1", "created_at": "2024-01-01T00:00:00Z"}));
        let edited = record(
            json!({"conversation_uid": "c1", "created_at": "2024-01-01T00:00:00Z", "name": "x"}),
        );
        let other = record(json!({"conversation_uid": "c2", "created_at": "2024-01-01T00:00:00Z"}));
        assert_eq!(
            record_key(&lead),
            record_key(&edited),
            "one lead, whatever its fields"
        );
        assert_ne!(record_key(&lead), record_key(&other));
        // Without a uid: the payload is the identity.
        let broken =
            |remark: &str| record(json!({"created_at": "2024-01-01T00:00:00Z", "remark": remark}));
        assert!(broken("a").is_err());
        assert_eq!(record_key(&broken("a")), record_key(&broken("a")));
        assert_ne!(record_key(&broken("a")), record_key(&broken("b")));
        // A rejected record that has a uid counts as that uid.
        let bad_time = record(json!({"conversation_uid": "c1", "created_at": "yesterday"}));
        assert!(bad_time.is_err());
        assert_eq!(record_key(&bad_time), record_key(&lead));
    }

    #[test]
    fn the_cut_past_a_total_allows_two_pages_of_the_size_asked_for() {
        // A total of 2 at 3 a page: cut once more than 2 * 2 + 2 * 3 = 10 were seen.
        let mut pass = Pass::new(rules(3));
        for number in 1..=3 {
            let records = uids(&format!("p{number}-"), 3);
            let records: Vec<&str> = records.iter().map(String::as_str).collect();
            assert_eq!(
                pass.take_in(&page(&records, Some(3), Some(2)), number),
                None
            );
        }
        // One new record and two repeats: 10 seen, not past the bound yet.
        assert_eq!(
            pass.take_in(&page(&["p4-0", "p1-0", "p1-1"], Some(3), Some(2)), 4),
            None
        );
        assert_eq!(pass.seen(), 10);
        assert_eq!(
            pass.take_in(&page(&["p5-0", "p5-1", "p5-2"], Some(3), Some(2)), 5),
            Some(End::PastTotal)
        );
    }

    #[test]
    fn a_full_page_is_not_the_end_even_when_the_total_is_reached_and_the_keys_are_kept() {
        // No page size reported: a page as long as asked is full, whatever the total says.
        let mut pass = Pass::new(rules(2));
        assert_eq!(pass.take_in(&page(&["a", "b"], None, Some(2)), 1), None);
        assert_eq!(pass.take_in(&page(&[], None, Some(2)), 2), Some(End::Empty));
        let expected = page_keys(&page(&["b", "a"], None, None));
        assert_eq!(pass.into_keys(), expected);
    }
}
