//! Configuration: every setting is a flag with an environment variable behind
//! it (listed in docs/configuration.md), so `otp-service serve --help` documents them all.
//! An optional TOML file (`--config`) may set the same variables.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

mod checks;
mod file;
mod fraud;
mod policy;
mod webhooks;

pub use crate::crypto::HashSettings;
pub use fraud::{FraudMode, FraudSettings};
pub use policy::{CountryList, PolicySettings};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Comma-separated secrets, each kept secret.
#[derive(Debug, Clone)]
pub struct SecretList(pub Vec<SecretString>);

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

impl DatabaseSettings {
    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// The call timeout must outlast the statement timeout: else a statement
    /// that is merely slow is given up on by the service while PostgreSQL still
    /// runs it, and its connection is thrown away, instead of cancelled cleanly.
    pub fn check_limits(&self) -> Result<(), String> {
        if self.call_timeout_ms <= self.statement_timeout_ms {
            return Err(format!(
                "OTP_DB_CALL_TIMEOUT_MS ({}) must be longer than OTP_DB_STATEMENT_TIMEOUT_MS ({}): \
                 raise the first or lower the second",
                self.call_timeout_ms, self.statement_timeout_ms
            ));
        }
        Ok(())
    }
}
