//! The `fraud_blocks` table: countries and end-user networks operators
//! block for every client (prefixes are in `fraud_prefixes`).

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BlockRow {
    /// `country` or `ip`.
    pub scope: String,
    pub key: String,
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

statement!(ALL = "select scope, key, until, created_at from fraud_blocks order by scope, key");
/// Every block, ended ones included.
pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<BlockRow>, sqlx::Error> {
    sqlx::query_as(ALL).fetch_all(db).bounded().await
}

statement!(
    SET = "insert into fraud_blocks (scope, key, until) values ($1, $2, $3)
         on conflict (scope, key) do update set until = excluded.until, created_at = now()
         returning scope, key, until, created_at",
);
/// Blocks `key` of `scope` until `until` (or until removed), replacing an
/// earlier block of it; the row as now stored.
pub async fn set(
    db: impl PgExecutor<'_>,
    scope: &str,
    key: &str,
    until: Option<DateTime<Utc>>,
) -> Result<BlockRow, sqlx::Error> {
    sqlx::query_as(SET)
        .bind(scope)
        .bind(key)
        .bind(until)
        .fetch_one(db)
        .bounded()
        .await
}

statement!(REMOVE = "delete from fraud_blocks where scope = $1 and key = $2");
/// Lifts a block; `false` when there was none.
pub async fn remove(db: impl PgExecutor<'_>, scope: &str, key: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(REMOVE)
        .bind(scope)
        .bind(key)
        .execute(db)
        .bounded()
        .await?
        .rows_affected()
        == 1)
}
