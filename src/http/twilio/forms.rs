//! The form bodies Twilio's SDKs send (`application/x-www-form-urlencoded`,
//! PascalCase fields). Fields Twilio defines that this service does not use
//! are ignored rather than refused, so that an app's calls need no change;
//! every field is read as text and checked here, so that a refusal names it.

use actix_web::error::UrlencodedError;
use actix_web::web;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::errors::TwilioError;
use crate::error::Error;

/// Bodies are refused as Twilio errors, never as problems.
pub fn config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(crate::http::body::LIMIT)
        .error_handler(|e, _| refusal(&e).into())
}

/// Says what is wrong with a body without repeating any of its values.
fn refusal(e: &UrlencodedError) -> TwilioError {
    let message = match e {
        UrlencodedError::ContentType => {
            "Invalid parameter: the body must be form fields, sent with Content-Type: \
             application/x-www-form-urlencoded (as Twilio's SDKs send it)"
        }
        UrlencodedError::Overflow { .. } | UrlencodedError::UnknownLength => {
            "Invalid parameter: the body is larger than 16 KiB"
        }
        _ => "Invalid parameter: the body could not be read as form fields",
    };
    TwilioError::invalid(message)
}

/// A field the operation needs (blank is missing).
pub fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, Error> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::InvalidRequest(format!("`{field}` is required")))
}

/// Start a verification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVerification {
    /// The phone number, E.164 (`+59169657008`).
    pub to: Option<String>,
    /// `whatsapp`; `sms` too for a client with `sms_as_whatsapp` (sent over
    /// WhatsApp). Any other channel is refused.
    pub channel: Option<String>,
    /// A language tag (`es`, `es-419`, `en-US`, `pt-BR`…), read by its
    /// language; one without a text here gets the client's default locale.
    pub locale: Option<String>,
    /// What the message calls the app instead of the client's display name,
    /// 1 to 64 characters.
    pub custom_friendly_name: Option<String>,
    /// The end user's IP address, for the per-network limits and fraud rules.
    pub device_ip: Option<String>,
}

/// Check a code, for a number (`To`) or a verification (`VerificationSid`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVerificationCheck {
    /// The digits the person typed.
    #[schema(value_type = Option<String>, example = "123456")]
    pub code: Option<SecretString>,
    /// The number whose pending verification to check, E.164.
    pub to: Option<String>,
    /// The verification to check (`VE…`); with `To` too, its number must be `To`.
    pub verification_sid: Option<String>,
}

/// Cancel or approve a pending verification.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateVerification {
    /// `canceled`, or `approved` (without a code: the app checked the person
    /// some other way).
    pub status: Option<String>,
}
