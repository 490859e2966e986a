//! A client's own settings. What a client leaves unset is the service's
//! configuration; a change is checked whole before anything is stored, so a
//! bad field refuses the whole change.

use phonenumber::country::Id as CountryId;

use super::{CodeLength, Locale, parse_country};

/// What a client has set; `None` is "the service's default".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientSettings {
    /// `{app}` in the message text; the client's name when unset.
    pub display_name: Option<String>,
    /// Weight in the gateway's fair share (1 when unset).
    pub share: Option<u32>,
    pub max_queued: Option<u32>,
    pub requests_per_minute: Option<u32>,
    pub code_length: Option<CodeLength>,
    pub ttl_seconds: Option<u32>,
    pub max_attempts: Option<u32>,
    pub resend_cooldown_seconds: Option<u32>,
    pub max_sends: Option<u32>,
    pub allowed_countries: Option<Vec<CountryId>>,
    pub default_locale: Option<Locale>,
    pub template_es: Option<String>,
    pub template_en: Option<String>,
    pub template_pt: Option<String>,
}

/// One field of a change: left as it is, cleared (back to the default), or set.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> From<Option<Option<T>>> for Change<T> {
    /// JSON's three cases: absent, `null`, a value.
    fn from(value: Option<Option<T>>) -> Self {
        match value {
            None => Change::Keep,
            Some(None) => Change::Clear,
            Some(Some(v)) => Change::Set(v),
        }
    }
}

/// A change as given (a request body, command-line flags), not yet checked.
#[derive(Debug, Clone, Default)]
pub struct SettingsChange {
    pub display_name: Change<String>,
    pub share: Change<i64>,
    pub max_queued: Change<i64>,
    pub requests_per_minute: Change<i64>,
    pub code_length: Change<i64>,
    pub ttl_seconds: Change<i64>,
    pub max_attempts: Change<i64>,
    pub resend_cooldown_seconds: Change<i64>,
    pub max_sends: Change<i64>,
    pub allowed_countries: Change<Vec<String>>,
    pub default_locale: Change<String>,
    pub template_es: Change<String>,
    pub template_en: Change<String>,
    pub template_pt: Change<String>,
}

/// Why a change was refused, and which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {detail}")]
pub struct FieldError {
    pub field: &'static str,
    pub detail: String,
}

fn refuse<T>(field: &'static str, detail: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError {
        field,
        detail: detail.into(),
    })
}

/// Placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["{code}", "{minutes}", "{app}"];
const TEMPLATE_MAX_CHARS: usize = 1000;

impl SettingsChange {
    /// `current` with this change, every field checked. `allow_weak` is
    /// `OTP_ALLOW_WEAK_CODES`: without it, codes of fewer than 6 digits or
    /// living over 600 s are refused (NIST SP 800-63B), as at start-up.
    pub fn apply(self, current: &ClientSettings, allow_weak: bool) -> Result<ClientSettings, FieldError> {
        let mut next = current.clone();
        let number = |field, change: Change<i64>, range: std::ops::RangeInclusive<i64>, old: Option<u32>| {
            resolve(change, old, |n| {
                if range.contains(&n) {
                    Ok(n as u32)
                } else {
                    refuse(
                        field,
                        format!("must be {} to {}, not {n}", range.start(), range.end()),
                    )
                }
            })
        };
        next.share = number("share", self.share, 1..=1000, current.share)?;
        next.max_queued = number("max_queued", self.max_queued, 1..=1_000_000, current.max_queued)?;
        next.requests_per_minute = number(
            "requests_per_minute",
            self.requests_per_minute,
            1..=i32::MAX as i64,
            current.requests_per_minute,
        )?;
        next.max_attempts = number("max_attempts", self.max_attempts, 1..=100, current.max_attempts)?;
        next.resend_cooldown_seconds = number(
            "resend_cooldown_seconds",
            self.resend_cooldown_seconds,
            0..=3600,
            current.resend_cooldown_seconds,
        )?;
        next.max_sends = number("max_sends", self.max_sends, 1..=100, current.max_sends)?;
        let ttl_range = if allow_weak { 30..=86_400 } else { 30..=600 };
        next.ttl_seconds = number("ttl_seconds", self.ttl_seconds, ttl_range, current.ttl_seconds)?;
        let length_range = if allow_weak { 4..=10 } else { 6..=10 };
        next.code_length = resolve(self.code_length, current.code_length, |n| {
            if length_range.contains(&n) {
                Ok(CodeLength::new(n as u8).expect("in range"))
            } else {
                refuse(
                    "code_length",
                    format!(
                        "must be {} to {} digits, not {n}",
                        length_range.start(),
                        length_range.end()
                    ),
                )
            }
        })?;
        next.display_name = resolve(self.display_name, current.display_name.clone(), display_name)?;
        next.allowed_countries = resolve(
            self.allowed_countries,
            current.allowed_countries.clone(),
            |list| {
                list.iter()
                    .map(|c| {
                        parse_country(c).or_else(|_| {
                            refuse(
                                "allowed_countries",
                                format!("`{c}` is not an ISO 3166-1 alpha-2 code"),
                            )
                        })
                    })
                    .collect()
            },
        )?;
        next.default_locale = resolve(self.default_locale, current.default_locale, |l| {
            l.parse()
                .or_else(|_| refuse("default_locale", "must be one of es, en, pt"))
        })?;
        next.template_es = resolve(self.template_es, current.template_es.clone(), |t| {
            template("template_es", t)
        })?;
        next.template_en = resolve(self.template_en, current.template_en.clone(), |t| {
            template("template_en", t)
        })?;
        next.template_pt = resolve(self.template_pt, current.template_pt.clone(), |t| {
            template("template_pt", t)
        })?;
        Ok(next)
    }
}

fn resolve<T, U>(
    change: Change<T>,
    old: Option<U>,
    check: impl FnOnce(T) -> Result<U, FieldError>,
) -> Result<Option<U>, FieldError> {
    match change {
        Change::Keep => Ok(old),
        Change::Clear => Ok(None),
        Change::Set(v) => check(v).map(Some),
    }
}

fn display_name(name: String) -> Result<String, FieldError> {
    let name = name.trim().to_owned();
    let chars = name.chars().count();
    if chars == 0 || chars > 64 {
        return refuse("display_name", "must be 1 to 64 characters");
    }
    if name.chars().any(char::is_control) {
        return refuse("display_name", "must not contain control characters");
    }
    Ok(name)
}

/// A template must carry the code, and may name only the placeholders there
/// are: a misspelt one would reach people as it is.
fn template(field: &'static str, text: String) -> Result<String, FieldError> {
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

/// The service's configuration: what a client gets for what it leaves unset.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub max_queued: u32,
    pub requests_per_minute: u32,
    pub code_length: CodeLength,
    pub ttl_seconds: u32,
    pub max_attempts: u32,
    pub resend_cooldown_seconds: u32,
    pub max_sends: u32,
    pub allowed_countries: Vec<CountryId>,
    pub default_locale: Locale,
    /// Per locale, in `Locale::ALL`'s order.
    pub templates: [String; 3],
}

/// What a client gets: its settings over the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub display_name: String,
    pub share: u32,
    pub max_queued: u32,
    pub requests_per_minute: u32,
    pub code_length: CodeLength,
    pub ttl_seconds: u32,
    pub max_attempts: u32,
    pub resend_cooldown_seconds: u32,
    pub max_sends: u32,
    /// Empty: every country.
    pub allowed_countries: Vec<CountryId>,
    pub default_locale: Locale,
    pub templates: [String; 3],
}

impl ClientSettings {
    /// These settings over `defaults`, for the client named `name`.
    pub fn effective(&self, name: &str, defaults: &Defaults) -> Effective {
        let own = [&self.template_es, &self.template_en, &self.template_pt];
        Effective {
            display_name: self.display_name.clone().unwrap_or_else(|| name.to_owned()),
            share: self.share.unwrap_or(1),
            max_queued: self.max_queued.unwrap_or(defaults.max_queued),
            requests_per_minute: self.requests_per_minute.unwrap_or(defaults.requests_per_minute),
            code_length: self.code_length.unwrap_or(defaults.code_length),
            ttl_seconds: self.ttl_seconds.unwrap_or(defaults.ttl_seconds),
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts),
            resend_cooldown_seconds: self
                .resend_cooldown_seconds
                .unwrap_or(defaults.resend_cooldown_seconds),
            max_sends: self.max_sends.unwrap_or(defaults.max_sends),
            allowed_countries: self
                .allowed_countries
                .clone()
                .unwrap_or_else(|| defaults.allowed_countries.clone()),
            default_locale: self.default_locale.unwrap_or(defaults.default_locale),
            templates: std::array::from_fn(|i| {
                own[i].clone().unwrap_or_else(|| defaults.templates[i].clone())
            }),
        }
    }
}

impl Effective {
    pub fn template(&self, locale: Locale) -> &str {
        let i = Locale::ALL.iter().position(|l| *l == locale).unwrap_or(0);
        &self.templates[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_sets_clears_and_keeps() {
        let current = ClientSettings {
            ttl_seconds: Some(300),
            max_sends: Some(3),
            ..Default::default()
        };
        let change = SettingsChange {
            ttl_seconds: Change::Clear,
            code_length: Change::Set(8),
            allowed_countries: Change::Set(vec!["bo".into(), "PE".into()]),
            ..Default::default()
        };
        let next = change.apply(&current, false).unwrap();
        assert_eq!(next.ttl_seconds, None);
        assert_eq!(next.max_sends, Some(3));
        assert_eq!(next.code_length, Some(CodeLength::new(8).unwrap()));
        assert_eq!(next.allowed_countries, Some(vec![CountryId::BO, CountryId::PE]));
    }

    #[test]
    fn a_bad_field_is_named() {
        let refused =
            |change: SettingsChange| change.apply(&ClientSettings::default(), false).unwrap_err().field;
        let share = SettingsChange {
            share: Change::Set(0),
            ..Default::default()
        };
        assert_eq!(refused(share), "share");
        let countries = SettingsChange {
            allowed_countries: Change::Set(vec!["BO".into(), "XX".into()]),
            ..Default::default()
        };
        assert_eq!(refused(countries), "allowed_countries");
        let locale = SettingsChange {
            default_locale: Change::Set("fr".into()),
            ..Default::default()
        };
        assert_eq!(refused(locale), "default_locale");
        let name = SettingsChange {
            display_name: Change::Set(" ".into()),
            ..Default::default()
        };
        assert_eq!(refused(name), "display_name");
    }

    #[test]
    fn weak_codes_need_the_operators_consent() {
        let short = || SettingsChange {
            code_length: Change::Set(4),
            ..Default::default()
        };
        assert_eq!(
            short()
                .apply(&ClientSettings::default(), false)
                .unwrap_err()
                .field,
            "code_length"
        );
        assert!(short().apply(&ClientSettings::default(), true).is_ok());
        let long = || SettingsChange {
            ttl_seconds: Change::Set(900),
            ..Default::default()
        };
        assert_eq!(
            long().apply(&ClientSettings::default(), false).unwrap_err().field,
            "ttl_seconds"
        );
        assert!(long().apply(&ClientSettings::default(), true).is_ok());
    }

    #[test]
    fn templates_carry_the_code_and_only_known_placeholders() {
        assert!(template("template_es", "{app}: {code} ({minutes} min)".into()).is_ok());
        assert!(template("template_es", "no code here".into()).is_err());
        let typo = template("template_es", "{code} vale {minutos} min".into()).unwrap_err();
        assert!(typo.detail.contains("{minutos}"), "{}", typo.detail);
        assert!(template("template_es", format!("{{code}}{}", "x".repeat(1000))).is_err());
        assert!(template("template_es", "{code}\n\nbye".into()).is_ok());
        assert!(template("template_es", "{code}\0".into()).is_err());
    }
}
