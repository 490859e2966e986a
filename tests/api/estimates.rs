//! `estimated_send_at`: when a waiting message should go out, as admission
//! reckoned it from the keys' windows and the client's place in the fair
//! order; the figure the request was admitted by, shown until the message
//! goes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;

/// One key at 30 a minute spread over the minute (the default burst: 8 in
/// any 15 s), and codes living 5 minutes.
fn one_paced_key(s: &mut otp_service::config::Settings) {
    s.gateway.rate_per_minute = 30;
    s.gateway.burst = None;
    s.policy.ttl_seconds = 300;
    s.policy.client_max_queued = 1000;
}

async fn client(app: &TestApp, name: &str) -> String {
    let key = otp_service::clients::add(&app.pool, name, None).await.unwrap();
    key.expose_secret().to_owned()
}

async fn accepted(response: Response) -> Value {
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

async fn ask(app: &TestApp, key: &str, n: usize) -> Value {
    accepted(
        app.post_as(key, "/otp/request", &json!({"phone": nth_phone(n)}))
            .await,
    )
    .await
}

async fn read(app: &TestApp, key: &str, id: &str) -> Value {
    let response = app
        .http
        .get(format!("{}/otp/{id}", app.address))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn time(v: &Value, field: &str) -> Option<DateTime<Utc>> {
    v[field].as_str().map(|t| t.parse().unwrap())
}

/// Seconds from `a` to `b`.
fn seconds(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).as_seconds_f64()
}

#[tokio::test]
async fn at_the_back_of_a_queue_of_40_the_estimate_is_when_the_gateway_gets_the_message() {
    let app = spawn_app_with(one_paced_key).await;
    let a = client(&app, "first").await;
    let b = client(&app, "second").await;
    // One request after the other: A's first 8 go at once (the key's burst)
    // and its other 12 wait; B's 20 then join them in the fair order, the
    // last of B's the 40th message to go out, behind 32 waiting.
    let mut answers = Vec::new();
    for n in 0..20 {
        answers.push(ask(&app, &a, n).await);
    }
    for n in 0..20 {
        answers.push(ask(&app, &b, 100 + n).await);
    }
    for v in &answers {
        if let Some(at) = time(v, "estimated_send_at") {
            assert!(at < time(v, "expires_at").unwrap(), "{v}");
        }
    }
    let last = answers.last().unwrap();
    let estimated = time(last, "estimated_send_at").expect("the last message waits");
    let id = last["id"].as_str().unwrap();
    let waiting = read(&app, &b, id).await;
    assert_eq!(waiting["delivery_status"], "queued");
    assert_eq!(
        time(&waiting, "estimated_send_at"),
        Some(estimated),
        "read while it waits, the figure it was admitted by"
    );

    let number = &nth_phone(119)[1..];
    let received = || app.fake.messages().into_iter().find(|m| m.number == number);
    app.wait_for(
        "B's last message at the gateway",
        Duration::from_secs(150),
        || async { received().is_some() },
    )
    .await;
    let received = received().unwrap().received_at;
    let off = seconds(estimated, received);
    println!(
        "estimated {:.1} s after it was asked, received {off:+.1} s from the estimate",
        seconds(time(last, "created_at").unwrap(), estimated)
    );
    assert!(off.abs() < 3.0, "estimated {estimated}, received {received}");

    app.wait_for(
        "B's last message recorded as sent",
        Duration::from_secs(10),
        || async { read(&app, &b, id).await["delivery_status"] == "sent" },
    )
    .await;
    let sent = read(&app, &b, id).await;
    assert!(sent["estimated_send_at"].is_null(), "{sent}");
}

#[tokio::test]
async fn a_waiting_message_whose_estimate_passed_says_now_and_a_sent_one_says_nothing() {
    let app = spawn_app().await;
    app.fake.set_down(true);
    let v = accepted(app.request_code(json!({"phone": PHONE})).await).await;
    assert_eq!(v["delivery_status"], "queued");
    let created = time(&v, "created_at").unwrap();
    // An idle key: it should have gone at once, and the gateway is down.
    let estimated = time(&v, "estimated_send_at").expect("it waits");
    assert!(seconds(created, estimated).abs() < 1.0, "{v}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let asked = Utc::now();
    let later = app.verification(v["id"].as_str().unwrap()).await;
    assert_eq!(later["delivery_status"], "queued");
    let now = time(&later, "estimated_send_at").expect("it still waits");
    assert!(seconds(asked, now) > -0.5, "now, not in the past: {later}");

    app.fake.set_down(false);
    let sent = app
        .wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(60))
        .await;
    assert!(sent["estimated_send_at"].is_null(), "{sent}");
}

#[tokio::test]
async fn a_waiting_message_queued_without_an_estimate_shows_none() {
    let app = spawn_app().await;
    app.fake.set_down(true);
    let v = accepted(app.request_code(json!({"phone": PHONE})).await).await;
    assert_eq!(v["delivery_status"], "queued");
    let id = v["id"].as_str().unwrap();
    // As a message queued before V21 stored estimates.
    sqlx::query("update outbox_messages set estimated_send_at = null where verification_id = $1::uuid")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    let read = app.verification(id).await;
    assert_eq!(read["delivery_status"], "queued");
    assert!(
        read["estimated_send_at"].is_null(),
        "not the time of the read: {read}"
    );
}
