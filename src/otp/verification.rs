use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{DeliveryError, DeliveryStatus, VerificationStatus};

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
}

/// A verification as the database has it, with its current message.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VerificationRow {
    pub id: Uuid,
    pub phone: String,
    pub purpose: String,
    pub locale: String,
    /// Already `expired` when a pending code's time is up, `max_attempts_reached`
    /// when its attempts are used up.
    pub status: String,
    pub failed_attempts: i32,
    pub max_attempts: i32,
    pub sends: i32,
    pub last_sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub message_status: Option<String>,
    pub message_leased: bool,
    pub message_error: Option<String>,
}

/// The select behind every verification the API shows; callers add the where clause.
pub(crate) const SELECT_VERIFICATION: &str = "
select v.id, v.phone, v.purpose, v.locale,
       case
           when v.status = 'pending' and v.expires_at <= now() then 'expired'
           when v.status = 'pending' and v.failed_attempts >= v.max_attempts then 'max_attempts_reached'
           else v.status
       end as status,
       v.failed_attempts, v.max_attempts, v.sends, v.last_sent_at, v.expires_at, v.created_at, v.verified_at,
       m.status as message_status,
       coalesce(m.leased_until > now(), false) as message_leased,
       m.failure as message_error
from verifications v
left join lateral (
    select status, leased_until, failure
    from outbox_messages
    where verification_id = v.id and status <> 'superseded'
    order by created_at desc
    limit 1
) m on true";

impl VerificationRow {
    pub fn into_view(self, resend_cooldown_seconds: u32, max_sends: u32) -> Verification {
        let status = self.status.parse().unwrap_or(VerificationStatus::Pending);
        let delivery_status = match (self.message_status.as_deref(), self.message_leased) {
            (Some("sent"), _) => DeliveryStatus::Sent,
            (Some("failed"), _) => DeliveryStatus::Failed,
            (Some("queued"), true) => DeliveryStatus::Sending,
            _ => DeliveryStatus::Queued,
        };
        let delivery_error = (delivery_status == DeliveryStatus::Failed)
            .then(|| {
                self.message_error
                    .as_deref()
                    .and_then(|e| e.parse::<DeliveryError>().ok())
            })
            .flatten();
        let sends = u32::try_from(self.sends).unwrap_or(0);
        let resend_available_at = (status == VerificationStatus::Pending && sends < max_sends)
            .then(|| self.last_sent_at + chrono::Duration::seconds(resend_cooldown_seconds.into()));
        Verification {
            id: self.id,
            phone: self.phone,
            purpose: self.purpose,
            locale: self.locale,
            status,
            delivery_status,
            delivery_error,
            attempts_remaining: u32::try_from(self.max_attempts - self.failed_attempts).unwrap_or(0),
            sends,
            expires_at: self.expires_at,
            resend_available_at,
            created_at: self.created_at,
            verified_at: self.verified_at,
        }
    }
}
