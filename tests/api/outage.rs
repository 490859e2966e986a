//! PostgreSQL going away and coming back, through a proxy the test cuts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::proxy::Outage;
use crate::helpers::*;

/// The pool gives up on a connection after 3 s; an answer may take that long, not much more.
const PROMPT: Duration = Duration::from_millis(4500);

async fn promptly<T, E: std::fmt::Debug>(what: &str, request: impl Future<Output = Result<T, E>>) -> T {
    let started = Instant::now();
    let response = request.await.expect("an answer");
    assert!(
        started.elapsed() < PROMPT,
        "{what} took {:?} to answer",
        started.elapsed()
    );
    response
}

#[tokio::test]
async fn a_database_outage_is_503_until_it_heals_by_itself_and_no_message_is_lost() {
    let (app, proxy) = spawn_app_behind_proxy(|_| {}).await;
    let known = app.requested("login").await;
    let known_id = known["id"].as_str().unwrap();
    // The gateway is down when this one is requested: its message waits in the outbox.
    app.fake.set_down(true);
    let waiting_phone = nth_phone(1);
    let waiting = app
        .request_code(json!({"phone": waiting_phone, "purpose": "signup"}))
        .await;
    assert_eq!(waiting.status(), 202);
    let waiting: serde_json::Value = waiting.json().await.unwrap();
    assert_eq!(waiting["delivery_status"], "queued");

    proxy.cut().await;
    // From here only the database keeps the message from going out.
    app.fake.set_down(false);

    let request = app.request_code(json!({"phone": nth_phone(2), "purpose": "signup"}));
    let request = async { Ok::<_, ()>(request.await) };
    problem(promptly("POST /otp/request", request).await, 503, "unavailable").await;
    let read = async { Ok::<_, ()>(app.get(&format!("/otp/{known_id}")).await) };
    problem(promptly("GET /otp/{id}", read).await, 503, "unavailable").await;
    let verify = async { Ok::<_, ()>(app.verify(json!({"id": known_id, "code": "000000"})).await) };
    problem(promptly("POST /otp/verify", verify).await, 503, "unavailable").await;
    let ready = promptly("/readyz", app.http.get(format!("{}/readyz", app.address)).send()).await;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "unavailable");
    let health = promptly(
        "/healthz",
        app.http.get(format!("{}/healthz", app.address)).send(),
    )
    .await;
    assert_eq!(health.status(), 200);
    assert!(
        app.fake.last_message_to(&waiting_phone[1..]).is_none(),
        "nothing was sent while the database was away"
    );
    // And the metrics say so, without waiting on the database for long.
    let scraped = async { Ok::<_, ()>(metric(&app, "otp_database_up").await) };
    assert_eq!(promptly("/metrics", scraped).await, 0.0);
    let unavailable = [("route", "/otp/request"), ("status", "503")];
    assert_eq!(
        metric_with(&app, "otp_http_requests_total", &unavailable).await,
        1.0
    );

    proxy.restore().await;
    app.wait_for("the API to answer again", Duration::from_secs(15), || async {
        app.get(&format!("/otp/{known_id}")).await.status() == 200
    })
    .await;
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "sent");
    let ready = app.get_open("/readyz").await;
    assert_eq!(ready.status(), 200);
    // Within a lease, in case the outage caught the message mid-claim.
    app.wait_for("the waiting message", Duration::from_secs(40), || async {
        app.fake.last_message_to(&waiting_phone[1..]).is_some()
    })
    .await;
    let v = app
        .wait_for_delivery(waiting["id"].as_str().unwrap(), "sent", Duration::from_secs(5))
        .await;
    assert_eq!(v["status"], "pending");
}

/// Each way a database can fail answers `503 unavailable` with `Retry-After`,
/// promptly, on every kind of call; and the service heals when it comes back.
async fn every_call_is_503_while(outage: Outage) {
    let (app, proxy) = spawn_app_behind_proxy(|_| {}).await;
    let known = app.requested("login").await;
    let known_id = known["id"].as_str().unwrap().to_owned();
    proxy.fail(outage).await;

    let request = async { Ok::<_, ()>(app.request_code(json!({"phone": nth_phone(2)})).await) };
    problem(promptly("POST /otp/request", request).await, 503, "unavailable").await;
    let read = async { Ok::<_, ()>(app.get(&format!("/otp/{known_id}")).await) };
    problem(promptly("GET /otp/{id}", read).await, 503, "unavailable").await;
    let verify = async { Ok::<_, ()>(app.verify(json!({"id": known_id, "code": "000000"})).await) };
    problem(promptly("POST /otp/verify", verify).await, 503, "unavailable").await;
    let cancel = async { Ok::<_, ()>(app.post(&format!("/otp/{known_id}/cancel"), &json!({})).await) };
    problem(
        promptly("POST /otp/{id}/cancel", cancel).await,
        503,
        "unavailable",
    )
    .await;
    let ready = promptly("/readyz", app.http.get(format!("{}/readyz", app.address)).send()).await;
    assert_eq!(ready.status(), 503, "{outage:?}");
    let errors = metric_with(&app, "otp_http_requests_total", &[("status", "500")]).await;
    assert_eq!(errors, 0.0, "{outage:?}: no 500 at all");

    proxy.restore().await;
    app.wait_for("the API to answer again", Duration::from_secs(15), || async {
        app.get(&format!("/otp/{known_id}")).await.status() == 200
    })
    .await;
}

#[tokio::test]
async fn a_refused_database_is_503() {
    every_call_is_503_while(Outage::Refused).await;
}

#[tokio::test]
async fn a_database_that_resets_connections_is_503() {
    every_call_is_503_while(Outage::Reset).await;
}

#[tokio::test]
async fn a_database_that_answers_garbage_is_503() {
    every_call_is_503_while(Outage::Garbage).await;
}

#[tokio::test]
async fn a_database_that_never_answers_is_503() {
    every_call_is_503_while(Outage::Silent).await;
}

/// What the replica's `/metrics` says of a metric without labels.
async fn replica_metric(http: &reqwest::Client, replica: &ServiceProcess, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{}/metrics", replica.address))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Connections open and pooled, then the database stops answering on them
/// without closing them (a black-holed route, a frozen primary): every call
/// is a `503` within the call timeout, the listening connection is found
/// dead, and when the database answers again on those same connections the
/// service heals by itself, its background loops included.
#[tokio::test]
async fn a_database_that_goes_silent_mid_stream_is_503_promptly_and_heals() {
    let (app, proxy) = spawn_app_behind_proxy(|_| {}).await;
    // A replica of its own time limits, short so the test is; only it serves.
    app.stop_service().await;
    let through_proxy = app.settings.database.url().to_owned();
    let replica = ServiceProcess::start(
        &app,
        &[
            ("DATABASE_URL", through_proxy.as_str()),
            ("OTP_DB_STATEMENT_TIMEOUT_MS", "1000"),
            ("OTP_DB_CALL_TIMEOUT_MS", "1500"),
        ],
    )
    .await;
    // Today's hang would hang the test: each call has a deadline of its own.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let known = replica.request_code(&app, &json!({"phone": PHONE})).await;
    assert_eq!(known.status(), 202);
    let known: serde_json::Value = known.json().await.unwrap();
    let known_id = known["id"].as_str().unwrap().to_owned();
    // Its message waits in the outbox for the dispatcher, the gateway being down.
    app.fake.set_down(true);
    let waiting_phone = nth_phone(1);
    let waiting = replica.request_code(&app, &json!({"phone": waiting_phone})).await;
    assert_eq!(waiting.status(), 202);
    app.wait_for("the replica to listen", Duration::from_secs(10), || async {
        replica_metric(&http, &replica, "otp_client_cache_listening").await == Some(1.0)
    })
    .await;

    proxy.swallow();
    app.fake.set_down(false);

    let call = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let request = http
            .request(method, format!("{}{path}", replica.address))
            .header("X-Api-Key", &app.api_key)
            .json(&body);
        async move { request.send().await }
    };
    let (requested, read, verified, canceled) = tokio::join!(
        promptly(
            "POST /otp/request",
            call(
                reqwest::Method::POST,
                "/otp/request".into(),
                json!({"phone": nth_phone(2)})
            )
        ),
        promptly(
            "GET /otp/{id}",
            call(reqwest::Method::GET, format!("/otp/{known_id}"), json!({}))
        ),
        promptly(
            "POST /otp/verify",
            call(
                reqwest::Method::POST,
                "/otp/verify".into(),
                json!({"id": known_id, "code": "000000"})
            )
        ),
        promptly(
            "POST /otp/{id}/cancel",
            call(
                reqwest::Method::POST,
                format!("/otp/{known_id}/cancel"),
                json!({})
            )
        ),
    );
    for answer in [requested, read, verified, canceled] {
        problem(answer, 503, "unavailable").await;
    }
    let ready = promptly("/readyz", http.get(format!("{}/readyz", replica.address)).send()).await;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    app.wait_for(
        "the silent listening connection to be given up",
        Duration::from_secs(10),
        || async { replica_metric(&http, &replica, "otp_client_cache_listening").await == Some(0.0) },
    )
    .await;
    assert!(app.fake.last_message_to(&waiting_phone[1..]).is_none());

    // The database answers again, on the connections that were kept open.
    proxy.resume();
    app.wait_for("the API to answer again", Duration::from_secs(15), || async {
        call(reqwest::Method::GET, format!("/otp/{known_id}"), json!({}))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    app.wait_for(
        "the dispatcher to send the waiting message",
        Duration::from_secs(20),
        || async { app.fake.last_message_to(&waiting_phone[1..]).is_some() },
    )
    .await;
    app.wait_for("the replica to listen again", Duration::from_secs(10), || async {
        replica_metric(&http, &replica, "otp_client_cache_listening").await == Some(1.0)
    })
    .await;
    let fresh = call(
        reqwest::Method::POST,
        "/otp/request".into(),
        json!({"phone": nth_phone(3)}),
    )
    .await
    .unwrap();
    assert_eq!(fresh.status(), 202);
    let text = http
        .get(format!("{}/metrics", replica.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("otp_http_requests_total") && l.contains("status=\"500\"")),
        "no 500 at all"
    );
}
