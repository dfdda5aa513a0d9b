//! A fake ChatofAI API: a real HTTP server on 127.0.0.1 backed by a [`World`],
//! a model of the remote side that tests, `leadsync demo`, `leadsync fake-api`
//! and benchmarks set up and inspect.
//!
//! It serves `GET {base_url}/chatbot/{bot_uid}/leads` the way `shared/API.md`
//! documents it, and lets the caller choose every behaviour the documentation
//! leaves open ([`WorldSettings`]), inject failures ([`Fault`]), make leads
//! arrive or change while a client pages ([`World::after_page`],
//! [`World::edit_lead`]) and hold a request mid-flight ([`World::hold_page`]).
//! [`World::truth`] says what leadsync must end up storing.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use leadsync::fake_api::{FakeApi, World, WorldSettings};
//! let world = World::new(WorldSettings::default());
//! world.add_bot("bot-1", "secret-key");
//! let from = chrono::Utc::now() - chrono::TimeDelta::days(7);
//! world.generate_leads("bot-1", 500, from, chrono::Utc::now(), 42);
//! let api = FakeApi::start(world).await?;
//! // point the client at api.base_url(), run it, then compare with api.world().truth("bot-1")
//! api.stop().await;
//! # Ok(()) }
//! ```
//!
//! Each request goes through these steps, in order:
//! 1. it is logged ([`World::requests`]);
//! 2. a [`World::hold_page`] gate for its page (default 1) holds it until released;
//! 3. the [`World::set_latency`] delay;
//! 4. a scripted fault (the bot's queue, then the any-bot queue) or a random
//!    one replaces the answer — faults model the network and proxies, so they
//!    come before authentication;
//! 5. authentication: no `Authorization` header → 401, unknown bot → 404,
//!    wrong key → 401, forbidden bot → 403 (all JSON envelopes);
//! 6. query validation: a `start_date`/`end_date` that is not `YYYY-MM-DD`, a
//!    `page` below 1 or not a number, or a non-numeric `page_size` is answered
//!    with HTTP 200 and envelope code 40001, `"msg": "invalid <param>"`;
//!    any integer `page_size` is clamped to `[1, max_page_size]`;
//! 7. the page of leads, then any [`World::after_page`] arrivals for it.
//!
//! Any other path answers 404 with a JSON envelope.

mod faults;
mod server;
mod synth;
mod world;

pub use server::FakeApi;
pub use world::{
    FakeLead, Fault, FilterOn, Gate, Order, RecordedRequest, RetryAfter, TotalMode, TruthLead,
    World, WorldSettings,
};

/// Shared helpers for the tests of this module's files.
#[cfg(test)]
mod testkit {
    use super::{FakeApi, World, WorldSettings};

    pub(crate) const BOT: &str = "86a2eb21-9711-4950-8ffd-50c04317956c";
    pub(crate) const KEY: &str = "test-api-key";

    /// A reqwest client. reqwest is built with `rustls-no-provider` and panics
    /// without a process-wide provider even for plain HTTP, so install ring's
    /// (the crate's chosen one); `Err` only means another test did it first.
    pub(crate) fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .build()
            .expect("a client with default settings builds")
    }

    /// The body parsed as JSON (reqwest is built without its `json` feature).
    pub(crate) async fn json_body(response: reqwest::Response) -> serde_json::Value {
        let bytes = response.bytes().await.expect("the body arrives");
        serde_json::from_slice(&bytes).expect("a JSON body")
    }

    /// A started server with one bot (`BOT`, key `KEY`) and an HTTP client.
    pub(crate) struct Harness {
        pub(crate) api: FakeApi,
        client: reqwest::Client,
    }

    impl Harness {
        pub(crate) async fn start() -> Harness {
            Harness::start_with(WorldSettings::default()).await
        }

        pub(crate) async fn start_with(settings: WorldSettings) -> Harness {
            let world = World::new(settings);
            world.add_bot(BOT, KEY);
            let api = FakeApi::start(world).await.expect("bind 127.0.0.1:0");
            Harness {
                api,
                client: client(),
            }
        }

        pub(crate) fn world(&self) -> &World {
            self.api.world()
        }

        /// `GET .../chatbot/{bot}/leads?{query}` with an optional bearer key.
        pub(crate) async fn get_as(
            &self,
            bot: &str,
            key: Option<&str>,
            query: &str,
        ) -> reqwest::Response {
            let url = format!("{}/chatbot/{bot}/leads?{query}", self.api.base_url());
            let mut request = self.client.get(url);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            request.send().await.expect("the fake API answers")
        }

        /// An authenticated request for `BOT`.
        pub(crate) async fn get(&self, query: &str) -> reqwest::Response {
            self.get_as(BOT, Some(KEY), query).await
        }

        /// An authenticated request for `BOT`, parsed as JSON.
        pub(crate) async fn get_json(&self, query: &str) -> serde_json::Value {
            json_body(self.get(query).await).await
        }

        pub(crate) async fn stop(self) {
            self.api.stop().await;
        }
    }
}
