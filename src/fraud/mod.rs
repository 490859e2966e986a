//! Fraud protection: the prefixes operators allow or block by hand
//! (`otp-service fraud`, `/admin/fraud`). A blocked prefix is refused at
//! once on every replica, whatever the fraud mode; an allowed one is never
//! refused for suspected fraud.

pub mod detect;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{Prefix, PrefixAction, PrefixRule};
use crate::store::fraud_prefixes as store;

/// A prefix and what was said of it, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEntry {
    pub rule: PrefixRule,
    pub created_at: DateTime<Utc>,
}

/// Every rule, as requests are judged by.
pub async fn rules(pool: &PgPool) -> Result<Vec<PrefixRule>, sqlx::Error> {
    Ok(list(pool).await?.into_iter().map(|e| e.rule).collect())
}

pub async fn list(pool: &PgPool) -> Result<Vec<PrefixEntry>, sqlx::Error> {
    Ok(store::all(pool).await?.into_iter().filter_map(entry).collect())
}

/// A stored row as an entry (`None` for an action this version does not know).
fn entry(row: store::PrefixRow) -> Option<PrefixEntry> {
    let action = match row.action.as_str() {
        "allow" => PrefixAction::Allow,
        "block" => PrefixAction::Block { until: row.until },
        _ => return None,
    };
    Some(PrefixEntry {
        rule: PrefixRule {
            prefix: Prefix::stored(row.prefix),
            action,
        },
        created_at: row.created_at,
    })
}

/// Allows or blocks `prefix`, replacing what was said of it before; the
/// entry as now stored.
pub async fn set(pool: &PgPool, prefix: &Prefix, action: PrefixAction) -> Result<PrefixEntry, sqlx::Error> {
    let (name, until) = match action {
        PrefixAction::Allow => ("allow", None),
        PrefixAction::Block { until } => ("block", until),
    };
    let row = store::set(pool, prefix.digits(), name, until).await?;
    Ok(PrefixEntry {
        rule: PrefixRule {
            prefix: prefix.clone(),
            action,
        },
        created_at: row.created_at,
    })
}

/// Forgets `prefix`; `false` when nothing was said of it.
pub async fn remove(pool: &PgPool, prefix: &Prefix) -> Result<bool, sqlx::Error> {
    store::remove(pool, prefix.digits()).await
}

/// What the detector's flags do (`OTP_FRAUD_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FraudMode {
    /// No detection (manual blocks still refuse).
    Off,
    /// Flags are raised, logged and counted; nothing is refused for them.
    #[default]
    Record,
    /// Requests matching a flag are refused too.
    Enforce,
}

/// A standing flag as requests are judged by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingFlag {
    /// `country`, `prefix` or `ip`.
    pub scope: String,
    pub key: String,
    pub until: DateTime<Utc>,
}

/// The flags of the detector, as requests are judged by.
pub async fn standing_flags(pool: &PgPool) -> Result<Vec<StandingFlag>, sqlx::Error> {
    Ok(crate::store::fraud_flags::current(pool)
        .await?
        .into_iter()
        .map(|f| StandingFlag {
            scope: f.scope,
            key: f.key,
            until: f.until,
        })
        .collect())
}

/// The flag a request matches, if any: its number's country or prefix, or
/// its end user's network.
pub fn matching_flag<'a>(
    flags: &'a [StandingFlag],
    country: Option<&str>,
    prefix: &str,
    network: Option<&str>,
    now: DateTime<Utc>,
) -> Option<&'a StandingFlag> {
    flags
        .iter()
        .filter(|f| f.until > now)
        .find(|f| match f.scope.as_str() {
            "country" => Some(f.key.as_str()) == country,
            "prefix" => f.key == prefix,
            "ip" => Some(f.key.as_str()) == network,
            _ => false,
        })
}

/// The same, for the admin API.
#[derive(Clone)]
pub struct FraudAdmin {
    pool: PgPool,
}

impl FraudAdmin {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn list(&self) -> Result<Vec<PrefixEntry>, sqlx::Error> {
        list(&self.pool).await
    }

    pub async fn set(&self, prefix: &Prefix, action: PrefixAction) -> Result<PrefixEntry, sqlx::Error> {
        set(&self.pool, prefix, action).await
    }

    pub async fn remove(&self, prefix: &Prefix) -> Result<bool, sqlx::Error> {
        remove(&self.pool, prefix).await
    }

    /// The detector's standing flags, with their figures.
    pub async fn flags(&self) -> Result<Vec<crate::store::fraud_flags::FlagRow>, sqlx::Error> {
        crate::store::fraud_flags::current(&self.pool).await
    }
}

/// Seconds a refused request should wait: until the block ends, at most a
/// day (a block for good is looked at again tomorrow).
pub fn retry_after(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    const DAY: u64 = 24 * 60 * 60;
    until.map_or(DAY, |until| {
        u64::try_from((until - now).num_seconds())
            .unwrap_or(1)
            .clamp(1, DAY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_matches_a_flag_of_its_country_prefix_or_network_while_it_stands() {
        let now = Utc::now();
        let flag = |scope: &str, key: &str, secs: i64| StandingFlag {
            scope: scope.into(),
            key: key.into(),
            until: now + chrono::Duration::seconds(secs),
        };
        let flags = [
            flag("prefix", "591777", 60),
            flag("country", "PE", 60),
            flag("ip", "10.0.0.1", -1),
        ];
        assert!(matching_flag(&flags, Some("BO"), "591777", None, now).is_some());
        assert!(matching_flag(&flags, Some("BO"), "591696", None, now).is_none());
        assert!(matching_flag(&flags, Some("PE"), "51987", None, now).is_some());
        assert!(
            matching_flag(&flags, None, "591696", Some("10.0.0.1"), now).is_none(),
            "ended"
        );
    }

    #[test]
    fn a_block_is_waited_out_or_looked_at_again_tomorrow() {
        let now = Utc::now();
        assert_eq!(retry_after(Some(now + chrono::Duration::seconds(90)), now), 90);
        assert_eq!(retry_after(Some(now + chrono::Duration::days(30)), now), 86_400);
        assert_eq!(retry_after(None, now), 86_400);
        assert_eq!(retry_after(Some(now), now), 1);
    }
}
