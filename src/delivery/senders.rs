//! The gateway keys ("senders"): their state and the per-key rate limit, both
//! kept in PostgreSQL so that every replica sees the same and never exceeds
//! the gateway's limit together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};

use super::recent::Recent;
use crate::domain::{FailureReason, KeyState, SenderId};
use crate::store::senders as store;

mod status;
pub use status::{SenderState, SenderStatus, next_free_slot};

/// The window the gateway counts in, plus a margin for the time a message takes
/// to reach it: a slot taken here is counted there a few milliseconds later.
pub const WINDOW: Duration = Duration::from_millis(60_500);

/// Within any `BURST_WINDOW` a key is handed at most its burst (by default a
/// quarter of the minute's rate): the minute's allowance is spread over the
/// minute, so a client that comes while another floods waits seconds for a
/// slot, not the rest of the minute.
pub const BURST_WINDOW: Duration = Duration::from_secs(15);

/// One gateway key (one linked WhatsApp session), known by its name; the key
/// itself is never shown.
pub struct Sender {
    pub name: String,
    /// A fingerprint of the key: the same on every replica, whatever the order of the keys.
    pub id: SenderId,
    pub(crate) key: SecretString,
    pub(crate) container_token: Option<SecretString>,
}

impl Sender {
    pub fn new(name: impl Into<String>, key: SecretString, container_token: Option<SecretString>) -> Self {
        let digest = Sha256::digest(format!("otp-service sender {}", key.expose_secret()).as_bytes());
        Self {
            name: name.into(),
            id: SenderId(hex::encode(&digest[..8])),
            key,
            container_token,
        }
    }
}

pub enum Slot<'a> {
    /// The key may send one message now; the slot (this id) is already counted.
    Granted(&'a Sender, i64),
    /// Every key in service is busy or resting: try again after this long.
    Wait(Duration),
    /// No key is in service; the reason of the first one.
    NoneInService(FailureReason),
}

pub struct Senders {
    pool: PgPool,
    list: Vec<Sender>,
    rate_per_minute: u32,
    /// Sends per key in any `BURST_WINDOW`.
    burst: u32,
    next: AtomicUsize,
    /// The states last read, for admission.
    recent: Recent<Vec<SenderStatus>>,
}

impl Senders {
    /// `burst`: at most this many per key in any `BURST_WINDOW` (`None`: a
    /// quarter of the rate, at least 1; never more than the rate).
    pub fn new(pool: PgPool, list: Vec<Sender>, rate_per_minute: u32, burst: Option<u32>) -> Self {
        let burst = burst
            .unwrap_or(rate_per_minute.div_ceil(4))
            .clamp(1, rate_per_minute.max(1));
        Self {
            pool,
            list,
            rate_per_minute,
            burst,
            next: AtomicUsize::new(0),
            recent: Recent::new(),
        }
    }

    pub fn list(&self) -> &[Sender] {
        &self.list
    }

    pub fn rate_per_minute(&self) -> u32 {
        self.rate_per_minute
    }

    pub fn by_name(&self, name: &str) -> Option<&Sender> {
        self.list.iter().find(|s| s.name == name)
    }

    /// Makes sure every configured key has its row (replicas may race: no-op then).
    pub async fn register(&self) -> Result<(), sqlx::Error> {
        store::register(&self.pool, &self.ids()).await
    }

    fn ids(&self) -> Vec<SenderId> {
        self.list.iter().map(|s| s.id.clone()).collect()
    }

    /// Every key's state, in configuration order.
    pub async fn statuses(&self) -> Result<Vec<SenderStatus>, sqlx::Error> {
        self.statuses_on(&self.pool).await
    }

    /// The same, as this replica read it less than `recent::FRESH` ago if it
    /// did: admission's view, which may be that old (a key another replica
    /// took out of service a moment ago is believed in service). What this
    /// replica changes itself is read again.
    pub async fn recent_statuses(&self, db: impl PgExecutor<'_>) -> Result<Vec<SenderStatus>, sqlx::Error> {
        match self.recent.get() {
            Some(statuses) => Ok(statuses),
            None => self.statuses_on(db).await,
        }
    }

    /// The same, read through `db` (the operations endpoints' own pool, or a
    /// transaction that must not wait for a second connection).
    pub async fn statuses_on(&self, db: impl PgExecutor<'_>) -> Result<Vec<SenderStatus>, sqlx::Error> {
        let at = std::time::Instant::now();
        let rows = store::rows(db, &self.ids(), self.key_limit()).await?;
        let statuses = self.statuses_of(&rows, at);
        self.recent.put(at, statuses.clone());
        Ok(statuses)
    }

    /// The statuses of `rows`, read at `at`.
    fn statuses_of(&self, rows: &[store::KeyRow], at: Instant) -> Vec<SenderStatus> {
        let instant = |seconds_ago: f64| {
            at.checked_sub(Duration::from_secs_f64(seconds_ago.max(0.0)))
                .unwrap_or(at)
        };
        self.list
            .iter()
            .map(|sender| {
                let row = rows.iter().find(|r| r.id == sender.id);
                let recent = row.map_or(0, |r| r.recent) as u32;
                let recent_burst = row.map_or(0, |r| r.recent_burst) as u32;
                let resting_for = row.and_then(|r| r.resting_for).filter(|s| *s > 0.0);
                let state = match row.map(|r| r.state) {
                    Some(KeyState::SessionEnded) => SenderState::SessionEnded,
                    Some(KeyState::Unauthorized) => SenderState::Unauthorized,
                    _ if resting_for.is_some() => SenderState::BackingOff,
                    _ => SenderState::Ok,
                };
                let full_for = if recent >= self.rate_per_minute {
                    row.and_then(|r| r.oldest_for).unwrap_or(0.0).max(0.0)
                } else {
                    0.0
                };
                let burst_full_for = if recent_burst >= self.burst {
                    row.and_then(|r| r.burst_oldest_for).unwrap_or(0.0).max(0.0)
                } else {
                    0.0
                };
                SenderStatus {
                    name: sender.name.clone(),
                    state,
                    sent_last_minute: recent,
                    free: self
                        .rate_per_minute
                        .saturating_sub(recent)
                        .min(self.burst.saturating_sub(recent_burst)),
                    resting_until: row
                        .and_then(|r| r.resting_until)
                        .filter(|_| resting_for.is_some()),
                    last_error: row.and_then(|r| r.last_error.clone()),
                    next_free_slot_in: Duration::from_secs_f64(
                        resting_for.unwrap_or(0.0).max(full_for).max(burst_full_for),
                    ),
                    sent_at: row
                        .map_or_else(Vec::new, |r| r.sent_ago.iter().map(|ago| instant(*ago)).collect()),
                    rests_until: resting_for.map(|rest| at + Duration::from_secs_f64(rest)),
                }
            })
            .collect()
    }

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

    /// The key whose turn it is (round robin), for a slot taken along with
    /// a claim; `None` without keys.
    pub fn in_turn(&self) -> Option<&Sender> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        self.list.get(start % self.list.len().max(1))
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// How the store counts each key's sends: this rate and burst, over the
    /// gateway's window and the burst window.
    pub fn key_limit(&self) -> store::KeyLimit {
        store::KeyLimit {
            rate: self.rate_per_minute,
            burst: self.burst,
            window: WINDOW,
            burst_window: BURST_WINDOW,
        }
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
                let now = Instant::now();
                status.sent_at.extend(std::iter::repeat_n(now, n as usize));
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
