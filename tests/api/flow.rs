//! The main path: request, read the code from the gateway, verify; resends
//! (what they send is in resends.rs); cancel.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn request_deliver_verify_and_verify_again() {
    let app = spawn_app().await;

    let response = app
        .request_code(json!({"phone": "+591 696-57008", "purpose": "signup"}))
        .await;
    assert_eq!(response.status(), 202);
    let v: serde_json::Value = response.json().await.unwrap();
    assert_eq!(v["phone"], PHONE);
    assert_eq!(v["purpose"], "signup");
    assert_eq!(v["locale"], "es");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["delivery_status"], "sent");
    assert_eq!(v["attempts_remaining"], 5);
    assert_eq!(v["sends"], 1);
    assert!(v["verified_at"].is_null());
    assert!(v.get("code").is_none());

    // Exactly the Spanish text, to the gateway's digits-only number.
    let messages = app.fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].number, PHONE_DIGITS);
    let code = code_in(&messages[0]);
    assert_eq!(code.len(), 6);
    assert_eq!(
        messages[0].message,
        format!("Tu código de verificación es *{code}*. Por tu seguridad, no lo compartas")
    );

    let id = v["id"].as_str().unwrap();
    let response = app.verify(json!({"id": id, "code": code})).await;
    assert_eq!(response.status(), 200);
    let approved: serde_json::Value = response.json().await.unwrap();
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["attempts_remaining"], 5);
    assert!(approved["verified_at"].is_string());
    assert!(approved["resend_available_at"].is_null());

    let again = problem(
        app.verify(json!({"id": id, "code": code})).await,
        409,
        "not_pending",
    )
    .await;
    assert_eq!(again["status_detail"], "approved");
    assert_eq!(app.verification(id).await["status"], "approved");

    // The message text (which holds the code) is erased once sent.
    let body: Option<Vec<u8>> = sqlx::query_scalar("select body_sealed from outbox_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(body.is_none());
    let rows: Vec<String> = sqlx::query_scalar(
        "select (to_jsonb(v) - 'code_hash')::text from verifications v
         union all select to_jsonb(m)::text from outbox_messages m",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(rows.iter().all(|r| !r.contains(&code)));
}

#[tokio::test]
async fn verify_by_phone_and_purpose_keeps_purposes_apart() {
    let app = spawn_app().await;
    app.requested("signup").await;
    let signup_code = app.last_code_to(PHONE_DIGITS);
    app.requested("login").await;
    let login_code = app.last_code_to(PHONE_DIGITS);

    if signup_code != login_code {
        problem(
            app.verify(json!({"phone": PHONE, "purpose": "login", "code": signup_code}))
                .await,
            422,
            "invalid_code",
        )
        .await;
    }
    let response = app
        .verify(json!({"phone": "591 69657008", "purpose": "signup", "code": signup_code}))
        .await;
    assert_eq!(response.status(), 200);
    problem(
        app.verify(json!({"phone": PHONE, "purpose": "signup", "code": signup_code}))
            .await,
        404,
        "not_found",
    )
    .await;
    problem(
        app.verify(json!({"phone": PHONE, "purpose": "other", "code": login_code}))
            .await,
        404,
        "not_found",
    )
    .await;
    let response = app
        .verify(json!({"phone": PHONE, "purpose": "login", "code": login_code}))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn resends_wait_for_the_cooldown() {
    let app = spawn_app().await;
    let first = app.requested("signup").await;
    let body = problem(
        app.request_code(json!({"phone": PHONE, "purpose": "signup"}))
            .await,
        429,
        "resend_too_soon",
    )
    .await;
    let retry_after = body["retry_after"].as_u64().unwrap();
    assert!((29..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(body["id"], first["id"]);
    assert_eq!(app.fake.messages().len(), 1);
}

#[tokio::test]
async fn sends_per_verification_are_limited() {
    let app = spawn_app_with(|s| {
        s.policy.resend_cooldown_seconds = 0;
        s.policy.max_sends = 2;
    })
    .await;
    app.requested("signup").await;
    let second = app.requested("signup").await;
    assert!(second["resend_available_at"].is_null());
    let body = problem(
        app.request_code(json!({"phone": PHONE, "purpose": "signup"}))
            .await,
        429,
        "rate_limited",
    )
    .await;
    assert!(
        body["retry_after"].as_u64().unwrap() > 500,
        "until the verification expires"
    );
    assert_eq!(app.fake.messages().len(), 2);
}

#[tokio::test]
async fn expired_codes_are_refused_and_a_new_request_starts_over() {
    let app = spawn_app().await;
    let first = app.requested("signup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    let id = first["id"].as_str().unwrap();
    // The clock cannot be moved, so the code's expiry is.
    sqlx::query("update verifications set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.verification(id).await["status"], "expired");
    problem(app.verify(json!({"id": id, "code": code})).await, 410, "expired").await;
    problem(
        app.verify(json!({"phone": PHONE, "purpose": "signup", "code": code}))
            .await,
        404,
        "not_found",
    )
    .await;

    let second = app.requested("signup").await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(second["sends"], 1);
    let response = app
        .verify(json!({"id": second["id"], "code": app.last_code_to(PHONE_DIGITS)}))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cancel_stops_a_pending_verification() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    let id = v["id"].as_str().unwrap();

    let response = app.post(&format!("/otp/{id}/cancel"), &json!({})).await;
    assert_eq!(response.status(), 200);
    let canceled: serde_json::Value = response.json().await.unwrap();
    assert_eq!(canceled["status"], "canceled");

    let again = problem(
        app.post(&format!("/otp/{id}/cancel"), &json!({})).await,
        409,
        "not_pending",
    )
    .await;
    assert_eq!(again["status_detail"], "canceled");
    problem(
        app.verify(json!({"id": id, "code": code})).await,
        409,
        "not_pending",
    )
    .await;
    problem(
        app.post(&format!("/otp/{}/cancel", uuid::Uuid::now_v7()), &json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn locales_choose_the_message_text() {
    let app =
        spawn_app_with(|s| s.policy.template_pt = Some("Código {code}, válido {minutes} min".into())).await;
    let v = app
        .request_code(json!({"phone": PHONE, "purpose": "a", "locale": "en"}))
        .await;
    assert_eq!(v.status(), 202);
    let en = app.fake.last_message_to(PHONE_DIGITS).unwrap();
    assert!(
        en.message.starts_with("Your verification code is *"),
        "{}",
        en.message
    );

    app.request_code(json!({"phone": PHONE, "purpose": "b", "locale": "pt"}))
        .await;
    let pt = app.fake.last_message_to(PHONE_DIGITS).unwrap();
    assert!(
        pt.message.starts_with("Código ") && pt.message.ends_with(", válido 10 min"),
        "{}",
        pt.message
    );
}

#[tokio::test]
async fn national_numbers_read_with_a_country() {
    let app = spawn_app().await;
    let response = app
        .request_code(json!({"phone": "696 57008", "country": "BO"}))
        .await;
    assert_eq!(response.status(), 202);
    let v: serde_json::Value = response.json().await.unwrap();
    assert_eq!(v["phone"], PHONE);
    assert_eq!(v["purpose"], "default");
}
