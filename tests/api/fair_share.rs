//! Clients share the gateway fairly: one client's flood refuses that client's
//! excess and never another's requests, which reach the gateway within
//! seconds, in one process and across replicas.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

/// One key at 30 a minute spread over the minute (the default burst), and
/// codes living 2 minutes: about 60 sends fit in a code's life.
fn one_paced_key(s: &mut otp_service::config::Settings) {
    s.gateway.rate_per_minute = 30;
    s.gateway.burst = None;
    s.policy.ttl_seconds = 120;
    s.policy.client_max_queued = 1000;
}

async fn ask(app: &TestApp, key: &str, n: usize) -> Response {
    app.post_as(key, "/otp/request", &json!({"phone": nth_phone(n)}))
        .await
}

async fn client(app: &TestApp, name: &str) -> String {
    let key = otp_service::clients::add(&app.pool, name, None).await.unwrap();
    key.expose_secret().to_owned()
}

/// The statuses of `responses`; checks each 503 says when to come back, and
/// each message admitted is expected to go out within the 90 % of its code's
/// life that admission allows (108 s of 120): the estimate it shows is the
/// figure it was admitted by.
async fn statuses(responses: Vec<Response>) -> Vec<u16> {
    let mut statuses = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        match status {
            202 => {
                let v: serde_json::Value = response.json().await.unwrap();
                let at = |field: &str| {
                    v[field]
                        .as_str()
                        .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
                };
                if let Some(estimated) = at("estimated_send_at") {
                    let waits = (estimated - at("created_at").unwrap()).as_seconds_f64();
                    assert!(waits <= 108.5, "admitted to wait {waits:.1} s: {v}");
                }
            }
            503 => {
                problem(response, 503, "delivery_unavailable").await;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
        statuses.push(status);
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// The numbers of B's requests, in the fake's digits.
fn b_numbers() -> Vec<String> {
    (0..5).map(|n| nth_phone(1000 + n)[1..].to_owned()).collect()
}

async fn b_delivered_within(app: &TestApp, timeout: Duration) {
    app.wait_for("all of B's messages at the gateway", timeout, || async {
        let received = app.fake.messages();
        b_numbers()
            .iter()
            .all(|n| received.iter().any(|m| &m.number == n))
    })
    .await;
}

#[tokio::test]
async fn a_flood_by_one_client_refuses_its_excess_and_the_other_client_is_served_at_once() {
    let app = spawn_app_with(one_paced_key).await;
    let a = client(&app, "flooder").await;
    let b = client(&app, "steady").await;

    let flood = (0..200).map(|n| ask(&app, &a, n));
    let a_statuses = statuses(join_all(flood).await).await;
    let admitted = count(&a_statuses, 202);
    // What its share can deliver before expiry (about 60), not the 200 it asked for.
    assert!((40..=80).contains(&admitted), "A had {admitted} admitted of 200");
    assert_eq!(count(&a_statuses, 503), 200 - admitted);

    let asked = std::time::Instant::now();
    let steady = (0..5).map(|n| ask(&app, &b, 1000 + n));
    let b_statuses = statuses(join_all(steady).await).await;
    assert_eq!(b_statuses, [202; 5]);
    b_delivered_within(&app, Duration::from_secs(30)).await;
    let waited = asked.elapsed();

    assert!(
        busiest_minute(&app.fake) <= 30,
        "the key got {} in a minute",
        busiest_minute(&app.fake)
    );
    assert!(app.fake.calls().iter().all(|c| c.status != 429));
    println!(
        "B's five delivered {:.1} s after asking; A admitted {admitted}",
        waited.as_secs_f64()
    );
}

#[tokio::test]
async fn a_client_may_not_queue_past_its_cap_and_another_still_may() {
    let app = spawn_app_with(|s| {
        one_paced_key(s);
        s.policy.client_max_queued = 20;
    })
    .await;
    let a = client(&app, "flooder").await;
    let b = client(&app, "steady").await;
    app.fake.set_down(true);
    let flood = (0..40).map(|n| ask(&app, &a, n));
    let a_statuses = statuses(join_all(flood).await).await;
    assert_eq!(
        count(&a_statuses, 202),
        20,
        "exactly the cap, however parallel: {a_statuses:?}"
    );
    let response = app
        .post_as(&b, "/otp/request", &json!({"phone": nth_phone(1000)}))
        .await;
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn two_replicas_share_the_gateway_fairly_too() {
    let app = spawn_app_with(one_paced_key).await;
    let a = client(&app, "flooder").await;
    let b = client(&app, "steady").await;
    let env = [
        ("WACONECTA_API_KEYS", GATEWAY_KEYS[0]),
        ("WACONECTA_RATE_PER_MINUTE", "30"),
        ("OTP_TTL_SECONDS", "120"),
        ("OTP_CLIENT_MAX_QUEUED", "1000"),
    ];
    let replicas = join_all((0..2).map(|_| ServiceProcess::start(&app, &env))).await;

    let bodies: Vec<_> = (0..200).map(|n| json!({"phone": nth_phone(n)})).collect();
    let flood = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| replicas[n % 2].request_code_as(&app, &a, body));
    let a_statuses = statuses(join_all(flood).await).await;
    let admitted = count(&a_statuses, 202);
    assert!((40..=80).contains(&admitted), "A had {admitted} admitted of 200");

    let bodies: Vec<_> = (0..5).map(|n| json!({"phone": nth_phone(1000 + n)})).collect();
    let steady = bodies
        .iter()
        .map(|body| replicas[1].request_code_as(&app, &b, body));
    assert_eq!(statuses(join_all(steady).await).await, [202; 5]);
    b_delivered_within(&app, Duration::from_secs(30)).await;

    assert!(
        busiest_minute(&app.fake) <= 30,
        "the key got {} in a minute",
        busiest_minute(&app.fake)
    );
    assert!(app.fake.calls().iter().all(|c| c.status != 429));
    let numbers = distinct_numbers(&app.fake);
    assert_eq!(numbers, app.fake.messages().len(), "each message once");
}

#[tokio::test]
async fn slots_go_to_waiting_clients_in_proportion_to_their_shares() {
    let app = spawn_app_with(one_paced_key).await;
    let a = client(&app, "heavy").await;
    let b = client(&app, "light").await;
    let change = otp_service::domain::SettingsChange {
        share: otp_service::domain::Change::Set(3),
        ..Default::default()
    };
    otp_service::clients::change(&app.pool, "heavy", change, false)
        .await
        .unwrap();
    app.fake.set_down(true);
    join_all((0..30).map(|n| ask(&app, &a, n))).await;
    join_all((0..30).map(|n| ask(&app, &b, 1000 + n))).await;
    app.stop_service().await;
    // All due at once and none served yet: the claim's order alone decides.
    sqlx::query("update outbox_messages set next_attempt_at = now() - interval '1 second', leased_until = null, claimed_at = null")
        .execute(&app.pool)
        .await
        .unwrap();
    let claimed =
        otp_service::store::outbox::claim_due(&app.pool, 20, otp_service::delivery::gateway::SEND_TIMEOUT)
            .await
            .unwrap();
    let heavy = claimed.iter().filter(|m| m.client == "heavy").count();
    assert_eq!((heavy, claimed.len() - heavy), (15, 5), "3 to 1");
    // What each was served in the last minute counts: the next claims keep to 3 to 1.
    let next =
        otp_service::store::outbox::claim_due(&app.pool, 8, otp_service::delivery::gateway::SEND_TIMEOUT)
            .await
            .unwrap();
    let light = next.iter().filter(|m| m.client == "light").count();
    assert_eq!(light, 2, "{light} of 8");
}
