//! The ChatofAI API client: one method per endpoint, one attempt per call.
//! Retrying is the caller's decision (see `crate::retry`); wire types stay in this module.

mod client;
mod error;
mod page;
mod wire;

pub use client::{ChatofClient, ClientSettings, LeadsQuery, ProxyInUse};
pub use error::{ApiError, RetryAfter};
pub use page::LeadsPage;
