//! The HTTP layer: routes, authentication, errors, and the OpenAPI document.

mod admin;
mod auth;
pub mod errors;
pub mod openapi;
mod ops;
mod otp;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use phonenumber::country::Id as CountryId;
use sqlx::PgPool;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::delivery::Delivery;
use crate::delivery::fake_gateway::FakeGateway;
use crate::domain::Locale;
use crate::error::Error;
use crate::otp::OtpService;

pub use admin::ADMIN_KEY_HEADER;
pub use auth::API_KEY_HEADER;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub otp: OtpService,
    pub delivery: Delivery,
    pub default_country: Option<CountryId>,
    pub default_locale: Locale,
    /// `OTP_ADMIN_KEY`; the admin endpoints are off without it.
    pub admin_key: Option<secrecy::SecretString>,
    /// The built-in fake gateway under `serve --dev`, whose inbox `/dev/messages` shows.
    pub fake_gateway: Option<FakeGateway>,
}

/// Every documented route. The OpenAPI document is collected from exactly
/// these registrations, so a route cannot exist without its documentation.
pub fn documented_routes(cfg: &mut ServiceConfig) {
    cfg.service(
        scope::scope("/otp")
            .wrap(from_fn(auth::require_api_key))
            .service(otp::request_code)
            .service(otp::verify_code)
            .service(otp::get_verification)
            .service(otp::cancel_verification),
    )
    .service(
        scope::scope("/admin")
            .wrap(from_fn(admin::require_admin_key))
            .service(admin::list_senders)
            .service(admin::resume_sender)
            .service(admin::qr_page)
            .service(admin::qr_image),
    )
    .service(ops::healthz)
    .service(ops::readyz);
}

/// Routes outside the API contract: the dev inbox exists only under `--dev`.
pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dev/messages", web::get().to(ops::dev_messages));
}

/// Malformed JSON, wrong types, unknown or missing fields: `400 invalid_request`.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(16 * 1024)
        .error_handler(|e, _| Error::InvalidRequest(describe_body_error(&e)).into())
}

/// Says what is wrong with a body without repeating any of its values: a
/// parser message such as "invalid type: integer `123456`" would put a code
/// into the answer and the logs.
fn describe_body_error(e: &actix_web::error::JsonPayloadError) -> String {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::Deserialize(e) if e.is_data() => {
            let message = e.to_string();
            let named = ["unknown field", "missing field", "duplicate field"]
                .iter()
                .any(|kind| message.starts_with(kind));
            if named {
                // These name the field (never its value) and what is expected.
                message.split(" at line").next().unwrap_or_default().to_owned()
            } else {
                let expected = message
                    .split(", expected ")
                    .nth(1)
                    .and_then(|rest| rest.split(" at line").next());
                match expected {
                    Some(expected) => format!("a field has the wrong type or value: expected {expected}"),
                    None => "a field has the wrong type or value".to_owned(),
                }
            }
        }
        E::Deserialize(_) => "the body is not valid JSON".to_owned(),
        E::ContentType => "the body must be JSON, sent with Content-Type: application/json".to_owned(),
        E::Overflow { .. } | E::OverflowKnownLength { .. } => "the body is too large".to_owned(),
        _ => "the body could not be read".to_owned(),
    }
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_, _| Error::InvalidRequest("the id in the path must be a UUID".into()).into())
}

pub async fn not_found(_: HttpRequest) -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such endpoint"))
}
