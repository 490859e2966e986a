//! Calling applications and their API keys. A key is 256 random bits shown
//! once; the database keeps only its SHA-256.

use rand::rngs::SysRng;
use rand::{RngExt, rand_core::UnwrapErr};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use chrono::{DateTime, Utc};

use crate::config::PolicySettings;
use crate::delivery::Templates;
use crate::domain::{
    Change, ClientId, ClientSettings, Defaults, FieldError, Locale, SettingsChange, TwilioSids,
};
use crate::store::client_removal as store_removal;
pub use crate::store::client_removal::Removed;
use crate::store::clients as store;

pub mod admin;
pub mod cache;
pub mod dev_database;
pub mod test_numbers;

const KEY_PREFIX: &str = "otpk_";

/// An authenticated caller, with its settings as they are at this request.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Its Account and Service SIDs for `/twilio` (`None` only if the stored
    /// ones were not SIDs, which V20's checks rule out).
    pub twilio: Option<TwilioSids>,
    pub settings: ClientSettings,
}

/// A client as operators see it (never its key).
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user name of `/twilio`'s Basic credentials (`AC…`).
    pub twilio_account_sid: String,
    /// The service in `/twilio`'s paths (`VA…`).
    pub twilio_service_sid: String,
    pub settings: ClientSettings,
}

impl From<store::ClientRecord> for ClientRecord {
    fn from(r: store::ClientRecord) -> Self {
        Self {
            settings: r.settings.settings(),
            name: r.name,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            twilio_account_sid: r.sids.twilio_account_sid,
            twilio_service_sid: r.sids.twilio_service_sid,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("a client named `{0}` already exists")]
    Exists(String),
    #[error("no client named `{0}`")]
    Unknown(String),
    #[error("client names are 1 to 64 characters of a-z, 0-9, `_`, `.` and `-`")]
    BadName,
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("the client has no such test number")]
    NoSuchTestNumber,
    #[error("could not hash the code: {0}")]
    Hashing(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub fn generate_key() -> SecretString {
    let mut bytes = [0u8; 32];
    UnwrapErr(SysRng).fill(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes)).into()
}

pub fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

fn check_name(name: &str) -> Result<(), ClientError> {
    crate::domain::Purpose::parse(name)
        .map(|_| ())
        .map_err(|_| ClientError::BadName)
}

/// Creates a client and returns its key, which is never shown again.
pub async fn add(
    pool: &PgPool,
    name: &str,
    requests_per_minute: Option<u32>,
) -> Result<SecretString, ClientError> {
    let key = generate_key();
    add_with_key(pool, name, &key, requests_per_minute).await?;
    Ok(key)
}

pub async fn add_with_key(
    pool: &PgPool,
    name: &str,
    key: &SecretString,
    requests_per_minute: Option<u32>,
) -> Result<(), ClientError> {
    let settings = ClientSettings {
        requests_per_minute,
        ..Default::default()
    };
    insert(pool, name, key, &settings).await
}

/// Creates a client with `change` over the defaults and returns its key, which
/// is never shown again. The settings are checked before the client exists, and
/// written with it: a bad field leaves no client behind.
pub async fn add_with_settings(
    pool: &PgPool,
    name: &str,
    change: SettingsChange,
    allow_weak_codes: bool,
) -> Result<(ClientRecord, SecretString), ClientError> {
    check_name(name)?;
    let settings = change.apply(&ClientSettings::default(), allow_weak_codes)?;
    let key = generate_key();
    insert(pool, name, &key, &settings).await?;
    Ok((show(pool, name).await?, key))
}

async fn insert(
    pool: &PgPool,
    name: &str,
    key: &SecretString,
    settings: &ClientSettings,
) -> Result<(), ClientError> {
    check_name(name)?;
    if !store::insert(pool, name, &key_hash(key.expose_secret()), settings).await? {
        return Err(ClientError::Exists(name.to_owned()));
    }
    Ok(())
}

/// Makes sure a client with exactly this key exists and is active (for `--dev`,
/// which marks it as its own).
pub async fn ensure_with_key(pool: &PgPool, name: &str, key: &SecretString) -> Result<(), ClientError> {
    Ok(store::upsert_dev(pool, name, &key_hash(key.expose_secret())).await?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<ClientRecord>, ClientError> {
    Ok(store::list(pool).await?.into_iter().map(Into::into).collect())
}

pub async fn show(pool: &PgPool, name: &str) -> Result<ClientRecord, ClientError> {
    store::by_name(pool, name)
        .await?
        .map(Into::into)
        .ok_or_else(|| ClientError::Unknown(name.to_owned()))
}

/// Applies `change` to a client's settings, whole or not at all; effective at
/// once on every replica (each request reads its client's row).
pub async fn change(
    pool: &PgPool,
    name: &str,
    change: SettingsChange,
    allow_weak_codes: bool,
) -> Result<ClientRecord, ClientError> {
    match store::change_settings(pool, name, |current| change.apply(current, allow_weak_codes)).await? {
        None => Err(ClientError::Unknown(name.to_owned())),
        Some(Err(refused)) => Err(refused.into()),
        Some(Ok(record)) => Ok(record.into()),
    }
}

/// Gives a client a new key, shown this once; the old key stops working now.
pub async fn rotate_key(pool: &PgPool, name: &str) -> Result<SecretString, ClientError> {
    let key = generate_key();
    if !store::rotate_key(pool, name, &key_hash(key.expose_secret())).await? {
        return Err(ClientError::Unknown(name.to_owned()));
    }
    Ok(key)
}

pub async fn revoke(pool: &PgPool, name: &str) -> Result<(), ClientError> {
    if !store::revoke(pool, name).await? {
        return Err(ClientError::Unknown(name.to_owned()));
    }
    Ok(())
}

/// How long each statement of a removal may run: a client's whole history
/// goes, which can be far more than a request's statement ever touches.
const REMOVAL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes a client and everything that is its: its key stops working on
/// every replica (the delete is told like any change to `clients`), its
/// verifications and their queued messages, its test numbers, its webhook
/// endpoint and undelivered events, its stats and fraud flags. Cannot be
/// undone; `revoke` keeps the history.
pub async fn remove(pool: &PgPool, name: &str) -> Result<Removed, ClientError> {
    store_removal::remove(pool, name, REMOVAL_LIMIT)
        .await?
        .ok_or_else(|| ClientError::Unknown(name.to_owned()))
}

pub async fn set_requests_per_minute(
    pool: &PgPool,
    name: &str,
    limit: Option<u32>,
) -> Result<(), ClientError> {
    let change = SettingsChange {
        requests_per_minute: limit.map_or(Change::Clear, |n| Change::Set(i64::from(n))),
        ..Default::default()
    };
    self::change(pool, name, change, true).await.map(drop)
}

/// The active client holding this key, if any.
#[tracing::instrument(skip_all)]
pub async fn authenticate(pool: &PgPool, key: &str) -> Result<Option<Client>, sqlx::Error> {
    Ok(store::by_key_hash(pool, &key_hash(key)).await?.map(Client::from))
}

/// The client with this id, revoked or not.
pub async fn by_id(pool: &PgPool, id: ClientId) -> Result<Option<Client>, sqlx::Error> {
    Ok(store::by_id(pool, id).await?.map(Client::from))
}

impl From<store::ClientRow> for Client {
    fn from(row: store::ClientRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
            twilio: TwilioSids::parse(&row.sids.twilio_account_sid, &row.sids.twilio_service_sid),
            settings: row.settings.settings(),
        }
    }
}

/// What a client gets for what it leaves unset (`OTP_CLIENT_*` and the
/// policy settings).
pub fn defaults(policy: &PolicySettings) -> Defaults {
    let templates = Templates::from_settings(policy);
    Defaults {
        max_queued: policy.client_max_queued,
        requests_per_minute: policy.client_requests_per_minute,
        code_length: policy.code_length,
        ttl_seconds: policy.ttl_seconds,
        max_attempts: policy.max_attempts,
        resend_cooldown_seconds: policy.resend_cooldown_seconds,
        max_sends: policy.max_sends,
        allowed_countries: policy.allowed_countries.0.clone(),
        default_locale: policy.default_locale,
        templates: Locale::ALL.map(|l| templates.get(l).to_owned()),
    }
}

impl From<ClientError> for crate::error::Error {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unknown(_) => crate::error::Error::NotFound("no client of that name"),
            ClientError::NoSuchTestNumber => {
                crate::error::Error::NotFound("the client has no such test number")
            }
            ClientError::Exists(name) => crate::error::Error::ClientExists(name),
            ClientError::BadName => crate::error::Error::InvalidRequest(e.to_string()),
            ClientError::Invalid(field) => crate::error::Error::InvalidField(field),
            ClientError::Hashing(message) => {
                // Busy workers, as a verify's hash would be: the operator retries.
                tracing::warn!(error = %message, "could not hash a test number's code; answering 503");
                crate::error::Error::Unavailable { retry_after: 2 }
            }
            ClientError::Database(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_distinct() {
        let a = generate_key();
        let b = generate_key();
        assert_eq!(a.expose_secret().len(), KEY_PREFIX.len() + 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(key_hash(a.expose_secret()).len(), 32);
    }
}
