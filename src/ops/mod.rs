//! Operator commands: `status`, `check`, `backfill`, `verify`.

mod check;
mod status;
mod verify;

pub use check::check;
pub use status::status;
pub use verify::{DayDrift, repair_ranges, verify_bot};
