//! The keys' bookkeeping: slots taken (round robin, atomically across
//! replicas) and given back, and the states an answer of the gateway puts a
//! key in. This replica's admission view is amended as it goes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Sender, SenderState, SenderStatus, Senders, Slot, next_free_slot};
use crate::domain::{FailureReason, KeyState};
use crate::store::senders as store;

impl Senders {
    /// Free slots across the keys in service, right now.
    pub fn free_slots(&self, statuses: &[SenderStatus]) -> u32 {
        statuses
            .iter()
            .filter(|s| s.state == SenderState::Ok)
            .map(|s| s.free)
            .fold(0, u32::saturating_add)
    }

    /// Takes one slot on the next key that has one, round robin. Taking it is
    /// atomic across replicas: the key's row is locked while its window is counted.
    pub async fn take_slot(&self) -> Result<Slot<'_>, sqlx::Error> {
        if let Some((sender, slot)) = self.take_slots(1).await?.pop() {
            return Ok(Slot::Granted(sender, slot));
        }
        // No key had a slot: find out whether any will, and when.
        let statuses = self.statuses().await?;
        if !statuses.iter().any(SenderStatus::in_service) {
            let reason = match statuses.first().map(|s| s.state) {
                Some(SenderState::Unauthorized) => FailureReason::Unauthorized,
                _ => FailureReason::SessionEnded,
            };
            return Ok(Slot::NoneInService(reason));
        }
        let wait = next_free_slot(&statuses)
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(20));
        Ok(Slot::Wait(wait))
    }

    /// Takes up to `wanted` slots of the next keys that have them, round robin,
    /// one transaction per key: a backlog goes out without a round trip per message.
    pub async fn take_slots(&self, wanted: usize) -> Result<Vec<(&Sender, i64)>, sqlx::Error> {
        let mut granted = Vec::with_capacity(wanted);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.list.len() {
            if granted.len() == wanted {
                break;
            }
            let sender = &self.list[(start + i) % self.list.len()];
            // Spread what is left over the keys not yet asked.
            let share = (wanted - granted.len()).div_ceil(self.list.len() - i);
            for slot in self.try_take_many(sender, share).await? {
                granted.push((sender, slot));
            }
        }
        Ok(granted)
    }

    /// At most `wanted` slots of one key, atomically across replicas: the key's
    /// row stays locked while its window is counted and the slots are written.
    async fn try_take_many(&self, sender: &Sender, wanted: usize) -> Result<Vec<i64>, sqlx::Error> {
        let slots = store::take_slots(&self.pool, &sender.id, wanted, self.key_limit()).await?;
        self.spent(sender, slots.len());
        Ok(slots)
    }

    /// Counts `n` slots of `sender` that this replica took in the states it
    /// keeps for admission, so that its own sends show at once (other
    /// replicas' show at the next read).
    pub fn spent(&self, sender: &Sender, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n == 0 {
            return;
        }
        self.recent.amend(|statuses| {
            if let Some(status) = statuses.iter_mut().find(|s| s.name == sender.name) {
                status.free = status.free.saturating_sub(n);
                status.sent_last_minute = status.sent_last_minute.saturating_add(n);
            }
        });
    }

    /// Gives a slot back when the gateway surely sent nothing (it answered 5xx,
    /// or could not be reached): an outage must not use up the minute's quota.
    pub async fn refund(&self, slot: i64) -> Result<(), sqlx::Error> {
        store::refund(&self.pool, slot).await
    }

    /// Counts a slot from now: called when the gateway answered.
    pub async fn touch(&self, slot: i64) -> Result<(), sqlx::Error> {
        store::touch(&self.pool, slot).await
    }

    /// Takes a key out of service until an operator resumes it; unless it was
    /// resumed after the send that got this answer started (the answer is old
    /// news then). `send_started` is the database's clock, as `resumed_at` is.
    pub async fn take_out(
        &self,
        sender: &Sender,
        send_started: DateTime<Utc>,
        state: KeyState,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let done = store::take_out(&self.pool, &sender.id, send_started, state, error).await;
        self.recent.forget();
        done
    }

    /// Rests a key (after a 429) without taking it out of service.
    pub async fn rest(&self, sender: &Sender, rest: Duration, error: &str) -> Result<(), sqlx::Error> {
        let done = store::rest(&self.pool, &sender.id, rest, error).await;
        self.recent.forget();
        done
    }

    pub async fn note_error(&self, sender: &Sender, error: &str) -> Result<(), sqlx::Error> {
        store::note_error(&self.pool, &sender.id, error).await
    }

    /// Puts a re-linked key back in service.
    pub async fn resume(&self, sender: &Sender) -> Result<(), sqlx::Error> {
        let done = store::resume(&self.pool, &sender.id).await;
        self.recent.forget();
        done
    }
}
