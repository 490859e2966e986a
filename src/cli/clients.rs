//! `otp-service clients …`: calling applications, their settings and their
//! test numbers, straight in the database (a running service sees a change at
//! its next request).

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use super::peppers::service_pepper;
use super::webhooks;
use crate::clients::{self, test_numbers};
use crate::config::{PepperSettings, PolicySettings, WebhookSettings};
use crate::crypto::CodeHasher;
use crate::domain::PhoneNumber;
use crate::metrics::Metrics;
pub use settings::SetArgs;
use settings::{Field, print_settings};

mod settings;

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
    /// also signs for 24 hours. Needs the service's OTP_PEPPER (not against a
    /// `serve --dev` database); another pepper is refused.
    RotateWebhookSecret {
        name: String,
        #[arg(long, env = "OTP_PEPPER", value_name = "OTP_PEPPER", hide_env_values = true)]
        pepper: Option<SecretString>,
    },
    /// Revoke a client's key: its requests get 401 from now on.
    Revoke { name: String },
    /// Remove a client for good, with its verifications (their queued messages
    /// are never sent), test numbers, webhook endpoint and undelivered webhook
    /// events, stats and fraud flags. Its key stops working on every running
    /// replica at once. Cannot be undone: `revoke` keeps the history.
    Remove { name: String },
    /// Numbers that send nothing and verify with a fixed code (for app-store reviewers).
    TestNumbers {
        #[command(subcommand)]
        action: TestNumbersCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TestNumbersCommand {
    /// Add a test number (or replace its code and end). Needs the service's OTP_PEPPER
    /// (not against a `serve --dev` database); another pepper is refused.
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

pub(super) fn until(raw: &str) -> Result<DateTime<Utc>, String> {
    crate::domain::parse_until(raw)
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
        ClientsCommand::List => print_list(pool).await?,
        ClientsCommand::Show { name } => {
            print_settings(&clients::show(pool, &name).await?, policy);
            webhooks::print_endpoint(pool, &name).await?;
        }
        ClientsCommand::Set(args) => set(pool, policy, webhook_settings, args).await?,
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
        ClientsCommand::Remove { name } => {
            let removed = clients::remove(pool, &name).await?;
            println!(
                "client `{name}` removed, with {} verifications ({} messages never sent), {} test numbers \
                 and {} undelivered webhook events; its key no longer works",
                removed.verifications,
                removed.queued_messages,
                removed.test_numbers,
                removed.pending_webhook_events
            );
        }
        ClientsCommand::TestNumbers { action } => {
            run_test_numbers(pool, action, policy.allow_weak_codes).await?
        }
    }
    Ok(())
}

async fn print_list(pool: &PgPool) -> anyhow::Result<()> {
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
    Ok(())
}

async fn set(
    pool: &PgPool,
    policy: &PolicySettings,
    webhook_settings: &WebhookSettings,
    args: Box<SetArgs>,
) -> anyhow::Result<()> {
    let name = args.name.clone();
    let url = args.webhook_url.clone();
    let clear = args.unset.contains(&Field::WebhookUrl);
    // A pepper the service does not hold is refused before anything changes.
    let admin = match &url {
        Some(_) => Some(webhooks::admin(pool, webhook_settings, args.pepper.clone()).await?),
        None => None,
    };
    let record = clients::change(pool, &name, args.change(), policy.allow_weak_codes).await?;
    webhooks::set(pool, &name, url.as_deref(), clear, admin).await?;
    eprintln!("client `{name}` changed; running services use it from their next request");
    print_settings(&record, policy);
    webhooks::print_endpoint(pool, &name).await
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
            let peppers =
                service_pepper(pool, pepper.pepper, "the code is hashed with it, as every code").await?;
            let hasher =
                CodeHasher::new(peppers, &pepper.hashing, &Metrics::new()).map_err(anyhow::Error::msg)?;
            let number =
                test_numbers::add(pool, &hasher, &name, &phone(&raw)?, &code, until, allow_weak).await?;
            println!(
                "test number {} of `{name}` until {}",
                number.phone,
                ends_at(number.until)
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

/// When a test number ends; a date given as `--until` ends at the next
/// midnight, which is said as the end of that day.
fn ends_at(until: DateTime<Utc>) -> String {
    let exact = until.format("%Y-%m-%d %H:%M:%S UTC");
    match until.time() == chrono::NaiveTime::MIN {
        true => format!(
            "{exact} (the end of {})",
            (until - chrono::Duration::days(1)).format("%Y-%m-%d")
        ),
        false => exact.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_given_as_until_is_said_as_the_end_of_that_day() {
        let midnight = "2027-03-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            ends_at(midnight),
            "2027-03-02 00:00:00 UTC (the end of 2027-03-01)"
        );
        let afternoon = "2027-03-02T15:30:00Z".parse().unwrap();
        assert_eq!(ends_at(afternoon), "2027-03-02 15:30:00 UTC");
    }
}
