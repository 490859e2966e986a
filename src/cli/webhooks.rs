//! `clients set NAME --webhook-url URL`, `clients rotate-webhook-secret NAME`,
//! and the webhook lines of `clients show`. A secret is printed once, when it
//! is made; sealing it takes the service's OTP_PEPPER.

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::config::WebhookSettings;
use crate::crypto::Sealer;
use crate::webhooks::WebhookAdmin;
use crate::webhooks::admin::CliPolicy;

/// The webhooks' admin with the service's own pepper (or a refusal, before
/// anything is changed). URLs are checked as the service checks them (its
/// settings, recorded at its start), not only by this command's own
/// OTP_WEBHOOK_ALLOW_*.
pub(super) async fn admin(
    pool: &PgPool,
    settings: &WebhookSettings,
    pepper: Option<SecretString>,
) -> anyhow::Result<(WebhookAdmin, CliPolicy)> {
    let peppers =
        super::peppers::service_pepper(pool, pepper, "the webhook's signing secret is sealed with it")
            .await?;
    let sealer = Sealer::new(&peppers);
    let own = crate::webhooks::url_policy(settings);
    let policy = crate::webhooks::admin::policy_for_cli(pool, own).await?;
    Ok((WebhookAdmin::new(pool.clone(), sealer, policy.accepted()), policy))
}

/// Sets or clears the webhook URL, printing a new secret when one is made;
/// `admin` (from `admin`) is there when a URL is.
pub async fn set(
    pool: &PgPool,
    name: &str,
    url: Option<&str>,
    clear: bool,
    admin: Option<(WebhookAdmin, CliPolicy)>,
) -> anyhow::Result<()> {
    if clear {
        // Clearing seals nothing: no pepper needed.
        crate::webhooks::admin::clear(pool, name).await?;
        eprintln!("client `{name}` has no webhook any more");
    }
    let (Some(url), Some((admin, policy))) = (url, admin) else {
        return Ok(());
    };
    let answer = admin.set_url(name, url).await?;
    if let Some(warning) = policy.service_refuses(url).await {
        eprintln!("warning: {warning}");
    }
    match answer {
        Some(secret) => {
            eprintln!(
                "client `{name}` webhooks go to {url}. Its signing secret is shown this once; store it now:"
            );
            println!("{}", secret.expose_secret());
        }
        None => eprintln!("client `{name}` webhooks go to {url} (signed with its current secret)"),
    }
    Ok(())
}

pub async fn rotate(
    pool: &PgPool,
    settings: &WebhookSettings,
    name: &str,
    pepper: Option<SecretString>,
) -> anyhow::Result<()> {
    let secret = admin(pool, settings, pepper).await?.0.rotate_secret(name).await?;
    eprintln!(
        "client `{name}` has a new webhook signing secret; the old one also signs for 24 hours. Shown this once:"
    );
    println!("{}", secret.expose_secret());
    Ok(())
}

/// The `webhook` line of `clients show`.
pub async fn print_endpoint(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    let line = match crate::webhooks::admin::endpoint(pool, name).await? {
        None => "none".to_owned(),
        Some(e) => {
            let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            let mut line = e.url.clone();
            if let Some(at) = e.disabled_at {
                line += &format!("  DISABLED since {} (set the URL again to enable it)", time(at));
            } else if let Some(since) = e.failing_since {
                line += &format!("  failing since {}", time(since));
            }
            if let Some(until) = e.previous_secret_until {
                line += &format!("  (previous secret signs until {})", time(until));
            }
            line
        }
    };
    println!("  {:<24} {line}", "webhook");
    Ok(())
}
