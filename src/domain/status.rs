use serde::Serialize;
use utoipa::ToSchema;

use crate::text_enum;

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    Pending,
    Approved,
    Canceled,
    Expired,
    MaxAttemptsReached,
    /// The code could not be delivered.
    Failed,
}

text_enum!(VerificationStatus {
    Pending = "pending",
    Approved = "approved",
    Canceled = "canceled",
    Expired = "expired",
    MaxAttemptsReached = "max_attempts_reached",
    Failed = "failed",
});

/// Where the message carrying the current code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Failed,
}

/// A message's state in the outbox (`outbox_messages.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Queued,
    Sent,
    Failed,
    /// A resend replaced its code before it went out.
    Superseded,
}

text_enum!(MessageStatus {
    Queued = "queued",
    Sent = "sent",
    Failed = "failed",
    Superseded = "superseded",
});

/// Why a message could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryError {
    PhoneRejected,
    SessionEnded,
    Unauthorized,
    ExpiredBeforeSend,
    /// The verification stopped being pending (canceled, locked) before its message went out.
    Canceled,
}

text_enum!(DeliveryError {
    PhoneRejected = "phone_rejected",
    SessionEnded = "session_ended",
    Unauthorized = "unauthorized",
    ExpiredBeforeSend = "expired_before_send",
    Canceled = "canceled",
});

/// Why the outbox gave a message up (`outbox_messages.failure`): the API's
/// reasons, and one it does not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    PhoneRejected,
    SessionEnded,
    Unauthorized,
    ExpiredBeforeSend,
    Canceled,
    /// Sealed under a pepper no longer configured.
    Unreadable,
}

text_enum!(FailureReason {
    PhoneRejected = "phone_rejected",
    SessionEnded = "session_ended",
    Unauthorized = "unauthorized",
    ExpiredBeforeSend = "expired_before_send",
    Canceled = "canceled",
    Unreadable = "unreadable",
});

impl FailureReason {
    /// What `delivery_error` says; an unreadable message says nothing more.
    pub fn delivery_error(self) -> Option<DeliveryError> {
        match self {
            Self::PhoneRejected => Some(DeliveryError::PhoneRejected),
            Self::SessionEnded => Some(DeliveryError::SessionEnded),
            Self::Unauthorized => Some(DeliveryError::Unauthorized),
            Self::ExpiredBeforeSend => Some(DeliveryError::ExpiredBeforeSend),
            Self::Canceled => Some(DeliveryError::Canceled),
            Self::Unreadable => None,
        }
    }
}

/// A gateway key's stored state (`senders.state`); resting after a `429` is a
/// time (`resting_until`), not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Ok,
    /// `Session has ended`: the WhatsApp session needs re-linking.
    SessionEnded,
    /// `401`: the key is wrong or revoked.
    Unauthorized,
}

text_enum!(KeyState {
    Ok = "ok",
    SessionEnded = "session_ended",
    Unauthorized = "unauthorized",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_value_reads_back_and_nothing_else_does() {
        for status in VerificationStatus::ALL {
            assert_eq!(status.as_str().parse::<VerificationStatus>(), Ok(*status));
        }
        for reason in FailureReason::ALL {
            assert_eq!(reason.as_str().parse::<FailureReason>(), Ok(*reason));
            if let Some(api) = reason.delivery_error() {
                assert_eq!(api.as_str(), reason.as_str());
            }
        }
        assert!("pendin".parse::<VerificationStatus>().is_err());
        assert!("".parse::<MessageStatus>().is_err());
        assert!("backing_off".parse::<KeyState>().is_err());
    }
}
