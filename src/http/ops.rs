//! Health, readiness, and the development inbox.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::delivery::SenderState;
use crate::delivery::fake_gateway::FakeMessage;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    pub database: &'static str,
    /// Each gateway key's state; informative, it never makes the service unready.
    pub senders: Vec<SenderReadiness>,
}

#[derive(Serialize, ToSchema)]
pub struct SenderReadiness {
    #[schema(example = "sender-1")]
    pub name: String,
    pub state: SenderState,
}

/// Liveness: 200 while the process runs.
///
/// For a liveness probe: it answers whether or not the database does, so that
/// a database outage does not get replicas restarted. Needs no key.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process runs", body = Health)),
    security()
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: 200 when the database answers, 503 when not.
///
/// For a readiness probe. Each gateway key's state is reported, but never makes
/// the service unready: one bad key must not take every replica out of a load
/// balancer. Needs no key.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The database does not answer", body = Readiness),
    ),
    security()
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database_ok = state.operations.database_answers().await;
    // Asked only of a database that answered: otherwise it would wait out the
    // pool's acquire timeout too, and a probe wants its answer fast.
    let statuses = match database_ok {
        true => state.operations.senders().await.unwrap_or_default(),
        false => Vec::new(),
    };
    let senders = statuses
        .into_iter()
        .map(|s| SenderReadiness {
            name: s.name,
            state: s.state,
        })
        .collect();
    let body = Readiness {
        status: if database_ok { "ready" } else { "unavailable" },
        database: if database_ok { "ok" } else { "unavailable" },
        senders,
    };
    if database_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "5"))
            .json(body)
    }
}

/// Under `serve --dev`: the messages the built-in fake gateway "delivered",
/// newest last. This is where a developer reads codes.
pub async fn dev_messages(state: web::Data<AppState>) -> HttpResponse {
    let messages: Vec<FakeMessage> = state
        .fake_gateway
        .as_ref()
        .map(|f| f.messages())
        .unwrap_or_default();
    HttpResponse::Ok().json(messages)
}
