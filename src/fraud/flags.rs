//! The detector's standing flags as requests are judged by them: a flag
//! refuses (under `enforce`) only the requests of the client whose own
//! traffic raised it. An operator turns one into a block for every client.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::blocks::{self, Asked, Block, Subject};
use crate::domain::{ClientId, Prefix};
use crate::store::fraud_flags::{self as store, Flag, FlagRow};

/// A standing flag as requests are judged by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingFlag {
    /// The only client it refuses.
    pub client: ClientId,
    /// `country`, `prefix` or `ip`.
    pub scope: String,
    pub key: String,
    pub until: DateTime<Utc>,
}

/// Every standing flag with its figures, oldest first.
pub async fn current(pool: &PgPool) -> Result<Vec<FlagRow>, sqlx::Error> {
    store::current(pool).await
}

pub async fn standing_flags(pool: &PgPool) -> Result<Vec<StandingFlag>, sqlx::Error> {
    Ok(current(pool)
        .await?
        .into_iter()
        .map(|row| StandingFlag {
            client: row.flag.client_id,
            scope: row.flag.scope,
            key: row.flag.key,
            until: row.flag.until,
        })
        .collect())
}

/// The flag a request matches, if any: one of its own client's, on its
/// number's country or prefix, or its end user's network.
pub fn matching_flag<'a>(
    flags: &'a [StandingFlag],
    asked: &Asked<'_>,
    now: DateTime<Utc>,
) -> Option<&'a StandingFlag> {
    flags
        .iter()
        .filter(|f| f.client == asked.client && f.until > now)
        .find(|f| match f.scope.as_str() {
            "country" => Some(f.key.as_str()) == asked.country,
            "prefix" => f.key == asked.prefix,
            "ip" => Some(f.key.as_str()) == asked.network,
            _ => false,
        })
}

/// What blocking a flag for every client blocks: its prefix, country or network.
pub fn subject_of(flag: &Flag) -> Option<Subject> {
    match flag.scope.as_str() {
        "prefix" => Some(Subject::Prefix(Prefix::stored(flag.key.clone()))),
        "country" => Some(Subject::Country(flag.key.clone())),
        "ip" => Some(Subject::Network(flag.key.clone())),
        _ => None,
    }
}

/// Blocks what flag `id` flags for every client, until `until` (or until
/// removed); the flag and the block, or `None` when no such flag stands
/// (it may have cleared since it was listed).
pub async fn block_from_flag(
    pool: &PgPool,
    id: i64,
    until: Option<DateTime<Utc>>,
) -> Result<Option<(FlagRow, Block)>, sqlx::Error> {
    let Some(row) = store::by_id(pool, id).await? else {
        return Ok(None);
    };
    let Some(subject) = subject_of(&row.flag) else {
        return Ok(None);
    };
    let block = blocks::block(pool, &subject, until).await?;
    Ok(Some((row, block)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_matches_only_its_own_clients_requests_while_it_stands() {
        let now = Utc::now();
        let (a, b) = (ClientId::new(), ClientId::new());
        let flag = |scope: &str, key: &str, secs: i64| StandingFlag {
            client: a,
            scope: scope.into(),
            key: key.into(),
            until: now + chrono::Duration::seconds(secs),
        };
        let flags = [
            flag("prefix", "591777", 60),
            flag("country", "PE", 60),
            flag("ip", "203.0.113.7", 60),
            flag("ip", "10.0.0.1", -1),
        ];
        let asked = |client, prefix, country, network| Asked {
            client,
            digits: "",
            prefix,
            country,
            network,
        };
        let matches = |a: Asked<'_>| matching_flag(&flags, &a, now).is_some();
        assert!(matches(asked(a, "591777", Some("BO"), None)));
        assert!(!matches(asked(b, "591777", Some("BO"), None)), "another client");
        assert!(!matches(asked(a, "591696", Some("BO"), None)));
        assert!(matches(asked(a, "51987", Some("PE"), None)));
        assert!(matches(asked(a, "591696", None, Some("203.0.113.7"))));
        assert!(!matches(asked(b, "591696", None, Some("203.0.113.7"))));
        assert!(!matches(asked(a, "591696", None, Some("10.0.0.1"))), "ended");
    }
}
