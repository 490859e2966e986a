//! The `fraud_prefixes` table: number prefixes operators allow or block.

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PrefixRow {
    pub prefix: String,
    pub action: String,
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

statement!(ALL = "select prefix, action, until, created_at from fraud_prefixes order by prefix");
/// Every allowed and blocked prefix, ended blocks included.
pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<PrefixRow>, sqlx::Error> {
    sqlx::query_as(ALL).fetch_all(db).bounded().await
}

statement!(
    SET = "insert into fraud_prefixes (prefix, action, until) values ($1, $2, $3)
         on conflict (prefix) do update set action = excluded.action, until = excluded.until,
                                            created_at = now()
         returning prefix, action, until, created_at",
);
/// Allows or blocks `prefix` (replacing what was said of it before); the row
/// as now stored.
pub async fn set(
    db: impl PgExecutor<'_>,
    prefix: &str,
    action: &str,
    until: Option<DateTime<Utc>>,
) -> Result<PrefixRow, sqlx::Error> {
    sqlx::query_as(SET)
        .bind(prefix)
        .bind(action)
        .bind(until)
        .fetch_one(db)
        .bounded()
        .await
}

statement!(REMOVE = "delete from fraud_prefixes where prefix = $1");
/// Forgets `prefix`; `false` when nothing was said of it.
pub async fn remove(db: impl PgExecutor<'_>, prefix: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(REMOVE)
        .bind(prefix)
        .execute(db)
        .bounded()
        .await?
        .rows_affected()
        == 1)
}
