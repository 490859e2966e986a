//! The Twilio Verify v2 compatible surface (`/twilio`), spoken as Twilio's
//! SDKs speak it: form bodies, Basic credentials (Account SID, API key),
//! Twilio's JSON and error codes. One verification, both APIs.

use std::time::Duration;

use otp_service::clients;
use otp_service::domain::SettingsChange;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::*;

/// A client as its Twilio SDK knows it.
pub(crate) struct Twilio<'a> {
    pub app: &'a TestApp,
    pub account: String,
    pub service: String,
    pub key: String,
}

impl<'a> Twilio<'a> {
    /// The test client, with its SIDs as the service shows them.
    pub async fn of(app: &'a TestApp) -> Self {
        Self::client(app, "test-client", &app.api_key).await
    }

    pub async fn client(app: &'a TestApp, name: &str, key: &str) -> Self {
        let record = clients::show(&app.pool, name).await.unwrap();
        Self {
            app,
            account: record.twilio_account_sid,
            service: record.twilio_service_sid,
            key: key.to_owned(),
        }
    }

    /// Under the client's service: `/Verifications`, `/VerificationCheck`…
    pub fn url(&self, path: &str) -> String {
        format!("{}/twilio/v2/Services/{}{path}", self.app.address, self.service)
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_as(&self.account, &self.key, path, fields).await
    }

    pub async fn post_as(&self, user: &str, key: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        self.app
            .http
            .post(self.url(path))
            .basic_auth(user, Some(key))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(fields))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.app
            .http
            .get(self.url(path))
            .basic_auth(&self.account, Some(&self.key))
            .send()
            .await
            .expect("request sent")
    }

    /// The verification `sid`, expecting `200`.
    pub async fn fetch(&self, sid: &str) -> Value {
        let fetched = self.get(&format!("/Verifications/{sid}")).await;
        assert_eq!(fetched.status(), 200);
        fetched.json().await.unwrap()
    }

    /// Starts a verification for `to` over WhatsApp, expecting `201`.
    pub async fn create(&self, to: &str) -> Value {
        let response = self
            .post("/Verifications", &[("To", to), ("Channel", "whatsapp")])
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn check(&self, fields: &[(&str, &str)]) -> Response {
        self.post("/VerificationCheck", fields).await
    }
}

pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A Twilio error: the status, exactly Twilio's four keys as JSON, the code,
/// and a `Retry-After` where waiting helps (429 and 503, but `60202`).
pub(crate) async fn twilio_error(response: Response, status: u16, code: u64) -> Value {
    assert_eq!(response.status(), status, "expected {status} {code}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "more_info", "status"], "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(
        body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    let waits = (status == 429 && code != 60202) || status == 503;
    match retry_after {
        Some(seconds) => {
            assert!(waits, "no Retry-After on {code}: {body}");
            assert!(seconds.to_str().unwrap().parse::<u64>().unwrap() >= 1);
        }
        None => assert!(!waits, "Retry-After on {code}"),
    }
    body
}

/// Twilio's form of a time, the one its SDKs parse: `2026-12-04T20:00:00Z`.
pub(crate) fn assert_twilio_time(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("a time: {value}"));
    assert!(
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").is_ok() && text.len() == 20,
        "{text}"
    );
}

/// The id under `/otp` of a `VE` SID.
pub(crate) fn native_id(sid: &Value) -> String {
    let sid = sid.as_str().unwrap();
    assert!(sid.starts_with("VE") && sid.len() == 34, "{sid}");
    uuid::Uuid::parse_str(&sid[2..]).unwrap().to_string()
}

/// Changes the test client's settings, and waits until the service knows.
pub(crate) async fn set(app: &TestApp, change: SettingsChange) {
    app.changing_clients(async {
        clients::change(&app.pool, "test-client", change, true)
            .await
            .unwrap()
    })
    .await;
}

/// Waits for the verification's code to go out; returns it.
pub(crate) async fn code_sent(app: &TestApp, sid: &Value, phone: &str) -> String {
    app.wait_for_delivery(&native_id(sid), "sent", Duration::from_secs(10))
        .await;
    app.last_code_to(&phone[1..])
}

pub(crate) fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
}

#[tokio::test]
async fn a_verification_started_and_checked_through_twilio_is_one_of_otp() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    assert!(twilio.account.starts_with("AC") && twilio.account.len() == 34);
    assert!(twilio.service.starts_with("VA") && twilio.service.len() == 34);

    let started = twilio.create(PHONE).await;
    let sid = started["sid"].as_str().unwrap();
    assert_eq!(started["service_sid"], twilio.service);
    assert_eq!(started["account_sid"], twilio.account);
    assert_eq!(started["to"], PHONE);
    assert_eq!(started["channel"], "whatsapp");
    assert_eq!(started["status"], "pending");
    assert_eq!(started["valid"], false);
    assert_eq!(started["lookup"], json!({}));
    assert!(started["amount"].is_null() && started["payee"].is_null() && started["sna"].is_null());
    assert_eq!(
        started["url"],
        format!(
            "{}/twilio/v2/Services/{}/Verifications/{sid}",
            app.address, twilio.service
        )
    );
    assert_twilio_time(&started["date_created"]);
    assert_twilio_time(&started["date_updated"]);
    let attempts = started["send_code_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{started}");
    assert_twilio_time(&attempts[0]["time"]);
    assert_eq!(attempts[0]["channel"], "whatsapp");
    let attempt = attempts[0]["attempt_sid"].as_str().unwrap();
    assert!(attempt.starts_with("VL") && attempt.len() == 34, "{attempt}");

    // The same verification under /otp.
    let id = native_id(&started["sid"]);
    let native = app.verification(&id).await;
    assert_eq!(
        (native["phone"].as_str(), native["purpose"].as_str()),
        (Some(PHONE), Some("default"))
    );
    let code = code_sent(&app, &started["sid"], PHONE).await;

    let missed = twilio.check(&[("To", PHONE), ("Code", &wrong(&code))]).await;
    assert_eq!(missed.status(), 200);
    let missed: Value = missed.json().await.unwrap();
    assert_eq!(
        (&missed["status"], &missed["valid"]),
        (&json!("pending"), &json!(false))
    );
    assert_eq!(missed["sid"], sid);

    let approved = twilio.check(&[("VerificationSid", sid), ("Code", &code)]).await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.unwrap();
    let mut keys: Vec<&str> = approved.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "account_sid",
            "amount",
            "channel",
            "date_created",
            "date_updated",
            "payee",
            "service_sid",
            "sid",
            "sna_attempts_error_codes",
            "status",
            "to",
            "valid"
        ]
    );
    assert_eq!(
        (&approved["status"], &approved["valid"]),
        (&json!("approved"), &json!(true))
    );
    assert_eq!(approved["sna_attempts_error_codes"], json!([]));
    assert_eq!(
        (approved["sid"].as_str(), approved["to"].as_str()),
        (Some(sid), Some(PHONE))
    );
    assert_twilio_time(&approved["date_updated"]);
    assert_eq!(app.verification(&id).await["status"], "approved");
    let fetched = twilio.fetch(sid).await;
    assert_eq!(
        (&fetched["status"], &fetched["valid"]),
        (&json!("approved"), &json!(true))
    );

    // No longer pending: not found, as Twilio says of it.
    let again = twilio.check(&[("VerificationSid", sid), ("Code", &code)]).await;
    twilio_error(again, 404, 20404).await;
    let by_number = twilio.check(&[("To", PHONE), ("Code", &code)]).await;
    twilio_error(by_number, 404, 20404).await;
}

#[tokio::test]
async fn a_verification_started_under_otp_is_read_and_checked_through_twilio() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    let started = app.requested("default").await;
    let id = started["id"].as_str().unwrap();
    let sid = format!("VE{}", uuid::Uuid::parse_str(id).unwrap().simple());

    let fetched = twilio.get(&format!("/Verifications/{sid}")).await;
    assert_eq!(fetched.status(), 200);
    let fetched: Value = fetched.json().await.unwrap();
    assert_eq!(
        (fetched["sid"].as_str(), fetched["to"].as_str()),
        (Some(sid.as_str()), Some(PHONE))
    );
    assert_eq!(
        fetched["channel"], "whatsapp",
        "a verification of /otp went over WhatsApp"
    );
    // The digits in capitals name it too.
    let upper = format!("VE{}", sid[2..].to_uppercase());
    assert_eq!(twilio.get(&format!("/Verifications/{upper}")).await.status(), 200);

    let code = code_sent(&app, &json!(sid), PHONE).await;
    let checked: Value = twilio
        .check(&[("To", PHONE), ("Code", &code)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(checked["status"], "approved");
    assert_eq!(app.verification(id).await["status"], "approved");
}
