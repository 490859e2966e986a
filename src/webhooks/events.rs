//! What a webhook says: `{"type", "timestamp", "data"}`, the data being the
//! verification as `GET /otp/{id}` shows it (never its code).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::otp::Verification;

/// Decided with the stats' outcomes, in `domain::transitions`.
pub use crate::domain::EventType;

/// The body of every webhook request, signed as Standard Webhooks says
/// (headers `webhook-id`, `webhook-timestamp`, `webhook-signature`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened (the retries of one event keep it).
    pub timestamp: DateTime<Utc>,
    /// Which of the verification's sends the event tells of, from 1 (the
    /// first message; a resend sends the same code as a new message): on
    /// `verification.sent` and `verification.delivery_failed` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, example = 2)]
    pub send: Option<u32>,
    /// The verification as it stood when the event was first sent; its
    /// `status` may already be later than the event (an `approved` that came
    /// before a slow `sent` went out, say): the `type` says what happened.
    pub data: Verification,
}
