//! Headers every answer carries.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// `X-Content-Type-Options: nosniff`, so that no browser reads an answer as
/// another type than it says (a JSON body as HTML, an image as a script).
///
/// Not `DefaultHeaders`: that one adds nothing to the errors that middleware
/// returns (401, a client's 429, 503), which pass it before they are answers.
pub async fn nosniff(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let value = HeaderValue::from_static("nosniff");
    match next.call(req).await {
        Ok(mut response) => {
            response
                .headers_mut()
                .insert(header::X_CONTENT_TYPE_OPTIONS, value);
            Ok(response)
        }
        Err(e) => {
            let mut answer = e.error_response();
            answer.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, value);
            Err(InternalError::from_response(e, answer).into())
        }
    }
}
