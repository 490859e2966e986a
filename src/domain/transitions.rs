//! What each change of a verification or of its message tells: the webhook
//! event a client's endpoint is sent, and the outcome the conversion stats
//! count. Decided here, in one place; the store writes what was decided in
//! the statement that makes the change (`store::transitions`), so no trigger
//! decides either.

use serde::Serialize;
use utoipa::ToSchema;

use super::{FailureReason, MessageStatus, VerificationStatus};

/// What happened to a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum EventType {
    /// A code went out (one event per send, resends included; the event's
    /// `send` says which). For a test number, when its code was stored:
    /// nothing is sent to it.
    #[serde(rename = "verification.sent")]
    Sent,
    /// A message could not be delivered; `data.delivery_error` says why.
    #[serde(rename = "verification.delivery_failed")]
    DeliveryFailed,
    #[serde(rename = "verification.approved")]
    Approved,
    /// The code expired unused (not said again of a verification already locked).
    #[serde(rename = "verification.expired")]
    Expired,
    /// The last wrong code allowed was tried.
    #[serde(rename = "verification.max_attempts_reached")]
    MaxAttemptsReached,
    #[serde(rename = "verification.canceled")]
    Canceled,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::Sent,
        Self::DeliveryFailed,
        Self::Approved,
        Self::Expired,
        Self::MaxAttemptsReached,
        Self::Canceled,
    ];

    /// The name stored and sent (`verification.sent`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "verification.sent",
            Self::DeliveryFailed => "verification.delivery_failed",
            Self::Approved => "verification.approved",
            Self::Expired => "verification.expired",
            Self::MaxAttemptsReached => "verification.max_attempts_reached",
            Self::Canceled => "verification.canceled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Told at most once per verification: an end happens once, however
    /// many statements race to record it. A send and a failed delivery
    /// happen once per message (each resend has its own).
    pub fn once(self) -> bool {
        !matches!(self, Self::Sent | Self::DeliveryFailed)
    }
}

/// What the conversion stats count of a verification (`stats_events.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Requested,
    /// Its first message went out (resends are not counted again).
    Sent,
    Approved,
    /// Ended unused, not locked.
    Expired,
    /// Ended without approval once its attempts were used up.
    Locked,
    /// A message given up (each one counted, with its reason).
    DeliveryFailed,
}

crate::text_enum!(Outcome {
    Requested = "requested",
    Sent = "sent",
    Approved = "approved",
    Expired = "expired",
    Locked = "locked",
    DeliveryFailed = "delivery_failed",
});

impl Outcome {
    /// Counted with its time from request (`approval_bucket`).
    pub fn timed(self) -> bool {
        self == Self::Approved
    }
}

/// A change, as the statement that makes it sees the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A verification was created.
    Requested,
    /// A pending verification became `to`; `locked`: its failed attempts had
    /// reached the limit.
    Ended { to: VerificationStatus, locked: bool },
    /// A message was sent (or, for a test number, stored as sent), or given
    /// up for `failure`; `first_sent`: the first of its verification's
    /// messages to go out.
    Settled {
        to: MessageStatus,
        failure: Option<FailureReason>,
        first_sent: bool,
    },
    /// A wrong code used the last attempt: no status changes (a right code
    /// reserved before it may still approve), but the client is told.
    AttemptsRanOut,
}

/// The webhook event a transition yields, if any.
pub fn events_for(transition: Transition) -> Option<EventType> {
    use VerificationStatus as V;
    match transition {
        Transition::Requested => None,
        Transition::Ended { to, locked } => match to {
            V::Approved => Some(EventType::Approved),
            V::Canceled => Some(EventType::Canceled),
            V::MaxAttemptsReached => Some(EventType::MaxAttemptsReached),
            // A locked verification's later expiry tells nothing new.
            V::Expired if !locked => Some(EventType::Expired),
            V::Expired | V::Failed | V::Pending => None,
        },
        Transition::Settled { to, failure, .. } => match to {
            MessageStatus::Sent => Some(EventType::Sent),
            // Given up because its verification ended first: that end has
            // its own event.
            MessageStatus::Failed if failure != Some(FailureReason::Canceled) => {
                Some(EventType::DeliveryFailed)
            }
            MessageStatus::Failed | MessageStatus::Queued | MessageStatus::Superseded => None,
        },
        Transition::AttemptsRanOut => Some(EventType::MaxAttemptsReached),
    }
}

/// What the stats count of a transition, if anything. A client's test
/// numbers are never counted: reviewers and its own tests are not its users.
pub fn outcome(transition: Transition, test_number: bool) -> Option<Outcome> {
    use VerificationStatus as V;
    if test_number {
        return None;
    }
    match transition {
        Transition::Requested => Some(Outcome::Requested),
        // Counted when the verification stops being pending, never before: a
        // verification whose last wrong code used up its attempts may still
        // be approved by an attempt reserved before it.
        Transition::Ended { to, locked } => match to {
            V::Approved => Some(Outcome::Approved),
            V::Expired | V::MaxAttemptsReached | V::Failed if locked => Some(Outcome::Locked),
            V::Expired => Some(Outcome::Expired),
            V::MaxAttemptsReached | V::Failed | V::Canceled | V::Pending => None,
        },
        Transition::Settled { to, first_sent, .. } => match to {
            MessageStatus::Sent if first_sent => Some(Outcome::Sent),
            MessageStatus::Failed => Some(Outcome::DeliveryFailed),
            MessageStatus::Sent | MessageStatus::Queued | MessageStatus::Superseded => None,
        },
        Transition::AttemptsRanOut => None,
    }
}

/// The buckets of an approval's time from request, as (below, step) in
/// seconds: to the second under ten minutes, to the minute under a day; a
/// day or more is one bucket, the last bound.
pub const APPROVAL_BUCKETS: [(f64, f64); 2] = [(600.0, 1.0), (86_400.0, 60.0)];

/// The bucket of an approval `seconds` after its request: the bucket's
/// lower end, in seconds (what the median is read from).
pub fn approval_bucket(seconds: f64) -> i32 {
    let seconds = seconds.max(0.0);
    APPROVAL_BUCKETS
        .iter()
        .find(|(below, _)| seconds < *below)
        .map(|(_, step)| ((seconds / step).floor() * step) as i32)
        .unwrap_or(APPROVAL_BUCKETS[APPROVAL_BUCKETS.len() - 1].0 as i32)
}

#[cfg(test)]
mod tests;
