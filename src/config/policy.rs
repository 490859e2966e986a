//! The verification policy: codes, limits, countries and message texts, as
//! the service's defaults and for what a client leaves unset.

use phonenumber::country::Id as CountryId;

use crate::domain::{CodeLength, Locale};

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

#[derive(Debug, Clone, Default)]
pub struct CountryList(pub Vec<CountryId>);

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
    pub fn phone_sends_per_hour_all_clients(&self) -> u32 {
        self.phone_sends_per_hour_all_clients
            .unwrap_or(self.phone_sends_per_hour.saturating_mul(3))
    }
}
