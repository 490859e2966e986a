//! Errors as Twilio answers them: `{"code", "message", "more_info", "status"}`
//! and nothing else, as `application/json`, so that Twilio's SDKs raise the
//! exception an app already handles (twilio-python's `TwilioRestException`,
//! not the one it keeps for RFC 9457 problems). Every service `Error` maps
//! to one Twilio code in `twilio_error`, one pure function.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use phonenumber::country::Id as CountryId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, Window};

/// An error as Twilio writes it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "code": 20404,
    "message": "The requested resource was not found: no pending verification for this phone and purpose",
    "more_info": "https://www.twilio.com/docs/errors/20404",
    "status": 404
}))]
pub struct TwilioErrorBody {
    /// Twilio's error code: 60200 (a bad parameter), 20003 (credentials), 20404
    /// (not found, or no longer pending), 60202 (check attempts used up), 60203
    /// (sends used up), 20429 (too many requests), 60410 (number refused), 20503
    /// (unavailable), 20004 (method), 20500 (internal).
    pub code: u32,
    pub message: String,
    /// `https://www.twilio.com/docs/errors/{code}`.
    pub more_info: String,
    /// The HTTP status.
    pub status: u16,
}

/// A refusal under `/twilio`.
#[derive(Debug)]
pub struct TwilioError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// Seconds, for a `Retry-After` (429 and 503 only).
    pub retry_after: Option<u64>,
    /// The methods a path takes (`405`).
    pub allow: Option<String>,
}

impl TwilioError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// A bad or missing parameter (`60200`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 60200, message)
    }

    /// Nothing there for this caller (`20404`): a path it has no service at,
    /// or a verification it has not (or no longer pending).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource was not found: {what}"),
        )
    }

    pub fn body(&self) -> TwilioErrorBody {
        TwilioErrorBody {
            code: self.code,
            message: self.message.clone(),
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        }
    }
}

impl std::fmt::Display for TwilioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl ResponseError for TwilioError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = &self.allow {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if self.code == 20003 {
            response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="Twilio API""#));
        }
        response.json(self.body())
    }
}

impl From<Error> for TwilioError {
    fn from(e: Error) -> Self {
        if let Error::Internal(cause) = &e {
            // The cause to the log, as the native API does; never to the caller.
            tracing::error!(error = %format!("{cause:#}"), "internal error");
        }
        twilio_error(&e)
    }
}

const PHONE_REJECTED: &str = "Invalid parameter `To`: the gateway refused the number (it is not \
     on WhatsApp); the verification has failed";
const UNAUTHORIZED: &str = "Authentication Error - the user name must be a client's Account SID \
     and the password one of that client's API keys";
const LOCKED: &str = "Max check attempts reached: this verification's wrong codes are used up, so \
     even the right code is refused now; start a new verification, which can be done at once";
const INTERNAL: &str = "Internal server error: something went wrong on our side; it has been logged";

/// `country_not_allowed`, naming Twilio's field.
fn country_refusal(country: Option<CountryId>, allowed: &[CountryId]) -> String {
    let allowed: Vec<&str> = allowed.iter().map(|c| c.as_ref()).collect();
    let country = country.as_ref().map_or("no single country", |c| c.as_ref());
    format!(
        "Verification delivery attempt blocked: `To` is a number of {country}, and this service \
         sends codes only to numbers of {}",
        allowed.join(", ")
    )
}

/// The Twilio status, code and message of a service error. Waiting helps a
/// 429 or 503 (not a used-up check: a new verification can start at once),
/// so those carry the service's `Retry-After`.
pub fn twilio_error(e: &Error) -> TwilioError {
    use StatusCode as S;
    let detail = e.to_string();
    let (status, code, message) = match e {
        Error::InvalidRequest(_) | Error::InvalidField(_) | Error::InvalidPhone(_) => {
            (S::BAD_REQUEST, 60200, format!("Invalid parameter: {detail}"))
        }
        Error::PhoneRejected { .. } => (S::BAD_REQUEST, 60200, PHONE_REJECTED.to_owned()),
        Error::InvalidCode { .. } | Error::IdempotencyKeyReused | Error::ClientExists(_) => {
            (S::BAD_REQUEST, 60200, detail)
        }
        Error::Unauthorized | Error::AdminUnauthorized => (S::UNAUTHORIZED, 20003, UNAUTHORIZED.to_owned()),
        Error::CountryNotAllowed { country, allowed } => {
            (S::FORBIDDEN, 60410, country_refusal(*country, allowed))
        }
        Error::SuspectedFraud { .. } => (
            S::FORBIDDEN,
            60410,
            format!("Verification delivery attempt blocked: {detail}"),
        ),
        Error::CrossOrigin => (S::FORBIDDEN, 20403, detail),
        Error::NotFound(_) | Error::NotPending { .. } | Error::Expired { .. } => (
            S::NOT_FOUND,
            20404,
            format!("The requested resource was not found: {detail}"),
        ),
        Error::MethodNotAllowed { .. } => (S::METHOD_NOT_ALLOWED, 20004, detail),
        Error::MaxAttemptsReached { .. } => (S::TOO_MANY_REQUESTS, 60202, LOCKED.to_owned()),
        Error::RateLimited {
            window: Window::VerificationSends,
            ..
        } => (
            S::TOO_MANY_REQUESTS,
            60203,
            format!("Max send attempts reached: {detail}"),
        ),
        Error::ResendTooSoon { .. } | Error::RateLimited { .. } | Error::IdempotencyKeyInUse => (
            S::TOO_MANY_REQUESTS,
            20429,
            format!("Too many requests: {detail}"),
        ),
        Error::DeliveryUnavailable { .. } | Error::Unavailable { .. } | Error::QrUnavailable(_) => (
            S::SERVICE_UNAVAILABLE,
            20503,
            format!("Service unavailable: {detail}"),
        ),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, 20500, INTERNAL.to_owned()),
    };
    let waiting_helps = matches!(status, S::TOO_MANY_REQUESTS | S::SERVICE_UNAVAILABLE);
    TwilioError {
        retry_after: e.retry_after().filter(|_| waiting_helps),
        allow: match e {
            Error::MethodNotAllowed { allow } => Some(allow.clone()),
            _ => None,
        },
        ..TwilioError::new(status, code, message)
    }
}

#[cfg(test)]
mod tests;
