//! The `rate_cells` table: request-rate windows as one GCRA row each, taken
//! through `take_rate_cells` (defined in V7__fast_refusals.sql) with synchronous commit
//! off. For windows where losing a few counts in a crash is harmless only.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::PgExecutor;

#[derive(sqlx::FromRow)]
struct Taken {
    granted: Option<i32>,
    retry_after: Option<f64>,
}

statement!(TAKE = "select granted, retry_after from take_rate_cells($1, $2, $3, $4)");
/// Takes up to `wanted` requests of the window `key` (`max_hits` per `span`):
/// how many it got, or when it got none, the seconds until one fits. Call it
/// with the pool, never inside a transaction (see the function's comment).
pub async fn take(
    db: impl PgExecutor<'_>,
    key: &str,
    max_hits: u32,
    span: Duration,
    wanted: u32,
) -> Result<Result<u32, f64>, sqlx::Error> {
    let taken: Taken = sqlx::query_as(TAKE)
        .bind(key)
        .bind(max_hits.clamp(1, i32::MAX as u32) as i32)
        .bind(span)
        .bind(wanted.clamp(1, i32::MAX as u32) as i32)
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(match taken.granted {
        Some(n) if n > 0 => Ok(n as u32),
        _ => Err(taken.retry_after.unwrap_or(1.0)),
    })
}
