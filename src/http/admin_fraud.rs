//! `/admin/fraud`: number prefixes allowed or blocked by hand, as
//! `otp-service fraud` does. Every replica applies a change at once. (The
//! detector's flags, and blocked countries and networks, are in
//! `admin_fraud_flags`.)

use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::require_same_origin;
use super::errors::Problem;
use crate::domain::{Prefix, PrefixAction};
use crate::error::{Error, Result};
use crate::fraud::PrefixEntry;
use crate::http::responses::{AdminChangeErrors, AdminChangeGuard, AdminErrors};

/// An allowed or blocked prefix.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"prefix": "+59177", "action": "block", "until": null, "created_at": "2026-12-03T10:00:00Z"}))]
pub struct PrefixReport {
    /// `+` and E.164 digits.
    pub prefix: String,
    /// `allow` (never refused for suspected fraud) or `block` (always refused).
    pub action: String,
    /// The end of a block; null for an allow, or a block until removed.
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<PrefixEntry> for PrefixReport {
    fn from(entry: PrefixEntry) -> Self {
        let (action, until) = match entry.rule.action {
            PrefixAction::Allow => ("allow", None),
            PrefixAction::Block { until } => ("block", until),
        };
        Self {
            prefix: entry.rule.prefix.to_string(),
            action: action.to_owned(),
            until,
            created_at: entry.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "block", "until": "2026-12-10T00:00:00Z"}))]
pub struct PrefixChange {
    /// `allow` or `block`.
    pub action: String,
    /// The end of a block (RFC 3339); left out, until removed.
    pub until: Option<DateTime<Utc>>,
}

fn prefix(raw: &str) -> Result<Prefix> {
    Prefix::parse(raw).map_err(Error::InvalidRequest)
}

/// The allowed and blocked prefixes.
///
/// Every prefix an operator allowed or blocked, by prefix, with the end of
/// each block (ended blocks included until removed).
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "Every prefix, by prefix", body = Vec<PrefixReport>),
        AdminErrors,
    ),
    security(("admin_key" = []))
)]
#[get("/fraud")]
pub async fn list_prefixes(state: web::Data<AppState>) -> Result<HttpResponse> {
    let prefixes: Vec<PrefixReport> = state.fraud.list().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(prefixes))
}

/// Allow or block a prefix.
///
/// A blocked prefix's numbers get `429 rate_limited` with `reason:
/// "suspected_fraud"` at their next request, on every replica, whatever
/// `OTP_FRAUD_MODE` says (test numbers excepted); an allowed one is never
/// refused for suspected fraud. The longest matching prefix decides.
#[utoipa::path(
    tag = "admin",
    params(("prefix" = String, Path, description = "E.164 digits, `+` optional (`%2B59177` or `59177`)")),
    request_body = PrefixChange,
    responses(
        (status = 200, description = "The prefix, as now said", body = PrefixReport),
        (status = 400, description = "`invalid_request`: not a prefix, an unknown action, or an `until` on an allow or in the past", body = Problem),
        AdminChangeErrors,
    ),
    security(("admin_key" = []))
)]
#[put("/fraud/{prefix}")]
pub async fn set_prefix(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::body::JsonBody<PrefixChange>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let prefix = prefix(&path)?;
    let action = match (body.action.as_str(), body.until) {
        ("allow", None) => PrefixAction::Allow,
        ("allow", Some(_)) => return Err(Error::InvalidRequest("an allow has no `until`".into())),
        ("block", Some(until)) if until <= Utc::now() => {
            return Err(Error::InvalidRequest("`until` is in the past".into()));
        }
        ("block", until) => PrefixAction::Block { until },
        _ => return Err(Error::InvalidRequest("`action` is `allow` or `block`".into())),
    };
    let entry = state.fraud.set(&prefix, action).await?;
    tracing::warn!(prefix = %prefix, action = body.action.as_str(), "fraud prefix set by an operator");
    Ok(HttpResponse::Ok().json(PrefixReport::from(entry)))
}

/// Forget a prefix.
///
/// Its numbers are judged by the other prefixes and the fraud flags again,
/// on every replica, from their next request.
#[utoipa::path(
    tag = "admin",
    params(("prefix" = String, Path, description = "E.164 digits, `+` optional")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, description = "`invalid_request`: not a prefix", body = Problem),
        (status = 404, description = "`not_found`: nothing was said of it, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[delete("/fraud/{prefix}")]
pub async fn remove_prefix(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    if state.fraud.remove(&prefix(&path)?).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Error::NotFound("nothing was said of this prefix"))
    }
}
