//! Admission: whether a new code of a client could reach its phone before it
//! expires, given the keys in service and every client's place in the fair
//! order, and when it should: the look before the hash, then the exact check
//! under the client's lock in the transaction that queues the message, whose
//! estimate is stored with the message and shown in its answers.

use std::time::{Duration, Instant};

use sqlx::{Postgres, Transaction};

use super::Delivery;
use crate::delivery::estimate::{self, KeyLoad, Reach};
use crate::delivery::fair::{self, Admission, ClientQueue};
use crate::delivery::gateway::SEND_TIMEOUT;
use crate::delivery::senders::SenderStatus;
use crate::domain::{ClientId, Effective};
use crate::error::Error;
use crate::store::outbox;
use crate::store::senders::KeyLimit;

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
        self.judge(client, rules, ttl, &statuses, queues).map(drop)
    }

    /// `admit`, in the transaction that queues the message and under the
    /// client's lock, so the client's own count is exact under concurrency.
    /// Returns when the message should go out, from now: the estimate it was
    /// admitted by.
    pub async fn admit_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        client: ClientId,
        rules: &Effective,
        ttl: Duration,
    ) -> Result<Duration, Error> {
        // Everything through the transaction: waiting for a second connection
        // while holding the lock could wait out the pool. The keys' states need
        // not be read under the lock, which does not hold them: as recent as
        // the look before the hash is enough.
        let statuses = self.inner.senders.recent_statuses(&mut **tx).await?;
        let at = Instant::now();
        let queues = outbox::lock_client_queue(tx, client).await?;
        self.inner.queues.put(at, queues.clone());
        self.judge(client, rules, ttl, &statuses, queues)
    }

    fn judge(
        &self,
        client: ClientId,
        rules: &Effective,
        ttl: Duration,
        statuses: &[SenderStatus],
        queues: Vec<outbox::Waiting>,
    ) -> Result<Duration, Error> {
        let now = Instant::now();
        let keys = Keys {
            loads: statuses
                .iter()
                .filter(|s| s.in_service())
                .map(|s| KeyLoad::of(s, now))
                .collect(),
            limit: self.inner.senders.key_limit(),
        };
        decide(client, rules.share, rules.max_queued, ttl, &keys, queues)
    }
}

/// The keys in service, each seen from now, and how each may send.
#[derive(Debug, Clone)]
struct Keys {
    loads: Vec<KeyLoad>,
    limit: KeyLimit,
}

/// The admission decision, apart from reading what it needs: a new code of
/// `client` (its `share`, its `max_queued`) living `ttl`, with `keys` and
/// every client's queue. Admitted, it says when the message should go out
/// (from now); it is refused exactly when that would be past the share of
/// the code's life a message may wait, so the two never disagree.
fn decide(
    client: ClientId,
    share: u32,
    max_queued: u32,
    ttl: Duration,
    keys: &Keys,
    queues: Vec<outbox::Waiting>,
) -> Result<Duration, Error> {
    if keys.loads.is_empty() {
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
    let per_second = keys.loads.len() as f64 * f64::from(keys.limit.rate) / 60.0;
    // Never counting the last SEND_TIMEOUT, when a message is no longer handed over.
    let budget = (ttl.as_secs_f64() * QUEUE_SHARE_OF_TTL).min(ttl.saturating_sub(SEND_TIMEOUT).as_secs_f64());
    let position = match fair::admit(client, share, max_queued, &queues, per_second) {
        Admission::Placed { position } => position,
        Admission::QueueFull { waiting, retry_after } => {
            return Err(Error::DeliveryUnavailable {
                detail: format!(
                    "this client has {waiting} messages waiting for the gateway, as many as it may; \
                     nothing was stored or sent"
                ),
                retry_after,
            });
        }
    };
    // A place shared with another client's message (shares that do not
    // divide) is the later of the two.
    let nth = position.ceil().max(1.0) as u64;
    match estimate::nth_send(&keys.loads, keys.limit, nth, budget) {
        Reach::At(seconds) => Ok(Duration::from_secs_f64(seconds)),
        // How far back it would stand is not said: it depends on other clients' queues.
        Reach::Beyond { fitting } => Err(Error::DeliveryUnavailable {
            detail: "with this client's share of the gateway, a new code would expire before it could be \
                     sent; nothing was stored or sent"
                .into(),
            retry_after: fair::seconds((nth - fitting) as f64 / per_second),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::senders::{BURST_WINDOW, WINDOW};

    fn waiting(client: ClientId, share: i32, waiting: i64) -> outbox::Waiting {
        outbox::Waiting {
            client_id: client,
            share,
            waiting,
        }
    }

    /// `in_service` keys at 60 a minute each (the whole minute at once),
    /// each as `load` has it.
    fn keys(in_service: usize, load: KeyLoad) -> Keys {
        Keys {
            loads: vec![load; in_service],
            limit: KeyLimit {
                rate: 60,
                burst: 60,
                window: WINDOW,
                burst_window: BURST_WINDOW,
            },
        }
    }

    /// A key that sent its whole minute just now: free again in 60.5 s.
    fn full() -> KeyLoad {
        KeyLoad {
            sent_ago: vec![0.0; 60],
            resting_for: 0.0,
        }
    }

    fn idle() -> KeyLoad {
        KeyLoad::default()
    }

    /// A case, its keys, the code's lifetime, the client's queue, another
    /// client's queue, its `max_queued`, and what it comes to: admitted with
    /// the seconds until its send, or refused with its `retry_after` and
    /// words of its detail.
    type Case = (
        &'static str,
        Keys,
        Duration,
        i64,
        i64,
        u32,
        Result<f64, (u64, &'static str)>,
    );

    /// A code's usual life, and one that ends within `SEND_TIMEOUT` of a send.
    const LIFE: Duration = Duration::from_secs(300);
    const SHORT: Duration = Duration::from_secs(10);

    /// Cases admitted, with the seconds until their send.
    fn admitted() -> Vec<Case> {
        let resting = KeyLoad {
            sent_ago: vec![],
            resting_for: 7.0,
        };
        vec![
            ("an idle key", keys(1, idle()), LIFE, 0, 0, 100, Ok(0.0)),
            ("a full key", keys(1, full()), LIFE, 0, 0, 100, Ok(60.5)),
            (
                "a key resting after a 429",
                keys(1, resting),
                LIFE,
                0,
                0,
                100,
                Ok(7.0),
            ),
            // 120 at 60.5, 121 and 181.5 s.
            (
                "twice the keys, twice as far",
                keys(2, full()),
                LIFE,
                300,
                0,
                1000,
                Ok(181.5),
            ),
            // Second, behind one message of the other client.
            (
                "another client's flood",
                keys(1, full()),
                LIFE,
                0,
                100_000,
                100,
                Ok(60.5),
            ),
            (
                "a short code and a free slot",
                keys(1, idle()),
                SHORT,
                0,
                0,
                100,
                Ok(0.0),
            ),
        ]
    }

    /// Cases refused, with their `retry_after` and words of their detail.
    fn refused() -> Vec<Case> {
        vec![
            (
                "no key in service",
                keys(0, idle()),
                LIFE,
                0,
                0,
                100,
                Err((60, "no WhatsApp session")),
            ),
            (
                "its queue is full",
                keys(1, full()),
                LIFE,
                100,
                0,
                100,
                Err((1, "has 100 messages")),
            ),
            // 301st in line; the key sends 60 at 60.5, 121, 181.5 and 242 s,
            // 240 within 270 s (90 % of 300): 61 short at one a second.
            (
                "too far back",
                keys(1, full()),
                LIFE,
                300,
                0,
                1000,
                Err((61, "would expire")),
            ),
            // The last SEND_TIMEOUT of a code's life does not count: only a free slot now.
            (
                "a short code and no free slot",
                keys(1, full()),
                SHORT,
                0,
                0,
                100,
                Err((1, "would expire")),
            ),
        ]
    }

    #[test]
    fn a_code_is_admitted_only_if_it_can_be_sent_before_it_expires_and_says_when() {
        let (own, other) = (ClientId::new(), ClientId::new());
        for (case, keys, ttl, own_waiting, other_waiting, max_queued, expected) in
            admitted().into_iter().chain(refused())
        {
            let queues = vec![waiting(own, 1, own_waiting), waiting(other, 1, other_waiting)];
            let decided = decide(own, 1, max_queued, ttl, &keys, queues);
            match (decided, expected) {
                (Ok(at), Ok(seconds)) => assert_eq!(at.as_secs_f64(), seconds, "{case}"),
                (Err(Error::DeliveryUnavailable { detail, retry_after }), Err((after, words))) => {
                    assert_eq!(retry_after, after, "{case}");
                    assert!(detail.contains(words), "{case}: {detail}");
                }
                (decided, _) => panic!("{case}: {decided:?}"),
            }
        }
    }

    #[test]
    fn the_last_place_admitted_is_the_last_that_goes_out_within_the_budget() {
        // An idle key at 60 a minute, 270 s of a 300 s code: 300 sends fit
        // (60 each at 0, 60.5, 121, 181.5 and 242 s).
        let own = ClientId::new();
        let ttl = Duration::from_secs(300);
        let queue = |n| vec![waiting(own, 1, n)];
        let last = decide(own, 1, 1000, ttl, &keys(1, idle()), queue(299)).unwrap();
        assert_eq!(last.as_secs_f64(), 242.0);
        assert!(decide(own, 1, 1000, ttl, &keys(1, idle()), queue(300)).is_err());
    }

    #[test]
    fn a_larger_share_stands_further_forward() {
        let (own, other) = (ClientId::new(), ClientId::new());
        let queues = || vec![waiting(own, 3, 180), waiting(other, 1, 100_000)];
        let ttl = Duration::from_secs(300);
        // 300 sends fit: with share 3 it stands at 181 + 181 / 3, with share 1
        // at 181 + 181.
        let ahead = decide(own, 3, 1000, ttl, &keys(1, idle()), queues()).unwrap();
        assert_eq!(ahead.as_secs_f64(), 242.0);
        assert!(decide(own, 1, 1000, ttl, &keys(1, idle()), queues()).is_err());
    }
}
