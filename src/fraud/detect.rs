//! Pumping detection: velocity against conversion (Authgear's published
//! rules). Every replica's detector counts, each `OTP_FRAUD_CHECK_SECONDS`:
//! - `unverified_day`, by country and by prefix (the calling code and three
//!   digits): codes sent and not verified in the last day, above
//!   max(20, 0.2 × the best day of verified codes in the last 14 days);
//! - `low_conversion_hour`, by prefix: under 10 % verified of at least 20
//!   sends in the last hour;
//! - `ip_countries`: an end user's network asking for numbers of more than
//!   three countries in a day.
//!
//! A flag raised is logged and counted (`otp_fraud_flags_total`); in
//! `enforce` mode new requests matching it are refused. Flags clear when the
//! counts fall back.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::fraud_flags::{self as store, FlagRow};

pub struct Detector {
    pub pool: PgPool,
    pub metrics: Metrics,
    pub every: Duration,
}

impl Detector {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.every) => {}
            }
            if let Err(e) = self.check().await {
                tracing::warn!(error = %e, "the fraud rules could not be counted; trying again later");
            }
        }
    }

    /// Counts every rule once, raising, updating and clearing flags.
    pub async fn check(&self) -> Result<(), sqlx::Error> {
        let mut found = store::unverified_day(&self.pool, "country").await?;
        found.extend(store::unverified_day(&self.pool, "prefix").await?);
        found.extend(store::low_conversion_hour(&self.pool).await?);
        found.extend(store::ip_countries(&self.pool).await?);
        let standing = store::current(&self.pool).await?;
        let id = |f: &FlagRow| (f.rule.clone(), f.scope.clone(), f.key.clone());
        let standing_ids: HashSet<_> = standing.iter().map(id).collect();
        for flag in &found {
            if standing_ids.contains(&id(flag)) {
                store::update(&self.pool, flag).await?;
            } else if store::raise(&self.pool, flag).await? {
                tracing::warn!(
                    rule = %flag.rule, scope = %flag.scope, key = %flag.key, client = %flag.client_name,
                    counted = flag.counted, threshold = flag.threshold,
                    "suspected fraud: flag raised"
                );
                self.metrics
                    .fraud_flags
                    .with_label_values(&[&flag.rule, &flag.country])
                    .inc();
            }
        }
        let found_ids: HashSet<_> = found.iter().map(id).collect();
        for flag in standing.iter().filter(|f| !found_ids.contains(&id(f))) {
            store::clear(&self.pool, &flag.rule, &flag.scope, &flag.key).await?;
            tracing::info!(rule = %flag.rule, key = %flag.key, "fraud flag cleared");
        }
        Ok(())
    }
}
