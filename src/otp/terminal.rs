//! Refusals remembered: a verification that is approved, canceled, expired,
//! failed or locked stays so, so a verify or cancel on it can be refused from
//! memory, without a statement. Each replica learns this from its own reads
//! and writes; nothing here needs telling across replicas, because none of
//! these states is ever left.
//!
//! Except one, briefly: a verification whose wrong codes reached the limit
//! still says `pending`, and an attempt reserved before the limit may still
//! give its attempt back (its hash found no worker) or approve it (it was the
//! right code, hashed late). So a lock is remembered for a second only.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rules::Refusal;
use crate::domain::{ClientId, VerificationId, VerificationStatus};

/// How long a lock read as `pending` with no attempts left is believed.
const LOCK_BELIEVED: Duration = Duration::from_secs(1);
/// About 100 bytes each; past this, memory starts again from nothing.
const MAX_HELD: usize = 100_000;

#[derive(Default)]
pub struct Terminal {
    held: Mutex<HashMap<VerificationId, Held>>,
}

struct Held {
    client: ClientId,
    refusal: Remembered,
    believed_until: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
enum Remembered {
    Final(Refusal),
    /// Locked, as long as it is believed.
    Locked,
}

impl Terminal {
    /// The refusal remembered for `id`, for this client only (another
    /// client's id is answered by the database, as unknown).
    pub fn refusal(&self, id: VerificationId, client: ClientId) -> Option<Refusal> {
        let now = Instant::now();
        let held = self.lock();
        let held = held.get(&id).filter(|h| h.client == client)?;
        if held.believed_until.is_some_and(|until| until <= now) {
            return None;
        }
        Some(match &held.refusal {
            Remembered::Final(refusal) => refusal.clone(),
            Remembered::Locked => Refusal::Locked,
        })
    }

    /// Remembers `refusal` if it lasts.
    pub fn remember(&self, id: VerificationId, client: ClientId, refusal: &Refusal) {
        let now = Instant::now();
        let Some((refusal, believed_until)) = lasting(refusal, now) else {
            return;
        };
        let mut held = self.lock();
        if held.len() >= MAX_HELD {
            held.clear();
        }
        held.insert(
            id,
            Held {
                client,
                refusal,
                believed_until,
            },
        );
    }

    /// What this replica itself just made final (an approval, a cancel).
    pub fn finished(&self, id: VerificationId, client: ClientId, status: VerificationStatus) {
        self.remember(id, client, &Refusal::NotPending(status));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VerificationId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What of `refusal` may be remembered, and until when (`None`: for good).
fn lasting(refusal: &Refusal, now: Instant) -> Option<(Remembered, Option<Instant>)> {
    match refusal {
        // An unknown id may be anyone's guess: remembering those would let
        // guesses fill memory.
        Refusal::NotFound => None,
        Refusal::NotPending(VerificationStatus::Pending) => None,
        // Marked or not, its time is up for good.
        Refusal::Expired { .. } => Some((Remembered::Final(Refusal::Expired { mark: false }), None)),
        Refusal::Locked => Some((Remembered::Locked, Some(now + LOCK_BELIEVED))),
        Refusal::NotPending(_) => Some((Remembered::Final(refusal.clone()), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> VerificationId {
        VerificationId(uuid::Uuid::from_u128(n))
    }

    fn client(n: u128) -> ClientId {
        ClientId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn final_states_are_remembered_for_their_own_client_only() {
        let terminal = Terminal::default();
        let (mine, theirs) = (client(1), client(2));
        for (n, status) in [
            VerificationStatus::Approved,
            VerificationStatus::Canceled,
            VerificationStatus::Failed,
            VerificationStatus::MaxAttemptsReached,
        ]
        .into_iter()
        .enumerate()
        {
            terminal.finished(id(n as u128), mine, status);
            assert_eq!(
                terminal.refusal(id(n as u128), mine),
                Some(Refusal::NotPending(status))
            );
            assert_eq!(terminal.refusal(id(n as u128), theirs), None);
        }
    }

    #[test]
    fn expiry_is_remembered_as_already_marked() {
        let terminal = Terminal::default();
        terminal.remember(id(1), client(1), &Refusal::Expired { mark: true });
        assert_eq!(
            terminal.refusal(id(1), client(1)),
            Some(Refusal::Expired { mark: false })
        );
    }

    #[test]
    fn unknown_ids_and_pending_ones_are_not_remembered() {
        let terminal = Terminal::default();
        terminal.remember(id(1), client(1), &Refusal::NotFound);
        terminal.remember(
            id(2),
            client(1),
            &Refusal::NotPending(VerificationStatus::Pending),
        );
        assert_eq!(terminal.refusal(id(1), client(1)), None);
        assert_eq!(terminal.refusal(id(2), client(1)), None);
    }

    #[test]
    fn a_lock_is_believed_for_a_second() {
        let now = Instant::now();
        let (remembered, until) = lasting(&Refusal::Locked, now).unwrap();
        assert_eq!(until, Some(now + LOCK_BELIEVED));
        assert_eq!(remembered, Remembered::Locked);
        let terminal = Terminal::default();
        terminal.remember(id(1), client(1), &Refusal::Locked);
        assert_eq!(terminal.refusal(id(1), client(1)), Some(Refusal::Locked));
    }
}
