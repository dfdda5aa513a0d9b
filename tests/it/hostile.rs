//! Servers that misbehave in ways the bundled fake cannot: a raw HTTP/1.1 server of the tests'
//! own, answering every request with what the test says.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use chrono::{TimeDelta, Utc};
use leadsync::{
    fake_api::WorldSettings,
    sync::{RunOutcome, SyncError},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::helpers::*;

/// A server that answers every request with `answer(path_and_query)`, a whole HTTP response.
struct Hostile {
    base_url: String,
    requests: Arc<AtomicUsize>,
    /// The head (request line and headers) of every request, in arrival order.
    heads: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Hostile {
    async fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = heads.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let answer = answer.clone();
                let counter = counter.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let text = String::from_utf8_lossy(&head).into_owned();
                    log.lock().expect("heads").push(text.clone());
                    let target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let _ = socket.write_all(&answer(&target)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Hostile {
            base_url: format!("http://{addr}/api/v1/backend"),
            requests,
            heads,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    response_bytes(status, headers, body.as_bytes())
}

/// A response whose body need not be text.
fn response_bytes(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One sync pass of `BOT_A` against `server` instead of the bundled fake.
async fn sync_against(h: &Harness, server: &Hostile) -> leadsync::sync::RunReport {
    sync_against_with(h, server, &[]).await
}

async fn sync_against_with(
    h: &Harness,
    server: &Hostile,
    overrides: &[(&str, &str)],
) -> leadsync::sync::RunReport {
    let toml = h
        .config_toml("")
        .replace(&h.api.base_url(), &server.base_url);
    let mut reports = h.sync_toml(&toml, overrides).await;
    reports.remove(0)
}

/// A query parameter of a request target.
fn param(target: &str, name: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// A leads listing of `leads` (uid, created_at), filtered by day and paged as asked, newest
/// first, as a body; every lead carries a remark of `remark_bytes`.
fn listing(target: &str, leads: &[(String, chrono::DateTime<Utc>)], remark_bytes: usize) -> String {
    let day = |name| param(target, name).and_then(|day| day.parse::<chrono::NaiveDate>().ok());
    let (start, end) = (day("start_date"), day("end_date"));
    let page: usize = param(target, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let size: usize = param(target, "page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50);
    let mut listed: Vec<_> = leads
        .iter()
        .filter(|(_, at)| start.is_none_or(|start| at.date_naive() >= start))
        .filter(|(_, at)| end.is_none_or(|end| at.date_naive() <= end))
        .collect();
    listed.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
    let total = listed.len();
    let remark = "r".repeat(remark_bytes);
    let records: Vec<serde_json::Value> = listed
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|(uid, at)| {
            serde_json::json!({"conversation_uid": uid, "bot_uid": BOT_A,
                               "created_at": at.to_rfc3339(), "remark": remark})
        })
        .collect();
    serde_json::json!({"code": 0, "msg": "Success.",
                       "data": {"leads": records, "page_size": size, "total": total},
                       "request_id": "r"})
    .to_string()
}

/// A chunked response: no `Content-Length`, the size is known only once it is read.
fn chunked(body: &str) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    // An odd chunk size: the limit is not met on a chunk boundary by chance.
    for chunk in body.as_bytes().chunks(7_001) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[tokio::test]
async fn a_redirect_is_refused_and_names_where_it_pointed() {
    // The bundled fake, with leads, is where the redirect points: nothing of it may be stored.
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    h.world
        .generate_leads(BOT_A, 30, days_ago(5), days_ago(0), 41);
    let elsewhere = h.api.base_url();
    let server = Hostile::start(move |target| {
        let location = format!(
            "{elsewhere}{}",
            target.trim_start_matches("/api/v1/backend")
        );
        response("302 Found", &[("location", &location)], "")
    })
    .await;

    let report = sync_against(&h, &server).await;

    let RunOutcome::Failed(SyncError::Api(err)) = &report.outcome else {
        panic!("a redirect fails the run, got {:?}", report.outcome);
    };
    assert_eq!(err.kind(), "redirect");
    let message = err.to_string();
    assert!(
        message.contains(&format!("http://{}", h.api.addr())),
        "{message}"
    );
    assert!(!message.contains("/leads"), "no path or query: {message}");
    assert_eq!(server.requests(), 1, "a redirect is not retried");
    assert!(
        h.world.requests().is_empty(),
        "the redirect was not followed"
    );
    assert_eq!(count_leads(&h.db.pool).await, 0);
}

#[tokio::test]
async fn what_the_server_says_is_bounded_escaped_and_its_message_kept_out() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let long_id = format!("forged\n{{\"level\":\"ERROR\"}}{}", "x".repeat(1 << 20));
    let body = serde_json::json!({
        "code": 50001,
        "msg": "no lead for jane.doe@example.com",
        "data": null,
        "request_id": long_id,
    })
    .to_string();
    let server = Hostile::start(move |_| response("200 OK", &[], &body)).await;

    let report = sync_against(&h, &server).await;

    let RunOutcome::Failed(err) = &report.outcome else {
        panic!("the run fails, got {:?}", report.outcome);
    };
    let request_id = err.request_id().expect("a request id").to_owned();
    assert!(request_id.starts_with("forged\\n{"), "{request_id}");
    assert!(request_id.chars().count() <= 129, "bounded");
    let error: String = sqlx::query_scalar("SELECT error FROM sync_runs WHERE bot_uid = $1")
        .bind(BOT_A)
        .fetch_one(&h.db.pool)
        .await
        .expect("ledger row");
    assert!(error.len() < 400, "{} bytes in the ledger", error.len());
    assert!(!error.contains('\n'), "{error}");
    assert!(
        !error.contains("jane.doe"),
        "the server's msg is not kept: {error}"
    );
    assert!(server.requests() > 1, "an API code is retried");
}

#[tokio::test]
async fn a_lead_dated_far_in_the_future_is_stored_but_the_mark_stays_near_now() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let body = serde_json::json!({
        "code": 0,
        "msg": "Success.",
        "data": {
            "leads": [
                {"conversation_uid": "c-future", "bot_uid": BOT_A,
                 "created_at": "9999-12-31T00:00:00Z", "name": "n"},
                {"conversation_uid": "c-past", "bot_uid": BOT_A,
                 "created_at": days_ago(3).to_rfc3339(), "name": "n"},
            ],
            "page_size": 50,
            "total": 2,
        },
        "request_id": "r-1",
    })
    .to_string();
    let server = Hostile::start(move |_| response("200 OK", &[], &body)).await;
    let started = Utc::now();

    let report = sync_against(&h, &server).await;

    assert!(
        matches!(report.outcome, RunOutcome::Succeeded),
        "{:?}",
        report.outcome
    );
    assert_eq!(
        count_leads(&h.db.pool).await,
        2,
        "the future lead is stored"
    );
    let mark = h.high_water_mark(BOT_A).await.expect("a mark");
    assert!(
        mark >= started + TimeDelta::minutes(4),
        "as far as the skew allows: {mark}"
    );
    let mark = h.high_water_mark(BOT_A).await.expect("a mark");
    assert!(
        mark <= Utc::now() + TimeDelta::minutes(5),
        "the mark is {mark}"
    );
    assert!(mark > days_ago(1), "the mark still moved: {mark}");
}

#[tokio::test]
async fn records_the_parser_cannot_take_are_kept_aside_and_the_rest_is_stored() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let at = days_ago(3).to_rfc3339();
    let good = |uid: &str| {
        format!(
            r#"{{"conversation_uid":"{uid}","bot_uid":"{BOT_A}","created_at":"{at}","name":"n"}}"#
        )
    };
    let with_remark = |uid: &str, remark: &[u8]| {
        let mut record = format!(
            r#"{{"conversation_uid":"{uid}","bot_uid":"{BOT_A}","created_at":"{at}","remark":""#
        )
        .into_bytes();
        record.extend_from_slice(remark);
        record.extend_from_slice(b"\"}");
        record
    };
    let records: Vec<Vec<u8>> = vec![
        good("c-1").into_bytes(),
        with_remark("c-latin1", b"caf\xe9"),
        with_remark("c-nul", b"a\x00b"),
        good("c-2").into_bytes(),
        with_remark("c-surrogate", br"\ud800"),
        format!(
            r#"{{"conversation_uid":"c-huge","created_at":"{at}","score":1e400,"id":123456789012345678901234567890}}"#
        )
        .into_bytes(),
        good("c-3").into_bytes(),
    ];
    let mut body = br#"{"code":0,"msg":"Success.","data":{"leads":["#.to_vec();
    body.extend_from_slice(&records.join(&b","[..]));
    body.extend_from_slice(br#"],"page_size":50,"total":7},"request_id":"r-1"}"#);
    let server = Hostile::start(move |_| response_bytes("200 OK", &[], &body)).await;

    let report = sync_against(&h, &server).await;

    assert!(
        matches!(report.outcome, RunOutcome::Succeeded),
        "one record does not fail the page: {:?}",
        report.outcome
    );
    let stored: Vec<String> = h
        .stored(BOT_A)
        .await
        .into_iter()
        .map(|lead| lead.conversation_uid)
        .collect();
    assert_eq!(stored, ["c-1", "c-2", "c-3", "c-huge"]);
    // Numbers are kept exactly, however large (jsonb's numeric holds them).
    let (id, score): (String, String) = sqlx::query_as(
        "SELECT raw->>'id', (raw->'score')::numeric::text FROM leads WHERE conversation_uid = 'c-huge'",
    )
    .fetch_one(&h.db.pool)
    .await
    .expect("c-huge");
    assert_eq!(id, "123456789012345678901234567890");
    assert_eq!(score, format!("1{}", "0".repeat(400)));
    let rejected: Vec<(String, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT reason, conversation_uid, raw FROM rejected_leads ORDER BY reason, conversation_uid",
    )
    .fetch_all(&h.db.pool)
    .await
    .expect("rejected");
    let reasons: Vec<(&str, Option<&str>)> = rejected
        .iter()
        .map(|(reason, uid, _)| (reason.as_str(), uid.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("invalid_text", Some("c-latin1")),
            ("invalid_text", Some("c-nul")),
            ("invalid_text", Some("c-surrogate")),
        ]
    );
    assert_eq!(rejected[0].2["remark"], "caf?", "each bad byte kept as ?");
    assert_eq!(rejected[1].2["remark"], "a?b");
    assert_eq!(rejected[2].2["remark"], "\u{fffd}");
}

#[tokio::test]
async fn an_answer_over_the_body_limit_is_asked_for_again_as_smaller_pages() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    // 12 leads of 20 KB against a limit of 64 KiB: a page holds at most 3 of them.
    let leads: Vec<(String, chrono::DateTime<Utc>)> = (0..12)
        .map(|n| (format!("c-{n:02}"), days_ago(1) - TimeDelta::minutes(n)))
        .collect();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    let server = Hostile::start(move |target| {
        let size = param(target, "page_size").unwrap_or_default();
        log.lock()
            .expect("log")
            .push((param(target, "page").unwrap_or_default(), size.clone()));
        let body = listing(target, &leads, 20_000);
        // The first ask announces its size; the smaller ones are chunked, so only reading
        // them shows they are too large.
        if size == "50" {
            response("200 OK", &[], &body)
        } else {
            chunked(&body)
        }
    })
    .await;

    let report =
        sync_against_with(&h, &server, &[("LEADSYNC__API__MAX_BODY_BYTES", "65536")]).await;

    assert!(
        matches!(report.outcome, RunOutcome::Succeeded),
        "{:?}",
        report.outcome
    );
    let stored = h.stored(BOT_A).await;
    assert_eq!(stored.len(), 12);
    let remarks: Vec<usize> = stored
        .iter()
        .map(|lead| lead.remark.as_deref().map_or(0, str::len))
        .collect();
    assert_eq!(remarks, [20_000; 12], "every lead whole");
    // The window with the leads: page 1 of 50 is refused, then 50 -> 25 -> 5 -> 1 (the largest
    // divisor each time), until pages hold at most three leads; the third page of 5 (two leads)
    // fits, and being short it ends the listing.
    let asked = asked.lock().expect("log").clone();
    assert_eq!(
        asked.iter().filter(|(_, size)| size == "5").count(),
        3,
        "a short page of 5 ends the listing: pages 4 and 5 of 5 are not asked: {asked:?}"
    );
    let with_leads: Vec<(String, String)> = asked
        .iter()
        .skip_while(|(page, size)| !(page == "1" && size == "25"))
        .cloned()
        .collect();
    let pages = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    };
    assert_eq!(
        with_leads[..14],
        pages(&[
            ("1", "25"),
            ("1", "5"),
            ("1", "1"),
            ("2", "1"),
            ("3", "1"),
            ("4", "1"),
            ("5", "1"),
            ("2", "5"),
            ("6", "1"),
            ("7", "1"),
            ("8", "1"),
            ("9", "1"),
            ("10", "1"),
            ("3", "5"),
        ])[..],
        "{asked:?}"
    );
}

#[tokio::test]
async fn a_lead_too_large_even_alone_fails_the_run_naming_the_setting() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let leads = vec![("c-big".to_owned(), days_ago(1))];
    let server = Hostile::start(move |target| chunked(&listing(target, &leads, 100_000))).await;

    let report =
        sync_against_with(&h, &server, &[("LEADSYNC__API__MAX_BODY_BYTES", "65536")]).await;

    let RunOutcome::Failed(SyncError::Api(err)) = &report.outcome else {
        panic!("the run fails, got {:?}", report.outcome);
    };
    assert_eq!(err.kind(), "too_large");
    assert!(err.to_string().contains("api.max_body_bytes"), "{err}");
    assert!(
        err.hint()
            .is_some_and(|hint| hint.contains("raise api.max_body_bytes")),
        "{:?}",
        err.hint()
    );
    assert_eq!(count_leads(&h.db.pool).await, 0);
}

/// A real TLS server (`openssl s_server`) with a self-signed certificate, stopped on drop.
struct UntrustedTls {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
}

impl UntrustedTls {
    async fn start() -> UntrustedTls {
        let dir = std::env::temp_dir().join(format!("leadsync-tls-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let made = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args([
                "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .output()
            .expect("run openssl req");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        // Waited for in `Drop`.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args([
                "s_server", "-quiet", "-www", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .args(["-accept", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn openssl s_server");
        for _ in 0..1_000 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return UntrustedTls { child, dir, port };
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("openssl s_server did not listen on {port}");
    }
}

impl Drop for UntrustedTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_fails_the_run_at_once() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let tls = UntrustedTls::start().await;
    let toml = h.config_toml("").replace(
        &h.api.base_url(),
        &format!("https://127.0.0.1:{}/api/v1/backend", tls.port),
    );

    let report = h.sync_toml(&toml, &[]).await.remove(0);

    let RunOutcome::Failed(SyncError::Api(err)) = &report.outcome else {
        panic!("the run fails, got {:?}", report.outcome);
    };
    assert_eq!(err.kind(), "tls", "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(
        err.hint().is_some_and(|hint| hint.contains("certificates")),
        "{:?}",
        err.hint()
    );
    let RunOutcome::Failed(failure) = &report.outcome else {
        unreachable!("matched above")
    };
    assert_eq!(
        failure.hint(),
        err.hint(),
        "the run's failure carries the hint"
    );
    assert_eq!(
        report.counts.retries, 0,
        "a certificate does not change on retry"
    );
}

#[tokio::test]
async fn answers_are_asked_for_in_gzip_and_an_unknown_encoding_is_named() {
    use std::io::Write as _;

    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let leads: Vec<(String, chrono::DateTime<Utc>)> = (0..3)
        .map(|n| (format!("c-{n}"), days_ago(2) - TimeDelta::minutes(n)))
        .collect();
    let server = Hostile::start(move |target| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(listing(target, &leads, 1_000).as_bytes())
            .expect("gzip");
        let body = gz.finish().expect("gzip");
        response_bytes("200 OK", &[("content-encoding", "gzip")], &body)
    })
    .await;

    let report = sync_against(&h, &server).await;

    assert!(
        matches!(report.outcome, RunOutcome::Succeeded),
        "{:?}",
        report.outcome
    );
    assert_eq!(h.stored(BOT_A).await.len(), 3);
    let heads = server.heads.lock().expect("heads").clone();
    assert!(
        heads
            .iter()
            .all(|head| head.to_ascii_lowercase().contains("accept-encoding: gzip")),
        "{heads:?}"
    );

    let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
    let server =
        Hostile::start(|_| response("200 OK", &[("content-encoding", "br")], "\u{1b}x")).await;
    let report = sync_against(&h, &server).await;
    let RunOutcome::Failed(err) = &report.outcome else {
        panic!("the run fails, got {:?}", report.outcome);
    };
    assert!(err.to_string().contains("Content-Encoding br"), "{err}");
}

#[tokio::test]
async fn a_conversation_listed_under_two_bots_keeps_its_first_owner_and_the_other_copy_aside() {
    let h = Harness::start(WorldSettings::default(), &[BOT_A, BOT_B]).await;
    let at = (Utc::now() - TimeDelta::hours(3)).fixed_offset();
    h.world.insert_lead(
        BOT_A,
        leadsync::fake_api::FakeLead::new(BOT_A, "c-shared", at),
    );
    assert_all_succeeded(&h.sync().await);
    let owner = || async {
        sqlx::query_as::<_, (String, chrono::DateTime<Utc>)>(
            "SELECT bot_uid, last_changed_at FROM leads WHERE conversation_uid = 'c-shared'",
        )
        .fetch_one(&h.db.pool)
        .await
        .expect("the lead")
    };
    let first = owner().await;
    assert_eq!(first.0, BOT_A);

    // Now bot B lists the same conversation too, on every run.
    h.world.insert_lead(
        BOT_B,
        leadsync::fake_api::FakeLead::new(BOT_B, "c-shared", at),
    );
    let runs = [h.sync().await, h.sync().await];

    for reports in &runs {
        assert_all_succeeded(reports);
        let counts = report_for(reports, BOT_B).counts;
        assert_eq!(
            (counts.rejected, counts.inserted, counts.updated),
            (1, 0, 0)
        );
        assert_eq!(
            counts.unchanged + counts.rejected,
            counts.fetched,
            "counted once"
        );
    }
    assert_eq!(
        owner().await,
        first,
        "the owner and last_changed_at never move"
    );
    let rejected: Vec<(String, String, Option<String>, i32)> =
        sqlx::query_as("SELECT bot_uid, reason, conversation_uid, times_seen FROM rejected_leads")
            .fetch_all(&h.db.pool)
            .await
            .expect("rejected");
    assert_eq!(
        rejected,
        [(
            BOT_B.to_owned(),
            "owned_by_another_bot".to_owned(),
            Some("c-shared".to_owned()),
            2
        )],
        "kept aside once, seen on both runs"
    );
    let bot_b = leadsync::domain::BotUid::parse(BOT_B).expect("uid");
    let drifts = syncer(&h).verify(&bot_b, 3, false).await.expect("verify");
    assert!(drifts.is_empty(), "not missing from B's copy: {drifts:?}");
}

#[tokio::test]
async fn an_answer_of_exactly_the_body_limit_is_read_whether_announced_or_chunked() {
    for announced in [true, false] {
        let h = Harness::start(WorldSettings::default(), &[BOT_A]).await;
        let leads = vec![("c-exact".to_owned(), days_ago(1))];
        let server = Hostile::start(move |target| {
            // Padded with whitespace after the JSON to exactly 65,536 bytes.
            let mut body = listing(target, &leads, 40_000);
            body.push_str(&" ".repeat(65_536 - body.len()));
            if announced {
                response("200 OK", &[], &body)
            } else {
                chunked(&body)
            }
        })
        .await;

        let report =
            sync_against_with(&h, &server, &[("LEADSYNC__API__MAX_BODY_BYTES", "65536")]).await;

        assert!(
            matches!(report.outcome, RunOutcome::Succeeded),
            "announced {announced}: {:?}",
            report.outcome
        );
        assert_eq!(h.stored(BOT_A).await.len(), 1, "announced {announced}");
    }
}
