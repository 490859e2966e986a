use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use phonenumber::country::Id as CountryId;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::limits::{Hit, LimitSettings};
use super::verification::{SELECT_VERIFICATION, VerificationRow};
use super::{CodeHasher, HashError, Verification};
use crate::clients::Client;
use crate::delivery::{Delivery, Templates};
use crate::domain::{
    CodeLength, DeliveryError, FailureReason, Locale, MessageId, OtpCode, PhoneNumber, Purpose,
    VerificationStatus,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::outbox;
use crate::store::verifications::attemptable;
use crate::tasks::Tasks;

/// The rules and limits of SPEC.md's defaults table.
#[derive(Debug, Clone)]
pub struct Policy {
    pub code_length: CodeLength,
    pub ttl: Duration,
    pub max_attempts: u32,
    pub resend_cooldown_seconds: u32,
    pub max_sends: u32,
    pub allowed_countries: Vec<CountryId>,
    pub send_wait: Duration,
    pub limits: LimitSettings,
    /// Under `serve --dev`: what it stores is marked as made by it.
    pub dev: bool,
}

pub struct NewVerification {
    pub phone: PhoneNumber,
    pub purpose: Purpose,
    pub locale: Locale,
    pub end_user_ip: Option<IpAddr>,
}

pub enum VerifyTarget {
    Id(Uuid),
    Pending { phone: PhoneNumber, purpose: Purpose },
}

#[derive(Clone)]
pub struct OtpService {
    pool: PgPool,
    hasher: CodeHasher,
    policy: Arc<Policy>,
    templates: Arc<Templates>,
    delivery: Delivery,
    tasks: Tasks,
    metrics: Metrics,
}

/// What a refused attempt reservation found when it looked again.
#[derive(sqlx::FromRow)]
struct StateRow {
    status: String,
    expired: bool,
    failed_attempts: i32,
    max_attempts: i32,
    /// Seconds until the code's expiry: when a locked verification stops mattering.
    expires_in: i64,
}

#[derive(sqlx::FromRow)]
struct Reserved {
    code_hash: String,
    phone: String,
    failed_attempts: i32,
    max_attempts: i32,
}

/// The pending verification a new request would resend.
#[derive(sqlx::FromRow)]
struct PendingRow {
    id: Uuid,
    sends: i32,
    cooldown_left: i64,
    expires_in: i64,
}

/// Pending, unexpired and not locked: the verification a request resends.
macro_rules! select_resendable {
    () => {
        "select id, sends,
                ceil(extract(epoch from last_sent_at + make_interval(secs => $4) - now()))::bigint as cooldown_left,
                ceil(extract(epoch from expires_at - now()))::bigint as expires_in
         from verifications
         where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending'
           and expires_at > now() and failed_attempts < max_attempts"
    };
}
const SELECT_RESENDABLE: &str = select_resendable!();
const SELECT_RESENDABLE_FOR_UPDATE: &str = concat!(select_resendable!(), " for update");

impl OtpService {
    pub fn new(
        pool: PgPool,
        hasher: CodeHasher,
        policy: Policy,
        templates: Templates,
        delivery: Delivery,
        tasks: Tasks,
        metrics: Metrics,
    ) -> Self {
        Self {
            pool,
            hasher,
            policy: Arc::new(policy),
            templates: Arc::new(templates),
            delivery,
            tasks,
            metrics,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn limits(&self) -> &LimitSettings {
        &self.policy.limits
    }

    /// Creates a verification, or resends the pending one for the same
    /// (client, phone, purpose), and makes the first delivery attempt.
    #[tracing::instrument(skip_all, fields(client = %client.name, phone = %input.phone.masked(), purpose = input.purpose.as_str()))]
    pub async fn request(&self, client: &Client, input: NewVerification) -> Result<Verification> {
        self.check_country(&input.phone)?;
        if let Some(ip) = input.end_user_ip {
            self.limits().end_user_ip(ip).take(&self.pool).await?;
        }
        // Cheap refusals come before the hash, so refused requests cost no argon2
        // work. The phone's window is only looked at here; the send takes its slot
        // in the transaction that queues the message.
        let pending: Option<PendingRow> = self
            .resendable(SELECT_RESENDABLE, client, &input)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(refusal) = pending.as_ref().and_then(|p| self.resend_refusal(p)) {
            return Err(refusal);
        }
        self.limits().phone_sends(&input.phone).check(&self.pool).await?;
        self.delivery.admit(self.policy.ttl).await?;

        let code = OtpCode::generate(self.policy.code_length);
        let code_hash = self.hasher.hash(&code).await?;
        let text = self.templates.render(input.locale, &code, self.policy.ttl);
        let body = self.delivery.seal(&text, input.phone.gateway_digits());
        drop(text);
        drop(code);

        // Two first requests racing for one phone: the loser of the unique index
        // tries again once, and then finds the winner's verification as a resend.
        let (verification_id, message_id) = match self.enqueue(client, &input, &code_hash, &body).await {
            Err(Error::Internal(e)) if is_unique_violation(&e) => {
                self.enqueue(client, &input, &code_hash, &body).await?
            }
            other => other?,
        };
        drop(body);
        tracing::info!(verification = %verification_id, "code queued");

        self.delivery
            .first_attempt(message_id, self.policy.send_wait)
            .await;
        let view = self.find(client, verification_id).await?;
        if view.delivery_error == Some(DeliveryError::PhoneRejected) {
            return Err(Error::PhoneRejected { id: view.id });
        }
        Ok(view)
    }

    /// `OTP_ALLOWED_COUNTRIES`: refused before anything is counted, stored or sent.
    pub fn check_country(&self, phone: &PhoneNumber) -> Result<()> {
        let allowed = &self.policy.allowed_countries;
        if !allowed.is_empty() && !phone.country().is_some_and(|c| allowed.contains(&c)) {
            return Err(Error::CountryNotAllowed);
        }
        Ok(())
    }

    fn resendable<'a>(
        &self,
        sql: &'static str,
        client: &Client,
        input: &'a NewVerification,
    ) -> sqlx::query::QueryAs<'a, Postgres, PendingRow, sqlx::postgres::PgArguments> {
        sqlx::query_as(sql)
            .bind(client.id)
            .bind(input.phone.as_e164())
            .bind(input.purpose.as_str())
            .bind(f64::from(self.policy.resend_cooldown_seconds))
    }

    fn resend_refusal(&self, pending: &PendingRow) -> Option<Error> {
        if pending.sends >= self.policy.max_sends as i32 {
            return Some(Error::RateLimited {
                detail: format!(
                    "this verification has been sent {} times, the most allowed; a new one can be requested when it expires",
                    pending.sends
                ),
                retry_after: pending.expires_in.max(1) as u64,
            });
        }
        (pending.cooldown_left > 0).then(|| Error::ResendTooSoon {
            id: pending.id,
            retry_after: pending.cooldown_left as u64,
        })
    }

    /// Writes the verification (new, or the pending one with a new code) and its
    /// message in one transaction.
    async fn enqueue(
        &self,
        client: &Client,
        input: &NewVerification,
        code_hash: &str,
        body_sealed: &[u8],
    ) -> Result<(Uuid, MessageId)> {
        let ttl_seconds = self.policy.ttl.as_secs_f64();
        let mut tx = begin_read_committed(&self.pool).await?;
        let closed_expired = close_finished(&mut tx, client, input).await?;
        let pending: Option<PendingRow> = self
            .resendable(SELECT_RESENDABLE_FOR_UPDATE, client, input)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(refusal) = pending.as_ref().and_then(|p| self.resend_refusal(p)) {
            return Err(refusal);
        }
        // Counted only if the message is queued: the slot commits with it.
        self.limits().phone_sends(&input.phone).take(&mut *tx).await?;

        let event = if pending.is_some() { "resent" } else { "created" };
        let verification_id = match pending {
            Some(p) => {
                // A resend: new code, expiry restarted, failed attempts kept.
                sqlx::query(
                    "update verifications
                     set code_hash = $2, sends = sends + 1, locale = $3, last_sent_at = now(),
                         expires_at = now() + make_interval(secs => $4), updated_at = now()
                     where id = $1",
                )
                .bind(p.id)
                .bind(code_hash)
                .bind(input.locale.as_str())
                .bind(ttl_seconds)
                .execute(&mut *tx)
                .await?;
                outbox::supersede_queued(&mut tx, p.id.into()).await?;
                p.id
            }
            None => {
                let id = Uuid::now_v7();
                sqlx::query(
                    "insert into verifications
                         (id, client_id, phone, purpose, locale, status, code_hash, max_attempts,
                          last_sent_at, expires_at, made_by_dev)
                     values ($1, $2, $3, $4, $5, 'pending', $6, $7, now(), now() + make_interval(secs => $8), $9)",
                )
                .bind(id)
                .bind(client.id)
                .bind(input.phone.as_e164())
                .bind(input.purpose.as_str())
                .bind(input.locale.as_str())
                .bind(code_hash)
                .bind(self.policy.max_attempts as i32)
                .bind(ttl_seconds)
                .bind(self.policy.dev)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let message = outbox::NewMessage {
            verification_id: verification_id.into(),
            phone_digits: input.phone.gateway_digits(),
            body_sealed,
            ttl: self.policy.ttl,
            // The request makes the first attempt itself; the dispatcher only
            // steps in if that request dies before it could.
            first_attempt_in: self.policy.send_wait,
        };
        let message_id = outbox::insert(&mut tx, &message).await?;
        tx.commit().await?;
        // Counted once committed: a rolled-back attempt happened for no one.
        self.metrics.verification(event);
        if closed_expired {
            self.metrics.verification("expired");
        }
        Ok((verification_id, message_id))
    }

    /// Checks a code. The attempt is counted before the hash is compared, in the
    /// same statement that checks the verification may still be attempted, so
    /// parallel guesses can never exceed the limit; approval is a conditional
    /// update that only one request can win.
    #[tracing::instrument(skip_all, fields(client = %client.name))]
    pub async fn verify(
        &self,
        client: &Client,
        target: VerifyTarget,
        raw_code: SecretString,
    ) -> Result<Verification> {
        let id = match target {
            VerifyTarget::Id(id) => id,
            VerifyTarget::Pending { phone, purpose } => self.pending_id(client, &phone, &purpose).await?,
        };
        let mut tx = begin_read_committed(&self.pool).await?;
        let reserved: Option<Reserved> = sqlx::query_as(concat!(
            "update verifications set failed_attempts = failed_attempts + 1, updated_at = now()
                 where id = $1 and client_id = $2 and ",
            attemptable!(),
            " returning code_hash, phone, failed_attempts, max_attempts"
        ))
        .bind(id)
        .bind(client.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(reserved) = reserved else {
            tx.rollback().await?;
            return Err(self.refusal(client, id).await?);
        };
        // The phone's failures are reserved like the verification's: before the
        // hash, so that parallel guesses cannot pass the per-phone limit either.
        // Refused, the attempt is not counted (the transaction rolls back), and
        // even a right code waits for the window.
        let mut failures = Vec::with_capacity(2);
        for bucket in self.limits().phone_failures(&reserved.phone) {
            failures.push(bucket.take(&mut *tx).await?);
        }
        tx.commit().await?;
        // From here on the attempt is spent: finish judging it even if the caller
        // hangs up, so no attempt is ever counted without an outcome.
        let this = self.clone();
        let client = client.clone();
        self.tasks
            .spawn(async move { this.judge(&client, id, reserved, failures, raw_code).await })
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }

    async fn judge(
        &self,
        client: &Client,
        id: Uuid,
        reserved: Reserved,
        failures: Vec<Hit>,
        raw_code: SecretString,
    ) -> Result<Verification> {
        let failures: Vec<i64> = failures.iter().map(|h| h.0).collect();
        // A malformed code is a failed attempt too, and needs no hashing.
        let matches = match OtpCode::parse(raw_code.expose_secret(), self.policy.code_length) {
            Some(code) => match self.hasher.verify(&code, reserved.code_hash.clone()).await {
                Ok(matches) => matches,
                Err(HashError::Busy) => {
                    // Not judged, so not an attempt: the caller may simply retry.
                    self.give_back_attempt(id, &failures).await?;
                    return Err(HashError::Busy.into());
                }
                Err(e) => return Err(e.into()),
            },
            None => false,
        };
        if matches {
            // A right code gives back both reservations, in one statement; it
            // approves only while the code is still valid, however long the
            // hash took.
            let approved: Option<Uuid> = sqlx::query_scalar(
                "with approved as (
                     update verifications
                     set status = 'approved', verified_at = now(), failed_attempts = failed_attempts - 1,
                         updated_at = now()
                     where id = $1 and status = 'pending' and code_hash = $2 and expires_at > now()
                     returning id
                 ), refund as (
                     delete from limit_hits where id = any($3) and exists (select 1 from approved)
                 )
                 select id from approved",
            )
            .bind(id)
            .bind(&reserved.code_hash)
            .bind(&failures)
            .fetch_optional(&self.pool)
            .await?;
            if approved.is_some() {
                tracing::info!(verification = %id, "approved");
                self.metrics.verification("approved");
                return self.find(client, id).await;
            }
            // Approved by a parallel request, expired while it was hashed, or a
            // resend replaced the code meanwhile.
            let state = self.state(client, id).await?;
            if state.as_ref().is_some_and(|s| s.status != "pending" || s.expired) {
                // The right code, a moment late (a double click): not a failure.
                sqlx::query("delete from limit_hits where id = any($1)")
                    .bind(&failures)
                    .execute(&self.pool)
                    .await?;
                return Err(self.refusal(client, id).await?);
            }
        }
        // Reaching the limit needs no status change: a verification whose failed
        // attempts reached the limit reads as `max_attempts_reached`, and a right
        // code whose attempt was reserved before that can still approve it.
        tracing::info!(verification = %id, failed_attempts = reserved.failed_attempts, "wrong code");
        if reserved.failed_attempts >= reserved.max_attempts {
            self.metrics.verification("locked");
        }
        Err(Error::InvalidCode {
            id,
            attempts_remaining: (reserved.max_attempts - reserved.failed_attempts).max(0) as u32,
        })
    }

    /// Undoes an attempt's reservations (the verification's and the phone's).
    async fn give_back_attempt(&self, id: Uuid, failures: &[i64]) -> Result<()> {
        sqlx::query(
            "with refund as (delete from limit_hits where id = any($2))
             update verifications set failed_attempts = greatest(failed_attempts - 1, 0), updated_at = now()
             where id = $1 and status = 'pending'",
        )
        .bind(id)
        .bind(failures)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn cancel(&self, client: &Client, id: Uuid) -> Result<Verification> {
        let mut tx = self.pool.begin().await?;
        let canceled = sqlx::query(
            "update verifications set status = 'canceled', updated_at = now()
             where id = $1 and client_id = $2 and status = 'pending'
               and expires_at > now() and failed_attempts < max_attempts",
        )
        .bind(id)
        .bind(client.id)
        .execute(&mut *tx)
        .await?;
        if canceled.rows_affected() == 0 {
            tx.rollback().await?;
            // For cancel, an expired or locked verification is simply not pending.
            return Err(match self.refusal(client, id).await? {
                Error::Expired { id } => Error::NotPending {
                    id,
                    status: VerificationStatus::Expired,
                },
                Error::MaxAttemptsReached { id, .. } => Error::NotPending {
                    id,
                    status: VerificationStatus::MaxAttemptsReached,
                },
                other => other,
            });
        }
        outbox::give_up_queued(&mut tx, id.into(), FailureReason::Canceled).await?;
        tx.commit().await?;
        self.metrics.verification("canceled");
        self.find(client, id).await
    }

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn find(&self, client: &Client, id: Uuid) -> Result<Verification> {
        let row: Option<VerificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_VERIFICATION} where v.id = $1 and v.client_id = $2"
        )))
        .bind(id)
        .bind(client.id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.into_view(self.policy.resend_cooldown_seconds, self.policy.max_sends))
            .ok_or(Error::NotFound("no such verification"))
    }

    async fn pending_id(&self, client: &Client, phone: &PhoneNumber, purpose: &Purpose) -> Result<Uuid> {
        sqlx::query_scalar(
            "select id from verifications
             where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending'
               and expires_at > now()",
        )
        .bind(client.id)
        .bind(phone.as_e164())
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::NotFound(
            "no pending verification for this phone and purpose",
        ))
    }

    async fn state(&self, client: &Client, id: Uuid) -> Result<Option<StateRow>> {
        Ok(sqlx::query_as(
            "select status, expires_at <= now() as expired, failed_attempts, max_attempts,
                    greatest(1, ceil(extract(epoch from expires_at - now())))::bigint as expires_in
             from verifications where id = $1 and client_id = $2",
        )
        .bind(id)
        .bind(client.id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Says why a verification cannot be attempted or canceled, without hashing anything.
    async fn refusal(&self, client: &Client, id: Uuid) -> Result<Error> {
        let Some(state) = self.state(client, id).await? else {
            return Ok(Error::NotFound("no such verification"));
        };
        let locked = Error::MaxAttemptsReached {
            id,
            retry_after: state.expires_in as u64,
        };
        Ok(
            match state.status.parse().unwrap_or(VerificationStatus::Pending) {
                VerificationStatus::Pending if state.expired => {
                    let marked = sqlx::query(
                        "update verifications set status = 'expired', updated_at = now()
                     where id = $1 and status = 'pending' and expires_at <= now()",
                    )
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    self.metrics.verifications_by("expired", marked.rows_affected());
                    Error::Expired { id }
                }
                VerificationStatus::Pending if state.failed_attempts >= state.max_attempts => locked,
                VerificationStatus::MaxAttemptsReached => locked,
                VerificationStatus::Expired => Error::Expired { id },
                status => Error::NotPending { id, status },
            },
        )
    }
}

/// Closes the pending verification of this (client, phone, purpose) if it
/// expired or is locked, so that a new request starts a new one.
/// Says whether it marked one `expired`.
async fn close_finished(
    tx: &mut Transaction<'_, Postgres>,
    client: &Client,
    input: &NewVerification,
) -> Result<bool> {
    // Locking was counted when it happened; expiry is counted when it is marked.
    let expired: Option<bool> = sqlx::query_scalar(
        "update verifications
         set status = case when expires_at <= now() then 'expired' else 'max_attempts_reached' end,
             updated_at = now()
         where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending'
           and (expires_at <= now() or failed_attempts >= max_attempts)
         returning status = 'expired'",
    )
    .bind(client.id)
    .bind(input.phone.as_e164())
    .bind(input.purpose.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(expired == Some(true))
}

/// A limit's slot is counted under its lock by a statement that must see what
/// other transactions committed while it waited: READ COMMITTED, whatever the
/// server's `default_transaction_isolation` says.
async fn begin_read_committed(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level read committed")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

fn is_unique_violation(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .is_some_and(|e| e.is_unique_violation())
}
