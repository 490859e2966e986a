//! What the operators' HTTP API does with clients: the functions of
//! `clients` and `clients::test_numbers`, with what they need (the pool, the
//! code hasher, the service's defaults) held once, so that the HTTP layer
//! talks to a service and never to the database.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;

use super::cache::ClientCache;
use super::test_numbers::{self, TestNumber};
use super::{ClientError, ClientRecord};
use crate::crypto::CodeHasher;
use crate::domain::{Defaults, Effective, PhoneNumber, SettingsChange};

/// A client with the settings it gets: its own over the service's defaults.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub record: ClientRecord,
    pub effective: Effective,
}

pub struct ClientAdmin {
    pool: PgPool,
    /// Dropped at once after a change made here; other replicas hear of it.
    cache: ClientCache,
    hasher: CodeHasher,
    defaults: Defaults,
    /// `OTP_ALLOW_WEAK_CODES`: a client's own settings get no more leeway
    /// than the service's.
    allow_weak_codes: bool,
}

impl ClientAdmin {
    pub fn new(
        pool: PgPool,
        cache: ClientCache,
        hasher: CodeHasher,
        defaults: Defaults,
        allow_weak_codes: bool,
    ) -> Self {
        Self {
            pool,
            cache,
            hasher,
            defaults,
            allow_weak_codes,
        }
    }

    /// A name no client can have is answered as unknown without asking the
    /// database, which would refuse some of them (a NUL byte) with an error.
    fn known(name: &str) -> Result<&str, ClientError> {
        super::check_name(name)
            .map(|()| name)
            .map_err(|_| ClientError::Unknown(name.to_owned()))
    }

    fn view(&self, record: ClientRecord) -> ClientView {
        let effective = record.settings.effective(&record.name, &self.defaults);
        ClientView { record, effective }
    }

    pub async fn list(&self) -> Result<Vec<ClientView>, ClientError> {
        let records = super::list(&self.pool).await?;
        Ok(records.into_iter().map(|r| self.view(r)).collect())
    }

    pub async fn show(&self, name: &str) -> Result<ClientView, ClientError> {
        Ok(self.view(super::show(&self.pool, Self::known(name)?).await?))
    }

    /// A new client and its key, which is never shown again.
    pub async fn create(
        &self,
        name: &str,
        change: SettingsChange,
    ) -> Result<(ClientView, SecretString), ClientError> {
        let (record, key) = super::add_with_settings(&self.pool, name, change, self.allow_weak_codes).await?;
        Ok((self.view(record), key))
    }

    /// Every field checked before any is written: a refused change changes nothing.
    pub async fn change(&self, name: &str, change: SettingsChange) -> Result<ClientView, ClientError> {
        let record = super::change(&self.pool, Self::known(name)?, change, self.allow_weak_codes).await?;
        self.cache.drop_all();
        Ok(self.view(record))
    }

    pub async fn rotate_key(&self, name: &str) -> Result<SecretString, ClientError> {
        let key = super::rotate_key(&self.pool, Self::known(name)?).await?;
        self.cache.drop_all();
        Ok(key)
    }

    pub async fn test_numbers(&self, name: &str) -> Result<Vec<TestNumber>, ClientError> {
        test_numbers::list(&self.pool, Self::known(name)?).await
    }

    pub async fn add_test_number(
        &self,
        name: &str,
        phone: &PhoneNumber,
        code: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<TestNumber, ClientError> {
        let added = test_numbers::add(
            &self.pool,
            &self.hasher,
            Self::known(name)?,
            phone,
            code,
            until,
            self.allow_weak_codes,
        )
        .await?;
        self.cache.drop_all();
        Ok(added)
    }

    pub async fn remove_test_number(&self, name: &str, phone: &PhoneNumber) -> Result<(), ClientError> {
        test_numbers::remove(&self.pool, Self::known(name)?, phone).await?;
        self.cache.drop_all();
        Ok(())
    }
}
