//! Health and metrics over HTTP for `leadsync run`: `/healthz`, `/readyz`, `/metrics`.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{metrics::metrics, scheduler::ScheduleHealth, store};

#[derive(Clone, Debug)]
pub struct HealthState {
    pub pool: store::Pool,
    /// `None` while the daemon waits for the database before starting its schedule.
    pub schedule: Arc<std::sync::OnceLock<Arc<ScheduleHealth>>>,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// Serves until `cancel` fires.
pub async fn serve(listener: TcpListener, state: HealthState, cancel: CancellationToken) {
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(err) = served {
        tracing::error!(error = %err, "http_server_failed");
    }
}

/// Alive, and every cron job ticking on time (waiting for the database at start-up counts as
/// alive: a restart would not help).
async fn healthz(State(state): State<HealthState>) -> impl IntoResponse {
    let stalled = state
        .schedule
        .get()
        .map(|health| health.stalled())
        .unwrap_or_default();
    if stalled.is_empty() {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("schedule stalled: {}\n", stalled.join(", ")),
        )
    }
}

/// The schedule runs (the daemon found the database writable and migrated), the database
/// answers and the schema is fully migrated.
async fn readyz(State(state): State<HealthState>) -> impl IntoResponse {
    if state.schedule.get().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the database: the schedule has not started\n".to_owned(),
        );
    }
    match tokio::time::timeout(
        Duration::from_secs(2),
        store::pending_migrations(&state.pool),
    )
    .await
    {
        Ok(Ok(pending)) if pending.is_empty() => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Ok(pending)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} migrations pending\n", pending.len()),
        ),
        Ok(Err(_)) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable\n".to_owned(),
        ),
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().render(),
    )
}
