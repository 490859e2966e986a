//! `Idempotency-Key` on `POST /otp/request`: the first answer to a (client,
//! key) is kept for 24 hours and replayed to retries, which send nothing.
//!
//! The first request claims the key with an insert; a concurrent retry finds
//! the claim unanswered and gets `409 idempotency_key_in_use` (as the IETF
//! idempotency-key draft says) rather than a second send. Answers that say
//! "not now" (429, 5xx) are not kept: the retry then runs the request anew.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A claim whose first request died (a crashed replica) stops blocking its key
/// after this; a request itself never takes this long.
const ABANDONED_AFTER_SECONDS: f64 = 60.0;

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
pub enum Claim {
    /// This is the first request with the key: run it, then `remember` or `forget`
    /// with this token (which a takeover of an abandoned claim replaces).
    First(Uuid),
    /// The key was answered before: give the same answer again.
    Replay { status: u16, body: Value },
}

#[derive(sqlx::FromRow)]
struct Stored {
    request_hash: Vec<u8>,
    status: Option<i16>,
    response: Option<Value>,
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

#[tracing::instrument(skip_all)]
pub async fn claim(
    pool: &PgPool,
    client_id: Uuid,
    key: &IdempotencyKey,
    request_hash: &[u8],
) -> Result<Claim> {
    // A key older than 24 h, or an abandoned claim, is taken over as new.
    let token = Uuid::new_v4();
    let claimed = sqlx::query(
        "insert into idempotency_keys (client_id, key, request_hash, claim) values ($1, $2, $3, $5)
         on conflict (client_id, key) do update
             set request_hash = excluded.request_hash, claim = excluded.claim, status = null,
                 response = null, created_at = now()
             where idempotency_keys.created_at < now() - interval '24 hours'
                or (idempotency_keys.status is null
                    and idempotency_keys.created_at < now() - make_interval(secs => $4))",
    )
    .bind(client_id)
    .bind(&key.0)
    .bind(request_hash)
    .bind(ABANDONED_AFTER_SECONDS)
    .bind(token)
    .execute(pool)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(Claim::First(token));
    }
    let stored: Option<Stored> = sqlx::query_as(
        "select request_hash, status, response from idempotency_keys where client_id = $1 and key = $2",
    )
    .bind(client_id)
    .bind(&key.0)
    .fetch_optional(pool)
    .await?;
    // Forgotten between the two statements: a retry may just try again.
    let Some(stored) = stored else {
        return Err(Error::IdempotencyKeyInUse);
    };
    if stored.request_hash != request_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    match (stored.status, stored.response) {
        (Some(status), Some(body)) => Ok(Claim::Replay {
            status: status as u16,
            body,
        }),
        _ => Err(Error::IdempotencyKeyInUse),
    }
}

/// Keeps the first request's answer for its retries.
pub async fn remember(
    pool: &PgPool,
    client_id: Uuid,
    key: &IdempotencyKey,
    claim: Uuid,
    status: u16,
    body: &Value,
) -> Result<()> {
    sqlx::query(
        "update idempotency_keys set status = $4, response = $5
         where client_id = $1 and key = $2 and claim = $3 and status is null",
    )
    .bind(client_id)
    .bind(&key.0)
    .bind(claim)
    .bind(status as i16)
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets the key go: the request did nothing a retry would repeat.
pub async fn forget(pool: &PgPool, client_id: Uuid, key: &IdempotencyKey, claim: Uuid) -> Result<()> {
    sqlx::query(
        "delete from idempotency_keys where client_id = $1 and key = $2 and claim = $3 and status is null",
    )
    .bind(client_id)
    .bind(&key.0)
    .bind(claim)
    .execute(pool)
    .await?;
    Ok(())
}
