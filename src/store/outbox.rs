//! The `outbox_messages` table: every statement that reads or writes it.
//!
//! The transactional outbox. A message is written with its verification, and
//! claimed for sending with a lease (not a transaction held across the gateway
//! call), so a replica that dies mid-send leaves it to be claimed again.
//!
//! Each claim increments `claims`; that number is the claim's token, and a
//! sender that lost its lease can no longer change the message.
//!
//! Conditions name a status as a literal (`status = 'queued'`, or a function
//! of V17 that the planner inlines), which is what lets the planner use the
//! partial index `outbox_messages_due`; values written are bound typed.
//!
//! The SQL functions it calls, and the migration holding each one's live
//! definition: `message_waiting`, `waiting_by_client`,
//! `verification_waiting` (V17); `lock_client_queue`, `take_sender_slots` (V12).

use crate::store::Bounded;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{MessageId, VerificationId};

/// How long a claimed message is reserved for its sender: longer than the
/// gateway client's whole timeout, so a live sender never loses its claim,
/// and short, so a dead replica's messages are taken over soon.
pub const LEASE: Duration = Duration::from_secs(30);

/// No `Debug`: it holds a full phone number.
#[derive(sqlx::FromRow)]
pub struct Claimed {
    pub id: MessageId,
    pub verification_id: VerificationId,
    pub phone_digits: String,
    /// The text, sealed; `Sealer::open` gives it back.
    pub body_sealed: Vec<u8>,
    /// Send attempts so far, this one included (for the backoff).
    pub attempts: i32,
    /// The claim's token.
    #[sqlx(rename = "claims")]
    pub claim: i32,
    pub expires_at: DateTime<Utc>,
    /// When it was queued (for the delivery time).
    pub created_at: DateTime<Utc>,
    /// The client's name, for metrics.
    pub client: String,
}

impl AsRef<Claimed> for Claimed {
    fn as_ref(&self) -> &Claimed {
        self
    }
}

macro_rules! claimed_columns {
    () => {
        "id, verification_id, phone_digits, body_sealed, attempts, claims, expires_at, created_at,
         (select name from clients c where c.id = client_id) as client"
    };
}

/// Queued and unexpired: a message still waiting to be sent
/// (`message_waiting`, V17, the one place it is written; the count admission
/// reads, `waiting_by_client()`, calls it too).
macro_rules! waiting_to_send {
    () => {
        "message_waiting(status, expires_at)"
    };
    ($alias:literal) => {
        concat!("message_waiting(", $alias, ".status, ", $alias, ".expires_at)")
    };
}

/// A send started now would reach the gateway before the code expires;
/// `$timeout` is the parameter holding the send timeout in seconds.
macro_rules! in_time {
    ($timeout:literal) => {
        concat!("expires_at > now() + make_interval(secs => ", $timeout, ")")
    };
    ($alias:literal, $timeout:literal) => {
        concat!(
            $alias,
            ".expires_at > now() + make_interval(secs => ",
            $timeout,
            ")"
        )
    };
}

/// Nobody holds a lease on the message.
macro_rules! unleased {
    () => {
        "(leased_until is null or leased_until < now())"
    };
    ($alias:literal) => {
        concat!(
            "(",
            $alias,
            ".leased_until is null or ",
            $alias,
            ".leased_until < now())"
        )
    };
}

/// A message is claimable while its verification still waits for it and a send
/// started now would reach the gateway before the code expires.
macro_rules! claimable {
    ($timeout:literal) => {
        concat!(
            "status = 'queued' and ",
            in_time!($timeout),
            " and ",
            unleased!(),
            " and exists (select 1 from verifications v where v.id = verification_id and ",
            waiting!("v"),
            ")"
        )
    };
}

mod claims;
mod counts;
mod requests;
mod settle;

pub use claims::{ClaimedWithSlot, FAIR_SHARE_MEMORY, claim_due, claim_with_slot, make_due};
pub use counts::{
    QueueStats, Waiting, depth, lock_client_queue, stats, waiting_by_client, waiting_by_pepper,
};
pub use requests::{NewMessage, give_up_queued, insert, insert_for_test_number, supersede_queued};
pub use settle::{expire_overdue, mark_failed, mark_sent};

statement!(
    RENEW = concat!(
        "update outbox_messages set leased_until = now() + make_interval(secs => $3)
         where id = $1 and claims = $2 and status = 'queued' and leased_until > now() and ",
        in_time!("$4"),
        " returning clock_timestamp()"
    )
);
/// Renews the claim right before the send, and checks the message is still
/// worth sending: a slow step since the claim must not let another sender in,
/// nor a code reach the gateway after it expired.
/// Returns when the send starts (the database's clock), or `None` when it must not.
pub async fn renew(
    pool: &PgPool,
    message: &Claimed,
    send_timeout: Duration,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(RENEW)
        .bind(message.id)
        .bind(message.claim)
        .bind(LEASE.as_secs_f64())
        .bind(send_timeout.as_secs_f64())
        .fetch_optional(pool)
        .bounded()
        .await
}

statement!(
    REQUEUE = "update outbox_messages
         set leased_until = null, last_error = $4, next_attempt_at = now() + make_interval(secs => $3),
             attempts = case when $5 then attempts else greatest(attempts - 1, 0) end,
             claimed_at = case when $5 then claimed_at end
         where id = $1 and claims = $2 and status = 'queued'",
);
/// Puts a claimed message back in the queue, due after `delay`. With
/// `counted: false` the claim does not count as an attempt (no key could take
/// it), nor as the client's share of the gateway.
pub async fn requeue(
    pool: &PgPool,
    message: &Claimed,
    delay: Duration,
    error: &str,
    counted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(REQUEUE)
        .bind(message.id)
        .bind(message.claim)
        .bind(delay.as_secs_f64())
        .bind(error)
        .bind(counted)
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    RELEASE = "update outbox_messages m
         set leased_until = null, next_attempt_at = now(), attempts = greatest(m.attempts - 1, 0),
             claimed_at = null
         from unnest($1::uuid[], $2::int[]) as h(id, claim)
         where m.id = h.id and m.claims = h.claim and m.status = 'queued'",
);
/// Ends the given claims (message id, claim token) still held, due at once,
/// without counting them as attempts: the sender is going away.
pub async fn release<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    claims: &[(MessageId, i32)],
) -> Result<u64, sqlx::Error> {
    let (ids, tokens): (Vec<MessageId>, Vec<i32>) = claims.iter().copied().unzip();
    Ok(sqlx::query(RELEASE)
        .bind(ids)
        .bind(tokens)
        .execute(executor)
        .bounded()
        .await?
        .rows_affected())
}
