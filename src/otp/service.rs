use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;

use super::Verification;
use super::limits::{Bucket, LimitSettings};
use super::rules::{self, Refusal};
use super::terminal::Terminal;
use crate::clients::Client;
use crate::clients::cache::ClientCache;
use crate::crypto::CodeHasher;
use crate::delivery::{Delivery, render};
use crate::domain::{
    Channel, Defaults, DeliveryError, Effective, Locale, MessageId, OtpCode, PhoneNumber, Purpose,
    VerificationId, VerificationStatus,
};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::verifications;
use crate::tasks::Tasks;

/// The rules and limits the service defaults to; each client's own
/// settings go over `defaults`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub defaults: Defaults,
    pub send_wait: Duration,
    pub limits: LimitSettings,
    /// Under `serve --dev`: what it stores is marked as made by it.
    pub dev: bool,
    /// Whether the detector's flags refuse requests (`enforce`).
    pub fraud_mode: crate::fraud::FraudMode,
    /// How long a request with an `Idempotency-Key` may run after its claim
    /// (`idempotency::request_budget`).
    pub request_budget: Duration,
}

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
}

/// What a request sends: a sealed text to queue, or nothing (a test number).
#[derive(Clone, Copy)]
pub(super) enum Outgoing<'a> {
    Queue { body: &'a [u8] },
    TestNumber,
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
    /// Verifications this replica knows can never be attempted again.
    pub(super) terminal: Arc<Terminal>,
    /// Test numbers and resend cooldowns, from memory as a rule.
    pub(super) clients: ClientCache,
}

impl OtpService {
    pub fn new(
        pool: PgPool,
        hasher: CodeHasher,
        policy: Policy,
        delivery: Delivery,
        tasks: Tasks,
        metrics: Metrics,
        clients: ClientCache,
    ) -> Self {
        Self {
            pool,
            hasher,
            policy: Arc::new(policy),
            delivery,
            tasks,
            metrics,
            terminal: Arc::default(),
            clients,
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
            Queued::TestNumber(id) => return self.find(client, id).await,
            Queued::Message(id, message) => (id, message),
        };
        self.delivery
            .first_attempt(message_id, self.policy.send_wait)
            .await;
        let view = self.find(client, verification_id).await?;
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
        if let Some(refusal) = self.resend_refusal(&key, &rules, windows).await? {
            return Err(refusal);
        }
        if let Some(code_hash) = test_number {
            let (verification_id, _) = self
                .enqueue_once(client, &rules, input, &code_hash, Outgoing::TestNumber)
                .await?;
            tracing::info!(verification = %verification_id, "test number: code stored, nothing sent");
            return Ok(Queued::TestNumber(verification_id));
        }
        let ttl = Duration::from_secs(rules.ttl_seconds.into());
        self.delivery.admit(client.id, &rules, ttl).await?;

        let code = OtpCode::generate(rules.code_length);
        let code_hash = self.hasher.hash(&code).await?;
        let app = input.display_name.as_deref().unwrap_or(&rules.display_name);
        let text = render(rules.template(input.locale), &code, ttl, app);
        let body = self.delivery.seal(&text, input.phone.gateway_digits());
        drop(text);
        drop(code);

        let outgoing = Outgoing::Queue { body: &body };
        let (verification_id, message_id) = self
            .enqueue_once(client, &rules, input, &code_hash, outgoing)
            .await?;
        tracing::info!(verification = %verification_id, "code queued");
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

    /// What this replica ends itself is known here at once; other replicas
    /// hear of it by notification.
    pub(super) fn finished(&self, id: VerificationId, client: &Client, status: VerificationStatus) {
        self.terminal.finished(id, client.id, status);
        self.clients.cooldowns().drop_all();
    }

    /// Why the pending verification for `key` may not be resent now, or why
    /// one of `windows` refuses a new send, if either does: from memory when
    /// memory refuses the resend, else from one read.
    async fn resend_refusal(
        &self,
        key: &verifications::Key<'_>,
        rules: &Effective,
        windows: &[Bucket],
    ) -> Result<Option<Error>> {
        let cooldowns = self.clients.cooldowns();
        if let Some(refusal) = cooldowns
            .recall(key)
            .and_then(|p| rules::resend_refusal(&p, rules.max_sends))
        {
            return Ok(Some(refusal));
        }
        let (epoch, read_at) = (cooldowns.epoch(), std::time::Instant::now());
        let looked_at: Vec<_> = windows.iter().map(Bucket::window).collect();
        let (pending, waits) =
            verifications::resendable_and_waits(&self.pool, key, rules.resend_cooldown_seconds, &looked_at)
                .await?;
        if let Some(pending) = pending {
            cooldowns.keep(epoch, key, &pending, read_at);
            if let Some(refusal) = rules::resend_refusal(&pending, rules.max_sends) {
                return Ok(Some(refusal));
            }
        }
        Ok(windows
            .iter()
            .zip(waits)
            .find(|(_, wait)| *wait > 0.0)
            .map(|(bucket, wait)| bucket.refused(wait)))
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

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn find(&self, client: &Client, id: VerificationId) -> Result<Verification> {
        let row = verifications::view(&self.pool, id, client.id).await?;
        let rules = self.rules(client);
        row.map(|r| Verification::from_row(r, rules.resend_cooldown_seconds, rules.max_sends))
            .ok_or(Error::NotFound("no such verification"))
    }

    /// Says why a verification cannot be attempted or canceled, without hashing
    /// anything; marks an expired one as such on the way. For a verification
    /// the reservation did not take: a pending one lost a race.
    pub(super) async fn refusal(&self, client: &Client, id: VerificationId) -> Result<Refusal> {
        Ok(self
            .refusal_if_any(client, id)
            .await?
            .unwrap_or(Refusal::NotPending(VerificationStatus::Pending)))
    }

    /// Why a verification cannot be attempted, if it cannot, from one indexed
    /// read (no transaction); remembered when it lasts.
    pub(super) async fn refusal_if_any(
        &self,
        client: &Client,
        id: VerificationId,
    ) -> Result<Option<Refusal>> {
        let state = verifications::state(&self.pool, id, client.id).await?;
        self.refusal_of(client, id, state.as_ref()).await
    }

    /// Why a verification in `state` cannot be attempted, if it cannot; an
    /// expired one is marked as such on the way, and a refusal that lasts is
    /// remembered.
    pub(super) async fn refusal_of(
        &self,
        client: &Client,
        id: VerificationId,
        state: Option<&verifications::State>,
    ) -> Result<Option<Refusal>> {
        let Some(refusal) = rules::refusal(state) else {
            return Ok(None);
        };
        if refusal == (Refusal::Expired { mark: true }) && verifications::mark_expired(&self.pool, id).await?
        {
            self.metrics.verification(&client.name, "expired");
        }
        self.terminal.remember(id, client.id, &refusal);
        Ok(Some(refusal))
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
