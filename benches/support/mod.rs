//! What the benchmarks share: a fresh database, and the real binary run under GNU time.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection};

/// A database of its own for one benchmark process, on `TEST_DATABASE_URL`'s server.
pub struct BenchDb {
    pub url: String,
    server: String,
    name: String,
}

/// What one run of the binary cost, from GNU time.
pub struct Timed {
    pub succeeded: bool,
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

/// `leadsync --config CONFIG ARGS...` under GNU time: whether it succeeded, wall, CPU and peak
/// RSS of the process.
pub fn time_leadsync(config: &std::path::Path, args: &[&str]) -> anyhow::Result<Timed> {
    let report = std::env::temp_dir().join(format!("leadsync-bench-time-{}", std::process::id()));
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%U %S %M", "-o"])
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_leadsync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("CHATOFAI_API_KEY", "bench-key")
        .status()
        .map_err(|err| anyhow::anyhow!("running /usr/bin/time (apt-get install time): {err}"))?;
    let wall = started.elapsed();
    let text = std::fs::read_to_string(&report)?;
    // GNU time prefixes "Command exited with non-zero status N" when it did.
    let fields: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    anyhow::ensure!(fields.len() == 3, "unexpected GNU time output: {text:?}");
    Ok(Timed {
        succeeded: status.success(),
        wall,
        cpu: Duration::from_secs_f64(fields[0] + fields[1]),
        peak_rss_kib: fields[2] as u64,
    })
}

impl BenchDb {
    pub async fn create() -> anyhow::Result<Self> {
        let server = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("leadsync_bench_{}", std::process::id());
        let mut admin = PgConnection::connect(&server).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url::Url::parse(&server)?;
        url.set_path(&name);
        Ok(Self {
            url: url.to_string(),
            server,
            name,
        })
    }

    /// The rows of `table` (`leads`; `lead_changes`, one per changed field of an update).
    pub async fn count_rows(&self, table: &str) -> anyhow::Result<i64> {
        let mut conn = PgConnection::connect(&self.url).await?;
        Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await?)
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.server).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}
