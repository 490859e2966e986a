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

use super::{NewVerification, OtpService, Verification};
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::store::idempotency as store;

/// A claim whose first request died (a crashed replica) stops blocking its key
/// after this; a request itself never takes this long.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

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
        let outcome = self.request_in_allowed_country(client, input).await;
        let (status, body) = match &outcome {
            Ok(verification) => (StatusCode::ACCEPTED, serde_json::to_value(verification)),
            Err(e) => (e.status_code(), serde_json::to_value(e.problem())),
        };
        let kept = match body {
            _ if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
                store::release(pool, client.id, &key.0, token)
                    .await
                    .map_err(Error::from)
            }
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
