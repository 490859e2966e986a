//! `GET /metrics`, and the middleware that counts and times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, get, web};

use super::AppState;
use super::errors::Problem;
use crate::delivery::SenderState;
use crate::error::Error;

/// In the API server's data: whether `/metrics` has a listener of its own
/// (`OTP_METRICS_LISTEN`). The API port then answers `404` for it, so that
/// clients' names and volumes are not shown to whoever reaches the API.
#[derive(Clone, Copy)]
pub struct ServedElsewhere(pub bool);

/// Whether this server leaves `/metrics` to a listener of its own.
pub(super) fn served_elsewhere(request: &HttpRequest) -> bool {
    request
        .app_data::<ServedElsewhere>()
        .is_some_and(|elsewhere| elsewhere.0)
}

/// Counts and times each request under its route *pattern* (`/otp/{id}`),
/// never its path, so no id ends up in a label; errors raised by middleware
/// (401, the client's 429, 503) count like any answer.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // The pattern is read from the app's route map, so it is known before routing.
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if let Some(state) = state {
        let m = &state.metrics;
        m.http_requests
            .with_label_values(&[route.as_str(), method, status.as_str()])
            .inc();
        m.http_duration
            .with_label_values(&[route.as_str(), method])
            .observe(started.elapsed().as_secs_f64());
    }
    outcome
}

/// Standard methods by name, anything else as `other`: a caller inventing
/// methods must not be able to invent label values.
fn method_label(method: &Method) -> &'static str {
    [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
    ]
    .into_iter()
    .find(|(m, _)| m == method)
    .map_or("other", |(_, name)| name)
}

/// Prometheus metrics.
///
/// The text exposition format (version 0.0.4). The gauges for the outbox and
/// the gateway keys are read from the database at scrape time, so every
/// replica reports the same, shared truth. Needs no key: with
/// `OTP_METRICS_LISTEN` set it is served only on that listener (this port
/// answers `404`); without it, expose this port only to trusted networks.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "`not_found`: served on `OTP_METRICS_LISTEN`'s listener instead", body = Problem),
    ),
    security()
)]
#[get("/metrics")]
pub async fn metrics(request: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    if served_elsewhere(&request) {
        return Err(Error::NotFound("no such endpoint"));
    }
    Ok(scrape(state).await)
}

/// What `GET /metrics` answers, on whichever listener serves it.
pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics.scraped;
    // A database that does not answer within the scrape's patience leaves the
    // shared gauges at their last values and says so in `otp_database_up`.
    let outbox = state.operations.queue().await;
    m.database_up.set(i64::from(outbox.is_some()));
    if let Some(outbox) = &outbox {
        m.outbox_depth.set(outbox.depth);
        m.outbox_oldest_age.set(outbox.oldest_age);
        for (client, queued) in &outbox.by_client {
            m.client_queued.with_label_values(&[client.as_str()]).set(*queued);
        }
    }
    // After a failed read, the keys' read would only wait out the same outage.
    let statuses = match outbox {
        Some(_) => state.operations.senders().await,
        None => None,
    };
    if let Some(statuses) = statuses {
        for status in statuses {
            for s in SenderState::ALL {
                m.sender_state
                    .with_label_values(&[status.name.as_str(), s.as_str()])
                    .set(i64::from(status.state == s));
            }
            m.sender_sent_last_minute
                .with_label_values(&[status.name.as_str()])
                .set(i64::from(status.sent_last_minute));
        }
    }
    let figures = state.operations.connections();
    let connections = &m.db_connections;
    connections.with_label_values(&["in_use"]).set(figures.in_use);
    connections.with_label_values(&["idle"]).set(figures.idle);
    connections.with_label_values(&["max"]).set(figures.max);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.encode())
}
