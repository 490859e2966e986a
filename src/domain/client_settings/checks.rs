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
        Ok(CodeLength::new(n as u8).expect("in range"))
    } else {
        refuse(
            field,
            format!("must be {} to {} digits, not {n}", range.start(), range.end()),
        )
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
