//! Fraud protection: the prefixes operators allow or block by hand, and the
//! countries and networks they block (`otp-service fraud`, `/admin/fraud`),
//! refused at once on every replica, for every client, whatever the fraud
//! mode (an allowed prefix is never refused for suspected fraud); and the
//! detector's flags (`detect`, `rules`), each refusing under `enforce` only
//! the client whose own traffic raised it.

pub mod blocks;
pub mod detect;
pub mod flags;
pub mod rules;

pub use blocks::{Asked, Block, Lists, Said, Subject, lists, operators_say};
pub use flags::{StandingFlag, matching_flag, standing_flags};

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

pub use crate::config::FraudMode;

/// Prefixes, blocks and flags, for the admin API.
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
        flags::current(&self.pool).await
    }

    /// Blocks for every client what flag `id` flags (`None`: no such flag stands).
    pub async fn block_from_flag(
        &self,
        id: i64,
        until: Option<DateTime<Utc>>,
    ) -> Result<Option<(crate::store::fraud_flags::FlagRow, Block)>, sqlx::Error> {
        flags::block_from_flag(&self.pool, id, until).await
    }

    /// The blocked countries and networks.
    pub async fn blocks(&self) -> Result<Vec<Block>, sqlx::Error> {
        blocks::blocks(&self.pool).await
    }

    pub async fn block(&self, subject: &Subject, until: Option<DateTime<Utc>>) -> Result<Block, sqlx::Error> {
        blocks::block(&self.pool, subject, until).await
    }

    pub async fn unblock(&self, subject: &Subject) -> Result<bool, sqlx::Error> {
        blocks::unblock(&self.pool, subject).await
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
    fn a_block_is_waited_out_or_looked_at_again_tomorrow() {
        let now = Utc::now();
        assert_eq!(retry_after(Some(now + chrono::Duration::seconds(90)), now), 90);
        assert_eq!(retry_after(Some(now + chrono::Duration::days(30)), now), 86_400);
        assert_eq!(retry_after(None, now), 86_400);
        assert_eq!(retry_after(Some(now), now), 1);
    }
}
