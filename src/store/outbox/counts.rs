//! What is read of the queue as a whole.

use crate::store::Bounded;
use sqlx::{PgExecutor, PgPool, Postgres, Transaction};

/// What `/metrics` shows of the queue.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueStats {
    pub depth: i64,
    /// Seconds since the oldest waiting message was queued; 0 when none waits.
    pub oldest_age: f64,
    /// Waiting messages by client name, every client listed (0 included).
    #[sqlx(skip)]
    pub by_client: Vec<(String, i64)>,
}

statement!(DEPTH = concat!("select count(*) from outbox_messages where ", waiting_to_send!()));
/// Messages waiting to be sent (due or not), for admission control and the admin page.
pub async fn depth(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(DEPTH).fetch_one(pool).bounded().await
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
    let mut stats: QueueStats = sqlx::query_as(STATS).fetch_one(ops_pool).bounded().await?;
    stats.by_client = sqlx::query_as(BY_CLIENT).fetch_all(ops_pool).bounded().await?;
    Ok(stats)
}

statement!(
    BY_CLIENT = concat!(
        "select c.name, count(m.id) from clients c
         left join outbox_messages m on m.client_id = c.id and ",
        waiting_to_send!("m"),
        " group by c.name order by c.name"
    )
);

/// One client's part of the queue, and every client's that has messages waiting.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct Waiting {
    pub client_id: crate::domain::ClientId,
    pub share: i32,
    pub waiting: i64,
}

statement!(WAITING_BY_CLIENT = "select client_id, share, waiting from waiting_by_client()");
/// Waiting messages of each client that has some, with its share: what
/// admission needs to place a new message in the fair order
/// (`waiting_by_client`, V17).
pub async fn waiting_by_client(db: impl PgExecutor<'_>) -> Result<Vec<Waiting>, sqlx::Error> {
    sqlx::query_as(WAITING_BY_CLIENT).fetch_all(db).bounded().await
}

statement!(LOCK_CLIENT_QUEUE = "select client_id, share, waiting from lock_client_queue($1)");
/// Holds the client's queue until the transaction ends, then reads
/// `waiting_by_client` (in one statement, `lock_client_queue`, V12): its
/// requests are admitted one at a time, so parallel requests cannot all see
/// room that only one of them has. Other clients' requests do not wait for it.
pub async fn lock_client_queue(
    tx: &mut Transaction<'_, Postgres>,
    client: crate::domain::ClientId,
) -> Result<Vec<Waiting>, sqlx::Error> {
    sqlx::query_as(LOCK_CLIENT_QUEUE)
        .bind(client)
        .fetch_all(&mut **tx)
        .bounded()
        .await
}

statement!(
    WAITING_BY_PEPPER = concat!(
        "select ",
        sealed_key_id!("body_sealed"),
        " as key_id, count(*) from outbox_messages where ",
        waiting_to_send!(),
        " group by 1"
    )
);
/// Messages waiting to be sent by the key id of the pepper their text is
/// sealed under (`None` for texts sealed before key ids).
pub async fn waiting_by_pepper(pool: &PgPool) -> Result<Vec<crate::store::SealKeyCount>, sqlx::Error> {
    sqlx::query_as(WAITING_BY_PEPPER).fetch_all(pool).bounded().await
}
