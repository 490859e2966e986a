//! The re-linking page and the QR code image, behind the admin key (see `admin`).
//!
//! The page carries the current QR code in itself, as a `data:` URL, and
//! reloads itself to refresh it. A script fetching the image instead would
//! break for an operator who opened `http://admin:KEY@host/...`: `fetch()`
//! refuses a URL with credentials in it, and every relative URL of that page
//! has them. A reload goes wherever the page came from, however it was
//! authenticated (credentials in the address, a Basic prompt, or an
//! `X-Admin-Key` header added by a proxy).

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use base64::Engine;
use rand::rngs::SysRng;
use rand::{RngExt, rand_core::UnwrapErr};

use super::AppState;
use super::admin::sender;
use super::errors::Problem;
use crate::delivery::Sender;
use crate::error::{Error, Result};
use crate::http::responses::AdminAuth;

/// How often the page reloads, for a fresh QR code (the gateway's expire).
const REFRESH_SECONDS: u32 = 15;

/// Neither the page nor an image from the gateway may be framed, and an image
/// opened on its own (an SVG can hold scripts) runs nothing.
const IMAGE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// A page that shows the QR code to scan with WhatsApp to re-link the key's
/// session.
///
/// Refreshed every 15 s, with a button to resume the key. The QR code is in
/// the page itself, so the page works however the admin key is given: as
/// Basic credentials (in the address or from the browser's prompt) or as the
/// `X-Admin-Key` header. When the gateway gives no QR code, the page says why.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "An HTML page", content_type = "text/html", body = String),
        (status = 404, description = "`not_found`", body = Problem),
        AdminAuth,
    ),
    security(("admin_key" = []))
)]
#[get("/senders/{name}/qr")]
pub async fn qr_page(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let sender = sender(&state, &name)?;
    let key_state = state
        .delivery
        .senders()
        .statuses()
        .await?
        .into_iter()
        .find(|s| s.name == sender.name)
        .map_or("unknown", |s| s.state.as_str());
    let (image, status) = match fetch(&state, sender).await {
        Ok((bytes, media_type)) => {
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            let image = format!(
                r#"<img id="qr" alt="QR code for {name}" src="data:{media_type};base64,{data}">"#,
                name = sender.name
            );
            let at = chrono::Utc::now().format("%H:%M:%S UTC");
            (
                image,
                format!("QR code of {at}; the next one in {REFRESH_SECONDS} s."),
            )
        }
        Err(e) => (String::new(), format!("No QR code: {}", escape(&e.to_string()))),
    };
    let nonce = nonce();
    let page = QR_PAGE
        .replace("{nonce}", &nonce)
        .replace("{image}", &image)
        .replace("{status}", &status)
        .replace("{state}", key_state)
        .replace("{refresh_ms}", &(REFRESH_SECONDS * 1000).to_string())
        .replace("{name}", &sender.name);
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(page))
}

/// The QR code image itself, from the gateway.
///
/// The gateway's `getQrStaticSession`, for the key's container token. Usually a
/// PNG; the gateway may give another image type (such as SVG), which is served
/// as it is, under `Content-Security-Policy: sandbox`.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The key's name, e.g. `sender-1`")),
    responses(
        (status = 200, description = "The QR code: a PNG, or another image type when the gateway gives one",
            content(
                (inline(QrImage) = "image/png"),
                (inline(QrImage) = "image/*"),
            )),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 503, description = "`qr_unavailable`: no container token for this key, or the gateway did not give a QR code",
            body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        AdminAuth,
    ),
    security(("admin_key" = []))
)]
#[get("/senders/{name}/qr.png")]
pub async fn qr_image(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let sender = sender(&state, &name)?;
    let (image, media_type) = fetch(&state, sender).await?;
    Ok(HttpResponse::Ok()
        .content_type(media_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, IMAGE_POLICY))
        .body(image))
}

/// The image's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct QrImage(#[allow(dead_code)] Vec<u8>);

async fn fetch(state: &AppState, sender: &Sender) -> Result<(Vec<u8>, &'static str)> {
    let token = sender.container_token.as_ref().ok_or_else(|| {
        Error::QrUnavailable(
            "no container token is configured for this key (WACONECTA_CONTAINER_TOKENS)".into(),
        )
    })?;
    state
        .delivery
        .gateway()
        .qr_code(&sender.key, token)
        .await
        .map_err(Error::QrUnavailable)
}

/// 128 random bits, new for every page, so that only the page's own script and style run.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    UnwrapErr(SysRng).fill(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The gateway's error messages end up in the page.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const QR_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Re-link {name}</title>
<link rel="icon" href="data:,">
<style nonce="{nonce}">
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #qr { width: 20rem; height: 20rem; image-rendering: pixelated; border: 1px solid #ccc; }
  #status { color: #555; }
</style>
</head>
<body>
<h1>Re-link {name}</h1>
<p>State of the key: <strong id="state">{state}</strong></p>
<ol>
  <li>On the phone of this WhatsApp session, open WhatsApp, then <em>Linked devices</em>, <em>Link a device</em>.</li>
  <li>Scan the code below. It is refreshed every 15 seconds.</li>
  <li>Once linked, press <em>Resume</em> to put the key back in service.</li>
</ol>
{image}
<p id="status">{status}</p>
<button id="resume" type="button">Resume {name}</button>
<script nonce="{nonce}">
  const status = document.getElementById("status");
  const qr = document.getElementById("qr");
  const fail = (what) => { status.textContent = what; status.dataset.error = "true"; };
  window.addEventListener("error", (e) => fail("Error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => fail("Error: " + e.reason));
  if (qr) {
    const shown = () => { qr.dataset.naturalSize = qr.naturalWidth + "x" + qr.naturalHeight; };
    if (qr.complete && qr.naturalWidth) shown(); else qr.addEventListener("load", shown);
    qr.addEventListener("error", () => fail("The QR code could not be shown (an image the browser cannot read)."));
  }
  // fetch() refuses a URL with credentials in it, which the page's own
  // address may have; the browser sends them again from its cache.
  const here = (path) => {
    const url = new URL(path, location.href);
    url.username = "";
    url.password = "";
    return url;
  };
  document.getElementById("resume").addEventListener("click", async () => {
    try {
      const answer = await fetch(here("resume"), { method: "POST", credentials: "same-origin" });
      if (answer.ok) {
        status.textContent = "{name} is back in service.";
        document.getElementById("state").textContent = (await answer.json())?.state ?? "ok";
      } else {
        const problem = await answer.json().catch(() => ({}));
        fail("Resume failed: " + (problem.detail || answer.status));
      }
    } catch (e) {
      fail("Resume failed: " + e.message);
    }
  });
  setTimeout(() => location.reload(), {refresh_ms});
</script>
</body>
</html>
"#;
