//! `/dev/gateway`, under `serve --dev` only: the built-in gateway's failure
//! switches, so that a newcomer can try what happens when a number is not on
//! WhatsApp, a session ends, or the gateway is down or slow. Never routed
//! outside `--dev` (see `dev_routes`).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::body::JsonBody;
use crate::delivery::fake_gateway::FakeGateway;
use crate::domain::PhoneNumber;
use crate::error::{Error, Result};

/// The longest `delay_ms`: past it, every code would expire waiting.
const MAX_DELAY_MS: u64 = 60_000;

/// What to change; what is left out stays as it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayChange {
    down: Option<bool>,
    session_ended: Option<bool>,
    delay_ms: Option<u64>,
    /// A number the gateway will refuse as not on WhatsApp.
    reject: Option<String>,
    /// A number it will send to again.
    accept: Option<String>,
}

fn fake(state: &AppState) -> Result<&FakeGateway> {
    state
        .fake_gateway
        .as_ref()
        .ok_or(Error::NotFound("no such endpoint"))
}

fn digits(field: &'static str, raw: &str) -> Result<String> {
    PhoneNumber::parse(raw, None)
        .map(|phone| phone.gateway_digits().to_owned())
        .map_err(|_| {
            Error::InvalidRequest(format!(
                "`{field}` must be a valid international number, with `+` and the calling code (+59169657008)"
            ))
        })
}

pub async fn show(state: web::Data<AppState>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(fake(&state)?.switches()))
}

pub async fn change(state: web::Data<AppState>, body: JsonBody<GatewayChange>) -> Result<HttpResponse> {
    let fake = fake(&state)?;
    let change = body.into_inner();
    if change.delay_ms.is_some_and(|ms| ms > MAX_DELAY_MS) {
        return Err(Error::InvalidRequest(format!(
            "`delay_ms` must be 0 to {MAX_DELAY_MS}; past that every code would expire waiting"
        )));
    }
    let reject = change
        .reject
        .as_deref()
        .map(|raw| digits("reject", raw))
        .transpose()?;
    let accept = change
        .accept
        .as_deref()
        .map(|raw| digits("accept", raw))
        .transpose()?;
    if let Some(down) = change.down {
        fake.set_down(down);
    }
    if let Some(ended) = change.session_ended {
        fake.set_sessions_ended(ended);
    }
    if let Some(ms) = change.delay_ms {
        fake.set_delay(Duration::from_millis(ms));
    }
    if let Some(number) = reject {
        fake.reject_number(&number);
    }
    if let Some(number) = accept {
        fake.accept_number(&number);
    }
    Ok(HttpResponse::Ok().json(fake.switches()))
}

pub async fn reset(state: web::Data<AppState>) -> Result<HttpResponse> {
    let fake = fake(&state)?;
    fake.reset_switches();
    Ok(HttpResponse::Ok().json(fake.switches()))
}
