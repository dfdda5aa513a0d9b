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
    /// The TLS handshake failed (a certificate that does not verify, a server that does not
    /// speak TLS): asking again gets the same answer.
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("HTTP {status}{}", request_id_suffix(.request_id))]
    Status {
        status: StatusCode,
        request_id: Option<String>,
        retry_after: Option<RetryAfter>,
    },
    /// The server's `msg` is not kept: it may echo personal data (and anything else).
    #[error("API error code {code}{}", request_id_suffix(.request_id))]
    Application {
        code: i64,
        request_id: Option<String>,
    },
    /// leadsync follows no redirect: the key would travel to, and the data come from, another
    /// address than the one configured.
    #[error("HTTP {status}: redirect to {} refused (leadsync follows no redirect: set api.base_url to the final address)", .target.as_deref().unwrap_or("an unnamed address"))]
    Redirect {
        status: StatusCode,
        /// `host[:port]` of the `Location`, bounded and escaped.
        target: Option<String>,
    },
    /// The answer is bigger than `api.max_body_bytes`: refused before reading when its
    /// `Content-Length` says so, else cut off at the limit.
    #[error("answer over api.max_body_bytes ({limit} bytes){}", .announced.map_or_else(String::new, |bytes| format!(": Content-Length {bytes}")))]
    TooLarge {
        status: StatusCode,
        limit: u64,
        /// What `Content-Length` announced, when it did.
        announced: Option<u64>,
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
            Self::Connect(_)
            | Self::Timeout(_)
            | Self::Transport(_)
            | Self::Tls(_)
            | Self::Redirect { .. }
            | Self::TooLarge { .. } => None,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. }
            | Self::BadBody { status, .. }
            | Self::Redirect { status, .. }
            | Self::TooLarge { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What a person should look at, for the errors a setting causes.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::TooLarge { .. } => {
                return Some(
                    "even a page of one lead is over the limit, or the server does not honour \
                     a smaller page_size: raise api.max_body_bytes",
                );
            }
            Self::Tls(_) => {
                return Some(
                    "check api.base_url's host and port, and the certificates this machine \
                     trusts (leadsync uses the system's roots, and a proxy's if one is set)",
                );
            }
            _ => {}
        }
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
            Self::Tls(_) => "tls".into(),
            Self::Status { status, .. } => format!("http_{}", status.as_u16()),
            Self::Application { .. } => "api_code".into(),
            Self::BadBody { .. } => "bad_body".into(),
            Self::Redirect { .. } => "redirect".into(),
            Self::TooLarge { .. } => "too_large".into(),
        }
    }
}

fn request_id_suffix(request_id: &Option<String>) -> String {
    request_id
        .as_ref()
        .map_or_else(String::new, |id| format!(", request_id {id}"))
}

/// A string the server chose (a request id, a host name), as it may be logged and stored:
/// at most `max` characters, control and other non-printable characters escaped, so a server
/// can neither flood a log nor forge a line in it.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut written = 0;
    for ch in text.chars() {
        let escaped = ch.is_control() || ch == '\u{2028}' || ch == '\u{2029}';
        let width = if escaped {
            ch.escape_default().count()
        } else {
            1
        };
        if written + width > max {
            out.push('…');
            break;
        }
        if escaped {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
        written += width;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_string_is_bounded_and_cannot_break_a_line() {
        assert_eq!(bounded("req-1", 8), "req-1");
        assert_eq!(bounded("abcdefghij", 4), "abcd…");
        assert_eq!(bounded("abcd", 4), "abcd");
        assert_eq!(bounded("ab\ncd", 4), "ab\\n…");
        assert_eq!(
            bounded("a\nb\r\u{1b}[0m\u{2028}\u{2029}", 40),
            "a\\nb\\r\\u{1b}[0m\\u{2028}\\u{2029}"
        );
        assert_eq!(
            bounded("café ☕", 8),
            "café ☕",
            "printable text is kept as it is"
        );
        assert_eq!(bounded(&"x".repeat(1 << 20), 128).chars().count(), 129);
    }
}
