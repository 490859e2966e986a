//! The `senders` and `sender_sends` tables: every statement that reads or
//! writes them. What they mean for sending (round robin, how many slots a key
//! has free) is decided in `delivery::senders`.
//!
//! Conditions name stored values as literals; values written are bound typed.
//! `take_sender_slots`, the one SQL function it calls, is defined in V12.

use crate::store::Bounded;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::{KeyState, SenderId};

/// How a key's sends are counted: at most `rate` in `window`, and `burst` in
/// `burst_window`. Delivery decides them; the store counts with them.
#[derive(Debug, Clone, Copy)]
pub struct KeyLimit {
    pub rate: u32,
    pub burst: u32,
    pub window: Duration,
    pub burst_window: Duration,
}

/// The per-key rate counts the last minute or so; what is older only takes
/// room.
pub const SENDS_KEPT: Duration = Duration::from_secs(10 * 60);

/// One key's row, with its sends in the current window.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub id: SenderId,
    pub state: KeyState,
    /// Seconds the key still rests (negative once the rest is over).
    pub resting_for: Option<f64>,
    pub resting_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Sends in the window.
    pub recent: i64,
    /// Seconds until the oldest send in the window leaves it.
    pub oldest_for: Option<f64>,
    /// Sends in the last `burst_window`.
    pub recent_burst: i64,
    /// Seconds until the oldest of those leaves it.
    pub burst_oldest_for: Option<f64>,
    /// Seconds since each send in the window.
    pub sent_ago: Vec<f64>,
}

statement!(REGISTER = "insert into senders (id) select unnest($1::text[]) on conflict (id) do nothing");
/// Makes sure every configured key has its row (replicas may race: no-op then).
pub async fn register(pool: &PgPool, ids: &[SenderId]) -> Result<(), sqlx::Error> {
    sqlx::query(REGISTER).bind(ids).execute(pool).bounded().await?;
    Ok(())
}

statement!(
    ROWS = "select s.id, s.state, s.resting_until, s.last_error,
                extract(epoch from s.resting_until - clock_timestamp())::float8 as resting_for,
                count(x.sent_at) as recent,
                extract(epoch from min(x.sent_at) + make_interval(secs => $2) - clock_timestamp())::float8
                    as oldest_for,
                count(x.sent_at) filter (where x.sent_at > clock_timestamp() - make_interval(secs => $3))
                    as recent_burst,
                extract(epoch from min(x.sent_at) filter (where x.sent_at > clock_timestamp() - make_interval(secs => $3))
                    + make_interval(secs => $3) - clock_timestamp())::float8 as burst_oldest_for,
                coalesce(array_agg(extract(epoch from clock_timestamp() - x.sent_at)::float8)
                             filter (where x.sent_at is not null), '{}') as sent_ago
         from senders s
         left join sender_sends x
                on x.sender_id = s.id and x.sent_at > clock_timestamp() - make_interval(secs => $2)
         where s.id = any($1)
         group by s.id",
);
/// The rows of `ids` (in no order; a key without a row has none).
pub async fn rows(
    db: impl PgExecutor<'_>,
    ids: &[SenderId],
    limit: KeyLimit,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(ROWS)
        .bind(ids)
        .bind(limit.window.as_secs_f64())
        .bind(limit.burst_window.as_secs_f64())
        .fetch_all(db)
        .bounded()
        .await
}

statement!(TAKE_SLOTS = "select take_sender_slots($1, $2, $3, $4, $5, $6)");
/// Takes up to `wanted` slots of one key, atomically across replicas, in one
/// statement (`take_sender_slots`, V12): the key's row stays locked while its
/// windows are counted and the slots are written, so no more than `rate` are
/// taken in `window` nor `burst` in `burst_window`. None when the key is out
/// of service or resting.
pub async fn take_slots(
    pool: &PgPool,
    id: &SenderId,
    wanted: usize,
    limit: KeyLimit,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(TAKE_SLOTS)
        .bind(id)
        .bind(i32::try_from(wanted).unwrap_or(i32::MAX))
        .bind(i64::from(limit.rate))
        .bind(i64::from(limit.burst))
        .bind(limit.window.as_secs_f64())
        .bind(limit.burst_window.as_secs_f64())
        .fetch_all(pool)
        .bounded()
        .await
}

statement!(REFUND = "delete from sender_sends where id = $1");
/// Gives a slot back: the gateway did not count it.
pub async fn refund(pool: &PgPool, slot: i64) -> Result<(), sqlx::Error> {
    sqlx::query(REFUND).bind(slot).execute(pool).bounded().await?;
    Ok(())
}

statement!(TOUCH = "update sender_sends set sent_at = clock_timestamp() where id = $1");
/// Counts a slot from now.
pub async fn touch(pool: &PgPool, slot: i64) -> Result<(), sqlx::Error> {
    sqlx::query(TOUCH).bind(slot).execute(pool).bounded().await?;
    Ok(())
}

statement!(
    TAKE_OUT = "update senders set state = $2, last_error = $3, updated_at = now()
         where id = $1 and (resumed_at is null or resumed_at < $4)",
);
/// Takes a key out of service, unless it was resumed after `send_started`
/// (the database's clock, as `resumed_at` is).
pub async fn take_out(
    pool: &PgPool,
    id: &SenderId,
    send_started: DateTime<Utc>,
    state: KeyState,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(TAKE_OUT)
        .bind(id)
        .bind(state)
        .bind(error)
        .bind(send_started)
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(REST = "update senders
         set resting_until = greatest(coalesce(resting_until, now()), clock_timestamp() + make_interval(secs => $2)),
             last_error = $3, updated_at = now()
         where id = $1",);
/// Rests a key for `rest` from now, unless it already rests longer.
pub async fn rest(pool: &PgPool, id: &SenderId, rest: Duration, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(REST)
        .bind(id)
        .bind(rest.as_secs_f64())
        .bind(error)
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(NOTE_ERROR = "update senders set last_error = $2, updated_at = now() where id = $1");
pub async fn note_error(pool: &PgPool, id: &SenderId, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(NOTE_ERROR)
        .bind(id)
        .bind(error)
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    RESUME = "update senders
         set state = $2, resting_until = null, last_error = null, resumed_at = clock_timestamp(),
             updated_at = now()
         where id = $1",
);
/// Puts a key back in service, its rest and its error forgotten.
pub async fn resume(pool: &PgPool, id: &SenderId) -> Result<(), sqlx::Error> {
    sqlx::query(RESUME)
        .bind(id)
        .bind(KeyState::Ok)
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    DELETE_OLD_SENDS = "delete from sender_sends
         where id in (select id from sender_sends
                      where sent_at < now() - make_interval(secs => $2)
                      order by id limit $1 for update skip locked)",
);
/// Deletes the per-key send records older than `SENDS_KEPT`.
pub async fn delete_old_sends(db: impl PgExecutor<'_>, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(DELETE_OLD_SENDS)
        .bind(batch)
        .bind(SENDS_KEPT.as_secs_f64())
        .execute(db)
        .bounded()
        .await?
        .rows_affected())
}
