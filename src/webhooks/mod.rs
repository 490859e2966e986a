//! Telling clients what happened to their verifications: signed webhooks
//! (Standard Webhooks), delivered from the `webhook_events` outbox.

mod addresses;
pub mod admin;
mod client;
pub mod deliveries;
pub mod endpoint;
pub mod events;
pub mod reseal;
mod resolver;
pub mod schedule;
pub mod signing;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretBox;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::WebhookSettings;
use crate::crypto::Sealer;
use crate::domain::ClientId;
use crate::metrics::Metrics;
use crate::otp::OtpService;
use crate::store::webhook_events::Claimed;
pub use admin::{EndpointView, WebhookAdmin};
pub use client::Egress;
pub use endpoint::UrlPolicy;

/// Which URLs clients may set (`OTP_WEBHOOK_ALLOW_HTTP`, `OTP_WEBHOOK_ALLOW_PRIVATE`).
pub fn url_policy(settings: &WebhookSettings) -> UrlPolicy {
    UrlPolicy {
        allow_http: settings.allow_http,
        allow_private: settings.allow_private,
    }
}

/// Where webhooks may go, and through which proxy (`OTP_WEBHOOK_PROXY`).
pub fn egress(settings: &WebhookSettings) -> Egress {
    Egress {
        policy: url_policy(settings),
        proxy: settings.proxy.clone(),
    }
}

/// The retry schedule: `OTP_WEBHOOK_RETRY_SCHEDULE`, or Svix's.
pub fn retry_schedule(settings: &WebhookSettings) -> Vec<Duration> {
    settings
        .retry_schedule
        .as_ref()
        .map_or_else(|| schedule::DEFAULT_SCHEDULE.to_vec(), |s| s.0.clone())
}

pub use crate::store::webhook_events::CHANNEL;

/// The webhook worker of this replica.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    sealer: Sealer,
    otp: OtpService,
    http: reqwest::Client,
    policy: UrlPolicy,
    schedule: Vec<Duration>,
    metrics: Metrics,
    in_flight: Mutex<HashMap<ClientId, usize>>,
    /// Notified by the client cache's listening connection (see `CHANNEL`),
    /// and when a delivery ends.
    wake: Arc<Notify>,
}

/// How an attempt ended.
enum Delivery {
    Delivered(u16),
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Never deliverable (its verification is gone): given up at once.
    Impossible(String),
}

impl Webhooks {
    pub fn new(
        pool: PgPool,
        sealer: Sealer,
        otp: OtpService,
        egress: Egress,
        schedule: Vec<Duration>,
        metrics: Metrics,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let http = client::build(&egress)?;
        let policy = egress.policy;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                sealer,
                otp,
                http,
                policy,
                schedule,
                metrics,
                in_flight: Mutex::default(),
                wake,
            }),
        })
    }
}

/// What seals a client's secrets: bound to its name, so a secret copied to
/// another client's row does not open.
fn sealed_for(client: &str) -> String {
    format!("webhook:{client}")
}

/// The keys an event is signed with: the secret's, and the previous one's
/// while a rotation lasts. `None` when the current one cannot be opened.
fn open_keys(sealer: &Sealer, event: &Claimed) -> Option<Vec<SecretBox<Vec<u8>>>> {
    let bound = sealed_for(&event.client_name);
    let current = signing::signing_key(&sealer.open(&event.secret_sealed, &bound)?)?;
    let previous = event
        .previous_secret_sealed
        .as_ref()
        .and_then(|sealed| sealer.open(sealed, &bound))
        .and_then(|secret| signing::signing_key(&secret));
    Some(std::iter::once(current).chain(previous).collect())
}
