//! What the client endpoints take and answer. Settings come in as JSON merge
//! patches: a field left out is kept, `null` puts it back to the service's
//! default, a value sets it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::clients::admin::ClientView;
use crate::domain::SettingsChange;
use crate::http::admin_webhooks::WebhookReport;

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`,
/// through `#[serde(default)]`): plain `Option` reads both as `None`.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One struct per body that carries settings, each with every settings field:
/// serde cannot refuse unknown fields of a struct that flattens another.
macro_rules! with_settings {
    (
        $(#[$attr:meta])*
        pub struct $name:ident { $($(#[$field_attr:meta])* pub $field:ident: $ty:ty,)* }
    ) => {
        #[derive(Debug, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        $(#[$attr])*
        pub struct $name {
            $($(#[$field_attr])* pub $field: $ty,)*
            /// What `{app}` stands for in the message; by default the client's name. 1 to 64 characters.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<String>, example = "Tienda Sol")]
            pub display_name: Option<Option<String>>,
            /// Weight in the gateway's fair share between clients, 1 to 1000; by default 1.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000, example = 2)]
            pub share: Option<Option<i64>>,
            /// Messages the client may have waiting in the queue, 1 to 1000000.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 1000000)]
            pub max_queued: Option<Option<i64>>,
            /// Calls a minute under `/otp`, at least 1; by default `OTP_CLIENT_REQUESTS_PER_MINUTE`.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 2147483647, example = 600)]
            pub requests_per_minute: Option<Option<i64>>,
            /// Digits of a code, 6 to 10 (4 and 5 too with `OTP_ALLOW_WEAK_CODES`).
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, example = 8)]
            pub code_length: Option<Option<i64>>,
            /// Lifetime of a code, 30 to 600 s (up to 86400 with `OTP_ALLOW_WEAK_CODES`).
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, example = 300)]
            pub ttl_seconds: Option<Option<i64>>,
            /// Wrong codes per verification, 1 to 100.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
            pub max_attempts: Option<Option<i64>>,
            /// Seconds between two sends of a verification, 0 to 3600.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 0, maximum = 3600)]
            pub resend_cooldown_seconds: Option<Option<i64>>,
            /// Sends per verification, 1 to 100.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 100)]
            pub max_sends: Option<Option<i64>>,
            /// ISO 3166-1 alpha-2 codes of the countries whose numbers it may ask
            /// codes for; an empty list is every country.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<Vec<String>>, example = json!(["BO", "PE"]))]
            pub allowed_countries: Option<Option<Vec<String>>>,
            /// `es`, `en` or `pt`, for requests that name no locale.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<String>, example = "es")]
            pub default_locale: Option<Option<String>>,
            /// The Spanish message: must contain `{code}`; may use `{minutes}` and `{app}`.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<String>, example = "{app}: tu código es *{code}*")]
            pub template_es: Option<Option<String>>,
            /// The English message, as `template_es`.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<String>)]
            pub template_en: Option<Option<String>>,
            /// The Portuguese message, as `template_es`.
            #[serde(default, deserialize_with = "present")]
            #[schema(value_type = Option<String>)]
            pub template_pt: Option<Option<String>>,
        }

        impl $name {
            /// The settings part of the body, not yet checked.
            pub fn settings_change(self) -> SettingsChange {
                SettingsChange {
                    display_name: self.display_name.into(),
                    share: self.share.into(),
                    max_queued: self.max_queued.into(),
                    requests_per_minute: self.requests_per_minute.into(),
                    code_length: self.code_length.into(),
                    ttl_seconds: self.ttl_seconds.into(),
                    max_attempts: self.max_attempts.into(),
                    resend_cooldown_seconds: self.resend_cooldown_seconds.into(),
                    max_sends: self.max_sends.into(),
                    allowed_countries: self.allowed_countries.into(),
                    default_locale: self.default_locale.into(),
                    template_es: self.template_es.into(),
                    template_en: self.template_en.into(),
                    template_pt: self.template_pt.into(),
                }
            }
        }
    };
}

with_settings! {
    /// A new client, with any settings of its own.
    #[schema(example = json!({"name": "shop", "display_name": "Tienda Sol", "ttl_seconds": 300}))]
    pub struct NewClient {
        /// 1 to 64 characters of `a-z`, `0-9`, `_`, `.` and `-`.
        #[schema(example = "shop")]
        pub name: String,
    }
}

with_settings! {
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
}

/// A client as operators see it; never its key.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "name": "shop",
    "created_at": "2026-11-21T10:42:00Z",
    "revoked_at": null,
    "settings": {"display_name": "Tienda Sol", "ttl_seconds": 300},
    "effective": {
        "display_name": "Tienda Sol", "share": 1, "max_queued": 1000, "requests_per_minute": 300,
        "code_length": 6, "ttl_seconds": 300, "max_attempts": 5, "resend_cooldown_seconds": 30,
        "max_sends": 5, "allowed_countries": [], "default_locale": "es",
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
    pub settings: OwnSettings,
    pub effective: EffectiveSettings,
    /// Where its webhooks go, and how they fare; null without a webhook URL.
    pub webhook: Option<WebhookReport>,
}

/// What the client has set itself. A field it leaves to the service's default
/// is left out (never `null`); `effective` has every field.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct OwnSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub share: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_queued: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub requests_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code_length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ttl_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub resend_cooldown_seconds: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub max_sends: Option<u32>,
    /// Empty: every country.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub allowed_countries: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub default_locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub template_es: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub template_en: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub template_pt: Option<String>,
}

/// Every setting as the client's requests get it: its own, or the service's default.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveSettings {
    pub display_name: String,
    pub share: u32,
    pub max_queued: u32,
    pub requests_per_minute: u32,
    pub code_length: u32,
    pub ttl_seconds: u32,
    pub max_attempts: u32,
    pub resend_cooldown_seconds: u32,
    pub max_sends: u32,
    /// Empty: every country.
    pub allowed_countries: Vec<String>,
    /// `es`, `en` or `pt`.
    pub default_locale: String,
    pub templates: Templates,
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
        let (own, effective) = (view.record.settings, view.effective);
        let countries =
            |list: &[phonenumber::country::Id]| list.iter().map(|c| c.as_ref().to_owned()).collect();
        let [es, en, pt] = effective.templates;
        Self {
            name: view.record.name,
            created_at: view.record.created_at,
            revoked_at: view.record.revoked_at,
            settings: OwnSettings {
                display_name: own.display_name,
                share: own.share,
                max_queued: own.max_queued,
                requests_per_minute: own.requests_per_minute,
                code_length: own.code_length.map(|l| l.digits() as u32),
                ttl_seconds: own.ttl_seconds,
                max_attempts: own.max_attempts,
                resend_cooldown_seconds: own.resend_cooldown_seconds,
                max_sends: own.max_sends,
                allowed_countries: own.allowed_countries.as_deref().map(countries),
                default_locale: own.default_locale.map(|l| l.as_str().to_owned()),
                template_es: own.template_es,
                template_en: own.template_en,
                template_pt: own.template_pt,
            },
            effective: EffectiveSettings {
                display_name: effective.display_name,
                share: effective.share,
                max_queued: effective.max_queued,
                requests_per_minute: effective.requests_per_minute,
                code_length: effective.code_length.digits() as u32,
                ttl_seconds: effective.ttl_seconds,
                max_attempts: effective.max_attempts,
                resend_cooldown_seconds: effective.resend_cooldown_seconds,
                max_sends: effective.max_sends,
                allowed_countries: countries(&effective.allowed_countries),
                default_locale: effective.default_locale.as_str().to_owned(),
                templates: Templates { es, en, pt },
            },
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
