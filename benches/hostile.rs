//! Memory against hostile answers: the real `leadsync sync` against servers of this benchmark's
//! own (plain threads on loopback) that answer with a 2 GB body, a body that never ends, and
//! 1,100 leads whose remarks are 1 MB each, with the default `api.max_body_bytes` (32 MiB).
//!
//! ```text
//! cargo bench --bench hostile
//! ```
//!
//! Prints one row per server: how the run ended, wall and CPU time, peak RSS (GNU time), requests and
//! the leads stored. It asserts nothing. Needs PostgreSQL (`TEST_DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/postgres) and GNU `time`.

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use chrono::{DateTime, Days, NaiveDate, TimeDelta, Utc};
use support::BenchDb;

#[path = "support/mod.rs"]
mod support;

const BOT: &str = "b-hostile";
const HUGE_LEADS: usize = 1_100;
const REMARK_BYTES: usize = 1 << 20;

/// How one server answers a request for `target` on `stream`.
#[derive(Clone, Copy)]
enum Answer {
    /// `Content-Length: 2 GiB`, then zeros for as long as the client reads.
    Giant,
    /// A chunked body of zeros that never ends.
    Endless,
    /// A real listing of 1,100 leads with a 1 MB remark each, filtered by day and paged.
    HugeRemarks,
}

impl Answer {
    fn name(self) -> &'static str {
        match self {
            Self::Giant => "2 GB body (Content-Length)",
            Self::Endless => "endless chunked body",
            Self::HugeRemarks => "1,100 leads x 1 MB remark",
        }
    }

    fn respond(self, target: &str, stream: &mut TcpStream) -> std::io::Result<()> {
        match self {
            Self::Giant => {
                stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n",
                )?;
                let zeros = vec![b'0'; 1 << 16];
                for _ in 0..(1 << 15) {
                    stream.write_all(&zeros)?;
                }
                Ok(())
            }
            Self::Endless => {
                stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                )?;
                let mut chunk = format!("{:x}\r\n", 1 << 16).into_bytes();
                chunk.extend(std::iter::repeat_n(b' ', 1 << 16));
                chunk.extend_from_slice(b"\r\n");
                loop {
                    stream.write_all(&chunk)?;
                }
            }
            Self::HugeRemarks => {
                let body = listing(target);
                stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                )?;
                stream.write_all(body.as_bytes())
            }
        }
    }
}

/// When the `n`th of the huge leads was created: over the ten days before today.
fn created(n: usize) -> DateTime<Utc> {
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    today.and_utc() - TimeDelta::minutes(5 + (n as i64) * 13)
}

fn param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    target.split_once('?')?.1.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The page `target` asks for, newest first, of the leads on its days.
fn listing(target: &str) -> String {
    let day = |name| param(target, name).and_then(|day| day.parse::<NaiveDate>().ok());
    let (start, end) = (day("start_date"), day("end_date"));
    let page: usize = param(target, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let size: usize = param(target, "page_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let listed: Vec<usize> = (0..HUGE_LEADS)
        .filter(|&n| start.is_none_or(|start| created(n).date_naive() >= start))
        .filter(|&n| end.is_none_or(|end| created(n).date_naive() <= end))
        .collect();
    let remark = "r".repeat(REMARK_BYTES);
    let records: Vec<String> = listed
        .iter()
        .skip((page.max(1) - 1) * size)
        .take(size)
        .map(|&n| {
            format!(
                r#"{{"conversation_uid":"c-{n:05}","bot_uid":"{BOT}","created_at":"{}","remark":"{remark}"}}"#,
                created(n).to_rfc3339()
            )
        })
        .collect();
    format!(
        r#"{{"code":0,"msg":"Success.","data":{{"leads":[{}],"page_size":{size},"total":{}}},"request_id":"r"}}"#,
        records.join(","),
        listed.len()
    )
}

/// Serves `answer` on a loopback port until the process ends; counts requests.
fn serve(answer: Answer) -> anyhow::Result<(u16, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&head).into_owned();
                let target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                // The client hanging up mid-answer is how these end.
                let _ = answer.respond(&target, &mut stream);
            });
        }
    });
    Ok((port, requests))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!(
        "{:<28} {:>10} {:>8} {:>7} {:>12} {:>9} {:>7}",
        "server", "run", "wall s", "CPU s", "peak RSS MB", "requests", "leads"
    );
    for answer in [Answer::Giant, Answer::Endless, Answer::HugeRemarks] {
        let db = BenchDb::create().await?;
        let (port, requests) = serve(answer)?;
        let from = Utc::now().date_naive() - Days::new(12);
        let toml = format!(
            "[database]\nurl = {:?}\n[api]\nbase_url = \"http://127.0.0.1:{port}/api/v1/backend\"\n\
             timeout_secs = 60\n[retry]\nmax_attempts = 2\ninitial_delay_ms = 10\n\
             [sync]\nbackfill_from = \"{from}\"\n[log]\nformat = \"json\"\nfilter = \"warn\"\n\
             [[bots]]\nuid = \"{BOT}\"\n",
            db.url
        );
        let config = std::env::temp_dir().join(format!(
            "leadsync-bench-hostile-{}.toml",
            std::process::id()
        ));
        std::fs::write(&config, toml)?;
        let timed = support::time_leadsync(&config, &["sync"])?;
        let leads = db.count_rows("leads").await.unwrap_or(0);
        println!(
            "{:<28} {:>10} {:>8.2} {:>7.2} {:>12.1} {:>9} {:>7}",
            answer.name(),
            if timed.succeeded {
                "succeeded"
            } else {
                "failed"
            },
            timed.wall.as_secs_f64(),
            timed.cpu.as_secs_f64(),
            timed.peak_rss_kib as f64 / 1024.0,
            requests.load(Ordering::SeqCst),
            leads
        );
        let _ = std::fs::remove_file(&config);
        db.drop_database().await?;
    }
    Ok(())
}
