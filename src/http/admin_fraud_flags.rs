//! `/admin/fraud/flags` and `/admin/fraud/blocks`: the detector's flags,
//! each of one client; a flag turned into a block for every client; and the
//! countries and end-user networks blocked for every client, as
//! `otp-service fraud` does.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::admin::require_same_origin;
use super::errors::Problem;
use crate::error::{Error, Result};
use crate::fraud::{Block, Subject};
use crate::http::responses::{AdminChangeErrors, AdminChangeGuard, AdminErrors};

/// A standing fraud flag, with what its rule counted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 12, "rule": "unverified_day", "scope": "prefix", "key": "591777", "client": "shop", "country": "BO",
    "counted": 50, "threshold": 20.0, "flagged_at": "2026-12-03T10:00:00Z", "until": "2026-12-04T09:12:00Z"
}))]
pub struct FlagReport {
    /// What to name it by to block its key for every client
    /// (`POST /admin/fraud/flags/{id}/block`, `otp-service fraud block --from-flag`).
    pub id: i64,
    /// `unverified_day`, `unverified_day_all_clients`, `low_conversion_hour` or `ip_countries`.
    pub rule: String,
    /// `country`, `prefix` (calling code and three digits) or `ip` (an IPv4 address or an IPv6 /64).
    pub scope: String,
    pub key: String,
    /// The client whose own traffic raised the flag: under `enforce`, only
    /// its requests are refused for it.
    pub client: String,
    pub country: String,
    /// This client's codes sent and not verified in the day (for
    /// `unverified_day_all_clients`, those of every client flagged with it,
    /// added up); its sends in the hour; its countries in the day.
    pub counted: i64,
    /// The bound `counted` passed (for `low_conversion_hour`, the conversion under which it flags).
    pub threshold: f64,
    pub flagged_at: DateTime<Utc>,
    /// When the rule's window would clear, were nothing more sent.
    pub until: DateTime<Utc>,
}

/// The fraud detector's standing flags.
///
/// Raised by the rules of `OTP_FRAUD_MODE=record|enforce`, each over one
/// client's own traffic (`unverified_day_all_clients` over the clients whose
/// own traffic on a prefix is dirty, one flag each). In `enforce` mode, the
/// client's new requests a flag matches (its country, prefix or end-user
/// network) get `429 rate_limited` with `reason: "suspected_fraud"`; other
/// clients' requests are not refused for it.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "The standing flags, oldest first", body = Vec<FlagReport>),
        AdminErrors,
    ),
    security(("admin_key" = []))
)]
#[get("/fraud/flags")]
pub async fn list_flags(state: web::Data<AppState>) -> Result<HttpResponse> {
    let flags: Vec<FlagReport> = state
        .fraud
        .flags()
        .await?
        .into_iter()
        .map(|row| FlagReport {
            id: row.id,
            rule: row.flag.rule,
            scope: row.flag.scope,
            key: row.flag.key,
            client: row.flag.client_name,
            country: row.flag.country,
            counted: row.flag.counted,
            threshold: row.flag.threshold,
            flagged_at: row.flagged_at,
            until: row.flag.until,
        })
        .collect();
    Ok(HttpResponse::Ok().json(flags))
}

/// Something blocked for every client.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"scope": "prefix", "key": "+591777", "until": null, "created_at": "2026-12-03T10:00:00Z"}))]
pub struct BlockReport {
    /// `prefix`, `country` or `ip` (an end user's network).
    pub scope: String,
    /// `+` and E.164 digits; an ISO 3166 country (`BO`); an IPv4 address or an IPv6 /64.
    pub key: String,
    /// The end of the block; null until removed.
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Block> for BlockReport {
    fn from(block: Block) -> Self {
        Self {
            scope: block.subject.scope().to_owned(),
            key: block.subject.key(),
            until: block.until,
            created_at: block.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"until": "2026-12-10T00:00:00Z"}))]
pub struct BlockChange {
    /// The end of the block (RFC 3339); left out, until removed.
    pub until: Option<DateTime<Utc>>,
}

impl BlockChange {
    fn until(&self) -> Result<Option<DateTime<Utc>>> {
        match self.until {
            Some(until) if until <= Utc::now() => Err(Error::InvalidRequest(
                "`until` is in the past: give a later time, or leave it out to block until removed".into(),
            )),
            until => Ok(until),
        }
    }
}

/// Block a flag's key for every client.
///
/// Blocks what flag `id` flags (its prefix, country or end-user network)
/// for every client, whatever `OTP_FRAUD_MODE` says, as `PUT
/// /admin/fraud/{prefix}` or `PUT /admin/fraud/blocks/{scope}/{key}` would:
/// from their next request, on every replica, its numbers (or requests from
/// that network) get `429 rate_limited` with `reason: "suspected_fraud"`
/// (test numbers and allowed prefixes excepted). The flag stays until its
/// count falls back.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "The flag's `id` in `GET /admin/fraud/flags`")),
    request_body = BlockChange,
    responses(
        (status = 200, description = "What is now blocked", body = BlockReport),
        (status = 400, description = "`invalid_request`: an id that is not a number, or an `until` in the past", body = Problem),
        (status = 404, description = "`not_found`: no such flag stands (it may have cleared), or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[post("/fraud/flags/{id}/block")]
pub async fn block_flag(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: super::body::JsonBody<BlockChange>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let id: i64 = path.parse().map_err(|_| {
        Error::InvalidRequest(format!(
            "a flag's id is the number `id` of GET /admin/fraud/flags; not `{path}`"
        ))
    })?;
    let until = body.until()?;
    let Some((flag, block)) = state.fraud.block_from_flag(id, until).await? else {
        return Err(Error::NotFound(
            "no such flag stands (it may have cleared): see GET /admin/fraud/flags",
        ));
    };
    tracing::warn!(
        flag = id, rule = %flag.flag.rule, client = %flag.flag.client_name, blocked = %block.subject,
        "a fraud flag blocked for every client by an operator"
    );
    Ok(HttpResponse::Ok().json(BlockReport::from(block)))
}

/// The blocked countries and networks.
///
/// Every country and end-user network blocked for every client, with the
/// end of each block (ended blocks included until removed). Blocked
/// prefixes are under `GET /admin/fraud`.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "Every blocked country and network, by scope and key", body = Vec<BlockReport>),
        AdminErrors,
    ),
    security(("admin_key" = []))
)]
#[get("/fraud/blocks")]
pub async fn list_blocks(state: web::Data<AppState>) -> Result<HttpResponse> {
    let blocks: Vec<BlockReport> = state.fraud.blocks().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(blocks))
}

/// A country or a network, as the path names it (prefixes have paths of their own).
fn subject(scope: &str, key: &str) -> Result<Subject> {
    if !matches!(scope, "country" | "ip") {
        return Err(Error::InvalidRequest(format!(
            "`scope` is `country` or `ip` (prefixes are blocked under /admin/fraud/{{prefix}}); not `{scope}`"
        )));
    }
    Subject::parse(scope, key).map_err(Error::InvalidRequest)
}

/// Block a country or a network for every client.
///
/// From its next request, on every replica, a number of the country, or a
/// request whose `end_user_ip` is in the network, gets `429 rate_limited`
/// with `reason: "suspected_fraud"`, for every client, whatever
/// `OTP_FRAUD_MODE` says (test numbers and allowed prefixes excepted).
#[utoipa::path(
    tag = "admin",
    params(
        ("scope" = String, Path, description = "`country` or `ip`"),
        ("key" = String, Path, description = "An ISO 3166 country (`BO`), or an IPv4 address, or an IPv6 address of the /64 (`2001:db8:1:2::`)"),
    ),
    request_body = BlockChange,
    responses(
        (status = 200, description = "The block, as now said", body = BlockReport),
        (status = 400, description = "`invalid_request`: an unknown scope, country or address, or an `until` in the past", body = Problem),
        AdminChangeErrors,
    ),
    security(("admin_key" = []))
)]
#[put("/fraud/blocks/{scope}/{key}")]
pub async fn set_block(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: super::body::JsonBody<BlockChange>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    let subject = subject(&path.0, &path.1)?;
    let block = state.fraud.block(&subject, body.until()?).await?;
    tracing::warn!(blocked = %subject, "blocked for every client by an operator");
    Ok(HttpResponse::Ok().json(BlockReport::from(block)))
}

/// Lift a country's or a network's block.
///
/// Its requests are judged by the prefixes and the fraud flags again, on
/// every replica, from their next request.
#[utoipa::path(
    tag = "admin",
    params(
        ("scope" = String, Path, description = "`country` or `ip`"),
        ("key" = String, Path, description = "An ISO 3166 country, or an address of the network"),
    ),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, description = "`invalid_request`: an unknown scope, country or address", body = Problem),
        (status = 404, description = "`not_found`: it is not blocked, or admin endpoints are off (`OTP_ADMIN_KEY` unset)", body = Problem),
        AdminChangeGuard,
    ),
    security(("admin_key" = []))
)]
#[delete("/fraud/blocks/{scope}/{key}")]
pub async fn remove_block(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    require_same_origin(&request)?;
    if state.fraud.unblock(&subject(&path.0, &path.1)?).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Error::NotFound("it is not blocked: see GET /admin/fraud/blocks"))
    }
}
