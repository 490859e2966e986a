//! The `clients` table: calling applications, known by the SHA-256 of their key.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::ClientId;

/// An active client, as authentication finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub id: ClientId,
    pub name: String,
    pub requests_per_minute: Option<i32>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ClientListing {
    pub name: String,
    pub requests_per_minute: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

statement!(
    INSERT = "insert into clients (id, name, key_hash, requests_per_minute) values ($1, $2, $3, $4)
         on conflict (name) do nothing",
);
/// Inserts a client; `false` when the name is taken.
pub async fn insert(
    db: impl PgExecutor<'_>,
    name: &str,
    key_hash: &[u8],
    requests_per_minute: Option<u32>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(INSERT)
        .bind(ClientId::new())
        .bind(name)
        .bind(key_hash)
        .bind(requests_per_minute.map(|n| n.min(i32::MAX as u32) as i32))
        .execute(db)
        .await?;
    Ok(inserted.rows_affected() == 1)
}

statement!(UPSERT_DEV = "insert into clients (id, name, key_hash, made_by_dev) values ($1, $2, $3, true)
         on conflict (name) do update set key_hash = excluded.key_hash, revoked_at = null, made_by_dev = true",);
/// The `--dev` client: made, or given this key and made active, and marked as
/// made by `--dev`.
pub async fn upsert_dev(db: impl PgExecutor<'_>, name: &str, key_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(UPSERT_DEV)
        .bind(ClientId::new())
        .bind(name)
        .bind(key_hash)
        .execute(db)
        .await?;
    Ok(())
}

statement!(LIST = "select name, requests_per_minute, created_at, revoked_at from clients order by name");
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<ClientListing>, sqlx::Error> {
    sqlx::query_as(LIST).fetch_all(db).await
}

statement!(REVOKE = "update clients set revoked_at = coalesce(revoked_at, now()) where name = $1");
/// Revokes a client's key; `false` when there is no such client.
pub async fn revoke(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(REVOKE).bind(name).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

statement!(SET_REQUESTS_PER_MINUTE = "update clients set requests_per_minute = $2 where name = $1");
/// Sets a client's own request limit; `false` when there is no such client.
pub async fn set_requests_per_minute(
    db: impl PgExecutor<'_>,
    name: &str,
    limit: Option<u32>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(SET_REQUESTS_PER_MINUTE)
        .bind(name)
        .bind(limit.map(|n| n.min(i32::MAX as u32) as i32))
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    BY_KEY_HASH =
        "select id, name, requests_per_minute from clients where key_hash = $1 and revoked_at is null",
);
/// The active client whose key has this hash.
pub async fn by_key_hash(db: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(BY_KEY_HASH)
        .bind(key_hash)
        .fetch_optional(db)
        .await
}

statement!(COUNT_NOT_MADE_BY_DEV = "select count(*) from clients where not made_by_dev");
/// Clients that `serve --dev` did not make.
pub async fn count_not_made_by_dev(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(COUNT_NOT_MADE_BY_DEV).fetch_one(db).await
}
