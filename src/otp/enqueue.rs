//! Queuing a code: the verification and its message written in one
//! transaction, with the windows and the admission they must pass.

use std::time::Duration;

use sqlx::{Postgres, Transaction};

use super::limits::Bucket;
use super::request::{NewVerification, Outgoing, key};
use super::rules;
use super::service::OtpService;
use crate::clients::Client;
use crate::domain::{Effective, MessageId, VerificationId};
use crate::error::{Error, Result};
use crate::store::{self, Bounded, outbox, verifications};

/// What one enqueue writes: a client's request, with its code and what it sends.
#[derive(Clone, Copy)]
struct Write<'a> {
    client: &'a Client,
    rules: &'a Effective,
    input: &'a NewVerification,
    code_hash: &'a str,
    outgoing: Outgoing<'a>,
}

impl Write<'_> {
    fn ttl(&self) -> Duration {
        Duration::from_secs(self.rules.ttl_seconds.into())
    }
}

impl OtpService {
    /// `enqueue`, once more if it lost a race: two first requests for one
    /// phone, and the loser of the unique index then finds the winner's
    /// verification as a resend.
    pub(super) async fn enqueue_once(
        &self,
        client: &Client,
        rules: &Effective,
        input: &NewVerification,
        code_hash: &str,
        outgoing: Outgoing<'_>,
    ) -> Result<(VerificationId, MessageId)> {
        let write = Write {
            client,
            rules,
            input,
            code_hash,
            outgoing,
        };
        let done = match self.enqueue(&write).await {
            Err(Enqueue::Lost) => self.enqueue(&write).await?,
            other => other?,
        };
        // Its cooldown starts again: read anew at the next request.
        self.clients.cooldowns().forget(&key(client, input));
        Ok(done)
    }

    /// Writes the verification (new, or the pending one with a new code) and its
    /// message in one transaction.
    async fn enqueue(&self, write: &Write<'_>) -> Result<(VerificationId, MessageId), Enqueue> {
        let (client, rules) = (write.client, write.rules);
        let key = key(client, write.input);
        let mut tx = store::begin_read_committed(&self.pool).await?;
        let (closed_expired, pending) =
            verifications::close_finished_and_lock_resendable(&mut tx, &key, rules.resend_cooldown_seconds)
                .await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal.into());
        }
        if let Outgoing::Queue { .. } = write.outgoing {
            // Counted only if the message is queued: the slots commit with it.
            let limits = self.limits();
            let windows = [
                limits.phone_sends(client, &write.input.phone),
                limits.phone_sends_all_clients(&write.input.phone),
            ];
            Bucket::take_each(&mut *tx, &windows.each_ref()).await?;
            self.delivery
                .admit_in(&mut tx, client.id, rules, write.ttl())
                .await?;
        }
        let event = if pending.is_some() { "resent" } else { "created" };
        let written = match pending {
            Some(p) => self.resend_in(&mut tx, write, p.id).await?,
            None => self.insert_in(&mut tx, write, key).await?,
        };
        tx.commit().bounded().await?;
        // Counted once committed: a rolled-back attempt happened for no one.
        self.metrics.verification(&client.name, event);
        if closed_expired {
            self.metrics.verification(&client.name, "expired");
        }
        Ok(written)
    }

    /// The pending verification `id` with the new code, and its new message
    /// in place of any still queued.
    async fn resend_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        write: &Write<'_>,
        id: VerificationId,
    ) -> Result<(VerificationId, MessageId), sqlx::Error> {
        let input = write.input;
        verifications::resend(tx, id, write.code_hash, input.locale.as_str(), write.ttl()).await?;
        outbox::supersede_queued(tx, id).await?;
        let message_id = match write.outgoing {
            Outgoing::Queue { body } => outbox::insert(tx, &self.message(write, id, body)).await?,
            Outgoing::TestNumber => {
                outbox::insert_for_test_number(tx, id, write.client.id, input.phone.gateway_digits()).await?
            }
        };
        Ok((id, message_id))
    }

    /// A new verification and its message; `Lost` when another request's
    /// pending verification for the same key committed first.
    async fn insert_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        write: &Write<'_>,
        key: verifications::Key<'_>,
    ) -> Result<(VerificationId, MessageId), Enqueue> {
        let input = write.input;
        let country = input.phone.country();
        let network = input.end_user_ip.map(super::limits::network);
        let new = verifications::NewVerification {
            key,
            locale: input.locale.as_str(),
            code_hash: write.code_hash,
            max_attempts: write.rules.max_attempts,
            ttl: write.ttl(),
            made_by_dev: self.policy.dev,
            country: country.as_ref().map(|c| c.as_ref()),
            test_number: matches!(write.outgoing, Outgoing::TestNumber),
            prefix: input.phone.fraud_prefix(),
            end_user_network: network.as_deref(),
            channel: input.channel,
        };
        // A new verification and its message, in one statement.
        let inserted = match write.outgoing {
            Outgoing::Queue { body } => {
                let id = VerificationId::new();
                verifications::insert_with_message(tx, &new, &self.message(write, id, body))
                    .await
                    .map(|message| (id, message))
            }
            Outgoing::TestNumber => match verifications::insert(tx, &new).await {
                Ok(id) => {
                    outbox::insert_for_test_number(tx, id, write.client.id, input.phone.gateway_digits())
                        .await
                        .map(|message| (id, message))
                }
                Err(e) => Err(e),
            },
        };
        match inserted {
            Err(e) if verifications::is_one_pending_violation(&e) => Err(Enqueue::Lost),
            other => Ok(other?),
        }
    }

    /// The sealed text `body` as the outbox queues it for `verification_id`.
    fn message<'a>(
        &self,
        write: &Write<'a>,
        verification_id: VerificationId,
        body_sealed: &'a [u8],
    ) -> outbox::NewMessage<'a> {
        outbox::NewMessage {
            verification_id,
            client_id: write.client.id,
            phone_digits: write.input.phone.gateway_digits(),
            body_sealed,
            ttl: write.ttl(),
            // The request makes the first attempt itself; the dispatcher only
            // steps in if that request dies before it could.
            first_attempt_in: self.policy.send_wait,
        }
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
