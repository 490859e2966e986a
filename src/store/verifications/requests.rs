//! The statements of a new request: find what it would resend, close what
//! finished, resend, or insert.

use std::time::Duration;

use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{ClientId, VerificationId};

/// Who a verification is for: the key of the one-pending-per-request rule.
pub struct Key<'a> {
    pub client: ClientId,
    pub phone: &'a str,
    pub purpose: &'a str,
}

/// The attemptable verification a new request for the same key resends.
#[derive(Debug, sqlx::FromRow)]
pub struct Resendable {
    pub id: VerificationId,
    pub sends: i32,
    /// Seconds until the resend cooldown is over (0 or less: over).
    pub cooldown_left: i64,
    pub expires_in: i64,
}

macro_rules! select_resendable {
    () => {
        concat!(
            "select id, sends,
                    ceil(extract(epoch from last_sent_at + make_interval(secs => $4) - now()))::bigint
                        as cooldown_left,
                    ceil(extract(epoch from expires_at - now()))::bigint as expires_in
             from verifications
             where client_id = $1 and phone = $2 and purpose = $3 and ",
            attemptable!()
        )
    };
}
statement!(SELECT_RESENDABLE = select_resendable!());
statement!(SELECT_RESENDABLE_FOR_UPDATE = concat!(select_resendable!(), " for update"));

/// The resendable verification, read without a lock (the cheap look before hashing).
pub async fn resendable(
    db: impl PgExecutor<'_>,
    key: &Key<'_>,
    cooldown_seconds: u32,
) -> Result<Option<Resendable>, sqlx::Error> {
    resendable_with(SELECT_RESENDABLE, db, key, cooldown_seconds).await
}

/// The resendable verification, locked until the transaction ends.
pub async fn resendable_for_update(
    tx: &mut Transaction<'_, Postgres>,
    key: &Key<'_>,
    cooldown_seconds: u32,
) -> Result<Option<Resendable>, sqlx::Error> {
    resendable_with(SELECT_RESENDABLE_FOR_UPDATE, &mut **tx, key, cooldown_seconds).await
}

async fn resendable_with(
    sql: &'static str,
    db: impl PgExecutor<'_>,
    key: &Key<'_>,
    cooldown_seconds: u32,
) -> Result<Option<Resendable>, sqlx::Error> {
    sqlx::query_as(sql)
        .bind(key.client)
        .bind(key.phone)
        .bind(key.purpose)
        .bind(f64::from(cooldown_seconds))
        .fetch_optional(db)
        .await
}

statement!(
    CLOSE_FINISHED = concat!(
        "update verifications
         set status = case when expires_at <= now() then 'expired' else 'max_attempts_reached' end,
             updated_at = now()
         where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending' and not (",
        attemptable!(),
        ") returning status = 'expired'"
    )
);
/// Closes the pending verification of `key` if it expired or is locked, so
/// that a new request starts a new one. Says whether it marked one `expired`.
pub async fn close_finished(tx: &mut Transaction<'_, Postgres>, key: &Key<'_>) -> Result<bool, sqlx::Error> {
    let expired: Option<bool> = sqlx::query_scalar(CLOSE_FINISHED)
        .bind(key.client)
        .bind(key.phone)
        .bind(key.purpose)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(expired == Some(true))
}

statement!(
    RESEND = "update verifications
         set code_hash = $2, sends = sends + 1, locale = $3, last_sent_at = now(),
             expires_at = now() + make_interval(secs => $4), updated_at = now()
         where id = $1",
);
/// A resend: a new code, the expiry restarted, failed attempts kept.
pub async fn resend(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    code_hash: &str,
    locale: &str,
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(RESEND)
        .bind(id)
        .bind(code_hash)
        .bind(locale)
        .bind(ttl.as_secs_f64())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub struct NewVerification<'a> {
    pub key: Key<'a>,
    pub locale: &'a str,
    pub code_hash: &'a str,
    pub max_attempts: u32,
    pub ttl: Duration,
    pub made_by_dev: bool,
    /// ISO 3166-1 alpha-2, for the stats.
    pub country: Option<&'a str>,
    /// For a client's test number: left out of the stats.
    pub test_number: bool,
    /// The number's calling code and next three digits, for the fraud rules.
    pub prefix: &'a str,
    /// The end user's network (`otp::limits::network`), when given.
    pub end_user_network: Option<&'a str>,
}

statement!(
    INSERT = "insert into verifications
             (id, client_id, phone, purpose, locale, status, code_hash, max_attempts,
              last_sent_at, expires_at, made_by_dev, country, test_number, prefix, end_user_network)
         values ($1, $2, $3, $4, $5, 'pending', $6, $7, now(), now() + make_interval(secs => $8), $9, $10, $11,
                 $12, $13)",
);
/// Inserts a pending verification. A second one for the same key fails on
/// `verifications_one_pending` (`is_one_pending_violation`).
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewVerification<'_>,
) -> Result<VerificationId, sqlx::Error> {
    let id = VerificationId::new();
    sqlx::query(INSERT)
        .bind(id)
        .bind(new.key.client)
        .bind(new.key.phone)
        .bind(new.key.purpose)
        .bind(new.locale)
        .bind(new.code_hash)
        .bind(new.max_attempts as i32)
        .bind(new.ttl.as_secs_f64())
        .bind(new.made_by_dev)
        .bind(new.country)
        .bind(new.test_number)
        .bind(new.prefix)
        .bind(new.end_user_network)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// Two first requests for one key raced, and this one lost.
pub fn is_one_pending_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|e| e.constraint())
        .is_some_and(|c| c == "verifications_one_pending")
}
