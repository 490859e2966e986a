//! The gateway's slots shared among clients in proportion to their shares
//! (weighted fair queuing). The dispatcher's claim (`store::outbox::claim_due`)
//! hands slots out in virtual-finish-time order: a client's k-th waiting
//! message finishes at (its sends in the last minute + k) / its share, and the
//! smallest goes first. Here is the same order seen from a new request: where
//! its message would stand (and `estimate` says when that place's send comes).

use crate::domain::ClientId;

/// One client's part of the queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientQueue {
    pub client: ClientId,
    pub share: u32,
    pub waiting: u64,
}

/// Where a new message of a client would stand, if it may queue at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// At `position` in the fair order (`position`).
    Placed { position: f64 },
    /// The client already has `max_queued` messages waiting.
    QueueFull { waiting: u64, retry_after: u64 },
}

/// The sends that go out up to and including a new message of `own`, if every
/// client keeps what it has waiting: `own`'s n-th message (n = its waiting + 1)
/// goes once each other client j has had min(waiting_j, n × share_j / share_own).
pub fn position(own: ClientId, own_share: u32, queues: &[ClientQueue]) -> f64 {
    let n = waiting_of(own, queues) as f64 + 1.0;
    let own_share = f64::from(own_share.max(1));
    n + queues
        .iter()
        .filter(|q| q.client != own)
        .map(|q| (q.waiting as f64).min(n * f64::from(q.share.max(1)) / own_share))
        .sum::<f64>()
}

/// `own`'s part of `per_second` while the clients with messages waiting share it.
pub fn own_rate(own: ClientId, own_share: u32, queues: &[ClientQueue], per_second: f64) -> f64 {
    let others: u32 = queues
        .iter()
        .filter(|q| q.client != own && q.waiting > 0)
        .map(|q| q.share.max(1))
        .sum();
    let own_share = own_share.max(1);
    per_second * f64::from(own_share) / f64::from(own_share + others)
}

fn waiting_of(own: ClientId, queues: &[ClientQueue]) -> u64 {
    queues.iter().find(|q| q.client == own).map_or(0, |q| q.waiting)
}

/// Places a new message of `own` in the fair order if the client's queue has
/// room (`per_second`, the keys' rate, says when it will have). Only the
/// client's own queue and place count: a flood by one client refuses that
/// client's excess, never another's requests.
pub fn admit(
    own: ClientId,
    own_share: u32,
    max_queued: u32,
    queues: &[ClientQueue],
    per_second: f64,
) -> Admission {
    let waiting = waiting_of(own, queues);
    if waiting >= u64::from(max_queued) {
        let rate = own_rate(own, own_share, queues, per_second);
        let excess = (waiting + 1 - u64::from(max_queued)) as f64;
        return Admission::QueueFull {
            waiting,
            retry_after: seconds(excess / rate),
        };
    }
    Admission::Placed {
        position: position(own, own_share, queues),
    }
}

/// Whole seconds to wait, at least 1, for a `Retry-After`.
pub fn seconds(s: f64) -> u64 {
    if s.is_finite() {
        s.ceil().max(1.0) as u64
    } else {
        60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(client: ClientId, share: u32, waiting: u64) -> ClientQueue {
        ClientQueue {
            client,
            share,
            waiting,
        }
    }

    #[test]
    fn a_client_alone_stands_behind_its_own_messages_only() {
        let a = ClientId::new();
        assert_eq!(position(a, 1, &[]), 1.0);
        assert_eq!(position(a, 1, &[queue(a, 1, 9)]), 10.0);
    }

    #[test]
    fn a_flood_by_one_client_does_not_push_back_another() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let queues = [queue(a, 1, 200)];
        // B's first message goes after one of A's: equal shares alternate.
        assert_eq!(position(b, 1, &queues), 2.0);
        // A's next waits for all of A's and the little B has.
        let queues = [queue(a, 1, 200), queue(b, 1, 4)];
        assert_eq!(position(a, 1, &queues), 205.0);
        assert_eq!(position(b, 1, &queues), 10.0);
    }

    #[test]
    fn shares_weigh_the_order() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let queues = [queue(a, 3, 100), queue(b, 1, 100)];
        // B's 1st message goes after 3 of A's; A's 101st after all 100 of B's... at most.
        assert_eq!(position(b, 1, &queues), 101.0 + 100.0);
        assert_eq!(position(b, 1, &[queue(a, 3, 100)]), 1.0 + 3.0);
        assert_eq!(own_rate(a, 3, &queues, 1.0), 0.75);
        assert_eq!(own_rate(b, 1, &queues, 1.0), 0.25);
        assert_eq!(own_rate(b, 1, &[], 1.0), 1.0);
    }

    #[test]
    fn a_full_queue_says_when_it_has_room_and_another_client_is_placed() {
        let (a, b) = (ClientId::new(), ClientId::new());
        let queues = [queue(a, 1, 100), queue(b, 1, 10)];
        // A gets half of 0.5/s: one message leaves its queue every 4 s.
        assert_eq!(
            admit(a, 1, 100, &queues, 0.5),
            Admission::QueueFull {
                waiting: 100,
                retry_after: 4
            }
        );
        assert_eq!(
            admit(b, 1, 100, &queues, 0.5),
            Admission::Placed { position: 22.0 }
        );
    }
}
