//! What lets refusals be cheap keeps every guarantee: clients held in memory
//! hear of every change (even one made while a replica could not listen),
//! the client window held in memory still holds across replicas, and a
//! pending verification is never answered from memory.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::clients;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::*;

async fn get_as(app: &TestApp, address: &str, key: &str, path: &str) -> Response {
    app.http
        .get(format!("{address}{path}"))
        .header("X-Api-Key", key)
        .send()
        .await
        .expect("request sent")
}

fn unknown_verification() -> String {
    format!("/otp/{}", uuid::Uuid::now_v7())
}

/// Polls `address` with `key` until it answers 401; how long that took.
async fn until_refused(app: &TestApp, address: &str, key: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if get_as(app, address, key, &unknown_verification()).await.status() == 401 {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{address} still lets the key in");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The head of the answer to one `POST /otp/verify` with a body, over a
/// connection of its own, as the server wrote it.
async fn raw_post(address: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let body = r#"{"id":"018f6b1e-0000-7000-8000-000000000000","code":"123456"}"#;
    let request = format!(
        "POST /otp/verify HTTP/1.1\r\nhost: {host}\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    answer.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// The backends of the replicas' listening connections.
async fn listeners(app: &TestApp) -> i64 {
    listening_queries(app).await.len() as i64
}

/// What each replica's listening connection last ran: its `LISTEN`s, until
/// a quiet spell makes it ping.
async fn listening_queries(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select query from pg_stat_activity where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Connections are few: the clients, the cooldowns and the webhook worker
/// hear their channels on one.
#[tokio::test]
async fn one_connection_listens_for_everything_a_replica_holds() {
    let app = spawn_app().await;
    app.wait_for("the service to listen", Duration::from_secs(10), || async {
        !listening_queries(&app).await.is_empty()
    })
    .await;
    let queries = listening_queries(&app).await;
    assert_eq!(queries.len(), 1, "{queries:?}");
    let channels = [
        clients::cache::CHANNEL,
        otp_service::otp::cooldowns::FINISHED_CHANNEL,
        otp_service::webhooks::CHANNEL,
    ];
    for channel in channels {
        assert!(queries[0].contains(channel), "{channel} in {queries:?}");
    }
}

#[tokio::test]
async fn a_revocation_reaches_every_replica_within_a_second() {
    let app = spawn_app().await;
    let replicas = join_all((0..2).map(|_| ServiceProcess::start(&app, &[]))).await;
    let key = clients::add(&app.pool, "shop", None).await.unwrap();
    let key = key.expose_secret();
    app.wait_for("both replicas to listen", Duration::from_secs(10), || async {
        listeners(&app).await >= 3
    })
    .await;
    // Each replica now holds the client in memory.
    for replica in &replicas {
        let answer = get_as(&app, &replica.address, key, &unknown_verification()).await;
        assert_eq!(answer.status(), 404);
    }

    clients::revoke(&app.pool, "shop").await.unwrap();
    for replica in &replicas {
        let took = until_refused(&app, &replica.address, key, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(1), "the revocation took {took:?}");
    }
}

#[tokio::test]
async fn a_change_made_while_a_replica_cannot_listen_still_reaches_it() {
    let app = spawn_app().await;
    let key = clients::add(&app.pool, "shop", None).await.unwrap();
    let key = key.expose_secret();
    app.wait_for("the service to listen", Duration::from_secs(10), || async {
        listeners(&app).await >= 1
    })
    .await;
    assert_eq!(
        get_as(&app, &app.address, key, &unknown_verification())
            .await
            .status(),
        404
    );

    // The listening connection dies; the revocation's notification goes nowhere.
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    clients::revoke(&app.pool, "shop").await.unwrap();
    until_refused(&app, &app.address, key, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_client_window_held_in_memory_holds_across_replicas() {
    let app = spawn_app().await;
    let replicas = join_all((0..2).map(|_| ServiceProcess::start(&app, &[]))).await;
    clients::set_requests_per_minute(&app.pool, "test-client", Some(20))
        .await
        .unwrap();
    // With a body, which a refusal does not read: it must still be skipped.
    let answers = join_all((0..80).map(|n| {
        app.http
            .post(format!("{}/otp/verify", replicas[n % 2].address))
            .header("X-Api-Key", &app.api_key)
            .json(&json!({"id": "018f6b1e-0000-7000-8000-000000000000", "code": "123456"}))
            .send()
    }))
    .await;
    let answers: Vec<Response> = answers.into_iter().map(Result::unwrap).collect();
    // A refused request's connection stays open for the next one.
    let head = raw_post(&replicas[0].address, &app.api_key).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let let_in = statuses.iter().filter(|s| **s == 404).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((let_in, refused), (20, 60), "{statuses:?}");

    // One row for the window, none per request.
    let rows: i64 = sqlx::query_scalar("select count(*) from rate_cells where key like 'client:%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let hits: i64 = sqlx::query_scalar("select count(*) from limit_hits where bucket like 'client:%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((rows, hits), (1, 0));
}

#[tokio::test]
async fn a_pending_verification_is_never_answered_from_memory() {
    let app = spawn_app().await;
    let replica = ServiceProcess::start(&app, &[]).await;
    let v = app.requested("login").await;
    let id = v["id"].as_str().unwrap();
    let verify_on_replica = || async {
        app.http
            .post(format!("{}/otp/verify", replica.address))
            .header("X-Api-Key", &app.api_key)
            .json(&json!({"id": id, "code": "000001"}))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(verify_on_replica().await.status(), 422);

    // Canceled on another replica: this one has nothing to forget.
    let canceled = app.post(&format!("/otp/{id}/cancel"), &json!({})).await;
    assert_eq!(canceled.status(), 200);
    let body = problem(verify_on_replica().await, 409, "not_pending").await;
    assert_eq!(body["status_detail"], "canceled");
    // And now from memory, the same answer.
    let body = problem(verify_on_replica().await, 409, "not_pending").await;
    assert_eq!(body["status_detail"], "canceled");
}

#[tokio::test]
async fn a_window_of_billions_a_minute_lets_requests_in() {
    // Its emission interval is below a microsecond, what an interval can hold.
    let app = spawn_app().await;
    let key = clients::add(&app.pool, "huge", Some(i32::MAX as u32))
        .await
        .unwrap();
    let answers = join_all((0..20).map(|_| {
        get_as(
            &app,
            &app.address,
            key.expose_secret(),
            "/otp/018f6b1e-0000-7000-8000-000000000000",
        )
    }))
    .await;
    assert!(answers.iter().all(|r| r.status() == 404));
}

#[tokio::test]
async fn a_cooldown_remembered_on_one_replica_ends_when_another_approves() {
    let app = spawn_app().await;
    let replica = ServiceProcess::start(&app, &[]).await;
    app.wait_for("both to listen", Duration::from_secs(10), || async {
        listeners(&app).await >= 2
    })
    .await;
    let v = app.requested("login").await;
    let body = json!({"phone": PHONE, "purpose": "login"});
    // Refused inside the cooldown, from now on from memory.
    for _ in 0..3 {
        problem(replica.request_code(&app, &body).await, 429, "resend_too_soon").await;
    }
    let code = app.last_code_to(PHONE_DIGITS);
    let approved = app.verify(json!({"id": v["id"], "code": code})).await;
    assert_eq!(approved.status(), 200);

    // A new request is a new verification, on the replica too, at once.
    let start = Instant::now();
    loop {
        let answer = replica.request_code(&app, &body).await;
        if answer.status() == 202 {
            let fresh: serde_json::Value = answer.json().await.unwrap();
            assert_ne!(fresh["id"], v["id"]);
            break;
        }
        problem(answer, 429, "resend_too_soon").await;
        assert!(start.elapsed() < Duration::from_secs(1), "still refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
