//! The HTTP layer: routes, authentication, errors, and the OpenAPI document.

mod admin;
mod admin_clients;
mod admin_fraud;
mod admin_fraud_flags;
mod admin_test_numbers;
mod admin_webhooks;
mod auth;
pub mod body;
mod dev;
pub mod errors;
pub mod headers;
pub mod metrics;
pub mod openapi;
mod openapi_webhooks;
mod ops;
mod otp;
mod server;
mod stats;
pub mod twilio;
mod webhooks;

pub use server::{metrics_server, server};
mod qr;
mod responses;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use phonenumber::country::Id as CountryId;
use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::delivery::Delivery;
use crate::delivery::fake_gateway::FakeGateway;
use crate::domain::Locale;
use crate::error::Error;
use crate::otp::OtpService;
use crate::tasks::Tasks;

pub use admin::ADMIN_KEY_HEADER;
pub use auth::API_KEY_HEADER;

/// What every handler can reach.
pub struct AppState {
    /// What `/metrics` and `/readyz` read, through a pool of their own.
    pub operations: crate::operations::Operations,
    pub otp: OtpService,
    pub delivery: Delivery,
    /// Work that must finish even if its request goes away.
    pub tasks: Tasks,
    pub default_country: Option<CountryId>,
    pub default_locale: Locale,
    /// API keys and the admin key.
    pub access: crate::access::Access,
    /// Clients and their test numbers, as operators manage them.
    pub clients: crate::clients::admin::ClientAdmin,
    /// Clients' webhook URLs and signing secrets.
    pub webhooks: crate::webhooks::WebhookAdmin,
    /// The prefixes operators allow or block, blocked countries and networks, and the fraud flags.
    pub fraud: crate::fraud::FraudAdmin,
    /// The built-in fake gateway under `serve --dev`, whose inbox `/dev/messages` shows.
    pub fake_gateway: Option<FakeGateway>,
    pub metrics: crate::metrics::Metrics,
    /// The conversion figures of `/stats` and `/admin/stats`.
    pub stats: crate::stats::Stats,
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
        scope::scope("/webhooks")
            .wrap(from_fn(auth::require_api_key))
            .service(webhooks::list_deliveries)
            .service(webhooks::retry_delivery),
    )
    .service(
        scope::scope("/stats")
            .wrap(from_fn(auth::require_api_key))
            .service(stats::client_stats),
    )
    .service(
        scope::scope("/admin")
            .wrap(from_fn(admin::require_admin_key))
            .service(admin::list_senders)
            .service(admin::resume_sender)
            .service(admin_clients::list_clients)
            .service(admin_clients::create_client)
            .service(admin_clients::get_client)
            .service(admin_clients::change_client)
            .service(admin_clients::rotate_client_key)
            .service(admin_clients::remove_client)
            .service(admin_webhooks::rotate_webhook_secret)
            .service(admin_fraud_flags::list_flags)
            .service(admin_fraud_flags::block_flag)
            .service(admin_fraud_flags::list_blocks)
            .service(admin_fraud_flags::set_block)
            .service(admin_fraud_flags::remove_block)
            .service(admin_fraud::list_prefixes)
            .service(admin_fraud::set_prefix)
            .service(admin_fraud::remove_prefix)
            .service(admin_test_numbers::list_test_numbers)
            .service(admin_test_numbers::add_test_number)
            .service(admin_test_numbers::remove_test_number)
            .service(stats::admin_stats)
            .service(qr::qr_page)
            .service(qr::qr_image),
    )
    .service(ops::healthz)
    .service(ops::readyz)
    .service(metrics::metrics);
}

/// Routes outside the API contract, only under `--dev`: the inbox, and the
/// built-in gateway's failure switches.
pub fn dev_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/dev/messages", web::get().to(ops::dev_messages))
        .service(
            web::resource("/dev/gateway")
                .route(web::get().to(dev::show))
                .route(web::put().to(dev::change))
                .route(web::delete().to(dev::reset)),
        );
}

/// Bodies taken as `web::Json`: malformed JSON, wrong types, unknown or
/// missing fields are `400 invalid_request`. Handlers read theirs with
/// `body::JsonBody`, whose refusal also names the field.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(body::LIMIT)
        .error_handler(|e, _| Error::InvalidRequest(describe_body_error(&e)).into())
}

/// A JSON object body as `T`: serde reads a struct from an array too
/// (`[null, null]` would be an empty patch), so anything but an object is
/// `400 invalid_request`, and a refusal names the field at fault.
pub fn object_body<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Error> {
    body::from_value(body)
}

/// Says what is wrong with a body without repeating any of its values.
fn describe_body_error(e: &actix_web::error::JsonPayloadError) -> String {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::Deserialize(_) => "the body is not valid JSON".to_owned(),
        E::ContentType => "the body must be JSON, sent with Content-Type: application/json".to_owned(),
        E::Overflow { .. } | E::OverflowKnownLength { .. } => "the body is larger than 16 KiB".to_owned(),
        _ => "the body could not be read".to_owned(),
    }
}

/// A path parameter that does not parse: `GET /otp/request` is the wrong
/// method for `/otp/request` (405), not a malformed id (400).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, req| match documented_route(req.path(), true) {
        Some(allow) => Error::MethodNotAllowed { allow }.into(),
        None => Error::InvalidRequest("the id in the path must be a UUID".into()).into(),
    })
}

/// A query string that does not parse (an unknown parameter, a limit that
/// is not a number): `400 invalid_request`, as a problem like every error.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|e, _| {
        let detail = match &e {
            actix_web::error::QueryPayloadError::Deserialize(e)
                if e.to_string().starts_with("unknown field") =>
            {
                e.to_string()
            }
            _ => "a query parameter has the wrong type or value".to_owned(),
        };
        Error::InvalidRequest(detail).into()
    })
}

/// Requests that no route took: `405` with `Allow` for a documented path
/// asked with another method, `404` for anything else.
pub async fn fallback(req: HttpRequest) -> Result<HttpResponse, Error> {
    if req.path() == "/metrics" && metrics::served_elsewhere(&req) {
        return Err(Error::NotFound("no such endpoint"));
    }
    Err(
        documented_route(req.path(), false).map_or(Error::NotFound("no such endpoint"), |allow| {
            Error::MethodNotAllowed { allow }
        }),
    )
}

/// The methods (as an `Allow` value) of the documented path that `path` is:
/// matching it exactly, or (unless `exact_only`) with `{parameters}` too.
fn documented_route(path: &str, exact_only: bool) -> Option<String> {
    static ROUTES: std::sync::LazyLock<Vec<(String, String)>> =
        std::sync::LazyLock::new(|| methods_by_path(&openapi::document()));
    route_methods(&ROUTES, path, exact_only)
}

/// Each path of `document`, with its methods as an `Allow` value.
fn methods_by_path(document: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
    document
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ];
            let allowed: Vec<&str> = methods
                .iter()
                .filter(|(_, op)| op.is_some())
                .map(|(name, _)| *name)
                .collect();
            (path.clone(), allowed.join(", "))
        })
        .collect()
}

/// The methods of the path of `routes` that `path` is: matching it exactly,
/// or (unless `exact_only`) with `{parameters}` too.
fn route_methods(routes: &[(String, String)], path: &str, exact_only: bool) -> Option<String> {
    let templated = |template: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
    };
    let exact = routes.iter().find(|(template, _)| template == path);
    exact
        .or_else(|| {
            if exact_only {
                None
            } else {
                routes.iter().find(|(template, _)| templated(template))
            }
        })
        .map(|(_, allow)| allow.clone())
}
