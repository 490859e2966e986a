//! The request path: from a client's request to its code queued and first
//! sent, with every refusal that comes before the hash (country, fraud lists,
//! the end user's network, the resend cooldown and the phone's windows).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Verification;
use super::limits::Bucket;
use super::rules;
use super::service::{OtpService, Sends};
use crate::clients::Client;
use crate::domain::{
    Channel, DeliveryError, Effective, Locale, MessageId, PhoneNumber, Purpose, VerificationId,
};
use crate::error::{Error, Result};
use crate::store::verifications;

pub struct NewVerification {
    pub phone: PhoneNumber,
    pub purpose: Purpose,
    pub locale: Locale,
    pub end_user_ip: Option<IpAddr>,
    /// The channel asked for through `/twilio` (kept for its answers; every
    /// code goes over WhatsApp); `None` through `/otp`.
    pub channel: Option<Channel>,
    /// What `{app}` stands for in this message instead of the client's
    /// display name (`/twilio`'s `CustomFriendlyName`), checked as one.
    pub display_name: Option<String>,
    /// Whether the answer lists each send (`/twilio`'s does).
    pub sends: Sends,
}

impl OtpService {
    /// Creates a verification, or resends the pending one for the same
    /// (client, phone, purpose), and makes the first delivery attempt.
    #[tracing::instrument(skip_all, fields(client = %client.name, phone = %input.phone.masked(), purpose = input.purpose.as_str()))]
    pub async fn request(&self, client: &Client, input: NewVerification) -> Result<Verification> {
        self.check_country(client, &input.phone)?;
        self.request_in_allowed_country(client, input, &Cutoff::default())
            .await
    }

    /// `request`, once the number's country has been checked.
    pub(super) async fn request_in_allowed_country(
        &self,
        client: &Client,
        input: NewVerification,
        cutoff: &Cutoff,
    ) -> Result<Verification> {
        let queue = self.queue(client, &input);
        let queued = match cutoff.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, queue)
                .await
                .unwrap_or_else(|_| Err(cutoff.cut_short()))?,
            None => queue.await?,
        };
        cutoff.queued.store(true, Ordering::SeqCst);
        let (verification_id, message_id) = match queued {
            Queued::TestNumber(id) => return self.find_showing(client, id, input.sends).await,
            Queued::Message(id, message) => (id, message),
        };
        self.delivery
            .first_attempt(message_id, self.policy.send_wait)
            .await;
        let view = self.find_showing(client, verification_id, input.sends).await?;
        if view.delivery_error == Some(DeliveryError::PhoneRejected) {
            return Err(Error::PhoneRejected { id: view.id });
        }
        Ok(view)
    }

    /// Everything up to the commit that queues the code: the refusals, the
    /// hash, and the verification with its message.
    async fn queue(&self, client: &Client, input: &NewVerification) -> Result<Queued> {
        let rules = self.rules(client);
        let key = key(client, input);
        // A test number takes no window: a reviewer's tries harm nobody.
        let test_number = self.clients.test_number(client.id, input.phone.as_e164()).await?;
        // Before any window: a blocked prefix costs its callers nothing.
        if test_number.is_none() {
            self.refuse_suspected_fraud(client, &input.phone, input.end_user_ip)
                .await?;
        }
        if let (Some(ip), None) = (input.end_user_ip, &test_number) {
            self.limits().end_user_ip(client, ip).take(&self.pool).await?;
        }
        // Cheap refusals come before the hash, so refused requests cost no argon2
        // work. The phone's windows are only looked at here; the send takes their
        // slots in the transaction that queues the message.
        let phone_windows = [
            self.limits().phone_sends(client, &input.phone),
            self.limits().phone_sends_all_clients(&input.phone),
        ];
        let windows: &[Bucket] = if test_number.is_some() {
            &[]
        } else {
            &phone_windows
        };
        let resending = self.resend_or_refusal(&key, &rules, windows).await?;
        if let Some(code_hash) = test_number {
            let (verification_id, _) = self
                .enqueue_once(client, &rules, input, Some(&code_hash), None)
                .await?;
            tracing::info!(verification = %verification_id, "test number: code stored, nothing sent");
            return Ok(Queued::TestNumber(verification_id));
        }
        let ttl = Duration::from_secs(rules.ttl_seconds.into());
        self.delivery.admit(client.id, &rules, ttl).await?;
        // A resend sends the code already sent, and needs no argon2 work;
        // should the transaction find nothing to resend after all, it comes
        // back for a new code.
        let fresh = match resending {
            true => None,
            false => Some(self.fresh_code(&rules).await?),
        };
        let (verification_id, message_id) = self.enqueue_once(client, &rules, input, None, fresh).await?;
        tracing::info!(verification = %verification_id, resend = resending, "code queued");
        Ok(Queued::Message(verification_id, message_id))
    }

    /// Refuses a number whose prefix, country or end-user network the
    /// operators blocked, or, in `enforce` mode, a request one of this
    /// client's own fraud flags matches, unless the operators allowed the
    /// prefix (a test number is never refused: it is not asked).
    async fn refuse_suspected_fraud(
        &self,
        client: &Client,
        phone: &PhoneNumber,
        ip: Option<IpAddr>,
    ) -> Result<()> {
        use crate::fraud::{Asked, FraudMode, Said};
        let lists = self.clients.fraud_lists().await?;
        let now = chrono::Utc::now();
        let country = phone.country().map(|c| c.as_ref().to_owned());
        let network = ip.map(crate::domain::network);
        let asked = Asked {
            client: client.id,
            digits: phone.gateway_digits(),
            prefix: phone.fraud_prefix(),
            country: country.as_deref(),
            network: network.as_deref(),
        };
        let until = match crate::fraud::operators_say(&lists, &asked, now) {
            Said::Allowed => return Ok(()),
            Said::Blocked(until) => until,
            Said::Nothing if self.policy.fraud_mode == FraudMode::Enforce => {
                let flags = self.clients.fraud_flags().await?;
                match crate::fraud::matching_flag(&flags, &asked, now) {
                    Some(flag) => Some(flag.until),
                    None => return Ok(()),
                }
            }
            Said::Nothing => return Ok(()),
        };
        tracing::warn!(phone = %phone.masked(), "refused: suspected fraud");
        Err(Error::SuspectedFraud {
            retry_after: crate::fraud::retry_after(until, now),
        })
    }

    /// Refuses a resend of the pending verification for `key` that is too
    /// soon or one too many, or a send one of `windows` refuses: from memory
    /// when memory refuses the resend, else from one read. Otherwise says
    /// whether the request resends a pending verification, as that read saw it.
    async fn resend_or_refusal(
        &self,
        key: &verifications::Key<'_>,
        rules: &Effective,
        windows: &[Bucket],
    ) -> Result<bool> {
        let cooldowns = self.clients.cooldowns();
        if let Some(refusal) = cooldowns
            .recall(key)
            .and_then(|p| rules::resend_refusal(&p, rules.max_sends))
        {
            return Err(refusal);
        }
        let (epoch, read_at) = (cooldowns.epoch(), std::time::Instant::now());
        let looked_at: Vec<_> = windows.iter().map(Bucket::window).collect();
        let (pending, waits) =
            verifications::resendable_and_waits(&self.pool, key, rules.resend_cooldown_seconds, &looked_at)
                .await?;
        if let Some(pending) = &pending {
            cooldowns.keep(epoch, key, pending, read_at);
            if let Some(refusal) = rules::resend_refusal(pending, rules.max_sends) {
                return Err(refusal);
            }
        }
        match windows.iter().zip(waits).find(|(_, wait)| *wait > 0.0) {
            Some((bucket, wait)) => Err(bucket.refused(wait)),
            None => Ok(pending.is_some()),
        }
    }

    /// `OTP_ALLOWED_COUNTRIES`: refused before anything is counted, stored or sent.
    pub fn check_country(&self, client: &Client, phone: &PhoneNumber) -> Result<()> {
        let rules = self.rules(client);
        let allowed = &rules.allowed_countries;
        if !allowed.is_empty() && !phone.country().is_some_and(|c| allowed.contains(&c)) {
            return Err(Error::CountryNotAllowed {
                country: phone.country(),
                allowed: allowed.clone(),
            });
        }
        Ok(())
    }
}

pub(super) fn key<'a>(client: &Client, input: &'a NewVerification) -> verifications::Key<'a> {
    verifications::Key {
        client: client.id,
        phone: input.phone.as_e164(),
        purpose: input.purpose.as_str(),
    }
}

/// Where a request's queueing ended: the verification, with its message
/// unless it was a test number's.
enum Queued {
    TestNumber(VerificationId),
    Message(VerificationId, MessageId),
}

/// How a caller bounds a request up to the commit that queues its code, and
/// learns whether that commit happened. An `Idempotency-Key` request is cut
/// short before it, never after: once the code is queued, the request runs
/// to its answer (the first attempt's wait and a read), and a failure after
/// that must not release the key for a retry that would send a second code.
#[derive(Debug, Default)]
pub struct Cutoff {
    pub deadline: Option<tokio::time::Instant>,
    pub queued: AtomicBool,
}

impl Cutoff {
    pub fn by(deadline: tokio::time::Instant) -> Self {
        Self {
            deadline: Some(deadline),
            queued: AtomicBool::new(false),
        }
    }

    /// The code was queued (the verification committed).
    pub fn queued(&self) -> bool {
        self.queued.load(Ordering::SeqCst)
    }

    fn cut_short(&self) -> Error {
        tracing::warn!(
            "a request with an Idempotency-Key ran out of time before its code was queued; answering 503"
        );
        Error::Unavailable { retry_after: 5 }
    }
}
