//! The Twilio Verify v2 compatible surface (`/twilio`), spoken as Twilio's
//! SDKs speak it: form bodies, Basic credentials (Account SID, API key),
//! Twilio's JSON and error codes. One verification, both APIs.

use std::time::Duration;

use otp_service::clients;
use otp_service::domain::{Change, SettingsChange};
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

fn wrong(code: &str) -> String {
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
    let fetched: Value = twilio
        .get(&format!("/Verifications/{sid}"))
        .await
        .json()
        .await
        .unwrap();
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

#[tokio::test]
async fn a_second_create_resends_the_same_verification_within_the_limits() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    let first = twilio.create(PHONE).await;
    let old_code = code_sent(&app, &first["sid"], PHONE).await;

    // Within the resend cooldown: not now, and when.
    let soon = twilio
        .post("/Verifications", &[("To", PHONE), ("Channel", "whatsapp")])
        .await;
    twilio_error(soon, 429, 20429).await;

    set(
        &app,
        SettingsChange {
            resend_cooldown_seconds: Change::Set(0),
            max_sends: Change::Set(2),
            ..Default::default()
        },
    )
    .await;
    let second = twilio.create(PHONE).await;
    assert_eq!(second["sid"], first["sid"], "a resend is the same verification");
    let attempts = second["send_code_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{second}");
    assert_ne!(attempts[0]["attempt_sid"], attempts[1]["attempt_sid"]);
    app.wait_for("the second code", Duration::from_secs(10), || async {
        app.fake.messages().len() == 2
    })
    .await;
    let new_code = app.last_code_to(PHONE_DIGITS);

    // Its sends are used up.
    let third = twilio
        .post("/Verifications", &[("To", PHONE), ("Channel", "whatsapp")])
        .await;
    twilio_error(third, 429, 60203).await;

    if old_code != new_code {
        let stale: Value = twilio
            .check(&[("To", PHONE), ("Code", &old_code)])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stale["valid"], false, "a resend replaces the code");
    }
    let checked: Value = twilio
        .check(&[("To", PHONE), ("Code", &new_code)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&checked["status"], &checked["sid"]),
        (&json!("approved"), &first["sid"])
    );
}

#[tokio::test]
async fn used_up_attempts_are_60202_and_an_expired_code_is_20404() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    set(
        &app,
        SettingsChange {
            max_attempts: Change::Set(2),
            ..Default::default()
        },
    )
    .await;
    let started = twilio.create(PHONE).await;
    let sid = started["sid"].as_str().unwrap();
    let code = code_sent(&app, &started["sid"], PHONE).await;

    let first: Value = twilio
        .check(&[("VerificationSid", sid), ("Code", &wrong(&code))])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&first["status"], &first["valid"]),
        (&json!("pending"), &json!(false))
    );
    // The wrong code that uses the last attempt is still answered (Twilio
    // refuses checks past the limit, not the one that reaches it)…
    let last = twilio
        .check(&[("VerificationSid", sid), ("Code", &wrong(&code))])
        .await;
    assert_eq!(last.status(), 200);
    let last: Value = last.json().await.unwrap();
    assert_eq!(
        (&last["status"], &last["valid"]),
        (&json!("max_attempts_reached"), &json!(false))
    );
    // …and from then on even the right code is refused.
    let right = twilio.check(&[("VerificationSid", sid), ("Code", &code)]).await;
    let body = twilio_error(right, 429, 60202).await;
    assert!(!body["message"].as_str().unwrap().contains("/otp"), "{body}");
    let fetched: Value = twilio
        .get(&format!("/Verifications/{sid}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "max_attempts_reached");

    // A new verification for another number, whose code expires.
    let phone = nth_phone(1);
    let other = twilio.create(&phone).await;
    let code = code_sent(&app, &other["sid"], &phone).await;
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(native_id(&other["sid"]))
        .execute(&app.pool)
        .await
        .unwrap();
    let late = twilio
        .check(&[
            ("VerificationSid", other["sid"].as_str().unwrap()),
            ("Code", &code),
        ])
        .await;
    twilio_error(late, 404, 20404).await;
    let by_number = twilio.check(&[("To", &phone), ("Code", &code)]).await;
    twilio_error(by_number, 404, 20404).await;
    let fetched: Value = twilio
        .get(&format!("/Verifications/{}", other["sid"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "expired");
}

#[tokio::test]
async fn sms_goes_over_whatsapp_only_for_a_client_that_says_so() {
    let app = crate::admin_clients::admin_app().await;
    let twilio = Twilio::of(&app).await;
    let refused = twilio
        .post("/Verifications", &[("To", PHONE), ("Channel", "sms")])
        .await;
    let body = twilio_error(refused, 400, 60200).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("sms_as_whatsapp") && message.contains("--sms-as-whatsapp true"),
        "names the setting and the fix: {message}"
    );
    assert_eq!(app.verification_count().await, 0);

    let changed = app
        .changing_clients(async {
            crate::admin_clients::admin(&app, reqwest::Method::PATCH, "/clients/test-client")
                .json(&json!({"sms_as_whatsapp": true}))
                .send()
                .await
                .unwrap()
        })
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["settings"]["sms_as_whatsapp"], true);
    assert_eq!(changed["effective"]["sms_as_whatsapp"], true);

    let started = twilio
        .post("/Verifications", &[("To", PHONE), ("Channel", "sms")])
        .await;
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["channel"], "sms", "the channel asked for is repeated");
    assert_eq!(started["send_code_attempts"][0]["channel"], "sms");
    let code = code_sent(&app, &started["sid"], PHONE).await;
    assert!(!code.is_empty(), "sent over WhatsApp");
    let fetched: Value = twilio
        .get(&format!("/Verifications/{}", started["sid"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["channel"], "sms");
    let checked: Value = twilio
        .check(&[("To", PHONE), ("Code", &code)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&checked["channel"], &checked["status"]),
        (&json!("sms"), &json!("approved"))
    );

    for channel in ["call", "email", "sna", "auto", "rcs"] {
        let refused = twilio
            .post("/Verifications", &[("To", &nth_phone(1)), ("Channel", channel)])
            .await;
        let body = twilio_error(refused, 400, 60200).await;
        assert!(body["message"].as_str().unwrap().contains("`Channel`"), "{body}");
    }
}

#[tokio::test]
async fn update_cancels_or_approves_and_an_approval_is_told_and_counted() {
    let app = crate::webhooks::spawn().await;
    let receiver = crate::webhook_receiver::Receiver::start(&[]);
    crate::webhooks::webhook_for(&app, "test-client", &receiver).await;
    let twilio = Twilio::of(&app).await;

    let canceled = twilio.create(PHONE).await;
    let sid = canceled["sid"].as_str().unwrap();
    let code = code_sent(&app, &canceled["sid"], PHONE).await;
    let updated = twilio
        .post(&format!("/Verifications/{sid}"), &[("Status", "canceled")])
        .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(
        (&updated["status"], &updated["valid"]),
        (&json!("canceled"), &json!(false))
    );
    assert_eq!(
        app.verification(&native_id(&canceled["sid"])).await["status"],
        "canceled"
    );
    let check = twilio.check(&[("VerificationSid", sid), ("Code", &code)]).await;
    twilio_error(check, 404, 20404).await;
    let again = twilio
        .post(&format!("/Verifications/{sid}"), &[("Status", "approved")])
        .await;
    twilio_error(again, 404, 20404).await;

    // Approved without a code: told and counted as an approval.
    let phone = nth_phone(1);
    let approved = twilio.create(&phone).await;
    let sid = approved["sid"].as_str().unwrap();
    code_sent(&app, &approved["sid"], &phone).await;
    let updated = twilio
        .post(&format!("/Verifications/{sid}"), &[("Status", "approved")])
        .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(
        (&updated["status"], &updated["valid"]),
        (&json!("approved"), &json!(true))
    );
    let native = app.verification(&native_id(&approved["sid"])).await;
    assert_eq!(native["status"], "approved");
    assert!(native["verified_at"].is_string(), "{native}");
    let told = receiver.wait_for(4, crate::webhooks::WAIT).await;
    let kinds: Vec<String> = told
        .iter()
        .filter(|r| r.json()["data"]["id"] == native["id"])
        .map(|r| r.kind())
        .collect();
    assert_eq!(kinds, ["verification.sent", "verification.approved"]);
    let stats: Value = app.get("/stats").await.json().await.unwrap();
    assert_eq!(stats["total"]["approved"], 1, "{stats}");

    for (status, code) in [("pending", 60200), ("", 60200), ("APPROVED", 60200)] {
        let refused = twilio
            .post(&format!("/Verifications/{sid}"), &[("Status", status)])
            .await;
        twilio_error(refused, 400, code).await;
    }
    let unknown = format!("VE{}", uuid::Uuid::new_v4().simple());
    for sid in [unknown.as_str(), "VEnot-a-sid", "nothing"] {
        let missing = twilio
            .post(&format!("/Verifications/{sid}"), &[("Status", "canceled")])
            .await;
        twilio_error(missing, 404, 20404).await;
        twilio_error(twilio.get(&format!("/Verifications/{sid}")).await, 404, 20404).await;
    }
}
