//! What is read of the queue as a whole.

use sqlx::PgPool;

/// What `/metrics` shows of the queue.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct QueueStats {
    pub depth: i64,
    /// Seconds since the oldest waiting message was queued; 0 when none waits.
    pub oldest_age: f64,
}

statement!(DEPTH = concat!("select count(*) from outbox_messages where ", waiting_to_send!()));
/// Messages waiting to be sent (due or not), for admission control and the admin page.
pub async fn depth(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(DEPTH).fetch_one(pool).await
}

statement!(
    STATS = concat!(
        "select count(*) as depth,
                coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as oldest_age
         from outbox_messages where ",
        waiting_to_send!()
    )
);
/// The queue's depth and age, read through `ops_pool` (`/metrics`' own).
pub async fn stats(ops_pool: &PgPool) -> Result<QueueStats, sqlx::Error> {
    sqlx::query_as(STATS).fetch_one(ops_pool).await
}

statement!(
    UNOPENABLE = concat!(
        "select count(*) from outbox_messages where ",
        waiting_to_send!(),
        " and get_byte(body_sealed, 0) = 1
           and length(body_sealed) > 7 and substring(body_sealed from 2 for 6) <> all($1)"
    )
);
/// Messages waiting to be sent whose sealed text names a key id that is none
/// of `key_ids`. Texts sealed before key ids name none: they are tried under
/// every pepper, and not counted.
pub async fn unopenable(pool: &PgPool, key_ids: &[Vec<u8>]) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(UNOPENABLE).bind(key_ids).fetch_one(pool).await
}
