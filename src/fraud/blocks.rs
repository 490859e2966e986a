//! What operators block for every client: prefixes (kept with the allowed
//! ones, `fraud_prefixes`), countries and end-user networks
//! (`fraud_blocks`); and what their lists say of a request.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::domain::{
    ClientId, Prefix, PrefixAction, PrefixRule, decide_prefix, parse_country, parse_network,
};
use crate::store::fraud_blocks as store;

/// What a block applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Prefix(Prefix),
    /// An ISO 3166 country (`BO`).
    Country(String),
    /// An end user's network: an IPv4 address or an IPv6 /64.
    Network(String),
}

impl Subject {
    /// `scope` as flags name it (`prefix`, `country` or `ip`), and its key.
    pub fn parse(scope: &str, raw: &str) -> Result<Self, String> {
        match scope {
            "prefix" => Prefix::parse(raw).map(Subject::Prefix),
            "country" => parse_country(raw)
                .map(|c| Subject::Country(c.as_ref().to_owned()))
                .map_err(|e| format!("{e}; not `{raw}`")),
            "ip" => parse_network(raw).map(Subject::Network),
            _ => Err(format!("a scope is `prefix`, `country` or `ip`; not `{scope}`")),
        }
    }

    pub fn scope(&self) -> &'static str {
        match self {
            Subject::Prefix(_) => "prefix",
            Subject::Country(_) => "country",
            Subject::Network(_) => "ip",
        }
    }

    /// `+591777`, `BO` or `203.0.113.7`.
    pub fn key(&self) -> String {
        match self {
            Subject::Prefix(prefix) => prefix.to_string(),
            Subject::Country(key) | Subject::Network(key) => key.clone(),
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Prefix(prefix) => write!(f, "{prefix}"),
            Subject::Country(country) => write!(f, "country {country}"),
            Subject::Network(network) => write!(f, "network {network}"),
        }
    }
}

/// Something refused for every client, whatever the fraud mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub subject: Subject,
    /// Its end; `None` until removed.
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Block {
    fn from_row(row: store::BlockRow) -> Option<Self> {
        let subject = match row.scope.as_str() {
            "country" => Subject::Country(row.key),
            "ip" => Subject::Network(row.key),
            _ => return None,
        };
        Some(Self {
            subject,
            until: row.until,
            created_at: row.created_at,
        })
    }

    fn standing(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| until > now)
    }
}

/// Blocks `subject` for every client until `until` (or until removed),
/// replacing what was said of it before.
pub async fn block(
    pool: &PgPool,
    subject: &Subject,
    until: Option<DateTime<Utc>>,
) -> Result<Block, sqlx::Error> {
    let created_at = match subject {
        Subject::Prefix(prefix) => {
            super::set(pool, prefix, PrefixAction::Block { until })
                .await?
                .created_at
        }
        Subject::Country(key) | Subject::Network(key) => {
            store::set(pool, subject.scope(), key, until).await?.created_at
        }
    };
    Ok(Block {
        subject: subject.clone(),
        until,
        created_at,
    })
}

/// Forgets what was said of `subject` (a prefix's allow too); `false` when
/// nothing was.
pub async fn unblock(pool: &PgPool, subject: &Subject) -> Result<bool, sqlx::Error> {
    match subject {
        Subject::Prefix(prefix) => super::remove(pool, prefix).await,
        Subject::Country(key) | Subject::Network(key) => store::remove(pool, subject.scope(), key).await,
    }
}

/// The blocked countries and networks, ended blocks included.
pub async fn blocks(pool: &PgPool) -> Result<Vec<Block>, sqlx::Error> {
    Ok(store::all(pool)
        .await?
        .into_iter()
        .filter_map(Block::from_row)
        .collect())
}

/// The operators' lists, as every replica holds them.
#[derive(Debug, Default)]
pub struct Lists {
    pub prefixes: Vec<PrefixRule>,
    /// Countries and networks.
    pub blocks: Vec<Block>,
}

pub async fn lists(pool: &PgPool) -> Result<Lists, sqlx::Error> {
    Ok(Lists {
        prefixes: super::list(pool).await?.into_iter().map(|e| e.rule).collect(),
        blocks: blocks(pool).await?,
    })
}

/// A request for a code, as the fraud lists and flags judge it.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub client: ClientId,
    /// The number's E.164 digits.
    pub digits: &'a str,
    /// The range the rules count by (`591696`).
    pub prefix: &'a str,
    pub country: Option<&'a str>,
    /// The end user's network, when the client stated an address.
    pub network: Option<&'a str>,
}

/// What the operators' lists say of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// Its prefix is allowed: never refused for suspected fraud.
    Allowed,
    /// Refused, until then (or for good).
    Blocked(Option<DateTime<Utc>>),
    Nothing,
}

/// The longest matching prefix decides; without one, a standing block of
/// the number's country or of the end user's network refuses.
pub fn operators_say(lists: &Lists, asked: &Asked<'_>, now: DateTime<Utc>) -> Said {
    match decide_prefix(&lists.prefixes, asked.digits, now) {
        Some(PrefixAction::Allow) => Said::Allowed,
        Some(PrefixAction::Block { until }) => Said::Blocked(until),
        None => lists
            .blocks
            .iter()
            .filter(|b| b.standing(now))
            .find(|b| match &b.subject {
                Subject::Country(country) => Some(country.as_str()) == asked.country,
                Subject::Network(network) => Some(network.as_str()) == asked.network,
                Subject::Prefix(_) => false,
            })
            .map_or(Said::Nothing, |b| Said::Blocked(b.until)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_read_as_operators_write_them() {
        assert_eq!(
            Subject::parse("prefix", "+591 777").unwrap().to_string(),
            "+591777"
        );
        assert_eq!(Subject::parse("country", "bo").unwrap().key(), "BO");
        assert_eq!(
            Subject::parse("ip", "2001:db8:1:2::9").unwrap().to_string(),
            "network 2001:db8:1:2::/64"
        );
        for (scope, bad) in [
            ("country", "XX"),
            ("ip", "nowhere"),
            ("prefix", "0591"),
            ("phone", "1"),
        ] {
            assert!(Subject::parse(scope, bad).is_err(), "{scope} {bad}");
        }
    }

    #[test]
    fn a_country_or_network_block_refuses_every_client_unless_the_prefix_is_allowed() {
        let now = Utc::now();
        let block = |subject, until| Block {
            subject,
            until,
            created_at: now,
        };
        let lists = Lists {
            prefixes: vec![PrefixRule {
                prefix: Prefix::parse("+5917712").unwrap(),
                action: PrefixAction::Allow,
            }],
            blocks: vec![
                block(Subject::Country("BO".into()), None),
                block(
                    Subject::Network("203.0.113.7".into()),
                    Some(now + chrono::Duration::hours(1)),
                ),
                block(
                    Subject::Network("203.0.113.8".into()),
                    Some(now - chrono::Duration::hours(1)),
                ),
            ],
        };
        let asked = |digits, country, network| Asked {
            client: ClientId::new(),
            digits,
            prefix: "",
            country,
            network,
        };
        let say = |a: Asked<'_>| operators_say(&lists, &a, now);
        assert_eq!(say(asked("59169657008", Some("BO"), None)), Said::Blocked(None));
        assert_eq!(say(asked("59177123456", Some("BO"), None)), Said::Allowed);
        assert_eq!(
            say(asked("51987654321", Some("PE"), Some("203.0.113.7"))),
            Said::Blocked(Some(now + chrono::Duration::hours(1)))
        );
        assert_eq!(
            say(asked("51987654321", Some("PE"), Some("203.0.113.8"))),
            Said::Nothing,
            "ended"
        );
    }
}
