//! `otp-service clients …`: calling applications, their settings and their
//! test numbers, straight in the database (a running service sees a change at
//! its next request).

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::peppers::service_pepper;
use super::webhooks;
use crate::clients::{self, ClientRecord, test_numbers};
use crate::config::{PepperSettings, PolicySettings, WebhookSettings};
use crate::crypto::CodeHasher;
use crate::domain::{Change, Locale, PhoneNumber, SettingsChange};
use crate::metrics::Metrics;

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Create a client and print its key (shown once, never again).
    Add {
        name: String,
        /// Requests per minute for this client (default: OTP_CLIENT_REQUESTS_PER_MINUTE).
        #[arg(long)]
        requests_per_minute: Option<u32>,
    },
    /// List clients (never their keys).
    List,
    /// Print a client's effective settings: its own, and the service's for the rest.
    Show { name: String },
    /// Change a client's settings; every change is checked before any is stored.
    Set(Box<SetArgs>),
    /// Give a client a new key, printed once; the old key stops working at once.
    RotateKey { name: String },
    /// Give a client's webhook a new signing secret, printed once; the old one
    /// also signs for 24 hours. Needs the service's OTP_PEPPER.
    RotateWebhookSecret {
        name: String,
        #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", hide_env_values = true)]
        pepper: Option<SecretString>,
    },
    /// Revoke a client's key: its requests get 401 from now on.
    Revoke { name: String },
    /// Numbers that send nothing and verify with a fixed code (for app-store reviewers).
    TestNumbers {
        #[command(subcommand)]
        action: TestNumbersCommand,
    },
}

#[derive(Debug, Args)]
pub struct SetArgs {
    name: String,
    /// Weight in the gateway's fair share (1 to 1000; default 1).
    #[arg(long)]
    share: Option<i64>,
    /// Messages it may have waiting for the gateway (default: OTP_CLIENT_MAX_QUEUED).
    #[arg(long)]
    max_queued: Option<i64>,
    #[arg(long)]
    requests_per_minute: Option<i64>,
    /// `{app}` in its messages (default: the client's name).
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    code_length: Option<i64>,
    #[arg(long)]
    ttl_seconds: Option<i64>,
    /// Wrong codes allowed per verification.
    #[arg(long)]
    max_attempts: Option<i64>,
    #[arg(long)]
    resend_cooldown_seconds: Option<i64>,
    /// Sends per verification.
    #[arg(long)]
    max_sends: Option<i64>,
    /// Comma-separated ISO 3166-1 codes; "" allows every country.
    #[arg(long, value_delimiter = ',')]
    allowed_countries: Option<Vec<String>>,
    #[arg(long)]
    default_locale: Option<String>,
    /// Must contain {code}; may use {minutes} and {app}.
    #[arg(long)]
    template_es: Option<String>,
    #[arg(long)]
    template_en: Option<String>,
    #[arg(long)]
    template_pt: Option<String>,
    /// Where the client's webhooks go (https; see OTP_WEBHOOK_ALLOW_*). Its
    /// first signing secret is printed once. `--unset webhook-url` stops them.
    /// A new URL, or none, gives up the events still waiting for the old one.
    #[arg(long)]
    webhook_url: Option<String>,
    /// A setting to give back to the service's default (repeatable).
    #[arg(long, value_enum)]
    unset: Vec<Field>,
    /// The service's OTP_PEPPER: needed with --webhook-url, to seal the signing secret.
    #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", hide_env_values = true)]
    pepper: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Field {
    Share,
    MaxQueued,
    RequestsPerMinute,
    DisplayName,
    CodeLength,
    TtlSeconds,
    MaxAttempts,
    ResendCooldownSeconds,
    MaxSends,
    AllowedCountries,
    DefaultLocale,
    TemplateEs,
    TemplateEn,
    TemplatePt,
    WebhookUrl,
}

#[derive(Debug, Subcommand)]
pub enum TestNumbersCommand {
    /// Add a test number (or replace its code and end). Needs the service's OTP_PEPPER.
    Add {
        name: String,
        /// In international form: +59170000000.
        phone: String,
        /// The fixed code, 6 to 10 digits (4 and 5 too with OTP_ALLOW_WEAK_CODES=true).
        code: String,
        /// Its last day (YYYY-MM-DD, UTC; or an RFC 3339 time); default 90 days, at most a year.
        #[arg(long, value_parser = until)]
        until: Option<DateTime<Utc>>,
        #[command(flatten)]
        pepper: PepperSettings,
    },
    /// A client's test numbers (never their codes).
    List {
        name: String,
    },
    Remove {
        name: String,
        phone: String,
    },
}

impl SetArgs {
    fn change(self) -> SettingsChange {
        let unset = self.unset;
        let pick = |field: Field, value| match value {
            Some(v) => Change::Set(v),
            None if unset.contains(&field) => Change::Clear,
            None => Change::Keep,
        };
        let text = |field: Field, value: Option<String>| match value {
            Some(v) => Change::Set(v),
            None if unset.contains(&field) => Change::Clear,
            None => Change::Keep,
        };
        let countries = self
            .allowed_countries
            .map(|l| l.into_iter().filter(|c| !c.trim().is_empty()).collect());
        SettingsChange {
            share: pick(Field::Share, self.share),
            max_queued: pick(Field::MaxQueued, self.max_queued),
            requests_per_minute: pick(Field::RequestsPerMinute, self.requests_per_minute),
            display_name: text(Field::DisplayName, self.display_name),
            code_length: pick(Field::CodeLength, self.code_length),
            ttl_seconds: pick(Field::TtlSeconds, self.ttl_seconds),
            max_attempts: pick(Field::MaxAttempts, self.max_attempts),
            resend_cooldown_seconds: pick(Field::ResendCooldownSeconds, self.resend_cooldown_seconds),
            max_sends: pick(Field::MaxSends, self.max_sends),
            allowed_countries: match countries {
                Some(list) => Change::Set(list),
                None if unset.contains(&Field::AllowedCountries) => Change::Clear,
                None => Change::Keep,
            },
            default_locale: text(Field::DefaultLocale, self.default_locale),
            template_es: text(Field::TemplateEs, self.template_es),
            template_en: text(Field::TemplateEn, self.template_en),
            template_pt: text(Field::TemplatePt, self.template_pt),
        }
    }
}

pub(super) fn until(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        // The whole of that day.
        let next = day.succ_opt().ok_or("the date is out of range")?;
        return Ok(next.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{raw}` is neither YYYY-MM-DD nor an RFC 3339 time"))
}

pub async fn run(
    pool: &PgPool,
    policy: &PolicySettings,
    webhook_settings: &WebhookSettings,
    action: ClientsCommand,
) -> anyhow::Result<()> {
    match action {
        ClientsCommand::Add {
            name,
            requests_per_minute,
        } => {
            let key = clients::add(pool, &name, requests_per_minute).await?;
            eprintln!("client `{name}` created. Its key is shown this once; store it now:");
            println!("{}", key.expose_secret());
        }
        ClientsCommand::List => {
            println!(
                "{:<24} {:<6} {:<10} {:<25} REVOKED",
                "NAME", "SHARE", "REQ/MIN", "CREATED"
            );
            for c in clients::list(pool).await? {
                println!(
                    "{:<24} {:<6} {:<10} {:<25} {}",
                    c.name,
                    c.settings.share.unwrap_or(1),
                    c.settings
                        .requests_per_minute
                        .map_or("default".into(), |n| n.to_string()),
                    c.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    c.revoked_at
                        .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
                );
            }
        }
        ClientsCommand::Show { name } => {
            print_settings(&clients::show(pool, &name).await?, policy);
            webhooks::print_endpoint(pool, &name).await?;
        }
        ClientsCommand::Set(args) => {
            let name = args.name.clone();
            let url = args.webhook_url.clone();
            let clear = args.unset.contains(&Field::WebhookUrl);
            let pepper = args.pepper.clone();
            let record = clients::change(pool, &name, args.change(), policy.allow_weak_codes).await?;
            webhooks::set(pool, webhook_settings, &name, url.as_deref(), clear, pepper).await?;
            eprintln!("client `{name}` changed; running services use it from their next request");
            print_settings(&record, policy);
            webhooks::print_endpoint(pool, &name).await?;
        }
        ClientsCommand::RotateWebhookSecret { name, pepper } => {
            webhooks::rotate(pool, webhook_settings, &name, pepper).await?;
        }
        ClientsCommand::RotateKey { name } => {
            let key = clients::rotate_key(pool, &name).await?;
            eprintln!("client `{name}` has a new key; the old one no longer works. Shown this once:");
            println!("{}", key.expose_secret());
        }
        ClientsCommand::Revoke { name } => {
            clients::revoke(pool, &name).await?;
            println!("client `{name}` revoked");
        }
        ClientsCommand::TestNumbers { action } => {
            run_test_numbers(pool, action, policy.allow_weak_codes).await?
        }
    }
    Ok(())
}

fn phone(raw: &str) -> anyhow::Result<PhoneNumber> {
    PhoneNumber::parse(raw, None).context("the phone number must be international: +59170000000")
}

/// `allow_weak` is `OTP_ALLOW_WEAK_CODES`: the service's own, so that a code
/// the command line adds follows the rule the HTTP API applies.
async fn run_test_numbers(pool: &PgPool, action: TestNumbersCommand, allow_weak: bool) -> anyhow::Result<()> {
    match action {
        TestNumbersCommand::Add {
            name,
            phone: raw,
            code,
            until,
            pepper,
        } => {
            let peppers = service_pepper(pepper.pepper, "the code is hashed with it, as every code")?;
            let hasher =
                CodeHasher::new(peppers, &pepper.hashing, &Metrics::new()).map_err(anyhow::Error::msg)?;
            let number =
                test_numbers::add(pool, &hasher, &name, &phone(&raw)?, &code, until, allow_weak).await?;
            println!(
                "test number {} of `{name}` until {}",
                number.phone,
                number.until.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        TestNumbersCommand::List { name } => {
            println!("{:<20} {:<25} ADDED", "PHONE", "UNTIL");
            for n in test_numbers::list(pool, &name).await? {
                let ended = if n.until <= Utc::now() { " (ended)" } else { "" };
                println!(
                    "{:<20} {:<25} {}{ended}",
                    n.phone,
                    n.until.format("%Y-%m-%d %H:%M:%S UTC"),
                    n.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                );
            }
        }
        TestNumbersCommand::Remove { name, phone: raw } => {
            test_numbers::remove(pool, &name, &phone(&raw)?).await?;
            println!("test number removed");
        }
    }
    Ok(())
}

/// Every setting the client gets, and whether it is its own or the default.
fn print_settings(record: &ClientRecord, policy: &PolicySettings) {
    let own = &record.settings;
    let effective = own.effective(&record.name, &crate::clients::defaults(policy));
    let state = match record.revoked_at {
        Some(t) => format!("revoked {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        None => "active".into(),
    };
    println!("client `{}` ({state})", record.name);
    let line = |field: &str, value: String, set: bool| {
        println!("  {field:<24} {value}{}", if set { "" } else { "  (default)" });
    };
    line(
        "display_name",
        effective.display_name.clone(),
        own.display_name.is_some(),
    );
    line("share", effective.share.to_string(), own.share.is_some());
    line(
        "max_queued",
        effective.max_queued.to_string(),
        own.max_queued.is_some(),
    );
    line(
        "requests_per_minute",
        effective.requests_per_minute.to_string(),
        own.requests_per_minute.is_some(),
    );
    line(
        "code_length",
        effective.code_length.digits().to_string(),
        own.code_length.is_some(),
    );
    line(
        "ttl_seconds",
        effective.ttl_seconds.to_string(),
        own.ttl_seconds.is_some(),
    );
    line(
        "max_attempts",
        effective.max_attempts.to_string(),
        own.max_attempts.is_some(),
    );
    line(
        "resend_cooldown_seconds",
        effective.resend_cooldown_seconds.to_string(),
        own.resend_cooldown_seconds.is_some(),
    );
    line(
        "max_sends",
        effective.max_sends.to_string(),
        own.max_sends.is_some(),
    );
    let countries = match effective.allowed_countries.as_slice() {
        [] => "every country".to_owned(),
        list => list.iter().map(|c| c.as_ref()).collect::<Vec<_>>().join(","),
    };
    line("allowed_countries", countries, own.allowed_countries.is_some());
    line(
        "default_locale",
        effective.default_locale.to_string(),
        own.default_locale.is_some(),
    );
    let templates = [&own.template_es, &own.template_en, &own.template_pt];
    for (i, locale) in Locale::ALL.iter().enumerate() {
        line(
            &format!("template_{locale}"),
            format!("{:?}", effective.templates[i]),
            templates[i].is_some(),
        );
    }
}
