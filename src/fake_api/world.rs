//! The model of the remote world behind the fake API: bots and their keys, the
//! leads each bot serves, server settings, scripted and random faults, pending
//! arrivals and holds, and the log of requests received.
//!
//! [`World`] is a cheap handle; the test and the running server share it, so a
//! test can change the world between (or during) the requests of a client.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, SubsecRound as _, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::faults::transient_faults;
pub use super::faults::{Fault, RetryAfter};
use super::synth;

/// The order in which the server lists leads (the real order is undocumented).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// `filed_at` descending, then `conversation_uid` descending.
    #[default]
    NewestFirst,
    /// `filed_at` ascending, then `conversation_uid` ascending.
    OldestFirst,
}

/// What `data.total` counts (API.md: "the total number of leads for this chatbot").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TotalMode {
    /// The leads matching the request's dates (the endpoint table's reading).
    #[default]
    Filtered,
    /// Every lead of the chatbot, whatever the dates (the endpoint prose's reading).
    WholeBot,
    /// `null`.
    Absent,
    /// The filtered count minus this many: a stale or lagging count.
    Lagging(u64),
    /// Always this value, however many leads there are (an absurd total).
    Fixed(u64),
}

/// What `start_date`/`end_date` select (API.md: "the date range for fetching conversations").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterOn {
    /// The lead's own `created_at`.
    #[default]
    CreatedAt,
    /// When the lead's conversation started: up to `max_lag` before `created_at` (each lead's
    /// lag is fixed by its uid, or set with [`FakeLead::with_conversation_start`]). The
    /// listing is still ordered by `created_at`.
    ConversationStart { max_lag: Duration },
}

/// The server behaviours the documentation leaves open.
#[derive(Clone, Debug)]
pub struct WorldSettings {
    /// `page_size` is clamped to this; the clamped value is what `data.page_size` reports.
    pub max_page_size: u32,
    pub order: Order,
    /// `false` models an API whose `end_date` excludes that day.
    pub end_date_inclusive: bool,
    /// The zone in which `start_date`/`end_date` days are interpreted.
    pub day_filter_offset: FixedOffset,
    /// `false` models a server that clamps silently: `data.page_size` is null.
    pub reports_page_size: bool,
    /// What `data.total` counts.
    pub total: TotalMode,
    /// What the day filter selects on.
    pub filter_on: FilterOn,
    /// `true` models a server that ignores `page` and always serves the first page.
    pub ignores_page: bool,
    /// `true` models a hostile server whose listing never ends: past the real leads, every
    /// page is full of made-up leads with new ids (never part of [`World::truth`]).
    pub endless: bool,
}

impl Default for WorldSettings {
    fn default() -> Self {
        WorldSettings {
            max_page_size: 50,
            order: Order::NewestFirst,
            end_date_inclusive: true,
            day_filter_offset: FixedOffset::east_opt(0).expect("zero is a valid offset"),
            reports_page_size: true,
            total: TotalMode::Filtered,
            filter_on: FilterOn::CreatedAt,
            ignores_page: false,
            endless: false,
        }
    }
}

/// A lead as the fake API serves it.
#[derive(Clone, Debug)]
pub struct FakeLead {
    /// The exact JSON object served, broken or not.
    pub raw: Value,
    /// When the lead was created. Day filtering and ordering use this, so a lead
    /// with a broken `raw.created_at` still has a place in the listing.
    pub filed_at: DateTime<Utc>,
    /// When its conversation started, if set explicitly; under
    /// [`FilterOn::ConversationStart`] the day filter selects on this.
    pub conversation_started_at: Option<DateTime<Utc>>,
}

impl FakeLead {
    /// A well-formed lead with plain ASCII text fields. `created_at` is cut to whole
    /// microseconds, the precision PostgreSQL keeps.
    pub fn new(bot_uid: &str, conversation_uid: &str, created_at: DateTime<FixedOffset>) -> Self {
        let created_at = created_at.trunc_subsecs(6);
        let raw = serde_json::json!({
            "bot_uid": bot_uid,
            "conversation_uid": conversation_uid,
            "created_at": created_at.to_rfc3339(),
            "email": "visitor@example.com",
            "name": "Test Visitor",
            "phone": "+1 555 0100",
            "remark": "Please call me back",
        });
        FakeLead {
            raw,
            filed_at: created_at.with_timezone(&Utc),
            conversation_started_at: None,
        }
    }

    /// Sets when the lead's conversation started (what a [`FilterOn::ConversationStart`] day
    /// filter selects on), instead of the lag derived from its uid.
    pub fn with_conversation_start(mut self, at: DateTime<Utc>) -> Self {
        self.conversation_started_at = Some(at);
        self
    }

    /// Sets one field of `raw`. Setting a parseable `created_at` also moves
    /// `filed_at`, as the server would re-file the lead; an unparseable one
    /// leaves `filed_at` alone (the lead becomes malformed but keeps its place).
    pub fn with_field(mut self, field: &str, value: Value) -> Self {
        if field == "created_at" {
            if let Some(at) = value.as_str().and_then(parse_created_at) {
                self.filed_at = at;
            }
        }
        if let Some(object) = self.raw.as_object_mut() {
            object.insert(field.to_owned(), value);
        }
        self
    }

    /// Removes one field of `raw` entirely (a key missing is not the same as `null`).
    pub fn without_field(mut self, field: &str) -> Self {
        if let Some(object) = self.raw.as_object_mut() {
            object.remove(field);
        }
        self
    }

    /// A lead with arbitrary JSON, typically one leadsync must reject.
    pub fn malformed(raw: Value, filed_at: DateTime<Utc>) -> Self {
        FakeLead {
            raw,
            filed_at,
            conversation_started_at: None,
        }
    }

    /// When the conversation started under a filter with this maximum lag: the explicit
    /// start, or `filed_at` minus a lag fixed by the uid (spread evenly over `0..=max_lag`).
    fn conversation_start(&self, max_lag: Duration) -> DateTime<Utc> {
        if let Some(at) = self.conversation_started_at {
            return at;
        }
        let max_ms = u64::try_from(max_lag.as_millis()).unwrap_or(u64::MAX);
        let lag_ms = match (self.conversation_uid(), max_ms) {
            (Some(uid), 1..) => fnv1a(uid.as_bytes()) % (max_ms + 1),
            _ => 0,
        };
        self.filed_at - chrono::TimeDelta::milliseconds(i64::try_from(lag_ms).unwrap_or(0))
    }

    /// The `conversation_uid` when it is a string (even an unusable one).
    pub fn conversation_uid(&self) -> Option<&str> {
        self.raw.get("conversation_uid").and_then(Value::as_str)
    }

    /// What leadsync must store for this lead when listed under `listed_under`,
    /// or `None` when leadsync must reject it as malformed.
    pub fn to_truth(&self, listed_under: &str) -> Option<TruthLead> {
        let object = self.raw.as_object()?;
        let conversation_uid = object.get("conversation_uid")?.as_str()?;
        if conversation_uid.trim().is_empty() {
            return None;
        }
        let created_at = parse_created_at(object.get("created_at")?.as_str()?)?;
        // Present means the key exists: `null` or a number is a mismatch too.
        if let Some(served_bot) = object.get("bot_uid") {
            if served_bot.as_str() != Some(listed_under) {
                return None;
            }
        }
        let text = |field: &str| match object.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        };
        let mut raw = self.raw.clone();
        replace_nul(&mut raw);
        Some(TruthLead {
            raw,
            conversation_uid: conversation_uid.to_owned(),
            bot_uid: listed_under.to_owned(),
            created_at,
            name: text("name"),
            email: text("email"),
            phone: text("phone"),
            remark: text("remark"),
        })
    }
}

/// A stable hash (FNV-1a), so a uid's lag is the same in every run.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn parse_created_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// A lead as leadsync must store it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruthLead {
    pub conversation_uid: String,
    pub bot_uid: String,
    pub created_at: DateTime<Utc>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub remark: Option<String>,
    /// The record as served, with U+0000 replaced by U+FFFD (PostgreSQL cannot store it).
    pub raw: Value,
}

fn replace_nul(value: &mut Value) {
    match value {
        Value::String(text) => *text = text.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut value)| {
                    replace_nul(&mut value);
                    (key.replace('\0', "\u{FFFD}"), value)
                })
                .collect();
        }
        _ => {}
    }
}

/// One request the server received. Query parameters are as sent (`page` and
/// `page_size` are `None` when absent or not a `u32`). `status` is 0 while the
/// request is still being answered; for `ConnectionReset` it is the 200 sent.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub bot_uid: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub page: Option<u32>,
    pub page_size: Option<u32>,
    pub status: u16,
    pub fault: Option<Fault>,
    /// When the request reached the server.
    pub received_at: std::time::Instant,
    /// The `request_id` of the answer (none while unanswered, or for faults without one).
    pub request_id: Option<String>,
    /// Leads the answer listed (0 for a fault or a refusal).
    pub records: usize,
}

/// Holds one request until released; see [`World::hold_page`].
#[derive(Clone, Debug)]
pub struct Gate {
    signals: Arc<GateSignals>,
}

#[derive(Debug)]
struct GateSignals {
    arrived: watch::Sender<bool>,
    released: watch::Sender<bool>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            signals: Arc::new(GateSignals {
                arrived: watch::Sender::new(false),
                released: watch::Sender::new(false),
            }),
        }
    }

    /// Resolves once the held request has reached the server.
    pub async fn arrived(&self) {
        wait_until_set(&self.signals.arrived).await;
    }

    /// Lets the held request (or the next one to arrive) proceed.
    pub fn release(&self) {
        self.signals.released.send_replace(true);
    }

    pub(super) fn mark_arrived(&self) {
        self.signals.arrived.send_replace(true);
    }

    pub(super) async fn released(&self) {
        wait_until_set(&self.signals.released).await;
    }
}

async fn wait_until_set(flag: &watch::Sender<bool>) {
    // `wait_for` only fails when the sender is dropped, and `flag` is that
    // sender, borrowed for the whole wait.
    let _ = flag.subscribe().wait_for(|set| *set).await;
}

/// Why a request for a bot's leads is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Denial {
    Unauthorized,
    UnknownBot,
    Forbidden,
}

/// A validated listing request.
#[derive(Clone, Debug)]
pub(super) struct PageRequest {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub page: u32,
    /// As asked; the world clamps it.
    pub page_size: i64,
}

/// One page of a listing, ready to be put in the envelope.
#[derive(Clone, Debug)]
pub(super) struct LeadPage {
    pub leads: Vec<Value>,
    pub page: u32,
    /// `None` when the world does not report it.
    pub page_size: Option<u32>,
    /// `None` when the world does not report it.
    pub total: Option<u64>,
}

/// A shared, mutable model of ChatofAI. Cloning gives another handle to the same world.
#[derive(Clone, Debug)]
pub struct World {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    settings: WorldSettings,
    bots: HashMap<String, Bot>,
    any_bot_faults: VecDeque<Fault>,
    random_faults: Option<RandomFaults>,
    latency: Duration,
    arrivals: HashMap<(String, u32), Vec<FakeLead>>,
    edits: HashMap<(String, u32), Vec<PendingEdit>>,
    holds: HashMap<(String, u32), VecDeque<Gate>>,
    /// Each entry carries a sequence number so an answer can find its request
    /// again even after `clear_requests` or while other requests are logged.
    requests: Vec<(u64, RecordedRequest)>,
    next_sequence: u64,
    /// Pages after each serving of which a new lead arrives (see [`World::keep_arriving`]).
    continuous_arrivals: std::collections::HashSet<(String, u32)>,
    arrivals_made: u64,
    in_flight: InFlightCounts,
}

/// Requests being answered right now, and the most there ever were at once.
#[derive(Debug, Default)]
struct InFlightCounts {
    now: usize,
    most: usize,
    by_bot: HashMap<String, (usize, usize)>,
}

/// Counts a request as in flight until dropped.
pub(super) struct InFlight {
    world: World,
    bot_uid: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.world.state();
        state.in_flight.now -= 1;
        if let Some((now, _)) = state.in_flight.by_bot.get_mut(&self.bot_uid) {
            *now -= 1;
        }
    }
}

#[derive(Debug)]
struct RandomFaults {
    rate: f64,
    rng: fastrand::Rng,
}

/// Leads are kept in listing order: by `filed_at`, then by `conversation_uid`.
/// Leads without a string `conversation_uid` get a private number instead, so
/// they are listed (and counted) but can never be replaced by another lead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LeadKey {
    Uid(String),
    Anonymous(u64),
}

type SortKey = (DateTime<Utc>, LeadKey);

/// When a conversation started, and the lead's key: the order a conversation filter selects in.
type StartKey = (DateTime<Utc>, SortKey);

/// An edit planned for after a page: (`conversation_uid`, field, new value).
type PendingEdit = (String, String, Value);

/// The smallest key at an instant (the empty string sorts first), for range bounds.
fn first_key_at(at: DateTime<Utc>) -> SortKey {
    (at, LeadKey::Uid(String::new()))
}

/// A bot exists for the API once `add_bot` gave it a key; until then the
/// entry only holds leads, faults or flags set up in advance.
#[derive(Debug, Default)]
struct Bot {
    api_key: Option<String>,
    forbidden: bool,
    leads: BTreeMap<SortKey, FakeLead>,
    /// The keys of `leads` in order, built on the first listing after a change, so that a page
    /// costs a binary search instead of a walk over the bot's leads (benchmarks page through
    /// millions of leads).
    listing: Option<Vec<SortKey>>,
    /// Under a conversation-start filter: the keys by conversation start (for that maximum
    /// lag), and the last window selected from them, in listing order.
    by_start: Option<(Duration, Vec<StartKey>)>,
    selected: Option<(SortRange, Vec<SortKey>)>,
    filed_at_by_uid: HashMap<String, DateTime<Utc>>,
    faults: VecDeque<Fault>,
    anonymous_count: u64,
}

impl Bot {
    fn insert(&mut self, lead: FakeLead) {
        let key = match lead.conversation_uid() {
            Some(uid) => {
                self.remove(uid);
                self.filed_at_by_uid.insert(uid.to_owned(), lead.filed_at);
                LeadKey::Uid(uid.to_owned())
            }
            None => {
                self.anonymous_count += 1;
                LeadKey::Anonymous(self.anonymous_count)
            }
        };
        self.changed();
        self.leads.insert((lead.filed_at, key), lead);
    }

    fn changed(&mut self) {
        self.listing = None;
        self.by_start = None;
        self.selected = None;
    }

    /// The keys the day filter selects for `window`, in listing order (by `filed_at`).
    fn listed(&mut self, window: &SortRange, filter_on: FilterOn) -> &[SortKey] {
        match filter_on {
            FilterOn::CreatedAt => self.listed_by_created_at(window),
            FilterOn::ConversationStart { max_lag } => self.listed_by_start(window, max_lag),
        }
    }

    fn listed_by_created_at(&mut self, window: &SortRange) -> &[SortKey] {
        let keys = self
            .listing
            .get_or_insert_with(|| self.leads.keys().cloned().collect());
        let start = match &window.0 {
            Bound::Included(low) => keys.partition_point(|key| key < low),
            Bound::Excluded(low) => keys.partition_point(|key| key <= low),
            Bound::Unbounded => 0,
        };
        let end = match &window.1 {
            Bound::Included(high) => keys.partition_point(|key| key <= high),
            Bound::Excluded(high) => keys.partition_point(|key| key < high),
            Bound::Unbounded => keys.len(),
        };
        &keys[start..end.max(start)]
    }

    /// Selects on when each conversation started; the last selection is cached, since a
    /// client asks for the same window page after page.
    fn listed_by_start(&mut self, window: &SortRange, max_lag: Duration) -> &[SortKey] {
        let cached = matches!(&self.selected, Some((range, _)) if range == window);
        if !cached {
            if !matches!(&self.by_start, Some((lag, _)) if *lag == max_lag) {
                let mut by_start: Vec<(DateTime<Utc>, SortKey)> = self
                    .leads
                    .iter()
                    .map(|(key, lead)| (lead.conversation_start(max_lag), key.clone()))
                    .collect();
                by_start.sort();
                self.by_start = Some((max_lag, by_start));
            }
            let by_start = &self.by_start.as_ref().expect("built above").1;
            let from = match &window.0 {
                Bound::Included((at, _)) => by_start.partition_point(|(start, _)| start < at),
                Bound::Excluded((at, _)) => by_start.partition_point(|(start, _)| start <= at),
                Bound::Unbounded => 0,
            };
            let to = match &window.1 {
                Bound::Included((at, _)) => by_start.partition_point(|(start, _)| start <= at),
                Bound::Excluded((at, _)) => by_start.partition_point(|(start, _)| start < at),
                Bound::Unbounded => by_start.len(),
            };
            let mut keys: Vec<SortKey> = by_start[from..to.max(from)]
                .iter()
                .map(|(_, key)| key.clone())
                .collect();
            keys.sort();
            self.selected = Some((window.clone(), keys));
        }
        &self.selected.as_ref().expect("selected above").1
    }

    fn remove(&mut self, conversation_uid: &str) -> Option<FakeLead> {
        let filed_at = self.filed_at_by_uid.remove(conversation_uid)?;
        self.changed();
        self.leads
            .remove(&(filed_at, LeadKey::Uid(conversation_uid.to_owned())))
    }
}

impl World {
    pub fn new(settings: WorldSettings) -> Self {
        World {
            state: Arc::new(Mutex::new(State {
                settings,
                ..State::default()
            })),
        }
    }

    /// A poisoned lock only means a test panicked mid-update; the model stays usable.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the bot known; its requests must carry `Authorization: Bearer <api_key>`.
    pub fn add_bot(&self, bot_uid: &str, api_key: &str) {
        self.state().bot_mut(bot_uid).api_key = Some(api_key.to_owned());
    }

    /// Adds a lead, replacing the one with the same `conversation_uid`, if any.
    pub fn insert_lead(&self, bot_uid: &str, lead: FakeLead) {
        self.state().bot_mut(bot_uid).insert(lead);
    }

    /// Inserts `count` synthetic leads (see `synth`) created in `[from, to)`
    /// and returns their `conversation_uid`s. The same bot and seed give the
    /// same leads, so repeating a call replaces rather than adds.
    pub fn generate_leads(
        &self,
        bot_uid: &str,
        count: usize,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        seed: u64,
    ) -> Vec<String> {
        let leads = synth::generate(bot_uid, count, from, to, seed);
        let uids = leads
            .iter()
            .filter_map(|lead| lead.conversation_uid().map(str::to_owned))
            .collect();
        let mut state = self.state();
        let bot = state.bot_mut(bot_uid);
        for lead in leads {
            bot.insert(lead);
        }
        uids
    }

    /// Changes one field of the lead with this `conversation_uid`, under every
    /// bot that serves it (see [`FakeLead::with_field`]). Returns whether any did.
    pub fn edit_lead(&self, conversation_uid: &str, field: &str, value: Value) -> bool {
        let mut state = self.state();
        let mut found = false;
        for bot in state.bots.values_mut() {
            if let Some(lead) = bot.remove(conversation_uid) {
                bot.insert(lead.with_field(field, value.clone()));
                found = true;
            }
        }
        found
    }

    /// Deletes the lead with this `conversation_uid` from every bot. Returns whether any did.
    pub fn remove_lead(&self, conversation_uid: &str) -> bool {
        let mut state = self.state();
        let mut found = false;
        for bot in state.bots.values_mut() {
            found |= bot.remove(conversation_uid).is_some();
        }
        found
    }

    /// The well-formed leads of the bot as leadsync must store them, by `conversation_uid`.
    pub fn truth(&self, bot_uid: &str) -> Vec<TruthLead> {
        let state = self.state();
        let Some(bot) = state.bots.get(bot_uid) else {
            return Vec::new();
        };
        let mut truth: Vec<TruthLead> = bot
            .leads
            .values()
            .filter_map(|lead| lead.to_truth(bot_uid))
            .collect();
        truth.sort_by(|a, b| a.conversation_uid.cmp(&b.conversation_uid));
        truth
    }

    /// How many of the bot's leads leadsync must reject.
    pub fn malformed_count(&self, bot_uid: &str) -> usize {
        let state = self.state();
        state.bots.get(bot_uid).map_or(0, |bot| {
            bot.leads
                .values()
                .filter(|lead| lead.to_truth(bot_uid).is_none())
                .count()
        })
    }

    /// Makes the bot answer 403 (after a correct key) until switched back.
    pub fn set_forbidden(&self, bot_uid: &str, forbidden: bool) {
        self.state().bot_mut(bot_uid).forbidden = forbidden;
    }

    /// Scripts the answers to the next requests, one fault each, in order: for
    /// one bot, or for any bot when `None`. A bot's own queue is used first.
    pub fn push_faults(&self, bot_uid: Option<&str>, faults: impl IntoIterator<Item = Fault>) {
        let mut state = self.state();
        match bot_uid {
            Some(bot_uid) => state.bot_mut(bot_uid).faults.extend(faults),
            None => state.any_bot_faults.extend(faults),
        }
    }

    /// From now on, each request without a scripted fault fails with
    /// probability `rate` with a transient fault; the seed makes runs repeatable.
    /// A rate of 0.0 (or less) switches random faults off.
    pub fn set_random_faults(&self, rate: f64, seed: u64) {
        self.state().random_faults = (rate > 0.0).then(|| RandomFaults {
            rate,
            rng: fastrand::Rng::with_seed(seed),
        });
    }

    /// A delay added to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// One-shot: right after that page of that bot is first served successfully,
    /// these leads are inserted, so they shift the pages the client asks for next.
    pub fn after_page(&self, bot_uid: &str, page: u32, leads: Vec<FakeLead>) {
        self.state()
            .arrivals
            .entry((bot_uid.to_owned(), page))
            .or_default()
            .extend(leads);
    }

    /// One-shot: right after that page of that bot is first served successfully, one field of
    /// the lead with this `conversation_uid` changes (see [`World::edit_lead`]).
    pub fn edit_after_page(
        &self,
        bot_uid: &str,
        page: u32,
        conversation_uid: &str,
        field: &str,
        value: Value,
    ) {
        self.state()
            .edits
            .entry((bot_uid.to_owned(), page))
            .or_default()
            .push((conversation_uid.to_owned(), field.to_owned(), value));
    }

    /// One-shot: the next request for that page of that bot waits until the
    /// returned gate is released (or the server stops). Several holds on the
    /// same page hold successive requests.
    pub fn hold_page(&self, bot_uid: &str, page: u32) -> Gate {
        let gate = Gate::new();
        self.state()
            .holds
            .entry((bot_uid.to_owned(), page))
            .or_default()
            .push_back(gate.clone());
        gate
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let state = self.state();
        state.requests.iter().map(|(_, r)| r.clone()).collect()
    }

    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// The most requests that were being answered at once (held ones included), for all bots
    /// together, since the start or the last [`World::reset_in_flight_peak`].
    pub fn in_flight_peak(&self) -> usize {
        self.state().in_flight.most
    }

    /// The most requests for this bot that were being answered at once.
    pub fn in_flight_peak_of(&self, bot_uid: &str) -> usize {
        self.state()
            .in_flight
            .by_bot
            .get(bot_uid)
            .map_or(0, |(_, most)| *most)
    }

    pub fn reset_in_flight_peak(&self) {
        let mut state = self.state();
        let counts = &mut state.in_flight;
        counts.most = counts.now;
        for (now, most) in counts.by_bot.values_mut() {
            *most = *now;
        }
    }

    /// From now on, right after each time that page of that bot is served successfully, a new
    /// lead (`arrival-N`, created now) arrives: a listing that keeps growing while it is read.
    pub fn keep_arriving(&self, bot_uid: &str, page: u32) {
        self.state()
            .continuous_arrivals
            .insert((bot_uid.to_owned(), page));
    }

    /// Ends every [`World::keep_arriving`] of the bot.
    pub fn stop_arriving(&self, bot_uid: &str) {
        self.state()
            .continuous_arrivals
            .retain(|(bot, _)| bot != bot_uid);
    }

    pub fn settings(&self) -> WorldSettings {
        self.state().settings.clone()
    }

    // ---- used by the server ----

    /// Logs an arriving request and returns its sequence number, and a guard that counts it
    /// in flight until dropped.
    pub(super) fn begin_request(&self, request: RecordedRequest) -> (u64, InFlight) {
        let mut state = self.state();
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let bot_uid = request.bot_uid.clone();
        state.requests.push((sequence, request));
        let counts = &mut state.in_flight;
        counts.now += 1;
        counts.most = counts.most.max(counts.now);
        let (now, most) = counts.by_bot.entry(bot_uid.clone()).or_default();
        *now += 1;
        *most = (*most).max(*now);
        let guard = InFlight {
            world: self.clone(),
            bot_uid,
        };
        (sequence, guard)
    }

    /// Fills in how a logged request was answered.
    pub(super) fn finish_request(
        &self,
        sequence: u64,
        status: u16,
        fault: Option<Fault>,
        request_id: Option<&str>,
        records: usize,
    ) {
        let mut state = self.state();
        // Recent requests are at the end; a cleared log simply has no entry.
        if let Some((_, request)) = state
            .requests
            .iter_mut()
            .rev()
            .find(|(s, _)| *s == sequence)
        {
            request.status = status;
            request.fault = fault;
            request.request_id = request_id.map(str::to_owned);
            request.records = records;
        }
    }

    pub(super) fn take_hold(&self, bot_uid: &str, page: u32) -> Option<Gate> {
        let mut state = self.state();
        let key = (bot_uid.to_owned(), page);
        let queue = state.holds.get_mut(&key)?;
        let gate = queue.pop_front();
        if queue.is_empty() {
            state.holds.remove(&key);
        }
        gate
    }

    pub(super) fn latency(&self) -> Duration {
        self.state().latency
    }

    /// The fault this request must suffer, if any: scripted for the bot, then
    /// scripted for any bot, then random.
    pub(super) fn next_fault(&self, bot_uid: &str) -> Option<Fault> {
        let mut state = self.state();
        let scripted = state
            .bots
            .get_mut(bot_uid)
            .and_then(|bot| bot.faults.pop_front());
        if scripted.is_some() {
            return scripted;
        }
        if let Some(fault) = state.any_bot_faults.pop_front() {
            return Some(fault);
        }
        let random = state.random_faults.as_mut()?;
        if random.rng.f64() >= random.rate {
            return None;
        }
        let pool = transient_faults();
        Some(pool[random.rng.usize(..pool.len())].clone())
    }

    /// Checks the `Authorization` header value against the bot. A missing header
    /// is refused before the bot is even looked up, as a real gateway would.
    pub(super) fn authorize(
        &self,
        bot_uid: &str,
        authorization: Option<&str>,
    ) -> Result<(), Denial> {
        let presented = authorization.ok_or(Denial::Unauthorized)?;
        let state = self.state();
        let bot = state.bots.get(bot_uid).ok_or(Denial::UnknownBot)?;
        let api_key = bot.api_key.as_deref().ok_or(Denial::UnknownBot)?;
        if presented.strip_prefix("Bearer ") != Some(api_key) {
            return Err(Denial::Unauthorized);
        }
        if bot.forbidden {
            return Err(Denial::Forbidden);
        }
        Ok(())
    }

    /// Renders one page of the bot's listing, then fires the arrivals planned
    /// for after that page.
    pub(super) fn list_page(&self, bot_uid: &str, request: &PageRequest) -> LeadPage {
        let mut state = self.state();
        let settings = state.settings.clone();
        let max_page_size = settings.max_page_size.max(1);
        let page_size = u32::try_from(request.page_size.clamp(1, i64::from(max_page_size)))
            .expect("clamped into 1..=max_page_size, a u32");
        let window = day_window(&settings, request.start, request.end);
        let order = settings.order;
        let served_page = if settings.ignores_page {
            1
        } else {
            request.page
        };

        let (leads, matching, whole_bot) = match (state.bots.get_mut(bot_uid), window) {
            (Some(bot), Some(window)) => {
                let take = page_size as usize;
                let skip = (served_page as usize)
                    .saturating_sub(1)
                    .saturating_mul(take);
                let keys = bot.listed(&window, settings.filter_on);
                let matching = keys.len();
                let (from, to) = match order {
                    // Newest first: the page counts back from the end of the sorted keys.
                    Order::NewestFirst => (
                        matching.saturating_sub(skip.saturating_add(take)),
                        matching.saturating_sub(skip),
                    ),
                    Order::OldestFirst => {
                        (skip.min(matching), skip.saturating_add(take).min(matching))
                    }
                };
                let mut slice: Vec<SortKey> = keys[from..to].to_vec();
                if order == Order::NewestFirst {
                    slice.reverse();
                }
                let mut page: Vec<Value> = slice
                    .iter()
                    .filter_map(|key| bot.leads.get(key).map(|lead| lead.raw.clone()))
                    .collect();
                if settings.endless {
                    let filed = match window.0 {
                        Bound::Included((at, _)) | Bound::Excluded((at, _)) => at,
                        Bound::Unbounded => Utc::now(),
                    };
                    for index in page.len()..take {
                        let uid = format!("endless-{served_page}-{index}");
                        page.push(FakeLead::new(bot_uid, &uid, filed.fixed_offset()).raw);
                    }
                }
                (page, matching as u64, bot.leads.len() as u64)
            }
            (Some(bot), None) => (Vec::new(), 0, bot.leads.len() as u64),
            _ => (Vec::new(), 0, 0),
        };

        if let Some(arrivals) = state.arrivals.remove(&(bot_uid.to_owned(), request.page)) {
            let bot = state.bot_mut(bot_uid);
            for lead in arrivals {
                bot.insert(lead);
            }
        }
        if let Some(edits) = state.edits.remove(&(bot_uid.to_owned(), request.page)) {
            let bot = state.bot_mut(bot_uid);
            for (uid, field, value) in edits {
                if let Some(lead) = bot.remove(&uid) {
                    bot.insert(lead.with_field(&field, value));
                }
            }
        }
        if state
            .continuous_arrivals
            .contains(&(bot_uid.to_owned(), request.page))
        {
            state.arrivals_made += 1;
            let uid = format!("arrival-{}", state.arrivals_made);
            let lead = FakeLead::new(bot_uid, &uid, Utc::now().fixed_offset());
            state.bot_mut(bot_uid).insert(lead);
        }
        let total = match settings.total {
            TotalMode::Filtered => Some(matching),
            TotalMode::WholeBot => Some(whole_bot),
            TotalMode::Absent => None,
            TotalMode::Lagging(behind) => Some(matching.saturating_sub(behind)),
            TotalMode::Fixed(total) => Some(total),
        };
        LeadPage {
            leads,
            page: request.page,
            page_size: settings.reports_page_size.then_some(page_size),
            total,
        }
    }
}

impl State {
    fn bot_mut(&mut self, bot_uid: &str) -> &mut Bot {
        self.bots.entry(bot_uid.to_owned()).or_default()
    }
}

type SortRange = (Bound<SortKey>, Bound<SortKey>);

/// The `filed_at` range selected by the day filter, or `None` when it is empty.
fn day_window(
    settings: &WorldSettings,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
) -> Option<SortRange> {
    let offset = settings.day_filter_offset;
    let lower = match start {
        Some(day) => Bound::Included(first_key_at(start_of_day(day, offset)?)),
        None => Bound::Unbounded,
    };
    let upper = match end {
        Some(day) => {
            let first_excluded = if settings.end_date_inclusive {
                day.succ_opt()
            } else {
                Some(day)
            };
            match first_excluded {
                Some(day) => Bound::Excluded(first_key_at(start_of_day(day, offset)?)),
                None => Bound::Unbounded,
            }
        }
        None => Bound::Unbounded,
    };
    // `BTreeMap::range` panics on an inverted range; an inverted filter is just empty.
    if let (Bound::Included(low), Bound::Excluded(high)) = (&lower, &upper) {
        if low >= high {
            return None;
        }
    }
    Some((lower, upper))
}

/// Midnight of `day` in `offset`, as an instant (`None` only at chrono's date limits).
fn start_of_day(day: NaiveDate, offset: FixedOffset) -> Option<DateTime<Utc>> {
    day.and_time(NaiveTime::MIN)
        .checked_sub_offset(offset)
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BOT: &str = "bot-a";

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("test times are RFC 3339")
    }

    fn world_with(leads: Vec<FakeLead>) -> World {
        let world = World::new(WorldSettings::default());
        world.add_bot(BOT, "key");
        for lead in leads {
            world.insert_lead(BOT, lead);
        }
        world
    }

    fn good(uid: &str) -> FakeLead {
        FakeLead::new(BOT, uid, at("2024-05-01T10:00:00+02:00"))
    }

    #[test]
    fn truth_converts_fields_as_leadsync_must_store_them() {
        let lead = good("u1")
            .with_field("created_at", json!("2024-05-01T10:00:00.123456-08:00"))
            .with_field("name", Value::Null)
            .with_field("phone", json!(5550100))
            .with_field("remark", json!({"a": [1, true]}))
            .without_field("email")
            .with_field("source", json!("widget"));
        let world = world_with(vec![lead]);
        let truth = world.truth(BOT);
        assert_eq!(
            truth,
            [TruthLead {
                conversation_uid: "u1".into(),
                bot_uid: BOT.into(),
                created_at: at("2024-05-01T18:00:00.123456Z").with_timezone(&Utc),
                name: None,
                email: None,
                phone: Some("5550100".into()),
                remark: Some(r#"{"a":[1,true]}"#.into()),
                raw: json!({
                    "bot_uid": BOT, "conversation_uid": "u1",
                    "created_at": "2024-05-01T10:00:00.123456-08:00", "name": null,
                    "phone": 5550100, "remark": {"a": [1, true]}, "source": "widget",
                }),
            }]
        );
        assert_eq!(world.malformed_count(BOT), 0);
    }

    #[test]
    fn truth_excludes_every_kind_of_malformed_lead() {
        let filed = at("2024-05-01T00:00:00Z").with_timezone(&Utc);
        let malformed = vec![
            good("x").without_field("conversation_uid"),
            FakeLead::malformed(
                json!({"conversation_uid": 17, "created_at": "2024-05-01T00:00:00Z"}),
                filed,
            ),
            good(""),
            good(" \t\n"),
            good("no-date").without_field("created_at"),
            good("bad-date").with_field("created_at", json!("2024-05-01 10:00")),
            good("numeric-date").with_field("created_at", json!(1714557600)),
            good("other-bot").with_field("bot_uid", json!("bot-b")),
            good("null-bot").with_field("bot_uid", Value::Null),
            FakeLead::malformed(json!(["not", "an", "object"]), filed),
        ];
        let world = world_with(malformed);
        world.insert_lead(BOT, good("fine"));
        world.insert_lead(BOT, good("no-bot-field").without_field("bot_uid"));

        let uids: Vec<String> = world
            .truth(BOT)
            .into_iter()
            .map(|t| t.conversation_uid)
            .collect();
        assert_eq!(uids, ["fine", "no-bot-field"]);
        assert_eq!(world.malformed_count(BOT), 10);
    }

    #[test]
    fn a_broken_created_at_keeps_filed_at() {
        let lead = good("u").with_field("created_at", json!("garbage"));
        assert_eq!(lead.filed_at, at("2024-05-01T08:00:00Z"));
    }

    #[test]
    fn insert_replaces_the_same_conversation() {
        let world = world_with(vec![good("u1"), good("u2")]);
        world.insert_lead(BOT, good("u1").with_field("name", json!("New")));
        let truth = world.truth(BOT);
        assert_eq!(truth.len(), 2);
        assert_eq!(truth[0].name.as_deref(), Some("New"));
    }

    #[test]
    fn edit_and_remove_work_across_bots() {
        let world = world_with(vec![good("u1")]);
        world.add_bot("bot-b", "key-b");
        world.insert_lead(
            "bot-b",
            FakeLead::new("bot-b", "u1", at("2024-05-01T00:00:00Z")),
        );
        assert!(world.edit_lead("u1", "created_at", json!("2024-06-01T00:00:00Z")));
        assert!(!world.edit_lead("nope", "name", json!("x")));
        let moved = at("2024-06-01T00:00:00Z").with_timezone(&Utc);
        assert_eq!(world.truth(BOT)[0].created_at, moved);
        assert_eq!(world.truth("bot-b")[0].created_at, moved);
        assert!(world.remove_lead("u1"));
        assert!(world.truth(BOT).is_empty() && world.truth("bot-b").is_empty());
    }

    #[test]
    fn generated_leads_are_all_in_the_truth() {
        let world = world_with(Vec::new());
        let from = at("2024-01-01T00:00:00Z").with_timezone(&Utc);
        let uids = world.generate_leads(BOT, 250, from, from + chrono::TimeDelta::days(3), 5);
        assert_eq!(uids.len(), 250);
        let mut sorted = uids.clone();
        sorted.sort();
        let truth: Vec<String> = world
            .truth(BOT)
            .into_iter()
            .map(|t| t.conversation_uid)
            .collect();
        assert_eq!(truth, sorted);
        assert_eq!(world.malformed_count(BOT), 0);
        assert!(world.truth("unknown").is_empty());
    }

    #[tokio::test]
    async fn gate_signals_arrival_and_release() {
        let world = world_with(Vec::new());
        let gate = world.hold_page(BOT, 3);
        let second = world.hold_page(BOT, 3);
        let taken = world.take_hold(BOT, 3).expect("first hold");
        assert!(world.take_hold(BOT, 1).is_none());
        taken.mark_arrived();
        gate.arrived().await;
        gate.release();
        taken.released().await;
        assert!(
            world.take_hold(BOT, 3).is_some(),
            "second hold is still queued"
        );
        drop(second);
        assert!(world.take_hold(BOT, 3).is_none());
    }
}
