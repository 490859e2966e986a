//! `/admin/clients/{name}/test-numbers`: a client's numbers for app-store
//! reviewers and its own tests. A request for one sends nothing, and its fixed
//! code verifies it. The code is taken here and hashed; it is never answered
//! nor logged.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::require_same_origin;
use super::errors::Problem;
use crate::clients::test_numbers::TestNumber;
use crate::domain::{FieldError, PhoneNumber, parse_until};
use crate::error::{Error, Result};
use crate::http::responses::{AdminAuth, AdminChangeGuard, AdminGuard, CrossOrigin};

/// A test number as operators see it; never its code.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "phone": "+59169657008",
    "until": "2027-02-19T10:42:00Z",
    "created_at": "2026-11-21T10:42:00Z",
    "active": true
}))]
pub struct TestNumberReport {
    /// E.164.
    pub phone: String,
    /// When it ends: after that, a request for it is sent as for any number.
    pub until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// Whether it has not ended yet.
    pub active: bool,
}

impl From<TestNumber> for TestNumberReport {
    fn from(n: TestNumber) -> Self {
        Self {
            active: n.active(),
            phone: n.phone,
            until: n.until,
            created_at: n.created_at,
        }
    }
}

/// A test number to add, or whose code and end to replace.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"phone": "+59169657008", "code": "123456", "until": "2027-02-19T00:00:00Z"}))]
pub struct NewTestNumber {
    /// International, with its `+`.
    pub phone: String,
    /// The fixed code, 6 to 10 digits (4 and 5 too with `OTP_ALLOW_WEAK_CODES`).
    #[schema(value_type = String, example = "123456")]
    pub code: SecretString,
    /// When it ends, in the future and at most 365 days away; by default 90
    /// days from now. A date (`2027-03-01`: the whole of that UTC day) or an
    /// RFC 3339 time (`2027-03-01T12:00:00Z`), as `clients test-numbers add
    /// --until` takes.
    #[schema(value_type = Option<String>, example = "2027-03-01")]
    pub until: Option<String>,
}

fn phone(raw: &str) -> Result<PhoneNumber> {
    PhoneNumber::parse(raw, None).map_err(|_| {
        Error::InvalidPhone("the phone number must be a valid international number: +59170000000".into())
    })
}

/// Read as the domain's check would name it: a time that does not parse is as
/// wrong an `until` as one in the past.
fn until(raw: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    raw.map(|raw| {
        parse_until(raw).map_err(|detail| {
            Error::InvalidField(FieldError {
                field: "until",
                detail,
            })
        })
    })
    .transpose()
}

/// A client's test numbers.
///
/// Ended ones too (`active: false`), until they are removed or, 30 days after
/// their end, swept. Never their codes.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    responses(
        (status = 200, description = "The test numbers, by phone", body = Vec<TestNumberReport>),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminGuard,
    ),
    security(("admin_key" = []))
)]
#[get("/clients/{name}/test-numbers")]
pub async fn list_test_numbers(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse> {
    let numbers = state.clients.test_numbers(&name).await?;
    let numbers: Vec<TestNumberReport> = numbers.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(numbers))
}

/// Add a test number to a client.
///
/// From now until `until`, a request of this client for the number sends
/// nothing (`delivery_status: sent`), and the fixed `code` verifies it. Adding
/// a number the client has already replaces its code and its end.
#[utoipa::path(
    tag = "admin",
    params(("name" = String, Path, description = "The client's name")),
    request_body = NewTestNumber,
    responses(
        (status = 201, description = "The test number (never its code)", body = TestNumberReport),
        (status = 400, description = "`invalid_phone`, or `invalid_request`: a malformed body or unknown field, or a refused `code` (fewer than 6 digits without `OTP_ALLOW_WEAK_CODES`, say) or `until` (named in `field`)", body = Problem),
        (status = 404, description = "`not_found`: no client of that name, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        (status = 503, description = "`unavailable`: the database does not answer, or no hashing thread was free in time", body = Problem,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        AdminAuth,
        CrossOrigin,
    ),
    security(("admin_key" = []))
)]
#[post("/clients/{name}/test-numbers")]
pub async fn add_test_number(
    request: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: super::body::JsonBody<NewTestNumber>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let phone = phone(&body.phone)?;
    let until = until(body.until.as_deref())?;
    let number = state
        .clients
        .add_test_number(&name, &phone, body.code.expose_secret(), until)
        .await?;
    tracing::info!(client = name.as_str(), phone = ?phone, "test number added by an operator");
    Ok(HttpResponse::Created().json(TestNumberReport::from(number)))
}

/// Remove a test number from a client.
///
/// Requests for it are sent as for any number from now on. The phone goes in
/// the path URL-encoded or with its bare `+`: `%2B59169657008` or `+59169657008`.
#[utoipa::path(
    tag = "admin",
    params(
        ("name" = String, Path, description = "The client's name"),
        ("phone" = String, Path, description = "The test number, international"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`invalid_phone`", body = Problem),
        (status = 404, description = "`not_found`: no client of that name, no such test number, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[delete("/clients/{name}/test-numbers/{phone}")]
pub async fn remove_test_number(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let (name, raw) = path.into_inner();
    let phone = phone(&raw)?;
    state.clients.remove_test_number(&name, &phone).await?;
    tracing::info!(client = name.as_str(), phone = ?phone, "test number removed by an operator");
    Ok(HttpResponse::NoContent().finish())
}
