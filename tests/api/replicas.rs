//! Several processes of the real binary on one database, and crashes.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn three_replicas_share_the_per_key_rate_and_send_each_message_once() {
    // Two keys at 10 a minute: 20 go in the first minute, the rest after it.
    let app = spawn_app_with(|s| {
        two_keys(s);
        s.gateway.rate_per_minute = 10;
    })
    .await;
    app.fake.set_down(true);
    let replicas = join_all((0..3).map(|_| ServiceProcess::start(&app, &[]))).await;
    let bodies: Vec<_> = (0..24).map(|n| json!({"phone": nth_phone(n)})).collect();
    let answers = join_all(
        bodies
            .iter()
            .enumerate()
            .map(|(n, body)| replicas[n % 3].request_code(&app, body)),
    )
    .await;
    assert!(
        answers.iter().all(|r| r.status() == 202),
        "{:?}",
        answers.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    app.fake.set_down(false);

    app.wait_for("the first minute's share", Duration::from_secs(15), || async {
        app.fake.messages().len() >= 20
    })
    .await;
    app.wait_for("all 24 messages", Duration::from_secs(80), || async {
        app.fake.messages().len() >= 24
    })
    .await;

    let messages = app.fake.messages();
    assert_eq!(distinct_numbers(&app.fake), 24, "each message once");
    assert_eq!(messages.len(), 24);
    assert!(
        busiest_minute(&app.fake) <= 10,
        "a key got {} in a minute",
        busiest_minute(&app.fake)
    );
    assert!(app.fake.calls().iter().all(|c| c.status != 429));
}

#[tokio::test]
async fn a_replica_killed_with_queued_messages_loses_none() {
    let app = spawn_app().await;
    app.fake.set_down(true);
    let first = ServiceProcess::start(&app, &[]).await;
    for n in 0..5 {
        let response = first.request_code(&app, &json!({"phone": nth_phone(n)})).await;
        assert_eq!(response.status(), 202);
    }
    first.kill().await;
    app.fake.set_down(false);

    let _second = ServiceProcess::start(&app, &[]).await;
    app.wait_for("every queued message", Duration::from_secs(30), || async {
        app.fake.messages().len() >= 5
    })
    .await;
    assert_eq!(distinct_numbers(&app.fake), 5);
}
