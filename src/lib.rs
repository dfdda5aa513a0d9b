//! leadsync keeps a PostgreSQL copy of the leads that ChatofAI chatbots collect.
//!
//! The architecture, with arrows pointing one way:
//!
//! ```text
//! main ─▶ commands ─▶ daemon ─▶ { scheduler, http } ─▶ app
//!            │                                         │
//!            ├─▶ ops (status, check, verify, forget) ──┤
//!            │                                         ▼
//!            └─▶ demo ─▶ fake_api          sync ─▶ { chatof, store, domain, retry }
//!                                          (one run for one bot: windows, pages, commits)
//! ```
//!
//! - [`domain`]: bots, leads, windows and the high-water mark; depends on nothing.
//! - [`chatof`]: the API client (one attempt per call); wire types stay inside it.
//! - [`retry`]: the one retry policy (transient vs permanent, backoff, `Retry-After`).
//! - [`store`]: every SQL statement, the embedded migrations, the per-bot lock.
//! - [`sync`]: one run of one bot; a public function tests call directly.
//! - [`app`]: wires config, pool and clients (`Syncer`) for a command.
//! - [`daemon`], [`scheduler`], [`schedule`], [`spread`], [`shutdown`], [`http`], [`systemd`]:
//!   `leadsync run`: one cron job per schedule that only triggers runs, each bot's run at its
//!   stable place in the interval, the stall watchdog, signals, `/healthz` `/readyz`
//!   `/metrics`, and what systemd is told (ready, stopping, watchdog).
//! - [`ops`], [`commands`], [`cli`]: the operator commands and the command line; `output`
//!   writes what they print.
//! - [`config`], [`telemetry`], [`events`], [`metrics`], [`progress`]: settings, the log
//!   subscriber, the named log events, and the Prometheus metrics and terminal progress bars
//!   they update.
//! - [`fake_api`], [`demo`]: a model of ChatofAI over real HTTP, for tests, `demo`, `fake-api`
//!   and the benchmark.

pub mod app;
pub mod chatof;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod domain;
pub mod errors;
pub mod events;
pub mod fake_api;
pub mod http;
pub mod metrics;
pub mod ops;
mod output;
pub mod progress;
pub mod retry;
pub mod schedule;
pub mod scheduler;
pub mod shutdown;
pub mod spread;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod telemetry;
