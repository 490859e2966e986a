//! The OpenAPI document, generated from the handlers' annotations.

use actix_web::App;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "otp-service",
        description = include_str!("openapi_intro.md"),
        license(name = "MIT License", identifier = "MIT"),
    ),
    servers((url = "/", description = "The service that serves this document")),
    modifiers(&ApiKeySecurity),
    tags(
        (name = "otp", description = "Request, resend, verify and cancel one-time codes"),
        (name = "webhooks", description = "Signed webhooks (Standard Webhooks): what a client's endpoint was told, retrying a delivery. The events themselves are under `webhooks`"),
        (name = "stats", description = "Conversion figures of the calling client: requested, sent, delivery failures, approved, expired, locked, conversion rate, median time to approval"),
        (name = "operations", description = "Health and readiness"),
        (name = "admin", description = "Gateway keys (state, re-linking with a QR code, resuming), clients (settings, keys, test numbers) and every client's conversion figures. Needs `X-Admin-Key`; off (404) without `OTP_ADMIN_KEY`"),
    ),
)]
struct ApiDoc;

struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "**Your application's key** (`otpk_…`), for `/otp`, `/webhooks` and `/stats`: \
                 printed once by `otp-service clients add NAME`, or by `serve --dev` on its \
                 `export OTP_KEY=` line. Paste it here to try the client operations.",
            ))),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Admin-Key",
                "**Operators only**, for `/admin`: the value of `OTP_ADMIN_KEY` (not a client's \
                 key). Leave it empty to try the client operations.",
            ))),
        );
    }
}

/// The base document (info, tags, security), before the routes add their paths.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The whole document, as `otp-service openapi` prints it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(base())
        .configure(super::documented_routes)
        .split_for_parts();
    let mut api = api;
    problems_as_problem_json(&mut api);
    super::openapi_webhooks::add(&mut api);
    api
}

/// Every answer whose body is a `Problem` is `application/problem+json`
/// (RFC 9457): said here once, not in every handler's annotations.
fn problems_as_problem_json(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    let is_problem = |content: &RefOr<utoipa::openapi::Content>| match content {
        RefOr::T(content) => matches!(
            &content.schema,
            Some(RefOr::Ref(schema)) if schema.ref_location.ends_with("/Problem")
        ),
        RefOr::Ref(_) => false,
    };
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                if response.content.get("application/json").is_some_and(is_problem) {
                    let content = response.content.shift_remove("application/json");
                    response.content.insert(
                        super::errors::PROBLEM_JSON.to_owned(),
                        content.expect("just found"),
                    );
                }
            }
        }
    }
}

/// The security schemes in the order Swagger UI's *Authorize* dialog should
/// list them: the client key first, since that is what a newcomer has.
const SCHEME_ORDER: [&str; 2] = ["api_key", "admin_key"];

/// The document as served at `/openapi.json` and committed. utoipa keeps the
/// security schemes in a map sorted by name, which put `admin_key` first in
/// the *Authorize* dialog (and users pasted their API key there): each name
/// is printed behind a control character and its rank, which sort in
/// `SCHEME_ORDER`, then the marks are taken out of the text.
pub fn to_json(api: &utoipa::openapi::OpenApi) -> String {
    let mut api = api.clone();
    if let Some(components) = api.components.as_mut() {
        let schemes = std::mem::take(&mut components.security_schemes);
        for (name, scheme) in schemes {
            let rank = SCHEME_ORDER
                .iter()
                .position(|n| *n == name)
                .unwrap_or(SCHEME_ORDER.len());
            components
                .security_schemes
                .insert(format!("\u{1}{rank:02}{name}"), scheme);
        }
    }
    let mut json = api.to_pretty_json().expect("the OpenAPI document serialises");
    // serde_json writes the control character as `\u0001`.
    while let Some(start) = json.find("\"\\u0001") {
        json.replace_range(start + 1..start + 9, "");
    }
    json.push('\n');
    json
}
