//! Who may call: API keys with their client's request window, and the admin
//! key with its throttle on wrong guesses. The HTTP middleware asks here.

use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::clients::Client;
use crate::clients::cache::ClientCache;
use crate::domain::{Sid, SidKind};
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
        self.caller_if(key, |_| true).await
    }

    /// `caller`, for `/twilio`'s Basic credentials: the key's client must
    /// also have `account_sid` as its Account SID, or the pair is wrong
    /// (`401`, and nothing is counted against the client's window).
    pub async fn twilio_caller(&self, account_sid: &str, key: &str) -> Result<Client> {
        let user = Sid::parse(SidKind::Account, account_sid);
        self.caller_if(key, |client| {
            let own = client.twilio.as_ref().map(|sids| &sids.account);
            user.is_some() && own == user.as_ref()
        })
        .await
    }

    async fn caller_if(&self, key: &str, accept: impl FnOnce(&Client) -> bool) -> Result<Client> {
        let client = self
            .clients
            .authenticate(key)
            .await?
            .filter(accept)
            .ok_or(Error::Unauthorized)?;
        self.leases.take(&self.pool, &self.limits.client(&client)).await?;
        Ok(client)
    }

    /// Lets an operator in with the admin key `given` (from `source`), or says
    /// why not: `404` when admin is off, `401` for a wrong or missing key, and
    /// `429` instead of `401` for a wrong key once that address has given ten
    /// wrong keys in a minute. The right key always passes, and without a
    /// statement: behind a TLS terminator every operator shares one address,
    /// and someone else's wrong guesses must not keep them out. A 32-byte key
    /// cannot be guessed anyway; the throttle keeps wrong keys from filling
    /// the logs. Only a key that was given counts: a browser's first request,
    /// sent without credentials to get the Basic challenge, is no guess.
    pub async fn admin(&self, given: Option<&str>, source: Option<IpAddr>) -> Result<()> {
        let Some(expected) = &self.admin_key else {
            return Err(Error::NotFound("no such endpoint"));
        };
        match admin_verdict(given, expected) {
            AdminVerdict::Right => Ok(()),
            AdminVerdict::Missing => Err(Error::AdminUnauthorized),
            AdminVerdict::Wrong => {
                // Past the window, `take` refuses (429) and counts nothing more.
                limits::admin_failures(source).take(&self.pool).await?;
                Err(Error::AdminUnauthorized)
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum AdminVerdict {
    Right,
    Wrong,
    Missing,
}

fn admin_verdict(given: Option<&str>, expected: &SecretString) -> AdminVerdict {
    let Some(given) = given else {
        return AdminVerdict::Missing;
    };
    // Digests compared, so the time taken says nothing about the key.
    if Sha256::digest(given.as_bytes()) == Sha256::digest(expected.expose_secret().as_bytes()) {
        AdminVerdict::Right
    } else {
        AdminVerdict::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::{AdminVerdict, admin_verdict};

    #[test]
    fn only_a_given_key_that_differs_is_wrong() {
        let expected = "the-admin-key-the-admin-key-the-admin-key".to_owned().into();
        assert_eq!(
            admin_verdict(Some("the-admin-key-the-admin-key-the-admin-key"), &expected),
            AdminVerdict::Right
        );
        assert_eq!(admin_verdict(Some("a-guess"), &expected), AdminVerdict::Wrong);
        assert_eq!(admin_verdict(Some(""), &expected), AdminVerdict::Wrong);
        assert_eq!(admin_verdict(None, &expected), AdminVerdict::Missing);
    }
}
