use std::collections::HashSet;

use crate::chatof::LeadsPage;

/// One pass over a listing's pages, and the rules that say where the listing ends.
///
/// The API pages by offset in an undocumented order, so the listing can shift while it is read
/// (a lead arriving pushes every later record one place down). Hence: read until a page comes
/// back empty, or short with nothing missing; never stop just because `total` says so; count
/// the distinct records seen against the largest `total` reported.
#[derive(Debug, Default)]
pub(super) struct Pass {
    seen: HashSet<String>,
    max_total: Option<u64>,
    longest_page: usize,
}

impl Pass {
    /// Distinct records seen so far (leads by uid, rejected records by uid or payload).
    pub(super) fn seen(&self) -> u64 {
        self.seen.len() as u64
    }

    /// The largest `total` the server reported, if it reported any.
    pub(super) fn total(&self) -> Option<u64> {
        self.max_total
    }

    /// Fewer distinct records seen than the server says there are.
    pub(super) fn missing(&self) -> bool {
        self.max_total.is_some_and(|total| self.seen() < total)
    }

    /// Notes what `page` (number `page_number`, asked with `asked_page_size`) adds, and says
    /// whether it is the listing's last page.
    pub(super) fn take_in(
        &mut self,
        page: &LeadsPage,
        page_number: u32,
        asked_page_size: u32,
    ) -> bool {
        if let Some(total) = page.total {
            self.max_total = Some(self.max_total.map_or(total, |max| max.max(total)));
        }
        self.longest_page = self.longest_page.max(page.records.len());
        let mut new_records = 0;
        for record in &page.records {
            let key = match record {
                Ok(lead) => lead.conversation_uid.clone(),
                Err(rejected) => match &rejected.conversation_uid {
                    Some(uid) => uid.clone(),
                    None => format!("raw:{}", rejected.raw),
                },
            };
            if self.seen.insert(key) {
                new_records += 1;
            }
        }
        let len = page.records.len();
        // Trust the page size the server reports; it may clamp what we asked for. Without it,
        // a page shorter than asked may be a silent clamp rather than the end: only a known
        // total can tell, and without one only an empty page ends the listing.
        let short = match (page.page_size, self.max_total) {
            (Some(size), _) => len < size as usize,
            (None, Some(_)) => len < asked_page_size as usize,
            (None, None) => false,
        };
        len == 0
            || (short && !self.missing())
            // A page of nothing but repeats: the server is not paging (or ignores `page`).
            || (new_records == 0 && page_number > 1)
            || page_number >= self.page_limit()
    }

    /// Past this many pages the listing cannot be what `total` says: stop rather than loop.
    /// A `total` already exceeded is plainly wrong, and bounds nothing.
    fn page_limit(&self) -> u32 {
        match self.max_total {
            Some(total) if total >= self.seen() => {
                let per_page = self.longest_page.max(1) as u64;
                u32::try_from(total.div_ceil(per_page) + 2).unwrap_or(u32::MAX)
            }
            _ => u32::MAX,
        }
    }
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
        }
    }

    #[test]
    fn a_short_page_ends_the_listing_only_when_nothing_is_missing() {
        let mut pass = Pass::default();
        assert!(!pass.take_in(&page(&["a", "b"], Some(2), Some(4)), 1, 2));
        // A lead arrived: the page is short of the new total, so read on.
        assert!(!pass.take_in(&page(&["c"], Some(2), Some(5)), 2, 2));
        assert!(pass.missing());
        assert!(
            pass.take_in(&page(&[], Some(2), Some(5)), 3, 2),
            "an empty page ends it"
        );
    }

    #[test]
    fn without_a_reported_page_size_a_clamp_is_not_taken_for_the_end() {
        let mut pass = Pass::default();
        // Asked for 100, got 30 with no page size and no total: maybe a silent clamp.
        let thirty: Vec<String> = (0..30).map(|i| format!("l{i}")).collect();
        let uids: Vec<&str> = thirty.iter().map(String::as_str).collect();
        assert!(!pass.take_in(&page(&uids, None, None), 1, 100));
        assert!(pass.take_in(&page(&[], None, None), 2, 100));
    }

    #[test]
    fn a_page_of_repeats_ends_a_listing_that_ignores_the_page_number() {
        let mut pass = Pass::default();
        assert!(!pass.take_in(&page(&["a", "b"], Some(2), None), 1, 2));
        assert!(pass.take_in(&page(&["a", "b"], Some(2), None), 2, 2));
    }

    #[test]
    fn a_listing_that_never_ends_is_cut_off_past_what_its_total_allows() {
        // Every page repeats one record and adds one: never empty, never short, never all
        // repeats. With a total of 10 at 2 per page, page 7 (5 pages + 2 of slack) is the last.
        let mut pass = Pass::default();
        let mut last_page = None;
        for number in 1..=20 {
            let new = format!("n{number}");
            if pass.take_in(&page(&["same", &new], Some(2), Some(10)), number, 2) {
                last_page = Some(number);
                break;
            }
        }
        assert_eq!(last_page, Some(7));
        assert!(
            pass.missing(),
            "the count says the window must be read again"
        );
    }
}
