//! Through `/twilio`: resends and their limits, used-up attempts and expiry,
//! `sms` as WhatsApp, and updates that cancel or approve.

use std::time::Duration;

use otp_service::domain::{Change, SettingsChange};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::twilio::{Twilio, code_sent, native_id, set, twilio_error, wrong};

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

    // A resend sends the same code, as Twilio's does: the first message's
    // code, arriving late, approves.
    assert_eq!(new_code, old_code);
    let checked: Value = twilio
        .check(&[("To", PHONE), ("Code", &old_code)])
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
    let fetched = twilio.fetch(sid).await;
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
    let sends = updated["send_code_attempts"].as_array().unwrap();
    assert_eq!(sends.len(), 1, "the update's answer lists the sends: {updated}");
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
