//! Delivery through the outbox against the fake gateway over HTTP.

use std::time::Duration;

use otp_service::delivery::fake_gateway::Scripted;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::*;

#[sqlx::test(migrations = false)]
async fn a_busy_gateway_means_queued_then_sent_in_the_background(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app(db).await;
    app.fake.script([Scripted::Unavailable]);
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "queued");
    let id = v["id"].as_str().unwrap();

    app.wait_for_delivery(id, "sent", Duration::from_secs(10)).await;
    let calls = app.fake.calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [503, 200]);
    assert_eq!(app.fake.messages().len(), 1);
    let response = app
        .verify(json!({"id": id, "code": app.last_code_to(PHONE_DIGITS)}))
        .await;
    assert_eq!(response.status(), 200);
}

#[sqlx::test(migrations = false)]
async fn a_429_is_retried_no_sooner_than_retry_after(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app(db).await;
    app.fake
        .script([Scripted::TooManyRequests { retry_after: Some(1) }]);
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "queued");
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
        .await;
    let calls = app.fake.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls[1].at - calls[0].at >= Duration::from_secs(1));
}

#[sqlx::test(migrations = false)]
async fn a_slow_gateway_does_not_hold_the_request(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app_with(db, |s| s.send_wait_ms = 200).await;
    app.fake.script([Scripted::Delay(Duration::from_millis(1500))]);
    let started = std::time::Instant::now();
    let v = app.requested("signup").await;
    assert!(started.elapsed() < Duration::from_millis(1400));
    assert!(
        ["queued", "sending"].contains(&v["delivery_status"].as_str().unwrap()),
        "{v}"
    );
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
        .await;
    // The slow send was not cut short and repeated.
    assert_eq!(app.fake.calls().len(), 1);
    assert_eq!(app.fake.messages().len(), 1);
}

#[sqlx::test(migrations = false)]
async fn a_number_the_gateway_refuses_fails_the_verification(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app(db).await;
    app.fake.reject_number(PHONE_DIGITS);
    let body = problem(
        app.request_code(json!({"phone": PHONE, "purpose": "signup"}))
            .await,
        422,
        "phone_rejected",
    )
    .await;
    let id = body["id"].as_str().unwrap();
    let v = app.verification(id).await;
    assert_eq!(v["status"], "failed");
    assert_eq!(v["delivery_status"], "failed");
    assert_eq!(v["delivery_error"], "phone_rejected");
    assert_eq!(app.fake.calls().len(), 1, "no retry after Invalid phone number");
    problem(
        app.verify(json!({"id": id, "code": "123456"})).await,
        409,
        "not_pending",
    )
    .await;
}

#[sqlx::test(migrations = false)]
async fn an_ended_session_moves_messages_to_the_other_key(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app_with(db, |s| {
        s.gateway.api_keys = Some(otp_service::config::SecretList(
            GATEWAY_KEYS.iter().map(|k| k.to_string().into()).collect(),
        ))
    })
    .await;
    app.fake.set_session_ended(0, true);
    for purpose in ["a", "b", "c"] {
        let v = app.requested(purpose).await;
        app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
            .await;
    }
    assert!(app.fake.messages().iter().all(|m| m.sender == 1));
    let ready: serde_json::Value = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["senders"][0]["state"], "session_ended");
    assert_eq!(ready["senders"][1]["state"], "ok");
}

#[sqlx::test(migrations = false)]
async fn nothing_is_sent_after_the_code_expired(_: PgPoolOptions, db: PgConnectOptions) {
    let app = spawn_app(db).await;
    // The gateway stays down, so the message is still queued when its code expires.
    app.fake.script(std::iter::repeat_n(Scripted::Unavailable, 100));
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    sqlx::query("update outbox_messages set expires_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let v = app.wait_for_delivery(id, "failed", Duration::from_secs(10)).await;
    assert_eq!(v["delivery_error"], "expired_before_send");
    let calls = app.fake.calls().len();
    assert!(app.fake.messages().is_empty());
    let body: Option<String> = sqlx::query_scalar("select body from outbox_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(body.is_none());
    // And no attempt is made after it failed.
    let status: String = sqlx::query_scalar("select status from outbox_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    assert_eq!(app.fake.calls().len(), calls);
}
