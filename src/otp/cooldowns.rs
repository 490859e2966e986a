//! Pending verifications a request would resend, remembered so that a flood
//! of requests inside the resend cooldown is refused without a statement.
//!
//! Memory only ever refuses: when it would let a request through, the
//! database is asked as before, and the enqueue transaction checks again
//! under the row's lock. A remembered verification can stop being pending on
//! another replica (approved, canceled, locked, failed, marked expired); a
//! trigger announces each of those on `FINISHED_CHANNEL`
//! (V7__fast_refusals.sql), the replica's `LISTEN` hub tells the cooldowns,
//! and they forget all they hold, as they do at any client change (a new
//! cooldown, say: `clients::cache` drops them with the clients). A resend
//! elsewhere only pushes the cooldown later, so what is held can refuse too
//! little, never too much. Nothing is trusted while the hub is not listening.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::{ClientId, VerificationId};
use crate::store::notifications::Subscriber;
use crate::store::verifications::{Key, Resendable};

pub const FINISHED_CHANNEL: &str = "otp_verifications_finished";
const MAX_HELD: usize = 100_000;

#[derive(Default)]
pub struct Cooldowns {
    held: Mutex<HashMap<(ClientId, String, String), Held>>,
    /// Moves at every drop: what was read before it is not kept after it.
    epoch: AtomicU64,
    trusted: AtomicBool,
}

struct Held {
    id: VerificationId,
    sends: i32,
    cooldown_ends: Instant,
    expires: Instant,
}

fn key_of(key: &Key<'_>) -> (ClientId, String, String) {
    (key.client, key.phone.to_owned(), key.purpose.to_owned())
}

impl Cooldowns {
    /// What is remembered of the pending verification for `key`, as the
    /// database would say it now; `None` when nothing may be said from memory.
    pub fn recall(&self, key: &Key<'_>) -> Option<Resendable> {
        if !self.trusted.load(Ordering::Acquire) {
            return None;
        }
        let now = Instant::now();
        let held = self.lock();
        let held = held.get(&key_of(key)).filter(|h| h.expires > now)?;
        Some(Resendable {
            id: held.id,
            sends: held.sends,
            cooldown_left: seconds_until(held.cooldown_ends, now),
            expires_in: seconds_until(held.expires, now),
        })
    }

    /// Taken before the read whose answer is then `keep`t.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Remembers what a read begun at `epoch`, at `read_at`, found.
    pub fn keep(&self, epoch: u64, key: &Key<'_>, pending: &Resendable, read_at: Instant) {
        if !self.trusted.load(Ordering::Acquire) {
            return;
        }
        let mut held = self.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if held.len() >= MAX_HELD {
            held.clear();
        }
        let after = |seconds: i64| read_at + Duration::from_secs(seconds.max(0) as u64);
        held.insert(
            key_of(key),
            Held {
                id: pending.id,
                sends: pending.sends,
                // Read rounded up to the second, so remembered as ending a
                // little later; the refusal's Retry-After is the same number.
                cooldown_ends: after(pending.cooldown_left),
                expires: after(pending.expires_in.saturating_sub(1)),
            },
        );
    }

    /// After this replica changed the verification for `key` (a resend, a new one).
    pub fn forget(&self, key: &Key<'_>) {
        self.lock().remove(&key_of(key));
    }

    pub fn drop_all(&self) {
        let mut held = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        held.clear();
    }

    /// Whether the replica listens: memory is dropped either way.
    fn set_trusted(&self, trusted: bool) {
        self.drop_all();
        self.trusted.store(trusted, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ClientId, String, String), Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Subscribed to `FINISHED_CHANNEL`: any verification finished elsewhere
/// drops all, and memory is trusted only while the hub listens.
impl Subscriber for Cooldowns {
    fn told(&self, _channel: &str) {
        self.drop_all();
    }

    fn listening(&self, listening: bool) {
        self.set_trusted(listening);
    }
}

/// Whole seconds until `at`, rounded up as the database rounds them.
fn seconds_until(at: Instant, now: Instant) -> i64 {
    let left = at.saturating_duration_since(now);
    left.as_secs() as i64 + i64::from(left.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(phone: &str) -> Key<'_> {
        Key {
            client: ClientId(uuid::Uuid::from_u128(1)),
            phone,
            purpose: "login",
        }
    }

    fn pending(cooldown_left: i64) -> Resendable {
        Resendable {
            id: VerificationId(uuid::Uuid::from_u128(7)),
            sends: 1,
            cooldown_left,
            expires_in: 600,
        }
    }

    #[test]
    fn nothing_is_said_from_memory_unless_trusted() {
        let cooldowns = Cooldowns::default();
        cooldowns.keep(cooldowns.epoch(), &key("+1"), &pending(30), Instant::now());
        assert!(cooldowns.recall(&key("+1")).is_none());
    }

    #[test]
    fn a_kept_cooldown_counts_down() {
        let cooldowns = Cooldowns::default();
        cooldowns.set_trusted(true);
        let read_at = Instant::now() - Duration::from_millis(10_500);
        cooldowns.keep(cooldowns.epoch(), &key("+1"), &pending(30), read_at);
        let recalled = cooldowns.recall(&key("+1")).unwrap();
        assert!((19..=20).contains(&recalled.cooldown_left), "{recalled:?}");
        assert!(cooldowns.recall(&key("+2")).is_none());
        cooldowns.forget(&key("+1"));
        assert!(cooldowns.recall(&key("+1")).is_none());
    }

    #[test]
    fn a_read_older_than_a_drop_is_not_kept() {
        let cooldowns = Cooldowns::default();
        cooldowns.set_trusted(true);
        let epoch = cooldowns.epoch();
        cooldowns.drop_all();
        cooldowns.keep(epoch, &key("+1"), &pending(30), Instant::now());
        assert!(cooldowns.recall(&key("+1")).is_none());
    }

    #[test]
    fn an_expired_verification_is_not_recalled() {
        let cooldowns = Cooldowns::default();
        cooldowns.set_trusted(true);
        let p = Resendable {
            expires_in: 1,
            ..pending(30)
        };
        cooldowns.keep(cooldowns.epoch(), &key("+1"), &p, Instant::now());
        assert!(cooldowns.recall(&key("+1")).is_none());
    }
}
