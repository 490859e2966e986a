//! Pumping detection: velocity against conversion (Authgear's published
//! rules), each client's traffic counted apart (`fraud::rules`). Every
//! replica's detector counts, each `OTP_FRAUD_CHECK_SECONDS`:
//! - `unverified_day`, by country and by prefix (the calling code and three
//!   digits): a client's codes sent and not verified in the last day, above
//!   max(20, 0.2 × its best day of verified codes in the last 14 days);
//! - `unverified_day_all_clients`, by prefix: the same over the clients
//!   whose own traffic there is dirty, added up; each of them is flagged;
//! - `low_conversion_hour`, by prefix: a client's sends in the last hour, at
//!   least 20, under 10 % verified;
//! - `ip_countries`: an end user's network, as a client states it, asking
//!   that client for numbers of more than three countries in a day.
//!
//! A flag raised is logged and counted (`otp_fraud_flags_total`); in
//! `enforce` mode that client's new requests matching it are refused. Flags
//! clear when the counts fall back.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::rules::{
    self, BASELINE, CONTRIBUTOR_FLOOR, DAY, HOUR, LOW_CONVERSION_MIN_SENDS, MAX_COUNTRIES, SCAN_LIMIT,
};
use crate::metrics::Metrics;
use crate::store::fraud_counts as counts;
use crate::store::fraud_flags::{self as store, Flag};

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

    /// What every rule finds now.
    async fn findings(&self) -> Result<Vec<Flag>, sqlx::Error> {
        let pool = &self.pool;
        // The least count returned is the least any rule on it can use.
        let by_country =
            counts::unverified(pool, SCAN_LIMIT, "country", DAY, BASELINE, CONTRIBUTOR_FLOOR).await?;
        let by_prefix =
            counts::unverified(pool, SCAN_LIMIT, "prefix", DAY, BASELINE, CONTRIBUTOR_FLOOR).await?;
        let mut found = rules::unverified_day("country", &by_country);
        found.extend(rules::unverified_day("prefix", &by_prefix));
        found.extend(rules::unverified_day_all_clients(&by_prefix));
        let conversion = counts::conversion(pool, SCAN_LIMIT, HOUR, LOW_CONVERSION_MIN_SENDS).await?;
        found.extend(rules::low_conversion_hour(&conversion));
        let networks = counts::network_countries(pool, SCAN_LIMIT, DAY, MAX_COUNTRIES + 1).await?;
        found.extend(rules::ip_countries(&networks));
        Ok(found)
    }

    /// Counts every rule once, raising, updating and clearing flags.
    pub async fn check(&self) -> Result<(), sqlx::Error> {
        let found = self.findings().await?;
        let standing = store::current(&self.pool).await?;
        let standing_ids: HashSet<_> = standing.iter().map(|f| f.flag.identity()).collect();
        for flag in &found {
            if standing_ids.contains(&flag.identity()) {
                store::update(&self.pool, flag).await?;
            } else if store::raise(&self.pool, flag).await? {
                tracing::warn!(
                    rule = %flag.rule, scope = %flag.scope, key = %flag.key, client = %flag.client_name,
                    counted = flag.counted, threshold = flag.threshold,
                    "suspected fraud: flag raised"
                );
                self.metrics
                    .fraud_flags
                    .with_label_values(&[&flag.client_name, &flag.rule, &flag.country])
                    .inc();
            }
        }
        let found_ids: HashSet<_> = found.iter().map(Flag::identity).collect();
        for row in standing
            .iter()
            .filter(|f| !found_ids.contains(&f.flag.identity()))
        {
            store::clear(&self.pool, &row.flag).await?;
            tracing::info!(
                rule = %row.flag.rule, key = %row.flag.key, client = %row.flag.client_name,
                "fraud flag cleared"
            );
        }
        Ok(())
    }
}
