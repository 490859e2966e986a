//! Ending a pending verification on the client's word, without a code: it
//! cancels it, or approves it (the Twilio surface's update with
//! `Status=approved`, for a person the client checked some other way).

use crate::store::Bounded;

use super::rules::Refusal;
use super::{OtpService, Sends, Verification};
use crate::clients::Client;
use crate::domain::{FailureReason, VerificationId, VerificationStatus};
use crate::error::Result;
use crate::store::{outbox, verifications};

/// What the client asks of a pending verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByHand {
    Cancel,
    Approve,
}

impl OtpService {
    /// Its code stops working at once, and a message still queued is not sent.
    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn cancel(&self, client: &Client, id: VerificationId, sends: Sends) -> Result<Verification> {
        self.end_by_hand(client, id, ByHand::Cancel, sends).await
    }

    /// Approves without a code, telling and counting it as an approval by
    /// code (`domain::transitions`); a message still queued is not sent.
    #[tracing::instrument(skip_all, fields(client = %client.name, verification = %id))]
    pub async fn approve(&self, client: &Client, id: VerificationId, sends: Sends) -> Result<Verification> {
        self.end_by_hand(client, id, ByHand::Approve, sends).await
    }

    /// Only a verification whose code could still be tried (pending, unexpired,
    /// not locked) ends so; another is refused as `not_pending` (`for_cancel`).
    async fn end_by_hand(
        &self,
        client: &Client,
        id: VerificationId,
        end: ByHand,
        sends: Sends,
    ) -> Result<Verification> {
        if let Some(refusal) = self.terminal.refusal(id, client.id) {
            return Err(refusal.for_cancel(id));
        }
        let mut tx = self.pool.begin().bounded().await?;
        let ended = match end {
            ByHand::Cancel => verifications::cancel(&mut tx, id, client.id).await?,
            ByHand::Approve => verifications::approve_without_code(&mut tx, id, client.id).await?,
        };
        if !ended {
            tx.rollback().await?;
            let refusal: Refusal = self.refusal(client, id).await?;
            return Err(refusal.for_cancel(id));
        }
        outbox::give_up_queued(&mut tx, id, FailureReason::Canceled).await?;
        tx.commit().bounded().await?;
        let (status, counted) = match end {
            ByHand::Cancel => (VerificationStatus::Canceled, "canceled"),
            ByHand::Approve => (VerificationStatus::Approved, "approved"),
        };
        self.finished(id, client, status);
        if end == ByHand::Approve {
            tracing::info!(verification = %id, "approved without a code");
        }
        self.metrics.verification(&client.name, counted);
        self.find_showing(client, id, sends).await
    }
}
