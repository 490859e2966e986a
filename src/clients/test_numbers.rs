//! Test numbers: a client's own numbers for app-store reviewers and its own
//! tests. A request for one sends nothing and its fixed code verifies it; the
//! code is kept as every code is, a keyed argon2id hash.

use chrono::{DateTime, Duration as Days, Utc};
use sqlx::PgPool;

use super::ClientError;
use crate::crypto::CodeHasher;
use crate::domain::{FieldError, OtpCode, PhoneNumber};
use crate::store::{clients as client_store, test_numbers as store};

/// How long a test number lasts when no end is given, and at most.
pub const DEFAULT_DAYS: i64 = 90;
pub const MAX_DAYS: i64 = 365;

/// A test number as operators see it (never its code).
#[derive(Debug, Clone)]
pub struct TestNumber {
    /// E.164.
    pub phone: String,
    pub until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl TestNumber {
    /// Whether a request for it now would be answered without sending (an
    /// ended one is sent to as any number, and deleted by the retention
    /// sweeper `retention::ENDED_TEST_NUMBERS_KEPT` after its end).
    pub fn active(&self) -> bool {
        self.until > Utc::now()
    }
}

/// When a test number added `now` ends: `until`, or `DEFAULT_DAYS` from now;
/// never past `MAX_DAYS`, nor already over.
pub fn end(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let until = until.unwrap_or(now + Days::days(DEFAULT_DAYS));
    if until <= now {
        return Err(FieldError {
            field: "until",
            detail: "must be in the future".into(),
        });
    }
    if until > now + Days::days(MAX_DAYS) {
        return Err(FieldError {
            field: "until",
            detail: format!("must be at most {MAX_DAYS} days from now"),
        });
    }
    Ok(until)
}

/// A test number's fixed code, under the rule of generated codes (NIST SP
/// 800-63B): at least 6 digits, unless `allow_weak` (`OTP_ALLOW_WEAK_CODES`)
/// lets 4 and 5 through. The refusal never repeats the code.
pub fn fixed_code(raw: &str, allow_weak: bool) -> Result<OtpCode, FieldError> {
    let detail = if allow_weak {
        "must be 4 to 10 digits".to_owned()
    } else {
        "must be 6 to 10 digits, as generated codes are (NIST SP 800-63B); \
         4 or 5 digits only with OTP_ALLOW_WEAK_CODES=true on the service"
            .to_owned()
    };
    OtpCode::parse_any_length(raw)
        .filter(|code| allow_weak || code.expose().len() >= 6)
        .ok_or(FieldError {
            field: "code",
            detail,
        })
}

/// Adds a test number to the client named `client`, or replaces its code and
/// end. `allow_weak` is `OTP_ALLOW_WEAK_CODES` (see `fixed_code`).
pub async fn add(
    pool: &PgPool,
    hasher: &CodeHasher,
    client: &str,
    phone: &PhoneNumber,
    code: &str,
    until: Option<DateTime<Utc>>,
    allow_weak: bool,
) -> Result<TestNumber, ClientError> {
    let code = fixed_code(code, allow_weak)?;
    let until = end(until, Utc::now())?;
    let code_hash = hasher
        .hash(&code)
        .await
        .map_err(|e| ClientError::Hashing(e.to_string()))?;
    if !store::put(pool, client, phone.as_e164(), &code_hash, until).await? {
        return Err(ClientError::Unknown(client.to_owned()));
    }
    let numbers = list(pool, client).await?;
    numbers
        .into_iter()
        .find(|n| n.phone == phone.as_e164())
        .ok_or_else(|| ClientError::Unknown(client.to_owned()))
}

/// The client's test numbers, ended ones included (until they are removed,
/// or swept 30 days after their end).
pub async fn list(pool: &PgPool, client: &str) -> Result<Vec<TestNumber>, ClientError> {
    if client_store::by_name(pool, client).await?.is_none() {
        return Err(ClientError::Unknown(client.to_owned()));
    }
    Ok(store::list(pool, client)
        .await?
        .into_iter()
        .map(|row| TestNumber {
            phone: row.phone,
            until: row.until,
            created_at: row.created_at,
        })
        .collect())
}

pub async fn remove(pool: &PgPool, client: &str, phone: &PhoneNumber) -> Result<(), ClientError> {
    if store::remove(pool, client, phone.as_e164()).await? {
        return Ok(());
    }
    if client_store::by_name(pool, client).await?.is_none() {
        return Err(ClientError::Unknown(client.to_owned()));
    }
    Err(ClientError::NoSuchTestNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_number_lasts_90_days_unless_told_and_a_year_at_most() {
        let now = Utc::now();
        assert_eq!(end(None, now).unwrap(), now + Days::days(90));
        assert_eq!(end(Some(now + Days::days(7)), now).unwrap(), now + Days::days(7));
        assert_eq!(end(Some(now), now).unwrap_err().field, "until");
        assert_eq!(end(Some(now + Days::days(366)), now).unwrap_err().field, "until");
    }

    #[test]
    fn a_fixed_code_has_6_digits_unless_weak_codes_are_allowed() {
        assert_eq!(fixed_code("123456", false).unwrap().expose(), "123456");
        assert_eq!(fixed_code("1234567890", false).unwrap().expose(), "1234567890");
        for short in ["4242", "42424"] {
            let refused = fixed_code(short, false).unwrap_err();
            assert_eq!(refused.field, "code");
            assert!(refused.detail.contains("6 to 10") && refused.detail.contains("OTP_ALLOW_WEAK_CODES"));
            assert!(!refused.detail.contains(short), "never the code");
            assert_eq!(fixed_code(short, true).unwrap().expose(), short);
        }
        for bad in ["123", "12345678901", "12ab56", ""] {
            assert_eq!(fixed_code(bad, true).unwrap_err().field, "code", "{bad}");
            assert_eq!(fixed_code(bad, false).unwrap_err().field, "code", "{bad}");
        }
    }
}
