use std::{error::Error as _, fmt, time::Duration};

use chrono::{DateTime, Utc};
use reqwest::header;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{
    error::{ApiError, RetryAfter, bounded},
    page::{self, LeadsPage},
    wire::ErrorEnvelope,
};
use crate::domain::{BotUid, DayRange};

#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// e.g. `https://chatof.ai/api/v1/backend`
    pub base_url: Url,
    /// For the whole request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// The largest answer read: a bigger one is refused (`ApiError::TooLarge`).
    pub max_body_bytes: u64,
}

/// A ChatofAI API client for one API key. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct ChatofClient {
    http: reqwest::Client,
    base_url: Url,
    timeout: Duration,
    max_body_bytes: u64,
    key: SecretString,
}

/// One page of `GET /chatbot/{bot_uid}/leads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeadsQuery {
    /// `None` asks for all days.
    pub range: Option<DayRange>,
    pub page: u32,
    pub page_size: u32,
}

impl ChatofClient {
    pub fn new(settings: &ClientSettings, key: SecretString) -> Result<Self, reqwest::Error> {
        // reqwest is built without a bundled crypto provider (to avoid aws-lc's C build);
        // ring is ours. Installing twice is harmless: the first one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("leadsync/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            // A redirect is refused, not followed: see `ApiError::Redirect`.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base_url: settings.base_url.clone(),
            timeout: settings.timeout,
            max_body_bytes: settings.max_body_bytes,
            key,
        })
    }

    /// The same client (and connection pool) speaking with another key.
    pub fn with_key(&self, key: SecretString) -> Self {
        Self {
            key,
            ..self.clone()
        }
    }

    /// One attempt at one page of a bot's leads.
    pub async fn fetch_leads_page(
        &self,
        bot: &BotUid,
        query: &LeadsQuery,
    ) -> Result<LeadsPage, ApiError> {
        let mut request = self
            .http
            .get(self.leads_url(bot))
            .bearer_auth(self.key.expose_secret())
            .query(&[("page", query.page), ("page_size", query.page_size)]);
        if let Some(range) = query.range {
            request = request.query(&[
                ("start_date", range.start.to_string()),
                ("end_date", range.end.to_string()),
            ]);
        }
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let retry_after = retry_after(response.headers(), Utc::now());
        if status.is_redirection() {
            return Err(ApiError::Redirect {
                status,
                target: redirect_target(response.url(), response.headers()),
            });
        }
        if !status.is_success() {
            // Only its request id is read: a little of it is enough.
            let body = self
                .read_body(response, ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            let request_id = error_request_id(&body);
            return Err(ApiError::Status {
                status,
                request_id,
                retry_after,
            });
        }
        // gzip is asked for and decoded (the header is gone then); anything else left is an
        // encoding leadsync cannot read, which would otherwise show as "invalid JSON".
        if let Some(encoding) = response
            .headers()
            .get(header::CONTENT_ENCODING)
            .filter(|encoding| !encoding.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(ApiError::BadBody {
                status,
                bytes: 0,
                detail: format!(
                    "Content-Encoding {} is not one leadsync decodes (it asks for gzip)",
                    bounded(&String::from_utf8_lossy(encoding.as_bytes()), 40)
                ),
                request_id: None,
            });
        }
        let body = self.read_body(response, self.max_body_bytes).await?;
        let mut scratch = String::new();
        let parsed =
            page::parse_envelope(&body, &mut scratch).map_err(|err| ApiError::BadBody {
                status,
                bytes: body.len(),
                detail: page::describe_json_error(&err),
                request_id: error_request_id(&body),
            })?;
        let envelope = parsed.envelope;
        let request_id = envelope.request_id.as_deref().map(bounded_request_id);
        if envelope.code != 0 {
            return Err(ApiError::Application {
                code: envelope.code,
                request_id,
            });
        }
        let Some(data) = envelope.data else {
            return Err(ApiError::BadBody {
                status,
                bytes: body.len(),
                detail: "success without data".into(),
                request_id,
            });
        };
        Ok(LeadsPage {
            records: data
                .leads
                .into_iter()
                .map(|raw| page::record(bot, raw, parsed.text, &parsed.mended))
                .collect(),
            page_size: data.page_size.filter(|&size| size > 0),
            total: data.total,
            request_id,
            bytes: body.len(),
        })
    }

    /// The body, if it is at most `limit` bytes: refused at once when `Content-Length` says it
    /// is bigger, else read chunk by chunk and given up on at the limit, so no answer, however
    /// big or endless, holds more than `limit` bytes of memory.
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        limit: u64,
    ) -> Result<Vec<u8>, ApiError> {
        let too_large = |announced| ApiError::TooLarge {
            status: response.status(),
            limit,
            announced,
        };
        let announced = response.content_length();
        if let Some(bytes) = announced.filter(|&bytes| bytes > limit) {
            return Err(too_large(Some(bytes)));
        }
        let too_large = too_large(None);
        let mut body = Vec::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.transport_error(&err))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The proxy the client goes through, read from the environment as reqwest does
    /// (`HTTPS_PROXY` or `ALL_PROXY` for https, `HTTP_PROXY` or `ALL_PROXY` for http, either
    /// case; `NO_PROXY` exempts hosts): the variable and the proxy's `scheme://host:port`,
    /// never its credentials.
    pub fn proxy(&self) -> Option<ProxyInUse> {
        proxy_of(&self.base_url, |name| std::env::var(name).ok())
    }

    /// The URL a bot's leads are listed at (for messages: it carries no secret).
    pub fn leads_url(&self, bot: &BotUid) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("base_url was validated as an http(s) URL")
            .pop_if_empty()
            .extend(["chatbot", bot.as_str(), "leads"]);
        url
    }

    fn transport_error(&self, err: &reqwest::Error) -> ApiError {
        if err.is_timeout() {
            return ApiError::Timeout(self.timeout);
        }
        // The chain of causes says what happened ("connection refused", "connection reset");
        // reqwest's own message would add the URL, which we log separately anyway.
        let mut detail = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            detail.push(cause.to_string());
            source = cause.source();
        }
        let detail = if detail.is_empty() {
            err.to_string()
        } else {
            detail.join(": ")
        };
        if is_tls_failure(err) {
            ApiError::Tls(detail)
        } else if err.is_connect() {
            ApiError::Connect(detail)
        } else {
            ApiError::Transport(detail)
        }
    }
}

/// Whether rustls refused the connection (a certificate, the handshake). rustls' error sits
/// inside `io::Error`s (nested, here), whose `source()` skips what they wrap: look inside.
fn is_tls_failure(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        let mut inner = cause;
        loop {
            if inner.is::<rustls::Error>() {
                return true;
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        source = cause.source();
    }
    false
}

/// A proxy taken from the environment (see [`ChatofClient::proxy`]).
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyInUse {
    pub variable: &'static str,
    /// `scheme://host:port`, without credentials.
    pub proxy: String,
    /// Whether `NO_PROXY` is set (it may exempt the API's host).
    pub no_proxy: bool,
}

fn proxy_of(base_url: &Url, var: impl Fn(&str) -> Option<String>) -> Option<ProxyInUse> {
    let names: &[&'static str] = if base_url.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"]
    };
    let (variable, value) = names.iter().find_map(|name| {
        var(name)
            .filter(|value| !value.trim().is_empty())
            .map(|value| (*name, value))
    })?;
    let value = value.trim();
    // reqwest also takes `[user:pass@]host:port` without a scheme (which `Url` would misread).
    let parsed = if value.contains("://") {
        Url::parse(value).ok()
    } else {
        None
    };
    let proxy = match parsed {
        Some(url) => {
            let host = url.host_str().unwrap_or("?");
            match url.port_or_known_default() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        // Never echo what may hold a password: only what follows the last `@`.
        None => value
            .rsplit('@')
            .next()
            .map(|host| bounded(host, 120))
            .unwrap_or_default(),
    };
    Some(ProxyInUse {
        variable,
        proxy,
        no_proxy: ["NO_PROXY", "no_proxy"]
            .iter()
            .any(|name| var(name).is_some_and(|value| !value.trim().is_empty())),
    })
}

/// How much of an error answer is read, for its request id.
const ERROR_BODY_BYTES: u64 = 64 << 10;

/// Request ids are logged and stored: a server cannot make them long or multi-line.
const MAX_REQUEST_ID_CHARS: usize = 128;

fn bounded_request_id(id: &str) -> String {
    bounded(id, MAX_REQUEST_ID_CHARS)
}

/// The request id of an error answer, if it is an envelope that has one.
fn error_request_id(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()?
        .request_id
        .as_deref()
        .map(bounded_request_id)
}

/// Where a redirect points, as `host[:port]` (bounded, escaped): never the path or query.
fn redirect_target(from: &Url, headers: &header::HeaderMap) -> Option<String> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let target = from.join(location).ok()?;
    let host = target.host_str()?;
    let named = match target.port() {
        Some(port) => format!("{}://{host}:{port}", target.scheme()),
        None => format!("{}://{host}", target.scheme()),
    };
    Some(bounded(&named, 120))
}

/// `Retry-After` as delta-seconds or an HTTP date, relative to `now`.
fn retry_after(headers: &header::HeaderMap, now: DateTime<Utc>) -> Option<RetryAfter> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(RetryAfter(Duration::from_secs(seconds)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let delay = (at.with_timezone(&Utc) - now)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(RetryAfter(delay))
}

impl fmt::Debug for ChatofClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatofClient")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().expect("timestamp");
        let mut headers = header::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "7".parse().expect("header"));
        assert_eq!(
            retry_after(&headers, now),
            Some(RetryAfter(Duration::from_secs(7)))
        );
        headers.insert(
            header::RETRY_AFTER,
            "Mon, 01 Jan 2024 00:00:30 GMT".parse().expect("header"),
        );
        assert_eq!(
            retry_after(&headers, now),
            Some(RetryAfter(Duration::from_secs(30)))
        );
        headers.insert(
            header::RETRY_AFTER,
            "Sun, 31 Dec 2023 23:00:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers, now), Some(RetryAfter(Duration::ZERO)));
        headers.insert(header::RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn the_proxy_is_read_as_reqwest_reads_it_and_shown_without_credentials() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let https: Url = "https://chatof.ai/api".parse().expect("url");
        let http: Url = "http://127.0.0.1:8089/api".parse().expect("url");
        assert_eq!(proxy_of(&https, env(&[])), None);
        assert_eq!(
            proxy_of(
                &https,
                env(&[
                    ("HTTPS_PROXY", "http://user:pw@proxy.corp:3128"),
                    ("HTTP_PROXY", "http://other:1"),
                    ("no_proxy", "localhost"),
                ])
            ),
            Some(ProxyInUse {
                variable: "HTTPS_PROXY",
                proxy: "http://proxy.corp:3128".into(),
                no_proxy: true,
            })
        );
        let plain =
            proxy_of(&http, env(&[("ALL_PROXY", "user:pw@proxy.corp:3128")])).expect("a proxy");
        assert_eq!(plain.variable, "ALL_PROXY");
        assert_eq!(plain.proxy, "proxy.corp:3128");
        assert!(!plain.no_proxy);
        assert_eq!(
            proxy_of(&http, env(&[("HTTPS_PROXY", "http://proxy:1")])),
            None,
            "an https proxy does not carry http"
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let settings = ClientSettings {
            base_url: "http://127.0.0.1:9/api".parse().expect("url"),
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            max_body_bytes: 1 << 20,
        };
        let client =
            ChatofClient::new(&settings, SecretString::from("sk-very-secret")).expect("client");
        assert!(!format!("{client:?}").contains("sk-very-secret"));
    }

    #[test]
    fn the_leads_url_appends_to_the_base_path_with_or_without_a_trailing_slash() {
        let bot = BotUid::parse("b-1").expect("bot");
        for base in ["http://h/api/v1/backend", "http://h/api/v1/backend/"] {
            let settings = ClientSettings {
                base_url: base.parse().expect("url"),
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                max_body_bytes: 1 << 20,
            };
            let client = ChatofClient::new(&settings, SecretString::from("k")).expect("client");
            assert_eq!(
                client.leads_url(&bot).as_str(),
                "http://h/api/v1/backend/chatbot/b-1/leads"
            );
        }
    }
}
