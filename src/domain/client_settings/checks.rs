//! How each setting is checked: the functions the table's `check` entries call.

use std::ops::RangeInclusive;

use phonenumber::country::Id as CountryId;

use super::FieldError;
use crate::domain::{CodeLength, Locale, parse_country};

/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["{code}", "{minutes}", "{app}"];
const TEMPLATE_MAX_CHARS: usize = 1000;

pub(super) fn refuse<T>(field: &'static str, detail: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field,
        detail: detail.into(),
    })
}

pub(super) fn within(field: &'static str, n: i64, range: RangeInclusive<i64>) -> Result<u32, FieldError> {
    if range.contains(&n) {
        Ok(n as u32)
    } else {
        refuse(
            field,
            format!("must be {} to {}, not {n}", range.start(), range.end()),
        )
    }
}

/// Without `allow_weak` (`OTP_ALLOW_WEAK_CODES`), codes of fewer than 6
/// digits are refused (NIST SP 800-63B), as at start-up.
pub(super) fn code_length(field: &'static str, n: i64, allow_weak: bool) -> Result<CodeLength, FieldError> {
    let range = if allow_weak { 4..=10 } else { 6..=10 };
    if range.contains(&n) {
        return Ok(CodeLength::new(n as u8).expect("in range"));
    }
    let detail = if allow_weak {
        format!("must be 4 to 10 digits, not {n}")
    } else {
        format!(
            "must be 6 to 10 digits (NIST SP 800-63B), not {n}; 4 or 5 digits only with \
             OTP_ALLOW_WEAK_CODES=true on the service"
        )
    };
    refuse(field, detail)
}

/// Without `allow_weak`, a code lives at most 10 minutes (NIST SP 800-63B).
pub(super) fn ttl(field: &'static str, n: i64, allow_weak: bool) -> Result<u32, FieldError> {
    match (allow_weak, within(field, n, 30..=600)) {
        (false, Err(_)) if n > 600 => refuse(
            field,
            format!(
                "must be 30 to 600 s (NIST SP 800-63B), not {n}; up to 86400 only with \
                 OTP_ALLOW_WEAK_CODES=true on the service"
            ),
        ),
        (false, checked) => checked,
        (true, _) => within(field, n, 30..=86_400),
    }
}

pub(super) fn display_name(field: &'static str, name: String) -> Result<String, FieldError> {
    let name = name.trim().to_owned();
    let chars = name.chars().count();
    if chars == 0 || chars > 64 {
        return refuse(field, "must be 1 to 64 characters");
    }
    if name.chars().any(char::is_control) {
        return refuse(field, "must not contain control characters");
    }
    Ok(name)
}

pub(super) fn countries(field: &'static str, list: Vec<String>) -> Result<Vec<CountryId>, FieldError> {
    list.iter()
        .map(|c| {
            parse_country(c).or_else(|_| refuse(field, format!("`{c}` is not an ISO 3166-1 alpha-2 code")))
        })
        .collect()
}

pub(super) fn language(field: &'static str, locale: String) -> Result<Locale, FieldError> {
    locale
        .parse()
        .or_else(|_| refuse(field, "must be one of es, en, pt"))
}

/// A template must carry the code, and may name only the placeholders there
/// are: a misspelt one would reach people as it is.
pub(super) fn template(field: &'static str, text: String) -> Result<String, FieldError> {
    if !text.contains("{code}") {
        return refuse(field, "a message template must contain {code}");
    }
    // Line breaks are text here; a NUL is no text, and PostgreSQL refuses it.
    if text.contains('\0') {
        return refuse(field, "must not contain NUL characters");
    }
    if text.chars().count() > TEMPLATE_MAX_CHARS {
        return refuse(field, format!("must be at most {TEMPLATE_MAX_CHARS} characters"));
    }
    let mut rest = text.as_str();
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        match PLACEHOLDERS.iter().find(|p| after.starts_with(**p)) {
            Some(p) => rest = &after[p.len()..],
            None => {
                let word: String = after.chars().take_while(|c| *c != '}').take(20).collect();
                return refuse(
                    field,
                    format!("`{word}}}` is not a placeholder; use {{code}}, {{minutes}} or {{app}}"),
                );
            }
        }
    }
    Ok(text)
}
