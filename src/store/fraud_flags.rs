//! The `fraud_flags` table, and the rules' counts over `verifications`
//! (see `fraud::detect`): each rule one statement over the last day or hour.

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::ClientId;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FlagRow {
    pub rule: String,
    pub scope: String,
    pub key: String,
    pub client_id: ClientId,
    pub client_name: String,
    /// The country of the flagged numbers (`unknown` when none), for the metric.
    pub country: String,
    pub counted: i64,
    pub threshold: f64,
    pub flagged_at: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

statement!(
    UNVERIFIED_DAY = "with recent as (
             select case when $1 = 'prefix' then v.prefix else v.country end as key, v.client_id,
                    coalesce(sum(v.sends) filter (where v.status <> 'approved'), 0) as unverified,
                    min(v.created_at) filter (where v.status <> 'approved') as oldest,
                    min(v.country) as country
             from verifications v
             where v.created_at > now() - interval '1 day' and not v.test_number
             group by 1, 2
         ), by_key as (
             select key, sum(unverified)::bigint as unverified, min(oldest) as oldest, min(country) as country,
                    (array_agg(client_id order by unverified desc))[1] as client_id
             from recent where key is not null group by key
         ), best_day as (
             select key, max(n) as n from (
                 select case when $1 = 'prefix' then prefix else country end as key,
                        date_trunc('day', verified_at), count(*) as n
                 from verifications
                 where status = 'approved' and verified_at > now() - interval '14 days'
                 group by 1, 2) days
             group by key
         )
         select 'unverified_day' as rule, $1 as scope, b.key, b.client_id, c.name as client_name,
                coalesce(b.country, 'unknown') as country, b.unverified as counted, greatest(20, 0.2 * coalesce(d.n, 0))::float8 as threshold,
                now() as flagged_at, b.oldest + interval '1 day' as until
         from by_key b join clients c on c.id = b.client_id left join best_day d on d.key = b.key
         where b.unverified > greatest(20, 0.2 * coalesce(d.n, 0))",
);
/// Rule 1, by `scope` (`country` or `prefix`): codes sent and not verified
/// in the last day above max(20, 0.2 × the best day of verified codes of
/// the last 14 days).
pub async fn unverified_day(pool: &PgPool, scope: &str) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(UNVERIFIED_DAY)
        .bind(scope)
        .fetch_all(pool)
        .bounded()
        .await
}

statement!(
    LOW_CONVERSION_HOUR = "with recent as (
             select prefix as key, client_id, count(*) as sends,
                    count(*) filter (where status = 'approved') as approved, min(created_at) as oldest,
                    min(country) as country
             from verifications
             where created_at > now() - interval '1 hour' and not test_number and prefix is not null
             group by 1, 2
         ), by_key as (
             select key, sum(sends)::bigint as sends, sum(approved) as approved, min(oldest) as oldest,
                    min(country) as country, (array_agg(client_id order by sends desc))[1] as client_id
             from recent group by key
         )
         select 'low_conversion_hour' as rule, 'prefix' as scope, b.key, b.client_id, c.name as client_name,
                coalesce(b.country, 'unknown') as country, b.sends as counted, 0.1::float8 as threshold, now() as flagged_at,
                b.oldest + interval '1 hour' as until
         from by_key b join clients c on c.id = b.client_id
         where b.sends >= 20 and b.approved < 0.1 * b.sends",
);
/// Rule 2: a prefix whose conversion in the last hour is under 10 % over at
/// least 20 sends.
pub async fn low_conversion_hour(pool: &PgPool) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(LOW_CONVERSION_HOUR)
        .fetch_all(pool)
        .bounded()
        .await
}

statement!(
    IP_COUNTRIES = "select 'ip_countries' as rule, 'ip' as scope, end_user_network as key,
                (array_agg(v.client_id order by v.created_at desc))[1] as client_id,
                (array_agg(c.name order by v.created_at desc))[1] as client_name,
                'several' as country, count(distinct v.country) as counted, 3::float8 as threshold, now() as flagged_at,
                min(v.created_at) + interval '1 day' as until
         from verifications v join clients c on c.id = v.client_id
         where v.created_at > now() - interval '1 day' and v.end_user_network is not null
           and v.country is not null and not v.test_number
         group by v.end_user_network
         having count(distinct v.country) > 3",
);
/// Rule 3: an end user's network asking for numbers of more than three
/// countries in a day.
pub async fn ip_countries(pool: &PgPool) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(IP_COUNTRIES).fetch_all(pool).bounded().await
}

statement!(
    CURRENT = "select f.rule, f.scope, f.key, f.client_id, c.name as client_name, f.country, f.counted, f.threshold,
                f.flagged_at, f.until
         from fraud_flags f join clients c on c.id = f.client_id
         order by f.flagged_at, f.rule, f.key",
);
pub async fn current(db: impl PgExecutor<'_>) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(CURRENT).fetch_all(db).bounded().await
}

statement!(
    RAISE = "insert into fraud_flags (rule, scope, key, client_id, counted, threshold, until, country)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (rule, scope, key) do nothing",
);
/// Raises a flag (told to every replica); `false` when another replica's
/// detector raised it first.
pub async fn raise(db: impl PgExecutor<'_>, flag: &FlagRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(RAISE)
        .bind(&flag.rule)
        .bind(&flag.scope)
        .bind(&flag.key)
        .bind(flag.client_id)
        .bind(flag.counted)
        .bind(flag.threshold)
        .bind(flag.until)
        .bind(&flag.country)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    UPDATE = "update fraud_flags set client_id = $4, counted = $5, threshold = $6, until = $7
         where rule = $1 and scope = $2 and key = $3",
);
/// A standing flag's figures, brought up to date (told to no one).
pub async fn update(db: impl PgExecutor<'_>, flag: &FlagRow) -> Result<(), sqlx::Error> {
    sqlx::query(UPDATE)
        .bind(&flag.rule)
        .bind(&flag.scope)
        .bind(&flag.key)
        .bind(flag.client_id)
        .bind(flag.counted)
        .bind(flag.threshold)
        .bind(flag.until)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(CLEAR = "delete from fraud_flags where rule = $1 and scope = $2 and key = $3");
pub async fn clear(db: impl PgExecutor<'_>, rule: &str, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(CLEAR)
        .bind(rule)
        .bind(scope)
        .bind(key)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}
