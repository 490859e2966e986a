//! API keys: missing, unknown and revoked keys get 401 and write nothing;
//! a client never sees another client's verifications.

use otp_service::clients;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

async fn nothing_written(app: &TestApp) {
    let count = app.verification_count().await;
    assert_eq!(count, 0);
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401() {
    let app = spawn_app().await;
    let body = json!({"phone": PHONE});

    let no_key = app
        .http
        .post(format!("{}/otp/request", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    problem(no_key, 401, "unauthorized").await;
    problem(
        app.post_as("otpk_not-a-key", "/otp/request", &body).await,
        401,
        "unauthorized",
    )
    .await;
    // Even a malformed body is answered 401 first.
    let no_key_bad_body = app
        .http
        .post(format!("{}/otp/verify", app.address))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(no_key_bad_body, 401, "unauthorized").await;

    let revoked = clients::add(&app.pool, "revoked", None).await.unwrap();
    clients::revoke(&app.pool, "revoked").await.unwrap();
    problem(
        app.post_as(revoked.expose_secret(), "/otp/request", &body).await,
        401,
        "unauthorized",
    )
    .await;
    nothing_written(&app).await;
}

#[tokio::test]
async fn a_client_sees_only_its_own_verifications() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    let other = clients::add(&app.pool, "other", None).await.unwrap();
    let other = other.expose_secret();

    let get = app
        .http
        .get(format!("{}/otp/{id}", app.address))
        .header("X-Api-Key", other)
        .send()
        .await
        .unwrap();
    let theirs = problem(get, 404, "not_found").await;
    let verify_theirs = problem(
        app.post_as(other, "/otp/verify", &json!({"id": id, "code": code}))
            .await,
        404,
        "not_found",
    )
    .await;
    // Word for word what an id that exists nowhere gets: nothing to enumerate.
    let nowhere = uuid::Uuid::now_v7();
    let get_nowhere = app
        .http
        .get(format!("{}/otp/{nowhere}", app.address))
        .header("X-Api-Key", other)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(get_nowhere, 404, "not_found").await, theirs);
    let verify_nowhere = app
        .post_as(other, "/otp/verify", &json!({"id": nowhere, "code": code}))
        .await;
    assert_eq!(problem(verify_nowhere, 404, "not_found").await, verify_theirs);
    problem(
        app.post_as(
            other,
            "/otp/verify",
            &json!({"phone": PHONE, "purpose": "signup", "code": code}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    problem(
        app.post_as(other, &format!("/otp/{id}/cancel"), &json!({})).await,
        404,
        "not_found",
    )
    .await;

    // Nothing the other client did counted against the owner's verification.
    let mine = app.verification(id).await;
    assert_eq!(mine["status"], "pending");
    assert_eq!(mine["attempts_remaining"], 5);
}
