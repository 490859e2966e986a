//! The Twilio surface's own OpenAPI document, generated from its handlers'
//! annotations: `otp-service openapi --twilio`, committed as
//! `openapi/twilio-verify.json` and served at `/twilio/openapi.json`.

use std::sync::LazyLock;

use actix_web::{App, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "otp-service: Twilio Verify v2 compatible surface",
        description = "The operations of Twilio Verify v2 that an app calls to send and check a \
            code, answered as Twilio answers them, so that the app keeps Twilio's SDK and changes \
            only its credentials (the client's Account SID and API key) and base URL \
            (`…/twilio`). Codes go over WhatsApp. Bodies are form fields \
            (`application/x-www-form-urlencoded`, PascalCase), answers snake_case JSON, errors \
            Twilio's `{code, message, more_info, status}`. The service's own API, with its own \
            document at `/openapi.json`, does more.",
        license(name = "MIT License", identifier = "MIT"),
    ),
    servers((url = "/", description = "The service that serves this document")),
    modifiers(&BasicSecurity),
    tags((name = "twilio", description = "Verifications and their checks, as Twilio Verify v2")),
)]
struct TwilioDoc;

struct BasicSecurity;

impl Modify for BasicSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "User name: the client's Account SID (`AC…`, from `otp-service clients show NAME` or \
             `GET /admin/clients/{name}`); password: its API key (`otpk_…`). What Twilio's SDKs \
             send for `Client(account_sid, auth_token)`."
                .to_owned(),
        );
        components.add_security_scheme("twilio_basic", SecurityScheme::Http(basic));
    }
}

/// The whole document, as `otp-service openapi --twilio` prints it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(TwilioDoc::openapi())
        .configure(super::routes)
        .split_for_parts();
    api
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| crate::http::openapi::to_json(&document()));

/// `GET /twilio/openapi.json`: the document as committed.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

/// The methods (an `Allow` value) of the operation path `path` is, if any.
pub fn methods_of(path: &str) -> Option<String> {
    static ROUTES: LazyLock<Vec<(String, String)>> =
        LazyLock::new(|| crate::http::methods_by_path(&document()));
    crate::http::route_methods(&ROUTES, path, false)
}
