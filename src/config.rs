//! Configuration: a TOML file, then the environment (last, so it wins), parsed into validated
//! settings. Every error names the setting at fault, in one line.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::NaiveDate;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::{
    chatof::ClientSettings,
    domain::{BotUid, PlanSettings},
    retry::RetryPolicy,
    schedule::Schedule,
    telemetry::LogFormat,
};

pub const DEFAULT_BASE_URL: &str = "https://chatof.ai/api/v1/backend";
pub const API_KEY_ENV: &str = "CHATOFAI_API_KEY";
/// leadsync's own events from info up, other crates' (sqlx, tokio-cron-scheduler) only from
/// warn: their info lines ("relation ... already exists, skipping", "Job creator created") say
/// nothing to an operator.
pub const DEFAULT_LOG_FILTER: &str = "warn,leadsync=info";
/// "All history" when `sync.backfill_from` is not set: before ChatofAI existed.
pub const ALL_HISTORY_FROM: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");

/// A configuration problem: the setting, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub database: DatabaseSettings,
    pub api: ApiSettings,
    pub retry: RetryPolicy,
    pub sync: SyncSettings,
    pub http: HttpSettings,
    pub shutdown: ShutdownSettings,
    pub verify: VerifySettings,
    pub retention: RetentionSettings,
    pub log: LogSettings,
    pub bots: Vec<BotSettings>,
    /// The file it was read from, if any: what `leadsync run` reads again on SIGHUP.
    pub file: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug)]
pub struct HttpSettings {
    /// `None`: no HTTP server (health and metrics off).
    pub listen: Option<SocketAddr>,
    /// Whether the series that only describe a bot carry its uid (see
    /// [`crate::metrics::set_per_bot_detail`]).
    pub per_bot_detail: bool,
}

#[derive(Clone, Copy, Debug)]
pub struct ShutdownSettings {
    /// How long in-flight runs get to commit their page and record themselves on SIGTERM.
    pub grace: Duration,
}

#[derive(Clone, Debug)]
pub struct VerifySettings {
    /// When the daemon verifies on its own; `None` (the default): never.
    pub schedule: Option<Schedule>,
    pub days: u32,
    pub repair: bool,
}

#[derive(Clone, Debug)]
pub struct RetentionSettings {
    /// Leads created longer ago than this many days are deleted, and never stored again;
    /// `None` (the default): kept forever.
    pub max_age_days: Option<u32>,
    /// When the daemon deletes them (UTC).
    pub schedule: Schedule,
}

#[derive(Debug)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub migrate_on_start: bool,
}

#[derive(Debug)]
pub struct ApiSettings {
    pub client: ClientSettings,
    pub page_size: u32,
    pub key_file: Option<PathBuf>,
    /// Requests in flight across all bots.
    pub max_in_flight: usize,
}

#[derive(Clone, Debug)]
pub struct SyncSettings {
    pub plan: PlanSettings,
    pub max_window_leads: u64,
    pub max_window_rereads: u32,
    pub max_concurrent_bots: usize,
    /// The daemon's default schedule (UTC).
    pub schedule: Schedule,
    /// The daemon syncs every bot once right at start-up.
    pub run_at_start: bool,
}

#[derive(Debug)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug)]
pub struct BotSettings {
    pub uid: BotUid,
    pub name: Option<String>,
    /// Environment variable holding this bot's API key, for multi-account setups.
    pub api_key_env: Option<String>,
    /// Overrides `sync.schedule` for this bot.
    pub schedule: Option<Schedule>,
}

impl Config {
    /// The bot's schedule: its own, or the global one.
    pub fn schedule_of<'a>(&'a self, bot: &'a BotSettings) -> &'a Schedule {
        bot.schedule.as_ref().unwrap_or(&self.sync.schedule)
    }
}

// ---- the file format, as written -----------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    shutdown: RawShutdown,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    bots: Vec<RawBot>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: Option<String>,
    #[serde(deserialize_with = "strict::whole")]
    max_connections: u32,
    #[serde(deserialize_with = "strict::whole")]
    acquire_timeout_secs: u64,
    #[serde(deserialize_with = "strict::boolean")]
    migrate_on_start: bool,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
            acquire_timeout_secs: 30,
            migrate_on_start: true,
        }
    }
}

/// The largest answer read by default: a page of 1,000 leads with 30 KB of text each.
const DEFAULT_MAX_BODY_BYTES: u64 = 32 << 20;
const MIN_BODY_BYTES: u64 = 64 << 10;
const MAX_BODY_BYTES: u64 = 1 << 30;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApi {
    base_url: String,
    #[serde(deserialize_with = "strict::whole")]
    page_size: u32,
    #[serde(deserialize_with = "strict::whole")]
    timeout_secs: u64,
    #[serde(deserialize_with = "strict::whole")]
    connect_timeout_secs: u64,
    key_file: Option<PathBuf>,
    #[serde(deserialize_with = "strict::whole")]
    max_in_flight: usize,
    #[serde(deserialize_with = "strict::whole")]
    max_body_bytes: u64,
    allow_plain_http: bool,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            page_size: 100,
            timeout_secs: 30,
            connect_timeout_secs: 10,
            key_file: None,
            max_in_flight: 8,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            allow_plain_http: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetry {
    #[serde(deserialize_with = "strict::whole")]
    max_attempts: u32,
    #[serde(deserialize_with = "strict::whole")]
    initial_delay_ms: u64,
    #[serde(deserialize_with = "strict::whole")]
    max_delay_ms: u64,
    #[serde(deserialize_with = "strict::whole")]
    max_retry_after_secs: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay_ms: 500,
            max_delay_ms: 30_000,
            max_retry_after_secs: 300,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSync {
    backfill_from: Option<String>,
    #[serde(deserialize_with = "strict::whole")]
    lookback_days: u32,
    #[serde(deserialize_with = "strict::whole")]
    max_window_leads: u64,
    #[serde(deserialize_with = "strict::whole")]
    max_window_rereads: u32,
    #[serde(deserialize_with = "strict::whole")]
    max_concurrent_bots: usize,
    schedule: String,
    #[serde(deserialize_with = "strict::boolean")]
    run_at_start: bool,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            backfill_from: None,
            lookback_days: 2,
            max_window_leads: 20_000,
            max_window_rereads: 2,
            max_concurrent_bots: 4,
            schedule: "0 */5 * * * *".into(),
            run_at_start: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    #[serde(deserialize_with = "strict::boolean")]
    enabled: bool,
    listen: String,
    #[serde(deserialize_with = "strict::boolean")]
    per_bot_detail: bool,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "0.0.0.0:8080".into(),
            per_bot_detail: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawShutdown {
    #[serde(deserialize_with = "strict::whole")]
    grace_secs: u64,
}

impl Default for RawShutdown {
    fn default() -> Self {
        Self { grace_secs: 30 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawVerify {
    schedule: Option<String>,
    #[serde(deserialize_with = "strict::whole")]
    days: u32,
    #[serde(deserialize_with = "strict::boolean")]
    repair: bool,
}

impl Default for RawVerify {
    fn default() -> Self {
        Self {
            schedule: None,
            days: 7,
            repair: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRetention {
    #[serde(deserialize_with = "strict::optional_whole")]
    max_age_days: Option<u32>,
    schedule: String,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self {
            max_age_days: None,
            schedule: "0 0 4 * * *".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: String,
    filter: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "auto".into(),
            filter: DEFAULT_LOG_FILTER.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBot {
    uid: String,
    name: Option<String>,
    api_key_env: Option<String>,
    schedule: Option<String>,
}

/// Deserialisers that take a value only as its own type: the `config` crate would turn
/// `page_size = "100"` into 100, `10.5` into 11 and `run_at_start = "yes"` into true. The
/// error names the setting (the crate adds the key) and the type expected.
mod strict {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number (no quotes, no decimals)")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
        }
    }

    pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let value = deserializer.deserialize_any(Whole)?;
        T::try_from(value).map_err(|_| de::Error::custom(format!("{value} is too large")))
    }

    pub fn optional_whole<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        whole(deserializer).map(Some)
    }

    struct Boolean;

    impl Visitor<'_> for Boolean {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true or false (no quotes)")
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(Boolean)
    }
}

// ---- loading -------------------------------------------------------------------------------

impl Config {
    /// Reads `file` (if any), then the environment: `LEADSYNC__<SECTION>__<KEY>` for any
    /// setting, and `DATABASE_URL` for `database.url` (the prefixed form wins over it).
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            return Self::build(builder, env).map(|config| Config {
                file: Some(path.to_owned()),
                ..config
            });
        }
        // Settings from the environment alone can be complete; when they are not, the likelier
        // mistake is the missing file.
        Self::build(builder, env).map_err(|mut err| {
            err.problem
                .push_str(" (no config file was given: pass --config FILE or set LEADSYNC_CONFIG)");
            err
        })
    }

    /// The same as [`Config::load`] with the file's text given directly (demo, tests).
    pub fn from_toml(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let builder = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml));
        Self::build(builder, env)
    }

    fn build(
        mut builder: config::ConfigBuilder<config::builder::DefaultState>,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        // DATABASE_URL sits between the file and LEADSYNC__DATABASE__URL.
        let prefixed_url = env.contains_key("LEADSYNC__DATABASE__URL");
        if let Some(url) = env.get("DATABASE_URL").filter(|_| !prefixed_url) {
            builder = builder
                .set_override("database.url", url.as_str())
                .map_err(|err| ConfigError::new("DATABASE_URL", err.to_string()))?;
        }
        let prefixed: HashMap<String, String> = env
            .iter()
            .filter(|(key, _)| key.starts_with("LEADSYNC__"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("LEADSYNC")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(prefixed)),
        );
        let raw: RawConfig = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(describe_load_error)?;
        raw.validate()
    }

    /// The API key of every configured bot: its own `api_key_env`, or else `api.key_file`, or
    /// else `CHATOFAI_API_KEY`. Fails on the first bot without a usable key.
    pub fn resolve_api_keys(
        &self,
        env: &HashMap<String, String>,
    ) -> Result<HashMap<BotUid, SecretString>, ConfigError> {
        let mut shared: Option<SecretString> = None;
        let mut keys = HashMap::new();
        for (index, bot) in self.bots.iter().enumerate() {
            let key = match &bot.api_key_env {
                Some(var) => match env.get(var).map(|key| key.trim()) {
                    Some(key) if !key.is_empty() => {
                        usable_key(&format!("bots[{index}].api_key_env ({var})"), key)?
                    }
                    _ => {
                        return Err(ConfigError::new(
                            format!("bots[{index}].api_key_env"),
                            format!("environment variable {var} is not set or empty"),
                        ));
                    }
                },
                None => match &shared {
                    Some(key) => key.clone(),
                    None => {
                        let key = self.shared_api_key(env)?;
                        shared = Some(key.clone());
                        key
                    }
                },
            };
            keys.insert(bot.uid.clone(), key);
        }
        Ok(keys)
    }

    fn shared_api_key(&self, env: &HashMap<String, String>) -> Result<SecretString, ConfigError> {
        if let Some(path) = &self.api.key_file {
            let key = std::fs::read_to_string(path).map_err(|err| {
                ConfigError::new(
                    "api.key_file",
                    format!("cannot read {}: {err}", path.display()),
                )
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::new(
                    "api.key_file",
                    format!("{} is empty", path.display()),
                ));
            }
            return usable_key("api.key_file", key);
        }
        match env.get(API_KEY_ENV).map(|key| key.trim()) {
            Some(key) if !key.is_empty() => usable_key(API_KEY_ENV, key),
            _ => Err(ConfigError::new(
                API_KEY_ENV,
                "not set (set it, or api.key_file, or a bot's api_key_env)",
            )),
        }
    }
}

/// A key that can travel in an `Authorization` header: visible ASCII only. One holding a line
/// break, a control character, a space or non-ASCII would fail every request (or travel as
/// bytes the server reads otherwise), so it is refused here, without showing it.
fn usable_key(setting: &str, key: &str) -> Result<SecretString, ConfigError> {
    if key.bytes().all(|byte| byte.is_ascii_graphic()) {
        Ok(SecretString::from(key.to_owned()))
    } else {
        Err(ConfigError::new(
            setting,
            "the API key holds a character other than visible ASCII (a line break, a space, a \
             control character or non-ASCII); the key is not shown",
        ))
    }
}

/// The `config` crate names the key in most of its messages; make them one line, with the
/// setting first where we can find it.
fn describe_load_error(err: config::ConfigError) -> ConfigError {
    let text = err.to_string().replace('\n', " ");
    match text.rsplit_once(" for key `") {
        Some((problem, rest)) => {
            let key = rest.split('`').next().unwrap_or(rest);
            ConfigError::new(key, problem)
        }
        None => ConfigError::new("config", text),
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let sync = self.sync.validate()?;
        let retention = self.retention.validate()?;
        let verify = self.verify.validate()?;
        Ok(Config {
            database: self.database.validate(sync.max_concurrent_bots)?,
            api: self.api.validate()?,
            retry: self.retry.validate()?,
            http: self.http.validate()?,
            shutdown: ShutdownSettings {
                grace: Duration::from_secs(self.shutdown.grace_secs),
            },
            verify,
            retention,
            log: self.log.validate()?,
            bots: validate_bots(self.bots)?,
            sync,
            file: None,
        })
    }
}

impl RawDatabase {
    fn validate(self, max_concurrent_bots: usize) -> Result<DatabaseSettings, ConfigError> {
        let url = self
            .url
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    "database.url",
                    "not set (set it in the file, or LEADSYNC__DATABASE__URL, or DATABASE_URL)",
                )
            })?;
        // The URL may hold a password: describe it, never echo it.
        match Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {}
            Ok(parsed) => {
                return Err(ConfigError::new(
                    "database.url",
                    format!(
                        "scheme must be postgres:// or postgresql://, not {}://",
                        parsed.scheme()
                    ),
                ));
            }
            Err(err) => {
                return Err(ConfigError::new(
                    "database.url",
                    format!("not a valid URL ({err})"),
                ));
            }
        }
        // The connection options too (sslmode, ports, ...), so that a typo is a configuration
        // error now rather than a failure at the first connection. sqlx's messages name the
        // option and its value; they do not repeat the URL.
        if let Err(err) = url.parse::<sqlx::postgres::PgConnectOptions>() {
            return Err(ConfigError::new(
                "database.url",
                format!("invalid connection options ({err})"),
            ));
        }
        // Each bot in flight holds one connection for its lock and needs at least one more.
        let needed = max_concurrent_bots as u32 + 1;
        if self.max_connections < needed {
            return Err(ConfigError::new(
                "database.max_connections",
                format!(
                    "{} is too few for sync.max_concurrent_bots = {max_concurrent_bots} (needs at least {needed})",
                    self.max_connections
                ),
            ));
        }
        Ok(DatabaseSettings {
            url: SecretString::from(url),
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_secs(positive(
                "database.acquire_timeout_secs",
                self.acquire_timeout_secs,
            )?),
            migrate_on_start: self.migrate_on_start,
        })
    }
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`): traffic that never
/// leaves it may be plain HTTP (the demo, the fake API, a local proxy).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl RawApi {
    fn validate(self) -> Result<ApiSettings, ConfigError> {
        let base_url = Url::parse(&self.base_url)
            .map_err(|err| ConfigError::new("api.base_url", format!("not a valid URL ({err})")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(ConfigError::new(
                "api.base_url",
                "must be an http:// or https:// URL",
            ));
        }
        if base_url.scheme() == "http" && !self.allow_plain_http && !is_loopback(&base_url) {
            return Err(ConfigError::new(
                "api.base_url",
                "plain http:// to a host other than this machine would send the API key in clear \
                 text: use https://, or set api.allow_plain_http = true if that is intended",
            ));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(ConfigError::new(
                "api.base_url",
                "must not have a query or fragment",
            ));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(ConfigError::new(
                "api.page_size",
                format!("{} is outside 1..=1000", self.page_size),
            ));
        }
        Ok(ApiSettings {
            client: ClientSettings {
                base_url,
                timeout: Duration::from_secs(positive("api.timeout_secs", self.timeout_secs)?),
                connect_timeout: Duration::from_secs(positive(
                    "api.connect_timeout_secs",
                    self.connect_timeout_secs,
                )?),
                max_body_bytes: match self.max_body_bytes {
                    MIN_BODY_BYTES..=MAX_BODY_BYTES => self.max_body_bytes,
                    other => {
                        return Err(ConfigError::new(
                            "api.max_body_bytes",
                            format!("{other} is outside {MIN_BODY_BYTES}..={MAX_BODY_BYTES}"),
                        ));
                    }
                },
            },
            page_size: self.page_size,
            key_file: self.key_file,
            max_in_flight: match self.max_in_flight {
                1..=1024 => self.max_in_flight,
                other => {
                    return Err(ConfigError::new(
                        "api.max_in_flight",
                        format!("{other} is outside 1..=1024"),
                    ));
                }
            },
        })
    }
}

impl RawRetry {
    fn validate(self) -> Result<RetryPolicy, ConfigError> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::new(
                "retry.max_attempts",
                format!("{} is outside 1..=100", self.max_attempts),
            ));
        }
        if self.initial_delay_ms > self.max_delay_ms {
            return Err(ConfigError::new(
                "retry.initial_delay_ms",
                format!(
                    "{} is more than retry.max_delay_ms ({})",
                    self.initial_delay_ms, self.max_delay_ms
                ),
            ));
        }
        Ok(RetryPolicy {
            max_attempts: self.max_attempts,
            initial_delay: Duration::from_millis(self.initial_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            max_retry_after: Duration::from_secs(self.max_retry_after_secs),
        })
    }
}

impl RawSync {
    fn validate(self) -> Result<SyncSettings, ConfigError> {
        let backfill_from = match self.backfill_from.as_deref().map(str::trim) {
            None | Some("") => ALL_HISTORY_FROM,
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                ConfigError::new(
                    "sync.backfill_from",
                    format!("{text:?} is not a date like 2023-01-01"),
                )
            })?,
        };
        if self.lookback_days > 3650 {
            return Err(ConfigError::new(
                "sync.lookback_days",
                format!("{} is more than 3650", self.lookback_days),
            ));
        }
        if self.max_window_leads == 0 {
            return Err(ConfigError::new(
                "sync.max_window_leads",
                "must be at least 1",
            ));
        }
        if self.max_window_rereads > 10 {
            return Err(ConfigError::new(
                "sync.max_window_rereads",
                format!("{} is more than 10", self.max_window_rereads),
            ));
        }
        if !(1..=256).contains(&self.max_concurrent_bots) {
            return Err(ConfigError::new(
                "sync.max_concurrent_bots",
                format!("{} is outside 1..=256", self.max_concurrent_bots),
            ));
        }
        Ok(SyncSettings {
            plan: PlanSettings {
                backfill_from,
                lookback_days: self.lookback_days,
            },
            max_window_leads: self.max_window_leads,
            max_window_rereads: self.max_window_rereads,
            max_concurrent_bots: self.max_concurrent_bots,
            schedule: Schedule::parse(&self.schedule)
                .map_err(|problem| ConfigError::new("sync.schedule", problem))?,
            run_at_start: self.run_at_start,
        })
    }
}

impl RawHttp {
    fn validate(self) -> Result<HttpSettings, ConfigError> {
        if !self.enabled {
            return Ok(HttpSettings {
                listen: None,
                per_bot_detail: self.per_bot_detail,
            });
        }
        let listen = self.listen.trim().parse().map_err(|_| {
            ConfigError::new(
                "http.listen",
                format!("{:?} is not an address like 0.0.0.0:8080", self.listen),
            )
        })?;
        Ok(HttpSettings {
            listen: Some(listen),
            per_bot_detail: self.per_bot_detail,
        })
    }
}

impl RawVerify {
    fn validate(self) -> Result<VerifySettings, ConfigError> {
        if !(1..=366).contains(&self.days) {
            return Err(ConfigError::new(
                "verify.days",
                format!("{} is outside 1..=366", self.days),
            ));
        }
        let schedule = match self.schedule.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                Schedule::parse(text)
                    .map_err(|problem| ConfigError::new("verify.schedule", problem))?,
            ),
        };
        Ok(VerifySettings {
            schedule,
            days: self.days,
            repair: self.repair,
        })
    }
}

impl RawRetention {
    fn validate(self) -> Result<RetentionSettings, ConfigError> {
        if let Some(days) = self.max_age_days
            && !(1..=36_500).contains(&days)
        {
            return Err(ConfigError::new(
                "retention.max_age_days",
                format!("{days} is outside 1..=36500"),
            ));
        }
        Ok(RetentionSettings {
            max_age_days: self.max_age_days,
            schedule: Schedule::parse(&self.schedule)
                .map_err(|problem| ConfigError::new("retention.schedule", problem))?,
        })
    }
}

impl RawLog {
    fn validate(self) -> Result<LogSettings, ConfigError> {
        crate::telemetry::parse_filter(&self.filter)
            .map_err(|problem| ConfigError::new("log.filter", problem))?;
        Ok(LogSettings {
            format: self
                .format
                .parse::<LogFormat>()
                .map_err(|problem| ConfigError::new("log.format", problem))?,
            filter: self.filter,
        })
    }
}

fn validate_bots(raw: Vec<RawBot>) -> Result<Vec<BotSettings>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "bots",
            "no bot configured (add a [[bots]] table with a uid)",
        ));
    }
    let mut bots: Vec<BotSettings> = Vec::with_capacity(raw.len());
    for (index, bot) in raw.into_iter().enumerate() {
        let uid = BotUid::parse(bot.uid.trim()).map_err(|err| {
            ConfigError::new(format!("bots[{index}].uid"), format!("{:?} {err}", bot.uid))
        })?;
        if let Some(first) = bots.iter().position(|other| other.uid == uid) {
            return Err(ConfigError::new(
                format!("bots[{index}].uid"),
                format!("{uid} is already configured as bots[{first}]"),
            ));
        }
        if let Some(var) = &bot.api_key_env {
            let valid = !var.is_empty()
                && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !var.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(ConfigError::new(
                    format!("bots[{index}].api_key_env"),
                    format!("{var:?} is not an environment variable name"),
                ));
            }
        }
        let schedule =
            match bot.schedule.as_deref() {
                None => None,
                Some(text) => Some(Schedule::parse(text).map_err(|problem| {
                    ConfigError::new(format!("bots[{index}].schedule"), problem)
                })?),
            };
        bots.push(BotSettings {
            uid,
            name: bot.name.filter(|name| !name.trim().is_empty()),
            api_key_env: bot.api_key_env,
            schedule,
        });
    }
    Ok(bots)
}

fn positive(setting: &str, value: u64) -> Result<u64, ConfigError> {
    if value == 0 {
        Err(ConfigError::new(setting, "must be at least 1"))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[database]\nurl = \"postgres://u:secret-pw@db/leads\"\n[[bots]]\nuid = \"b-1\"\n";

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn error_of(toml: &str) -> ConfigError {
        Config::from_toml(toml, &HashMap::new()).expect_err("invalid config")
    }

    #[test]
    fn a_minimal_file_gets_safe_defaults() {
        let config = Config::from_toml(MINIMAL, &HashMap::new()).expect("valid");
        assert_eq!(config.api.client.base_url.as_str(), DEFAULT_BASE_URL);
        assert_eq!(config.api.page_size, 100);
        assert_eq!(config.sync.plan.backfill_from, ALL_HISTORY_FROM);
        assert_eq!(config.sync.plan.lookback_days, 2);
        assert_eq!(config.retry.max_attempts, 6);
        assert_eq!(config.bots[0].uid.as_str(), "b-1");
        assert_eq!(config.retention.max_age_days, None, "kept forever");
        assert_eq!(config.retention.schedule.as_str(), "0 0 4 * * *");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let config = Config::from_toml(
            MINIMAL,
            &env(&[
                ("LEADSYNC__API__PAGE_SIZE", "25"),
                ("LEADSYNC__SYNC__BACKFILL_FROM", "2024-02-01"),
                ("DATABASE_URL", "postgres://other/db"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.api.page_size, 25);
        assert_eq!(config.sync.plan.backfill_from.to_string(), "2024-02-01");
        use secrecy::ExposeSecret as _;
        assert_eq!(config.database.url.expose_secret(), "postgres://other/db");
    }

    #[test]
    fn the_prefixed_database_url_wins_over_database_url() {
        let config = Config::from_toml(
            MINIMAL,
            &env(&[
                ("DATABASE_URL", "postgres://plain/db"),
                ("LEADSYNC__DATABASE__URL", "postgres://prefixed/db"),
            ]),
        )
        .expect("valid");
        use secrecy::ExposeSecret as _;
        assert_eq!(
            config.database.url.expose_secret(),
            "postgres://prefixed/db"
        );
    }

    #[test]
    fn each_invalid_setting_is_named() {
        let cases = [
            ("[api]\npage_size = 5000\n", "api.page_size"),
            ("[api]\ntimeout_secs = 0\n", "api.timeout_secs"),
            ("[retry]\nmax_attempts = 0\n", "retry.max_attempts"),
            (
                "[retry]\ninitial_delay_ms = 9000\nmax_delay_ms = 10\n",
                "retry.initial_delay_ms",
            ),
            ("[sync]\nmax_window_leads = 0\n", "sync.max_window_leads"),
            (
                "[sync]\nmax_concurrent_bots = 20\n",
                "database.max_connections",
            ),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[retention]\nmax_age_days = 0\n", "retention.max_age_days"),
            (
                "[retention]\nschedule = \"0 4 * * *\"\n",
                "retention.schedule",
            ),
            (
                "[api]\nbase_url = \"https://x/api?key=1\"\n",
                "api.base_url",
            ),
            (
                "[api]\nbase_url = \"http://api.example.com/api\"\n",
                "api.base_url",
            ),
        ];
        for (extra, setting) in cases {
            let err = error_of(&format!("{MINIMAL}{extra}"));
            assert!(
                err.to_string().contains(setting),
                "{err} should name {setting}"
            );
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_the_setting_and_the_type() {
        let cases = [
            (
                "[api]\npage_size = \"100\"\n",
                "api.page_size",
                "whole number",
            ),
            ("[api]\npage_size = 10.5\n", "api.page_size", "whole number"),
            ("[api]\npage_size = -1\n", "api.page_size", "whole number"),
            (
                "[sync]\nrun_at_start = \"yes\"\n",
                "sync.run_at_start",
                "true or false",
            ),
            (
                "[sync]\nrun_at_start = 1\n",
                "sync.run_at_start",
                "true or false",
            ),
            (
                "[retention]\nmax_age_days = \"30\"\n",
                "retention.max_age_days",
                "whole number",
            ),
            (
                "[shutdown]\ngrace_secs = 1e3\n",
                "shutdown.grace_secs",
                "whole number",
            ),
        ];
        for (extra, setting, expected) in cases {
            let err = error_of(&format!("{MINIMAL}{extra}"));
            assert_eq!(err.setting, setting, "{extra}: {err}");
            assert!(err.problem.contains(expected), "{extra}: {err}");
        }
    }

    #[test]
    fn environment_values_are_typed_by_their_text() {
        let config = Config::from_toml(
            MINIMAL,
            &env(&[
                ("LEADSYNC__API__PAGE_SIZE", "25"),
                ("LEADSYNC__SYNC__RUN_AT_START", "false"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.api.page_size, 25);
        assert!(!config.sync.run_at_start);
        let err = Config::from_toml(MINIMAL, &env(&[("LEADSYNC__SYNC__RUN_AT_START", "yes")]))
            .expect_err("yes is not a boolean");
        assert_eq!(err.setting, "sync.run_at_start");
        let err = Config::from_toml(MINIMAL, &env(&[("LEADSYNC__API__PAGE_SIZE", "10.5")]))
            .expect_err("10.5 is not a whole number");
        assert_eq!(err.setting, "api.page_size");
    }

    #[test]
    fn a_filter_or_format_that_would_log_nothing_is_refused_listing_the_choices() {
        let err = error_of(&format!("{MINIMAL}[log]\nfilter = \"infoo\"\n"));
        assert_eq!(err.setting, "log.filter");
        assert!(
            err.problem.contains("trace, debug, info, warn, error, off"),
            "{err}"
        );
        let err = error_of(&format!("{MINIMAL}[log]\nformat = \"yaml\"\n"));
        assert_eq!(err.setting, "log.format");
        assert!(err.problem.contains("auto, json, text"), "{err}");
        for filter in ["info", "warn,leadsync=debug", "leadsync::sync=trace", "OFF"] {
            let toml = format!("{MINIMAL}[log]\nfilter = {filter:?}\n");
            assert!(
                Config::from_toml(&toml, &HashMap::new()).is_ok(),
                "{filter}"
            );
        }
    }

    #[test]
    fn without_a_file_the_error_says_no_config_file_was_given() {
        let err = Config::load(None, &HashMap::new()).expect_err("nothing configured");
        assert!(err.problem.contains("no config file was given"), "{err}");
        assert!(err.problem.contains("LEADSYNC_CONFIG"), "{err}");
    }

    #[test]
    fn plain_http_is_accepted_to_this_machine_or_when_a_setting_says_so() {
        for url in [
            "http://127.0.0.1:8089/api",
            "http://127.0.0.9/api",
            "http://localhost/api",
            "http://[::1]:80/api",
            "https://api.example.com/api",
        ] {
            let toml = format!("{MINIMAL}[api]\nbase_url = \"{url}\"\n");
            assert!(Config::from_toml(&toml, &HashMap::new()).is_ok(), "{url}");
        }
        for url in [
            "http://fake-api:8089/api",
            "http://10.0.0.1/api",
            "http://localhost.evil/api",
        ] {
            let toml = format!("{MINIMAL}[api]\nbase_url = \"{url}\"\n");
            assert!(Config::from_toml(&toml, &HashMap::new()).is_err(), "{url}");
            let allowed = format!("{toml}allow_plain_http = true\n");
            assert!(
                Config::from_toml(&allowed, &HashMap::new()).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = error_of(&format!("{MINIMAL}[sync]\nlookback = 3\n"));
        assert!(err.to_string().contains("lookback"), "{err}");
    }

    #[test]
    fn connection_options_are_checked_with_the_rest_of_the_config() {
        for options in ["sslmode=bogus", "port=x", "statement-cache-capacity=many"] {
            let err = error_of(&format!(
                "[database]\nurl = \"postgres://u:secret-pw@db/x?{options}\"\n[[bots]]\nuid = \"b\"\n"
            ));
            assert_eq!(err.setting, "database.url", "{options}");
            let message = err.to_string();
            assert!(message.contains("invalid connection options"), "{message}");
            assert!(!message.contains("secret-pw"), "{message}");
        }
    }

    #[test]
    fn the_database_password_never_appears_in_an_error() {
        let err =
            error_of("[database]\nurl = \"mysql://u:secret-pw@db/x\"\n[[bots]]\nuid = \"b\"\n");
        assert_eq!(err.setting, "database.url");
        assert!(!err.to_string().contains("secret-pw"));
    }

    #[test]
    fn api_keys_come_from_the_bot_variable_then_the_key_file_then_chatofai_api_key() {
        let toml = "[database]\nurl = \"postgres://db/x\"\n[[bots]]\nuid = \"a\"\n\
                    [[bots]]\nuid = \"b\"\napi_key_env = \"KEY_FOR_B\"\n";
        let config = Config::from_toml(toml, &HashMap::new()).expect("valid");
        let keys = config
            .resolve_api_keys(&env(&[
                ("CHATOFAI_API_KEY", "shared"),
                ("KEY_FOR_B", "own"),
            ]))
            .expect("keys");
        use secrecy::ExposeSecret as _;
        assert_eq!(
            keys[&BotUid::parse("a").expect("uid")].expose_secret(),
            "shared"
        );
        assert_eq!(
            keys[&BotUid::parse("b").expect("uid")].expose_secret(),
            "own"
        );

        let err = config
            .resolve_api_keys(&env(&[("CHATOFAI_API_KEY", "shared")]))
            .expect_err("KEY_FOR_B is missing");
        assert_eq!(err.setting, "bots[1].api_key_env");

        let path = std::env::temp_dir().join(format!("leadsync-key-{}", uuid::Uuid::now_v7()));
        std::fs::write(&path, "from-file\n").expect("write key file");
        let toml = format!(
            "{MINIMAL}[api]\nkey_file = {:?}\n",
            path.display().to_string()
        );
        let config = Config::from_toml(&toml, &HashMap::new()).expect("valid");
        let keys = config
            .resolve_api_keys(&env(&[("CHATOFAI_API_KEY", "ignored")]))
            .expect("keys");
        assert_eq!(
            keys[&BotUid::parse("b-1").expect("uid")].expose_secret(),
            "from-file"
        );
        std::fs::remove_file(path).expect("remove key file");
    }
}
