//! `Idempotency-Key` on `POST /otp/request`: the first answer to a (client,
//! key) is kept for 24 hours and replayed to retries, which send nothing.
//!
//! The first request claims the key with an insert; a concurrent retry finds
//! the claim unanswered and gets `409 idempotency_key_in_use` (as the IETF
//! idempotency-key draft says) rather than a second send. Answers that say
//! "not now" (429, 5xx) are not kept: the retry then runs the request anew.

use std::time::Duration;

use actix_web::ResponseError;
use actix_web::http::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::request::Cutoff;
use super::{NewVerification, OtpService, Verification};
use crate::clients::Client;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::idempotency as store;

/// A claim whose first request died (a crashed replica) stops blocking its key
/// after this; a request itself never runs this long (`request_budget`). The
/// same on every replica, whatever its settings: it is the claimer's word
/// that decides a takeover, and a replica's claim may be read by another.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Room for the claim's own statement, the deadline's own lateness and the
/// clocks of replica and database, between a request's end and its claim's.
const MARGIN: Duration = Duration::from_secs(5);

/// Database calls a request is given room for at their longest before its
/// code is queued, besides the claim: a request makes a handful, nearly
/// always each far faster. Room, not a bound: the deadline is the bound.
const CALLS: u32 = 4;

/// How long a request with an `Idempotency-Key` may run: refused when the
/// waits these settings allow could outlast its claim.
pub fn check_request_budget(settings: &Settings) -> Result<Duration, String> {
    request_budget(
        settings.hashing.wait(),
        settings.send_wait(),
        Duration::from_millis(settings.database.call_timeout_ms),
    )
}

/// Database calls after the code is queued, besides the first attempt (whose
/// wait is `send_wait`, calls included): the read of the answer.
const AFTER_QUEUED: u32 = 1;

/// How long a request with an `Idempotency-Key` may run, after its claim,
/// before its code is queued; past it, it is cut short (`503`, the claim
/// released). After the code is queued it is never cut: the rest (the first
/// attempt's wait, a read, and the save of the answer) fits in what is left
/// before the claim counts as abandoned, so the claim is never taken over
/// while the request still runs. `Err`, with the reason, when these settings
/// leave a request no room to finish.
pub fn request_budget(hash_wait: Duration, send_wait: Duration, call: Duration) -> Result<Duration, String> {
    // The claim's statement may be answered up to a call timeout after its
    // row's `created_at`, and the save after the body takes another.
    let after = send_wait + (2 + AFTER_QUEUED) * call;
    let budget = ABANDONED_AFTER.checked_sub(after + MARGIN).unwrap_or_default();
    let needed = hash_wait + CALLS * call;
    if needed > budget {
        let calls = CALLS + 2 + AFTER_QUEUED;
        return Err(format!(
            "OTP_HASH_WAIT_MS + OTP_SEND_WAIT_MS + {calls} × OTP_DB_CALL_TIMEOUT_MS must be at most {} ms, \
             so that an Idempotency-Key claim (taken over after {} s unanswered) is never taken over \
             while its request still runs; they are {} + {} + {calls} × {} = {} ms. Lower them",
            (ABANDONED_AFTER - MARGIN).as_millis(),
            ABANDONED_AFTER.as_secs(),
            hash_wait.as_millis(),
            send_wait.as_millis(),
            call.as_millis(),
            (needed + after).as_millis(),
        ));
    }
    Ok(budget)
}

/// The header's value: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let valid = (1..=255).contains(&raw.len()) && raw.iter().all(|b| (0x21..=0x7e).contains(b));
        if !valid {
            return Err(Error::InvalidRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            ));
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }
}

/// What a request with an `Idempotency-Key` should do.
pub enum NextAction {
    /// This is the first request with the key: run it, then `save_response` or
    /// `release` with this token (which a takeover of an abandoned claim replaces).
    StartProcessing(Uuid),
    /// The key was answered before: give the same answer again.
    ReturnSaved { status: u16, body: Value },
}

/// The answer to a request with a key: its own, or the first one's again.
pub enum Answer {
    Fresh(Verification),
    Replay { status: StatusCode, body: Value },
}

/// A fingerprint of what the request means (normalized fields, not raw bytes).
pub fn fingerprint(parts: &[&str]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_vec()
}

/// Says what a request with `key` and this fingerprint should do.
#[tracing::instrument(skip_all)]
pub async fn try_processing(
    pool: &sqlx::PgPool,
    client: &Client,
    key: &IdempotencyKey,
    request_hash: &[u8],
) -> Result<NextAction> {
    // A key older than 24 h, or an abandoned claim, is taken over as new.
    let token = Uuid::new_v4();
    if store::claim(pool, client.id, &key.0, request_hash, token, ABANDONED_AFTER).await? {
        return Ok(NextAction::StartProcessing(token));
    }
    // Forgotten between the two statements: a retry may just try again.
    let Some(stored) = store::find(pool, client.id, &key.0).await? else {
        return Err(Error::IdempotencyKeyInUse);
    };
    if stored.request_hash != request_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    match (stored.status, stored.response) {
        (Some(status), Some(body)) => Ok(NextAction::ReturnSaved {
            status: status as u16,
            body,
        }),
        _ => Err(Error::IdempotencyKeyInUse),
    }
}

impl OtpService {
    /// `request`, at most once per `key`: a retry gets the first answer again.
    /// Run on the tasks that outlive the caller, so that a caller hanging up
    /// cannot leave the key claimed and unanswered.
    pub async fn request_once(
        &self,
        client: Client,
        key: IdempotencyKey,
        input: NewVerification,
    ) -> Result<Answer> {
        let this = self.clone();
        self.tasks()
            .spawn(async move { this.run_once(&client, &key, input).await })
            .await
            .map_err(|e| Error::Internal(e.into()))?
    }

    async fn run_once(
        &self,
        client: &Client,
        key: &IdempotencyKey,
        input: NewVerification,
    ) -> Result<Answer> {
        let ip = input.end_user_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let request_hash = fingerprint(&[
            input.phone.as_e164(),
            input.purpose.as_str(),
            input.locale.as_str(),
            &ip,
        ]);
        // Before the key is claimed: a number refused for its country is no
        // answer to keep.
        self.check_country(client, &input.phone)?;
        let pool = self.pool();
        let token = match try_processing(pool, client, key, &request_hash).await? {
            NextAction::StartProcessing(token) => token,
            NextAction::ReturnSaved { status, body } => {
                let status = StatusCode::from_u16(status).map_err(|e| Error::Internal(e.into()))?;
                return Ok(Answer::Replay { status, body });
            }
        };
        // Cut short at the budget, and only before its code is queued: past
        // the budget a retry may take the claim over, and after the commit
        // the request runs to its answer (`request_budget` leaves it room).
        let cutoff = Cutoff::by(tokio::time::Instant::now() + self.policy().request_budget);
        let outcome = self.request_in_allowed_country(client, input, &cutoff).await;
        let (status, body) = match &outcome {
            Ok(verification) => (StatusCode::ACCEPTED, serde_json::to_value(verification)),
            Err(e) => (e.status_code(), serde_json::to_value(e.problem())),
        };
        let not_now = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        let kept = match body {
            // Queued, then a failure (a read after the commit): releasing the
            // key would let a retry send a second code. The claim stays until
            // it counts as abandoned, and retries meanwhile get `409`.
            _ if not_now && cutoff.queued() => Ok(()),
            _ if not_now => store::release(pool, client.id, &key.0, token)
                .await
                .map_err(Error::from),
            Ok(body) => store::save(pool, client.id, &key.0, token, status.as_u16(), &body)
                .await
                .map_err(Error::from),
            Err(e) => Err(Error::Internal(e.into())),
        };
        // The request's own answer stands either way: failing to keep it only
        // leaves the key claimed until the claim counts as abandoned.
        if let Err(e) = kept {
            tracing::warn!(error = %e, "could not keep the answer for the Idempotency-Key");
        }
        Ok(Answer::Fresh(outcome?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_defaults_leave_a_request_room_and_end_it_before_its_claim_can_be_taken_over() {
        let call = S(6000);
        let (hash, send) = (S(5000), S(3000));
        let budget = request_budget(hash, send, call).unwrap();
        assert!(budget >= hash + 4 * call);
        // Claim answered a call late, queued at the deadline, the first
        // attempt's wait, the read, the save: all before a takeover.
        assert!(call + budget + send + call + call < ABANDONED_AFTER);
    }

    #[test]
    fn settings_that_could_outlast_the_claim_are_refused_by_name() {
        for (hash, send, call) in [(60_000, 3000, 6000), (5000, 20_000, 6000), (5000, 3000, 10_000)] {
            let refused = request_budget(S(hash), S(send), S(call)).unwrap_err();
            for name in ["OTP_HASH_WAIT_MS", "OTP_SEND_WAIT_MS", "OTP_DB_CALL_TIMEOUT_MS"] {
                assert!(refused.contains(name), "{refused}");
            }
        }
        assert!(request_budget(S(20_000), S(20_000), S(1000)).is_ok());
    }
}
