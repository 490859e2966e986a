use std::fmt;

use phonenumber::Mode;
use phonenumber::country::Id as CountryId;

/// A phone number that libphonenumber accepts as valid, kept in E.164 form.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    country: Option<CountryId>,
    /// The country calling code's digits (`591`).
    calling_code_len: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("the phone number could not be read as a valid international number")]
    Invalid,
    #[error("`country` must be an ISO 3166-1 alpha-2 code such as BO")]
    UnknownCountry,
}

impl PhoneNumber {
    /// Reads `+591 696-57008`, `591 69657008` or, with a country, `69657008`.
    pub fn parse(raw: &str, country: Option<&str>) -> Result<Self, PhoneError> {
        let country = country.map(parse_country).transpose()?;
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || trimmed.len() > 32
            || !trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
        {
            return Err(PhoneError::Invalid);
        }
        let digits_only: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let international = format!("+{digits_only}");
        // `+` is optional: without it, a number is read as national only when a
        // country is known, and as international when that does not give a valid number.
        let parsed = match country {
            Some(id) if !trimmed.starts_with('+') => {
                valid_number(Some(id), &digits_only).or_else(|| valid_number(None, &international))
            }
            _ => valid_number(None, &international),
        }
        .ok_or(PhoneError::Invalid)?;
        Ok(Self {
            e164: parsed.format().mode(Mode::E164).to_string(),
            country: parsed.country().id(),
            calling_code_len: parsed.code().value().to_string().len(),
        })
    }

    /// `+59169657008`.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// `59169657008`: what the gateway expects (docs/waconecta.md, "Sending a message").
    pub fn gateway_digits(&self) -> &str {
        &self.e164[1..]
    }

    pub fn country(&self) -> Option<CountryId> {
        self.country
    }

    /// The country calling code and the next three digits (`591696`): the
    /// range the fraud rules count by.
    pub fn fraud_prefix(&self) -> &str {
        let digits = self.gateway_digits();
        &digits[..(self.calling_code_len + 3).min(digits.len())]
    }

    /// `+591*****008`: enough to tell numbers apart in logs, not to dial them.
    pub fn masked(&self) -> String {
        mask(&self.e164)
    }
}

fn valid_number(country: Option<CountryId>, candidate: &str) -> Option<phonenumber::PhoneNumber> {
    phonenumber::parse(country, candidate)
        .ok()
        .filter(phonenumber::is_valid)
}

pub fn parse_country(code: &str) -> Result<CountryId, PhoneError> {
    let upper = code.trim().to_ascii_uppercase();
    if upper.len() != 2 {
        return Err(PhoneError::UnknownCountry);
    }
    upper.parse().map_err(|_| PhoneError::UnknownCountry)
}

/// Where the country a number without `+` is read with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryFrom {
    /// The request's `country`.
    Request,
    /// The service's `OTP_DEFAULT_COUNTRY`.
    Default,
}

/// What to tell whoever sent `raw`, which `PhoneNumber::parse` refused as
/// `Invalid` (having read it with `country`, if any): the field, what is
/// wrong, and how to send it instead. Never the number itself.
pub fn invalid_phone_detail(raw: &str, country: Option<(CountryId, CountryFrom)>) -> String {
    let trimmed = raw.trim();
    let readable = !trimmed.is_empty()
        && trimmed.len() <= 32
        && trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !readable {
        return "`phone` must be a phone number: digits, with `+`, spaces, dashes, dots or \
                parentheses, at most 32 characters (e.g. +591 696-57008)"
            .to_owned();
    }
    if trimmed.starts_with('+') {
        return "`phone` is not a valid international number: check the calling code after \
                `+` and the digits (e.g. +591 696-57008)"
            .to_owned();
    }
    match country {
        None => "`phone` is not a valid international number, and a number without `+` is read \
                 as national only with a country, which neither the request's `country` nor the \
                 service's OTP_DEFAULT_COUNTRY gives: send it with `+` and the calling code \
                 (+591 696-57008), or give `country` (an ISO 3166-1 code such as BO)"
            .to_owned(),
        Some((id, from)) => {
            let source = match from {
                CountryFrom::Request => "the request's `country`",
                CountryFrom::Default => "the service's OTP_DEFAULT_COUNTRY, as the request gave no `country`",
            };
            format!(
                "`phone` is neither a valid national number of {} ({source}) nor a valid \
                 international number: check its digits, give the right `country`, or send it \
                 with `+` and the calling code (+591 696-57008)",
                id.as_ref()
            )
        }
    }
}

/// Masks all but the first four and last three characters.
pub fn mask(e164: &str) -> String {
    let chars: Vec<char> = e164.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 4 || i >= chars.len() - 3 { *c } else { '*' })
        .collect()
}

// Debug must not leak the full number into logs.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spec_examples() {
        for raw in ["+591 696-57008", "59169657008", "+591 (696) 57.008"] {
            let phone = PhoneNumber::parse(raw, None).unwrap();
            assert_eq!(phone.as_e164(), "+59169657008");
            assert_eq!(phone.gateway_digits(), "59169657008");
        }
    }

    #[test]
    fn the_fraud_prefix_is_the_calling_code_and_three_digits() {
        let prefix = |raw: &str| PhoneNumber::parse(raw, None).unwrap().fraud_prefix().to_owned();
        assert_eq!(prefix("+59169657008"), "591696");
        assert_eq!(prefix("+5491123456789"), "54911");
        assert_eq!(prefix("+12025550123"), "1202");
        assert_eq!(prefix("+34612345678"), "34612");
    }

    #[test]
    fn reads_national_numbers_with_a_country() {
        let phone = PhoneNumber::parse("69657008", Some("bo")).unwrap();
        assert_eq!(phone.as_e164(), "+59169657008");
        assert_eq!(phone.country(), Some(CountryId::BO));
    }

    #[test]
    fn a_full_number_without_plus_is_read_even_with_a_country() {
        let phone = PhoneNumber::parse("59169657008", Some("BO")).unwrap();
        assert_eq!(phone.as_e164(), "+59169657008");
    }

    #[test]
    fn an_international_number_wins_over_the_country() {
        let phone = PhoneNumber::parse("+1 650 253 0000", Some("BO")).unwrap();
        assert_eq!(phone.as_e164(), "+16502530000");
    }

    #[test]
    fn rejects_what_is_not_a_valid_number() {
        for raw in ["", "abc", "5916965700e8", "+591 123", "+999 1234567", "69657008"] {
            assert_eq!(PhoneNumber::parse(raw, None), Err(PhoneError::Invalid), "{raw}");
        }
        assert_eq!(
            PhoneNumber::parse("69657008", Some("XX")),
            Err(PhoneError::UnknownCountry)
        );
    }

    #[test]
    fn a_refused_number_is_told_how_to_send_it() {
        let detail = |raw, country| invalid_phone_detail(raw, country);
        let without_country = detail("69657008", None);
        assert!(
            without_country.contains("`country`") && without_country.contains("OTP_DEFAULT_COUNTRY"),
            "{without_country}"
        );
        let with_default = detail("123", Some((CountryId::BO, CountryFrom::Default)));
        assert!(
            with_default.contains("of BO") && with_default.contains("OTP_DEFAULT_COUNTRY"),
            "{with_default}"
        );
        let with_request = detail("123", Some((CountryId::PE, CountryFrom::Request)));
        assert!(
            with_request.contains("of PE (the request's `country`)"),
            "{with_request}"
        );
        assert!(detail("+591 123", None).contains("calling code after `+`"));
        assert!(detail("call me", None).starts_with("`phone` must be a phone number"));
        for refused in [without_country, with_default, with_request] {
            assert!(
                !refused.contains("69657008") && !refused.contains("123 "),
                "{refused}"
            );
        }
    }

    #[test]
    fn masks_the_middle() {
        let phone = PhoneNumber::parse("+59169657008", None).unwrap();
        assert_eq!(phone.masked(), "+591*****008");
        assert!(!format!("{phone:?}").contains("69657008"));
    }
}
