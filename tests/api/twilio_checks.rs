//! Through `/twilio`: checks by `VerificationSid` with `To`, which must go
//! together, and the answer to a wrong code.

use otp_service::domain::{Change, SettingsChange};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::twilio::{Twilio, code_sent, native_id, set, twilio_error, wrong};

/// A check naming a verification and a number reserves an attempt only when
/// the two go together: another number's verification is as none, whatever
/// its state and whatever this replica remembers of it, and costs neither an
/// attempt nor a failure of the number's window. A wrong code is answered
/// with the verification as a fetch shows it, though it is not read again.
#[tokio::test]
async fn a_check_by_sid_and_to_needs_both_to_match_and_answers_as_a_fetch_shows() {
    let app = spawn_app_with(|s| s.policy.phone_failures_per_hour = 2).await;
    let twilio = Twilio::of(&app).await;
    let started = twilio.create(PHONE).await;
    let sid = started["sid"].as_str().unwrap();
    let id = native_id(&started["sid"]);
    let code = code_sent(&app, &started["sid"], PHONE).await;
    // Dates far apart, so that an answer that swapped them shows it.
    sqlx::query("update verifications set created_at = created_at - interval '1 hour' where id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let attempts = |v: Value| v["attempts_remaining"].as_u64().unwrap();
    let before = attempts(app.verification(&id).await);

    let other = nth_phone(1);
    for code in [wrong(&code), wrong(&code), code.clone()] {
        let fields = [("VerificationSid", sid), ("To", other.as_str()), ("Code", &code)];
        let body = twilio_error(twilio.check(&fields).await, 404, 20404).await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("`To`") && !message.contains("purpose"),
            "{message}"
        );
    }
    assert_eq!(attempts(app.verification(&id).await), before, "no attempt taken");

    let fields = [("VerificationSid", sid), ("To", PHONE), ("Code", &wrong(&code))];
    let missed = twilio.check(&fields).await;
    assert_eq!(missed.status(), 200);
    let missed: Value = missed.json().await.unwrap();
    assert_eq!(attempts(app.verification(&id).await), before - 1);
    let fetched = twilio.fetch(sid).await;
    for field in [
        "sid",
        "to",
        "channel",
        "status",
        "valid",
        "date_created",
        "date_updated",
    ] {
        assert_eq!(missed[field], fetched[field], "{field}");
    }
    assert_eq!(missed["status"], "pending");
    assert_ne!(missed["date_created"], missed["date_updated"]);

    // The number's window (2 an hour) has room for the right code: the
    // wrong number's checks took none of it.
    let fields = [("VerificationSid", sid), ("To", PHONE), ("Code", code.as_str())];
    let approved: Value = twilio.check(&fields).await.json().await.unwrap();
    assert_eq!(
        (&approved["status"], &approved["valid"]),
        (&json!("approved"), &json!(true))
    );
    // No longer pending: 404, with either number.
    for to in [PHONE, other.as_str()] {
        let fields = [("VerificationSid", sid), ("To", to), ("Code", code.as_str())];
        twilio_error(twilio.check(&fields).await, 404, 20404).await;
    }
}

/// A locked verification named with another number is none (404), not
/// locked (429), even where this replica remembers the lock.
#[tokio::test]
async fn a_locked_verification_with_another_number_is_none() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    set(
        &app,
        SettingsChange {
            max_attempts: Change::Set(1),
            ..Default::default()
        },
    )
    .await;
    let started = twilio.create(PHONE).await;
    let sid = started["sid"].as_str().unwrap();
    let code = code_sent(&app, &started["sid"], PHONE).await;
    let fields = [("VerificationSid", sid), ("To", PHONE), ("Code", &wrong(&code))];
    let locked: Value = twilio.check(&fields).await.json().await.unwrap();
    assert_eq!(locked["status"], "max_attempts_reached");
    // Refused, and so remembered.
    let fields = [("VerificationSid", sid), ("To", PHONE), ("Code", code.as_str())];
    twilio_error(twilio.check(&fields).await, 429, 60202).await;
    let other = nth_phone(1);
    let fields = [
        ("VerificationSid", sid),
        ("To", other.as_str()),
        ("Code", code.as_str()),
    ];
    twilio_error(twilio.check(&fields).await, 404, 20404).await;
}
