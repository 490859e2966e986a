//! The `test_numbers` table: numbers a client keeps for reviewers and its own
//! tests, each with the hash of its fixed code and the time it ends.

use crate::store::Bounded;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::ClientId;

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
