//! One sync run for one bot: plan the days, cut them into windows, walk each window's pages,
//! commit page by page, and move the high-water mark when a window is complete.

mod error;
mod fetch;
mod listing;
mod pagination;
mod prefetch;
mod run;
mod window;

pub use error::SyncError;
pub use listing::list_leads;
pub use run::{RunOutcome, RunReport, RunRequest, SyncContext, sync_bot};
