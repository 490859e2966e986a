//! The gateway keys ("senders"): their state and the per-key rate limit, both
//! kept in PostgreSQL so that every replica sees the same and never exceeds
//! the gateway's limit together. Taking and giving back slots, and the
//! states the gateway's answers put a key in, are in `slots`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};

use super::recent::Recent;
use crate::domain::{FailureReason, KeyState, SenderId};
use crate::store::senders as store;

mod slots;

/// The window the gateway counts in, plus a margin for the time a message takes
/// to reach it: a slot taken here is counted there a few milliseconds later.
pub const WINDOW: Duration = Duration::from_millis(60_500);

/// Within any `BURST_WINDOW` a key is handed at most its burst (by default a
/// quarter of the minute's rate): the minute's allowance is spread over the
/// minute, so a client that comes while another floods waits seconds for a
/// slot, not the rest of the minute.
pub const BURST_WINDOW: Duration = Duration::from_secs(15);

/// The state of one gateway key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderState {
    Ok,
    /// Resting after a `429` until `resting_until`.
    BackingOff,
    /// `Session has ended`: the WhatsApp session needs re-linking (QR code), then `resume`.
    SessionEnded,
    /// `401`: the key is wrong or revoked.
    Unauthorized,
}

impl SenderState {
    pub const ALL: [SenderState; 4] = [
        SenderState::Ok,
        SenderState::BackingOff,
        SenderState::SessionEnded,
        SenderState::Unauthorized,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SenderState::Ok => "ok",
            SenderState::BackingOff => "backing_off",
            SenderState::SessionEnded => "session_ended",
            SenderState::Unauthorized => "unauthorized",
        }
    }
}

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

/// What a key can do right now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SenderStatus {
    #[schema(example = "sender-1")]
    pub name: String,
    pub state: SenderState,
    /// Messages handed to this key in the last minute.
    pub sent_last_minute: u32,
    pub resting_until: Option<DateTime<Utc>>,
    #[schema(example = "gateway answered 503")]
    pub last_error: Option<String>,
    #[serde(skip)]
    pub next_free_slot_in: Duration,
    /// Slots it may be handed now (the minute's and the burst's room).
    #[serde(skip)]
    pub free: u32,
}

impl SenderStatus {
    pub fn in_service(&self) -> bool {
        matches!(self.state, SenderState::Ok | SenderState::BackingOff)
    }
}

/// How soon a key in service will have a free slot; `None` when none is in service.
pub fn next_free_slot(statuses: &[SenderStatus]) -> Option<Duration> {
    statuses
        .iter()
        .filter(|s| s.in_service())
        .map(|s| s.next_free_slot_in)
        .min()
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
        let statuses = self.statuses_of(&rows);
        self.recent.put(at, statuses.clone());
        Ok(statuses)
    }

    fn statuses_of(&self, rows: &[store::KeyRow]) -> Vec<SenderStatus> {
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
                }
            })
            .collect()
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
}
