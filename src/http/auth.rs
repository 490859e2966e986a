//! `X-Api-Key` authentication and the per-client limit, as middleware so that
//! they run before any body is read: a request without a valid key gets `401`
//! and touches nothing; one over its client's limit gets `429`.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::AppState;
use crate::clients::Client;
use crate::error::Error;

pub const API_KEY_HEADER: &str = "x-api-key";

pub async fn require_api_key(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or(Error::Unauthorized)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("application state missing")))?;
    // Every call counts against the client's own per-minute limit.
    let client = state.access.caller(&key).await?;
    tracing::Span::current().record("client", client.name.as_str());
    req.extensions_mut().insert(client);
    next.call(req).await
}

/// The caller that `require_api_key` let in.
impl FromRequest for Client {
    type Error = Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Client>()
                .cloned()
                .ok_or(Error::Unauthorized),
        )
    }
}
