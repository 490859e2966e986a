//! What a webhook says: `{"type", "timestamp", "data"}`, the data being the
//! verification as `GET /otp/{id}` shows it (never its code).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::otp::Verification;

/// What happened to a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum EventType {
    /// A code went out (one event per send, resends included). For a test
    /// number, when its code was stored: nothing is sent to it.
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
}

/// The body of every webhook request, signed as Standard Webhooks says
/// (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened (the retries of one event keep it).
    pub timestamp: DateTime<Utc>,
    /// The verification as it stood when the event was first sent; its
    /// `status` may already be later than the event (an `approved` that came
    /// before a slow `sent` went out, say): the `type` says what happened.
    pub data: Verification,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventType::parse("verification.unknown"), None);
    }
}
