//! What the fraud rules count over `verifications` (see `fraud::rules`):
//! one statement per rule, each client's traffic on each key counted apart.
//! The windows and the least count worth returning are parameters; the
//! rules' thresholds are decided in Rust.

use crate::store::Bounded;
use crate::store::{long_scan, scan_call};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgPool, Postgres};

use crate::domain::ClientId;

/// One client's codes on one country or prefix, over the last `window`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnverifiedCounts {
    pub key: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub country: String,
    /// Verifications asked for.
    pub requested: i64,
    /// Of them, verified.
    pub approved: i64,
    /// Codes sent (resends included) for the ones not verified.
    pub unverified: i64,
    /// The oldest verification not verified.
    pub oldest: DateTime<Utc>,
    /// The most codes this client verified on the key in one day of the baseline.
    pub own_best_day: i64,
    /// The most codes all clients together verified on the key in one day of the baseline.
    pub all_best_day: i64,
}

statement!(
    UNVERIFIED = "with recent as (
             select case when $1 = 'prefix' then prefix else country end as key, client_id,
                    count(*) as requested, count(*) filter (where status = 'approved') as approved,
                    coalesce(sum(sends) filter (where status <> 'approved'), 0)::bigint as unverified,
                    coalesce(min(created_at) filter (where status <> 'approved'), now()) as oldest,
                    min(country) as country
             from verifications
             where created_at > now() - $2::interval and not test_number
             group by 1, 2
         ), verified_days as (
             select case when $1 = 'prefix' then prefix else country end as key, client_id,
                    date_trunc('day', verified_at) as day, count(*) as n
             from verifications
             where status = 'approved' and verified_at > now() - $3::interval
             group by 1, 2, 3
         ), own_best as (
             select key, client_id, max(n) as n from verified_days group by 1, 2
         ), all_best as (
             select key, max(n) as n
             from (select key, day, sum(n) as n from verified_days group by 1, 2) days
             group by 1
         )
         select r.key, r.client_id, c.name as client_name, coalesce(r.country, 'unknown') as country,
                r.requested, r.approved, r.unverified, r.oldest,
                coalesce(o.n, 0)::bigint as own_best_day, coalesce(a.n, 0)::bigint as all_best_day
         from recent r
         join clients c on c.id = r.client_id
         left join own_best o on o.key = r.key and o.client_id = r.client_id
         left join all_best a on a.key = r.key
         where r.key is not null and r.unverified >= $4
         order by r.key, c.name",
);
/// Each client's codes on each `scope` (`country` or `prefix`) over the last
/// `window`, with the best verified days of the last `baseline`, where the
/// client's unverified codes reach `least`.
pub async fn unverified(
    pool: &PgPool,
    limit: Duration,
    scope: &str,
    window: Duration,
    baseline: Duration,
    least: i64,
) -> Result<Vec<UnverifiedCounts>, sqlx::Error> {
    scan_all(
        pool,
        limit,
        sqlx::query_as(UNVERIFIED)
            .bind(scope)
            .bind(window)
            .bind(baseline)
            .bind(least),
    )
    .await
}

/// One client's verifications on one prefix, over the last `window`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConversionCounts {
    pub key: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub country: String,
    pub sends: i64,
    pub approved: i64,
    pub oldest: DateTime<Utc>,
}

statement!(
    CONVERSION = "select v.prefix as key, v.client_id, c.name as client_name,
                coalesce(min(v.country), 'unknown') as country, count(*) as sends,
                count(*) filter (where v.status = 'approved') as approved, min(v.created_at) as oldest
         from verifications v join clients c on c.id = v.client_id
         where v.created_at > now() - $1::interval and not v.test_number and v.prefix is not null
         group by v.prefix, v.client_id, c.name
         having count(*) >= $2
         order by 1, 3",
);
/// Each client's verifications and how many were verified, on each prefix
/// with at least `least` of them over the last `window`.
pub async fn conversion(
    pool: &PgPool,
    limit: Duration,
    window: Duration,
    least: i64,
) -> Result<Vec<ConversionCounts>, sqlx::Error> {
    scan_all(pool, limit, sqlx::query_as(CONVERSION).bind(window).bind(least)).await
}

/// One client's end-user network, over the last `window`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct NetworkCounts {
    pub key: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub countries: i64,
    pub oldest: DateTime<Utc>,
}

statement!(
    NETWORK_COUNTRIES = "select v.end_user_network as key, v.client_id, c.name as client_name,
                count(distinct v.country) as countries, min(v.created_at) as oldest
         from verifications v join clients c on c.id = v.client_id
         where v.created_at > now() - $1::interval and v.end_user_network is not null
           and v.country is not null and not v.test_number
         group by v.end_user_network, v.client_id, c.name
         having count(distinct v.country) >= $2
         order by 1, 3",
);
/// The countries of the numbers each client asked for from each end-user
/// network (as the client stated it) over the last `window`, where they
/// reach `least`.
pub async fn network_countries(
    pool: &PgPool,
    limit: Duration,
    window: Duration,
    least: i64,
) -> Result<Vec<NetworkCounts>, sqlx::Error> {
    scan_all(
        pool,
        limit,
        sqlx::query_as(NETWORK_COUNTRIES).bind(window).bind(least),
    )
    .await
}

/// Every row `query` answers, read in a `long_scan` of `limit`.
async fn scan_all<O>(
    pool: &PgPool,
    limit: Duration,
    query: QueryAs<'_, Postgres, O, PgArguments>,
) -> Result<Vec<O>, sqlx::Error>
where
    O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
{
    let mut scan = long_scan(pool, limit).await?;
    let rows = query.fetch_all(&mut *scan).bounded_for(scan_call(limit)).await?;
    scan.commit().bounded().await?;
    Ok(rows)
}
