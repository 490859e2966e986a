//! Configuration: every setting is a flag with an environment variable behind
//! it (listed in docs/configuration.md), so `otp-service serve --help` documents them all.
//! An optional TOML file (`--config`) may set the same variables.

use std::net::SocketAddr;
use std::time::Duration;

use phonenumber::country::Id as CountryId;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{CodeLength, Defaults, Locale};

mod checks;
mod file;
mod fraud;
mod webhooks;

pub use fraud::FraudSettings;
pub use webhooks::{Schedule, WebhookSettings};

pub use file::with_config_file;

/// The least length of the pepper and the admin key, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/otp_service";

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL.
    #[arg(long = "database-url", env = "DATABASE_URL", value_name = "DATABASE_URL",
          default_value = DEFAULT_DATABASE_URL, value_parser = secret, hide_env_values = true)]
    pub url: SecretString,

    /// The longest PostgreSQL runs one statement of the service before cancelling it
    /// (its statement_timeout on every connection), in ms.
    #[arg(long = "db-statement-timeout-ms", env = "OTP_DB_STATEMENT_TIMEOUT_MS",
          value_name = "OTP_DB_STATEMENT_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub statement_timeout_ms: u64,

    /// The longest the service waits for the database on one call (a connection, then
    /// its statement's answer) before answering 503, in ms; longer than
    /// OTP_DB_STATEMENT_TIMEOUT_MS, so that a slow statement is cancelled by PostgreSQL first.
    #[arg(long = "db-call-timeout-ms", env = "OTP_DB_CALL_TIMEOUT_MS",
          value_name = "OTP_DB_CALL_TIMEOUT_MS", default_value_t = 6000,
          value_parser = clap::value_parser!(u64).range(200..=600_000))]
    pub call_timeout_ms: u64,

    /// Seconds a connection may stay silent before PostgreSQL probes it (TCP keepalive),
    /// so that a vanished replica's connections and locks are let go.
    #[arg(long = "db-keepalive-seconds", env = "OTP_DB_KEEPALIVE_SECONDS",
          value_name = "OTP_DB_KEEPALIVE_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=7200))]
    pub keepalive_seconds: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Address to serve on.
    #[arg(
        long,
        env = "OTP_LISTEN",
        value_name = "OTP_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,

    /// Address serving GET /metrics alone, for the monitoring network; OTP_LISTEN then
    /// answers 404 for it. Unset: /metrics is served on OTP_LISTEN, to whoever reaches it.
    #[arg(long, env = "OTP_METRICS_LISTEN", value_name = "OTP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Server-side secret mixed into every code hash, at least 32 bytes.
    #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", value_parser = secret, hide_env_values = true)]
    pub pepper: Option<SecretString>,

    /// Comma-separated peppers replaced by OTP_PEPPER, still accepted for the codes
    /// and queued messages they made.
    #[arg(long, env = "OTP_PREVIOUS_PEPPERS", value_name = "OTP_PREVIOUS_PEPPERS",
          value_parser = secret_list, hide_env_values = true)]
    pub previous_peppers: Option<SecretList>,

    /// Key for /admin/*, at least 32 bytes, sent as X-Admin-Key; admin endpoints are off without it.
    #[arg(long, env = "OTP_ADMIN_KEY", value_name = "OTP_ADMIN_KEY", value_parser = secret, hide_env_values = true)]
    pub admin_key: Option<SecretString>,

    #[command(flatten)]
    pub gateway: GatewaySettings,

    #[command(flatten)]
    pub policy: PolicySettings,

    #[command(flatten)]
    pub hashing: HashSettings,

    #[command(flatten)]
    pub webhooks: WebhookSettings,

    #[command(flatten)]
    pub fraud: FraudSettings,

    /// Time POST /otp/request waits for the first delivery attempt, in milliseconds
    /// (at most 20000: a request must end well within an idempotency claim's minute).
    #[arg(
        long,
        env = "OTP_SEND_WAIT_MS",
        value_name = "OTP_SEND_WAIT_MS",
        default_value_t = 3000,
        value_parser = clap::value_parser!(u64).range(0..=20_000)
    )]
    pub send_wait_ms: u64,

    /// `json` or `text`; RUST_LOG sets the levels. Default: json (text under --dev).
    #[arg(long, env = "OTP_LOG_FORMAT", value_name = "OTP_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Finished verifications and their messages are deleted after this many days.
    #[arg(
        long,
        env = "OTP_RETENTION_DAYS",
        value_name = "OTP_RETENTION_DAYS",
        default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retention_days: u32,

    /// The longest a stop on SIGTERM may take.
    #[arg(
        long,
        env = "OTP_SHUTDOWN_TIMEOUT_SECONDS",
        value_name = "OTP_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 25,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub shutdown_timeout_seconds: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GatewaySettings {
    /// The Waconecta gateway.
    #[arg(
        long = "waconecta-base-url",
        env = "WACONECTA_BASE_URL",
        value_name = "WACONECTA_BASE_URL",
        default_value = "https://waconecta-api.engaged.com.bo"
    )]
    pub base_url: String,

    /// Comma-separated gateway keys, one per linked WhatsApp session.
    #[arg(long = "waconecta-api-keys", env = "WACONECTA_API_KEYS", value_name = "WACONECTA_API_KEYS",
          value_parser = secret_list, hide_env_values = true)]
    pub api_keys: Option<SecretList>,

    /// Comma-separated container tokens, in the same order as the keys, for the QR page.
    #[arg(long = "waconecta-container-tokens", env = "WACONECTA_CONTAINER_TOKENS",
          value_name = "WACONECTA_CONTAINER_TOKENS", value_parser = secret_list, hide_env_values = true)]
    pub container_tokens: Option<SecretList>,

    /// Messages per minute allowed on each key.
    #[arg(long = "waconecta-rate-per-minute", env = "WACONECTA_RATE_PER_MINUTE",
          value_name = "WACONECTA_RATE_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_per_minute: u32,

    /// Messages handed to each key in any 15 s (default: a quarter of the rate): the
    /// minute's allowance spread over the minute, so no client waits the minute out.
    #[arg(long = "waconecta-burst", env = "WACONECTA_BURST", value_name = "WACONECTA_BURST",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PolicySettings {
    /// Digits in a code, 4 to 10.
    #[arg(long, env = "OTP_CODE_LENGTH", value_name = "OTP_CODE_LENGTH", default_value = "6", value_parser = code_length)]
    pub code_length: CodeLength,
    /// How long a code is valid, in seconds.
    #[arg(long, env = "OTP_TTL_SECONDS", value_name = "OTP_TTL_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u32).range(30..=86_400))]
    pub ttl_seconds: u32,
    /// Wrong codes allowed per verification.
    #[arg(long, env = "OTP_MAX_ATTEMPTS", value_name = "OTP_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Allow codes of fewer than 6 digits or living over 600 s (logged at every start).
    #[arg(long, env = "OTP_ALLOW_WEAK_CODES", value_name = "OTP_ALLOW_WEAK_CODES",
          default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_weak_codes: bool,
    /// Seconds between two sends of one verification (0 to 3600).
    #[arg(
        long,
        env = "OTP_RESEND_COOLDOWN_SECONDS",
        value_name = "OTP_RESEND_COOLDOWN_SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(0..=3600)
    )]
    pub resend_cooldown_seconds: u32,
    /// Sends per verification (the first one included).
    #[arg(long, env = "OTP_MAX_SENDS", value_name = "OTP_MAX_SENDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_sends: u32,
    /// Sends per phone per hour, counted per client: another client's sends do not count.
    #[arg(
        long,
        env = "OTP_PHONE_SENDS_PER_HOUR",
        value_name = "OTP_PHONE_SENDS_PER_HOUR",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub phone_sends_per_hour: u32,
    /// Sends per phone per hour across all clients (default: 3 × OTP_PHONE_SENDS_PER_HOUR).
    #[arg(
        long,
        env = "OTP_PHONE_SENDS_PER_HOUR_ALL_CLIENTS",
        value_name = "OTP_PHONE_SENDS_PER_HOUR_ALL_CLIENTS",
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub phone_sends_per_hour_all_clients: Option<u32>,
    /// Failed attempts per (client, phone) per hour, across all verifications.
    #[arg(
        long,
        env = "OTP_PHONE_FAILURES_PER_HOUR",
        value_name = "OTP_PHONE_FAILURES_PER_HOUR",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub phone_failures_per_hour: u32,
    /// Failed attempts per (client, phone) per day, across all verifications.
    #[arg(
        long,
        env = "OTP_PHONE_FAILURES_PER_DAY",
        value_name = "OTP_PHONE_FAILURES_PER_DAY",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub phone_failures_per_day: u32,
    /// Requests per (client, end-user IP) per hour, when `end_user_ip` is given.
    #[arg(
        long,
        env = "OTP_IP_REQUESTS_PER_HOUR",
        value_name = "OTP_IP_REQUESTS_PER_HOUR",
        default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub ip_requests_per_hour: u32,
    /// Requests per client per minute, for clients without their own limit.
    #[arg(
        long,
        env = "OTP_CLIENT_REQUESTS_PER_MINUTE",
        value_name = "OTP_CLIENT_REQUESTS_PER_MINUTE",
        default_value_t = 300,
        value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64)
    )]
    pub client_requests_per_minute: u32,
    /// Messages a client may have waiting for the gateway, for clients without their own cap.
    #[arg(
        long,
        env = "OTP_CLIENT_MAX_QUEUED",
        value_name = "OTP_CLIENT_MAX_QUEUED",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub client_max_queued: u32,
    /// Comma-separated ISO 3166-1 codes; empty allows every country.
    #[arg(long, env = "OTP_ALLOWED_COUNTRIES", value_name = "OTP_ALLOWED_COUNTRIES", value_parser = country_list, default_value = "")]
    pub allowed_countries: CountryList,
    /// Country used to read national numbers.
    #[arg(long, env = "OTP_DEFAULT_COUNTRY", value_name = "OTP_DEFAULT_COUNTRY", value_parser = country)]
    pub default_country: Option<CountryId>,
    /// `es`, `en` or `pt`.
    #[arg(
        long,
        env = "OTP_DEFAULT_LOCALE",
        value_name = "OTP_DEFAULT_LOCALE",
        default_value = "es"
    )]
    pub default_locale: Locale,
    /// Message text for `es`; must contain {code}, may contain {minutes} and {app} (the client's display name).
    #[arg(long, env = "OTP_TEMPLATE_ES", value_name = "OTP_TEMPLATE_ES", value_parser = template)]
    pub template_es: Option<String>,
    /// Message text for `en`.
    #[arg(long, env = "OTP_TEMPLATE_EN", value_name = "OTP_TEMPLATE_EN", value_parser = template)]
    pub template_en: Option<String>,
    /// Message text for `pt`.
    #[arg(long, env = "OTP_TEMPLATE_PT", value_name = "OTP_TEMPLATE_PT", value_parser = template)]
    pub template_pt: Option<String>,
}

/// What hashing a code needs outside the service (a test number's, from the
/// command line): the service's own pepper, so that the service can check it.
#[derive(Debug, Clone, clap::Args)]
pub struct PepperSettings {
    /// The service's OTP_PEPPER (at least 32 bytes).
    #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", value_parser = secret, hide_env_values = true)]
    pub pepper: Option<SecretString>,
    #[command(flatten)]
    pub hashing: HashSettings,
}

/// The service's peppers, for a command that tells what each protects.
#[derive(Debug, Clone, clap::Args)]
pub struct PepperList {
    /// The service's OTP_PEPPER.
    #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", value_parser = secret, hide_env_values = true)]
    pub pepper: Option<SecretString>,
    /// The service's OTP_PREVIOUS_PEPPERS, comma-separated.
    #[arg(long, env = "OTP_PREVIOUS_PEPPERS", value_name = "OTP_PREVIOUS_PEPPERS",
          value_parser = secret_list, hide_env_values = true)]
    pub previous_peppers: Option<SecretList>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct HashSettings {
    /// argon2id memory, KiB (8 to 1048576).
    #[arg(
        long = "argon2-memory-kib",
        env = "OTP_ARGON2_MEMORY_KIB",
        value_name = "OTP_ARGON2_MEMORY_KIB",
        default_value_t = 19_456,
        value_parser = clap::value_parser!(u32).range(8..=1_048_576)
    )]
    pub memory_kib: u32,
    /// argon2id iterations (1 to 20).
    #[arg(
        long = "argon2-iterations",
        env = "OTP_ARGON2_ITERATIONS",
        value_name = "OTP_ARGON2_ITERATIONS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub iterations: u32,
    /// argon2id lanes (1 to 16).
    #[arg(
        long = "argon2-parallelism",
        env = "OTP_ARGON2_PARALLELISM",
        value_name = "OTP_ARGON2_PARALLELISM",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=16)
    )]
    pub parallelism: u32,
    /// Hashing threads, each with one argon2 buffer of its own; 0: one per core.
    #[arg(
        long = "hash-workers",
        env = "OTP_HASH_WORKERS",
        value_name = "OTP_HASH_WORKERS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u32).range(0..=256)
    )]
    pub workers: u32,
    /// How long a request waits for a free hashing thread before `503 unavailable`, in ms.
    #[arg(
        long = "hash-wait-ms",
        env = "OTP_HASH_WAIT_MS",
        value_name = "OTP_HASH_WAIT_MS",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub wait_ms: u64,
}

impl HashSettings {
    pub fn workers(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        }
    }

    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Comma-separated secrets, each kept secret.
#[derive(Debug, Clone)]
pub struct SecretList(pub Vec<SecretString>);

#[derive(Debug, Clone, Default)]
pub struct CountryList(pub Vec<CountryId>);

impl Settings {
    /// The settings from the environment and the defaults, with no flags.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        <Only as clap::Parser>::try_parse_from(["otp-service"]).map(|o| o.settings)
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.policy.ttl_seconds.into())
    }

    pub fn send_wait(&self) -> Duration {
        Duration::from_millis(self.send_wait_ms)
    }
}

fn secret(raw: &str) -> Result<SecretString, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(raw.to_owned().into())
}

fn secret_list(raw: &str) -> Result<SecretList, String> {
    let items: Vec<SecretString> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| SecretString::from(s.to_owned()))
        .collect();
    if items.is_empty() {
        return Err("must list at least one value".into());
    }
    Ok(SecretList(items))
}

fn code_length(raw: &str) -> Result<CodeLength, String> {
    let digits: u8 = raw.parse().map_err(|_| format!("`{raw}` is not a number"))?;
    CodeLength::new(digits)
}

fn country(raw: &str) -> Result<CountryId, String> {
    crate::domain::parse_country(raw).map_err(|_| format!("`{raw}` is not an ISO 3166-1 alpha-2 code"))
}

fn country_list(raw: &str) -> Result<CountryList, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(country)
        .collect::<Result<_, _>>()
        .map(CountryList)
}

fn template(raw: &str) -> Result<String, String> {
    if raw.contains("{code}") {
        Ok(raw.to_owned())
    } else {
        Err("a message template must contain {code}".into())
    }
}

impl PolicySettings {
    /// What a client gets for what it leaves unset.
    pub fn client_defaults(&self) -> Defaults {
        let templates = crate::delivery::Templates::from_settings(self);
        Defaults {
            max_queued: self.client_max_queued,
            requests_per_minute: self.client_requests_per_minute,
            code_length: self.code_length,
            ttl_seconds: self.ttl_seconds,
            max_attempts: self.max_attempts,
            resend_cooldown_seconds: self.resend_cooldown_seconds,
            max_sends: self.max_sends,
            allowed_countries: self.allowed_countries.0.clone(),
            default_locale: self.default_locale,
            templates: Locale::ALL.map(|l| templates.get(l).to_owned()),
        }
    }

    pub fn phone_sends_per_hour_all_clients(&self) -> u32 {
        self.phone_sends_per_hour_all_clients
            .unwrap_or(self.phone_sends_per_hour.saturating_mul(3))
    }
}

impl DatabaseSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The time limits of the database, once `check_limits` accepted them.
    pub fn limits(&self) -> crate::store::Limits {
        crate::store::Limits {
            statement: Duration::from_millis(self.statement_timeout_ms),
            call: Duration::from_millis(self.call_timeout_ms),
            keepalive: Duration::from_secs(self.keepalive_seconds),
        }
    }

    /// The call timeout must outlast the statement timeout: else a statement
    /// that is merely slow is given up on by the service while PostgreSQL still
    /// runs it, and its connection is thrown away, instead of cancelled cleanly.
    pub fn check_limits(&self) -> Result<crate::store::Limits, String> {
        if self.call_timeout_ms <= self.statement_timeout_ms {
            return Err(format!(
                "OTP_DB_CALL_TIMEOUT_MS ({}) must be longer than OTP_DB_STATEMENT_TIMEOUT_MS ({}): \
                 raise the first or lower the second",
                self.call_timeout_ms, self.statement_timeout_ms
            ));
        }
        Ok(self.limits())
    }
}
