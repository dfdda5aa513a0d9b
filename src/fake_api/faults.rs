//! The failures the fake API can inject, and the HTTP answer each one produces.
//!
//! Faults model what the network, a proxy or a struggling ChatofAI can do to a
//! request. They are rendered *before* authentication and the listing, because
//! a proxy in front of the service answers without knowing who is asking.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

/// One injected failure. `Fault::render` gives the exact answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// HTTP 500 with a JSON envelope whose `code` is 500.
    InternalError,
    /// HTTP 503 with a plain-text body, as a load balancer would send.
    ServiceUnavailable,
    /// HTTP 502 with an HTML error page, as a reverse proxy would send.
    BadGatewayHtml,
    /// HTTP 429, with or without a `Retry-After` header.
    TooManyRequests { retry_after: Option<RetryAfter> },
    /// HTTP 200 whose body is an HTML page (a captive portal, a login wall).
    HtmlPage,
    /// HTTP 200, a valid envelope cut in half; `Content-Length` matches the cut,
    /// so the transfer itself succeeds and only JSON parsing fails.
    TruncatedJson,
    /// HTTP 200 headers, then the connection is dropped half-way through the body.
    ConnectionReset,
    /// HTTP 200 with a non-zero envelope `code`: an application-level error.
    AppError { code: i64 },
    /// HTTP 408 with a plain-text body, as a proxy that gave up waiting would send.
    RequestTimeout,
    /// HTTP 401 envelope, as if the API key had been deleted.
    Unauthorized,
    /// HTTP 403 envelope.
    Forbidden,
    /// HTTP 404 envelope.
    NotFound,
    /// No failure in the answer itself: the normal answer comes after this delay.
    Latency(Duration),
}

/// The value of a `Retry-After` header (RFC 9110 allows both forms).
#[derive(Clone, Debug, PartialEq)]
pub enum RetryAfter {
    Seconds(u64),
    HttpDate(DateTime<Utc>),
}

impl RetryAfter {
    /// The header value; dates use the IMF-fixdate form HTTP requires.
    pub(super) fn header_value(&self) -> String {
        match self {
            RetryAfter::Seconds(secs) => secs.to_string(),
            RetryAfter::HttpDate(at) => at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        }
    }
}

/// The faults `World::set_random_faults` draws from: the ones a client should
/// survive by retrying.
pub(super) fn transient_faults() -> [Fault; 8] {
    [
        Fault::InternalError,
        Fault::ServiceUnavailable,
        Fault::BadGatewayHtml,
        Fault::TooManyRequests {
            retry_after: Some(RetryAfter::Seconds(0)),
        },
        Fault::TooManyRequests { retry_after: None },
        Fault::TruncatedJson,
        Fault::ConnectionReset,
        Fault::AppError { code: 50001 },
    ]
}

const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\
<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
</body>\r\n</html>\r\n";

const PORTAL_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\
<body><h1>Please sign in to continue</h1><form method=\"post\"></form></body></html>\n";

impl Fault {
    /// The answer that replaces the normal one, or `None` for faults that only
    /// delay it ([`Fault::Latency`]; the caller does the waiting).
    pub(super) fn render(&self, request_id: &str) -> Option<Response> {
        let response = match self {
            Fault::InternalError => envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                500,
                "Internal Server Error",
                request_id,
            ),
            Fault::ServiceUnavailable => text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "Service Temporarily Unavailable\n".to_owned(),
            ),
            Fault::BadGatewayHtml => text_response(
                StatusCode::BAD_GATEWAY,
                "text/html; charset=utf-8",
                BAD_GATEWAY_PAGE.to_owned(),
            ),
            Fault::TooManyRequests { retry_after } => {
                too_many_requests(retry_after.as_ref(), request_id)
            }
            Fault::HtmlPage => text_response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                PORTAL_PAGE.to_owned(),
            ),
            Fault::TruncatedJson => {
                let full = sample_envelope(request_id);
                let cut = full[..half_on_char_boundary(&full)].to_owned();
                text_response(StatusCode::OK, JSON, cut)
            }
            Fault::ConnectionReset => connection_reset(sample_envelope(request_id)),
            Fault::AppError { code } => envelope(
                StatusCode::OK,
                *code,
                &format!("Application error {code}."),
                request_id,
            ),
            Fault::RequestTimeout => text_response(
                StatusCode::REQUEST_TIMEOUT,
                "text/plain; charset=utf-8",
                "Request Timeout\n".to_owned(),
            ),
            Fault::Unauthorized => unauthorized(request_id),
            Fault::Forbidden => forbidden(request_id),
            Fault::NotFound => not_found(request_id),
            Fault::Latency(_) => return None,
        };
        Some(response)
    }
}

pub(super) const JSON: &str = "application/json";

/// A response with a fixed body; `Body::from(String)` sets an exact `Content-Length`.
pub(super) fn text_response(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).expect("content types here are ASCII constants"),
    );
    response
}

/// The ChatofAI error envelope: `{"code","msg","data":null,"request_id"}`.
pub(super) fn envelope(status: StatusCode, code: i64, msg: &str, request_id: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "msg": msg,
        "data": null,
        "request_id": request_id,
    });
    text_response(status, JSON, body.to_string())
}

pub(super) fn unauthorized(request_id: &str) -> Response {
    envelope(StatusCode::UNAUTHORIZED, 401, "Unauthorized", request_id)
}

pub(super) fn forbidden(request_id: &str) -> Response {
    envelope(StatusCode::FORBIDDEN, 403, "Forbidden", request_id)
}

pub(super) fn not_found(request_id: &str) -> Response {
    envelope(StatusCode::NOT_FOUND, 404, "Not Found", request_id)
}

fn too_many_requests(retry_after: Option<&RetryAfter>, request_id: &str) -> Response {
    let mut response = envelope(
        StatusCode::TOO_MANY_REQUESTS,
        429,
        "Too Many Requests",
        request_id,
    );
    if let Some(retry_after) = retry_after {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&retry_after.header_value())
                .expect("digits and an IMF-fixdate are valid header values"),
        );
    }
    response
}

/// A plausible success envelope, used as the body that truncation and resets damage.
fn sample_envelope(request_id: &str) -> String {
    serde_json::json!({
        "code": 0,
        "msg": "Success.",
        "data": {
            "leads": [{
                "bot_uid": "86a2eb21-9711-4950-8ffd-50c04317956c",
                "conversation_uid": "a3ccacb5-c826-471e-acc4-97b8914fd40f",
                "created_at": "2023-11-13T20:02:52+00:00",
                "email": "visitor@example.com",
                "name": "Visitor",
                "phone": "+1 555 0100",
                "remark": "Call me back",
            }],
            "page": 1,
            "page_size": 10,
            "total": 1,
        },
        "request_id": request_id,
    })
    .to_string()
}

fn half_on_char_boundary(text: &str) -> usize {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    cut
}

/// Sends the headers (announcing the full length) and the first half of the
/// body, then fails the body stream, which makes hyper drop the connection.
fn connection_reset(full: String) -> Response {
    let full_len = full.len();
    let first_half = Bytes::from(full).slice(..full_len / 2);
    let body = stream::iter([Ok::<Bytes, std::io::Error>(first_half)]).chain(stream::once(async {
        // Returning Pending once lets hyper flush the headers and the first
        // half before it sees the error and closes the socket; without it
        // the client could see a reset before any header.
        tokio::task::yield_now().await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake API: connection reset mid-body",
        ))
    }));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(full_len));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::testkit::{Harness, json_body};
    use chrono::TimeZone;

    /// Starts a server whose next request answers with `fault`, and sends it.
    async fn answer_with(fault: Fault) -> (Harness, reqwest::Response) {
        let harness = Harness::start().await;
        harness.world().push_faults(None, [fault]);
        let response = harness.get("").await;
        (harness, response)
    }

    fn content_type(response: &reqwest::Response) -> String {
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn internal_error_is_a_500_envelope() {
        let (h, response) = answer_with(Fault::InternalError).await;
        assert_eq!(response.status(), 500);
        let body = json_body(response).await;
        assert_eq!(body["code"], 500);
        assert!(body["request_id"].is_string());
        h.stop().await;
    }

    #[tokio::test]
    async fn service_unavailable_is_plain_text() {
        let (h, response) = answer_with(Fault::ServiceUnavailable).await;
        assert_eq!(response.status(), 503);
        assert!(content_type(&response).starts_with("text/plain"));
        h.stop().await;
    }

    #[tokio::test]
    async fn bad_gateway_is_an_html_page() {
        let (h, response) = answer_with(Fault::BadGatewayHtml).await;
        assert_eq!(response.status(), 502);
        assert!(content_type(&response).starts_with("text/html"));
        let body = response.text().await.expect("body");
        assert!(body.contains("<html>"));
        h.stop().await;
    }

    #[tokio::test]
    async fn too_many_requests_renders_each_retry_after_form() {
        let at = Utc
            .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
            .single()
            .expect("valid date");
        let cases = [
            (Some(RetryAfter::Seconds(7)), Some("7")),
            (
                Some(RetryAfter::HttpDate(at)),
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            ),
            (None, None),
        ];
        for (retry_after, expected) in cases {
            let (h, response) = answer_with(Fault::TooManyRequests { retry_after }).await;
            assert_eq!(response.status(), 429);
            let header = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().expect("ASCII header").to_owned());
            assert_eq!(header.as_deref(), expected);
            h.stop().await;
        }
    }

    #[tokio::test]
    async fn html_page_is_a_200_with_html() {
        let (h, response) = answer_with(Fault::HtmlPage).await;
        assert_eq!(response.status(), 200);
        assert!(content_type(&response).starts_with("text/html"));
        h.stop().await;
    }

    #[tokio::test]
    async fn truncated_json_arrives_whole_but_does_not_parse() {
        let (h, response) = answer_with(Fault::TruncatedJson).await;
        assert_eq!(response.status(), 200);
        let announced = response.content_length().expect("Content-Length is set");
        let body = response
            .bytes()
            .await
            .expect("the transfer itself succeeds");
        assert_eq!(body.len() as u64, announced);
        assert!(body.starts_with(b"{\"code\":0"));
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
        h.stop().await;
    }

    #[tokio::test]
    async fn connection_reset_fails_the_body_read() {
        let (h, response) = answer_with(Fault::ConnectionReset).await;
        assert_eq!(response.status(), 200, "headers arrive before the reset");
        assert!(response.bytes().await.is_err());
        h.stop().await;
    }

    #[tokio::test]
    async fn app_error_is_a_200_with_a_nonzero_code() {
        let (h, response) = answer_with(Fault::AppError { code: 50001 }).await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert_eq!(body["code"], 50001);
        assert!(body["msg"].is_string());
        h.stop().await;
    }

    #[tokio::test]
    async fn auth_faults_render_their_status() {
        for (fault, status) in [
            (Fault::Unauthorized, 401),
            (Fault::Forbidden, 403),
            (Fault::NotFound, 404),
        ] {
            let (h, response) = answer_with(fault).await;
            assert_eq!(response.status(), status);
            let body = json_body(response).await;
            assert_eq!(body["code"], status);
            h.stop().await;
        }
    }

    #[tokio::test]
    async fn latency_fault_delays_a_normal_answer() {
        let delay = Duration::from_millis(40);
        let started = std::time::Instant::now();
        let (h, response) = answer_with(Fault::Latency(delay)).await;
        assert!(started.elapsed() >= delay);
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert_eq!(body["code"], 0);
        h.stop().await;
    }

    #[test]
    fn truncation_cuts_on_a_char_boundary() {
        let text = "ab\u{e9}\u{e9}";
        assert!(text.is_char_boundary(half_on_char_boundary(text)));
    }
}
