//! The resources `/twilio` answers with, in Twilio's fields (snake_case
//! JSON), from the service's own verification and client. Dates are
//! `2026-12-04T20:00:00Z` exactly: the form Twilio's SDKs parse.

use actix_web::HttpRequest;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::{Channel, Sid, SidKind, TwilioSids, VerificationId, VerificationStatus};
use crate::otp::{Verification, WrongCode};

/// A time as Twilio writes it: UTC, to the second, with a `Z`.
pub fn twilio_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Where the `/twilio` surface is, as this request reached it: its `Host`
/// and the scheme the service speaks (it trusts no forwarding header, so
/// behind a TLS terminator the `url`s say `http`).
pub fn base_url(req: &HttpRequest) -> String {
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| req.app_config().host().to_owned());
    let scheme = if req.app_config().secure() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/twilio")
}

/// What `status` a verification has in Twilio's words (the same ones).
fn status(status: VerificationStatus) -> &'static str {
    status.as_str()
}

/// The channel an answer repeats: the one asked for, `whatsapp` for a
/// verification started through `/otp`.
fn channel(asked: Option<Channel>) -> &'static str {
    asked.unwrap_or(Channel::WhatsApp).as_str()
}

/// One send of the code.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendCodeAttempt {
    /// When it went out (or was queued, if it has not yet).
    #[schema(example = "2026-12-04T20:00:00Z")]
    pub time: String,
    pub channel: &'static str,
    /// `VL` and its message's 32 hex digits.
    pub attempt_sid: String,
}

/// A verification.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "sid": "VE0193b6c27a1e7c3d9f2e3b1d5e8a9c01",
    "service_sid": "VA9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f90",
    "account_sid": "AC5f0c8e9a2b7d4c1e8f3a6b9d0c2e4f71",
    "to": "+59169657008",
    "channel": "whatsapp",
    "status": "pending",
    "valid": false,
    "lookup": {},
    "amount": null,
    "payee": null,
    "send_code_attempts": [{"time": "2026-12-04T20:00:00Z", "channel": "whatsapp",
        "attempt_sid": "VL0193b6c27a1e7c3d9f2e3b1d5e8a9c02"}],
    "date_created": "2026-12-04T20:00:00Z",
    "date_updated": "2026-12-04T20:00:00Z",
    "sna": null,
    "url": "https://otp.example/twilio/v2/Services/VA9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f90/Verifications/VE0193b6c27a1e7c3d9f2e3b1d5e8a9c01"
}))]
pub struct VerificationResource {
    /// `VE` and the 32 hex digits of its id under `/otp`.
    pub sid: String,
    pub service_sid: String,
    pub account_sid: String,
    /// E.164.
    pub to: String,
    /// As asked for (`whatsapp` or `sms`); every code goes over WhatsApp.
    pub channel: &'static str,
    /// `pending`, `approved`, `canceled`, `max_attempts_reached`, `expired` or `failed`.
    pub status: &'static str,
    /// Whether it is approved.
    pub valid: bool,
    /// Always `{}`: no lookup is made.
    #[schema(value_type = Object)]
    pub lookup: Value,
    #[schema(value_type = Option<String>)]
    pub amount: Option<()>,
    #[schema(value_type = Option<String>)]
    pub payee: Option<()>,
    pub send_code_attempts: Vec<SendCodeAttempt>,
    pub date_created: String,
    pub date_updated: String,
    #[schema(value_type = Option<Object>)]
    pub sna: Option<()>,
    pub url: String,
}

impl VerificationResource {
    pub fn new(v: &Verification, sids: &TwilioSids, base: &str) -> Self {
        let sid = Sid::of_verification(v.id.into()).to_string();
        let service_sid = sids.service.to_string();
        Self {
            url: format!("{base}/v2/Services/{service_sid}/Verifications/{sid}"),
            sid,
            service_sid,
            account_sid: sids.account.to_string(),
            to: v.phone.clone(),
            channel: channel(v.channel),
            status: status(v.status),
            valid: v.status == VerificationStatus::Approved,
            lookup: json!({}),
            amount: None,
            payee: None,
            send_code_attempts: v
                .send_attempts
                .iter()
                .map(|(message, time)| SendCodeAttempt {
                    time: twilio_time(time),
                    channel: channel(v.channel),
                    attempt_sid: Sid::of_uuid(SidKind::Attempt, *message).to_string(),
                })
                .collect(),
            date_created: twilio_time(&v.created_at),
            date_updated: twilio_time(&v.updated_at),
            sna: None,
        }
    }
}

/// The outcome of a check: the verification it checked, as it stands.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "sid": "VE0193b6c27a1e7c3d9f2e3b1d5e8a9c01",
    "service_sid": "VA9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f90",
    "account_sid": "AC5f0c8e9a2b7d4c1e8f3a6b9d0c2e4f71",
    "to": "+59169657008",
    "channel": "whatsapp",
    "status": "approved",
    "valid": true,
    "amount": null,
    "payee": null,
    "date_created": "2026-12-04T20:00:00Z",
    "date_updated": "2026-12-04T20:01:10Z",
    "sna_attempts_error_codes": []
}))]
pub struct VerificationCheckResource {
    pub sid: String,
    pub service_sid: String,
    pub account_sid: String,
    pub to: String,
    pub channel: &'static str,
    /// `approved` for the right code; `pending` for a wrong one, or
    /// `max_attempts_reached` for the wrong one that used the last attempt.
    pub status: &'static str,
    pub valid: bool,
    #[schema(value_type = Option<String>)]
    pub amount: Option<()>,
    #[schema(value_type = Option<String>)]
    pub payee: Option<()>,
    pub date_created: String,
    pub date_updated: String,
    /// Always `[]`: no silent network auth.
    #[schema(value_type = Vec<Object>)]
    pub sna_attempts_error_codes: Vec<()>,
}

impl VerificationCheckResource {
    /// The right code: the verification, approved.
    pub fn approved(v: &Verification, sids: &TwilioSids) -> Self {
        let dates = (&v.created_at, &v.updated_at);
        Self::new(v.id.into(), &v.phone, v.channel, v.status, dates, sids)
    }

    /// A wrong code: the verification as the attempt left it (`pending`, or
    /// `max_attempts_reached` for the attempt that used the last one).
    pub fn wrong(wrong: &WrongCode, sids: &TwilioSids) -> Self {
        let dates = (&wrong.created_at, &wrong.updated_at);
        Self::new(wrong.id, &wrong.phone, wrong.channel, wrong.status(), dates, sids)
    }

    fn new(
        id: VerificationId,
        to: &str,
        asked: Option<Channel>,
        now: VerificationStatus,
        (created, updated): (&DateTime<Utc>, &DateTime<Utc>),
        sids: &TwilioSids,
    ) -> Self {
        Self {
            sid: Sid::of_verification(id).to_string(),
            service_sid: sids.service.to_string(),
            account_sid: sids.account.to_string(),
            to: to.to_owned(),
            channel: channel(asked),
            status: status(now),
            valid: now == VerificationStatus::Approved,
            amount: None,
            payee: None,
            date_created: twilio_time(created),
            date_updated: twilio_time(updated),
            sna_attempts_error_codes: Vec::new(),
        }
    }
}

/// A client's service, with Twilio's other fields at fixed values: what
/// this service does not do is off.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceResource {
    pub sid: String,
    pub account_sid: String,
    /// The client's display name (by default its name).
    pub friendly_name: String,
    /// The digits of its codes.
    pub code_length: u32,
    pub lookup_enabled: bool,
    pub psd2_enabled: bool,
    pub skip_sms_to_landlines: bool,
    pub dtmf_input_required: bool,
    #[schema(value_type = Option<String>)]
    pub tts_name: Option<()>,
    pub do_not_share_warning_enabled: bool,
    pub custom_code_enabled: bool,
    #[schema(value_type = Object)]
    pub push: Value,
    #[schema(value_type = Object)]
    pub totp: Value,
    #[schema(value_type = Object)]
    pub whatsapp: Value,
    #[schema(value_type = Object)]
    pub passkeys: Value,
    #[schema(value_type = Option<String>)]
    pub default_template_sid: Option<()>,
    pub verify_event_subscription_enabled: bool,
    /// When the client was made (also `date_updated`: its changes are not dated).
    pub date_created: String,
    pub date_updated: String,
    pub url: String,
    /// The resources served under it.
    #[schema(value_type = Object)]
    pub links: Value,
}

impl ServiceResource {
    pub fn new(
        sids: &TwilioSids,
        friendly_name: String,
        code_length: u32,
        created_at: &DateTime<Utc>,
        base: &str,
    ) -> Self {
        let url = format!("{base}/v2/Services/{}", sids.service);
        Self {
            sid: sids.service.to_string(),
            account_sid: sids.account.to_string(),
            friendly_name,
            code_length,
            lookup_enabled: false,
            psd2_enabled: false,
            skip_sms_to_landlines: false,
            dtmf_input_required: false,
            tts_name: None,
            do_not_share_warning_enabled: false,
            custom_code_enabled: false,
            push: json!({"include_date": false, "apn_credential_sid": null, "fcm_credential_sid": null}),
            totp: json!({"issuer": null, "time_step": null, "code_length": null, "skew": null}),
            whatsapp: json!({"msg_service_sid": null, "from": null}),
            passkeys: json!({
                "relying_party": {"id": null, "name": null, "origins": null},
                "authenticator_attachment": null,
                "discoverable_credentials": null,
                "user_verification": null
            }),
            default_template_sid: None,
            verify_event_subscription_enabled: false,
            date_created: twilio_time(created_at),
            date_updated: twilio_time(created_at),
            links: json!({
                "verifications": format!("{url}/Verifications"),
                "verification_checks": format!("{url}/VerificationCheck"),
            }),
            url,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_to_the_second_with_a_z() {
        let t: DateTime<Utc> = "2026-12-04T20:00:00.987654Z".parse().unwrap();
        assert_eq!(twilio_time(&t), "2026-12-04T20:00:00Z");
        let t: DateTime<Utc> = "2026-01-02T03:04:05+02:00".parse().unwrap();
        assert_eq!(twilio_time(&t), "2026-01-02T01:04:05Z");
    }
}
