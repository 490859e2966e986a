//! The `test_numbers` table: numbers a client keeps for reviewers and its own
//! tests, each with the hash of its fixed code and the time it ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::ClientId;
use crate::store::Bounded;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TestNumberRow {
    pub phone: String,
    pub until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A test number in use, with its code's hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActiveTestNumber {
    pub phone: String,
    pub code_hash: String,
    pub until: DateTime<Utc>,
}

statement!(
    ALL_ACTIVE = "select phone, code_hash, until from test_numbers where client_id = $1 and until > now()"
);
/// The client's test numbers in use now (a few: reviewers' and its own tests').
pub async fn active(db: impl PgExecutor<'_>, client: ClientId) -> Result<Vec<ActiveTestNumber>, sqlx::Error> {
    sqlx::query_as(ALL_ACTIVE)
        .bind(client)
        .fetch_all(db)
        .bounded()
        .await
}

statement!(
    PUT = "insert into test_numbers (client_id, phone, code_hash, until)
         select id, $2, $3, $4 from clients where name = $1
         on conflict (client_id, phone) do update
             set code_hash = excluded.code_hash, until = excluded.until, created_at = now()",
);
/// Adds (or replaces) a test number of the client named `client`; `false`
/// when there is no such client.
pub async fn put(
    db: impl PgExecutor<'_>,
    client: &str,
    phone: &str,
    code_hash: &str,
    until: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(PUT)
        .bind(client)
        .bind(phone)
        .bind(code_hash)
        .bind(until)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    LIST = "select t.phone, t.until, t.created_at from test_numbers t
         join clients c on c.id = t.client_id where c.name = $1 order by t.phone",
);
pub async fn list(db: impl PgExecutor<'_>, client: &str) -> Result<Vec<TestNumberRow>, sqlx::Error> {
    sqlx::query_as(LIST).bind(client).fetch_all(db).bounded().await
}

statement!(
    REMOVE = "delete from test_numbers t using clients c
         where c.id = t.client_id and c.name = $1 and t.phone = $2",
);
/// Removes a test number; `false` when the client has no such number.
pub async fn remove(db: impl PgExecutor<'_>, client: &str, phone: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(REMOVE)
        .bind(client)
        .bind(phone)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A test number in use, with the key id of the pepper its code's hash
/// names (base64, as argon2's PHC `keyid`; `None` for hashes made before
/// key ids).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TestNumberKey {
    pub client: String,
    pub phone: String,
    pub key_id: Option<String>,
}

statement!(
    IN_USE_BY_PEPPER = "select c.name as client, t.phone,
                substring(t.code_hash from 'keyid=([A-Za-z0-9+/]+)') as key_id
         from test_numbers t join clients c on c.id = t.client_id
         where t.until > now() and c.revoked_at is null order by c.name, t.phone",
);
/// The test numbers in use (not ended, of clients not revoked), each with the
/// pepper its code needs.
pub async fn in_use_by_pepper(db: impl PgExecutor<'_>) -> Result<Vec<TestNumberKey>, sqlx::Error> {
    sqlx::query_as(IN_USE_BY_PEPPER).fetch_all(db).bounded().await
}

statement!(
    ANY_ENDED = "select exists (select 1 from test_numbers where until < now() - make_interval(secs => $1))"
);
statement!(
    DELETE_ENDED = "delete from test_numbers where (client_id, phone) in (
         select client_id, phone from test_numbers where until < now() - make_interval(secs => $2)
         limit $1 for update skip locked)",
);
/// Deletes at most `batch` test numbers that ended more than `kept` ago.
/// Asked first whether there is any: the table's trigger tells every replica
/// to drop the clients it holds at each delete statement, even one that
/// deletes nothing, and the sweeper comes by every minute.
pub async fn delete_ended(pool: &PgPool, batch: i64, kept: Duration) -> Result<u64, sqlx::Error> {
    let any: bool = sqlx::query_scalar(ANY_ENDED)
        .bind(kept.as_secs_f64())
        .fetch_one(pool)
        .bounded()
        .await?;
    if !any {
        return Ok(0);
    }
    let done = sqlx::query(DELETE_ENDED)
        .bind(batch)
        .bind(kept.as_secs_f64())
        .execute(pool)
        .bounded()
        .await?;
    Ok(done.rows_affected())
}
