//! The `idempotency_keys` table: the first answer to a (client, key), kept 24 h.

use crate::store::Bounded;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::ClientId;

/// How long an answer is kept for its retries.
pub const KEPT: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(sqlx::FromRow)]
pub struct Stored {
    pub request_hash: Vec<u8>,
    pub status: Option<i16>,
    pub response: Option<Value>,
}

statement!(
    CLAIM = "insert into idempotency_keys (client_id, key, request_hash, claim) values ($1, $2, $3, $5)
         on conflict (client_id, key) do update
             set request_hash = excluded.request_hash, claim = excluded.claim, status = null,
                 response = null, created_at = now()
             where idempotency_keys.created_at < now() - make_interval(secs => $6)
                or (idempotency_keys.status is null
                    and idempotency_keys.created_at < now() - make_interval(secs => $4))",
);
/// Claims the key for a first request with `claim` as its token: a new key, or
/// one whose answer is older than `KEPT`, or one whose claim was abandoned
/// (unanswered for `abandoned_after`). `false` when another holds it.
pub async fn claim(
    db: impl PgExecutor<'_>,
    client: ClientId,
    key: &str,
    request_hash: &[u8],
    claim: Uuid,
    abandoned_after: Duration,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(CLAIM)
        .bind(client)
        .bind(key)
        .bind(request_hash)
        .bind(abandoned_after.as_secs_f64())
        .bind(claim)
        .bind(KEPT.as_secs_f64())
        .execute(db)
        .bounded()
        .await?;
    Ok(claimed.rows_affected() == 1)
}

statement!(
    FIND = "select request_hash, status, response from idempotency_keys where client_id = $1 and key = $2",
);
pub async fn find(
    db: impl PgExecutor<'_>,
    client: ClientId,
    key: &str,
) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as(FIND)
        .bind(client)
        .bind(key)
        .fetch_optional(db)
        .bounded()
        .await
}

statement!(
    SAVE = "update idempotency_keys set status = $4, response = $5
         where client_id = $1 and key = $2 and claim = $3 and status is null",
);
/// Keeps the answer of the claim's request (only its own, and only once).
pub async fn save(
    db: impl PgExecutor<'_>,
    client: ClientId,
    key: &str,
    claim: Uuid,
    status: u16,
    body: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(SAVE)
        .bind(client)
        .bind(key)
        .bind(claim)
        .bind(status as i16)
        .bind(body)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    RELEASE =
        "delete from idempotency_keys where client_id = $1 and key = $2 and claim = $3 and status is null",
);
/// Releases the claim, unanswered.
pub async fn release(
    db: impl PgExecutor<'_>,
    client: ClientId,
    key: &str,
    claim: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(RELEASE)
        .bind(client)
        .bind(key)
        .bind(claim)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    DELETE_EXPIRED = "delete from idempotency_keys
         where ctid = any(array(select ctid from idempotency_keys
                                where created_at < now() - make_interval(secs => $2)
                                limit $1 for update skip locked))",
);
/// Deletes up to `batch` records older than `KEPT`. The table has no
/// single-column key, so rows are picked by `ctid`.
pub async fn delete_expired(db: impl PgExecutor<'_>, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(DELETE_EXPIRED)
        .bind(batch)
        .bind(KEPT.as_secs_f64())
        .execute(db)
        .bounded()
        .await?
        .rows_affected())
}
