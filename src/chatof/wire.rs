//! The JSON as ChatofAI sends it. Private to `chatof`: nothing outside sees these types.

use serde::Deserialize;
use serde_json::value::RawValue;

/// `{ "code": 0, "msg": "Success.", "data": {...}, "request_id": "..." }`. The introduction page
/// calls the message `message`, the endpoint page `msg`: either is accepted.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope<T> {
    pub code: i64,
    // `msg` (or `message`) is not read: it may echo personal data, and leadsync needs only
    // `code` to know that something went wrong.
    pub data: Option<T>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Only the request id, from error answers that may or may not be an envelope.
#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    #[serde(default)]
    pub request_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct LeadsData<'a> {
    /// Kept as raw text: one record the parser cannot take must not fail the page.
    #[serde(borrow)]
    pub leads: Vec<&'a RawValue>,
    #[serde(default)]
    pub page_size: Option<u32>,
    #[serde(default)]
    pub total: Option<u64>,
}
