//! RFC 9457 problem documents for every `Error`. 500s say nothing of the cause;
//! the cause goes to the log with the request id.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::VerificationStatus;
use crate::error::Error;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error, as `application/problem+json` (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://otp-service.dev/problems/invalid_code",
    "title": "Wrong code",
    "status": 422,
    "detail": "the code is not correct",
    "code": "invalid_code",
    "id": "0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01",
    "attempts_remaining": 4
}))]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Machine-readable: invalid_request, invalid_phone, unauthorized, country_not_allowed,
    /// not_found, not_pending, expired, invalid_code, phone_rejected, idempotency_key_reused,
    /// idempotency_key_in_use,
    /// max_attempts_reached, resend_too_soon, rate_limited, delivery_unavailable,
    /// unavailable, qr_unavailable, cross_origin and client_exists (admin), method_not_allowed,
    /// internal_error.
    pub code: &'static str,
    /// The refused field of a request (`invalid_request`), when one is to blame:
    /// a client's setting, or a test number's `code` or `until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// The verification concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The verification's status (`not_pending`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<VerificationStatus>,
    /// Wrong codes still allowed (`invalid_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
    /// Seconds to wait before trying again; also in the Retry-After header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Why a request is `rate_limited` when it is not a window:
    /// `suspected_fraud` (the number's prefix or country, or the end user's
    /// network, is blocked; or, under `OTP_FRAUD_MODE=enforce`, one of this
    /// client's own fraud flags matches the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Error {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Error::InvalidRequest(_) | Error::InvalidField(_) => {
                (S::BAD_REQUEST, "invalid_request", "Invalid request")
            }
            Error::InvalidPhone(_) => (S::BAD_REQUEST, "invalid_phone", "Invalid phone number"),
            Error::Unauthorized | Error::AdminUnauthorized => {
                (S::UNAUTHORIZED, "unauthorized", "Unauthorized")
            }
            Error::CountryNotAllowed { .. } => (S::FORBIDDEN, "country_not_allowed", "Country not allowed"),
            Error::CrossOrigin => (S::FORBIDDEN, "cross_origin", "Cross-origin request refused"),
            Error::NotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
            Error::MethodNotAllowed { .. } => {
                (S::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
            }
            Error::NotPending { .. } => (S::CONFLICT, "not_pending", "Verification not pending"),
            Error::ClientExists(_) => (S::CONFLICT, "client_exists", "Client exists"),
            Error::Expired { .. } => (S::GONE, "expired", "Code expired"),
            Error::InvalidCode { .. } => (S::UNPROCESSABLE_ENTITY, "invalid_code", "Wrong code"),
            Error::PhoneRejected { .. } => {
                (S::UNPROCESSABLE_ENTITY, "phone_rejected", "Phone number rejected")
            }
            Error::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            Error::IdempotencyKeyInUse => (S::CONFLICT, "idempotency_key_in_use", "Idempotency key in use"),
            Error::MaxAttemptsReached { .. } => (
                S::TOO_MANY_REQUESTS,
                "max_attempts_reached",
                "Too many wrong codes",
            ),
            Error::ResendTooSoon { .. } => (S::TOO_MANY_REQUESTS, "resend_too_soon", "Resend too soon"),
            Error::RateLimited { .. } | Error::SuspectedFraud { .. } => {
                (S::TOO_MANY_REQUESTS, "rate_limited", "Rate limited")
            }
            Error::DeliveryUnavailable { .. } => (
                S::SERVICE_UNAVAILABLE,
                "delivery_unavailable",
                "Delivery unavailable",
            ),
            Error::Unavailable { .. } => (S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Error::QrUnavailable(_) => (S::SERVICE_UNAVAILABLE, "qr_unavailable", "QR code unavailable"),
            Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error", "Internal error"),
        }
    }

    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            // No `max_attempts_reached`: a new request is answered at once, so
            // a client that honoured a wait would wait for nothing.
            Error::ResendTooSoon { retry_after, .. }
            | Error::RateLimited { retry_after, .. }
            | Error::SuspectedFraud { retry_after }
            | Error::DeliveryUnavailable { retry_after, .. }
            | Error::Unavailable { retry_after } => Some((*retry_after).max(1)),
            Error::QrUnavailable(_) => Some(10),
            Error::IdempotencyKeyInUse => Some(1),
            _ => None,
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let detail = match self {
            Error::Internal(_) => "something went wrong on our side; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let (id, status_detail, attempts_remaining) = match self {
            Error::NotPending { id, status } => (Some(*id), Some(*status), None),
            Error::InvalidCode {
                id,
                attempts_remaining,
            } => (Some(*id), None, Some(*attempts_remaining)),
            Error::Expired { id }
            | Error::PhoneRejected { id }
            | Error::MaxAttemptsReached { id, .. }
            | Error::ResendTooSoon { id, .. } => (Some(*id), None, None),
            _ => (None, None, None),
        };
        Problem {
            kind: format!("https://otp-service.dev/problems/{code}"),
            title,
            status: status.as_u16(),
            detail,
            code,
            field: match self {
                Error::InvalidField(refused) => Some(refused.field),
                _ => None,
            },
            id,
            status_detail,
            attempts_remaining,
            retry_after: self.retry_after(),
            reason: match self {
                Error::SuspectedFraud { .. } => Some("suspected_fraud"),
                _ => None,
            },
        }
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        if let Error::Internal(e) = self {
            // Each cause's message only: a database error's `detail` (in its
            // Debug form) quotes the row's values, phone numbers included.
            tracing::error!(error = %format!("{e:#}"), "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let Error::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
        if let Error::AdminUnauthorized = self {
            // Lets a browser ask for the admin key, for the QR page.
            response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="otp-service admin""#));
        }
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self.problem())
    }
}
