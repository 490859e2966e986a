//! Admission: whether a new code of a client could reach its phone before it
//! expires, given the keys in service and every client's place in the fair
//! order. The look before the hash, then the exact check under the client's
//! lock in the transaction that queues the message.

use std::time::{Duration, Instant};

use sqlx::{Postgres, Transaction};

use super::Delivery;
use crate::delivery::fair::{self, Admission, ClientQueue};
use crate::delivery::gateway::SEND_TIMEOUT;
use crate::delivery::senders::SenderStatus;
use crate::domain::{ClientId, Effective};
use crate::error::Error;
use crate::store::outbox;

/// Share of a code's lifetime its message may spend in the queue before
/// admission control turns new requests away.
const QUEUE_SHARE_OF_TTL: f64 = 0.9;

impl Delivery {
    /// Refuses a new code of `client` that could not be delivered before it
    /// expires: no key in service, the client's queue is full, or more is
    /// ahead of it in the fair order than the keys can send in time. The
    /// order is every client's share of the gateway, so another client's
    /// flood does not count against this one.
    /// This is the cheap look made before the hash; `admit_in` decides.
    /// It looks at what this replica read less than `recent::FRESH` ago, so a
    /// flood of requests costs a read each per `FRESH`, not one each.
    pub async fn admit(&self, client: ClientId, rules: &Effective, ttl: Duration) -> Result<(), Error> {
        let statuses = self.inner.senders.recent_statuses(&self.inner.pool).await?;
        let queues = match self.inner.queues.get() {
            Some(queues) => queues,
            None => {
                let at = Instant::now();
                let queues = outbox::waiting_by_client(&self.inner.pool).await?;
                self.inner.queues.put(at, queues.clone());
                queues
            }
        };
        self.judge(client, rules, ttl, statuses, queues)
    }

    /// `admit`, in the transaction that queues the message and under the
    /// client's lock, so the client's own count is exact under concurrency.
    pub async fn admit_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        client: ClientId,
        rules: &Effective,
        ttl: Duration,
    ) -> Result<(), Error> {
        // Everything through the transaction: waiting for a second connection
        // while holding the lock could wait out the pool. The keys' states need
        // not be read under the lock, which does not hold them: as recent as
        // the look before the hash is enough.
        let statuses = self.inner.senders.recent_statuses(&mut **tx).await?;
        let at = Instant::now();
        let queues = outbox::lock_client_queue(tx, client).await?;
        self.inner.queues.put(at, queues.clone());
        self.judge(client, rules, ttl, statuses, queues)
    }

    fn judge(
        &self,
        client: ClientId,
        rules: &Effective,
        ttl: Duration,
        statuses: Vec<SenderStatus>,
        queues: Vec<outbox::Waiting>,
    ) -> Result<(), Error> {
        let senders = &self.inner.senders;
        let in_service = statuses.iter().filter(|s| s.in_service()).count() as f64;
        if in_service == 0.0 {
            return Err(Error::DeliveryUnavailable {
                detail: "no WhatsApp session can deliver codes now; nothing was stored or sent".into(),
                retry_after: 60,
            });
        }
        let queues: Vec<ClientQueue> = queues
            .into_iter()
            .map(|w| ClientQueue {
                client: w.client_id,
                share: w.share.max(1) as u32,
                waiting: w.waiting.max(0) as u64,
            })
            .collect();
        let per_second = in_service * f64::from(senders.rate_per_minute()) / 60.0;
        // Never counting the last SEND_TIMEOUT, when a message is no longer handed over.
        let budget =
            (ttl.as_secs_f64() * QUEUE_SHARE_OF_TTL).min(ttl.saturating_sub(SEND_TIMEOUT).as_secs_f64());
        let in_time = f64::from(senders.free_slots(&statuses)) + per_second * budget;
        match fair::admit(
            client,
            rules.share,
            rules.max_queued,
            &queues,
            in_time,
            per_second,
        ) {
            Admission::Admit => Ok(()),
            Admission::QueueFull { waiting, retry_after } => Err(Error::DeliveryUnavailable {
                detail: format!(
                    "this client has {waiting} messages waiting for the gateway, as many as it may; \
                     nothing was stored or sent"
                ),
                retry_after,
            }),
            // How far back it would stand is not said: it depends on other clients' queues.
            Admission::TooLate { retry_after, .. } => Err(Error::DeliveryUnavailable {
                detail:
                    "with this client's share of the gateway, a new code would expire before it could be \
                         sent; nothing was stored or sent"
                        .into(),
                retry_after,
            }),
        }
    }
}
