//! The parts `build` puts together, each made from its settings.

use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use sqlx::PgPool;

use crate::config::Settings;
use crate::crypto::{Peppers, Sealer};
use crate::delivery::gateway::WaconectaClient;
use crate::delivery::{Delivery, Sender, Senders};
use crate::fraud::FraudMode;
use crate::fraud::detect::Detector;
use crate::metrics::Metrics;
use crate::otp::{LimitSettings, Policy};
use crate::tasks::Tasks;
use crate::webhooks::WebhookAdmin;

/// The peppers, once the secrets and the code length pass their checks.
pub(super) fn peppers(settings: &Settings) -> anyhow::Result<Peppers> {
    settings.check_secrets().map_err(anyhow::Error::msg)?;
    if let Some(warning) = settings.check_code_strength().map_err(anyhow::Error::msg)? {
        tracing::warn!("{warning}");
    }
    let pepper: SecretString = settings.pepper.clone().context("OTP_PEPPER is required")?;
    let previous = settings.previous_peppers.clone().map(|l| l.0).unwrap_or_default();
    Ok(Peppers::new(pepper, previous))
}

/// The webhook endpoints' admin, with the URL policy recorded for `clients
/// set --webhook-url`, which accepts what the service accepts.
pub(super) async fn webhook_admin(
    settings: &Settings,
    pool: &PgPool,
    sealer: &Sealer,
) -> anyhow::Result<WebhookAdmin> {
    let policy = crate::webhooks::url_policy(&settings.webhooks);
    let admin = WebhookAdmin::new(pool.clone(), sealer.clone(), policy);
    crate::webhooks::admin::record_policy(pool, policy)
        .await
        .context("could not record the webhook URL settings")?;
    Ok(admin)
}

pub(super) async fn delivery(
    settings: &Settings,
    pool: &PgPool,
    sealer: &Sealer,
    tasks: &Tasks,
    metrics: &Metrics,
) -> anyhow::Result<Delivery> {
    let senders = senders(settings, pool).await?;
    let gateway = WaconectaClient::new(&settings.gateway.base_url)?;
    Ok(Delivery::new(
        pool.clone(),
        gateway,
        senders,
        sealer.clone(),
        tasks.clone(),
        metrics.clone(),
    ))
}

/// The gateway keys, named `sender-N` in configuration order, each with its
/// container token (for the QR page), registered in the database.
async fn senders(settings: &Settings, pool: &PgPool) -> anyhow::Result<Senders> {
    let keys = settings
        .gateway
        .api_keys
        .clone()
        .context("WACONECTA_API_KEYS is required")?;
    let mut tokens = settings
        .gateway
        .container_tokens
        .clone()
        .map(|t| t.0)
        .unwrap_or_default()
        .into_iter();
    let senders = keys
        .0
        .into_iter()
        .enumerate()
        .map(|(i, key)| Sender::new(format!("sender-{}", i + 1), key, tokens.next()))
        .collect();
    let senders = Senders::new(
        pool.clone(),
        senders,
        settings.gateway.rate_per_minute,
        settings.gateway.burst,
    );
    senders
        .register()
        .await
        .context("could not register the gateway keys")?;
    Ok(senders)
}

/// The fraud detector, unless `OTP_FRAUD_MODE=off`.
pub(super) fn detector(settings: &Settings, pool: &PgPool, metrics: &Metrics) -> Option<Detector> {
    (settings.fraud.mode != FraudMode::Off).then(|| Detector {
        pool: pool.clone(),
        metrics: metrics.clone(),
        every: settings.fraud.every(),
    })
}

pub(super) fn limit_settings(settings: &Settings) -> LimitSettings {
    LimitSettings {
        phone_sends_per_hour: settings.policy.phone_sends_per_hour,
        phone_sends_per_hour_all_clients: settings.policy.phone_sends_per_hour_all_clients(),
        phone_failures_per_hour: settings.policy.phone_failures_per_hour,
        phone_failures_per_day: settings.policy.phone_failures_per_day,
        ip_requests_per_hour: settings.policy.ip_requests_per_hour,
        client_requests_per_minute: settings.policy.client_requests_per_minute,
    }
}

/// The rules as the settings give them; `dev` marks what `serve --dev` stores.
pub(super) fn policy(
    settings: &Settings,
    limits: LimitSettings,
    dev: bool,
    request_budget: Duration,
) -> Policy {
    Policy {
        defaults: crate::clients::defaults(&settings.policy),
        send_wait: settings.send_wait(),
        dev,
        limits,
        fraud_mode: settings.fraud.mode,
        request_budget,
    }
}
