//! Where in a tick's interval each bot's run starts: at a stable fraction of the interval,
//! taken from its uid. The runs of one schedule spread evenly over the interval instead of
//! all starting in the same second, and every replica places a bot at the same point.

use std::{hash::Hasher, time::Duration};

use siphasher::sip::SipHasher13;

use crate::domain::BotUid;

/// The share of the interval the starts are spread over: the rest is slack before the next
/// tick.
const SPREAD: f64 = 0.9;

/// A bot's place in `[0, 1)`: the same for a uid on every replica and in every release
/// (SipHash-1-3 with fixed keys, unlike `DefaultHasher`).
pub fn fraction(uid: &str) -> f64 {
    let mut hasher = SipHasher13::new();
    hasher.write(uid.as_bytes());
    // The top 53 bits: exactly representable, uniform in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The bots of one schedule in the order their runs start.
#[derive(Debug)]
pub struct Spread {
    bots: Vec<(f64, BotUid)>,
}

impl Spread {
    pub fn new(bots: impl IntoIterator<Item = BotUid>) -> Self {
        let mut bots: Vec<(f64, BotUid)> = bots
            .into_iter()
            .map(|bot| (fraction(bot.as_str()), bot))
            .collect();
        bots.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self { bots }
    }

    /// Each bot with when its run starts after a tick, `interval` being the time until the
    /// next one: earliest first, all within the first 90 % of the interval.
    pub fn starts(&self, interval: Duration) -> impl Iterator<Item = (Duration, &BotUid)> {
        self.bots
            .iter()
            .map(move |(place, bot)| (interval.mul_f64(place * SPREAD), bot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bots(count: usize) -> Vec<BotUid> {
        (0..count)
            .map(|i| BotUid::parse(&format!("bot-{i:05}")).expect("uid"))
            .collect()
    }

    #[test]
    fn a_bot_has_the_same_place_on_every_replica_and_in_every_release() {
        // SipHash-1-3 of the uid, keys 0: pinned, since a change of hash would move every
        // bot's start at an upgrade and make replicas of two releases disagree.
        let place = fraction("bot-00000");
        assert!((place - 0.532_173_03).abs() < 1e-8, "{place}");
        assert_ne!(fraction("bot-00000"), fraction("bot-00001"));
    }

    #[test]
    fn ten_thousand_bots_start_evenly_over_the_first_nine_tenths_in_order() {
        let spread = Spread::new(bots(10_000));
        let interval = Duration::from_secs(300);
        let starts: Vec<Duration> = spread.starts(interval).map(|(at, _)| at).collect();
        assert_eq!(starts.len(), 10_000);
        assert!(starts.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(*starts.last().expect("a start") < interval.mul_f64(0.9));
        // Every 27 s (a tenth of the spread) holds about a tenth of the starts.
        let mut tenths = [0usize; 10];
        for at in &starts {
            tenths[(at.as_secs_f64() / 27.0) as usize] += 1;
        }
        for count in tenths {
            assert!((850..=1150).contains(&count), "{tenths:?}");
        }
        // And no second holds more than a few dozen.
        let mut per_second = std::collections::HashMap::<u64, usize>::new();
        for at in &starts {
            *per_second.entry(at.as_secs()).or_default() += 1;
        }
        assert!(
            per_second.values().all(|&count| count < 70),
            "{per_second:?}"
        );
    }

    #[test]
    fn every_bot_starts_once_a_tick() {
        let all = bots(50);
        let spread = Spread::new(all.clone());
        let mut started: Vec<&BotUid> = spread
            .starts(Duration::from_secs(1))
            .map(|(_, bot)| bot)
            .collect();
        started.sort();
        let mut expected: Vec<&BotUid> = all.iter().collect();
        expected.sort();
        assert_eq!(started, expected);
    }
}
