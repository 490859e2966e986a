//! Calling applications and their API keys. A key is 256 random bits shown
//! once; the database keeps only its SHA-256.

use rand::rngs::SysRng;
use rand::{RngExt, rand_core::UnwrapErr};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::domain::ClientId;
use crate::store::clients as store;

const KEY_PREFIX: &str = "otpk_";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub requests_per_minute: Option<i32>,
}

pub use crate::store::clients::ClientListing;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("a client named `{0}` already exists")]
    Exists(String),
    #[error("no client named `{0}`")]
    Unknown(String),
    #[error("client names are 1 to 64 characters of a-z, 0-9, `_`, `.` and `-`")]
    BadName,
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
    check_name(name)?;
    if !store::insert(pool, name, &key_hash(key.expose_secret()), requests_per_minute).await? {
        return Err(ClientError::Exists(name.to_owned()));
    }
    Ok(())
}

/// Makes sure a client with exactly this key exists and is active (for `--dev`,
/// which marks it as its own).
pub async fn ensure_with_key(pool: &PgPool, name: &str, key: &SecretString) -> Result<(), ClientError> {
    Ok(store::upsert_dev(pool, name, &key_hash(key.expose_secret())).await?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<ClientListing>, ClientError> {
    Ok(store::list(pool).await?)
}

pub async fn revoke(pool: &PgPool, name: &str) -> Result<(), ClientError> {
    if !store::revoke(pool, name).await? {
        return Err(ClientError::Unknown(name.to_owned()));
    }
    Ok(())
}

pub async fn set_requests_per_minute(
    pool: &PgPool,
    name: &str,
    limit: Option<u32>,
) -> Result<(), ClientError> {
    if !store::set_requests_per_minute(pool, name, limit).await? {
        return Err(ClientError::Unknown(name.to_owned()));
    }
    Ok(())
}

/// The active client holding this key, if any.
#[tracing::instrument(skip_all)]
pub async fn authenticate(pool: &PgPool, key: &str) -> Result<Option<Client>, sqlx::Error> {
    Ok(store::by_key_hash(pool, &key_hash(key)).await?.map(|row| Client {
        id: row.id,
        name: row.name,
        requests_per_minute: row.requests_per_minute,
    }))
}

/// Why `serve --dev` must not use this database, if it must not: it holds
/// clients or verifications that `--dev` did not make.
pub async fn dev_refusal(pool: &PgPool) -> Result<Option<String>, ClientError> {
    let clients = store::count_not_made_by_dev(pool).await?;
    let verifications = crate::store::verifications::count_not_made_by_dev(pool).await?;
    Ok((clients > 0 || verifications > 0).then(|| {
        format!(
            "serve --dev will not use this database: it holds {clients} clients and {verifications} verifications \
             that serve --dev did not make, so it looks like a real one. Point DATABASE_URL at a database of its own, \
             e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/otp_service_dev"
        )
    }))
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
