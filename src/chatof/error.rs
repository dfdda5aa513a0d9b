use std::time::Duration;

use reqwest::StatusCode;

/// Why one request to ChatofAI did not produce a page. Carries ids and statuses only: never the
/// key, never response bodies (they may echo personal data).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed mid-request: {0}")]
    Transport(String),
    #[error("HTTP {status}{}", request_id_suffix(.request_id))]
    Status {
        status: StatusCode,
        request_id: Option<String>,
        retry_after: Option<RetryAfter>,
    },
    #[error("API error code {code}{}{}", msg_suffix(.msg), request_id_suffix(.request_id))]
    Application {
        code: i64,
        msg: Option<String>,
        request_id: Option<String>,
    },
    #[error("answer is not the JSON envelope ({detail}, HTTP {status}, {bytes} bytes){}", request_id_suffix(.request_id))]
    BadBody {
        status: StatusCode,
        bytes: usize,
        detail: String,
        request_id: Option<String>,
    },
}

/// A server's `Retry-After`, already turned into a delay from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl ApiError {
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Status { request_id, .. }
            | Self::Application { request_id, .. }
            | Self::BadBody { request_id, .. } => request_id.as_deref(),
            Self::Connect(_) | Self::Timeout(_) | Self::Transport(_) => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } | Self::BadBody { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What a person should look at, for the errors a setting causes.
    pub fn hint(&self) -> Option<&'static str> {
        match self.status()?.as_u16() {
            401 | 403 => Some(
                "the API key was refused: check CHATOFAI_API_KEY (or api.key_file, or the bot's \
                 api_key_env)",
            ),
            404 => Some(
                "nothing at that URL: check api.base_url (ChatofAI's ends in /api/v1/backend) \
                 and the bot's uid",
            ),
            _ => None,
        }
    }

    /// A short stable label for logs and the run ledger: `connect`, `timeout`, `http_503`, ...
    pub fn kind(&self) -> String {
        match self {
            Self::Connect(_) => "connect".into(),
            Self::Timeout(_) => "timeout".into(),
            Self::Transport(_) => "transport".into(),
            Self::Status { status, .. } => format!("http_{}", status.as_u16()),
            Self::Application { .. } => "api_code".into(),
            Self::BadBody { .. } => "bad_body".into(),
        }
    }
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map_or_else(String::new, |id| format!(", request_id {id}"))
}

fn msg_suffix(msg: &Option<String>) -> String {
    // The server's message is short English text; cap it so an odd server cannot flood logs.
    msg.as_ref().map_or_else(String::new, |msg| {
        format!(": {}", msg.chars().take(120).collect::<String>())
    })
}
