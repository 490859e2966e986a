//! `/twilio`'s credentials, as Twilio's SDKs send them: HTTP Basic, the
//! client's Account SID as the user name and one of its API keys as the
//! password. The same keys, revocation and per-client window as `/otp`
//! (`Access`), checked before any body is read.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::errors::TwilioError;
use crate::clients::Client;
use crate::error::Error;
use crate::http::AppState;

pub async fn require_credentials(
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
            crate::http::auth::skip_body(&mut req).await;
            Err(TwilioError::from(refused).into())
        }
    }
}

async fn caller(req: &ServiceRequest) -> Result<Client, Error> {
    let (user, key) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials)
        .ok_or(Error::Unauthorized)?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("application state missing")))?;
    state.access.twilio_caller(&user, &key).await
}

/// The user name and password of a Basic `Authorization` value; `None` for
/// another scheme, bad base64, or no `:` in the decoded pair.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(pair: &str) -> String {
        format!("Basic {}", STANDARD.encode(pair))
    }

    #[test]
    fn the_pair_is_read_from_basic_credentials_only() {
        assert_eq!(
            basic_credentials(&basic("ACabc:otpk_1")),
            Some(("ACabc".into(), "otpk_1".into()))
        );
        assert_eq!(
            basic_credentials(&basic("ACabc:pass:with:colons")),
            Some(("ACabc".into(), "pass:with:colons".into())),
            "the password runs to the end"
        );
        assert_eq!(
            basic_credentials(&format!("basic  {}", STANDARD.encode("a:b"))),
            Some(("a".into(), "b".into()))
        );
        for refused in [
            format!("Bearer {}", STANDARD.encode("a:b")),
            basic("no-colon"),
            "Basic !!!not-base64".to_owned(),
            "Basic".to_owned(),
            String::new(),
            format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe])),
        ] {
            assert_eq!(basic_credentials(&refused), None, "{refused}");
        }
    }
}
