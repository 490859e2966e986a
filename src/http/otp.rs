//! The `/otp` endpoints. Each handler turns its input into domain types first.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::errors::Problem;
use crate::clients::Client;
use crate::domain::{CountryFrom, PhoneError, PhoneNumber, Purpose, invalid_phone_detail, parse_country};
use crate::error::{Error, Result};
use crate::http::responses::{ClientErrors, Unauthorized};
use crate::otp::idempotency::{Answer, IdempotencyKey};
use crate::otp::{Checked, NewVerification, Sends, Verification, VerifyTarget};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Ask for a code to be sent to a phone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+591 696-57008", "purpose": "signup", "locale": "es"}))]
pub struct CodeRequest {
    /// International number (`+` optional; spaces, dots, dashes and parentheses allowed),
    /// or a national number when `country` is given or a default country is configured.
    pub phone: String,
    /// ISO 3166-1 alpha-2 code used to read a national number.
    pub country: Option<String>,
    /// What the code is for, `[a-z0-9_.-]{1,64}`; default `default`.
    pub purpose: Option<String>,
    /// `es`, `en` or `pt`; default from configuration.
    pub locale: Option<String>,
    /// The end user's IP address, for per-IP limits.
    pub end_user_ip: Option<String>,
}

/// Check a code, naming the verification by `id` or by `phone` and `purpose`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01", "code": "123456"}))]
pub struct CodeCheck {
    pub id: Option<Uuid>,
    pub phone: Option<String>,
    pub country: Option<String>,
    /// With `phone`; default `default`.
    pub purpose: Option<String>,
    /// The digits the person typed.
    #[schema(value_type = String, example = "123456")]
    pub code: SecretString,
}

impl AppState {
    fn phone(&self, raw: &str, country: Option<&str>) -> Result<PhoneNumber> {
        let default_country = self.default_country.map(|c| c.as_ref().to_owned());
        PhoneNumber::parse(raw, country.or(default_country.as_deref())).map_err(|e| match e {
            PhoneError::Invalid => {
                let read_with = match country {
                    Some(given) => parse_country(given).ok().map(|id| (id, CountryFrom::Request)),
                    None => self.default_country.map(|id| (id, CountryFrom::Default)),
                };
                Error::InvalidPhone(invalid_phone_detail(raw, read_with))
            }
            PhoneError::UnknownCountry => Error::InvalidRequest(e.to_string()),
        })
    }
}

fn purpose(raw: Option<&str>) -> Result<Purpose> {
    raw.map_or_else(
        || Ok(Purpose::default()),
        |p| Purpose::parse(p).map_err(Error::InvalidRequest),
    )
}

/// Send a code.
///
/// Creates a verification and sends its code over WhatsApp. A request for a
/// phone and purpose that already has a pending verification is a resend: the
/// same verification sends the same code again in a new message (in the
/// resend's locale), so whichever message arrives first works; the expiry
/// restarts, and failed attempts are not reset. The first delivery attempt is
/// made before answering (at most `OTP_SEND_WAIT_MS`), unless another
/// client's messages are waiting for the gateway (then it takes its turn in
/// the fair share); `delivery_status` says how it went, and while the message
/// waits `estimated_send_at` says when it should go out (always before
/// `expires_at`: a request whose message could not go out in time is refused
/// with `503 delivery_unavailable`).
///
/// The client's own settings (code length, lifetime, attempts, cooldown,
/// sends, countries, default locale, message text) apply, the service's
/// defaults for what it does not set. For one of the client's test numbers,
/// nothing is sent: `delivery_status` is `sent` and the fixed code verifies.
///
/// With an `Idempotency-Key`, a retry of the same request (same fields after
/// normalization, e.g. the phone in E.164) within 24 h gets the first answer
/// again, with `Idempotent-Replayed: true`, and sends nothing. Answers that
/// say "not now" (429, 5xx) are not kept, so their retry runs anew.
#[utoipa::path(
    tag = "otp",
    request_body = CodeRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters, unique per logical request")
    ),
    responses(
        (status = 202, description = "Code sent, or queued for delivery", body = Verification, links(
            ("GetVerification" = (operation_id = "get_verification", parameters(("id" = "$response.body#/id")),
                description = "Read the verification")),
            ("CancelVerification" = (operation_id = "cancel_verification", parameters(("id" = "$response.body#/id")),
                description = "Cancel it")),
        )),
        (status = 400, description = "`invalid_request` or `invalid_phone`", body = Problem),
        (status = 403, description = "`country_not_allowed`", body = Problem),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still being answered", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 422, description = "`phone_rejected` (the gateway refused the number; the verification is `failed`) or `idempotency_key_reused`", body = Problem),
        (status = 429, description = "`resend_too_soon` or `rate_limited`: per (client, phone), per phone across all clients (its `Retry-After` rounded up to the minute), per (client, end-user IP), per client; or `rate_limited` with `reason: \"suspected_fraud\"`: the number's prefix or country, or the end user's network, is blocked for every client, or (under `OTP_FRAUD_MODE=enforce`) one of this client's own fraud flags matches", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`delivery_unavailable` (no key in service; or, at this client's place in the gateway's fair share, the code would expire before it is sent; or this client already has its `max_queued` messages waiting), or `unavailable` (the database does not answer, or no hashing thread was free within `OTP_HASH_WAIT_MS`)", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        Unauthorized,
    ),
    security(("api_key" = []))
)]
#[post("/request")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn request_code(
    client: Client,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: super::body::JsonBody<CodeRequest>,
) -> Result<HttpResponse> {
    let name = client.name.clone();
    let answer = answer_request(client, &state, &request, body.into_inner()).await;
    if let Err(e) = &answer {
        state
            .metrics
            .request_refusals
            .with_label_values(&[name.as_str(), e.problem().code, e.refusal_reason()])
            .inc();
    }
    answer
}

async fn answer_request(
    client: Client,
    state: &AppState,
    request: &HttpRequest,
    body: CodeRequest,
) -> Result<HttpResponse> {
    let input = NewVerification {
        phone: state.phone(&body.phone, body.country.as_deref())?,
        purpose: purpose(body.purpose.as_deref())?,
        locale: match body.locale.as_deref() {
            Some(l) => l.parse().map_err(Error::InvalidRequest)?,
            None => state.otp.rules(&client).default_locale,
        },
        end_user_ip: body
            .end_user_ip
            .as_deref()
            .map(|ip| {
                ip.parse::<std::net::IpAddr>().map_err(|_| {
                    Error::InvalidRequest("`end_user_ip` must be an IPv4 or IPv6 address".into())
                })
            })
            .transpose()?,
        channel: None,
        display_name: None,
        sends: Sends::Omitted,
    };
    let Some(raw) = request.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        let verification = state.otp.request(&client, input).await?;
        return Ok(HttpResponse::Accepted().json(verification));
    };
    let key = IdempotencyKey::parse(raw.as_bytes())?;
    Ok(match state.otp.request_once(client, key, input).await? {
        Answer::Fresh(verification) => HttpResponse::Accepted().json(verification),
        Answer::Replay { status, body } => {
            let mut replay = HttpResponse::build(status);
            if !status.is_success() {
                replay.content_type(super::errors::PROBLEM_JSON);
            }
            replay.insert_header(("Idempotent-Replayed", "true")).json(body)
        }
    })
}

/// Check a code.
///
/// A code approves at most once, even when many requests carry it at the same
/// time. A wrong or malformed code counts as a failed attempt.
#[utoipa::path(
    tag = "otp",
    request_body = CodeCheck,
    responses(
        (status = 200, description = "Approved", body = Verification),
        (status = 400, description = "`invalid_request` or `invalid_phone`", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`not_pending`: approved, canceled or failed", body = Problem),
        (status = 410, description = "`expired`", body = Problem),
        (status = 422, description = "`invalid_code`, with `attempts_remaining`", body = Problem),
        (status = 429, description = "`max_attempts_reached` (no `Retry-After`: waiting does not help, a new code can be requested at once), or `rate_limited` (the phone's wrong codes in the last hour, or the client's requests per minute) with `Retry-After`", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait (`rate_limited` only)"))),
        (status = 503, description = "`unavailable`: the database does not answer, or no hashing thread was free within `OTP_HASH_WAIT_MS` (the attempt is not counted)", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        Unauthorized,
    ),
    security(("api_key" = []))
)]
#[post("/verify")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn verify_code(
    client: Client,
    state: web::Data<AppState>,
    body: super::body::JsonBody<CodeCheck>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let target = match (body.id, body.phone.as_deref()) {
        (Some(id), None) => {
            if body.purpose.is_some() || body.country.is_some() {
                return Err(Error::InvalidRequest(
                    "`purpose` and `country` go with `phone`, not with `id`".into(),
                ));
            }
            VerifyTarget::Id(id.into())
        }
        (None, Some(phone)) => VerifyTarget::Pending {
            phone: state.phone(phone, body.country.as_deref())?,
            purpose: purpose(body.purpose.as_deref())?,
        },
        _ => {
            return Err(Error::InvalidRequest(
                "give either `id` or `phone` (with `purpose`), not both".into(),
            ));
        }
    };
    let outcome = state.otp.verify(&client, target, body.code).await;
    state
        .metrics
        .verify_outcomes
        .with_label_values(&[client.name.as_str(), Checked::counted(&outcome)])
        .inc();
    Ok(HttpResponse::Ok().json(outcome?.approved()?))
}

/// Read a verification.
///
/// Its status, delivery status, attempts left and times (while its message
/// waits, `estimated_send_at`: when it should go out); never the code.
/// Another client's verification is `404`, as one that does not exist.
#[utoipa::path(
    tag = "otp",
    params(("id" = Uuid, Path, description = "The verification's id")),
    responses(
        (status = 200, description = "The verification", body = Verification),
        (status = 400, description = "`invalid_request`: the id is not a UUID", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        ClientErrors,
    ),
    security(("api_key" = []))
)]
#[get("/{id}")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn get_verification(
    client: Client,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.otp.find(&client, id.into_inner().into()).await?))
}

/// Cancel a pending verification.
///
/// Its code stops working at once. A verification that is no longer pending
/// (approved, expired, canceled, failed or locked) is `409 not_pending`.
#[utoipa::path(
    tag = "otp",
    params(("id" = Uuid, Path, description = "The verification's id")),
    responses(
        (status = 200, description = "Canceled", body = Verification),
        (status = 400, description = "`invalid_request`: the id is not a UUID", body = Problem),
        (status = 404, description = "`not_found`", body = Problem),
        (status = 409, description = "`not_pending`", body = Problem),
        ClientErrors,
    ),
    security(("api_key" = []))
)]
#[post("/{id}/cancel")]
#[tracing::instrument(skip_all, fields(client = %client.name))]
pub async fn cancel_verification(
    client: Client,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .otp
            .cancel(&client, id.into_inner().into(), Sends::Omitted)
            .await?,
    ))
}
