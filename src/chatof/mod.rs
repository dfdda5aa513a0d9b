//! The ChatofAI API client: one method per endpoint, one attempt per call.
//! Retrying is the caller's decision (see `crate::retry`); wire types stay in this module.

mod client;
mod error;
mod wire;

pub use client::{ChatofClient, ClientSettings, LeadsPage, LeadsQuery};
pub use error::{ApiError, RetryAfter};
