//! A resend sends the code already sent: whichever message arrives first
//! works, none is ever dead, a resend costs no argon2 work, and the kept code
//! is erased as soon as the verification ends.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::webhook_receiver::Receiver;

/// Whether the verification still keeps its code sealed for resends.
async fn code_kept(app: &TestApp, id: &str) -> bool {
    sqlx::query_scalar("select code_sealed is not null from verifications where id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn code_hash(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("select code_hash from verifications where id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Codes hashed so far (argon2 work for new codes, not for checks).
async fn hashes(app: &TestApp) -> f64 {
    metric_with(app, "otp_hash_duration_seconds_count", &[("op", "hash")]).await
}

fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
}

#[tokio::test]
async fn a_resend_sends_the_same_code_and_the_first_message_still_verifies() {
    let app = spawn_app_with(|s| s.policy.resend_cooldown_seconds = 0).await;
    let first = app.requested("signup").await;
    let first_code = app.last_code_to(PHONE_DIGITS);
    let id = first["id"].as_str().unwrap();
    let hashed = hashes(&app).await;
    assert_eq!(hashed, 1.0);

    // The resend asks for English: the text is new, the code is not.
    let response = app
        .request_code(json!({"phone": PHONE, "purpose": "signup", "locale": "en"}))
        .await;
    assert_eq!(response.status(), 202);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["sends"], 2);
    assert!(second["expires_at"].as_str().unwrap() > first["expires_at"].as_str().unwrap());
    let resent = app.fake.last_message_to(PHONE_DIGITS).unwrap();
    assert!(
        resent.message.starts_with("Your verification code is *"),
        "{}",
        resent.message
    );
    assert_eq!(code_in(&resent), first_code);
    assert_eq!(app.fake.messages().len(), 2);
    assert_eq!(hashes(&app).await, hashed, "a resend hashes nothing");

    // The person types the code of the first message, which arrived first.
    let approved = app.verify(json!({"id": id, "code": first_code})).await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.unwrap();
    assert_eq!(approved["status"], "approved");
    // After the approval, neither message's code does anything more.
    for code in [&first_code, &code_in(&resent)] {
        let again = problem(
            app.verify(json!({"id": id, "code": code})).await,
            409,
            "not_pending",
        )
        .await;
        assert_eq!(again["status_detail"], "approved");
    }
}

#[tokio::test]
async fn three_sends_carry_one_code_and_the_wrong_codes_stay_counted() {
    let app = spawn_app_with(|s| {
        s.policy.resend_cooldown_seconds = 0;
        s.policy.max_sends = 3;
    })
    .await;
    let first = app.requested("signup").await;
    let id = first["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    let hash = code_hash(&app, id).await;
    let wrong_once = problem(
        app.verify(json!({"id": id, "code": wrong(&code)})).await,
        422,
        "invalid_code",
    )
    .await;
    assert_eq!(wrong_once["attempts_remaining"], 4);

    app.requested("signup").await;
    let third = app.requested("signup").await;
    assert_eq!(third["id"], first["id"]);
    assert_eq!(third["sends"], 3);
    assert_eq!(third["attempts_remaining"], 4, "a resend resets no attempt");
    let codes: Vec<String> = app.fake.messages().iter().map(code_in).collect();
    assert_eq!(codes, [code.clone(), code.clone(), code.clone()]);
    // One code live, never two: the one hash the verification was made with.
    assert_eq!(code_hash(&app, id).await, hash);

    assert_eq!(app.verify(json!({"id": id, "code": code})).await.status(), 200);
}

#[tokio::test]
async fn the_kept_code_is_erased_by_whatever_ends_the_verification() {
    let app = spawn_app_with(|s| s.policy.max_attempts = 2).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    let approved = id(&app.requested("approved").await);
    assert!(code_kept(&app, &approved).await, "kept while pending");
    let code = app.last_code_to(PHONE_DIGITS);
    assert_eq!(
        app.verify(json!({"id": approved, "code": code})).await.status(),
        200
    );
    assert!(!code_kept(&app, &approved).await, "approved");

    let canceled = id(&app.requested("canceled").await);
    let cancel = app.post(&format!("/otp/{canceled}/cancel"), &json!({})).await;
    assert_eq!(cancel.status(), 200);
    assert!(!code_kept(&app, &canceled).await, "canceled");

    // Locked by its last wrong code, though the row still says `pending`.
    let locked = id(&app.requested("locked").await);
    let code = app.last_code_to(PHONE_DIGITS);
    for _ in 0..2 {
        let body = json!({"id": locked, "code": wrong(&code)});
        problem(app.verify(body).await, 422, "invalid_code").await;
    }
    assert!(!code_kept(&app, &locked).await, "locked");

    let expired = id(&app.requested("expired").await);
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(&expired)
        .execute(&app.pool)
        .await
        .unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    problem(
        app.verify(json!({"id": expired, "code": code})).await,
        410,
        "expired",
    )
    .await;
    assert!(!code_kept(&app, &expired).await, "expired");

    app.fake.reject_number(&nth_phone(7)[1..]);
    let rejected = problem(
        app.request_code(json!({"phone": nth_phone(7)})).await,
        422,
        "phone_rejected",
    )
    .await;
    assert!(!code_kept(&app, rejected["id"].as_str().unwrap()).await, "failed");
}

#[tokio::test]
async fn a_kept_code_no_pepper_opens_is_replaced_by_a_new_code() {
    let app = spawn_app_with(|s| s.policy.resend_cooldown_seconds = 0).await;
    let first = app.requested("signup").await;
    let id = first["id"].as_str().unwrap();
    let hash = code_hash(&app, id).await;
    // As if its pepper had been rotated away: sealed under a key id no
    // configured pepper has.
    let sealed = [vec![1u8], vec![0xee; 6], vec![7u8; 40]].concat();
    sqlx::query("update verifications set code_sealed = $2 where id = $1::uuid")
        .bind(id)
        .bind(&sealed)
        .execute(&app.pool)
        .await
        .unwrap();
    let hashed = hashes(&app).await;

    let second = app.requested("signup").await;
    assert_eq!(second["sends"], 2);
    assert_ne!(code_hash(&app, id).await, hash, "a new code, with its own hash");
    assert_eq!(hashes(&app).await, hashed + 1.0);
    let kept: Vec<u8> = sqlx::query_scalar("select code_sealed from verifications where id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(kept, sealed, "the new code is kept for the next resend");

    let new_code = app.last_code_to(PHONE_DIGITS);
    assert_eq!(
        app.verify(json!({"id": id, "code": new_code})).await.status(),
        200
    );
}

#[tokio::test]
async fn each_sent_event_says_which_send_it_was() {
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.policy.resend_cooldown_seconds = 0;
    })
    .await;
    let receiver = Receiver::start(&[]);
    crate::webhooks::webhook_for(&app, "test-client", &receiver).await;
    let first = app.requested("signup").await;
    app.requested("signup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    let verified = app.verify(json!({"id": first["id"], "code": code})).await;
    assert_eq!(verified.status(), 200);

    let got = receiver.wait_for(3, crate::webhooks::WAIT).await;
    let told: Vec<(String, Value)> = got
        .iter()
        .map(|r| (r.kind(), r.json().get("send").cloned().unwrap_or(Value::Null)))
        .collect();
    assert_eq!(
        told,
        [
            ("verification.sent".to_owned(), json!(1)),
            ("verification.sent".to_owned(), json!(2)),
            ("verification.approved".to_owned(), Value::Null),
        ]
    );
}

/// A replica from before kept codes (a rolling deploy through V21) resends
/// with a new code by replacing the hash alone, leaving the sealed code of the
/// one before; that sealed code, bound to the hash it was sealed with, no
/// longer opens, so the next resend sends a new code that verifies instead of
/// the stale one.
#[tokio::test]
async fn a_kept_code_whose_hash_was_replaced_without_it_is_not_sent() {
    let app = spawn_app_with(|s| s.policy.resend_cooldown_seconds = 0).await;
    let first = app.requested("signup").await;
    let first_code = app.last_code_to(PHONE_DIGITS);
    let id = first["id"].as_str().unwrap();
    // The old replica's new code: another verification's, with its hash.
    let other = app.requested("login").await;
    let other_hash = code_hash(&app, other["id"].as_str().unwrap()).await;
    // The old replica's resend: the hash replaced, the sealed code untouched.
    sqlx::query(
        "update verifications
         set code_hash = $2, sends = sends + 1, last_sent_at = now(),
             expires_at = now() + make_interval(secs => 600), updated_at = now()
         where id = $1::uuid",
    )
    .bind(id)
    .bind(&other_hash)
    .execute(&app.pool)
    .await
    .unwrap();
    assert!(code_kept(&app, id).await);
    let hashed = hashes(&app).await;

    let third = app.requested("signup").await;
    assert_eq!(third["sends"], 3);
    let resent = app.last_code_to(PHONE_DIGITS);
    assert_ne!(resent, first_code, "not the stale code");
    assert_eq!(hashes(&app).await, hashed + 1.0, "a new code");
    assert!(code_kept(&app, id).await, "the new code is kept");
    assert_eq!(app.verify(json!({"id": id, "code": resent})).await.status(), 200);
}

/// The attempt reserved as the last one allowed, given back unjudged (no
/// hashing thread free: `503`), leaves the verification waiting for the same
/// code, which a resend still sends; only a judged attempt that locks it
/// erases the kept code.
#[tokio::test]
async fn a_last_attempt_given_back_unjudged_keeps_the_code() {
    let app = spawn_app_with(|s| s.policy.resend_cooldown_seconds = 0).await;
    let first = app.requested("signup").await;
    let first_code = app.last_code_to(PHONE_DIGITS);
    let id = first["id"].as_str().unwrap();
    sqlx::query("update verifications set failed_attempts = max_attempts - 1 where id = $1::uuid")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let client: uuid::Uuid = sqlx::query_scalar("select client_id from verifications where id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // What verify does when the hash finds no free thread: the attempt
    // reserved, then given back.
    let hit: Option<i64> = sqlx::query_scalar(
        "select hit_id from reserve_attempt($1::uuid, $2, 'test:', '{100}'::int[], '{1 hour}'::interval[])",
    )
    .bind(id)
    .bind(client)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(hit.is_some(), "reserved");
    assert!(code_kept(&app, id).await, "kept while the attempt is not judged");
    let mut tx = app.pool.begin().await.unwrap();
    let vid = otp_service::domain::VerificationId(id.parse().unwrap());
    otp_service::store::verifications::give_back_attempt(&mut tx, vid)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let second = app.requested("signup").await;
    assert_eq!(second["sends"], 2);
    assert_eq!(app.last_code_to(PHONE_DIGITS), first_code, "the same code");
    assert_eq!(
        app.verify(json!({"id": id, "code": first_code})).await.status(),
        200
    );
}
