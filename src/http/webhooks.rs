//! `/webhooks/deliveries`: a client's own webhook deliveries, and retrying one.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use super::errors::Problem;
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::http::responses::ClientErrors;
use crate::webhooks::deliveries::{STATUSES, WebhookDelivery};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed` (given up); all when absent.
    pub status: Option<String>,
    /// At most this many, newest first (1 to 500; default 100).
    pub limit: Option<u32>,
}

/// List webhook deliveries.
///
/// The calling client's own events, newest first, with their attempts, the
/// last answer and the next attempt.
#[utoipa::path(
    tag = "webhooks",
    params(DeliveryQuery),
    responses(
        (status = 200, description = "The deliveries", body = Vec<WebhookDelivery>),
        (status = 400, description = "`invalid_request`: an unknown status or a limit out of range", body = Problem),
        ClientErrors,
    ),
    security(("api_key" = []))
)]
#[get("/deliveries")]
pub async fn list_deliveries(
    client: Client,
    state: web::Data<AppState>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse> {
    let status = query.status.as_deref();
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(Error::InvalidRequest(
            "`status` is one of pending, delivered, failed".into(),
        ));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::InvalidRequest("`limit` is 1 to 500".into()));
    }
    let found = state.webhooks.deliveries(client.id, status, limit).await?;
    Ok(HttpResponse::Ok().json(found))
}

/// Retry a webhook delivery.
///
/// Tries the event again now, with the whole retry schedule ahead (one that
/// was given up, or delivered, is sent once more with the same `webhook-id`,
/// to the client's current webhook URL).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "It will be tried at once"),
        (status = 400, description = "`invalid_request`: the id is not a UUID", body = Problem),
        (status = 404, description = "`not_found`: no such delivery of this client, it is being sent this moment, or the client has no enabled webhook URL to send it to", body = Problem),
        ClientErrors,
    ),
    security(("api_key" = []))
)]
#[post("/deliveries/{id}/retry")]
pub async fn retry_delivery(
    client: Client,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    if state.webhooks.retry(client.id, id.into_inner()).await? {
        Ok(HttpResponse::Accepted().finish())
    } else {
        Err(Error::NotFound(
            "no such delivery, it is being sent right now, or there is no enabled webhook URL to send it to (an operator sets one)",
        ))
    }
}
