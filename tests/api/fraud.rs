//! Prefixes blocked or allowed by hand: refused at once on every replica,
//! whatever the fraud mode, never a test number nor an allowed prefix.

use std::process::Output;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, admin_app, json_of};
use crate::helpers::*;

pub(crate) fn fraud(app: &TestApp, args: &[&str]) -> Output {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .arg("fraud")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "fraud {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) async fn refused_as_fraud(response: reqwest::Response) -> Value {
    let retry_after = response.headers().get("retry-after").cloned();
    let body = problem(response, 429, "rate_limited").await;
    assert_eq!(body["reason"], "suspected_fraud", "{body}");
    assert_eq!(retry_after.unwrap(), body["retry_after"].to_string().as_str());
    body
}

#[tokio::test]
async fn a_blocked_prefix_is_refused_at_once_but_never_a_test_number_nor_an_allowed_prefix() {
    let app = admin_app().await;
    // PHONE is +591 69657008: blocked by +591696, allowed again by +59169657.
    app.changing_clients(async { fraud(&app, &["block", "+591696"]) })
        .await;
    let blocked = app.request_code(json!({"phone": PHONE})).await;
    let body = refused_as_fraud(blocked).await;
    assert_eq!(
        body["retry_after"], 86_400,
        "a block for good is looked at again in a day"
    );
    assert_eq!(app.verification_count().await, 0, "nothing stored");
    assert_eq!(app.fake.received(), 0, "nothing sent");
    assert_eq!(
        app.request_code(json!({"phone": "+59177712345"})).await.status(),
        202
    );

    // A test number under the blocked prefix is not asked.
    let numbers = "/clients/test-client/test-numbers";
    let test_number = "+59169600001";
    let added = admin(&app, Method::POST, numbers)
        .json(&json!({"phone": test_number, "code": "123456"}))
        .send();
    assert_eq!(app.changing_clients(added).await.unwrap().status(), 201);
    assert_eq!(
        app.request_code(json!({"phone": test_number})).await.status(),
        202
    );

    app.changing_clients(async { fraud(&app, &["allow", "+59169657"]) })
        .await;
    assert_eq!(app.request_code(json!({"phone": PHONE})).await.status(), 202);
    let listed = String::from_utf8_lossy(&fraud(&app, &["list"]).stdout).into_owned();
    assert!(listed.contains("+591696") && listed.contains("block"), "{listed}");
    // A block without an end is active: never listed as removed.
    let blocked = listed.lines().find(|l| l.starts_with("+591696 ")).unwrap();
    assert!(
        blocked.contains("no end") && !blocked.contains("removed by hand"),
        "{listed}"
    );
    assert!(
        listed.contains("+59169657") && listed.contains("allow"),
        "{listed}"
    );

    // A block with an end says how long to wait; an ended one says nothing.
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    app.changing_clients(async { fraud(&app, &["block", "+54", "--until", &until]) })
        .await;
    let body = refused_as_fraud(app.request_code(json!({"phone": "+5491123456789"})).await).await;
    let wait = body["retry_after"].as_u64().unwrap();
    assert!((7100..=7200).contains(&wait), "{wait}");
    app.changing_clients(async { fraud(&app, &["block", "+54", "--until", "2020-01-01"]) })
        .await;
    assert_eq!(
        app.request_code(json!({"phone": "+5491123456789"}))
            .await
            .status(),
        202
    );
    app.changing_clients(async { fraud(&app, &["remove", "+591696"]) })
        .await;
    assert_eq!(
        app.request_code(json!({"phone": "+59169600002"})).await.status(),
        202
    );
}

#[tokio::test]
async fn prefixes_are_managed_over_http() {
    let app = admin_app().await;
    let put = |prefix: &str, body: Value| {
        admin(&app, Method::PUT, &format!("/fraud/{prefix}"))
            .json(&body)
            .send()
    };
    let set = json_of(
        admin(&app, Method::PUT, "/fraud/%2B591696").json(&json!({"action": "block"})),
        200,
    )
    .await;
    assert_eq!(set["prefix"], "+591696");
    assert_eq!(set["action"], "block");
    // Told by notification, a moment after it commits.
    let start = Instant::now();
    for n in 0.. {
        // A new number each time: a second request for one would be a resend.
        let answer = app.request_code(json!({"phone": nth_phone(n)})).await;
        if answer.status() == 429 {
            refused_as_fraud(answer).await;
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the block took effect at once"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = json_of(admin(&app, Method::GET, "/fraud"), 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    for (prefix, body) in [
        ("0591", json!({"action": "block"})),
        ("591", json!({"action": "forget"})),
        ("591", json!({"action": "allow", "until": "2030-01-01T00:00:00Z"})),
        ("591", json!({"action": "block", "until": "2020-01-01T00:00:00Z"})),
    ] {
        problem(put(prefix, body).await.unwrap(), 400, "invalid_request").await;
    }
    let removed = admin(&app, Method::DELETE, "/fraud/591696").send().await.unwrap();
    assert_eq!(removed.status(), 204);
    let again = admin(&app, Method::DELETE, "/fraud/591696").send().await.unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn a_block_reaches_another_replica_at_once() {
    let app = spawn_app().await;
    let replica = ServiceProcess::start(&app, &[]).await;
    let body = json!({"phone": PHONE});
    assert_eq!(replica.request_code(&app, &body).await.status(), 202);
    fraud(&app, &["block", "591"]);
    let start = Instant::now();
    for n in 1.. {
        let answer = replica.request_code(&app, &json!({"phone": nth_phone(n)})).await;
        if answer.status() == 429 {
            refused_as_fraud(answer).await;
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the other replica refused within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_refusal_is_counted_with_its_reason() {
    let app = spawn_app_with(|s| s.policy.ip_requests_per_hour = 1).await;
    app.changing_clients(async { fraud(&app, &["block", "+591696"]) })
        .await;
    refused_as_fraud(app.request_code(json!({"phone": PHONE})).await).await;
    let ip = "198.51.100.4";
    let first = app
        .request_code(json!({"phone": "+51987654321", "end_user_ip": ip}))
        .await;
    assert_eq!(first.status(), 202);
    let second = app
        .request_code(json!({"phone": "+51987654322", "end_user_ip": ip}))
        .await;
    let body = problem(second, 429, "rate_limited").await;
    assert!(body.get("reason").is_none(), "a window is no fraud: {body}");
    problem(
        app.request_code(json!({"phone": "12"})).await,
        400,
        "invalid_phone",
    )
    .await;

    let refusals = |code: &'static str, reason: &'static str| {
        let labels = [("client", "test-client"), ("code", code), ("reason", reason)];
        let app = &app;
        async move { metric_with(app, "otp_request_refusals_total", &labels).await }
    };
    assert_eq!(refusals("rate_limited", "suspected_fraud").await, 1.0);
    assert_eq!(refusals("rate_limited", "end_user_ip").await, 1.0);
    assert_eq!(refusals("invalid_phone", "").await, 1.0);
    assert_eq!(metric(&app, "otp_request_refusals_total").await, 3.0);
}
