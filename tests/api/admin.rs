//! The admin key as a real secret, and open endpoints that cannot starve the API.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::startup::Application;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_short_admin_key_is_refused_at_start() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url, "http://127.0.0.1:9");
    settings.admin_key = Some("admin-key-for-tests".to_owned().into());
    let refused = Application::build(settings, None).await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("OTP_ADMIN_KEY") && message.contains("32 bytes"),
        "{message}"
    );
    assert!(
        !message.contains("admin-key-for-tests"),
        "the secret is not printed"
    );
}

#[tokio::test]
async fn wrong_admin_keys_are_throttled_and_the_right_key_always_passes() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let senders = format!("{}/admin/senders", app.address);
    let with_key = |key: &str| {
        app.http
            .get(&senders)
            .header("X-Admin-Key", key.to_owned())
            .send()
    };
    // A browser's first request carries no credentials: that is no guess.
    for _ in 0..12 {
        assert_eq!(app.http.get(&senders).send().await.unwrap().status(), 401);
    }
    let answers =
        join_all((0..10).map(|n| with_key(if n % 2 == 0 { "guess" } else { "another-guess" }))).await;
    assert!(answers.iter().all(|a| a.as_ref().unwrap().status() == 401));
    problem(with_key("one-more-guess").await.unwrap(), 429, "rate_limited").await;
    // Every operator behind one TLS terminator shares this address: someone
    // else's wrong guesses never keep the right key out, by header or by Basic.
    assert_eq!(with_key(ADMIN_KEY).await.unwrap().status(), 200);
    let basic = app.http.get(&senders).basic_auth("operator", Some(ADMIN_KEY));
    assert_eq!(basic.send().await.unwrap().status(), 200);
    let resumed = app
        .http
        .post(format!("{senders}/sender-1/resume"))
        .header("X-Admin-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    // While wrong keys from there are still refused, and a missing one is
    // still asked for.
    problem(with_key("guess").await.unwrap(), 429, "rate_limited").await;
    assert_eq!(app.http.get(&senders).send().await.unwrap().status(), 401);
    // The state-changing calls still refuse another origin's page.
    let evil = app
        .http
        .post(format!("{senders}/sender-1/resume"))
        .header("X-Admin-Key", ADMIN_KEY)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    problem(evil, 403, "cross_origin").await;
    // The API itself is not touched by it.
    assert_eq!(app.requested("signup").await["status"], "pending");
}

#[tokio::test]
async fn resume_refuses_a_browser_request_from_another_origin() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let resume = format!("{}/admin/senders/sender-1/resume", app.address);
    let host = app.address.trim_start_matches("http://").to_owned();
    let post = |header: Option<(&'static str, String)>| {
        let mut request = app.http.post(&resume).basic_auth("operator", Some(ADMIN_KEY));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send()
    };
    let evil = post(Some(("Origin", "https://evil.example".into())))
        .await
        .unwrap();
    problem(evil, 403, "cross_origin").await;
    let evil = post(Some(("Referer", "https://evil.example/page".into())))
        .await
        .unwrap();
    problem(evil, 403, "cross_origin").await;
    let null = post(Some(("Origin", "null".into()))).await.unwrap();
    problem(null, 403, "cross_origin").await;
    // The QR page's own button, and callers that are not browsers.
    let own = post(Some(("Origin", format!("http://{host}")))).await.unwrap();
    assert_eq!(own.status(), 200);
    let own = post(Some((
        "Referer",
        format!("http://{host}/admin/senders/sender-1/qr"),
    )))
    .await;
    assert_eq!(own.unwrap().status(), 200);
    assert_eq!(post(None).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_flood_of_metrics_and_readiness_leaves_the_api_answering() {
    let app = spawn_app().await;
    let flood_until = Instant::now() + Duration::from_secs(4);
    let flood = (0..64).map(|n| {
        let (http, address) = (app.http.clone(), app.address.clone());
        let path = if n % 2 == 0 { "/metrics" } else { "/readyz" };
        tokio::spawn(async move {
            let mut answered = 0;
            while Instant::now() < flood_until {
                if http.get(format!("{address}{path}")).send().await.is_ok() {
                    answered += 1;
                }
            }
            answered
        })
    });
    let flood: Vec<_> = flood.collect();
    for n in 0..5 {
        let started = Instant::now();
        let response = app.request_code(json!({"phone": nth_phone(n)})).await;
        assert_eq!(response.status(), 202);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // They draw on two connections of their own, never on the API's.
    let ops: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and application_name = 'otp-service-ops'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(ops <= 2, "{ops} connections for the open endpoints");
    let answered: u32 = join_all(flood).await.into_iter().map(Result::unwrap).sum();
    assert!(answered > 64, "the flood was served too: {answered}");
}
