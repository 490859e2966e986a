//! Who may call: API keys with their client's request window, and the admin
//! key with its throttle on wrong guesses. The HTTP middleware asks here.

use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::clients::Client;
use crate::clients::cache::ClientCache;
use crate::error::{Error, Result};
use crate::otp::LimitSettings;
use crate::otp::limits;
use crate::otp::rate::Leases;

pub struct Access {
    pool: PgPool,
    clients: ClientCache,
    limits: LimitSettings,
    /// What this replica holds of each client's request window.
    leases: Leases,
    /// `OTP_ADMIN_KEY`; the admin endpoints are off without it.
    admin_key: Option<SecretString>,
}

impl Access {
    pub fn new(
        pool: PgPool,
        clients: ClientCache,
        limits: LimitSettings,
        admin_key: Option<SecretString>,
    ) -> Self {
        Self {
            pool,
            clients,
            limits,
            leases: Leases::default(),
            admin_key,
        }
    }

    /// The active client holding `key`, with this call counted against its own
    /// per-minute window: `401` for no such client, `429` past the window.
    /// Both from memory, as a rule (`ClientCache`, `Leases`).
    pub async fn caller(&self, key: &str) -> Result<Client> {
        let client = self.clients.authenticate(key).await?.ok_or(Error::Unauthorized)?;
        self.leases.take(&self.pool, &self.limits.client(&client)).await?;
        Ok(client)
    }

    /// Lets an operator in with the admin key `given` (from `source`), or says
    /// why not: `404` when admin is off, `429` while that address has guessed
    /// wrong too often (even the right key waits then, or guessing would go
    /// on), `401` for a wrong or missing key. Only a key that was given and
    /// wrong counts: a browser's first request, sent without credentials to
    /// get the Basic challenge, is no guess.
    pub async fn admin(&self, given: Option<&str>, source: Option<IpAddr>) -> Result<()> {
        let Some(expected) = &self.admin_key else {
            return Err(Error::NotFound("no such endpoint"));
        };
        // Digests compared, so the time taken says nothing about the key.
        let matches = given.is_some_and(|given| {
            Sha256::digest(given.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes())
        });
        let failures = limits::admin_failures(source);
        failures.check(&self.pool).await?;
        if !matches {
            if given.is_some() {
                failures.take(&self.pool).await?;
            }
            return Err(Error::AdminUnauthorized);
        }
        Ok(())
    }
}
