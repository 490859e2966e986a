//! A Twilio Verify v2 compatible surface under `/twilio`, so that an app
//! keeps its code and Twilio's SDK and changes only its credentials and base
//! URL: form bodies in, Twilio's JSON out, Twilio's error codes. Documented
//! in a document of its own (`openapi/twilio-verify.json`), apart from the
//! native one, whose generated clients must not get form-encoded, Basic-auth
//! operations with another error shape.

mod auth;
pub mod errors;
mod forms;
mod handlers;
pub mod openapi;
mod resources;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use errors::TwilioError;

/// Where the surface is.
pub const PREFIX: &str = "/twilio";

/// The surface's routes: its document (open) and its operations, which the
/// Twilio document is collected from.
pub fn routes(cfg: &mut ServiceConfig) {
    // Before the scope, which would otherwise take the path.
    cfg.route("/twilio/openapi.json", web::get().to(openapi::serve));
    cfg.service(
        scope::scope(PREFIX)
            .wrap(from_fn(auth::require_credentials))
            .app_data(forms::config())
            .service(handlers::create_verification)
            .service(handlers::check_verification)
            .service(handlers::fetch_verification)
            .service(handlers::update_verification)
            .service(handlers::fetch_service)
            .default_service(web::to(fallback)),
    );
}

/// A request no operation took: `405` with `Allow` for an operation's path
/// asked with another method, `404` for anything else; in Twilio's form.
async fn fallback(req: HttpRequest) -> Result<HttpResponse, TwilioError> {
    Err(match openapi::methods_of(req.path()) {
        Some(allow) => TwilioError {
            allow: Some(allow.clone()),
            ..TwilioError::new(
                actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                20004,
                format!("Method not allowed: this resource takes {allow}"),
            )
        },
        None => TwilioError::not_found("no such resource"),
    })
}
