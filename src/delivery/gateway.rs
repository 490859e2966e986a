//! The Waconecta client, classifying every answer as docs/waconecta.md reads it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What one send attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent {
        provider_message_id: Option<String>,
    },
    /// `400 Invalid phone number`: do not retry; the verification fails.
    PhoneRejected,
    /// `400 Session has ended`: this key needs re-linking.
    SessionEnded,
    /// `401`: this key is wrong or revoked.
    Unauthorized,
    /// `429`: over the per-key rate.
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// Any other `4xx` (a proxy's `403`, a `400` the contract does not name):
    /// nothing says the key is gone, so it rests and the message is retried.
    Refused {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// `5xx`, timeouts, connection errors, unreadable answers: retry with backoff.
    /// `maybe_sent` when the message may have gone out all the same (a timeout).
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
        maybe_sent: bool,
    },
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// The longest one send may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct WaconectaClient {
    http: reqwest::Client,
    base_url: String,
}

impl WaconectaClient {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(SEND_TIMEOUT)
            // A redirect would carry the key and the code somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one WhatsApp text. `number` is digits only, country code first.
    pub async fn send_message(&self, key: &SecretString, number: &str, text: &SecretString) -> SendOutcome {
        let answer = self
            .http
            .post(format!("{}/api/v1/services/sendMessage", self.base_url))
            .header("x-api-key", key.expose_secret())
            .json(&serde_json::json!({ "number": number, "message": text.expose_secret() }))
            .send()
            .await;
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                return SendOutcome::Unavailable {
                    reason: format!("gateway {kind}"),
                    retry_after: None,
                    maybe_sent: !e.is_connect(),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let envelope: Option<Envelope> = response.json().await.ok();
        classify(status, envelope, retry_after)
    }
}

impl WaconectaClient {
    /// The QR code that links (or re-links) the key's WhatsApp session: the image
    /// bytes and their media type.
    pub async fn qr_code(
        &self,
        key: &SecretString,
        container_token: &SecretString,
    ) -> Result<(Vec<u8>, &'static str), String> {
        let response = self
            .http
            .post(format!("{}/api/v1/services/getQrStaticSession", self.base_url))
            .header("x-api-key", key.expose_secret())
            .json(&serde_json::json!({ "containerToken": container_token.expose_secret() }))
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "the gateway did not answer in time".to_owned()
                } else {
                    "the gateway could not be reached".to_owned()
                }
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| "the gateway's answer could not be read".to_owned())?;
        if !status.is_success() {
            let message = serde_json::from_str::<Envelope>(&text)
                .map(|e| e.message)
                .unwrap_or_default();
            return Err(format!("the gateway answered {}: {message}", status.as_u16()));
        }
        decode_qr(&text).ok_or_else(|| "the gateway's answer holds no image".to_owned())
    }
}

/// As docs/waconecta.md reads the QR answer: the envelope with the image in
/// `data`, or a bare string; either a `data:` URL or plain base64; any image type.
pub fn decode_qr(answer: &str) -> Option<(Vec<u8>, &'static str)> {
    use base64::Engine;
    let payload = match serde_json::from_str::<serde_json::Value>(answer) {
        Ok(serde_json::Value::Object(envelope)) => envelope.get("data")?.as_str()?.to_owned(),
        Ok(serde_json::Value::String(s)) => s,
        _ => answer.trim().to_owned(),
    };
    let encoded = payload
        .split_once("base64,")
        .map_or(payload.as_str(), |(_, rest)| rest)
        .trim();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let media_type = match bytes.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, ..] => "image/jpeg",
        [b'G', b'I', b'F', ..] => "image/gif",
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => "image/webp",
        b if b.starts_with(b"<svg") || b.starts_with(b"<?xml") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Some((bytes, media_type))
}

fn classify(status: u16, envelope: Option<Envelope>, retry_after: Option<Duration>) -> SendOutcome {
    // Only the contract's exact words end a key or fail a verification.
    let message = envelope
        .as_ref()
        .map(|e| e.message.trim().to_lowercase())
        .unwrap_or_default();
    match status {
        200..=299 => SendOutcome::Sent {
            provider_message_id: envelope
                .as_ref()
                .and_then(|e| e.data.pointer("/key/id"))
                .and_then(|id| id.as_str())
                .map(str::to_owned),
        },
        401 => SendOutcome::Unauthorized,
        400 if message == "session has ended" => SendOutcome::SessionEnded,
        400 if message == "invalid phone number" => SendOutcome::PhoneRejected,
        429 => SendOutcome::RateLimited { retry_after },
        400..=499 => SendOutcome::Refused {
            status,
            // The gateway's words, bounded: they go to the log and the admin page.
            message: message.chars().take(120).collect(),
            retry_after,
        },
        other => SendOutcome::Unavailable {
            reason: format!("gateway answered {other}"),
            retry_after,
            maybe_sent: false,
        },
    }
}

/// `Retry-After` as seconds or as an HTTP date, bounded as `plan` bounds it:
/// no unbounded wait travels further.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(bounded(wait))
}

/// The longest a `Retry-After` from the gateway may rest a key: a proxy's
/// "come back tomorrow" must not take a key away for a day.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// A `Retry-After` as long as the gateway asked, up to `MAX_RETRY_AFTER`.
pub fn bounded(retry_after: Duration) -> Duration {
    retry_after.min(MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(message: &str) -> Option<Envelope> {
        Some(Envelope {
            message: message.into(),
            data: serde_json::Value::String(String::new()),
        })
    }

    #[test]
    fn classifies_the_documented_answers() {
        assert_eq!(
            classify(400, env("Invalid phone number"), None),
            SendOutcome::PhoneRejected
        );
        assert_eq!(
            classify(400, env("Session has ended"), None),
            SendOutcome::SessionEnded
        );
        assert_eq!(
            classify(401, env("No autorizado"), None),
            SendOutcome::Unauthorized
        );
        assert_eq!(
            classify(
                429,
                env("You can only send 30 messages per minute"),
                Some(Duration::from_secs(2))
            ),
            SendOutcome::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(
            classify(503, None, None),
            SendOutcome::Unavailable { .. }
        ));
        assert_eq!(
            classify(400, env("  SESSION HAS ENDED "), None),
            SendOutcome::SessionEnded
        );
    }

    #[test]
    fn stray_answers_never_end_a_key_nor_fail_a_verification() {
        for (status, message) in [
            (403, "Forbidden"),
            (400, "Bad request"),
            (400, "Your session token is about to expire"),
            (400, "Invalid number of fields"),
            (404, "Not Found"),
            (413, ""),
        ] {
            assert!(
                matches!(
                    classify(status, env(message), None),
                    SendOutcome::Refused { status: s, .. } if s == status
                ),
                "{status} {message}"
            );
        }
        assert!(matches!(
            classify(403, None, None),
            SendOutcome::Refused { status: 403, .. }
        ));
        let ok = Envelope {
            message: "data retrieved successfully".into(),
            data: serde_json::json!({"key": {"id": "BAE56A9BA190B10F"}}),
        };
        assert_eq!(
            classify(200, Some(ok), None),
            SendOutcome::Sent {
                provider_message_id: Some("BAE56A9BA190B10F".into())
            }
        );
    }

    #[test]
    fn reads_the_qr_code_in_every_documented_shape() {
        let png =
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==";
        for answer in [
            format!(r#"{{"success":true,"status":200,"message":"ok","data":"data:image/png;base64,{png}"}}"#),
            format!(r#"{{"success":true,"status":200,"message":"ok","data":"{png}"}}"#),
            format!(r#""{png}""#),
            png.to_owned(),
        ] {
            let (bytes, media_type) = decode_qr(&answer).expect(&answer);
            assert_eq!(media_type, "image/png");
            assert!(bytes.starts_with(b"\x89PNG"));
        }
        assert!(decode_qr(r#"{"data":""}"#).is_none_or(|(b, _)| b.is_empty()));
        assert!(decode_qr("not base64 at all!").is_none());
    }

    #[test]
    fn reads_retry_after_in_both_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT"),
            Some(MAX_RETRY_AFTER)
        );
    }
}
