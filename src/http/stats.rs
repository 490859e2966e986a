//! `GET /stats` (the calling client's) and `GET /admin/stats` (every
//! client's): conversion figures from the rolled-up stats.

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::errors::Problem;
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::http::responses::{AdminErrors, ClientErrors};
use crate::stats::{Question, Report};

/// The days and the grouping of `GET /stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// First day, `YYYY-MM-DD` (UTC), inclusive; default six days before `to`.
    #[param(example = "2026-11-27")]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; default today. At most 366 days from `from`.
    #[param(example = "2026-12-03")]
    to: Option<String>,
    /// `country` or `day`; left out, only the total.
    #[param(example = "country")]
    group_by: Option<String>,
}

/// The days and the grouping of `GET /admin/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminStatsQuery {
    /// First day, `YYYY-MM-DD` (UTC), inclusive; default six days before `to`.
    #[param(example = "2026-11-27")]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive; default today. At most 366 days from `from`.
    #[param(example = "2026-12-03")]
    to: Option<String>,
    /// `country`, `day` or `client`; left out, only the total.
    #[param(example = "client")]
    group_by: Option<String>,
}

/// The calling client's conversion figures.
///
/// What this client's verifications requested on the given UTC days came to:
/// `requested`, `sent`, `delivery_failed` by reason, `approved`, `expired`,
/// `locked`, `conversion_rate` (approved / sent) and the median time from
/// request to approval, in total and by `country` or `day`. Test numbers
/// are left out. Every figure counts toward the day its verification was
/// requested, and outlives the verification's retention.
#[utoipa::path(
    tag = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "The figures", body = Report),
        (status = 400, description = "`invalid_request`: a bad `from`, `to` or `group_by` (named in `field`), `from` after `to`, more than 366 days, or an unknown parameter", body = Problem),
        ClientErrors,
    ),
    security(("api_key" = []))
)]
#[get("")]
pub async fn client_stats(
    state: web::Data<AppState>,
    client: Client,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse> {
    let q = &query;
    let question = Question::parse_today(q.from.as_deref(), q.to.as_deref(), q.group_by.as_deref(), false)
        .map_err(Error::InvalidField)?;
    Ok(HttpResponse::Ok().json(state.stats.of_client(&client, question).await?))
}

/// Every client's conversion figures.
///
/// As `GET /stats`, across all clients together, in total and by `country`,
/// `day` or `client` (its name).
#[utoipa::path(
    tag = "admin",
    params(AdminStatsQuery),
    responses(
        (status = 200, description = "The figures", body = Report),
        (status = 400, description = "`invalid_request`: a bad `from`, `to` or `group_by` (named in `field`), `from` after `to`, more than 366 days, or an unknown parameter", body = Problem),
        AdminErrors,
    ),
    security(("admin_key" = []))
)]
#[get("/stats")]
pub async fn admin_stats(
    state: web::Data<AppState>,
    query: web::Query<AdminStatsQuery>,
) -> Result<HttpResponse> {
    let q = &query;
    let question = Question::parse_today(q.from.as_deref(), q.to.as_deref(), q.group_by.as_deref(), true)
        .map_err(Error::InvalidField)?;
    Ok(HttpResponse::Ok().json(state.stats.of_all(question).await?))
}
