//! Queuing a code: the verification and its message written in one
//! transaction, with the windows and the admission they must pass. What
//! code a message carries is `codes`' decision.

use std::time::Duration;

use sqlx::{Postgres, Transaction};

use super::codes::{Fresh, Sent, resent_code};
use super::limits::Bucket;
use super::request::{NewVerification, key};
use super::rules;
use super::service::OtpService;
use crate::clients::Client;
use crate::delivery::render;
use crate::domain::{Effective, MessageId, OtpCode, VerificationId};
use crate::error::{Error, Result};
use crate::store::verifications::ResendCode;
use crate::store::{self, Bounded, outbox, verifications};

/// What one enqueue writes: a client's request, with what it knows of its code.
#[derive(Clone, Copy)]
struct Write<'a> {
    client: &'a Client,
    rules: &'a Effective,
    input: &'a NewVerification,
    /// A test number's fixed code (its hash): stored, and nothing is sent.
    test_number: Option<&'a str>,
    /// A new code, if one was made before the transaction.
    fresh: Option<&'a Fresh>,
}

impl Write<'_> {
    fn ttl(&self) -> Duration {
        Duration::from_secs(self.rules.ttl_seconds.into())
    }
}

impl OtpService {
    /// `enqueue`, again when it could not be done as it was: once if it lost
    /// a race (two first requests for one phone: the loser then finds the
    /// winner's verification as a resend), and with a new code when the
    /// transaction found it needs one (`fresh`, if not `None`, is the code a
    /// new verification gets; a resend needs none while its kept code opens).
    pub(super) async fn enqueue_once(
        &self,
        client: &Client,
        rules: &Effective,
        input: &NewVerification,
        test_number: Option<&str>,
        fresh: Option<Fresh>,
    ) -> Result<(VerificationId, MessageId)> {
        let mut fresh = fresh;
        let mut lost = false;
        let done = loop {
            let write = Write {
                client,
                rules,
                input,
                test_number,
                fresh: fresh.as_ref(),
            };
            match self.enqueue(&write).await {
                Err(Enqueue::Lost) if !lost => lost = true,
                Err(Enqueue::NeedsCode) if fresh.is_none() => fresh = Some(self.fresh_code(rules).await?),
                other => break other?,
            }
        };
        // Its cooldown starts again: read anew at the next request.
        self.clients.cooldowns().forget(&key(client, input));
        Ok(done)
    }

    /// Writes the verification (new, or the pending one sent again) and its
    /// message in one transaction.
    async fn enqueue(&self, write: &Write<'_>) -> Result<(VerificationId, MessageId), Enqueue> {
        let (client, rules) = (write.client, write.rules);
        let key = key(client, write.input);
        let mut tx = store::begin_read_committed(&self.pool).await?;
        let found =
            verifications::close_finished_and_lock_resendable(&mut tx, &key, rules.resend_cooldown_seconds)
                .await?;
        if let Some(refusal) = found
            .resendable
            .as_ref()
            .and_then(|p| rules::resend_refusal(p, rules.max_sends))
        {
            return Err(refusal.into());
        }
        let estimated_in = match write.test_number {
            Some(_) => Duration::ZERO,
            None => {
                // Counted only if the message is queued: the slots commit with it.
                let limits = self.limits();
                let windows = [
                    limits.phone_sends(client, &write.input.phone),
                    limits.phone_sends_all_clients(&write.input.phone),
                ];
                Bucket::take_each(&mut *tx, &windows.each_ref()).await?;
                self.delivery
                    .admit_in(&mut tx, client.id, rules, write.ttl())
                    .await?
            }
        };
        let event = if found.resendable.is_some() {
            "resent"
        } else {
            "created"
        };
        let written = match found.resendable {
            Some(p) => {
                let kept = found.kept.as_ref().and_then(|k| self.kept_code(k, p.id));
                self.resend_in(&mut tx, write, p.id, kept, estimated_in).await?
            }
            None => self.insert_in(&mut tx, write, key, estimated_in).await?,
        };
        tx.commit().bounded().await?;
        // Counted once committed: a rolled-back attempt happened for no one.
        self.metrics.verification(&client.name, event);
        if found.closed_expired {
            self.metrics.verification(&client.name, "expired");
        }
        Ok(written)
    }

    /// The text of `code` for this request (in its locale, naming the app
    /// it names), sealed for the outbox.
    fn body(&self, write: &Write<'_>, code: &OtpCode) -> Vec<u8> {
        let (rules, input) = (write.rules, write.input);
        let app = input.display_name.as_deref().unwrap_or(&rules.display_name);
        let text = render(rules.template(input.locale), code, write.ttl(), app);
        self.delivery.seal(&text, input.phone.gateway_digits())
    }

    /// The pending verification `id` sent again, its expiry restarted, with
    /// its new message in place of any still queued: the code already sent
    /// (`kept`), else a new one (`Enqueue::NeedsCode` if none was made yet).
    async fn resend_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        write: &Write<'_>,
        id: VerificationId,
        kept: Option<OtpCode>,
        estimated_in: Duration,
    ) -> Result<(VerificationId, MessageId), Enqueue> {
        let (input, locale, ttl) = (write.input, write.input.locale.as_str(), write.ttl());
        let digits = input.phone.gateway_digits();
        if let Some(code_hash) = write.test_number {
            let code = ResendCode::New {
                code_hash,
                code_sealed: None,
            };
            let send = verifications::resend(tx, id, code, locale, ttl).await?;
            outbox::supersede_queued(tx, id).await?;
            let message = outbox::insert_for_test_number(tx, id, write.client.id, digits, send).await?;
            return Ok((id, message));
        }
        let Some(sent) = resent_code(kept, write.fresh) else {
            return Err(Enqueue::NeedsCode);
        };
        let sealed;
        let code = match &sent {
            Sent::Kept(_) => ResendCode::Same,
            Sent::Fresh(fresh) => {
                sealed = self.delivery.seal_code(&fresh.code, id, &fresh.hash);
                ResendCode::New {
                    code_hash: &fresh.hash,
                    code_sealed: Some(&sealed),
                }
            }
        };
        let send = verifications::resend(tx, id, code, locale, ttl).await?;
        outbox::supersede_queued(tx, id).await?;
        let body = self.body(write, sent.code());
        let message = self.message(write, id, &body, estimated_in, send);
        Ok((id, outbox::insert(tx, &message).await?))
    }

    /// A new verification and its message; `Lost` when another request's
    /// pending verification for the same key committed first.
    async fn insert_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        write: &Write<'_>,
        key: verifications::Key<'_>,
        estimated_in: Duration,
    ) -> Result<(VerificationId, MessageId), Enqueue> {
        let input = write.input;
        let (code_hash, fresh) = match (write.test_number, write.fresh) {
            (Some(hash), _) => (hash, None),
            (None, Some(fresh)) => (fresh.hash.as_str(), Some(fresh)),
            (None, None) => return Err(Enqueue::NeedsCode),
        };
        let id = VerificationId::new();
        let code_sealed = fresh.map(|f| self.delivery.seal_code(&f.code, id, &f.hash));
        let country = input.phone.country();
        let network = input.end_user_ip.map(super::limits::network);
        let new = verifications::NewVerification {
            key,
            locale: input.locale.as_str(),
            code_hash,
            max_attempts: write.rules.max_attempts,
            ttl: write.ttl(),
            made_by_dev: self.policy.dev,
            country: country.as_ref().map(|c| c.as_ref()),
            test_number: write.test_number.is_some(),
            prefix: input.phone.fraud_prefix(),
            end_user_network: network.as_deref(),
            channel: input.channel,
            code_sealed: code_sealed.as_deref(),
        };
        // A new verification and its message, in one statement.
        let inserted = match fresh {
            Some(fresh) => {
                let body = self.body(write, &fresh.code);
                let message = self.message(write, id, &body, estimated_in, 1);
                verifications::insert_with_message(tx, &new, &message)
                    .await
                    .map(|message| (id, message))
            }
            None => match verifications::insert(tx, &new).await {
                Ok(id) => {
                    let digits = input.phone.gateway_digits();
                    outbox::insert_for_test_number(tx, id, write.client.id, digits, 1)
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

    /// The sealed text `body` as the outbox queues it for `verification_id`,
    /// its verification's `send_number`-th send, expected in `estimated_in`.
    fn message<'a>(
        &self,
        write: &Write<'a>,
        verification_id: VerificationId,
        body_sealed: &'a [u8],
        estimated_in: Duration,
        send_number: i32,
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
            estimated_in,
            send_number,
        }
    }
}

/// How an enqueue ended, when it did not: a race to lose, a code to make
/// first, or an error.
enum Enqueue {
    /// Another request created the pending verification first.
    Lost,
    /// A new code is needed, and none was made: nothing to resend, or the
    /// kept code no longer opens. Made outside the transaction, which holds
    /// locks no argon2 work should wait behind.
    NeedsCode,
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
            // Lost twice in a row, or a code needed again once made, which
            // the retries cannot do: a bug.
            Enqueue::Lost => {
                Error::Internal(anyhow::anyhow!("lost the race for a pending verification twice"))
            }
            Enqueue::NeedsCode => {
                Error::Internal(anyhow::anyhow!("a new code was needed after one was made"))
            }
            Enqueue::Failed(e) => e,
        }
    }
}
