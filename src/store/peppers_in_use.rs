//! The key ids of the peppers the last start configured (V18).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::store::Bounded;

/// A pepper the service holds, by key id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PepperInUse {
    pub key_id: Vec<u8>,
    /// `OTP_PEPPER`; the others are `OTP_PREVIOUS_PEPPERS`.
    pub current: bool,
    /// When the start that configured it recorded it.
    pub since: DateTime<Utc>,
}

// Replicas starting together replace the record one after the other: without
// the lock both would delete nothing and insert the same key ids.
statement!(LOCK = "lock table peppers_in_use in exclusive mode");
statement!(FORGET = "delete from peppers_in_use");
statement!(RECORD = "insert into peppers_in_use (key_id, current) values ($1, $2)");
statement!(READ = "select key_id, current, since from peppers_in_use order by current desc, key_id");

/// Replaces the record with this start's peppers: `current` first, then the
/// previous ones.
pub async fn record(pool: &PgPool, current: &[u8], previous: &[Vec<u8>]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().bounded().await?;
    sqlx::query(LOCK).execute(&mut *tx).bounded().await?;
    sqlx::query(FORGET).execute(&mut *tx).bounded().await?;
    let all = std::iter::once((current, true)).chain(previous.iter().map(|id| (id.as_slice(), false)));
    for (id, is_current) in all {
        sqlx::query(RECORD)
            .bind(id)
            .bind(is_current)
            .execute(&mut *tx)
            .bounded()
            .await?;
    }
    tx.commit().bounded().await
}

pub async fn read(pool: &PgPool) -> Result<Vec<PepperInUse>, sqlx::Error> {
    sqlx::query_as(READ).fetch_all(pool).bounded().await
}
