use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{
    Channel, DeliveryError, DeliveryStatus, FailureReason, MessageStatus, VerificationStatus,
};
use crate::store::verifications::ViewRow;

/// A verification: one phone number, one purpose, one code at a time.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01",
    "phone": "+59169657008",
    "purpose": "signup",
    "locale": "es",
    "status": "pending",
    "delivery_status": "sent",
    "attempts_remaining": 5,
    "sends": 1,
    "expires_at": "2026-11-21T10:52:00Z",
    "resend_available_at": "2026-11-21T10:42:30Z",
    "created_at": "2026-11-21T10:42:00Z",
    "verified_at": null
}))]
pub struct Verification {
    pub id: Uuid,
    /// E.164.
    pub phone: String,
    pub purpose: String,
    pub locale: String,
    pub status: VerificationStatus,
    pub delivery_status: DeliveryStatus,
    /// Why delivery failed; present only when `delivery_status` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_error: Option<DeliveryError>,
    /// Wrong codes still allowed.
    pub attempts_remaining: u32,
    /// How many codes have been sent for this verification.
    pub sends: u32,
    pub expires_at: DateTime<Utc>,
    /// When a resend is allowed; null when no resend is possible
    /// (not pending, or the sends per verification are used up).
    pub resend_available_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// What only `/twilio` shows: when it last changed,
    #[serde(skip)]
    pub updated_at: DateTime<Utc>,
    /// the channel asked for there (if it was),
    #[serde(skip)]
    pub channel: Option<Channel>,
    /// and each send, resends included: its message's id, and when it went
    /// out (or was queued, if it has not yet).
    #[serde(skip)]
    pub send_attempts: Vec<(Uuid, DateTime<Utc>)>,
}

impl Verification {
    /// What the API shows of a stored verification and its current message.
    pub fn from_row(row: ViewRow, resend_cooldown_seconds: u32, max_sends: u32) -> Self {
        let delivery_status = match (row.message_status, row.message_leased) {
            (Some(MessageStatus::Sent), _) => DeliveryStatus::Sent,
            (Some(MessageStatus::Failed), _) => DeliveryStatus::Failed,
            (Some(MessageStatus::Queued), true) => DeliveryStatus::Sending,
            _ => DeliveryStatus::Queued,
        };
        let delivery_error = (delivery_status == DeliveryStatus::Failed)
            .then(|| row.message_failure.and_then(FailureReason::delivery_error))
            .flatten();
        let sends = u32::try_from(row.sends).unwrap_or(0);
        let resend_available_at = (row.status == VerificationStatus::Pending && sends < max_sends)
            .then(|| row.last_sent_at + chrono::Duration::seconds(resend_cooldown_seconds.into()));
        Verification {
            id: row.id.0,
            phone: row.phone,
            purpose: row.purpose,
            locale: row.locale,
            status: row.status,
            delivery_status,
            delivery_error,
            attempts_remaining: u32::try_from(row.max_attempts - row.failed_attempts).unwrap_or(0),
            sends,
            expires_at: row.expires_at,
            resend_available_at,
            created_at: row.created_at,
            verified_at: row.verified_at,
            updated_at: row.updated_at,
            channel: row.channel,
            send_attempts: row.send_ids.into_iter().zip(row.send_times).collect(),
        }
    }
}
