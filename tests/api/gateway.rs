//! Delivery that respects the gateway: keys out of service, the shared per-key
//! rate, admission control, and the admin endpoints.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::*;

fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.http
        .request(method, format!("{}/admin{path}", app.address))
        .header("X-Admin-Key", "admin-key-for-tests-admin-key-for-tests")
}

#[tokio::test]
async fn an_ended_session_moves_messages_to_the_other_key_until_resumed() {
    let app = spawn_app_with(|s| {
        two_keys(s);
        s.admin_key = Some("admin-key-for-tests-admin-key-for-tests".to_owned().into());
    })
    .await;
    app.fake.set_session_ended(0, true);
    for n in 0..4 {
        let v = app.request_code(json!({"phone": nth_phone(n)})).await;
        assert_eq!(v.status(), 202);
        let v: Value = v.json().await.unwrap();
        app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
            .await;
    }
    assert!(app.fake.messages().iter().all(|m| m.sender == 1));
    let ended_calls = app.fake.calls().iter().filter(|c| c.sender == Some(0)).count();
    assert_eq!(ended_calls, 1, "an ended key is not tried again");

    let report: Value = admin(&app, reqwest::Method::GET, "/senders")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["senders"][0]["name"], "sender-1");
    assert_eq!(report["senders"][0]["state"], "session_ended");
    assert_eq!(report["senders"][0]["last_error"], "session_ended");
    assert_eq!(report["senders"][1]["state"], "ok");
    assert_eq!(report["senders"][1]["sent_last_minute"], 4);
    assert_eq!(report["queue_depth"], 0);
    assert!(!report.to_string().contains(GATEWAY_KEYS[0]) && !report.to_string().contains(GATEWAY_KEYS[1]));

    // Re-linked: resume, and the key carries messages again.
    app.fake.set_session_ended(0, false);
    let resumed = admin(&app, reqwest::Method::POST, "/senders/sender-1/resume")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    for n in 4..8 {
        assert_eq!(
            app.request_code(json!({"phone": nth_phone(n)})).await.status(),
            202
        );
    }
    app.wait_for("both keys to send", Duration::from_secs(10), || async {
        app.fake.messages().iter().any(|m| m.sender == 0)
    })
    .await;
}

#[tokio::test]
async fn with_no_key_in_service_requests_get_503_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.fake.set_session_ended(0, true);
    // The first request finds out the hard way: its message fails with the key.
    let first = app.request_code(json!({"phone": nth_phone(0)})).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let failed = app
        .wait_for_delivery(first["id"].as_str().unwrap(), "failed", Duration::from_secs(10))
        .await;
    assert_eq!(failed["delivery_error"], "session_ended");
    assert_eq!(failed["status"], "failed");

    let body = problem(
        app.request_code(json!({"phone": nth_phone(1)})).await,
        503,
        "delivery_unavailable",
    )
    .await;
    assert!(body["retry_after"].as_u64().unwrap() >= 1);
    let count = app.verification_count().await;
    assert_eq!(count, 1, "nothing stored for the refused request");
}

#[tokio::test]
async fn a_backlog_drains_within_the_rate_without_a_single_429() {
    let app = spawn_app_with(|s| {
        two_keys(s);
        s.gateway.rate_per_minute = 600;
        s.policy.client_max_queued = 1000;
    })
    .await;
    app.fake.set_down(true);
    let answers = join_all((0..200).map(|n| app.request_code(json!({"phone": nth_phone(n)})))).await;
    let mut others = Vec::new();
    for answer in answers.into_iter().filter(|r| r.status() != 202) {
        others.push((answer.status(), answer.text().await.unwrap_or_default()));
    }
    // It failed once on a loaded machine, one answer in 200: say which.
    assert!(others.is_empty(), "answers other than 202: {others:?}");
    app.fake.set_down(false);
    app.wait_for("200 messages delivered", Duration::from_secs(60), || async {
        app.fake.messages().len() >= 200
    })
    .await;

    let messages = app.fake.messages();
    assert_eq!(
        distinct_numbers(&app.fake),
        200,
        "each message delivered exactly once"
    );
    assert!(
        app.fake.calls().iter().all(|c| c.status != 429),
        "the gateway never had to say 429"
    );
    assert!(busiest_minute(&app.fake) <= 600);
    assert!(messages.iter().any(|m| m.sender == 0) && messages.iter().any(|m| m.sender == 1));
}

#[tokio::test]
async fn the_rate_limit_holds_when_it_binds() {
    let app = spawn_app_with(|s| s.gateway.rate_per_minute = 5).await;
    let answers = join_all((0..7).map(|n| app.request_code(json!({"phone": nth_phone(n)})))).await;
    assert!(answers.iter().all(|r| r.status() == 202));
    // Five go at once; two wait for the window to move on (a minute, plus a margin).
    app.wait_for("the first five", Duration::from_secs(10), || async {
        app.fake.messages().len() == 5
    })
    .await;
    app.wait_for("all seven", Duration::from_secs(75), || async {
        app.fake.messages().len() == 7
    })
    .await;
    let messages = app.fake.messages();
    assert!(messages[5].received_at - messages[0].received_at >= chrono::Duration::seconds(60));
    assert!(busiest_minute(&app.fake) <= 5);
    assert!(app.fake.calls().iter().all(|c| c.status != 429));
}

#[tokio::test]
async fn admission_control_refuses_codes_that_could_not_arrive_in_time() {
    let app = spawn_app_with(|s| {
        s.gateway.rate_per_minute = 2;
        s.policy.ttl_seconds = 30;
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let response = app.request_code(json!({"phone": nth_phone(n)})).await;
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            let body = problem(response, 503, "delivery_unavailable").await;
            assert!(body["retry_after"].as_u64().unwrap() >= 1);
        }
    }
    assert_eq!(statuses, [202, 202, 503, 503, 503]);
    let count = app.verification_count().await;
    assert_eq!(count, 2);
    assert_eq!(app.fake.messages().len(), 2);
}

#[tokio::test]
async fn message_texts_are_sealed_while_they_wait() {
    let app = spawn_app().await;
    app.fake.set_down(true);
    app.requested("signup").await;
    let sealed: Vec<u8> = sqlx::query_scalar("select body_sealed from outbox_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Random bytes may hold any one character; a run of the text's words would be no accident.
    for plain in ["código", "verificación", "compartas"] {
        assert!(
            !sealed.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} readable at rest"
        );
    }
    app.fake.set_down(false);
    let code = {
        app.wait_for("delivery", Duration::from_secs(10), || async {
            !app.fake.messages().is_empty()
        })
        .await;
        app.last_code_to(PHONE_DIGITS)
    };
    assert!(!sealed.windows(code.len()).any(|w| w == code.as_bytes()));
}

#[tokio::test]
async fn admin_endpoints_are_off_without_a_key_and_closed_to_wrong_keys() {
    let off = spawn_app().await;
    let response = admin(&off, reqwest::Method::GET, "/senders")
        .send()
        .await
        .unwrap();
    problem(response, 404, "not_found").await;

    let app =
        spawn_app_with(|s| s.admin_key = Some("admin-key-for-tests-admin-key-for-tests".to_owned().into()))
            .await;
    for key in [None, Some("wrong")] {
        let mut request = app.http.get(format!("{}/admin/senders", app.address));
        if let Some(key) = key {
            request = request.header("X-Admin-Key", key);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        problem(response, 401, "unauthorized").await;
    }
    // The client API key is not an admin key.
    let response = app
        .http
        .get(format!("{}/admin/senders", app.address))
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    problem(response, 401, "unauthorized").await;
    // A browser sends the key as Basic credentials.
    let response = app
        .http
        .get(format!("{}/admin/senders/sender-1/qr", app.address))
        .basic_auth("operator", Some("admin-key-for-tests-admin-key-for-tests"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("data:image/png;base64,"));
    problem(
        admin(&app, reqwest::Method::GET, "/senders/nobody/qr")
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_qr_code_comes_from_the_gateway() {
    let app =
        spawn_app_with(|s| s.admin_key = Some("admin-key-for-tests-admin-key-for-tests".to_owned().into()))
            .await;
    let response = admin(&app, reqwest::Method::GET, "/senders/sender-1/qr.png")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert!(response.bytes().await.unwrap().starts_with(b"\x89PNG"));

    let no_token = spawn_app_with(|s| {
        s.admin_key = Some("admin-key-for-tests-admin-key-for-tests".to_owned().into());
        s.gateway.container_tokens = None;
    })
    .await;
    let response = admin(&no_token, reqwest::Method::GET, "/senders/sender-1/qr.png")
        .send()
        .await
        .unwrap();
    problem(response, 503, "qr_unavailable").await;
}
