//! The transactional outbox. A message is written with its verification, and
//! claimed for sending with a lease (not a transaction held across the gateway
//! call), so a replica that dies mid-send leaves it to be claimed again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

/// How long a claimed message is reserved for its sender: longer than the
/// gateway client's timeout, so a live sender never loses its claim.
pub const LEASE: Duration = Duration::from_secs(30);

pub struct Claimed {
    pub id: Uuid,
    pub verification_id: Uuid,
    pub phone_digits: String,
    pub body: SecretString,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub expires_at: DateTime<Utc>,
}

const CLAIMED_COLUMNS: &str = "id, verification_id, phone_digits, body, attempts, expires_at";

fn claimed(row: sqlx::postgres::PgRow) -> Result<Claimed, sqlx::Error> {
    Ok(Claimed {
        id: row.try_get("id")?,
        verification_id: row.try_get("verification_id")?,
        phone_digits: row.try_get("phone_digits")?,
        body: SecretString::from(row.try_get::<String, _>("body")?),
        attempts: row.try_get("attempts")?,
        expires_at: row.try_get("expires_at")?,
    })
}

pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: Uuid,
    phone_digits: &str,
    body: &SecretString,
    ttl: Duration,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox_messages (id, verification_id, phone_digits, body, status, expires_at)
         values ($1, $2, $3, $4, 'queued', now() + make_interval(secs => $5))",
    )
    .bind(id)
    .bind(verification_id)
    .bind(phone_digits)
    .bind(body.expose_secret())
    .bind(ttl.as_secs_f64())
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
        "update outbox_messages set status = 'superseded', body = null, leased_until = null
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
        "update outbox_messages set status = 'failed', body = null, leased_until = null, last_error = $2
         where verification_id = $1 and status = 'queued'",
    )
    .bind(verification_id)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Claims one message, if it is queued, unexpired and nobody holds its lease.
pub async fn claim(pool: &PgPool, id: Uuid) -> Result<Option<Claimed>, sqlx::Error> {
    let sql = format!(
        "update outbox_messages set leased_until = now() + make_interval(secs => $2), attempts = attempts + 1
         where id = $1 and status = 'queued' and expires_at > now()
           and (leased_until is null or leased_until < now())
         returning {CLAIMED_COLUMNS}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(LEASE.as_secs_f64())
        .fetch_optional(pool)
        .await?
        .map(claimed)
        .transpose()
}

/// Claims up to `limit` messages that are due, oldest first, skipping rows
/// another replica is claiming at this moment.
pub async fn claim_due(pool: &PgPool, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let sql = format!(
        "update outbox_messages set leased_until = now() + make_interval(secs => $2), attempts = attempts + 1
         where id in (
             select id from outbox_messages
             where status = 'queued' and next_attempt_at <= now() and expires_at > now()
               and (leased_until is null or leased_until < now())
             order by next_attempt_at
             limit $1
             for update skip locked)
         returning {CLAIMED_COLUMNS}"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .bind(LEASE.as_secs_f64())
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(claimed)
        .collect()
}

pub async fn mark_sent(
    pool: &PgPool,
    id: Uuid,
    provider_message_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages
         set status = 'sent', body = null, leased_until = null, sent_at = now(),
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
/// pending on this message's code) becomes `failed` in the same transaction.
pub async fn mark_failed(
    pool: &PgPool,
    id: Uuid,
    reason: &str,
    fail_verification: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let verification: Option<Uuid> = sqlx::query_scalar(
        "update outbox_messages set status = 'failed', body = null, leased_until = null, last_error = $2
         where id = $1 and status = 'queued'
         returning verification_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let (Some(verification), true) = (verification, fail_verification) {
        sqlx::query("update verifications set status = 'failed', updated_at = now() where id = $1 and status = 'pending'")
            .bind(verification)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Puts the message back in the queue, due after `delay`.
pub async fn reschedule(pool: &PgPool, id: Uuid, delay: Duration, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages
         set leased_until = null, last_error = $3, next_attempt_at = now() + make_interval(secs => $2)
         where id = $1 and status = 'queued'",
    )
    .bind(id)
    .bind(delay.as_secs_f64())
    .bind(reason)
    .execute(pool)
    .await?;
    Ok(())
}

/// Releases a claim without counting it as an attempt (no key could take it).
pub async fn release(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update outbox_messages set leased_until = null, attempts = greatest(attempts - 1, 0)
         where id = $1 and status = 'queued'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Nothing is sent after its code expired: such messages end as `expired_before_send`.
pub async fn expire_overdue(pool: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "update outbox_messages
         set status = 'failed', body = null, leased_until = null, last_error = 'expired_before_send'
         where status = 'queued' and expires_at <= now()
           and (leased_until is null or leased_until < now())",
    )
    .execute(pool)
    .await?
    .rows_affected())
}
