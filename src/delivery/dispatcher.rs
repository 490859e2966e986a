//! Sends queued messages: the first attempt inline (from `POST /otp/request`),
//! every later one from the background loop. Failed sends are never dropped:
//! they are rescheduled by the gateway's answer class until the code expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use rand::RngExt;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gateway::{SEND_TIMEOUT, SendOutcome, WaconectaClient};
use super::sealing::Sealer;
use super::senders::{Sender, SenderStatus, Senders, Slot, next_free_slot};
use crate::domain::{FailureReason, KeyState, MessageId};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::store::outbox::{self, Claimed};
use crate::tasks::Tasks;

const POLL_INTERVAL: Duration = Duration::from_millis(250);
const BATCH: u32 = 32;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a key rests after a 429 that did not say how long.
const RATE_LIMIT_REST: Duration = Duration::from_secs(10);
/// Share of a code's lifetime its message may spend in the queue before
/// admission control turns new requests away.
const QUEUE_SHARE_OF_TTL: f64 = 0.9;

#[derive(Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    gateway: WaconectaClient,
    senders: Senders,
    sealer: Sealer,
    wake: Notify,
    /// First attempts made for requests, which a stop must wait for.
    first_attempts: TaskTracker,
    /// A send outlives its request: it runs here, not on the HTTP worker's runtime.
    tasks: Tasks,
    /// The claims (message id, claim token) this process holds and has not
    /// settled yet: what a stop gives back.
    held: Mutex<HashMap<MessageId, i32>>,
    /// True once a stop gives leases back. Claims are made under its read
    /// lock, so the giving back (under the write lock) never misses a claim
    /// that was on its way to the database.
    stopping: tokio::sync::RwLock<bool>,
    metrics: Metrics,
}

impl Delivery {
    pub fn new(
        pool: PgPool,
        gateway: WaconectaClient,
        senders: Senders,
        sealer: Sealer,
        tasks: Tasks,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                gateway,
                senders,
                sealer,
                wake: Notify::new(),
                first_attempts: TaskTracker::new(),
                tasks,
                held: Mutex::new(HashMap::new()),
                stopping: tokio::sync::RwLock::new(false),
                metrics,
            }),
        }
    }

    /// `Tasks::spawn`, for the callers not yet switched to `Tasks`.
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.tasks.spawn(work)
    }

    pub fn senders(&self) -> &Senders {
        &self.inner.senders
    }

    pub fn gateway(&self) -> &WaconectaClient {
        &self.inner.gateway
    }

    pub fn seal(&self, text: &SecretString, phone_digits: &str) -> Vec<u8> {
        self.inner.sealer.seal(text, phone_digits)
    }

    /// Refuses a new code that could not be delivered before it expires: no key
    /// in service, or more queued ahead of it than the keys can send in time.
    pub async fn admit(&self, ttl: Duration) -> Result<(), Error> {
        let senders = &self.inner.senders;
        let statuses = senders.statuses().await?;
        let in_service = statuses.iter().filter(|s| s.in_service()).count() as f64;
        if in_service == 0.0 {
            return Err(Error::DeliveryUnavailable {
                detail: "no WhatsApp session can deliver codes now; nothing was stored or sent".into(),
                retry_after: 60,
            });
        }
        let ahead = self.queue_depth().await? as f64;
        let per_second = in_service * f64::from(senders.rate_per_minute()) / 60.0;
        // Never counting the last SEND_TIMEOUT, when a message is no longer handed over.
        let budget =
            (ttl.as_secs_f64() * QUEUE_SHARE_OF_TTL).min(ttl.saturating_sub(SEND_TIMEOUT).as_secs_f64());
        let in_time = f64::from(senders.free_slots(&statuses)) + per_second * budget;
        if ahead + 1.0 > in_time {
            let retry_after = ((ahead + 1.0 - in_time) / per_second).ceil().max(1.0) as u64;
            return Err(Error::DeliveryUnavailable {
                detail: format!(
                    "{ahead} messages are queued ahead; a new code would expire before it could be sent"
                ),
                retry_after,
            });
        }
        Ok(())
    }

    /// Messages waiting to be sent (due or not).
    pub async fn queue_depth(&self) -> Result<i64, sqlx::Error> {
        outbox::depth(&self.inner.pool).await
    }

    /// Tries to send a just-queued message, waiting at most `wait`. A send still
    /// in flight then goes on in the background: cutting it short could leave
    /// the message sent but recorded as unsent, and sent again later.
    pub async fn first_attempt(&self, message_id: MessageId, wait: Duration) {
        let this = self.clone();
        let attempt = self
            .inner
            .tasks
            .spawn_tracked(&self.inner.first_attempts, async move {
                let claimed = this
                    .claiming(
                        |pool| async move { outbox::claim(&pool, message_id).await.map(Vec::from_iter) },
                    )
                    .await;
                match claimed.map(|mut m| m.pop()) {
                    Ok(Some(message)) => this.attempt(message, None).await,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a new message; the dispatcher will")
                    }
                }
            });
        if tokio::time::timeout(wait, attempt).await.is_err() {
            tracing::info!(message = %message_id, "gateway slow; the send goes on in the background");
        }
    }

    /// Makes the dispatcher look at the queue now (a key came back, say).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Waits for the first attempts still in flight (a stop must not cut a send short).
    pub async fn finish_first_attempts(&self) {
        self.inner.first_attempts.close();
        self.inner.first_attempts.wait().await;
    }

    /// Gives back the leases of the messages this process claimed and has not
    /// settled (sends cut short by a stop), so another replica can take them at
    /// once instead of when the lease runs out. A send that was in flight may
    /// have reached the gateway: it may go out twice, as after a crash, but not
    /// `LEASE` late. Returns how many were given back.
    pub async fn release_leases(&self) -> Result<u64, sqlx::Error> {
        *self.inner.stopping.write().await = true;
        let held: Vec<(MessageId, i32)> = self.held().drain().collect();
        if held.is_empty() {
            return Ok(0);
        }
        outbox::release(&self.inner.pool, &held).await
    }

    /// Claims with `claim` and holds what it got, unless a stop is giving
    /// leases back (then it claims nothing: other replicas will).
    async fn claiming<F, Fut>(&self, claim: F) -> Result<Vec<Claimed>, sqlx::Error>
    where
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<Vec<Claimed>, sqlx::Error>>,
    {
        let stopping = self.inner.stopping.read().await;
        if *stopping {
            return Ok(Vec::new());
        }
        let claimed = claim(self.inner.pool.clone()).await?;
        claimed.iter().for_each(|m| self.hold(m));
        Ok(claimed)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, i32>> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn hold(&self, message: &Claimed) {
        self.held().insert(message.id, message.claim);
    }

    fn settle(&self, message: &Claimed) {
        let mut held = self.held();
        if held.get(&message.id) == Some(&message.claim) {
            held.remove(&message.id);
        }
    }

    /// Drains the outbox until `shutdown`; the batch in flight finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        if let Err(e) = self.inner.senders.register().await {
            tracing::warn!(error = %e, "could not register the gateway keys yet");
        }
        tracing::info!(senders = self.inner.senders.list().len(), "dispatcher started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let pause = self.tick().await;
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::info!("dispatcher stopped");
    }

    /// One round: expire what can no longer be useful, send as much as the keys
    /// may send now. Returns how long to pause before the next round.
    async fn tick(&self) -> Duration {
        let statuses = match self.round_start().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "outbox unavailable");
                return POLL_INTERVAL;
            }
        };
        // With no key in service, due messages are still claimed: to be failed, so
        // that their callers learn it now rather than at expiry.
        let free = if statuses.iter().any(SenderStatus::in_service) {
            self.inner.senders.free_slots(&statuses).min(BATCH)
        } else {
            BATCH
        };
        if free == 0 {
            return next_free_slot(&statuses)
                .unwrap_or(POLL_INTERVAL)
                .clamp(Duration::from_millis(10), POLL_INTERVAL);
        }
        let claimed = self
            .claiming(|pool| async move { outbox::claim_due(&pool, i64::from(free)).await })
            .await;
        match claimed {
            Ok(batch) if batch.is_empty() => POLL_INTERVAL,
            Ok(batch) => {
                // Slots for the whole batch at once; what gets none takes its own chance.
                let mut slots = match self.inner.senders.take_slots(batch.len()).await {
                    Ok(slots) => slots,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not take gateway slots");
                        Vec::new()
                    }
                };
                join_all(batch.into_iter().map(|m| self.attempt(m, slots.pop()))).await;
                Duration::ZERO
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due messages");
                POLL_INTERVAL
            }
        }
    }

    async fn round_start(&self) -> Result<Vec<SenderStatus>, sqlx::Error> {
        let given_up = outbox::expire_overdue(&self.inner.pool).await?;
        for reason in &given_up {
            self.inner.metrics.message("given_up", reason.as_str());
        }
        if !given_up.is_empty() {
            tracing::warn!(
                messages = given_up.len(),
                "messages given up: they could not arrive before their code expired, or no longer had a pending verification"
            );
        }
        self.inner.senders.statuses().await
    }

    #[tracing::instrument(skip_all, fields(message = %message.id, verification = %message.verification_id, attempt = message.attempts))]
    async fn attempt(&self, message: Claimed, slot: Option<(&Sender, i64)>) {
        if let Err(e) = self.try_attempt(&message, slot).await {
            // The lease runs out and the message is claimed again: nothing is lost.
            tracing::warn!(error = %e, "could not record a delivery attempt");
        }
        self.settle(&message);
    }

    /// Sends one claimed message, on `slot` if one was taken for it already.
    async fn try_attempt(&self, message: &Claimed, slot: Option<(&Sender, i64)>) -> Result<(), sqlx::Error> {
        let pool = &self.inner.pool;
        let senders = &self.inner.senders;
        let metrics = &self.inner.metrics;
        let Some(text) = self
            .inner
            .sealer
            .open(&message.body_sealed, &message.phone_digits)
        else {
            tracing::error!("the message cannot be opened (was OTP_PEPPER changed?); it fails");
            metrics.message("given_up", "unreadable");
            if let Some((_, slot)) = slot {
                senders.refund(slot).await?;
            }
            if outbox::mark_failed(
                pool,
                message,
                FailureReason::Unreadable,
                "the text cannot be opened",
            )
            .await?
            {
                metrics.verification("failed");
            }
            return Ok(());
        };
        let taken = match slot {
            Some((sender, slot)) => Slot::Granted(sender, slot),
            None => senders.take_slot().await?,
        };
        let (sender, slot) = match taken {
            Slot::Granted(sender, slot) => (sender, slot),
            Slot::Wait(wait) => {
                return outbox::requeue(pool, message, wait, "waiting for a free gateway slot", false).await;
            }
            Slot::NoneInService(reason) => {
                tracing::error!(
                    reason = reason.as_str(),
                    "no gateway key can deliver; the message fails"
                );
                metrics.message("given_up", "no_key_in_service");
                if outbox::mark_failed(pool, message, reason, "no gateway key in service").await? {
                    metrics.verification("failed");
                }
                return Ok(());
            }
        };

        let Some(send_started) = outbox::renew(pool, message).await? else {
            // Another sender holds it now, or it can no longer arrive in time.
            senders.refund(slot).await?;
            return Ok(());
        };
        let outcome = self
            .inner
            .gateway
            .send_message(&sender.key, &message.phone_digits, &text)
            .await;
        // The gateway counts a request when it arrives: count the slot from the
        // answer, not from when it was taken, so no window is ever short of it.
        // Failing that must not keep the outcome from being recorded: a send
        // left unrecorded goes out again once its lease runs out.
        if let Err(e) = senders.touch(slot).await {
            tracing::warn!(error = %e, "could not count the send's slot from its answer");
        }
        drop(text);
        let sender_name = sender.name.as_str();
        match outcome {
            SendOutcome::Sent { provider_message_id } => {
                tracing::info!(sender = sender_name, "sent");
                metrics.message("sent", "ok");
                // Failing to record a send would send it again when the lease runs out.
                let mut tries = 0;
                loop {
                    match outbox::mark_sent(pool, message.id, provider_message_id.as_deref()).await {
                        Err(e) if tries < 5 => {
                            tries += 1;
                            tracing::warn!(error = %e, "could not record a send yet; trying again");
                            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                        }
                        other => return other,
                    }
                }
            }
            SendOutcome::PhoneRejected => {
                tracing::warn!(sender = sender_name, "gateway rejected the phone number");
                metrics.message("given_up", "phone_rejected");
                if outbox::mark_failed(
                    pool,
                    message,
                    FailureReason::PhoneRejected,
                    "gateway answered 400: invalid phone number",
                )
                .await?
                {
                    metrics.verification("failed");
                }
                Ok(())
            }
            SendOutcome::SessionEnded | SendOutcome::Unauthorized => {
                let (state, reason) = if outcome == SendOutcome::SessionEnded {
                    (KeyState::SessionEnded, "session_ended")
                } else {
                    (KeyState::Unauthorized, "unauthorized")
                };
                senders.take_out(sender, send_started, state, reason).await?;
                metrics.message("retried", reason);
                tracing::error!(
                    sender = sender_name,
                    reason,
                    "gateway key taken out of service; it needs an operator"
                );
                // Straight back to the queue, for the other keys.
                outbox::requeue(pool, message, Duration::ZERO, reason, true).await?;
                self.inner.wake.notify_one();
                Ok(())
            }
            SendOutcome::RateLimited { retry_after } => {
                let rest = retry_after.unwrap_or(RATE_LIMIT_REST);
                senders.rest(sender, rest, "gateway answered 429").await?;
                metrics.message("retried", "rate_limited");
                tracing::warn!(
                    sender = sender_name,
                    rest_ms = rest.as_millis() as u64,
                    "gateway rate limit"
                );
                outbox::requeue(pool, message, rest, "gateway answered 429", true).await
            }
            SendOutcome::Refused {
                status,
                message: answer,
                retry_after,
            } => {
                // Not an answer the contract knows: neither a dead key nor a bad
                // number. The key rests as after a 503, and an operator is told.
                let delay = retry_after.unwrap_or_default().max(backoff(message.attempts));
                let reason = format!("gateway answered {status}: {answer}");
                senders.rest(sender, delay, &reason).await?;
                metrics.message("retried", "refused");
                tracing::error!(
                    sender = sender_name,
                    status,
                    answer = answer.as_str(),
                    retry_in_ms = delay.as_millis() as u64,
                    "gateway gave an answer the contract does not name; the key rests and the message is retried"
                );
                outbox::requeue(pool, message, delay, &reason, true).await
            }
            SendOutcome::Unavailable {
                reason,
                retry_after,
                maybe_sent,
            } => {
                let delay = retry_after.unwrap_or_default().max(backoff(message.attempts));
                if !maybe_sent {
                    senders.refund(slot).await?;
                }
                senders.note_error(sender, &reason).await?;
                metrics.message("retried", if maybe_sent { "timeout" } else { "unavailable" });
                tracing::warn!(
                    sender = sender_name,
                    reason,
                    retry_in_ms = delay.as_millis() as u64,
                    "gateway unavailable"
                );
                outbox::requeue(pool, message, delay, &reason, true).await
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
