//! One sync run for one bot: plan the days, cut them into windows, walk each window's pages,
//! commit page by page, and move the high-water mark when a window is complete.

//!
//! `context` holds what every part needs; `run` plans and runs; `range` cuts the days into
//! windows; `window` reads one (`pagination` says where a listing ends, `prefetch` reads
//! ahead, `fetch` makes a request); `listing` reads without storing, for `verify`. What a run
//! learns of the API lives in `domain::ApiBeliefs`.

mod context;
mod error;
mod fetch;
mod listing;
mod pagination;
mod prefetch;
mod range;
mod run;
mod window;

pub use context::SyncContext;
pub use error::SyncError;
pub use listing::list_leads;
pub use run::{RunOutcome, RunReport, RunRequest, sync_bot};
