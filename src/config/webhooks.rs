//! Webhook settings: which URLs clients may set, and the retry schedule.

use std::time::Duration;

use secrecy::SecretString;

#[derive(Debug, Clone, clap::Args)]
pub struct WebhookSettings {
    /// Allow plain-http webhook URLs to any host (without it: https, or http to loopback,
    /// which also needs OTP_WEBHOOK_ALLOW_PRIVATE).
    #[arg(long = "webhook-allow-http", env = "OTP_WEBHOOK_ALLOW_HTTP", value_name = "OTP_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_http: bool,

    /// Allow webhook URLs that resolve to addresses not on the public internet (private,
    /// loopback, link-local, or an IPv6 form of one). `serve --dev` sets it. The service
    /// records both settings at its start, and `clients set --webhook-url` accepts what
    /// they allow.
    #[arg(long = "webhook-allow-private", env = "OTP_WEBHOOK_ALLOW_PRIVATE", value_name = "OTP_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_private: bool,

    /// Comma-separated seconds between a failed webhook attempt and the next
    /// (default 5,300,1800,7200,18000,36000,36000, then given up).
    #[arg(long = "webhook-retry-schedule", env = "OTP_WEBHOOK_RETRY_SCHEDULE", value_name = "OTP_WEBHOOK_RETRY_SCHEDULE", value_parser = schedule)]
    pub retry_schedule: Option<Schedule>,

    /// A proxy every webhook goes through (http:// or https:// URL, credentials in it if
    /// needed). Without it webhooks connect straight to their endpoint, whatever
    /// HTTP_PROXY, HTTPS_PROXY or ALL_PROXY say. The proxy resolves the endpoint's name and
    /// connects: it must refuse private addresses itself.
    #[arg(long = "webhook-proxy", env = "OTP_WEBHOOK_PROXY", value_name = "OTP_WEBHOOK_PROXY",
          value_parser = super::secret, hide_env_values = true)]
    pub proxy: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct Schedule(pub Vec<Duration>);

fn schedule(raw: &str) -> Result<Schedule, String> {
    raw.split(',')
        .map(|s| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 7.0 * 24.0 * 3600.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("`{s}` is not a number of seconds between 0 and a week"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Schedule)
}
