//! The HTTP side of the fake API: one axum route that turns a request into an
//! answer from the [`World`], and the lifecycle of the server task.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::NaiveDate;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::faults::{self, Fault};
use super::world::{Denial, LeadPage, PageRequest, RecordedRequest, World};

/// The path prefix every ChatofAI backend endpoint lives under.
const API_PREFIX: &str = "/api/v1/backend";
/// The envelope `code` for a query the server cannot understand (answered with
/// HTTP 200, like the other application errors).
const INVALID_PARAMETER: i64 = 40001;

/// A running fake API server. Dropping it also shuts the server down, but
/// [`FakeApi::stop`] waits until it has.
pub struct FakeApi {
    addr: SocketAddr,
    world: World,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApi")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct AppState {
    world: World,
    /// Becomes `true` on stop, which releases requests held at a gate.
    shutdown: watch::Receiver<bool>,
}

impl FakeApi {
    /// Serves `world` on an ephemeral port of 127.0.0.1.
    pub async fn start(world: World) -> std::io::Result<FakeApi> {
        Self::start_on(world, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Serves `world` on `addr`.
    pub async fn start_on(world: World, addr: SocketAddr) -> std::io::Result<FakeApi> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let router = router(AppState {
            world: world.clone(),
            shutdown: shutdown_rx.clone(),
        });
        let mut stop_signal = shutdown_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // An error means the `FakeApi` is gone: shut down as well.
                    let _ = stop_signal.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::debug!(%addr, "fake ChatofAI API listening");
        Ok(FakeApi {
            addr,
            world,
            shutdown,
            task: Some(task),
        })
    }

    /// The base URL a client is configured with, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Stops accepting connections, releases held requests and waits for the
    /// requests in flight to be answered.
    pub async fn stop(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "fake API server failed"),
                Err(error) => tracing::warn!(%error, "fake API server task failed"),
            }
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route(
            &format!("{API_PREFIX}/chatbot/{{bot_uid}}/leads"),
            get(list_leads),
        )
        .fallback(|| async { faults::not_found(&new_request_id()) })
        .with_state(state)
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `GET /chatbot/{bot_uid}/leads`: hold, delay, fault, authenticate, list —
/// in that order, because holds and faults model the network in front of the
/// service, which answers before any authentication happens.
async fn list_leads(
    State(state): State<AppState>,
    Path(bot_uid): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let world = &state.world;
    let received = recorded(&bot_uid, &query);
    let (sequence, _in_flight) = world.begin_request(received);

    let hold = page_number(&query).and_then(|page| world.take_hold(&bot_uid, page));
    if let Some(gate) = hold {
        gate.mark_arrived();
        let mut shutdown = state.shutdown.clone();
        tokio::select! {
            () = gate.released() => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    }
    sleep_if_any(world.latency()).await;

    let request_id = new_request_id();
    let fault = world.next_fault(&bot_uid);
    if let Some(fault) = &fault {
        if let Fault::Latency(delay) = fault {
            sleep_if_any(*delay).await;
        }
        if let Some(response) = fault.render(&request_id) {
            let status = response.status().as_u16();
            world.finish_request(sequence, status, Some(fault.clone()), Some(&request_id), 0);
            return response;
        }
    }

    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let mut served = 0;
    let response = match world.authorize(&bot_uid, authorization) {
        Err(Denial::Unauthorized) => faults::unauthorized(&request_id),
        Err(Denial::UnknownBot) => faults::not_found(&request_id),
        Err(Denial::Forbidden) => faults::forbidden(&request_id),
        Ok(()) => match page_request(&query) {
            Ok(request) => {
                let page = world.list_page(&bot_uid, &request);
                served = page.leads.len();
                success(&page, &request_id)
            }
            Err(message) => {
                faults::envelope(StatusCode::OK, INVALID_PARAMETER, &message, &request_id)
            }
        },
    };
    world.finish_request(
        sequence,
        response.status().as_u16(),
        fault,
        Some(&request_id),
        served,
    );
    response
}

async fn sleep_if_any(delay: std::time::Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// The request as received, before any validation.
fn recorded(bot_uid: &str, query: &HashMap<String, String>) -> RecordedRequest {
    let number = |key: &str| query.get(key).and_then(|v| v.parse::<u32>().ok());
    RecordedRequest {
        bot_uid: bot_uid.to_owned(),
        start_date: query.get("start_date").cloned(),
        end_date: query.get("end_date").cloned(),
        page: number("page"),
        page_size: number("page_size"),
        status: 0,
        fault: None,
        received_at: std::time::Instant::now(),
        request_id: None,
        records: 0,
    }
}

/// The page a hold applies to: 1 when absent, none when unparseable.
fn page_number(query: &HashMap<String, String>) -> Option<u32> {
    query.get("page").map_or(Some(1), |v| v.parse().ok())
}

/// Validates the query. Errors are the envelope message, e.g. "invalid start_date".
fn page_request(query: &HashMap<String, String>) -> Result<PageRequest, String> {
    let invalid = |key: &str| format!("invalid {key}");
    let date = |key: &str| -> Result<Option<NaiveDate>, String> {
        query
            .get(key)
            .map(|text| parse_day(text).ok_or_else(|| invalid(key)))
            .transpose()
    };
    let page = match query.get("page") {
        None => 1,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| invalid("page"))?,
    };
    // Any integer is accepted and clamped by the world; only non-numbers fail.
    let page_size = match query.get("page_size") {
        None => 10,
        Some(text) => text.parse::<i64>().map_err(|_| invalid("page_size"))?,
    };
    Ok(PageRequest {
        start: date("start_date")?,
        end: date("end_date")?,
        page,
        page_size,
    })
}

/// Strictly `YYYY-MM-DD` (chrono alone would also take `2024-1-5`).
fn parse_day(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn success(page: &LeadPage, request_id: &str) -> Response {
    let body = serde_json::json!({
        "code": 0,
        "msg": "Success.",
        "data": {
            "leads": page.leads,
            "page": page.page,
            "page_size": page.page_size,
            "total": page.total,
        },
        "request_id": request_id,
    });
    faults::text_response(StatusCode::OK, faults::JSON, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::testkit::{BOT, Harness, KEY, client, json_body};
    use crate::fake_api::{FakeLead, Order, WorldSettings};
    use chrono::{DateTime, FixedOffset};
    use serde_json::Value;

    fn lead(uid: &str, created_at: &str) -> FakeLead {
        let at = DateTime::parse_from_rfc3339(created_at).expect("test times are RFC 3339");
        FakeLead::new(BOT, uid, at)
    }

    /// `n` leads one hour apart, uids `lead-00`.. in creation order.
    fn hourly(harness: &Harness, n: usize) {
        for i in 0..n {
            let at = format!("2024-03-01T{i:02}:00:00Z");
            harness
                .world()
                .insert_lead(BOT, lead(&format!("lead-{i:02}"), &at));
        }
    }

    fn uids(body: &Value) -> Vec<String> {
        body["data"]["leads"]
            .as_array()
            .expect("data.leads is a list")
            .iter()
            .map(|l| l["conversation_uid"].as_str().expect("uid").to_owned())
            .collect()
    }

    fn total(body: &Value) -> u64 {
        body["data"]["total"].as_u64().expect("data.total")
    }

    #[tokio::test]
    async fn pages_are_offset_slices_and_the_clamp_is_reported() {
        let h = Harness::start_with(WorldSettings {
            max_page_size: 5,
            ..WorldSettings::default()
        })
        .await;
        hourly(&h, 12);

        let first = h.get_json("page_size=100").await;
        assert_eq!(first["code"], 0);
        assert_eq!(first["msg"], "Success.");
        assert!(first["request_id"].is_string());
        assert_eq!(first["data"]["page"], 1);
        assert_eq!(first["data"]["page_size"], 5, "clamped value is reported");
        assert_eq!(total(&first), 12);
        assert_eq!(uids(&first).len(), 5);

        let third = h.get_json("page=3&page_size=5").await;
        assert_eq!(uids(&third), ["lead-01", "lead-00"]);
        let beyond = h.get_json("page=4&page_size=5").await;
        assert!(uids(&beyond).is_empty());
        assert_eq!(total(&beyond), 12);

        let tiny = h.get_json("page_size=0").await;
        assert_eq!(tiny["data"]["page_size"], 1);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_silent_server_clamps_without_saying_so_and_may_leave_out_the_total() {
        let h = Harness::start_with(WorldSettings {
            max_page_size: 5,
            reports_page_size: false,
            total: crate::fake_api::TotalMode::Absent,
            ..WorldSettings::default()
        })
        .await;
        hourly(&h, 12);

        let first = h.get_json("page_size=100").await;
        assert_eq!(uids(&first).len(), 5, "still clamped");
        assert!(first["data"]["page_size"].is_null());
        assert!(first["data"]["total"].is_null());
        h.stop().await;
    }

    #[tokio::test]
    async fn default_page_size_is_ten() {
        let h = Harness::start().await;
        hourly(&h, 12);
        let body = h.get_json("").await;
        assert_eq!(body["data"]["page_size"], 10);
        assert_eq!(uids(&body).len(), 10);
        h.stop().await;
    }

    #[tokio::test]
    async fn newest_first_breaks_ties_by_uid_and_oldest_first_reverses() {
        let setups = [
            (Order::NewestFirst, ["c", "b", "a", "old"]),
            (Order::OldestFirst, ["old", "a", "b", "c"]),
        ];
        for (order, expected) in setups {
            let h = Harness::start_with(WorldSettings {
                order,
                ..WorldSettings::default()
            })
            .await;
            for uid in ["b", "a", "c"] {
                h.world()
                    .insert_lead(BOT, lead(uid, "2024-03-02T10:00:00+02:00"));
            }
            h.world()
                .insert_lead(BOT, lead("old", "2024-03-02T07:59:59Z"));
            let first = h.get_json("page_size=2").await;
            let second = h.get_json("page_size=2&page=2").await;
            assert_eq!([uids(&first), uids(&second)].concat(), expected);
            h.stop().await;
        }
    }

    /// Leads around the 2024-03-02 day boundary, in UTC.
    fn around_march_2(h: &Harness) {
        for (uid, at) in [
            ("late-mar-1", "2024-03-01T23:30:00Z"),
            ("midnight-mar-2", "2024-03-02T00:00:00Z"),
            ("noon-mar-2", "2024-03-02T12:00:00Z"),
            ("evening-mar-2", "2024-03-02T19:00:00Z"),
            ("midnight-mar-3", "2024-03-03T00:00:00Z"),
        ] {
            h.world().insert_lead(BOT, lead(uid, at));
        }
    }

    async fn listed(h: &Harness, query: &str) -> Vec<String> {
        let mut found = uids(&h.get_json(&format!("{query}&page_size=50")).await);
        found.sort();
        found
    }

    #[tokio::test]
    async fn day_filter_with_inclusive_end() {
        let h = Harness::start().await;
        around_march_2(&h);
        let one_day = listed(&h, "start_date=2024-03-02&end_date=2024-03-02").await;
        assert_eq!(one_day, ["evening-mar-2", "midnight-mar-2", "noon-mar-2"]);
        let from_day = listed(&h, "start_date=2024-03-02").await;
        assert_eq!(from_day.len(), 4);
        let until_day = listed(&h, "end_date=2024-03-01").await;
        assert_eq!(until_day, ["late-mar-1"]);
        let inverted = h
            .get_json("start_date=2024-03-03&end_date=2024-03-01")
            .await;
        assert_eq!(total(&inverted), 0);
        h.stop().await;
    }

    #[tokio::test]
    async fn day_filter_with_exclusive_end() {
        let h = Harness::start_with(WorldSettings {
            end_date_inclusive: false,
            ..WorldSettings::default()
        })
        .await;
        around_march_2(&h);
        assert!(
            listed(&h, "start_date=2024-03-02&end_date=2024-03-02")
                .await
                .is_empty()
        );
        let two_days = listed(&h, "start_date=2024-03-02&end_date=2024-03-03").await;
        assert_eq!(two_days, ["evening-mar-2", "midnight-mar-2", "noon-mar-2"]);
        h.stop().await;
    }

    #[tokio::test]
    async fn day_filter_in_another_time_zone() {
        let h = Harness::start_with(WorldSettings {
            day_filter_offset: FixedOffset::east_opt(5 * 3600 + 1800).expect("+05:30"),
            ..WorldSettings::default()
        })
        .await;
        around_march_2(&h);
        // In +05:30, 2024-03-02 runs from 03-01T18:30Z to 03-02T18:30Z.
        let one_day = listed(&h, "start_date=2024-03-02&end_date=2024-03-02").await;
        assert_eq!(one_day, ["late-mar-1", "midnight-mar-2", "noon-mar-2"]);
        h.stop().await;
    }

    #[tokio::test]
    async fn authentication_and_unknown_paths() {
        let h = Harness::start().await;
        let cases = [
            (h.get_as(BOT, None, "").await, 401),
            (h.get_as(BOT, Some("wrong"), "").await, 401),
            (h.get_as("no-such-bot", Some(KEY), "").await, 404),
        ];
        for (response, status) in cases {
            assert_eq!(response.status(), status);
            let body = json_body(response).await;
            assert_eq!(body["code"], status);
            assert!(body["data"].is_null());
        }
        h.world().set_forbidden(BOT, true);
        assert_eq!(h.get("").await.status(), 403);
        h.world().set_forbidden(BOT, false);
        assert_eq!(h.get("").await.status(), 200);

        let elsewhere = format!("{}/chatbot/{BOT}/other", h.api.base_url());
        let response = client().get(elsewhere).send().await.expect("answered");
        assert_eq!(response.status(), 404);
        h.stop().await;
    }

    #[tokio::test]
    async fn malformed_query_is_an_application_error() {
        let h = Harness::start().await;
        for (query, message) in [
            ("start_date=2024-3-2", "invalid start_date"),
            ("end_date=yesterday", "invalid end_date"),
            ("page=0", "invalid page"),
            ("page_size=ten", "invalid page_size"),
        ] {
            let response = h.get(query).await;
            assert_eq!(response.status(), 200);
            let body = json_body(response).await;
            assert_eq!(body["code"], INVALID_PARAMETER, "{query}");
            assert_eq!(body["msg"], message);
        }
        h.stop().await;
    }

    #[tokio::test]
    async fn requests_are_recorded_as_received() {
        let h = Harness::start().await;
        h.world().push_faults(None, [Fault::InternalError]);
        h.get("start_date=2024-03-02&page=x&page_size=7").await;
        h.get_as(BOT, None, "end_date=2024-03-05&page=2").await;
        let log = h.world().requests();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].bot_uid, BOT);
        assert_eq!(log[0].start_date.as_deref(), Some("2024-03-02"));
        assert_eq!((log[0].page, log[0].page_size), (None, Some(7)));
        assert_eq!(
            (log[0].status, log[0].fault.clone()),
            (500, Some(Fault::InternalError))
        );
        assert_eq!(log[1].end_date.as_deref(), Some("2024-03-05"));
        assert_eq!(
            (log[1].page, log[1].status, log[1].fault.clone()),
            (Some(2), 401, None)
        );
        h.world().clear_requests();
        assert!(h.world().requests().is_empty());
        h.stop().await;
    }

    #[tokio::test]
    async fn scripted_faults_are_consumed_in_order_bot_queue_first() {
        let h = Harness::start().await;
        h.world()
            .push_faults(None, [Fault::ServiceUnavailable, Fault::HtmlPage]);
        h.world().push_faults(Some(BOT), [Fault::InternalError]);
        h.world().push_faults(Some("other-bot"), [Fault::Forbidden]);
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(h.get("").await.status().as_u16());
        }
        assert_eq!(statuses, [500, 503, 200, 200]);
        let faults: Vec<Option<Fault>> =
            h.world().requests().into_iter().map(|r| r.fault).collect();
        assert_eq!(
            faults,
            [
                Some(Fault::InternalError),
                Some(Fault::ServiceUnavailable),
                Some(Fault::HtmlPage),
                None
            ]
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn random_faults_follow_the_seed_and_can_be_switched_off() {
        let mut runs = Vec::new();
        for _ in 0..2 {
            let h = Harness::start().await;
            h.world().set_random_faults(0.5, 99);
            for _ in 0..20 {
                h.get("").await;
            }
            let faults: Vec<Option<Fault>> =
                h.world().requests().into_iter().map(|r| r.fault).collect();
            h.world().set_random_faults(0.0, 99);
            assert_eq!(h.get("").await.status(), 200);
            runs.push(faults);
            h.stop().await;
        }
        assert_eq!(runs[0], runs[1], "same seed, same faults");
        let failed = runs[0].iter().filter(|f| f.is_some()).count();
        assert!((3..=17).contains(&failed), "about half fail, got {failed}");
    }

    #[tokio::test]
    async fn after_page_arrivals_shift_the_next_page_once() {
        let h = Harness::start().await;
        hourly(&h, 10);
        let arrival = lead("arrival", "2024-03-01T23:00:00Z");
        h.world().after_page(BOT, 1, vec![arrival]);

        let first = h.get_json("page_size=5").await;
        assert_eq!(total(&first), 10, "arrivals come after the page");
        assert_eq!(uids(&first)[4], "lead-05");
        let second = h.get_json("page=2&page_size=5").await;
        assert_eq!(total(&second), 11);
        assert_eq!(uids(&second)[0], "lead-05", "shifted: seen twice");

        let again = h.get_json("page_size=5").await;
        assert_eq!(uids(&again)[0], "arrival");
        assert_eq!(total(&again), 11, "fired once");
        h.stop().await;
    }

    #[tokio::test]
    async fn after_page_waits_for_a_successful_answer() {
        let h = Harness::start().await;
        hourly(&h, 3);
        h.world()
            .after_page(BOT, 1, vec![lead("arrival", "2024-03-01T23:00:00Z")]);
        h.world().push_faults(None, [Fault::InternalError]);
        assert_eq!(h.get("").await.status(), 500);
        assert_eq!(h.world().truth(BOT).len(), 3);
        h.get("").await;
        assert_eq!(h.world().truth(BOT).len(), 4);
        h.stop().await;
    }

    #[tokio::test]
    async fn hold_page_holds_until_released() {
        let h = Harness::start().await;
        hourly(&h, 3);
        let gate = h.world().hold_page(BOT, 2);
        let url = format!(
            "{}/chatbot/{BOT}/leads?page=2&page_size=2",
            h.api.base_url()
        );
        let held = tokio::spawn(async move {
            let response = client()
                .get(url)
                .bearer_auth(KEY)
                .send()
                .await
                .expect("answered after release");
            json_body(response).await
        });
        gate.arrived().await;
        // Other pages are not held while page 2 waits.
        assert_eq!(
            uids(&h.get_json("page_size=2").await),
            ["lead-02", "lead-01"]
        );
        let log = h.world().requests();
        assert_eq!(
            (log[0].page, log[0].status),
            (Some(2), 0),
            "still in flight"
        );
        assert!(!held.is_finished());

        gate.release();
        let body = held.await.expect("request task");
        assert_eq!(uids(&body), ["lead-00"]);
        assert_eq!(h.world().requests()[0].status, 200);
        h.stop().await;
    }

    #[tokio::test]
    async fn stop_releases_a_held_request() {
        let h = Harness::start().await;
        let gate = h.world().hold_page(BOT, 1);
        let url = format!("{}/chatbot/{BOT}/leads", h.api.base_url());
        let held = tokio::spawn(async move { client().get(url).bearer_auth(KEY).send().await });
        gate.arrived().await;
        h.stop().await;
        let answered = held.await.expect("request task");
        assert_eq!(answered.expect("answered at stop").status(), 200);
    }

    #[tokio::test]
    async fn latency_delays_every_answer() {
        let h = Harness::start().await;
        let latency = std::time::Duration::from_millis(30);
        h.world().set_latency(latency);
        let started = std::time::Instant::now();
        assert_eq!(h.get_as(BOT, None, "").await.status(), 401);
        assert!(started.elapsed() >= latency);
        h.stop().await;
    }

    #[tokio::test]
    async fn edits_and_removals_show_in_the_next_answer() {
        let h = Harness::start().await;
        hourly(&h, 2);
        assert!(
            h.world()
                .edit_lead("lead-01", "remark", Value::from("filled in later"))
        );
        assert!(h.world().remove_lead("lead-00"));
        assert!(!h.world().remove_lead("lead-00"));
        let body = h.get_json("").await;
        assert_eq!(total(&body), 1);
        assert_eq!(body["data"]["leads"][0]["remark"], "filled in later");
        h.stop().await;
    }

    #[tokio::test]
    async fn base_url_has_the_api_prefix_and_no_trailing_slash() {
        let h = Harness::start().await;
        let expected = format!("http://127.0.0.1:{}/api/v1/backend", h.api.addr().port());
        assert_eq!(h.api.base_url(), expected);
        assert!(format!("{:?}", h.api).contains("FakeApi"));
        h.stop().await;
    }
}
