//! A client's own settings. What a client leaves unset is the service's
//! configuration; a change is checked whole before anything is stored, so a
//! bad field refuses the whole change. Every setting is declared once, in
//! `table.rs`; the structs below are generated from it.

use phonenumber::country::Id as CountryId;

use super::{CodeLength, Locale};
use checks::{code_length, countries, display_name, language, template, ttl, within};
use kinds::Kind;

mod checks;
pub mod kinds;
mod table;
#[cfg(test)]
mod tests;

pub(crate) use table::for_each_client_setting;

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

/// Why a change was refused, and which field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}`: {detail}")]
pub struct FieldError {
    pub field: &'static str,
    pub detail: String,
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

macro_rules! settings_types {
    (
        []
        $(
            $(#[doc = $doc:literal])*
            $field:ident ($variant:ident): $kind:ident [$($raw:tt)+] => [$($shown:tt)+] {
                check: $check:expr,
                fallback: $fallback:expr,
                schema: ($($schema:tt)*),
                view: ($($view:tt)*),
                effective: ($($effective:tt)*),
                flag: ($($flag:tt)*),
            }
        )*
    ) => {
        /// What a client has set; `None` is "the service's default".
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct ClientSettings {
            $($(#[doc = $doc])* pub $field: Option<<kinds::$kind as Kind>::Value>,)*
        }

        /// A change as given (a request body, command-line flags), not yet checked.
        #[derive(Debug, Clone, Default)]
        pub struct SettingsChange {
            $(pub $field: Change<<kinds::$kind as Kind>::Raw>,)*
        }

        /// What a client gets: its settings over the defaults.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Effective {
            $(pub $field: <kinds::$kind as Kind>::Value,)*
        }

        impl SettingsChange {
            /// `current` with this change, every field checked. `allow_weak` is
            /// `OTP_ALLOW_WEAK_CODES`: without it, codes of fewer than 6 digits or
            /// living over 600 s are refused (NIST SP 800-63B), as at start-up.
            pub fn apply(self, current: &ClientSettings, allow_weak: bool) -> Result<ClientSettings, FieldError> {
                Ok(ClientSettings {
                    $($field: resolve::<kinds::$kind>(
                        self.$field,
                        &current.$field,
                        |raw| check::<kinds::$kind>(stringify!($field), raw, allow_weak, $check),
                    )?,)*
                })
            }
        }

        impl ClientSettings {
            /// These settings over `defaults`, for the client named `name`.
            pub fn effective(&self, name: &str, defaults: &Defaults) -> Effective {
                Effective {
                    $($field: match &self.$field {
                        Some(own) => own.clone(),
                        None => fallback::<kinds::$kind>(name, defaults, $fallback),
                    },)*
                }
            }
        }
    };
}

for_each_client_setting!(settings_types);

/// A display name as `display_name` takes it (trimmed, 1 to 64 characters,
/// no control characters), for what else names the client in its messages.
pub fn check_display_name(field: &'static str, name: String) -> Result<String, FieldError> {
    display_name(field, name)
}

/// Gives the table's `check` its type, so that its closure needs none.
fn check<K: Kind>(
    field: &'static str,
    raw: K::Raw,
    allow_weak: bool,
    check: impl FnOnce(&'static str, K::Raw, bool) -> Result<K::Value, FieldError>,
) -> Result<K::Value, FieldError> {
    check(field, raw, allow_weak)
}

/// Gives the table's `fallback` its type, so that its closure needs none.
fn fallback<K: Kind>(
    name: &str,
    defaults: &Defaults,
    fallback: impl FnOnce(&str, &Defaults) -> K::Value,
) -> K::Value {
    fallback(name, defaults)
}

fn resolve<K: Kind>(
    change: Change<K::Raw>,
    old: &Option<K::Value>,
    check: impl FnOnce(K::Raw) -> Result<K::Value, FieldError>,
) -> Result<Option<K::Value>, FieldError> {
    match change {
        Change::Keep => Ok(old.clone()),
        Change::Clear => Ok(None),
        Change::Set(v) => check(v).map(Some),
    }
}

impl Effective {
    pub fn template(&self, locale: Locale) -> &str {
        match locale {
            Locale::Es => &self.template_es,
            Locale::En => &self.template_en,
            Locale::Pt => &self.template_pt,
        }
    }
}
