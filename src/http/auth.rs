//! `X-Api-Key` authentication and the per-client limit, as middleware so that
//! they run before any body is parsed: a request without a valid key gets
//! `401` and touches nothing; one over its client's limit gets `429`.

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
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match caller(&req).await {
        Ok(client) => {
            tracing::Span::current().record("client", client.name.as_str());
            req.extensions_mut().insert(client);
            next.call(req).await
        }
        Err(refused) => {
            skip_body(&mut req).await;
            Err(refused.into())
        }
    }
}

/// The client whose key the request carries; every call counts against the
/// client's own per-minute limit.
async fn caller(req: &ServiceRequest) -> Result<Client, Error> {
    let key = req
        .headers()
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(Error::Unauthorized)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("application state missing")))?;
    state.access.caller(key).await
}

/// Reads a refused request's body to its end and throws it away, so that the
/// connection can carry the caller's next request: with its body unread,
/// actix closes the connection after the answer, and a flood of refused
/// requests would cost a TCP handshake each. Only a body as small as the
/// JSON limit, arriving within a second; anything else closes as before.
pub(super) async fn skip_body(req: &mut ServiceRequest) {
    use futures_util::StreamExt;
    const MOST: usize = 16 * 1024;
    let mut payload = req.take_payload();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut read = 0;
        while let Some(Ok(chunk)) = payload.next().await {
            read += chunk.len();
            if read > MOST {
                break;
            }
        }
    })
    .await;
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
