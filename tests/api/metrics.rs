//! `GET /metrics`: present, moving with a flow, and free of phones, codes and ids.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn metrics_move_with_a_flow_and_name_no_phone_code_or_id() {
    let app = spawn_app().await;
    assert_eq!(
        metric_with(&app, "otp_verifications_total", &[("event", "created")]).await,
        0.0
    );

    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap().to_owned();
    let code = app.last_code_to(PHONE_DIGITS);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    problem(
        app.verify(json!({"id": id, "code": wrong})).await,
        422,
        "invalid_code",
    )
    .await;
    assert_eq!(app.verify(json!({"id": id, "code": code})).await.status(), 200);

    let moved = [
        ("otp_verifications_total", vec![("event", "created")], 1.0),
        ("otp_verifications_total", vec![("event", "approved")], 1.0),
        ("otp_verify_outcomes_total", vec![("code", "invalid_code")], 1.0),
        ("otp_verify_outcomes_total", vec![("code", "approved")], 1.0),
        (
            "otp_messages_total",
            vec![("result", "sent"), ("class", "ok")],
            1.0,
        ),
        ("otp_hash_duration_seconds_count", vec![("op", "hash")], 1.0),
        ("otp_hash_duration_seconds_count", vec![("op", "verify")], 2.0),
        (
            "otp_http_requests_total",
            vec![("route", "/otp/request"), ("method", "POST"), ("status", "202")],
            1.0,
        ),
        (
            "otp_http_request_duration_seconds_count",
            vec![("route", "/otp/verify"), ("method", "POST")],
            2.0,
        ),
        (
            "otp_sender_state",
            vec![("sender", "sender-1"), ("state", "ok")],
            1.0,
        ),
        (
            "otp_sender_state",
            vec![("sender", "sender-1"), ("state", "session_ended")],
            0.0,
        ),
        ("otp_sender_sent_last_minute", vec![("sender", "sender-1")], 1.0),
        ("otp_db_pool_connections", vec![("state", "max")], 20.0),
        ("otp_outbox_depth", vec![], 0.0),
    ];
    for (name, labels, expected) in &moved {
        assert_eq!(
            metric_with(&app, name, labels).await,
            *expected,
            "{name} {labels:?}"
        );
    }

    // Five wrong codes lock a verification: counted once, with each outcome.
    let v = app.requested("login").await;
    let id = v["id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.verify(json!({"id": id, "code": "12"})).await;
    }
    problem(
        app.verify(json!({"id": id, "code": "12"})).await,
        429,
        "max_attempts_reached",
    )
    .await;
    assert_eq!(
        metric_with(&app, "otp_verifications_total", &[("event", "locked")]).await,
        1.0
    );
    assert_eq!(
        metric_with(
            &app,
            "otp_verify_outcomes_total",
            &[("code", "max_attempts_reached")]
        )
        .await,
        1.0
    );

    // A gateway that is down: the message waits, is retried, and the queue shows it.
    app.fake.set_down(true);
    let v = app
        .request_code(json!({"phone": nth_phone(1)}))
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(v["delivery_status"], "queued");
    assert_eq!(metric(&app, "otp_outbox_depth").await, 1.0);
    assert!(metric(&app, "otp_outbox_oldest_age_seconds").await >= 0.0);
    assert!(metric_with(&app, "otp_messages_total", &[("result", "retried")]).await >= 1.0);
    app.fake.set_down(false);
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(10))
        .await;
    assert_eq!(metric(&app, "otp_outbox_depth").await, 0.0);

    // Answers given by middleware count too: a missing key, a client over its limit.
    let unauthorized = app
        .http
        .post(format!("{}/otp/request", app.address))
        .json(&json!({"phone": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let labels = [("route", "/otp/request"), ("method", "POST"), ("status", "401")];
    assert_eq!(metric_with(&app, "otp_http_requests_total", &labels).await, 1.0);
    app.changing_clients(otp_service::clients::set_requests_per_minute(
        &app.pool,
        "test-client",
        Some(1),
    ))
    .await
    .unwrap();
    app.get(&format!("/otp/{id}")).await;
    problem(app.get(&format!("/otp/{id}")).await, 429, "rate_limited").await;
    let labels = [("route", "/otp/{id}"), ("method", "GET"), ("status", "429")];
    assert!(metric_with(&app, "otp_http_requests_total", &labels).await >= 1.0);
    // Made-up methods share one label value.
    let odd = reqwest::Method::from_bytes(b"FROBNICATE").unwrap();
    app.http
        .request(odd, format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    let text_now = metrics_text(&app).await;
    assert!(!text_now.contains("FROBNICATE") && text_now.contains("method=\"other\""));
    assert_eq!(metric(&app, "otp_database_up").await, 1.0);

    // Nothing that identifies a person or a code is in any label.
    let text = metrics_text(&app).await;
    assert!(text.contains("# TYPE otp_http_requests_total counter"));
    assert!(!text.contains(PHONE_DIGITS) && !text.contains(&nth_phone(1)[1..]));
    assert!(!text.contains(&id) && !text.contains(&format!("\"{code}\"")));
}

#[tokio::test]
async fn with_metrics_listen_metrics_are_served_only_on_their_own_port() {
    let app = spawn_app_with(|s| s.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_ne!(app.metrics_address, app.address);
    assert_eq!(app.requested("signup").await["status"], "pending");

    // The API port no longer shows clients' names and volumes, to any method.
    let on_api = app.get_open("/metrics").await;
    problem(on_api, 404, "not_found").await;
    let posted = app
        .http
        .post(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);

    // Its own port serves them, the clients' labels and the API's traffic included.
    let text = metrics_text(&app).await;
    assert!(text.contains("client=\"test-client\""), "{text}");
    let labels = [("route", "/metrics"), ("method", "GET"), ("status", "404")];
    assert_eq!(metric_with(&app, "otp_http_requests_total", &labels).await, 1.0);
    // And nothing else: the API is not reachable through it.
    for path in ["/healthz", "/otp/request", "/admin/senders", "/docs/"] {
        let answer = app
            .http
            .get(format!("{}{path}", app.metrics_address))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
}
