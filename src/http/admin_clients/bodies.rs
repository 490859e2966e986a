//! What the client endpoints take and answer. Settings come in as JSON merge
//! patches: a field left out is kept, `null` puts it back to the service's
//! default, a value sets it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use phonenumber::country::Id as CountryId;

use crate::clients::admin::ClientView;
use crate::domain::setting_kinds::{self as kinds, Kind};
use crate::domain::{ClientSettings, CodeLength, Effective, Locale, SettingsChange, for_each_client_setting};
use crate::http::admin_webhooks::WebhookReport;

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`,
/// through `#[serde(default)]`): plain `Option` reads both as `None`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One struct per body that carries settings, each with every settings field
/// (from the table in `domain::client_settings`): serde cannot refuse unknown
/// fields of a struct that flattens another.
macro_rules! with_settings {
    (
        [
            $(#[$attr:meta])*
            pub struct $name:ident { $($(#[$field_attr:meta])* pub $extra:ident: $ty:ty,)* }
        ]
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
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$attr])*
        pub struct $name {
            $($(#[$field_attr])* pub $extra: $ty,)*
            $(
                $(#[doc = $doc])*
                #[serde(default, deserialize_with = "present")]
                #[schema(value_type = Option<$($raw)+>, $($schema)*)]
                pub $field: Option<Option<$($raw)+>>,
            )*
        }

        impl $name {
            /// The settings part of the body, not yet checked.
            pub fn settings_change(self) -> SettingsChange {
                SettingsChange {
                    $($field: self.$field.into(),)*
                }
            }
        }
    };
}

/// What a client has set itself, and every setting as its requests get it.
macro_rules! settings_views {
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
        /// What the client has set itself. A field it leaves to the service's default
        /// is left out (never `null`); `effective` has every field.
        #[derive(Debug, Default, Serialize, ToSchema)]
        pub struct OwnSettings {
            $(
                $($view)*
                #[serde(skip_serializing_if = "Option::is_none")]
                #[schema(nullable = false)]
                pub $field: Option<$($shown)+>,
            )*
        }

        /// Every setting as the client's requests get it: its own, or the service's default.
        #[derive(Debug, Serialize, ToSchema)]
        pub struct EffectiveSettings {
            $($($view)* $($effective)* pub $field: $($shown)+,)*
            pub templates: Templates,
        }

        impl OwnSettings {
            fn new(own: &ClientSettings) -> Self {
                Self {
                    $($field: own.$field.as_ref().map(<kinds::$kind as Shown>::shown),)*
                }
            }
        }

        impl EffectiveSettings {
            fn new(effective: &Effective) -> Self {
                Self {
                    $($field: <kinds::$kind as Shown>::shown(&effective.$field),)*
                    templates: Templates {
                        es: effective.template_es.clone(),
                        en: effective.template_en.clone(),
                        pt: effective.template_pt.clone(),
                    },
                }
            }
        }
    };
}

for_each_client_setting!(settings_views);

/// How the API shows a setting of each kind.
trait Shown: Kind {
    type Shown;
    fn shown(value: &Self::Value) -> Self::Shown;
}

impl Shown for kinds::Count {
    type Shown = u32;
    fn shown(value: &u32) -> u32 {
        *value
    }
}

impl Shown for kinds::Digits {
    type Shown = u32;
    fn shown(value: &CodeLength) -> u32 {
        value.digits() as u32
    }
}

impl Shown for kinds::Name {
    type Shown = String;
    fn shown(value: &String) -> String {
        value.clone()
    }
}

impl Shown for kinds::Template {
    type Shown = String;
    fn shown(value: &String) -> String {
        value.clone()
    }
}

impl Shown for kinds::Countries {
    type Shown = Vec<String>;
    fn shown(value: &Vec<CountryId>) -> Vec<String> {
        value.iter().map(|c| c.as_ref().to_owned()).collect()
    }
}

impl Shown for kinds::Switch {
    type Shown = bool;
    fn shown(value: &bool) -> bool {
        *value
    }
}

impl Shown for kinds::Lang {
    type Shown = String;
    fn shown(value: &Locale) -> String {
        value.as_str().to_owned()
    }
}

for_each_client_setting!(with_settings {
    /// A new client, with any settings of its own.
    #[schema(example = json!({"name": "shop", "display_name": "Tienda Sol", "ttl_seconds": 300}))]
    pub struct NewClient {
        /// 1 to 64 characters of `a-z`, `0-9`, `_`, `.` and `-`.
        #[schema(example = "shop")]
        pub name: String,
    }
});

for_each_client_setting!(with_settings {
    /// A change to a client's settings (JSON merge patch): a field left out is
    /// kept, `null` puts it back to the service's default, a value sets it.
    /// Checked whole: one refused field and nothing changes.
    #[schema(example = json!({"code_length": 8, "ttl_seconds": 300, "template_en": null}))]
    pub struct SettingsPatch {
        /// Where the client's webhooks go: `https` (plain `http` only to
        /// loopback), never a private address (see `OTP_WEBHOOK_ALLOW_*`);
        /// `null` stops them. The first URL makes a signing secret, in the
        /// answer's `webhook_secret` (shown this once). A new URL, or `null`,
        /// gives up the events still waiting for the previous one.
        #[serde(default, deserialize_with = "present")]
        #[schema(value_type = Option<String>, example = "https://shop.example/otp-events")]
        pub webhook_url: Option<Option<String>>,
    }
});

/// A client as operators see it; never its key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "shop",
    "created_at": "2026-11-21T10:42:00Z",
    "revoked_at": null,
    "twilio_account_sid": "AC5f0c8e9a2b7d4c1e8f3a6b9d0c2e4f71",
    "twilio_service_sid": "VA9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f90",
    "settings": {"display_name": "Tienda Sol", "ttl_seconds": 300},
    "effective": {
        "display_name": "Tienda Sol", "share": 1, "max_queued": 1000, "requests_per_minute": 300,
        "code_length": 6, "ttl_seconds": 300, "max_attempts": 5, "resend_cooldown_seconds": 30,
        "max_sends": 5, "allowed_countries": [], "default_locale": "es", "sms_as_whatsapp": false,
        "templates": {
            "es": "Tu código de verificación es *{code}*. Por tu seguridad, no lo compartas",
            "en": "Your verification code is *{code}*. For your security, do not share it",
            "pt": "Seu código de verificação é *{code}*. Para sua segurança, não o compartilhe"
        }
    }
}))]
pub struct ClientReport {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// When its key was revoked (its calls get `401`); null while it is active.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The user name of its Basic credentials under `/twilio` (Twilio's SDKs:
    /// the account SID; the password is its API key). Kept for its life.
    pub twilio_account_sid: String,
    /// Its service under `/twilio` (`/twilio/v2/Services/{twilio_service_sid}/…`).
    pub twilio_service_sid: String,
    pub settings: OwnSettings,
    pub effective: EffectiveSettings,
    /// Where its webhooks go, and how they fare; null without a webhook URL.
    pub webhook: Option<WebhookReport>,
}

/// The message text per locale.
#[derive(Debug, Serialize, ToSchema)]
pub struct Templates {
    pub es: String,
    pub en: String,
    pub pt: String,
}

impl From<ClientView> for ClientReport {
    fn from(view: ClientView) -> Self {
        Self {
            settings: OwnSettings::new(&view.record.settings),
            effective: EffectiveSettings::new(&view.effective),
            name: view.record.name,
            created_at: view.record.created_at,
            revoked_at: view.record.revoked_at,
            twilio_account_sid: view.record.twilio_account_sid,
            twilio_service_sid: view.record.twilio_service_sid,
            webhook: None,
        }
    }
}

// No `Debug` here, nor on `RotatedKey`: a key must not reach a log.
/// A new client, and its key.
#[derive(Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientReport,
    /// The client's API key (`X-Api-Key`), shown this once: only its hash is kept.
    #[schema(example = "otpk_3f9c...")]
    pub key: String,
}

// No `Debug`: it may carry a secret.
/// A changed client, and its webhook signing secret if the change made one.
#[derive(Serialize, ToSchema)]
pub struct ChangedClient {
    #[serde(flatten)]
    pub client: ClientReport,
    /// Made by the client's first `webhook_url`: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub webhook_secret: Option<String>,
}

/// A client's new key.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "shop", "key": "otpk_3f9c..."}))]
pub struct RotatedKey {
    pub name: String,
    /// The client's new API key, shown this once; the old one no longer works.
    pub key: String,
}

#[cfg(test)]
mod tests;
