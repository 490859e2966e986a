//! Setting a client's webhook URL and rotating its signing secret, as the
//! CLI and the admin API do. A secret is shown once, when it is made.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;

use super::endpoint::UrlPolicy;
use super::{sealed_for, signing};
use crate::clients::ClientError;
use crate::crypto::Sealer;
use crate::domain::FieldError;
use crate::store::webhooks as store;

/// How long a rotated secret goes on signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Clone)]
pub struct WebhookAdmin {
    pool: PgPool,
    sealer: Sealer,
    policy: UrlPolicy,
}

/// A client's webhook as operators see it.
#[derive(Debug, Clone)]
pub struct EndpointView {
    pub url: String,
    /// Until when the secret before the last rotation still signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    /// Set after a day of failed deliveries; setting the URL again enables it.
    pub disabled_at: Option<DateTime<Utc>>,
}

impl WebhookAdmin {
    pub fn new(pool: PgPool, sealer: Sealer, policy: UrlPolicy) -> Self {
        Self { pool, sealer, policy }
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether `url` may be a webhook endpoint, storing nothing.
    pub async fn check_url(&self, url: &str) -> Result<(), ClientError> {
        self.checked(url).await.map(|_| ())
    }

    async fn checked(&self, url: &str) -> Result<url::Url, ClientError> {
        self.policy.check(url).await.map_err(|refusal| {
            ClientError::Invalid(FieldError {
                field: "webhook_url",
                detail: refusal.to_string(),
            })
        })
    }

    /// Points the client's webhook at `url` (checked, and enabled again if
    /// it was disabled). Returns the new signing secret when the client had
    /// none: shown this once.
    pub async fn set_url(&self, client: &str, url: &str) -> Result<Option<SecretString>, ClientError> {
        let url = self.checked(url).await?;
        let secret = signing::generate_secret();
        let sealed = self.sealer.seal(&secret, &sealed_for(client));
        match store::set_endpoint(&self.pool, client, url.as_str(), &sealed).await? {
            None => Err(ClientError::Unknown(client.to_owned())),
            Some(true) => Ok(Some(secret)),
            Some(false) => Ok(None),
        }
    }

    pub async fn clear(&self, client: &str) -> Result<(), ClientError> {
        clear(&self.pool, client).await
    }

    /// A new signing secret; the current one signs beside it for a day.
    pub async fn rotate_secret(&self, client: &str) -> Result<SecretString, ClientError> {
        let secret = signing::generate_secret();
        let sealed = self.sealer.seal(&secret, &sealed_for(client));
        if store::rotate_secret(&self.pool, client, &sealed, ROTATION_OVERLAP).await? {
            return Ok(secret);
        }
        match endpoint(&self.pool, client).await? {
            Some(_) => Err(ClientError::Unknown(client.to_owned())),
            None => Err(ClientError::Invalid(FieldError {
                field: "webhook_url",
                detail: "the client has no webhook URL: set one first".into(),
            })),
        }
    }

    pub async fn endpoint(&self, client: &str) -> Result<Option<EndpointView>, ClientError> {
        endpoint(&self.pool, client).await
    }
}

/// No more webhooks for the client; its secrets are forgotten.
pub async fn clear(pool: &PgPool, client: &str) -> Result<(), ClientError> {
    if store::clear_endpoint(pool, client).await? {
        Ok(())
    } else {
        Err(ClientError::Unknown(client.to_owned()))
    }
}

/// The client's webhook, if it has one.
pub async fn endpoint(pool: &PgPool, client: &str) -> Result<Option<EndpointView>, ClientError> {
    let row = store::endpoint(pool, client)
        .await?
        .ok_or_else(|| ClientError::Unknown(client.to_owned()))?;
    Ok(row.url.map(|url| EndpointView {
        url,
        previous_secret_until: row.previous_secret_until,
        failing_since: row.failing_since,
        disabled_at: row.disabled_at,
    }))
}

/// Records which URLs this service accepts, for the command line to read
/// (`policy_for_cli`). The replica started last speaks for the service.
pub async fn record_policy(pool: &PgPool, policy: UrlPolicy) -> Result<(), sqlx::Error> {
    store::record_url_policy(pool, policy.allow_http, policy.allow_private).await
}

/// What `clients set --webhook-url` accepts: what the service accepts (as
/// recorded at its start), and what the command line's own settings allow
/// besides. The second is said to whoever sets a URL only the CLI allows.
pub async fn policy_for_cli(pool: &PgPool, own: UrlPolicy) -> Result<CliPolicy, sqlx::Error> {
    let service = store::url_policy(pool)
        .await?
        .map(|(allow_http, allow_private)| UrlPolicy {
            allow_http,
            allow_private,
        });
    Ok(CliPolicy { service, own })
}

/// The service's recorded URL policy beside the command line's own.
#[derive(Debug, Clone, Copy)]
pub struct CliPolicy {
    /// `None` until a service has started on this database.
    pub service: Option<UrlPolicy>,
    pub own: UrlPolicy,
}

impl CliPolicy {
    /// Either one's permission is enough to set a URL.
    pub fn accepted(&self) -> UrlPolicy {
        let service = self.service.unwrap_or_default();
        UrlPolicy {
            allow_http: self.own.allow_http || service.allow_http,
            allow_private: self.own.allow_private || service.allow_private,
        }
    }

    /// A warning when `url` passes only by the command line's own settings,
    /// which the service would refuse at every delivery.
    pub async fn service_refuses(&self, url: &str) -> Option<String> {
        let service = self.service?;
        let refusal = service.check(url).await.err()?;
        Some(format!(
            "the service, as last started on this database, refuses this URL ({refusal}): set the same \
             OTP_WEBHOOK_ALLOW_* on `serve`, or its deliveries will fail"
        ))
    }
}
