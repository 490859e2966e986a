//! What a key is and can do now, as read from its row and its sends.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

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
    /// Its sends still in the window, as this process's instants (read, and
    /// the ones this replica took since).
    #[serde(skip)]
    pub sent_at: Vec<Instant>,
    /// When its rest after a `429` ends, if it rests.
    #[serde(skip)]
    pub rests_until: Option<Instant>,
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
