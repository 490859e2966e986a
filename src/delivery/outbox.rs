//! The transactional outbox. A message is written with its verification, and
//! claimed for sending with a lease (not a transaction held across the gateway
//! call), so a replica that dies mid-send leaves it to be claimed again.
//!
//! Each claim increments `claims`; that number is the claim's token, and a
//! sender that lost its lease can no longer change the message.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use super::gateway::SEND_TIMEOUT;
use crate::store::verifications::{self, waiting};

/// How long a claimed message is reserved for its sender: longer than the
/// gateway client's whole timeout, so a live sender never loses its claim,
/// and short, so a dead replica's messages are taken over soon.
pub const LEASE: Duration = Duration::from_secs(30);

pub struct Claimed {
    pub id: Uuid,
    pub verification_id: Uuid,
    pub phone_digits: String,
    /// The text, sealed; `Sealer::open` gives it back.
    pub body_sealed: Vec<u8>,
    /// Send attempts so far, this one included (for the backoff).
    pub attempts: i32,
    /// The claim's token.
    pub claim: i32,
    pub expires_at: DateTime<Utc>,
}

pub struct NewMessage<'a> {
    pub verification_id: Uuid,
    pub phone_digits: &'a str,
    pub body_sealed: &'a [u8],
    pub ttl: Duration,
    /// When the dispatcher may take the message if nobody sent it before.
    pub first_attempt_in: Duration,
}

const CLAIMED_COLUMNS: &str = "id, verification_id, phone_digits, body_sealed, attempts, claims, expires_at";

/// A message is claimable while its verification still waits for it and a send
/// started now would reach the gateway before the code expires.
const CLAIMABLE: &str = concat!(
    "status = 'queued'
    and expires_at > now() + make_interval(secs => $9)
    and (leased_until is null or leased_until < now())
    and exists (select 1 from verifications v where v.id = verification_id and ",
    waiting!("v"),
    ")"
);

fn claimed(row: sqlx::postgres::PgRow) -> Result<Claimed, sqlx::Error> {
    Ok(Claimed {
        id: row.try_get("id")?,
        verification_id: row.try_get("verification_id")?,
        phone_digits: row.try_get("phone_digits")?,
        body_sealed: row.try_get("body_sealed")?,
        attempts: row.try_get("attempts")?,
        claim: row.try_get("claims")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    message: &NewMessage<'_>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox_messages
             (id, verification_id, phone_digits, body_sealed, status, expires_at, next_attempt_at)
         values ($1, $2, $3, $4, 'queued', now() + make_interval(secs => $5), now() + make_interval(secs => $6))",
    )
    .bind(id)
    .bind(message.verification_id)
    .bind(message.phone_digits)
    .bind(message.body_sealed)
    .bind(message.ttl.as_secs_f64())
    .bind(message.first_attempt_in.as_secs_f64())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A resend makes the queued message of the old code pointless: drop it unsent.
pub async fn supersede_queued(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages set status = 'superseded', body_sealed = null, leased_until = null
         where verification_id = $1 and status = 'queued'",
    )
    .bind(verification_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn give_up_queued(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages set status = 'failed', body_sealed = null, leased_until = null, last_error = $2
         where verification_id = $1 and status = 'queued'",
    )
    .bind(verification_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Claims one message, if it is claimable.
pub async fn claim(pool: &PgPool, id: Uuid) -> Result<Option<Claimed>, sqlx::Error> {
    let sql = format!(
        "update outbox_messages set leased_until = now() + make_interval(secs => $2), attempts = attempts + 1,
             claims = claims + 1
         where id = $1 and {}
         returning {CLAIMED_COLUMNS}",
        CLAIMABLE.replace("$9", "$3")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(LEASE.as_secs_f64())
        .bind(SEND_TIMEOUT.as_secs_f64())
        .fetch_optional(pool)
        .await?
        .map(claimed)
        .transpose()
}

/// Claims up to `limit` due messages, oldest first, skipping rows another
/// replica is claiming at this moment.
pub async fn claim_due(pool: &PgPool, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let sql = format!(
        "update outbox_messages set leased_until = now() + make_interval(secs => $2), attempts = attempts + 1,
             claims = claims + 1
         where id in (
             select id from outbox_messages
             where next_attempt_at <= now() and {}
             order by next_attempt_at
             limit $1
             for update skip locked)
         returning {CLAIMED_COLUMNS}",
        CLAIMABLE.replace("$9", "$3")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(LEASE.as_secs_f64())
        .bind(SEND_TIMEOUT.as_secs_f64())
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(claimed)
        .collect()
}

/// Records a send. A message that went out is recorded as sent whoever holds
/// its lease now: it did go out.
pub async fn mark_sent(
    pool: &PgPool,
    id: Uuid,
    provider_message_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages
         set status = 'sent', body_sealed = null, leased_until = null, sent_at = now(),
             provider_message_id = $2, last_error = null
         where id = $1 and status = 'queued'",
    )
    .bind(id)
    .bind(provider_message_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives the message up. With `fail_verification`, its verification (if still
/// pending) becomes `failed` in the same transaction; says whether it did.
pub async fn mark_failed(
    pool: &PgPool,
    message: &Claimed,
    reason: &str,
    fail_verification: bool,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // The verification's row first, as requests (resend, cancel) lock them: the
    // same order everywhere, so the two never deadlock.
    verifications::lock(&mut tx, message.verification_id.into()).await?;
    let verification: Option<Uuid> = sqlx::query_scalar(
        "update outbox_messages set status = 'failed', body_sealed = null, leased_until = null, last_error = $3
         where id = $1 and claims = $2 and status = 'queued'
         returning verification_id",
    )
    .bind(message.id)
    .bind(message.claim)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let mut failed = false;
    if let (Some(verification), true) = (verification, fail_verification) {
        failed = verifications::fail_if_pending(&mut *tx, verification.into()).await?;
    }
    tx.commit().await?;
    Ok(failed)
}

/// Renews the claim right before the send, and checks the message is still
/// worth sending: a slow step since the claim must not let another sender in,
/// nor a code reach the gateway after it expired.
/// Returns when the send starts (the database's clock), or `None` when it must not.
pub async fn renew(pool: &PgPool, message: &Claimed) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "update outbox_messages set leased_until = now() + make_interval(secs => $3)
         where id = $1 and claims = $2 and status = 'queued' and leased_until > now()
           and expires_at > now() + make_interval(secs => $4)
         returning clock_timestamp()",
    )
    .bind(message.id)
    .bind(message.claim)
    .bind(LEASE.as_secs_f64())
    .bind(SEND_TIMEOUT.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Puts a claimed message back in the queue, due after `delay`. With
/// `counted: false` the claim does not count as an attempt (no key could take it).
pub async fn requeue(
    pool: &PgPool,
    message: &Claimed,
    delay: Duration,
    reason: &str,
    counted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages
         set leased_until = null, last_error = $4, next_attempt_at = now() + make_interval(secs => $3),
             attempts = case when $5 then attempts else greatest(attempts - 1, 0) end
         where id = $1 and claims = $2 and status = 'queued'",
    )
    .bind(message.id)
    .bind(message.claim)
    .bind(delay.as_secs_f64())
    .bind(reason)
    .bind(counted)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the given claims (message id, claim token) still held, due at once,
/// without counting them as attempts: the sender is going away.
pub async fn release(pool: &PgPool, claims: &[(Uuid, i32)]) -> Result<u64, sqlx::Error> {
    let (ids, tokens): (Vec<Uuid>, Vec<i32>) = claims.iter().copied().unzip();
    Ok(sqlx::query(
        "update outbox_messages m
         set leased_until = null, next_attempt_at = now(), attempts = greatest(m.attempts - 1, 0)
         from unnest($1::uuid[], $2::int[]) as h(id, claim)
         where m.id = h.id and m.claims = h.claim and m.status = 'queued'",
    )
    .bind(ids)
    .bind(tokens)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Gives up what can no longer be useful: messages that could not reach the
/// gateway before their code expires (`expired_before_send`), and messages of
/// verifications that stopped waiting for them (`canceled`).
/// Returns the reason of each message given up.
pub async fn expire_overdue(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "update outbox_messages m
         set status = 'failed', body_sealed = null, leased_until = null,
             last_error = case when m.expires_at <= now() + make_interval(secs => $1)
                               then 'expired_before_send' else 'canceled' end
         from verifications v
         where v.id = m.verification_id and m.status = 'queued'
           and (m.leased_until is null or m.leased_until < now())
           and (m.expires_at <= now() + make_interval(secs => $1)
                or v.status <> 'pending' or v.failed_attempts >= v.max_attempts)
         returning m.last_error",
    )
    .bind(SEND_TIMEOUT.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Messages waiting to be sent (due or not), for admission control and the admin page.
pub async fn depth(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from outbox_messages where status = 'queued' and expires_at > now()")
        .fetch_one(pool)
        .await
}
