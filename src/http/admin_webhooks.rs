//! A client's webhook in the admin API: shown with the client, set or
//! cleared by `PATCH /admin/clients/{name}` (`webhook_url`), and its signing
//! secret rotated. A secret is in the answer that made it, never again.

use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::admin::require_same_origin;
use super::errors::Problem;
use crate::error::Result;
use crate::http::responses::AdminChangeGuard;
use crate::webhooks::EndpointView;

/// A client's webhook endpoint (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReport {
    pub url: String,
    /// After a day of failed deliveries; setting `webhook_url` again enables it.
    pub disabled: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since the first failure after the last success.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation also signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
}

impl From<EndpointView> for WebhookReport {
    fn from(view: EndpointView) -> Self {
        Self {
            url: view.url,
            disabled: view.disabled_at.is_some(),
            disabled_at: view.disabled_at,
            failing_since: view.failing_since,
            previous_secret_until: view.previous_secret_until,
        }
    }
}

/// The client's webhook, for its report.
pub async fn report(state: &AppState, client: &str) -> Result<Option<WebhookReport>> {
    Ok(state.webhooks.endpoint(client).await?.map(Into::into))
}

/// What `webhook_url` in a patch asks: a URL checked before any setting is
/// written, then stored after them; `null` stops the client's webhooks.
pub struct WebhookChange(pub Option<Option<String>>);

impl WebhookChange {
    pub async fn check(&self, state: &AppState) -> Result<()> {
        if let Some(Some(url)) = &self.0 {
            state.webhooks.check_url(url).await?;
        }
        Ok(())
    }

    /// Applies it; the new secret when one was made.
    pub async fn apply(self, state: &AppState, client: &str) -> Result<Option<SecretString>> {
        match self.0 {
            Some(Some(url)) => Ok(state.webhooks.set_url(client, &url).await?),
            Some(None) => {
                state.webhooks.clear(client).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

// No `Debug`: a secret must not reach a log.
/// A client's new webhook signing secret.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "shop", "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct RotatedWebhookSecret {
    pub name: String,
    /// Shown this once; the previous secret also signs for 24 hours.
    pub webhook_secret: String,
}

/// Give a client's webhook a new signing secret.
///
/// The new secret is in the answer, shown this once. For 24 hours both sign:
/// `webhook-signature` carries two signatures, and either verifies.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    responses(
        (status = 200, description = "The new secret (shown this once)", body = RotatedWebhookSecret),
        (status = 400, description = "`invalid_request`: the client has no webhook URL (`field`: `webhook_url`)", body = Problem),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[post("/clients/{name}/rotate-webhook-secret")]
pub async fn rotate_webhook_secret(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let secret = state.webhooks.rotate_secret(&name).await?;
    tracing::warn!(
        client = name.as_str(),
        "webhook signing secret rotated by an operator"
    );
    Ok(HttpResponse::Ok().json(RotatedWebhookSecret {
        name: name.into_inner(),
        webhook_secret: secret.expose_secret().to_owned(),
    }))
}
