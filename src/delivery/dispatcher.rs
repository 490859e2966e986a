//! Sends queued messages: the first attempt inline (from `POST /otp/request`),
//! every later one from the background loop. Failed sends are never dropped:
//! they are rescheduled by the gateway's answer class until the code expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use secrecy::SecretString;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::gateway::{SEND_TIMEOUT, WaconectaClient};
use super::recent::Recent;
use super::senders::{SenderStatus, Senders, next_free_slot};
use crate::crypto::Sealer;
use crate::domain::{MessageId, OtpCode, VerificationId};
use crate::metrics::Metrics;
use crate::store::outbox::{self, Claimed};
use crate::tasks::Tasks;

mod admission;
mod attempt;
mod held;

use attempt::Taken;
use held::HeldClaims;

const POLL_INTERVAL: Duration = Duration::from_millis(250);
const BATCH: u32 = 32;

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
    /// The claims this process holds and has not settled yet: what a stop
    /// records or gives back.
    held: Mutex<HeldClaims>,
    /// True once a stop gives leases back. Claims are made under its read
    /// lock, so the giving back (under the write lock) never misses a claim
    /// that was on its way to the database.
    stopping: tokio::sync::RwLock<bool>,
    metrics: Metrics,
    /// Every client's waiting messages as last read, for the look before the hash.
    queues: Recent<Vec<outbox::Waiting>>,
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
                queues: Recent::new(),
            }),
        }
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

    /// A verification's code, sealed for its resends (`Sealer::seal_code`).
    pub fn seal_code(&self, code: &OtpCode, verification: VerificationId, code_hash: &str) -> Vec<u8> {
        self.inner.sealer.seal_code(code, verification, code_hash)
    }

    /// The code `seal_code` sealed, if a pepper of the service still opens it
    /// for this verification and hash.
    pub fn open_code(&self, sealed: &[u8], verification: VerificationId, code_hash: &str) -> Option<OtpCode> {
        self.inner.sealer.open_code(sealed, verification, code_hash)
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
                match this.claim_first(message_id).await {
                    Ok(Some((message, taken))) => this.attempt(message, taken).await,
                    // Others are due before it: it takes its turn in the fair order.
                    Ok(None) => match outbox::make_due(&this.inner.pool, message_id).await {
                        Ok(()) => this.wake(),
                        Err(e) => tracing::warn!(error = %e, "could not queue a new message at once; it waits its first attempt's time"),
                    },
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

    /// Claims with `claim` and holds what it got, unless a stop is giving
    /// leases back (then it claims nothing: other replicas will).
    async fn claiming<T, F, Fut>(&self, claim: F) -> Result<Vec<T>, sqlx::Error>
    where
        T: AsRef<Claimed>,
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = Result<Vec<T>, sqlx::Error>>,
    {
        let stopping = self.inner.stopping.read().await;
        if *stopping {
            return Ok(Vec::new());
        }
        let claimed = claim(self.inner.pool.clone()).await?;
        claimed.iter().for_each(|m| self.hold(m.as_ref()));
        Ok(claimed)
    }

    /// Claims a request's message for its first attempt, with a slot of the
    /// key in turn in the same statement when that key has one (else the
    /// attempt takes its slot itself); holds what it got, as `claiming` does.
    async fn claim_first(&self, id: MessageId) -> Result<Option<(Claimed, Option<Taken<'_>>)>, sqlx::Error> {
        let senders = &self.inner.senders;
        let sender = senders.in_turn();
        let limit = senders.key_limit();
        let claimed = self
            .claiming(|pool| async move {
                let key = sender.map(|s| &s.id);
                let claimed = outbox::claim_with_slot(&pool, id, key, limit, SEND_TIMEOUT).await?;
                Ok(Vec::from_iter(claimed))
            })
            .await?;
        Ok(claimed.into_iter().next().map(|c| {
            let taken = sender.zip(c.slot).map(|(sender, slot)| {
                senders.spent(sender, 1);
                Taken {
                    sender,
                    slot,
                    renewed: Some(c.renewed_at),
                }
            });
            (c.message, taken)
        }))
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
            .claiming(|pool| async move { outbox::claim_due(&pool, i64::from(free), SEND_TIMEOUT).await })
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
                let taken = |(sender, slot)| Taken {
                    sender,
                    slot,
                    renewed: None,
                };
                join_all(batch.into_iter().map(|m| self.attempt(m, slots.pop().map(taken)))).await;
                Duration::ZERO
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due messages");
                POLL_INTERVAL
            }
        }
    }

    async fn round_start(&self) -> Result<Vec<SenderStatus>, sqlx::Error> {
        let given_up = outbox::expire_overdue(&self.inner.pool, SEND_TIMEOUT).await?;
        for (reason, client) in &given_up {
            self.inner.metrics.message(client, "given_up", reason.as_str());
        }
        if !given_up.is_empty() {
            tracing::warn!(
                messages = given_up.len(),
                "messages given up: they could not arrive before their code expired, or no longer had a pending verification"
            );
        }
        self.inner.senders.statuses().await
    }
}
