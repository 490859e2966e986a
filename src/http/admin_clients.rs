//! `/admin/clients`: the operators' API for clients, as the `clients` command
//! of the CLI does it. Keys are shown once, when made; never afterwards.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use secrecy::ExposeSecret;

use super::AppState;
use super::admin::require_same_origin;
use super::errors::Problem;
use crate::error::Result;

mod bodies;

use super::admin_webhooks::{self, WebhookChange};
use crate::http::responses::{AdminChangeErrors, AdminChangeGuard, AdminErrors, AdminGuard};
use bodies::{ChangedClient, ClientReport, CreatedClient, NewClient, RotatedKey, SettingsPatch};

/// Every client, with its own and its effective settings.
///
/// Active and revoked clients, by name; never their keys. `settings` has only
/// what each client set itself, `effective` every setting as its requests get it.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "The clients, by name", body = Vec<ClientReport>),
        AdminErrors,
    ),
    security(("admin_key" = []))
)]
#[get("/clients")]
pub async fn list_clients(state: web::Data<AppState>) -> Result<HttpResponse> {
    let mut clients: Vec<ClientReport> = state.clients.list().await?.into_iter().map(Into::into).collect();
    for client in &mut clients {
        client.webhook = admin_webhooks::report(&state, &client.name).await?;
    }
    Ok(HttpResponse::Ok().json(clients))
}

/// Create a client, and its API key.
///
/// The body is the client's name and any settings of its own (what it leaves
/// out is the service's default). The answer carries the client's key in
/// `key`: shown this once, since only its hash is kept. A refused setting
/// creates no client.
#[utoipa::path(
    tag = "admin",
    request_body = NewClient,
    responses(
        (status = 201, description = "The client, with its key (shown this once)", body = CreatedClient),
        (status = 400, description = "`invalid_request`: a bad name, a malformed body or unknown field, or a refused setting (named in `field`)", body = Problem),
        (status = 409, description = "`client_exists`: the name is taken", body = Problem),
        AdminChangeErrors,
    ),
    security(("admin_key" = []))
)]
#[post("/clients")]
pub async fn create_client(
    request: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let body: NewClient = super::object_body(body.into_inner())?;
    let name = body.name.clone();
    let (client, key) = state.clients.create(&name, body.settings_change()).await?;
    tracing::info!(client = name.as_str(), "client created by an operator");
    Ok(HttpResponse::Created().json(CreatedClient {
        client: client.into(),
        key: key.expose_secret().to_owned(),
    }))
}

/// A client, with its own and its effective settings.
///
/// `settings` has only what the client set itself (a field it leaves to the
/// default is left out); `effective` has every setting, its own or the
/// service's. Never the key.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    responses(
        (status = 200, description = "The client", body = ClientReport),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminGuard,
    ),
    security(("admin_key" = []))
)]
#[get("/clients/{name}")]
pub async fn get_client(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let mut client: ClientReport = state.clients.show(&name).await?.into();
    client.webhook = admin_webhooks::report(&state, &name).await?;
    Ok(HttpResponse::Ok().json(client))
}

/// Change a client's settings.
///
/// A JSON merge patch: a field left out is kept, `null` puts it back to the
/// service's default, a value sets it. Every field is checked before any is
/// written, and all are written at once: a refused field (named in the
/// problem's `field`) changes nothing. Running services use the new settings
/// from the client's next request, on every replica. `webhook_url` sets
/// where the client's webhooks go (checked with the rest; its first one
/// makes a signing secret, answered as `webhook_secret` this once), `null`
/// stops them.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    request_body = SettingsPatch,
    responses(
        (status = 200, description = "The client, changed (with `webhook_secret` when the change made one)", body = ChangedClient),
        (status = 400, description = "`invalid_request`: a malformed body or unknown field, or a refused setting (named in `field`); nothing was changed", body = Problem),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[patch("/clients/{name}")]
pub async fn change_client(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let mut patch: SettingsPatch = super::object_body(body.into_inner())?;
    let webhook = WebhookChange(patch.webhook_url.take());
    // Every field is checked before anything is written.
    webhook.check(&state).await?;
    let mut client: ClientReport = state.clients.change(&name, patch.settings_change()).await?.into();
    let webhook_secret = webhook.apply(&state, &name).await?;
    client.webhook = admin_webhooks::report(&state, &name).await?;
    tracing::info!(client = name.as_str(), "client settings changed by an operator");
    Ok(HttpResponse::Ok().json(ChangedClient {
        client,
        webhook_secret: webhook_secret.map(|s| s.expose_secret().to_owned()),
    }))
}

/// Give a client a new API key.
///
/// The new key is in the answer, shown this once; the old key stops working at
/// once (its calls get `401`). A revoked client is active again, with the new key.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    responses(
        (status = 200, description = "The new key (shown this once)", body = RotatedKey),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[post("/clients/{name}/rotate-key")]
pub async fn rotate_client_key(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let key = state.clients.rotate_key(&name).await?;
    tracing::warn!(
        client = name.as_str(),
        "client key rotated by an operator; the old key no longer works"
    );
    Ok(HttpResponse::Ok().json(RotatedKey {
        name: name.into_inner(),
        key: key.expose_secret().to_owned(),
    }))
}

/// What went with a removed client.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RemovedClient {
    pub name: String,
    /// Its verifications, whatever their state.
    pub verifications: i64,
    /// Messages that were still waiting to be sent, and never will be.
    pub queued_messages: i64,
    pub test_numbers: i64,
    /// Webhook events not delivered yet, and never delivered now.
    pub pending_webhook_events: i64,
}

/// Remove a client, and everything that is its.
///
/// Its key stops working at once on every replica (`401`). Its verifications
/// go (a code still pending can no longer be checked) with their queued
/// messages (never sent now), and so do its test numbers, its webhook
/// endpoint and undelivered webhook events, its stats and its fraud flags.
/// Cannot be undone: to stop a client and keep its history, rotate its key
/// instead, or revoke it with `otp-service clients revoke`. Under `serve --dev`,
/// removing `dev` ends the printed key; the next start makes a new one.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    responses(
        (status = 200, description = "Removed, with what went with it", body = RemovedClient),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[delete("/clients/{name}")]
pub async fn remove_client(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let removed = state.clients.remove(&name).await?;
    tracing::warn!(
        client = name.as_str(),
        verifications = removed.verifications,
        queued_messages = removed.queued_messages,
        "client removed by an operator, with its verifications"
    );
    Ok(HttpResponse::Ok().json(RemovedClient {
        name: name.into_inner(),
        verifications: removed.verifications,
        queued_messages: removed.queued_messages,
        test_numbers: removed.test_numbers,
        pending_webhook_events: removed.pending_webhook_events,
    }))
}
