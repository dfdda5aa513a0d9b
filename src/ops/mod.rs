//! Operator commands: `status` (and `state show`), `state rewind`, `check`, `backfill`,
//! `verify`, `forget`, `retention`.

mod check;
mod erasure;
mod retention;
mod state;
mod status;
mod verify;

pub use check::check;
pub use erasure::forget;
pub use retention::{Expired, apply_retention};
pub use state::{Rewind, rewind};
pub use status::status;
pub use verify::{DayDrift, Margins, margins, repair_ranges, verify_bot};
