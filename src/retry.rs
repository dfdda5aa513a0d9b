//! The one retry policy for calls to ChatofAI: what is worth retrying, how long to wait, and
//! when to give up. Built on `backon` (the maintained successor of `backoff`, which is
//! unmaintained: RUSTSEC-2025-0012).

use std::{future::Future, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

use crate::chatof::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is cut down to it, so one answer cannot park a run for
    /// hours; the attempt budget still bounds the whole.
    pub max_retry_after: Duration,
}

/// Whether an error is worth another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The network, a proxy or an overloaded server: try again after a backoff.
    Transient,
    /// The request itself is refused (bad key, no permission, no such path): retrying cannot help.
    Permanent,
}

pub fn classify(err: &ApiError) -> Disposition {
    match err {
        ApiError::Connect(_)
        | ApiError::Timeout(_)
        | ApiError::Transport(_)
        | ApiError::BadBody { .. }
        // A non-zero `code` on HTTP 200 is undocumented; seen from the outside it is most
        // likely a hiccup, and the attempt budget keeps it bounded.
        | ApiError::Application { .. } => Disposition::Transient,
        // Following it would send the key elsewhere; asking again gets the same answer.
        // The same request gets the same answer: the caller asks for smaller pages instead.
        ApiError::Redirect { .. } | ApiError::TooLarge { .. } | ApiError::Tls(_) => {
            Disposition::Permanent
        }
        ApiError::Status { status, .. } => {
            if status.is_server_error()
                || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || *status == reqwest::StatusCode::REQUEST_TIMEOUT
            {
                Disposition::Transient
            } else {
                Disposition::Permanent
            }
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> impl backon::Backoff {
        ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }

    /// The delay before the next attempt: the server's `Retry-After` when it gave one (capped),
    /// otherwise the exponential backoff with jitter. `None` once the attempts are used up.
    fn next_delay(&self, err: &ApiError, backoff_delay: Option<Duration>) -> Option<Duration> {
        let backoff_delay = backoff_delay?;
        match err {
            ApiError::Status {
                retry_after: Some(retry_after),
                ..
            } => Some(retry_after.0.min(self.max_retry_after)),
            _ => Some(backoff_delay),
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or the attempts run out.
    /// `on_retry` hears about every failed attempt that will be retried, with the delay.
    pub async fn run<T, F, Fut>(
        &self,
        attempt: F,
        mut on_retry: impl FnMut(&ApiError, Duration),
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(|err| classify(err) == Disposition::Transient)
            .adjust(|err, delay| self.next_delay(err, delay))
            .notify(|err, delay| on_retry(err, delay))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::StatusCode;

    use super::*;
    use crate::chatof::RetryAfter;

    fn status(code: u16, retry_after: Option<Duration>) -> ApiError {
        ApiError::Status {
            status: StatusCode::from_u16(code).expect("status"),
            request_id: None,
            retry_after: retry_after.map(RetryAfter),
        }
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_retry_after: Duration::from_millis(50),
        }
    }

    #[test]
    fn server_errors_throttling_and_broken_bodies_are_transient() {
        for code in [500, 502, 503, 504, 429, 408] {
            assert_eq!(
                classify(&status(code, None)),
                Disposition::Transient,
                "{code}"
            );
        }
        assert_eq!(
            classify(&ApiError::Timeout(Duration::from_secs(1))),
            Disposition::Transient
        );
        assert_eq!(
            classify(&ApiError::Transport("reset".into())),
            Disposition::Transient
        );
        let bad_body = ApiError::BadBody {
            status: StatusCode::OK,
            bytes: 10,
            detail: "truncated JSON".into(),
            request_id: None,
        };
        assert_eq!(classify(&bad_body), Disposition::Transient);
    }

    #[test]
    fn refusals_are_permanent() {
        for code in [400, 401, 403, 404] {
            assert_eq!(
                classify(&status(code, None)),
                Disposition::Permanent,
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_replaces_the_backoff_and_is_capped() {
        let policy = policy(5);
        let backoff = Some(Duration::from_millis(2));
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_millis(30))), backoff),
            Some(Duration::from_millis(30))
        );
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::from_secs(3600))), backoff),
            Some(Duration::from_millis(50))
        );
        assert_eq!(policy.next_delay(&status(503, None), backoff), backoff);
        assert_eq!(
            policy.next_delay(&status(429, Some(Duration::ZERO)), None),
            None
        );
    }

    #[tokio::test]
    async fn a_transient_error_is_retried_until_the_attempts_run_out() {
        let calls = AtomicU32::new(0);
        let mut retries = 0;
        let result: Result<(), _> = policy(3)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(status(503, None))
                },
                |_, _| retries += 1,
            )
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries, 2);
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = policy(5)
            .run(
                || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(status(401, None))
                },
                |_, _| {},
            )
            .await;
        assert!(matches!(result, Err(ApiError::Status { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn success_after_a_failure_returns_the_value() {
        let calls = AtomicU32::new(0);
        let result = policy(3)
            .run(
                || async {
                    match calls.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(status(429, Some(Duration::ZERO))),
                        _ => Ok(42),
                    }
                },
                |_, _| {},
            )
            .await;
        assert_eq!(result.expect("second attempt succeeds"), 42);
    }
}
