//! Checking a code: the attempt is reserved, then judged.

use crate::store::Bounded;
use secrecy::{ExposeSecret, SecretString};

use super::checked::{Checked, WrongCode};
use super::limits::Hit;
use super::rules::Refusal;
use super::{OtpService, VerifyTarget};
use crate::clients::Client;
use crate::crypto::HashError;
use crate::domain::{OtpCode, PhoneNumber, Transition, VerificationId, VerificationStatus};
use crate::error::{Error, Result};
use crate::store::verifications::Reservation;
use crate::store::{limits as hits, verifications, webhooks};

impl OtpService {
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
    ) -> Result<Checked> {
        let (id, phone) = match target {
            VerifyTarget::Id(id) => (id, None),
            VerifyTarget::IdOfPhone { id, phone } => (id, Some(phone)),
            VerifyTarget::Pending { phone, purpose } => {
                let key = verifications::Key {
                    client: client.id,
                    phone: phone.as_e164(),
                    purpose: purpose.as_str(),
                };
                let id = verifications::pending_id(&self.pool, &key)
                    .await?
                    .ok_or(Error::NotFound(
                        "no pending verification for this phone and purpose",
                    ))?;
                (id, None)
            }
        };
        // A verification that can never be attempted again is refused from
        // memory, or else by the statement that would reserve the attempt,
        // which then takes nothing: no transaction, nothing to roll back.
        // Memory does not know the number: with one, the statement decides
        // (another number's verification is none, whatever its state).
        if let (None, Some(refusal)) = (&phone, self.terminal.refusal(id, client.id)) {
            return Err(refusal.for_verify(id));
        }
        // The phone's failures are reserved like the verification's: before the
        // hash, so that parallel guesses cannot pass the per-phone limit either.
        // Refused, the attempt is not counted, and even a right code waits for
        // the window. One statement, which also says why a verification that
        // cannot be attempted cannot.
        let buckets = self.limits().phone_failures_before_phone(client);
        let windows = buckets.each_ref().map(|b| b.window());
        let phone = phone.as_ref().map(PhoneNumber::as_e164);
        let (reserved, failures) =
            match verifications::reserve_attempt(&self.pool, id, client.id, phone, &windows).await? {
                Reservation::Reserved(reserved, failures) => (reserved, failures),
                Reservation::Refused { window, retry_after } => {
                    return Err(buckets[window].refused(retry_after));
                }
                Reservation::NotAttemptable(state) => {
                    let refusal = self.refusal_of(client, id, state.as_ref()).await?;
                    // Attemptable after all: a race, lost to what changed it since.
                    let refusal = refusal.unwrap_or(Refusal::NotPending(VerificationStatus::Pending));
                    return Err(refusal.for_verify(id));
                }
            };
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
        id: VerificationId,
        reserved: verifications::Reserved,
        failures: Vec<Hit>,
        raw_code: SecretString,
    ) -> Result<Checked> {
        // A malformed code is a failed attempt too, and needs no hashing.
        // Any length a code can have: the client may have changed its length since
        // this code was made, and a test number's code is as long as it was set.
        let hashed = match OtpCode::parse_any_length(raw_code.expose_secret()) {
            Some(code) => match self.hasher.verify(&code, reserved.code_hash.clone()).await {
                Ok(true) => Hashed::Right,
                Ok(false) => Hashed::Wrong,
                Err(HashError::Busy) => Hashed::Busy,
                Err(e) => return Err(e.into()),
            },
            None => Hashed::Malformed,
        };
        match next(hashed) {
            Next::GiveBack => {
                let mut tx = self.pool.begin().bounded().await?;
                verifications::give_back_attempt(&mut tx, id).await?;
                hits::refund(&mut *tx, &failures).await?;
                tx.commit().bounded().await?;
                return Err(HashError::Busy.into());
            }
            Next::Approve => {
                // A right code gives back both reservations, together; it approves
                // only while the code is still valid, however long the hash took.
                let mut tx = self.pool.begin().bounded().await?;
                let approved = verifications::approve(&mut tx, id, &reserved.code_hash).await?;
                if approved {
                    hits::refund(&mut *tx, &failures).await?;
                }
                tx.commit().bounded().await?;
                if approved {
                    self.finished(id, client, VerificationStatus::Approved);
                    tracing::info!(verification = %id, "approved");
                    self.metrics.verification(&client.name, "approved");
                    return self.find(client, id).await.map(Checked::Approved);
                }
                let state = verifications::state(&self.pool, id, client.id).await?;
                if late(state.as_ref().map(|s| (s.status, s.expired))) {
                    hits::refund(&self.pool, &failures).await?;
                    return Err(self.refusal(client, id).await?.for_verify(id));
                }
            }
            Next::Count => {}
        }
        // Reaching the limit needs no status change: a verification whose failed
        // attempts reached the limit reads as `max_attempts_reached`, and a right
        // code whose attempt was reserved before that can still approve it.
        tracing::info!(verification = %id, failed_attempts = reserved.failed_attempts, "wrong code");

        let wrong = WrongCode::new(id, reserved);
        if wrong.locked() {
            self.clients.cooldowns().drop_all();
            self.metrics.verification(&client.name, "locked");
            // No status changes here: the event is recorded on its own.
            if let Err(e) = webhooks::record(&self.pool, client.id, id, Transition::AttemptsRanOut).await {
                tracing::warn!(error = %e, verification = %id, "could not record the max_attempts_reached webhook event");
            }
            // Left in place, the sealed code is erased when the verification ends.
            if let Err(e) = verifications::forget_kept_code(&self.pool, id).await {
                tracing::warn!(error = %e, verification = %id, "could not erase the code kept for resends");
            }
        }
        Ok(Checked::Wrong(wrong))
    }
}

/// What the hash said of the code given.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hashed {
    /// Not a code at all: no hash needed.
    Malformed,
    /// No hashing thread was free in time: not judged.
    Busy,
    Right,
    Wrong,
}

/// What `judge` does with what the hash said.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Next {
    /// Not an attempt: the reservations go back, the caller may retry.
    GiveBack,
    /// Approve, if the code is still the valid one.
    Approve,
    /// A failed attempt.
    Count,
}

fn next(hashed: Hashed) -> Next {
    match hashed {
        Hashed::Busy => Next::GiveBack,
        Hashed::Right => Next::Approve,
        // A malformed code is a failed attempt too.
        Hashed::Malformed | Hashed::Wrong => Next::Count,
    }
}

/// A right code that did not approve is late when the verification was
/// approved by a parallel request or expired while it was hashed (a double
/// click: no failure). Still pending and valid, a resend replaced the code
/// meanwhile, and it counts as a wrong one.
fn late(state: Option<(VerificationStatus, bool)>) -> bool {
    state.is_some_and(|(status, expired)| status != VerificationStatus::Pending || expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_hash_said_decides_the_next_step() {
        let table = [
            (Hashed::Malformed, Next::Count),
            (Hashed::Busy, Next::GiveBack),
            (Hashed::Right, Next::Approve),
            (Hashed::Wrong, Next::Count),
        ];
        for (hashed, expected) in table {
            assert_eq!(next(hashed), expected, "{hashed:?}");
        }
    }

    #[test]
    fn a_right_code_that_did_not_approve_is_late_only_once_finished_or_expired() {
        use VerificationStatus as S;
        let table = [
            (None, false),
            (Some((S::Pending, false)), false),
            (Some((S::Pending, true)), true),
            (Some((S::Approved, false)), true),
            (Some((S::Canceled, false)), true),
            (Some((S::Expired, true)), true),
        ];
        for (state, expected) in table {
            assert_eq!(late(state), expected, "{state:?}");
        }
    }

    #[test]
    fn the_attempt_that_reaches_the_limit_locks() {
        use crate::otp::rules::locks;
        let table = [
            (0, 5, false),
            (4, 5, false),
            (5, 5, true),
            (6, 5, true),
            (1, 1, true),
        ];
        for (failed, max, expected) in table {
            assert_eq!(locks(failed, max), expected, "{failed}/{max}");
        }
    }
}
