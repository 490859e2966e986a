//! Operators' endpoints, behind `X-Admin-Key` (or HTTP Basic credentials with
//! the admin key as password, so that a browser can open the QR page). All of
//! them answer 404 when `OTP_ADMIN_KEY` is not set.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::AppState;
use super::errors::Problem;
use crate::delivery::{Sender, SenderStatus, outbox};
use crate::error::{Error, Result};
use crate::otp::limits;

pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

pub async fn require_admin_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("application state missing")))?;
    let Some(expected) = &state.admin_key else {
        return Err(Error::NotFound("no such endpoint").into());
    };
    let given = req
        .headers()
        .get(ADMIN_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| basic_password(&req));
    // Digests compared, so the time taken says nothing about the key.
    let matches = given.is_some_and(|given| {
        Sha256::digest(given.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes())
    });
    // The connection's address, not a forwarding header a guesser could vary.
    let failures = limits::admin_failures(req.peer_addr().map(|a| a.ip()));
    // While the window is full even the right key waits: else guessing goes on.
    failures.check(&state.pool).await?;
    if !matches {
        failures.take(&state.pool).await?;
        return Err(Error::AdminUnauthorized.into());
    }
    next.call(req).await
}

/// A browser sends `Origin` (or at least `Referer`) with a cross-site POST: a
/// page elsewhere must not make an operator's browser resume a key. Callers
/// that send neither (curl, scripts) are not browsers carrying someone's
/// credentials unasked.
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

fn sender<'a>(state: &'a AppState, name: &str) -> Result<&'a Sender> {
    state
        .delivery
        .senders()
        .by_name(name)
        .ok_or(Error::NotFound("no gateway key of that name"))
}

/// Each gateway key's state, messages sent in the last minute, last error, and the queue depth.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "The keys (never the keys themselves)", body = SendersReport),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong admin credentials from this address in the last minute", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 404, description = "`not_found`: admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_key" = []))
)]
#[get("/senders")]
pub async fn list_senders(state: web::Data<AppState>) -> Result<HttpResponse> {
    let senders = state.delivery.senders();
    Ok(HttpResponse::Ok().json(SendersReport {
        queue_depth: outbox::depth(&state.pool).await?,
        rate_per_minute: senders.rate_per_minute(),
        senders: senders.statuses().await?,
    }))
}

/// Puts a re-linked key back in service.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "The key, back in service", body = SenderStatus),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong admin credentials from this address in the last minute", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 403, description = "`cross_origin`: a browser request from a page of another origin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_key" = []))
)]
#[post("/senders/{name}/resume")]
pub async fn resume_sender(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse> {
    if !same_origin(&request) {
        return Err(Error::CrossOrigin);
    }
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

/// A page that shows the QR code to scan with WhatsApp to re-link the key's
/// session, refreshed every 15 s, with a button to resume the key.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "An HTML page", content_type = "text/html", body = String),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong admin credentials from this address in the last minute", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("admin_key" = []))
)]
#[get("/senders/{name}/qr")]
pub async fn qr_page(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let sender = sender(&state, &name)?;
    let page = QR_PAGE.replace("{name}", &sender.name);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(page))
}

/// The QR code image itself, fetched from the gateway (`getQrStaticSession`).
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "The QR code", content_type = "image/png", body = Vec<u8>),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many wrong admin credentials from this address in the last minute", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`qr_unavailable`: no container token for this key, or the gateway did not give a QR code",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("admin_key" = []))
)]
#[get("/senders/{name}/qr.png")]
pub async fn qr_image(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let sender = sender(&state, &name)?;
    let token = sender.container_token.as_ref().ok_or_else(|| {
        Error::QrUnavailable(
            "no container token is configured for this key (WACONECTA_CONTAINER_TOKENS)".into(),
        )
    })?;
    let (image, media_type) = state
        .delivery
        .gateway()
        .qr_code(&sender.key, token)
        .await
        .map_err(Error::QrUnavailable)?;
    Ok(HttpResponse::Ok()
        .content_type(media_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(image))
}

const QR_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Re-link {name}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #qr { width: 20rem; height: 20rem; image-rendering: pixelated; border: 1px solid #ccc; }
  #status { color: #555; }
</style>
</head>
<body>
<h1>Re-link {name}</h1>
<ol>
  <li>On the phone of this WhatsApp session, open WhatsApp, then <em>Linked devices</em>, <em>Link a device</em>.</li>
  <li>Scan the code below. It is refreshed every 15 seconds.</li>
  <li>Once linked, press <em>Resume</em> to put the key back in service.</li>
</ol>
<img id="qr" alt="QR code for {name}">
<p id="status">Loading the QR code...</p>
<button id="resume">Resume {name}</button>
<script>
  const status = document.getElementById("status");
  async function refresh() {
    const answer = await fetch("qr.png", { cache: "no-store", credentials: "same-origin" });
    if (answer.ok) {
      document.getElementById("qr").src = URL.createObjectURL(await answer.blob());
      status.textContent = "Updated " + new Date().toLocaleTimeString();
    } else {
      const problem = await answer.json().catch(() => ({}));
      status.textContent = "No QR code: " + (problem.detail || answer.status);
    }
  }
  document.getElementById("resume").onclick = async () => {
    const answer = await fetch("resume", { method: "POST", credentials: "same-origin" });
    status.textContent = answer.ok ? "{name} is back in service." : "Resume failed: " + answer.status;
  };
  refresh();
  setInterval(refresh, 15000);
</script>
</body>
</html>
"#;
