//! Sends queued messages: the first attempt inline (from `POST /otp/request`),
//! every later one from the background loop. Failed sends are never dropped:
//! they are rescheduled by the gateway's answer class until the code expires.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use rand::RngExt;
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::gateway::{SendOutcome, WaconectaClient};
use super::outbox::{self, Claimed};

const POLL_INTERVAL: Duration = Duration::from_millis(250);
const BATCH: i64 = 16;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a key rests after a 429 without `Retry-After`.
const RATE_LIMIT_REST: Duration = Duration::from_secs(10);

/// The state of one gateway key, as the admin page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderState {
    Ok,
    BackingOff,
    SessionEnded,
    Unauthorized,
}

/// One gateway key (one linked WhatsApp session). Known by its name; the key
/// itself is never shown.
pub struct Sender {
    pub name: String,
    key: SecretString,
    health: Mutex<Health>,
}

#[derive(Debug, Clone, Copy)]
enum Health {
    Ok,
    RestingUntil(Instant),
    SessionEnded,
    Unauthorized,
}

impl Sender {
    pub fn new(name: impl Into<String>, key: SecretString) -> Self {
        Self {
            name: name.into(),
            key,
            health: Mutex::new(Health::Ok),
        }
    }

    pub fn state(&self) -> SenderState {
        match *self.health.lock().expect("sender health lock") {
            Health::Ok => SenderState::Ok,
            Health::RestingUntil(t) if t > Instant::now() => SenderState::BackingOff,
            Health::RestingUntil(_) => SenderState::Ok,
            Health::SessionEnded => SenderState::SessionEnded,
            Health::Unauthorized => SenderState::Unauthorized,
        }
    }

    fn set(&self, health: Health) {
        *self.health.lock().expect("sender health lock") = health;
    }

    fn in_service(&self) -> bool {
        matches!(self.state(), SenderState::Ok | SenderState::BackingOff)
    }
}

#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    gateway: WaconectaClient,
    senders: Vec<Sender>,
    next_sender: AtomicUsize,
    wake: Notify,
}

impl Delivery {
    pub fn new(pool: PgPool, gateway: WaconectaClient, senders: Vec<Sender>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                gateway,
                senders,
                next_sender: AtomicUsize::new(0),
                wake: Notify::new(),
            }),
        }
    }

    pub fn senders(&self) -> &[Sender] {
        &self.inner.senders
    }

    /// Tries to send a just-queued message, waiting at most `wait`. A send still
    /// in flight then goes on in the background: cutting it short could leave
    /// the message sent but recorded as unsent, and sent again later.
    pub async fn first_attempt(&self, message_id: Uuid, wait: Duration) {
        let this = self.clone();
        let attempt = tokio::spawn(async move {
            match outbox::claim(&this.inner.pool, message_id).await {
                Ok(Some(message)) => this.attempt(message).await,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not claim a new message; the dispatcher will"),
            }
        });
        if tokio::time::timeout(wait, attempt).await.is_err() {
            tracing::info!(message = %message_id, "gateway slow; the send goes on in the background");
        }
    }

    /// Drains the outbox until `shutdown`; the batch in flight finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(senders = self.inner.senders.len(), "dispatcher started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let worked = self.tick().await;
            if worked {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        tracing::info!("dispatcher stopped");
    }

    /// One round: expire what can no longer be useful, send what is due.
    /// Returns whether anything was sent, so a backlog drains without pauses.
    async fn tick(&self) -> bool {
        let pool = &self.inner.pool;
        match outbox::expire_overdue(pool).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(messages = n, "messages expired before they could be sent"),
            Err(e) => {
                tracing::warn!(error = %e, "outbox unavailable");
                return false;
            }
        }
        if !self.inner.senders.iter().any(|s| s.state() == SenderState::Ok) {
            return false;
        }
        match outbox::claim_due(pool, BATCH).await {
            Ok(batch) if batch.is_empty() => false,
            Ok(batch) => {
                join_all(batch.into_iter().map(|m| self.attempt(m))).await;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due messages");
                false
            }
        }
    }

    /// The next key that can send now, round robin.
    fn pick_sender(&self) -> Option<&Sender> {
        let senders = &self.inner.senders;
        let start = self.inner.next_sender.fetch_add(1, Ordering::Relaxed);
        (0..senders.len())
            .map(|i| &senders[(start + i) % senders.len()])
            .find(|s| s.state() == SenderState::Ok)
    }

    #[tracing::instrument(skip_all, fields(message = %message.id, verification = %message.verification_id, attempt = message.attempts))]
    async fn attempt(&self, message: Claimed) {
        if let Err(e) = self.try_attempt(&message).await {
            // The lease runs out and the message is claimed again: nothing is lost.
            tracing::warn!(error = %e, "could not record a delivery attempt");
        }
    }

    async fn try_attempt(&self, message: &Claimed) -> Result<(), sqlx::Error> {
        let pool = &self.inner.pool;
        let Some(sender) = self.pick_sender() else {
            let resting = self.inner.senders.iter().any(Sender::in_service);
            if resting {
                outbox::release(pool, message.id).await?;
                return outbox::reschedule(
                    pool,
                    message.id,
                    RATE_LIMIT_REST / 2,
                    "every gateway key is resting",
                )
                .await;
            }
            let reason = match self.inner.senders.iter().map(Sender::state).next() {
                Some(SenderState::Unauthorized) => "unauthorized",
                _ => "session_ended",
            };
            tracing::error!(reason, "no gateway key can deliver; the message fails");
            return outbox::mark_failed(pool, message.id, reason, true).await;
        };

        let outcome = self
            .inner
            .gateway
            .send_message(&sender.key, &message.phone_digits, &message.body)
            .await;
        let sender_name = sender.name.as_str();
        match outcome {
            SendOutcome::Sent { provider_message_id } => {
                tracing::info!(sender = sender_name, "sent");
                outbox::mark_sent(pool, message.id, provider_message_id.as_deref()).await
            }
            SendOutcome::PhoneRejected => {
                tracing::warn!(sender = sender_name, "gateway rejected the phone number");
                outbox::mark_failed(pool, message.id, "phone_rejected", true).await
            }
            SendOutcome::SessionEnded | SendOutcome::Unauthorized => {
                let (health, reason) = if outcome == SendOutcome::SessionEnded {
                    (Health::SessionEnded, "session_ended")
                } else {
                    (Health::Unauthorized, "unauthorized")
                };
                sender.set(health);
                tracing::error!(
                    sender = sender_name,
                    reason,
                    "gateway key taken out of service; it needs an operator"
                );
                // Straight back to the queue, for the other keys.
                outbox::reschedule(pool, message.id, Duration::ZERO, reason).await?;
                self.inner.wake.notify_one();
                Ok(())
            }
            SendOutcome::RateLimited { retry_after } => {
                let rest = retry_after.unwrap_or(RATE_LIMIT_REST);
                sender.set(Health::RestingUntil(Instant::now() + rest));
                tracing::warn!(
                    sender = sender_name,
                    rest_ms = rest.as_millis() as u64,
                    "gateway rate limit"
                );
                outbox::reschedule(pool, message.id, rest, "gateway answered 429").await
            }
            SendOutcome::Unavailable { reason, retry_after } => {
                let delay = retry_after.unwrap_or_default().max(backoff(message.attempts));
                tracing::warn!(
                    sender = sender_name,
                    reason,
                    retry_in_ms = delay.as_millis() as u64,
                    "gateway unavailable"
                );
                outbox::reschedule(pool, message.id, delay, &reason).await
            }
        }
    }
}

/// Exponential backoff from one second, capped, with "equal jitter": at least
/// half the step, so retries spread out but still grow.
pub fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(1, 16) as u32 - 1;
    let step = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    let half = step / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempts in 1..40 {
            let d = backoff(attempts);
            let step = Duration::from_secs(1u64 << (attempts.clamp(1, 16) - 1)).min(MAX_BACKOFF);
            assert!(d >= step / 2 && d <= step, "{attempts}: {d:?}");
        }
    }
}
