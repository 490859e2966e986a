//! Claiming messages to send: the request's own first attempt, and the
//! dispatcher's batches in the fair order of `delivery::fair`.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::PgPool;

use super::{Claimed, LEASE};
use crate::domain::{MessageId, SenderId};
use crate::store::senders::KeyLimit;
use crate::store::verifications::waiting;

/// How far back a client's sends count as the service it has had.
pub const FAIR_SHARE_MEMORY: Duration = Duration::from_secs(60);

/// What a claim writes: the lease, the attempt, the token, and when.
macro_rules! claim_set {
    () => {
        "leased_until = now() + make_interval(secs => $2), attempts = attempts + 1,
         claims = claims + 1, claimed_at = now()"
    };
}

statement!(
    CLAIM_WITH_SLOT = concat!(
        "with claimed as (update outbox_messages set ",
        claim_set!(),
        " where id = $1 and ",
        claimable!("$3"),
        " and not exists (select 1 from outbox_messages o
                           where o.client_id <> outbox_messages.client_id
                             and o.status = 'queued' and o.next_attempt_at <= now()
                             and o.expires_at > now() and ",
        unleased!("o"),
        ") returning ",
        claimed_columns!(),
        ")
         select claimed.*, slot.id as slot, clock_timestamp() as renewed_at
         from claimed
         left join lateral (select take_sender_slots($4, 1, $5, $6, $7, $8) as id) slot on true"
    )
);
/// A message claimed with a slot of a key, in one statement.
#[derive(sqlx::FromRow)]
pub struct ClaimedWithSlot {
    #[sqlx(flatten)]
    pub message: Claimed,
    /// The slot of the key asked for, if it had one (`store::senders::take_slots`).
    pub slot: Option<i64>,
    /// When the claim was made, on the database's clock: its lease is as
    /// fresh as a renewal (`outbox::renew`) made then.
    pub renewed_at: chrono::DateTime<chrono::Utc>,
}

impl AsRef<Claimed> for ClaimedWithSlot {
    fn as_ref(&self) -> &Claimed {
        &self.message
    }
}

/// Claims one message for its request's first attempt, if it is claimable and
/// no other client's message is due: one that would jump another client's
/// queue takes its turn in the fair order instead (`make_due`). In the same
/// statement, a slot of the key `sender` (as `senders::take_slots` takes it,
/// with the key's `rate` and `burst`): the first attempt in one round trip.
/// No slot when the key has none, or without a key. A message is claimable
/// while more than `send_timeout` of its code's life is left.
pub async fn claim_with_slot(
    pool: &PgPool,
    id: MessageId,
    sender: Option<&SenderId>,
    limit: KeyLimit,
    send_timeout: Duration,
) -> Result<Option<ClaimedWithSlot>, sqlx::Error> {
    sqlx::query_as(CLAIM_WITH_SLOT)
        .bind(id)
        .bind(LEASE.as_secs_f64())
        .bind(send_timeout.as_secs_f64())
        .bind(sender)
        .bind(i64::from(limit.rate))
        .bind(i64::from(limit.burst))
        .bind(limit.window.as_secs_f64())
        .bind(limit.burst_window.as_secs_f64())
        .fetch_optional(pool)
        .bounded()
        .await
}

statement!(
    MAKE_DUE = concat!(
        "update outbox_messages set next_attempt_at = now()
         where id = $1 and status = 'queued' and next_attempt_at > now() and ",
        unleased!()
    )
);
/// Makes a message due now, for the dispatcher to take in its turn.
pub async fn make_due(pool: &PgPool, id: MessageId) -> Result<(), sqlx::Error> {
    sqlx::query(MAKE_DUE).bind(id).execute(pool).bounded().await?;
    Ok(())
}

statement!(
    CLAIM_DUE = concat!(
        "with due as (
             select id, client_id, next_attempt_at,
                    row_number() over (partition by client_id order by created_at, id) as nth
             from outbox_messages
             where next_attempt_at <= now() and ",
        claimable!("$3"),
        "),
         served as (
             select client_id, count(*) as sends from outbox_messages
             where client_id in (select client_id from due)
               and claimed_at > now() - make_interval(secs => $4)
             group by client_id),
         picked as (
             select due.id from due
             join clients c on c.id = due.client_id
             left join served using (client_id)
             order by (coalesce(served.sends, 0) + due.nth)::float8 / c.share, due.next_attempt_at, due.id
             limit $1)
         update outbox_messages set ",
        claim_set!(),
        " where id in (select id from outbox_messages
                        where id in (select id from picked) and ",
        claimable!("$3"),
        " for update skip locked)
         returning ",
        claimed_columns!()
    )
);
/// Claims up to `limit` due messages in the fair order: each client's k-th
/// due message (oldest first: a client's own messages go in the order they
/// were queued) finishes at (its claims in the last `FAIR_SHARE_MEMORY` + k) /
/// its share, and the earliest finish goes first (ties: the longest waiting).
/// A client alone so gets every slot; clients waiting together get slots in
/// proportion to their shares. Rows another replica is claiming at this
/// moment are skipped.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    send_timeout: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(CLAIM_DUE)
        .bind(limit)
        .bind(LEASE.as_secs_f64())
        .bind(send_timeout.as_secs_f64())
        .bind(FAIR_SHARE_MEMORY.as_secs_f64())
        .fetch_all(pool)
        .bounded()
        .await
}
