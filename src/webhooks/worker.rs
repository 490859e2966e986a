//! The webhook worker: claims due events (in order per verification, a few
//! per endpoint at a time), signs and posts each, and settles it. A receiver
//! that hangs holds only its own client's few slots, for at most `TIMEOUT`.

use std::collections::HashMap;
use std::time::Duration;

use rand::RngExt;
use secrecy::SecretBox;
use tokio_util::sync::CancellationToken;

use super::events::{EventType, WebhookEvent};
use super::schedule::{self, NextStep};
use super::{Delivery, Webhooks, open_keys, resolver};
use crate::domain::ClientId;
use crate::error::Error;
use crate::store::webhook_events::{self as events, Claimed};

/// Deliveries in flight per endpoint, per replica.
const PER_ENDPOINT: usize = 4;
/// Deliveries in flight per replica, all endpoints together.
const IN_FLIGHT: usize = 64;
/// A receiver's time to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than a delivery can take: a lease that runs out is a replica that died.
const LEASE: Duration = Duration::from_secs(30);
/// How often due retries are looked for (new events are heard of at once).
const POLL: Duration = Duration::from_millis(250);

impl Webhooks {
    /// Delivers until `shutdown`; deliveries in flight then finish or run out
    /// their lease, and another replica sends them again.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.claim_and_send().await {
                tracing::warn!(error = %e, "could not claim webhook events");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn claim_and_send(&self) -> Result<(), sqlx::Error> {
        let (busy, free) = {
            let in_flight = self.in_flight();
            let busy: Vec<ClientId> = in_flight
                .iter()
                .filter(|(_, n)| **n >= PER_ENDPOINT)
                .map(|(c, _)| *c)
                .collect();
            (busy, IN_FLIGHT.saturating_sub(in_flight.values().sum()))
        };
        if free == 0 {
            return Ok(());
        }
        let claimed = events::claim(&self.inner.pool, free as i64, &busy, PER_ENDPOINT as i64, LEASE).await?;
        for event in claimed {
            *self.in_flight().entry(event.client_id).or_default() += 1;
            let this = self.clone();
            tokio::spawn(async move {
                let client = event.client_id;
                this.deliver(event).await;
                let mut in_flight = this.in_flight();
                if let Some(n) = in_flight.get_mut(&client) {
                    *n -= 1;
                    if *n == 0 {
                        in_flight.remove(&client);
                    }
                }
                drop(in_flight);
                this.inner.wake.notify_one();
            });
        }
        Ok(())
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, usize>> {
        self.inner.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn deliver(&self, event: Claimed) {
        let outcome = match self.attempt(&event).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(error = %e, event = %event.id, "webhook delivery could not be recorded");
                return;
            }
        };
        if let Err(e) = self.settle(&event, outcome).await {
            tracing::warn!(error = %e, event = %event.id, "webhook delivery could not be recorded; its lease will run out");
        }
    }

    /// One attempt: the body (made once), its signature, the POST.
    async fn attempt(&self, event: &Claimed) -> Result<Delivery, Error> {
        let body = match &event.payload {
            Some(body) => body.clone(),
            None => match self.payload(event).await? {
                Some(body) => {
                    events::set_payload(&self.inner.pool, event.id, &body).await?;
                    body
                }
                None => return Ok(Delivery::Impossible("the verification no longer exists".into())),
            },
        };
        let Some(keys) = open_keys(&self.inner.sealer, event) else {
            return Ok(Delivery::Failed {
                status: None,
                error: "the signing secret cannot be opened (sealed under a pepper no longer configured); rotate it".into(),
                retry_after: None,
            });
        };
        if let Err(refusal) = self.inner.policy.check_literal(&event.url) {
            return Ok(Delivery::Failed {
                status: None,
                error: refusal.to_string(),
                retry_after: None,
            });
        }
        Ok(self.post(event, &keys, body).await)
    }

    async fn payload(&self, event: &Claimed) -> Result<Option<String>, Error> {
        let Some(kind) = EventType::parse(&event.kind) else {
            return Ok(None);
        };
        let Some(client) = crate::clients::by_id(&self.inner.pool, event.client_id).await? else {
            return Ok(None);
        };
        let data = match self.inner.otp.find(&client, event.verification_id).await {
            Ok(data) => data,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = WebhookEvent {
            kind,
            timestamp: event.occurred_at,
            send: event.send_number.and_then(|n| u32::try_from(n).ok()),
            data,
        };
        Ok(Some(
            serde_json::to_string(&body).map_err(|e| Error::Internal(e.into()))?,
        ))
    }

    async fn post(&self, event: &Claimed, keys: &[SecretBox<Vec<u8>>], body: String) -> Delivery {
        let id = format!("msg_{}", event.id.0.simple());
        let timestamp = chrono::Utc::now().timestamp();
        let signature = super::signing::signature_header(keys, &id, timestamp, &body);
        let sent = self
            .inner
            .http
            .post(&event.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Delivery::Delivered(answer.status().as_u16()),
            Ok(answer) => Delivery::Failed {
                status: Some(answer.status().as_u16()),
                error: format!("the endpoint answered {}", answer.status().as_u16()),
                retry_after: answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(schedule::parse_retry_after),
            },
            Err(e) => Delivery::Failed {
                status: None,
                error: resolver::describe(&e),
                retry_after: None,
            },
        }
    }

    async fn settle(&self, event: &Claimed, outcome: Delivery) -> Result<(), sqlx::Error> {
        let pool = &self.inner.pool;
        let client = &event.client_name;
        let (status, error, retry_after, impossible) = match outcome {
            Delivery::Delivered(status) => {
                events::delivered(pool, event.id, status).await?;
                self.inner.metrics.webhook(client, "delivered");
                return Ok(());
            }
            Delivery::Failed {
                status,
                error,
                retry_after,
            } => (status, error, retry_after, false),
            Delivery::Impossible(error) => (None, error, None, true),
        };
        let attempts = u32::try_from(event.attempts).unwrap_or(u32::MAX);
        let jitter: f64 = rand::rng().random();
        let next = match schedule::after_failure(attempts, &self.inner.schedule, retry_after, jitter) {
            NextStep::RetryIn(wait) if !impossible => Some(wait),
            _ => None,
        };
        tracing::info!(event = %event.id, client = %client, attempts, error = %error, "webhook delivery failed");
        let failing_since = events::failed(pool, event.id, status, &error, next).await?;
        self.inner
            .metrics
            .webhook(client, if next.is_some() { "failed" } else { "given_up" });
        let failing_for = failing_since
            .map(|since| (chrono::Utc::now() - since).to_std().unwrap_or_default())
            .unwrap_or_default();
        if schedule::disable(failing_for) {
            events::disable(pool, event.client_id).await?;
            self.inner.metrics.webhook(client, "disabled");
            tracing::warn!(client = %client, "webhook endpoint disabled: every delivery failed for a day");
        }
        Ok(())
    }
}
