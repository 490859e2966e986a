use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use phonenumber::country::Id as CountryId;
use sqlx::PgPool;

use super::limits::LimitSettings;
use super::rules::{self, Refusal};
use super::{CodeHasher, Verification};
use crate::clients::Client;
use crate::delivery::{Delivery, Templates};
use crate::domain::{
    CodeLength, DeliveryError, FailureReason, Locale, MessageId, OtpCode, PhoneNumber, Purpose,
    VerificationId, VerificationStatus,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{self, outbox, verifications};
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
    Id(VerificationId),
    Pending { phone: PhoneNumber, purpose: Purpose },
}

#[derive(Clone)]
pub struct OtpService {
    pub(super) pool: PgPool,
    pub(super) hasher: CodeHasher,
    pub(super) policy: Arc<Policy>,
    pub(super) templates: Arc<Templates>,
    pub(super) delivery: Delivery,
    pub(super) tasks: Tasks,
    pub(super) metrics: Metrics,
}

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

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs work that must finish even if its caller goes away.
    pub(super) fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Creates a verification, or resends the pending one for the same
    /// (client, phone, purpose), and makes the first delivery attempt.
    #[tracing::instrument(skip_all, fields(client = %client.name, phone = %input.phone.masked(), purpose = input.purpose.as_str()))]
    pub async fn request(&self, client: &Client, input: NewVerification) -> Result<Verification> {
        self.check_country(&input.phone)?;
        self.request_in_allowed_country(client, input).await
    }

    /// `request`, once the number's country has been checked.
    pub(super) async fn request_in_allowed_country(
        &self,
        client: &Client,
        input: NewVerification,
    ) -> Result<Verification> {
        if let Some(ip) = input.end_user_ip {
            self.limits().end_user_ip(ip).take(&self.pool).await?;
        }
        // Cheap refusals come before the hash, so refused requests cost no argon2
        // work. The phone's window is only looked at here; the send takes its slot
        // in the transaction that queues the message.
        let key = key(client, &input);
        let cooldown = self.policy.resend_cooldown_seconds;
        let pending = verifications::resendable(&self.pool, &key, cooldown).await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, self.policy.max_sends))
        {
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
            Err(Enqueue::Lost) => self.enqueue(client, &input, &code_hash, &body).await?,
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

    /// Writes the verification (new, or the pending one with a new code) and its
    /// message in one transaction.
    async fn enqueue(
        &self,
        client: &Client,
        input: &NewVerification,
        code_hash: &str,
        body_sealed: &[u8],
    ) -> Result<(VerificationId, MessageId), Enqueue> {
        let key = key(client, input);
        let mut tx = store::begin_read_committed(&self.pool).await?;
        let closed_expired = verifications::close_finished(&mut tx, &key).await?;
        let cooldown = self.policy.resend_cooldown_seconds;
        let pending = verifications::resendable_for_update(&mut tx, &key, cooldown).await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, self.policy.max_sends))
        {
            return Err(refusal.into());
        }
        // Counted only if the message is queued: the slot commits with it.
        self.limits().phone_sends(&input.phone).take(&mut *tx).await?;

        let event = if pending.is_some() { "resent" } else { "created" };
        let verification_id = match pending {
            Some(p) => {
                verifications::resend(&mut tx, p.id, code_hash, input.locale.as_str(), self.policy.ttl)
                    .await?;
                outbox::supersede_queued(&mut tx, p.id).await?;
                p.id
            }
            None => {
                let new = verifications::NewVerification {
                    key,
                    locale: input.locale.as_str(),
                    code_hash,
                    max_attempts: self.policy.max_attempts,
                    ttl: self.policy.ttl,
                    made_by_dev: self.policy.dev,
                };
                match verifications::insert(&mut tx, &new).await {
                    Err(e) if verifications::is_one_pending_violation(&e) => return Err(Enqueue::Lost),
                    other => other?,
                }
            }
        };
        let message = outbox::NewMessage {
            verification_id,
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

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn cancel(&self, client: &Client, id: VerificationId) -> Result<Verification> {
        let mut tx = self.pool.begin().await?;
        if !verifications::cancel(&mut tx, id, client.id).await? {
            tx.rollback().await?;
            return Err(self.refusal(client, id).await?.for_cancel(id));
        }
        outbox::give_up_queued(&mut tx, id, FailureReason::Canceled).await?;
        tx.commit().await?;
        self.metrics.verification("canceled");
        self.find(client, id).await
    }

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn find(&self, client: &Client, id: VerificationId) -> Result<Verification> {
        let row = verifications::view(&self.pool, id, client.id).await?;
        row.map(|r| Verification::from_row(r, self.policy.resend_cooldown_seconds, self.policy.max_sends))
            .ok_or(Error::NotFound("no such verification"))
    }

    /// Says why a verification cannot be attempted or canceled, without hashing
    /// anything; marks an expired one as such on the way.
    pub(super) async fn refusal(&self, client: &Client, id: VerificationId) -> Result<Refusal> {
        let state = verifications::state(&self.pool, id, client.id).await?;
        let refusal =
            rules::refusal(state.as_ref()).unwrap_or(Refusal::NotPending(VerificationStatus::Pending));
        if refusal == (Refusal::Expired { mark: true }) && verifications::mark_expired(&self.pool, id).await?
        {
            self.metrics.verification("expired");
        }
        Ok(refusal)
    }
}

fn key<'a>(client: &Client, input: &'a NewVerification) -> verifications::Key<'a> {
    verifications::Key {
        client: client.id,
        phone: input.phone.as_e164(),
        purpose: input.purpose.as_str(),
    }
}

/// How an enqueue ended, when it did not: a race to lose, or an error.
enum Enqueue {
    /// Another request created the pending verification first.
    Lost,
    Failed(Error),
}

impl From<Error> for Enqueue {
    fn from(e: Error) -> Self {
        Enqueue::Failed(e)
    }
}

impl From<sqlx::Error> for Enqueue {
    fn from(e: sqlx::Error) -> Self {
        Enqueue::Failed(e.into())
    }
}

impl From<Enqueue> for Error {
    fn from(e: Enqueue) -> Self {
        match e {
            // Lost twice in a row, which the retry cannot do: a bug.
            Enqueue::Lost => {
                Error::Internal(anyhow::anyhow!("lost the race for a pending verification twice"))
            }
            Enqueue::Failed(e) => e,
        }
    }
}
