use serde::Serialize;
use utoipa::ToSchema;

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

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
            Self::MaxAttemptsReached => "max_attempts_reached",
            Self::Failed => "failed",
        }
    }

    pub fn from_db(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "canceled" => Self::Canceled,
            "expired" => Self::Expired,
            "max_attempts_reached" => Self::MaxAttemptsReached,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// Where the message carrying the current code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Failed,
}

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

impl DeliveryError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PhoneRejected => "phone_rejected",
            Self::SessionEnded => "session_ended",
            Self::Unauthorized => "unauthorized",
            Self::ExpiredBeforeSend => "expired_before_send",
            Self::Canceled => "canceled",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        [
            Self::PhoneRejected,
            Self::SessionEnded,
            Self::Unauthorized,
            Self::ExpiredBeforeSend,
            Self::Canceled,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}
