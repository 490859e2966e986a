//! Delivery through the outbox against the fake gateway over HTTP.

use std::time::Duration;

use otp_service::delivery::fake_gateway::Scripted;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_busy_gateway_is_retried_with_growing_gaps() {
    let app = spawn_app().await;
    app.fake.script([
        Scripted::Unavailable,
        Scripted::Unavailable,
        Scripted::Unavailable,
    ]);
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "queued");
    let id = v["id"].as_str().unwrap();

    app.wait_for_delivery(id, "sent", Duration::from_secs(20)).await;
    let calls = app.fake.calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [503, 503, 503, 200]
    );
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(450), "{gaps:?}");
    assert!(
        gaps[1] > gaps[0].mul_f64(0.9) && gaps[2] > gaps[1].mul_f64(0.9),
        "{gaps:?}"
    );
    assert!(gaps[2] >= Duration::from_millis(1900), "{gaps:?}");
    assert_eq!(app.fake.messages().len(), 1);
    let response = app
        .verify(json!({"id": id, "code": app.last_code_to(PHONE_DIGITS)}))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let app = spawn_app().await;
    app.fake
        .script([Scripted::TooManyRequests { retry_after: Some(2) }]);
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "queued");
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
        .await;
    let calls = app.fake.calls();
    assert_eq!(calls.iter().map(|c| c.status).collect::<Vec<_>>(), [429, 200]);
    assert!(calls[1].at - calls[0].at >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_slow_gateway_does_not_hold_the_request() {
    let app = spawn_app_with(|s| s.send_wait_ms = 200).await;
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

#[tokio::test]
async fn a_number_the_gateway_refuses_fails_the_verification() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn nothing_is_sent_after_the_code_expired() {
    let app = spawn_app().await;
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
    let body: Option<Vec<u8>> = sqlx::query_scalar("select body_sealed from outbox_messages")
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
