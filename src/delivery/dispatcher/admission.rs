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
        let keys = Keys {
            in_service: statuses.iter().filter(|s| s.in_service()).count(),
            rate_per_minute: senders.rate_per_minute(),
            free_slots: senders.free_slots(&statuses),
        };
        decide(client, rules.share, rules.max_queued, ttl, keys, queues)
    }
}

/// What the keys can send: how many are in service, at what rate each, and
/// how many sends they can make at once now.
#[derive(Debug, Clone, Copy)]
struct Keys {
    in_service: usize,
    rate_per_minute: u32,
    free_slots: u32,
}

/// The admission decision, apart from reading what it needs: a new code of
/// `client` (its `share`, its `max_queued`) living `ttl`, with `keys` and
/// every client's queue.
fn decide(
    client: ClientId,
    share: u32,
    max_queued: u32,
    ttl: Duration,
    keys: Keys,
    queues: Vec<outbox::Waiting>,
) -> Result<(), Error> {
    if keys.in_service == 0 {
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
    let per_second = keys.in_service as f64 * f64::from(keys.rate_per_minute) / 60.0;
    // Never counting the last SEND_TIMEOUT, when a message is no longer handed over.
    let budget = (ttl.as_secs_f64() * QUEUE_SHARE_OF_TTL).min(ttl.saturating_sub(SEND_TIMEOUT).as_secs_f64());
    let in_time = f64::from(keys.free_slots) + per_second * budget;
    match fair::admit(client, share, max_queued, &queues, in_time, per_second) {
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
            detail: "with this client's share of the gateway, a new code would expire before it could be \
                     sent; nothing was stored or sent"
                .into(),
            retry_after,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(client: ClientId, share: i32, waiting: i64) -> outbox::Waiting {
        outbox::Waiting {
            client_id: client,
            share,
            waiting,
        }
    }

    /// A case, its keys, the code's lifetime, the client's queue, another
    /// client's queue, its `max_queued`, and what it is refused with (its
    /// `retry_after` and words of its detail).
    type Case = (
        &'static str,
        Keys,
        Duration,
        i64,
        i64,
        u32,
        Option<(u64, &'static str)>,
    );

    /// `in_service` keys at 60 a minute each.
    fn keys(in_service: usize, free_slots: u32) -> Keys {
        Keys {
            in_service,
            rate_per_minute: 60,
            free_slots,
        }
    }

    fn cases() -> [Case; 8] {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        [
            (
                "no key in service",
                keys(0, 5),
                minutes(5),
                0,
                0,
                100,
                Some((60, "no WhatsApp session")),
            ),
            ("an empty queue", keys(1, 0), minutes(5), 0, 0, 100, None),
            (
                "its queue is full",
                keys(1, 0),
                minutes(5),
                100,
                0,
                100,
                Some((1, "has 100 messages")),
            ),
            // 301st in line; 270 s (90 % of 300) at one a second: 31 s short.
            (
                "too far back",
                keys(1, 0),
                minutes(5),
                300,
                0,
                1000,
                Some((31, "would expire")),
            ),
            (
                "twice the keys, twice as far",
                keys(2, 0),
                minutes(5),
                300,
                0,
                1000,
                None,
            ),
            (
                "another client's flood",
                keys(1, 0),
                minutes(5),
                0,
                100_000,
                100,
                None,
            ),
            // The last SEND_TIMEOUT of a code's life does not count: only a free slot now.
            (
                "a short code and no free slot",
                keys(1, 0),
                Duration::from_secs(10),
                0,
                0,
                100,
                Some((1, "would expire")),
            ),
            (
                "a short code and a free slot",
                keys(1, 1),
                Duration::from_secs(10),
                0,
                0,
                100,
                None,
            ),
        ]
    }

    #[test]
    fn a_code_is_admitted_only_if_it_can_be_sent_before_it_expires() {
        let (own, other) = (ClientId::new(), ClientId::new());
        for (case, keys, ttl, own_waiting, other_waiting, max_queued, refused) in cases() {
            let queues = vec![waiting(own, 1, own_waiting), waiting(other, 1, other_waiting)];
            let decided = decide(own, 1, max_queued, ttl, keys, queues);
            match (decided, refused) {
                (Ok(()), None) => {}
                (Err(Error::DeliveryUnavailable { detail, retry_after }), Some((after, words))) => {
                    assert_eq!(retry_after, after, "{case}");
                    assert!(detail.contains(words), "{case}: {detail}");
                }
                (decided, _) => panic!("{case}: {decided:?}"),
            }
        }
    }

    #[test]
    fn a_larger_share_stands_further_forward() {
        let (own, other) = (ClientId::new(), ClientId::new());
        let queues = || vec![waiting(own, 3, 180), waiting(other, 1, 100_000)];
        let ttl = Duration::from_secs(300);
        // 270 s at one a second: with share 3 it stands at 181 + 181 / 3, with
        // share 1 at 181 + 181.
        assert!(decide(own, 3, 1000, ttl, keys(1, 0), queues()).is_ok());
        assert!(decide(own, 1, 1000, ttl, keys(1, 0), queues()).is_err());
    }
}
