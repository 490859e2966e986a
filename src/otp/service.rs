//! The service and what its paths share: finding a verification, and saying
//! why one cannot be attempted (the request path is in `request`, verifying
//! in `verify`, canceling and approving without a code in `end`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use super::Verification;
use super::limits::LimitSettings;
use super::rules::{self, Refusal};
use super::terminal::Terminal;
use crate::clients::Client;
use crate::clients::cache::ClientCache;
use crate::crypto::CodeHasher;
use crate::delivery::Delivery;
use crate::domain::{Defaults, Effective, PhoneNumber, Purpose, VerificationId, VerificationStatus};
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

pub enum VerifyTarget {
    Id(VerificationId),
    /// The verification `id`, if it is `phone`'s (`/twilio`'s
    /// `VerificationSid` with `To`); otherwise as one that does not exist.
    IdOfPhone {
        id: VerificationId,
        phone: PhoneNumber,
    },
    Pending {
        phone: PhoneNumber,
        purpose: Purpose,
    },
}

/// Whether an answer lists each send of the code: only `/twilio`'s do
/// (`send_code_attempts`), so only they read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    Omitted,
    Listed,
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

    /// What this replica ends itself is known here at once; other replicas
    /// hear of it by notification.
    pub(super) fn finished(&self, id: VerificationId, client: &Client, status: VerificationStatus) {
        self.terminal.finished(id, client.id, status);
        self.clients.cooldowns().drop_all();
    }

    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn find(&self, client: &Client, id: VerificationId) -> Result<Verification> {
        self.find_showing(client, id, Sends::Omitted).await
    }

    /// `find`, with the sends listed or not.
    pub async fn find_showing(
        &self,
        client: &Client,
        id: VerificationId,
        sends: Sends,
    ) -> Result<Verification> {
        let row = verifications::view(&self.pool, id, client.id, sends == Sends::Listed).await?;
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
