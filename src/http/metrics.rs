//! `GET /metrics`, and the middleware that counts and times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, get, web};

use super::AppState;
use crate::delivery::SenderState;

/// Counts and times each request under its route *pattern* (`/otp/{id}`),
/// never its path, so no id ends up in a label.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().as_str().to_owned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let status = response.status().as_str().to_owned();
        let m = &state.metrics;
        m.http_requests
            .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
            .inc();
        m.http_duration
            .with_label_values(&[route.as_str(), method.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

#[derive(sqlx::FromRow)]
struct Outbox {
    depth: i64,
    oldest_age: f64,
}

/// Prometheus metrics.
///
/// The text exposition format (version 0.0.4). The gauges for the outbox and
/// the gateway keys are read from the database at scrape time, so every
/// replica reports the same, shared truth.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain; version=0.0.4"),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let m = &state.metrics;
    // A database that does not answer leaves the gauges at their last values;
    // the counters and `otp_db_pool_connections` still say what is happening.
    let outbox: Result<Outbox, _> = sqlx::query_as(
        "select count(*) as depth,
                coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest_age
         from outbox_messages where status = 'queued' and expires_at > now()",
    )
    .fetch_one(&state.pool)
    .await;
    if let Ok(outbox) = outbox {
        m.outbox_depth.set(outbox.depth);
        m.outbox_oldest_age.set(outbox.oldest_age);
    }
    if let Ok(statuses) = state.delivery.senders().statuses().await {
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
    let size = i64::from(state.pool.size());
    let idle = state.pool.num_idle() as i64;
    let connections = &m.db_connections;
    connections.with_label_values(&["in_use"]).set(size - idle);
    connections.with_label_values(&["idle"]).set(idle);
    connections
        .with_label_values(&["max"])
        .set(i64::from(state.pool.options().get_max_connections()));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.encode())
}
