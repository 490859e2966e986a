//! What a client can see of its webhook deliveries, and ask to try again.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::WebhookAdmin;
use super::events::EventType;
use crate::domain::{ClientId, WebhookEventId};
use crate::store::webhook_events as store;

/// One event and how its delivery goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: Uuid,
    /// The `webhook-id` header it is sent with (the same at every retry).
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub verification_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `pending` (to be tried, or being tried), `delivered`, or `failed` (given up).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last answer, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it is tried next, while pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Which deliveries to list.
pub const STATUSES: [&str; 3] = ["pending", "delivered", "failed"];

impl WebhookAdmin {
    /// The client's latest deliveries (newest first), of one status or all.
    pub async fn deliveries(
        &self,
        client: ClientId,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, sqlx::Error> {
        let rows = store::list(self.pool(), client, status, i64::from(limit)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(WebhookDelivery {
                    id: r.id.0,
                    webhook_id: format!("msg_{}", r.id.0.simple()),
                    kind: EventType::parse(&r.kind)?,
                    verification_id: r.verification_id.0,
                    occurred_at: r.occurred_at,
                    status: r.status,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    last_status: r.last_status.and_then(|s| u16::try_from(s).ok()),
                    last_error: r.last_error,
                    next_attempt_at: r.next_attempt_at,
                    delivered_at: r.delivered_at,
                })
            })
            .collect())
    }

    /// Tries the client's event again now, with a whole schedule ahead;
    /// `false` when it has no such event or it is being sent this moment.
    pub async fn retry(&self, client: ClientId, id: Uuid) -> Result<bool, sqlx::Error> {
        store::retry(self.pool(), WebhookEventId(id), client).await
    }
}
