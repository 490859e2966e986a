use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::limits::LimitSettings;
use super::rules::{self, Refusal};
use super::{CodeHasher, Verification};
use crate::clients::Client;
use crate::delivery::{Delivery, render};
use crate::domain::{
    Defaults, DeliveryError, Effective, FailureReason, Locale, MessageId, OtpCode, PhoneNumber, Purpose,
    VerificationId, VerificationStatus,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{self, outbox, test_numbers, verifications};
use crate::tasks::Tasks;

/// The rules and limits of SPEC.md's defaults table; each client's own
/// settings go over `defaults`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub defaults: Defaults,
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
    pub(super) delivery: Delivery,
    pub(super) tasks: Tasks,
    pub(super) metrics: Metrics,
}

impl OtpService {
    pub fn new(
        pool: PgPool,
        hasher: CodeHasher,
        policy: Policy,
        delivery: Delivery,
        tasks: Tasks,
        metrics: Metrics,
    ) -> Self {
        Self {
            pool,
            hasher,
            policy: Arc::new(policy),
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

    /// What this client gets: its own settings over the service's, as read
    /// with the client at this request.
    pub fn rules(&self, client: &Client) -> Effective {
        client.settings.effective(&client.name, &self.policy.defaults)
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
        self.check_country(client, &input.phone)?;
        self.request_in_allowed_country(client, input).await
    }

    /// `request`, once the number's country has been checked.
    pub(super) async fn request_in_allowed_country(
        &self,
        client: &Client,
        input: NewVerification,
    ) -> Result<Verification> {
        let rules = self.rules(client);
        let key = key(client, &input);
        if let Some(code_hash) =
            test_numbers::active_code_hash(&self.pool, client.id, input.phone.as_e164()).await?
        {
            return self
                .request_for_test_number(client, &rules, &input, &code_hash)
                .await;
        }
        if let Some(ip) = input.end_user_ip {
            self.limits().end_user_ip(client, ip).take(&self.pool).await?;
        }
        // Cheap refusals come before the hash, so refused requests cost no argon2
        // work. The phone's windows are only looked at here; the send takes their
        // slots in the transaction that queues the message.
        let pending = verifications::resendable(&self.pool, &key, rules.resend_cooldown_seconds).await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal);
        }
        self.limits()
            .phone_sends(client, &input.phone)
            .check(&self.pool)
            .await?;
        self.limits()
            .phone_sends_all_clients(&input.phone)
            .check(&self.pool)
            .await?;
        let ttl = Duration::from_secs(rules.ttl_seconds.into());
        self.delivery.admit(client.id, &rules, ttl).await?;

        let code = OtpCode::generate(rules.code_length);
        let code_hash = self.hasher.hash(&code).await?;
        let text = render(rules.template(input.locale), &code, ttl, &rules.display_name);
        let body = self.delivery.seal(&text, input.phone.gateway_digits());
        drop(text);
        drop(code);

        let outgoing = Outgoing::Queue { body: &body };
        let (verification_id, message_id) = self
            .enqueue_once(client, &rules, &input, &code_hash, outgoing)
            .await?;
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

    /// A request for one of the client's test numbers: stored as usual with
    /// the number's fixed code, and sent to no one. No gateway slot, no phone
    /// or IP window: a reviewer's tries harm nobody.
    async fn request_for_test_number(
        &self,
        client: &Client,
        rules: &Effective,
        input: &NewVerification,
        code_hash: &str,
    ) -> Result<Verification> {
        let pending =
            verifications::resendable(&self.pool, &key(client, input), rules.resend_cooldown_seconds).await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal);
        }
        let (verification_id, _) = self
            .enqueue_once(client, rules, input, code_hash, Outgoing::TestNumber)
            .await?;
        tracing::info!(verification = %verification_id, "test number: code stored, nothing sent");
        self.find(client, verification_id).await
    }

    /// `enqueue`, once more if it lost a race: two first requests for one
    /// phone, and the loser of the unique index then finds the winner's
    /// verification as a resend.
    async fn enqueue_once(
        &self,
        client: &Client,
        rules: &Effective,
        input: &NewVerification,
        code_hash: &str,
        outgoing: Outgoing<'_>,
    ) -> Result<(VerificationId, MessageId)> {
        match self.enqueue(client, rules, input, code_hash, outgoing).await {
            Err(Enqueue::Lost) => Ok(self.enqueue(client, rules, input, code_hash, outgoing).await?),
            other => Ok(other?),
        }
    }

    /// `OTP_ALLOWED_COUNTRIES`: refused before anything is counted, stored or sent.
    pub fn check_country(&self, client: &Client, phone: &PhoneNumber) -> Result<()> {
        let rules = self.rules(client);
        let allowed = &rules.allowed_countries;
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
        rules: &Effective,
        input: &NewVerification,
        code_hash: &str,
        outgoing: Outgoing<'_>,
    ) -> Result<(VerificationId, MessageId), Enqueue> {
        let key = key(client, input);
        let ttl = Duration::from_secs(rules.ttl_seconds.into());
        let mut tx = store::begin_read_committed(&self.pool).await?;
        let closed_expired = verifications::close_finished(&mut tx, &key).await?;
        let pending =
            verifications::resendable_for_update(&mut tx, &key, rules.resend_cooldown_seconds).await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal.into());
        }
        if let Outgoing::Queue { .. } = outgoing {
            // Counted only if the message is queued: the slots commit with it.
            let limits = self.limits();
            limits.phone_sends(client, &input.phone).take(&mut *tx).await?;
            limits
                .phone_sends_all_clients(&input.phone)
                .take(&mut *tx)
                .await?;
            self.delivery.admit_in(&mut tx, client.id, rules, ttl).await?;
        }

        let event = if pending.is_some() { "resent" } else { "created" };
        let verification_id = match pending {
            Some(p) => {
                verifications::resend(&mut tx, p.id, code_hash, input.locale.as_str(), ttl).await?;
                outbox::supersede_queued(&mut tx, p.id).await?;
                p.id
            }
            None => {
                let new = verifications::NewVerification {
                    key,
                    locale: input.locale.as_str(),
                    code_hash,
                    max_attempts: rules.max_attempts,
                    ttl,
                    made_by_dev: self.policy.dev,
                };
                match verifications::insert(&mut tx, &new).await {
                    Err(e) if verifications::is_one_pending_violation(&e) => return Err(Enqueue::Lost),
                    other => other?,
                }
            }
        };
        let phone_digits = input.phone.gateway_digits();
        let message_id = match outgoing {
            Outgoing::Queue { body } => {
                let message = outbox::NewMessage {
                    verification_id,
                    client_id: client.id,
                    phone_digits,
                    body_sealed: body,
                    ttl,
                    // The request makes the first attempt itself; the dispatcher only
                    // steps in if that request dies before it could.
                    first_attempt_in: self.policy.send_wait,
                };
                outbox::insert(&mut tx, &message).await?
            }
            Outgoing::TestNumber => {
                outbox::insert_for_test_number(&mut tx, verification_id, client.id, phone_digits).await?
            }
        };
        tx.commit().await?;
        // Counted once committed: a rolled-back attempt happened for no one.
        self.metrics.verification(&client.name, event);
        if closed_expired {
            self.metrics.verification(&client.name, "expired");
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
        self.metrics.verification(&client.name, "canceled");
        self.find(client, id).await
    }

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn find(&self, client: &Client, id: VerificationId) -> Result<Verification> {
        let row = verifications::view(&self.pool, id, client.id).await?;
        let rules = self.rules(client);
        row.map(|r| Verification::from_row(r, rules.resend_cooldown_seconds, rules.max_sends))
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
            self.metrics.verification(&client.name, "expired");
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

/// What a request sends: a sealed text to queue, or nothing (a test number).
#[derive(Clone, Copy)]
enum Outgoing<'a> {
    Queue { body: &'a [u8] },
    TestNumber,
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
