//! The vocabulary of leadsync: bots, leads, and the arithmetic of sync windows.
//!
//! Depends on nothing else in the crate. Values here are already valid: the edges
//! (config loading, the API client) parse into them, and nothing past the edge checks again.

mod beliefs;
mod bot;
mod erasure;
mod lead;
mod run_counts;
mod window;

pub use beliefs::{
    ApiBeliefs, BeliefSummary, EndDate, ListingOrder, MAX_PLAUSIBLE_TOTAL, TotalMeaning, plausible,
};
pub use bot::{BotUid, InvalidBotUid};
pub use erasure::{ErasureKey, InvalidErasureKey};
pub use lead::{Lead, RejectReason, RejectedLead};
pub use run_counts::{RunCounts, UpsertCounts};
pub use window::{DayRange, PlanSettings, RunPlan, SyncState, midnight, next_span_days, plan_run};
