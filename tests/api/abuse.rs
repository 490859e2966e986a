//! The abuse limits (per phone, per end-user IP, per client), under parallel
//! load, with the Retry-After they promise; and a flood of wrong codes.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::*;

/// Answers by status, and the Retry-After of every 429 (checked for shape).
async fn tally(responses: Vec<Response>, code_429: &str) -> (usize, Vec<u64>) {
    let mut accepted = 0;
    let mut waits = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            202 | 404 | 422 => accepted += 1,
            429 => {
                let body = problem(response, 429, code_429).await;
                waits.push(body["retry_after"].as_u64().unwrap());
            }
            other => panic!("unexpected status {other}: {}", response.text().await.unwrap()),
        }
    }
    (accepted, waits)
}

/// Moves every hit of the buckets matching `like` back so the window frees in `seconds`.
async fn window_frees_in(app: &TestApp, like: &str, seconds: f64, span_seconds: f64) {
    sqlx::query(
        "update limit_hits set at = clock_timestamp() - make_interval(secs => $2 - $3) where bucket like $1",
    )
    .bind(like)
    .bind(span_seconds)
    .bind(seconds)
    .execute(&app.pool)
    .await
    .unwrap();
}

/// Retries `attempt` until it is let in, and says when the attempt that was
/// let in started (not when it ended: its own work is not the wait).
async fn time_until_allowed<F, Fut>(mut attempt: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let start = Instant::now();
    loop {
        let sent_at = start.elapsed();
        let response = attempt().await;
        if response.status() != 429 {
            return sent_at;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never let in");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Let in no sooner than a second before Retry-After (it is rounded up) and
/// not much after it (the polling step and a refused request's round trip).
fn assert_waited(elapsed: Duration, promised: u64) {
    let elapsed = elapsed.as_secs_f64();
    let promised = promised as f64;
    assert!(
        elapsed > promised - 1.0 && elapsed <= promised + 1.0,
        "Retry-After said {promised} s, the request was let in after {elapsed:.2} s"
    );
}

#[tokio::test]
async fn hundred_parallel_requests_for_one_phone_send_exactly_the_hourly_limit() {
    let app = spawn_app().await;
    assert_eq!(app.settings.policy.phone_sends_per_hour, 10);
    // Different purposes, so that none of them is a mere resend of another.
    let responses =
        join_all((0..100).map(|i| app.request_code(json!({"phone": PHONE, "purpose": format!("p{i}")}))))
            .await;
    let (accepted, waits) = tally(responses, "rate_limited").await;
    assert_eq!(accepted, 10);
    assert_eq!(waits.len(), 90);
    assert!(waits.iter().all(|w| (3590..=3600).contains(w)), "{waits:?}");
    app.wait_for(
        "the accepted codes to arrive",
        Duration::from_secs(10),
        || async { app.fake.messages().len() >= 10 },
    )
    .await;
    assert_eq!(app.fake.messages().len(), 10);
}

/// Wrong codes for `id` until `n` were counted.
async fn wrong_codes(app: &TestApp, id: &str, n: usize) {
    let right = app.last_code_to(PHONE_DIGITS);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for _ in 0..n {
        problem(
            app.verify(json!({"id": id, "code": wrong})).await,
            422,
            "invalid_code",
        )
        .await;
    }
}

async fn phone_failure_hits(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from limit_hits where bucket like 'wrong-codes:%'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn failures_add_up_per_phone_across_resends_and_verifications() {
    let app = spawn_app_with(|s| {
        s.policy.phone_failures_per_hour = 6;
        s.policy.resend_cooldown_seconds = 0;
    })
    .await;
    // A right code counts nothing against the phone.
    let first = app.requested("warmup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    assert_eq!(
        app.verify(json!({"id": first["id"], "code": code}))
            .await
            .status(),
        200
    );
    assert_eq!(phone_failure_hits(&app).await, 0);

    let a = app.requested("signup").await;
    let a_id = a["id"].as_str().unwrap();
    wrong_codes(&app, a_id, 2).await;
    // A resend keeps the phone's count, as it keeps the verification's.
    assert_eq!(app.requested("signup").await["id"], a["id"]);
    wrong_codes(&app, a_id, 2).await;
    // So does a new verification for another purpose.
    let b = app.requested("login").await;
    let b_id = b["id"].as_str().unwrap();
    let b_code = app.last_code_to(PHONE_DIGITS);
    wrong_codes(&app, b_id, 2).await;
    assert_eq!(phone_failure_hits(&app).await, 6);

    // Past the phone's limit even the right code is refused, and not counted.
    let body = problem(
        app.verify(json!({"id": b_id, "code": b_code})).await,
        429,
        "rate_limited",
    )
    .await;
    let wait = body["retry_after"].as_u64().unwrap();
    assert!((3590..=3600).contains(&wait), "{wait}");
    assert_eq!(app.verification(b_id).await["attempts_remaining"], 3);
    assert_eq!(app.verification(a_id).await["attempts_remaining"], 1);

    // When the window passes, the right code works.
    window_frees_in(&app, "wrong-codes:%", 2.0, 3600.0).await;
    let body = problem(
        app.verify(json!({"id": b_id, "code": b_code})).await,
        429,
        "rate_limited",
    )
    .await;
    let promised = body["retry_after"].as_u64().unwrap();
    assert!(promised <= 2, "{promised}");
    let elapsed = time_until_allowed(|| app.verify(json!({"id": b_id, "code": b_code}))).await;
    assert_waited(elapsed, promised);
    assert_eq!(app.verification(b_id).await["status"], "approved");
}

#[tokio::test]
async fn parallel_wrong_codes_across_verifications_stop_at_the_phone_limit() {
    let app = spawn_app_with(|s| s.policy.phone_failures_per_hour = 6).await;
    let mut ids = Vec::new();
    for purpose in ["a", "b", "c", "d", "e"] {
        ids.push(app.requested(purpose).await["id"].as_str().unwrap().to_owned());
    }
    // 25 guesses would fit the five verifications' own limits; the phone allows 6.
    let responses = join_all(
        ids.iter()
            .flat_map(|id| std::iter::repeat_n(id, 5))
            .map(|id| app.verify(json!({"id": id, "code": "1234567"}))),
    )
    .await;
    let (counted, waits) = tally(responses, "rate_limited").await;
    assert_eq!(counted, 6);
    assert_eq!(waits.len(), 19);
    let failed: i64 = sqlx::query_scalar("select sum(failed_attempts) from verifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(failed, 6);
}

#[tokio::test]
async fn the_ip_limit_holds_under_parallel_load_and_retry_after_is_true() {
    let app = spawn_app_with(|s| s.policy.ip_requests_per_hour = 5).await;
    let ask = |n: usize, ip: &str| app.request_code(json!({"phone": nth_phone(n), "end_user_ip": ip}));
    let responses = join_all((0..20).map(|n| ask(n, "203.0.113.7"))).await;
    let (accepted, waits) = tally(responses, "rate_limited").await;
    assert_eq!((accepted, waits.len()), (5, 15));
    assert!(waits.iter().all(|w| (3590..=3600).contains(w)), "{waits:?}");
    // Another address has its own window; requests without one have none.
    assert_eq!(ask(20, "198.51.100.1").await.status(), 202);
    assert_eq!(
        app.request_code(json!({"phone": nth_phone(21)})).await.status(),
        202
    );

    // An IPv6 user holds a /64: addresses in it share one window.
    for n in 0..5 {
        assert_eq!(ask(30 + n, &format!("2001:db8:1:2::{n}")).await.status(), 202);
    }
    problem(ask(40, "2001:db8:1:2:ffff::1").await, 429, "rate_limited").await;
    assert_eq!(ask(41, "2001:db8:1:3::1").await.status(), 202);

    window_frees_in(&app, "ip:%:203.0.113.7", 2.0, 3600.0).await;
    let body = problem(ask(50, "203.0.113.7").await, 429, "rate_limited").await;
    let promised = body["retry_after"].as_u64().unwrap();
    let mut n = 51;
    let elapsed = time_until_allowed(|| {
        n += 1;
        ask(n, "203.0.113.7")
    })
    .await;
    assert_waited(elapsed, promised);
}

#[tokio::test]
async fn the_client_limit_holds_under_parallel_load_and_retry_after_is_true() {
    let app = spawn_app().await;
    app.changing_clients(otp_service::clients::set_requests_per_minute(
        &app.pool,
        "test-client",
        Some(10),
    ))
    .await
    .unwrap();
    let unknown = format!("/otp/{}", uuid::Uuid::now_v7());
    let responses = join_all((0..30).map(|_| app.get(&unknown))).await;
    let (answered, waits) = tally(responses, "rate_limited").await;
    assert_eq!((answered, waits.len()), (10, 20));
    // A GCRA window of 10 a minute: the burst of 10, then one every 6 s.
    assert!(waits.iter().all(|w| (1..=6).contains(w)), "{waits:?}");
    // Other clients are not held back by this one.
    let other = otp_service::clients::add(&app.pool, "other", None).await.unwrap();
    let response = app
        .http
        .get(format!("{}{unknown}", app.address))
        .header("X-Api-Key", secrecy::ExposeSecret::expose_secret(&other))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    let body = problem(app.get(&unknown).await, 429, "rate_limited").await;
    let promised = body["retry_after"].as_u64().unwrap();
    let elapsed = time_until_allowed(|| app.get(&unknown)).await;
    assert_waited(elapsed, promised);
}

async fn with_key(app: &TestApp, key: &str, body: &Value) -> Response {
    app.http
        .post(format!("{}/otp/request", app.address))
        .header("X-Api-Key", &app.api_key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retried_request_with_an_idempotency_key_gets_the_first_answer_and_sends_nothing() {
    let app = spawn_app().await;
    let body = json!({"phone": PHONE, "purpose": "signup"});
    let first = with_key(&app, "order-42", &body).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The same request, written another way, is the same request.
    let again = with_key(
        &app,
        "order-42",
        &json!({"phone": "+591 696-57008", "purpose": "signup"}),
    )
    .await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.fake.messages().len(), 1);

    let other = with_key(&app, "order-42", &json!({"phone": PHONE, "purpose": "login"})).await;
    problem(other, 422, "idempotency_key_reused").await;
    // Without the key the same body is a resend, refused for its cooldown.
    problem(app.request_code(body.clone()).await, 429, "resend_too_soon").await;
    // Keys belong to their client.
    let stranger = otp_service::clients::add(&app.pool, "stranger", None)
        .await
        .unwrap();
    let response = app
        .http
        .post(format!("{}/otp/request", app.address))
        .header("X-Api-Key", secrecy::ExposeSecret::expose_secret(&stranger))
        .header("Idempotency-Key", "order-42")
        .json(&json!({"phone": nth_phone(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(app.fake.messages().len(), 2);

    let bad = with_key(&app, "", &body).await;
    problem(bad, 400, "invalid_request").await;

    // A final error is kept and replayed as it was, without a second send.
    app.fake.reject_number(&nth_phone(2)[1..]);
    let rejected = json!({"phone": nth_phone(2)});
    let first = problem(with_key(&app, "order-43", &rejected).await, 422, "phone_rejected").await;
    let calls = app.fake.calls().len();
    let again = with_key(&app, "order-43", &rejected).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(problem(again, 422, "phone_rejected").await, first);
    assert_eq!(app.fake.calls().len(), calls);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_send_one_message() {
    let app = spawn_app().await;
    let body = json!({"phone": PHONE, "purpose": "signup"});
    let responses = join_all((0..20).map(|_| with_key(&app, "same", &body))).await;
    let mut ids = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            202 => ids.push(response.json::<Value>().await.unwrap()["id"].clone()),
            409 => {
                problem(response, 409, "idempotency_key_in_use").await;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!ids.is_empty());
    // Once answered, every retry gets that answer.
    let retry: Value = with_key(&app, "same", &body).await.json().await.unwrap();
    assert!(ids.iter().all(|id| *id == retry["id"]));
    assert_eq!(app.fake.messages().len(), 1);
    assert_eq!(app.verification_count().await, 1);
}

#[tokio::test]
async fn refusals_that_say_not_now_are_not_kept_for_the_key() {
    let app = spawn_app_with(|s| s.policy.resend_cooldown_seconds = 1).await;
    let body = json!({"phone": PHONE, "purpose": "signup"});
    assert_eq!(app.request_code(body.clone()).await.status(), 202);
    problem(with_key(&app, "resend-1", &body).await, 429, "resend_too_soon").await;
    // After the cooldown, the retry with the same key really resends.
    let elapsed = time_until_allowed(|| with_key(&app, "resend-1", &body)).await;
    assert!(elapsed <= Duration::from_secs(2), "{elapsed:?}");
    app.wait_for("the resend", Duration::from_secs(5), || async {
        app.fake.messages().len() == 2
    })
    .await;
}

#[tokio::test]
async fn a_flood_of_wrong_codes_on_locked_verifications_does_not_slow_a_real_user() {
    // Production-strength hashing: the flood would starve the CPU if it hashed.
    let app = spawn_app_with(|s| {
        s.hashing = otp_service::config::HashSettings {
            memory_kib: 19456,
            iterations: 2,
            ..s.hashing.clone()
        }
    })
    .await;
    let locked = app.requested("attacked").await;
    let id = locked["id"].as_str().unwrap().to_owned();
    let flood_client = otp_service::clients::add(&app.pool, "flood", Some(1_000_000))
        .await
        .unwrap();
    // Lock it (the flood's own client has a high limit; it is the phone's victim).
    wrong_codes(&app, &id, 5).await;
    let hashes_before = metric(&app, "otp_hash_duration_seconds_count").await;

    let flood_key = secrecy::ExposeSecret::expose_secret(&flood_client).to_owned();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..8)
        .map(|_| {
            let (http, address, key, id, stop) = (
                app.http.clone(),
                app.address.clone(),
                flood_key.clone(),
                id.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut refused = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http
                        .post(format!("{address}/otp/verify"))
                        .header("X-Api-Key", &key)
                        .json(&json!({"id": id, "code": "000000"}))
                        .send()
                        .await
                        .unwrap();
                    // The flood's client does not own the verification: 404, no hash.
                    assert_eq!(r.status(), 404);
                    refused += 1;
                }
                refused
            })
        })
        .collect();
    let own_flood: Vec<_> = (0..50)
        .map(|_| app.verify(json!({"id": id, "code": "000000"})))
        .collect();

    let started = Instant::now();
    let (own, user) = tokio::join!(join_all(own_flood), async {
        let v = app
            .request_code(json!({"phone": nth_phone(7), "purpose": "login"}))
            .await;
        assert_eq!(v.status(), 202);
        let v: Value = v.json().await.unwrap();
        let digits = nth_phone(7).trim_start_matches('+').to_owned();
        let code = app.last_code_to(&digits);
        app.verify(json!({"id": v["id"], "code": code})).await
    });
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused: usize = join_all(flooders).await.into_iter().map(|r| r.unwrap()).sum();

    assert_eq!(user.status(), 200);
    for response in own {
        problem(response, 429, "max_attempts_reached").await;
    }
    assert!(refused > 0);
    // Two hashes for the real user (the code, its check), none for the flood.
    assert_eq!(
        metric(&app, "otp_hash_duration_seconds_count").await,
        hashes_before + 2.0
    );
    // Generous for a loaded 2-core machine: production argon2id takes tens of
    // milliseconds; a hashing flood would hold the user for many seconds.
    assert!(
        took < Duration::from_secs(10),
        "a real user waited {took:?} during the flood"
    );
}

#[tokio::test]
async fn a_full_phone_window_does_not_hide_why_a_verification_cannot_be_attempted() {
    let app = spawn_app_with(|s| {
        s.policy.phone_failures_per_hour = 1;
        s.policy.max_attempts = 1;
    })
    .await;
    let locked = app.requested("signup").await;
    let locked_id = locked["id"].as_str().unwrap();
    let expiring = app.requested("login").await;
    let expiring_id = expiring["id"].as_str().unwrap();
    // One wrong code: the phone's window is full, and `signup` has no attempt left.
    wrong_codes(&app, locked_id, 1).await;
    assert_eq!(phone_failure_hits(&app).await, 1);
    problem(
        app.verify(json!({"id": expiring_id, "code": "1234567"})).await,
        429,
        "rate_limited",
    )
    .await;
    // Each says what it is, not that the window is full, and takes nothing.
    problem(
        app.verify(json!({"id": locked_id, "code": "1234567"})).await,
        429,
        "max_attempts_reached",
    )
    .await;
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(expiring_id)
        .execute(&app.pool)
        .await
        .unwrap();
    problem(
        app.verify(json!({"id": expiring_id, "code": "1234567"})).await,
        410,
        "expired",
    )
    .await;
    assert_eq!(phone_failure_hits(&app).await, 1);
}

/// An `Idempotency-Key` claim is taken over once unanswered for a minute: a
/// replica whose waits could let a request run that long would let a retry in
/// beside it, and a second code out. Such settings are refused at start, by name.
#[tokio::test]
async fn waits_that_could_outlast_an_idempotency_claim_are_refused_at_start() {
    let database = TestDatabase::create().await;
    for tweak in [
        |s: &mut otp_service::config::Settings| s.hashing.wait_ms = 60_000,
        |s: &mut otp_service::config::Settings| s.database.call_timeout_ms = 20_000,
    ] {
        let mut settings = test_settings(&database.url, "http://127.0.0.1:9");
        tweak(&mut settings);
        let refused = otp_service::startup::Application::build(settings, None)
            .await
            .err()
            .expect("the start is refused")
            .to_string();
        for name in ["OTP_HASH_WAIT_MS", "OTP_SEND_WAIT_MS", "OTP_DB_CALL_TIMEOUT_MS"] {
            assert!(refused.contains(name), "{refused}");
        }
    }
}
