//! Operators' endpoints, behind `X-Admin-Key` (or HTTP Basic credentials with
//! the admin key as password, so that a browser can open the QR page). All of
//! them answer 404 when `OTP_ADMIN_KEY` is not set.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::errors::Problem;
use crate::delivery::{Sender, SenderStatus};
use crate::error::{Error, Result};
use crate::http::responses::{AdminAuth, AdminOff, CrossOrigin};

pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

pub async fn require_admin_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("application state missing")))?;
    let given = req
        .headers()
        .get(ADMIN_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| basic_password(&req));
    // The connection's address, not a forwarding header a guesser could vary.
    let source = req.peer_addr().map(|a| a.ip());
    state.access.admin(given.as_deref(), source).await?;
    next.call(req).await
}

/// Refuses a state-changing request that a page of another origin made an
/// operator's browser send, with the credentials it keeps (see `same_origin`).
pub(super) fn require_same_origin(req: &HttpRequest) -> Result<()> {
    if same_origin(req) {
        Ok(())
    } else {
        Err(Error::CrossOrigin)
    }
}

/// A browser sends `Origin` (or at least `Referer`) with a cross-site POST: a
/// page elsewhere must not make an operator's browser resume a key or change a
/// client. Callers that send neither (curl, scripts) are not browsers carrying
/// someone's credentials unasked.
fn same_origin(req: &HttpRequest) -> bool {
    let headers = req.headers();
    let Some(source) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let source = source.to_str().ok().and_then(|s| url::Url::parse(s).ok());
    match (source, host) {
        (Some(url), Some(host)) => {
            let authority = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => return false,
            };
            authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

fn basic_password(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, password)| password.to_owned())
}

/// The gateway keys and the queue they draw from.
#[derive(Serialize, ToSchema)]
pub struct SendersReport {
    /// Messages waiting to be sent; every key draws from this one queue.
    pub queue_depth: i64,
    /// Messages per minute allowed on each key (`WACONECTA_RATE_PER_MINUTE`).
    pub rate_per_minute: u32,
    pub senders: Vec<SenderStatus>,
}

pub(super) fn sender<'a>(state: &'a AppState, name: &str) -> Result<&'a Sender> {
    state
        .delivery
        .senders()
        .by_name(name)
        .ok_or(Error::NotFound("no gateway key of that name"))
}

/// Each gateway key's state, messages sent in the last minute, last error, and the queue depth.
///
/// Keys are named `sender-1`, `sender-2`, ... in the order of
/// `WACONECTA_API_KEYS`; the keys themselves never appear. Every replica
/// reports the same, shared state.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "The keys (never the keys themselves)", body = SendersReport),
        AdminAuth,
        AdminOff,
    ),
    security(("admin_key" = []))
)]
#[get("/senders")]
pub async fn list_senders(state: web::Data<AppState>) -> Result<HttpResponse> {
    let senders = state.delivery.senders();
    Ok(HttpResponse::Ok().json(SendersReport {
        queue_depth: state.delivery.queue_depth().await?,
        rate_per_minute: senders.rate_per_minute(),
        senders: senders.statuses().await?,
    }))
}

/// Puts a re-linked key back in service.
///
/// After its WhatsApp session was linked again (the QR page): the key takes
/// messages again, on every replica (a rest it was taking after a `429` or a
/// `5xx` ends too).
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "The key, back in service", body = SenderStatus),
        (status = 404, description = "`not_found`", body = Problem),
        AdminAuth,
        CrossOrigin,
    ),
    security(("admin_key" = []))
)]
#[post("/senders/{name}/resume")]
pub async fn resume_sender(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let sender = sender(&state, &name)?;
    state.delivery.senders().resume(sender).await?;
    tracing::warn!(
        sender = sender.name.as_str(),
        "gateway key resumed by an operator"
    );
    state.delivery.wake();
    let status = state
        .delivery
        .senders()
        .statuses()
        .await?
        .into_iter()
        .find(|s| s.name == sender.name);
    Ok(HttpResponse::Ok().json(status))
}
