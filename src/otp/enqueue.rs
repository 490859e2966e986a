//! Queuing a code: the verification and its message written in one
//! transaction, with the windows and the admission they must pass.

use crate::store::Bounded;
use std::time::Duration;

use super::limits::Bucket;
use super::rules;
use super::service::{NewVerification, OtpService, Outgoing, key};
use crate::clients::Client;
use crate::domain::{Effective, MessageId, VerificationId};
use crate::error::{Error, Result};
use crate::store::{self, outbox, verifications};

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
        let done = match self.enqueue(client, rules, input, code_hash, outgoing).await {
            Err(Enqueue::Lost) => self.enqueue(client, rules, input, code_hash, outgoing).await?,
            other => other?,
        };
        // Its cooldown starts again: read anew at the next request.
        self.clients.cooldowns().forget(&key(client, input));
        Ok(done)
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
        let (closed_expired, pending) =
            verifications::close_finished_and_lock_resendable(&mut tx, &key, rules.resend_cooldown_seconds)
                .await?;
        if let Some(refusal) = pending
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal.into());
        }
        if let Outgoing::Queue { .. } = outgoing {
            // Counted only if the message is queued: the slots commit with it.
            let limits = self.limits();
            let windows = [
                limits.phone_sends(client, &input.phone),
                limits.phone_sends_all_clients(&input.phone),
            ];
            Bucket::take_each(&mut *tx, &windows.each_ref()).await?;
            self.delivery.admit_in(&mut tx, client.id, rules, ttl).await?;
        }

        let event = if pending.is_some() { "resent" } else { "created" };
        let phone_digits = input.phone.gateway_digits();
        let queued = |verification_id, body_sealed| outbox::NewMessage {
            verification_id,
            client_id: client.id,
            phone_digits,
            body_sealed,
            ttl,
            // The request makes the first attempt itself; the dispatcher only
            // steps in if that request dies before it could.
            first_attempt_in: self.policy.send_wait,
        };
        let (verification_id, message_id) = match pending {
            Some(p) => {
                verifications::resend(&mut tx, p.id, code_hash, input.locale.as_str(), ttl).await?;
                outbox::supersede_queued(&mut tx, p.id).await?;
                let message_id = match outgoing {
                    Outgoing::Queue { body } => outbox::insert(&mut tx, &queued(p.id, body)).await?,
                    Outgoing::TestNumber => {
                        outbox::insert_for_test_number(&mut tx, p.id, client.id, phone_digits).await?
                    }
                };
                (p.id, message_id)
            }
            None => {
                let country = input.phone.country();
                let network = input.end_user_ip.map(super::limits::network);
                let new = verifications::NewVerification {
                    key,
                    locale: input.locale.as_str(),
                    code_hash,
                    max_attempts: rules.max_attempts,
                    ttl,
                    made_by_dev: self.policy.dev,
                    country: country.as_ref().map(|c| c.as_ref()),
                    test_number: matches!(outgoing, Outgoing::TestNumber),
                    prefix: input.phone.fraud_prefix(),
                    end_user_network: network.as_deref(),
                    channel: input.channel,
                };
                // A new verification and its message, in one statement.
                let inserted = match outgoing {
                    Outgoing::Queue { body } => {
                        let id = VerificationId::new();
                        verifications::insert_with_message(&mut tx, &new, &queued(id, body))
                            .await
                            .map(|message| (id, message))
                    }
                    Outgoing::TestNumber => match verifications::insert(&mut tx, &new).await {
                        Ok(id) => outbox::insert_for_test_number(&mut tx, id, client.id, phone_digits)
                            .await
                            .map(|message| (id, message)),
                        Err(e) => Err(e),
                    },
                };
                match inserted {
                    Err(e) if verifications::is_one_pending_violation(&e) => return Err(Enqueue::Lost),
                    other => other?,
                }
            }
        };
        tx.commit().bounded().await?;
        // Counted once committed: a rolled-back attempt happened for no one.
        self.metrics.verification(&client.name, event);
        if closed_expired {
            self.metrics.verification(&client.name, "expired");
        }
        Ok((verification_id, message_id))
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
