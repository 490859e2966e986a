//! The `limit_hits` table: the sliding windows of the abuse limits, one row
//! per counted event, taken through `take_limit_slot`, which counts and
//! inserts under a per-window lock.
//!
//! The SQL functions it calls, and the migration holding each one's live
//! definition: `take_limit_slot`, `take_limit_slot_in`, `limit_slot_wait`
//! (V12, which replaced V2's).

use crate::store::Bounded;
use std::time::Duration;

use sqlx::PgExecutor;

/// A counted event, which can be given back (a reserved failure that turned out right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct HitId(pub i64);

/// One sliding window: what it counts, how many fit, over how long.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub bucket: &'a str,
    pub max_hits: u32,
    pub span: Duration,
}

/// `windows` as the three arrays a statement binds.
pub(crate) fn columns(
    windows: &[Window<'_>],
) -> (Vec<String>, Vec<i32>, Vec<sqlx::postgres::types::PgInterval>) {
    let buckets = windows.iter().map(|w| w.bucket.to_owned()).collect();
    let max_hits = windows.iter().map(|w| max_hits(w.max_hits)).collect();
    let spans = windows
        .iter()
        .map(|w| sqlx::postgres::types::PgInterval::try_from(w.span).unwrap_or(DAY_INTERVAL))
        .collect();
    (buckets, max_hits, spans)
}

/// A span too long for an interval counts as a day, the longest window.
const DAY_INTERVAL: sqlx::postgres::types::PgInterval = sqlx::postgres::types::PgInterval {
    months: 0,
    days: 1,
    microseconds: 0,
};

fn max_hits(n: u32) -> i32 {
    n.min(i32::MAX as u32) as i32
}

#[derive(sqlx::FromRow)]
struct Slot {
    hit_id: Option<HitId>,
    retry_after: Option<f64>,
}

statement!(TAKE = "select hit_id, retry_after from take_limit_slot($1, $2, $3)");
/// Takes a slot of `bucket` if fewer than `max_hits` were taken in the last
/// `span`; else says in how many seconds one frees. In a transaction, the
/// slot counts only if the transaction commits.
pub async fn take(
    db: impl PgExecutor<'_>,
    bucket: &str,
    max_hits: u32,
    span: Duration,
) -> Result<Result<HitId, f64>, sqlx::Error> {
    let slot: Slot = sqlx::query_as(TAKE)
        .bind(bucket)
        .bind(self::max_hits(max_hits))
        .bind(span)
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(slot.hit_id.ok_or(slot.retry_after.unwrap_or(1.0)))
}

statement!(
    TAKE_EACH = "select t.hit_id, t.retry_after
         from unnest($1::text[], $2::int[], $3::interval[]) with ordinality as w (bucket, max_hits, span, n),
              lateral take_limit_slot(w.bucket, w.max_hits, w.span) t
         order by w.n",
);
/// A slot of each of `windows`, in their order, in one statement; or the index
/// of the first that refused, and in how many seconds it frees. Slots taken
/// before a refusal stay taken: call it in a transaction that a refusal rolls
/// back.
pub async fn take_each(
    db: impl PgExecutor<'_>,
    windows: &[Window<'_>],
) -> Result<Result<Vec<HitId>, (usize, f64)>, sqlx::Error> {
    let (buckets, max_hits, spans) = columns(windows);
    let slots: Vec<Slot> = sqlx::query_as(TAKE_EACH)
        .bind(buckets)
        .bind(max_hits)
        .bind(spans)
        .fetch_all(db)
        .bounded()
        .await?;
    let mut hits = Vec::with_capacity(slots.len());
    for (n, slot) in slots.into_iter().enumerate() {
        match slot.hit_id {
            Some(hit) => hits.push(hit),
            None => return Ok(Err((n, slot.retry_after.unwrap_or(1.0)))),
        }
    }
    Ok(Ok(hits))
}

statement!(REFUND = "delete from limit_hits where id = any($1)");
/// Gives taken slots back.
pub async fn refund(db: impl PgExecutor<'_>, hits: &[HitId]) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
    sqlx::query(REFUND).bind(&ids).execute(db).bounded().await?;
    Ok(())
}

statement!(
    DELETE_OLDER_THAN = "delete from limit_hits
         where id in (select id from limit_hits
                      where at < now() - make_interval(secs => $2)
                      order by id limit $1 for update skip locked)",
);
/// Deletes up to `batch` hits older than `age` (each take also clears its own
/// bucket; this catches buckets seen no more).
pub async fn delete_older_than(
    db: impl PgExecutor<'_>,
    batch: i64,
    age: Duration,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(DELETE_OLDER_THAN)
        .bind(batch)
        .bind(age.as_secs_f64())
        .execute(db)
        .bounded()
        .await?
        .rows_affected())
}
