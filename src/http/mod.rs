//! The HTTP layer: routes, authentication, errors, and the OpenAPI document.

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

pub use auth::API_KEY_HEADER;

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub otp: OtpService,
    pub delivery: Delivery,
    pub default_country: Option<CountryId>,
    pub default_locale: Locale,
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
        .error_handler(|e, _| Error::InvalidRequest(format!("the body is not valid: {e}")).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|_, _| Error::InvalidRequest("the id in the path must be a UUID".into()).into())
}

pub async fn not_found(_: HttpRequest) -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such endpoint"))
}
