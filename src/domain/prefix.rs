//! Number prefixes (`+59177`), and which of a list decides for a number.

use chrono::{DateTime, Utc};

/// E.164 digits of the start of numbers: a country code and what follows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix(String);

impl Prefix {
    /// `+59177`, `59177` or `+591 77`: 1 to 15 digits, the first not 0.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let digits: String = raw
            .trim()
            .trim_start_matches('+')
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .collect();
        let valid = (1..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(digits))
        } else {
            Err(format!(
                "a prefix is 1 to 15 digits of an international number, `+` optional (`+59177`); not `{raw}`"
            ))
        }
    }

    /// Stored as digits; read back from storage (already checked).
    pub fn stored(digits: String) -> Self {
        Self(digits)
    }

    pub fn digits(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, e164_digits: &str) -> bool {
        e164_digits.starts_with(&self.0)
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixAction {
    Allow,
    /// Until then (or for good).
    Block {
        until: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRule {
    pub prefix: Prefix,
    pub action: PrefixAction,
}

/// What the operators' list says of a number: the longest matching prefix
/// decides (an allowed `+5917712` inside a blocked `+59177` is allowed); a
/// block that has ended says nothing.
pub fn decide(rules: &[PrefixRule], e164_digits: &str, now: DateTime<Utc>) -> Option<PrefixAction> {
    rules
        .iter()
        .filter(|r| r.prefix.matches(e164_digits))
        .filter(|r| !matches!(r.action, PrefixAction::Block { until: Some(until) } if until <= now))
        .max_by_key(|r| r.prefix.digits().len())
        .map(|r| r.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, action: PrefixAction) -> PrefixRule {
        PrefixRule {
            prefix: Prefix::parse(prefix).unwrap(),
            action,
        }
    }

    #[test]
    fn prefixes_are_international_digits() {
        assert_eq!(Prefix::parse("+59177").unwrap().digits(), "59177");
        assert_eq!(Prefix::parse("591 77").unwrap().to_string(), "+59177");
        for bad in ["", "+", "0591", "59a", "1234567890123456", "+591+77"] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_longest_matching_prefix_decides_and_ended_blocks_say_nothing() {
        let now = Utc::now();
        let block = PrefixAction::Block { until: None };
        let ended = PrefixAction::Block {
            until: Some(now - chrono::Duration::seconds(1)),
        };
        let rules = [
            rule("+59177", block),
            rule("+5917712", PrefixAction::Allow),
            rule("+54", ended),
        ];
        assert_eq!(decide(&rules, "59177799999", now), Some(block));
        assert_eq!(decide(&rules, "59177123456", now), Some(PrefixAction::Allow));
        assert_eq!(decide(&rules, "59169657008", now), None);
        assert_eq!(decide(&rules, "5491123456789", now), None);
    }
}
