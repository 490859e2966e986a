//! Signed webhooks: events in order per verification, signatures checked with
//! the Standard Webhooks reference library, retries with the same
//! `webhook-id`, a silent receiver harming no one, URLs that are refused.

use std::time::{Duration, Instant};

use otp_service::crypto::Peppers;
use otp_service::crypto::Sealer;
use otp_service::webhooks::{UrlPolicy, WebhookAdmin};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::webhook_receiver::{Answer, Receiver};

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn spawn() -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.retry_schedule = Some(otp_service::config::Schedule(vec![Duration::from_millis(200); 3]));
    })
    .await
}

fn admin(app: &TestApp) -> WebhookAdmin {
    let pepper = app.settings.pepper.clone().unwrap();
    let policy = UrlPolicy {
        allow_http: false,
        allow_private: true,
    };
    WebhookAdmin::new(
        app.pool.clone(),
        Sealer::new(&Peppers::new(pepper, vec![])),
        policy,
    )
}

/// Points `client`'s webhook at the receiver; returns its signing secret.
pub(crate) async fn webhook_for(app: &TestApp, client: &str, receiver: &Receiver) -> String {
    let secret = admin(app).set_url(client, &receiver.url).await.unwrap();
    secret
        .expect("a first URL makes a secret")
        .expose_secret()
        .to_owned()
}

pub(crate) async fn request(app: &TestApp, key: &str, phone: &str) -> Value {
    let response = app.post_as(key, "/otp/request", &json!({"phone": phone})).await;
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_flow_is_told_in_order_signed_and_without_its_code() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    let secret = webhook_for(&app, "test-client", &receiver).await;
    assert!(secret.starts_with("whsec_"));

    let sent = request(&app, &app.api_key, PHONE).await;
    let id = sent["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    let verified = app.verify(json!({"id": id, "code": code})).await;
    assert_eq!(verified.status(), 200);

    let got = receiver.wait_for(2, WAIT).await;
    let kinds: Vec<String> = got.iter().map(|r| r.kind()).collect();
    assert_eq!(kinds, ["verification.sent", "verification.approved"]);
    for event in &got {
        assert!(event.verifies_with(&secret), "signature of {}", event.body);
        assert!(event.id.starts_with("msg_"));
        assert_eq!(event.json()["data"]["id"], id);
        assert!(event.json()["timestamp"].is_string());
        assert!(!event.body.contains(&code), "a webhook never carries the code");
    }
    assert_ne!(got[0].id, got[1].id);
    assert_eq!(got[1].json()["data"]["status"], "approved");
    assert!(!got[0].verifies_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
}

#[tokio::test]
async fn locked_canceled_expired_and_failed_deliveries_are_told() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    webhook_for(&app, "test-client", &receiver).await;

    let locked = request(&app, &app.api_key, &nth_phone(1)).await;
    for _ in 0..5 {
        let wrong = app.verify(json!({"id": locked["id"], "code": "000001"})).await;
        assert_eq!(wrong.status(), 422);
    }
    let canceled = request(&app, &app.api_key, &nth_phone(2)).await;
    let path = format!("/otp/{}/cancel", canceled["id"].as_str().unwrap());
    assert_eq!(app.post(&path, &json!({})).await.status(), 200);
    let expired = request(&app, &app.api_key, &nth_phone(3)).await;
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(expired["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    otp_service::retention::expire_pending(&app.pool).await.unwrap();
    app.fake.reject_number(&nth_phone(4)[1..]);
    let rejected = app.post("/otp/request", &json!({"phone": nth_phone(4)})).await;
    assert_eq!(rejected.status(), 422);

    // Three `sent`, then one end each.
    let got = receiver.wait_for(7, WAIT).await;
    let of = |v: &Value| -> Vec<String> {
        got.iter()
            .filter(|r| r.json()["data"]["id"] == v["id"])
            .map(|r| r.kind())
            .collect()
    };
    assert_eq!(
        of(&locked),
        ["verification.sent", "verification.max_attempts_reached"]
    );
    assert_eq!(of(&canceled), ["verification.sent", "verification.canceled"]);
    assert_eq!(of(&expired), ["verification.sent", "verification.expired"]);
    let failed: Vec<_> = got
        .iter()
        .filter(|r| r.kind() == "verification.delivery_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].json()["data"]["delivery_error"], "phone_rejected");
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_answers() {
    let app = spawn().await;
    let receiver = Receiver::start(&[Answer::Status(500), Answer::Status(500), Answer::Status(200)]);
    let secret = webhook_for(&app, "test-client", &receiver).await;
    request(&app, &app.api_key, PHONE).await;

    let got = receiver.wait_for(3, WAIT).await;
    assert!(got.iter().all(|r| r.id == got[0].id), "one event, three attempts");
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same body each time"
    );
    assert!(got.iter().all(|r| r.verifies_with(&secret)));

    let deliveries = wait_for_deliveries(&app, &app.api_key, "delivered", 1).await;
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["last_status"], 200);
    assert_eq!(deliveries[0]["webhook_id"], got[0].id.as_str());
}

async fn wait_for_deliveries(app: &TestApp, key: &str, status: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let path = format!("{}/webhooks/deliveries?status={status}", app.address);
        let answer = app.http.get(&path).header("X-Api-Key", key).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let list: Vec<Value> = answer.json().await.unwrap();
        if list.len() >= n {
            return list;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out waiting for {n} {status} deliveries: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn given_up_deliveries_are_listed_for_their_client_only_and_can_be_retried() {
    let app = spawn().await;
    let receiver = Receiver::start(&[Answer::Status(503)]);
    webhook_for(&app, "test-client", &receiver).await;
    request(&app, &app.api_key, PHONE).await;

    // The first attempt and the schedule's three retries.
    let failed = wait_for_deliveries(&app, &app.api_key, "failed", 1).await;
    assert_eq!(failed[0]["attempts"], 4);
    assert_eq!(failed[0]["last_status"], 503);
    assert_eq!(receiver.received().len(), 4);

    let other = otp_service::clients::add(&app.pool, "other", None).await.unwrap();
    let theirs = wait_for_deliveries(&app, other.expose_secret(), "failed", 0).await;
    assert!(theirs.is_empty(), "another client sees none of them");
    let id = failed[0]["id"].as_str().unwrap();
    let path = format!("{}/webhooks/deliveries/{id}/retry", app.address);
    let foreign = app
        .http
        .post(&path)
        .header("X-Api-Key", other.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    receiver.answer_from_now(Answer::Status(204));
    let retried = app
        .http
        .post(&path)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    let delivered = wait_for_deliveries(&app, &app.api_key, "delivered", 1).await;
    assert_eq!(delivered[0]["id"], id);
    assert_eq!(receiver.received().len(), 5);

    let bad = format!("{}/webhooks/deliveries?status=lost", app.address);
    let bad = app
        .http
        .get(&bad)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    problem(bad, 400, "invalid_request").await;
    assert!(metric_with(&app, "otp_webhook_deliveries_total", &[("outcome", "given_up")]).await >= 1.0);
}

#[tokio::test]
async fn a_silent_receiver_delays_nothing_else() {
    let app = spawn().await;
    let silent = Receiver::start(&[Answer::Silence]);
    webhook_for(&app, "test-client", &silent).await;
    let prompt = Receiver::start(&[]);
    let other = otp_service::clients::add(&app.pool, "other", None).await.unwrap();
    webhook_for(&app, "other", &prompt).await;

    // More events than the silent endpoint's slots.
    let started = Instant::now();
    for n in 0..8 {
        request(&app, &app.api_key, &nth_phone(n)).await;
    }
    silent.wait_for(4, WAIT).await;
    let sent = request(&app, other.expose_secret(), &nth_phone(20)).await;
    let code = app.last_code_to(&nth_phone(20)[1..]);
    let verified = app
        .post_as(
            other.expose_secret(),
            "/otp/verify",
            &json!({"id": sent["id"], "code": code}),
        )
        .await;
    assert_eq!(verified.status(), 200);
    let got = prompt.wait_for(2, Duration::from_secs(3)).await;
    assert_eq!(got[1].kind(), "verification.approved");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "codes and the other client's webhooks went on while the silent one hung: {:?}",
        started.elapsed()
    );
    assert_eq!(
        silent.received().len(),
        4,
        "at most four at a time to one endpoint"
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    let old = webhook_for(&app, "test-client", &receiver).await;
    let new = admin(&app).rotate_secret("test-client").await.unwrap();
    let new = new.expose_secret().to_owned();
    assert_ne!(old, new);
    request(&app, &app.api_key, PHONE).await;

    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].signature.split(' ').count(), 2, "{}", got[0].signature);
    assert!(got[0].verifies_with(&old));
    assert!(got[0].verifies_with(&new));

    // After the overlap only the new secret signs.
    sqlx::query("update clients set webhook_previous_until = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    request(&app, &app.api_key, &nth_phone(1)).await;
    let got = receiver.wait_for(2, WAIT).await;
    assert!(got[1].verifies_with(&new));
    assert!(!got[1].verifies_with(&old));
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled() {
    let app = spawn().await;
    let receiver = Receiver::start(&[Answer::Status(500)]);
    webhook_for(&app, "test-client", &receiver).await;
    sqlx::query("update clients set webhook_failing_since = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    request(&app, &app.api_key, PHONE).await;

    app.wait_for("the endpoint to be disabled", WAIT, || async {
        let endpoint = admin(&app).endpoint("test-client").await.unwrap().unwrap();
        endpoint.disabled_at.is_some()
    })
    .await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(
        metric_with(&app, "otp_webhook_deliveries_total", &[("outcome", "disabled")]).await,
        1.0
    );
    // Nothing more is recorded for it, until its URL is set again.
    request(&app, &app.api_key, &nth_phone(1)).await;
    let pending: i64 = sqlx::query_scalar("select count(*) from webhook_events where status = 'pending'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    receiver.answer_from_now(Answer::Status(200));
    let kept = admin(&app).set_url("test-client", &receiver.url).await.unwrap();
    assert!(kept.is_none(), "setting the URL again keeps the secret");
    request(&app, &app.api_key, &nth_phone(2)).await;
    receiver.wait_for(2, WAIT).await;
}

#[tokio::test]
async fn replicas_deliver_each_event_once_and_each_verification_in_order() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    let secret = webhook_for(&app, "test-client", &receiver).await;
    let env = [("OTP_WEBHOOK_ALLOW_PRIVATE", "true")];
    let replicas = [
        ServiceProcess::start(&app, &env).await,
        ServiceProcess::start(&app, &env).await,
    ];
    let mut ids = Vec::new();
    for n in 0..12 {
        let phone = nth_phone(n);
        let sent: Value = replicas[n % 2]
            .request_code(&app, &json!({"phone": phone}))
            .await
            .json()
            .await
            .unwrap();
        let code = app.last_code_to(&phone[1..]);
        let verify = app
            .http
            .post(format!("{}/otp/verify", replicas[(n + 1) % 2].address))
            .header("X-Api-Key", &app.api_key)
            .json(&json!({"id": sent["id"], "code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(verify.status(), 200);
        ids.push(sent["id"].as_str().unwrap().to_owned());
    }
    let got = receiver.wait_for(24, WAIT).await;
    // Give a duplicate the time to show up, were there one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_now = receiver.received();
    assert_eq!(got_now.len(), 24, "each event once: {}", got_now.len());
    let mut seen = std::collections::HashSet::new();
    for event in &got {
        assert!(seen.insert(event.id.clone()), "{} delivered twice", event.id);
        assert!(event.verifies_with(&secret));
    }
    for id in &ids {
        let kinds: Vec<String> = got
            .iter()
            .filter(|r| r.json()["data"]["id"] == id.as_str())
            .map(|r| r.kind())
            .collect();
        assert_eq!(kinds, ["verification.sent", "verification.approved"], "{id}");
    }
}
