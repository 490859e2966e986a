//! The security review's findings: stray gateway answers, stale answers after
//! a resume, expiry under a slow hash, NIST bounds, the daily failure cap.

use std::time::Duration;

use futures_util::future::join_all;
use otp_service::config::HashSettings;
use otp_service::delivery::fake_gateway::Scripted;
use otp_service::domain::CodeLength;
use otp_service::startup::Application;
use serde_json::{Value, json};

use crate::helpers::*;

async fn senders_report(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/admin/senders", app.address))
        .header("X-Admin-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stray_4xx_rests_the_key_and_the_message_still_arrives() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    // A proxy's 403, then a 400 the contract does not name, then the gateway itself.
    app.fake.script([
        Scripted::Answer {
            status: 403,
            message: "Forbidden",
            after: Duration::ZERO,
        },
        Scripted::Answer {
            status: 400,
            message: "Your session token is about to expire",
            after: Duration::ZERO,
        },
    ]);
    let v = app.requested("signup").await;
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(20))
        .await;
    assert!(app.fake.last_message_to(PHONE_DIGITS).is_some());
    let report = senders_report(&app).await;
    let state = report["senders"][0]["state"].as_str().unwrap();
    assert!(matches!(state, "ok" | "backing_off"), "in service: {report}");
    let refused = [("result", "retried"), ("class", "refused")];
    assert_eq!(metric_with(&app, "otp_messages_total", &refused).await, 2.0);
    assert_eq!(
        app.verification(v["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_session_ended_answer_to_a_send_started_before_a_resume_is_old_news() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    app.fake.script([Scripted::Answer {
        status: 400,
        message: "Session has ended",
        after: Duration::from_secs(3),
    }]);
    let request = {
        let (http, address, key) = (app.http.clone(), app.address.clone(), app.api_key.clone());
        tokio::spawn(async move {
            http.post(format!("{address}/otp/request"))
                .header("X-Api-Key", key)
                .json(&json!({"phone": PHONE}))
                .send()
                .await
                .unwrap()
        })
    };
    app.wait_for(
        "the send to reach the gateway",
        Duration::from_secs(10),
        || async { app.fake.received() == 1 },
    )
    .await;
    // The operator resumes while that send waits for its answer.
    let resumed = app
        .http
        .post(format!("{}/admin/senders/sender-1/resume", app.address))
        .header("X-Admin-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let v: Value = request.await.unwrap().json().await.unwrap();
    app.wait_for_delivery(v["id"].as_str().unwrap(), "sent", Duration::from_secs(20))
        .await;
    assert_eq!(senders_report(&app).await["senders"][0]["state"], "ok");
}

/// Production-strength hashing on one worker: a queue of wrong codes is long.
fn one_slow_worker(s: &mut otp_service::config::Settings, wait_ms: u64) {
    s.hashing = HashSettings {
        memory_kib: 19456,
        iterations: 2,
        workers: 1,
        wait_ms,
        ..s.hashing.clone()
    };
    s.policy.max_attempts = 100;
    s.policy.phone_failures_per_hour = 10_000;
    s.policy.phone_failures_per_day = 10_000;
}

#[tokio::test]
async fn a_right_code_never_approves_after_its_expiry() {
    // As long a hash wait as the Idempotency-Key budget lets a replica start with.
    let app = spawn_app_with(|s| one_slow_worker(s, 10_000)).await;
    let flooded = app
        .request_code(json!({"phone": nth_phone(1)}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    // Malformed codes need no hash: a wrong one of the right length does.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let flood_id = flooded["id"].as_str().unwrap().to_owned();
    let flood = {
        let (http, address, key) = (app.http.clone(), app.address.clone(), app.api_key.clone());
        tokio::spawn(async move {
            join_all((0..30).map(|_| {
                http.post(format!("{address}/otp/verify"))
                    .header("X-Api-Key", &key)
                    .json(&json!({"id": flood_id, "code": wrong}))
                    .send()
            }))
            .await
        })
    };
    app.wait_for("the flood to be reserved", Duration::from_secs(20), || async {
        let attempts: i32 = sqlx::query_scalar("select failed_attempts from verifications where phone = $1")
            .bind(nth_phone(1))
            .fetch_one(&app.pool)
            .await
            .unwrap();
        attempts == 30
    })
    .await;
    // The right code is let in while valid, and hashed behind the flood, after its expiry.
    sqlx::query(
        "update verifications set expires_at = now() + interval '200 milliseconds' where id = $1::uuid",
    )
    .bind(id)
    .execute(&app.pool)
    .await
    .unwrap();
    let answer = app.verify(json!({"id": id, "code": code})).await;
    problem(answer, 410, "expired").await;
    assert_ne!(app.verification(id).await["status"], "approved");
    flood.await.unwrap();
}

#[tokio::test]
async fn a_verify_that_gets_no_hashing_worker_in_time_is_503_and_keeps_its_attempt() {
    let app = spawn_app_with(|s| one_slow_worker(s, 100)).await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let answers = join_all((0..30).map(|_| app.verify(json!({"id": id, "code": wrong})))).await;
    let mut judged = 0;
    let mut busy = 0;
    for answer in answers {
        match answer.status().as_u16() {
            422 => judged += 1,
            503 => {
                problem(answer, 503, "unavailable").await;
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "one worker cannot judge 30 codes in 100 ms");
    assert_eq!(judged + busy, 30);
    let v = app.verification(id).await;
    assert_eq!(v["attempts_remaining"], 100 - judged, "only judged codes count");
    let failures: i64 =
        sqlx::query_scalar("select count(*) from limit_hits where bucket like 'wrong-codes:%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(failures, i64::from(judged));
}

#[tokio::test]
async fn weak_codes_are_refused_at_start_unless_allowed() {
    let database = TestDatabase::create().await;
    let mut settings = test_settings(&database.url, "http://127.0.0.1:9");
    settings.policy.code_length = CodeLength::new(4).unwrap();
    let refused = Application::build(settings.clone(), None)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("OTP_ALLOW_WEAK_CODES"), "{refused}");
    settings.policy.code_length = CodeLength::new(6).unwrap();
    settings.policy.ttl_seconds = 601;
    let refused = Application::build(settings.clone(), None)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("OTP_TTL_SECONDS"), "{refused}");
    settings.policy.allow_weak_codes = true;
    assert!(Application::build(settings, None).await.is_ok());
}

#[tokio::test]
async fn a_phone_gets_at_most_its_daily_wrong_codes_across_verifications() {
    let app = spawn_app_with(|s| {
        s.policy.phone_failures_per_day = 3;
        s.policy.max_attempts = 2;
    })
    .await;
    let mut codes = Vec::new();
    for purpose in ["a", "b"] {
        let v = app.requested(purpose).await;
        codes.push((
            v["id"].as_str().unwrap().to_owned(),
            app.last_code_to(PHONE_DIGITS),
        ));
    }
    for (id, _) in codes.iter().chain(&codes[..1]) {
        let answer = app.verify(json!({"id": id, "code": "12"})).await;
        problem(answer, 422, "invalid_code").await;
    }
    // The fourth wrong code of the day, on the verification that has one left, and even the right code.
    let (id, code) = &codes[1];
    let refused = problem(
        app.verify(json!({"id": id, "code": "12"})).await,
        429,
        "rate_limited",
    )
    .await;
    assert!(refused["detail"].as_str().unwrap().contains("today"), "{refused}");
    problem(
        app.verify(json!({"id": id, "code": code})).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(app.verification(id).await["attempts_remaining"], 1);
}

#[tokio::test]
async fn a_retry_after_from_the_gateway_rests_a_key_at_most_15_minutes() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    app.fake.script([Scripted::TooManyRequests {
        retry_after: Some(86_400),
    }]);
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "queued");
    let report = senders_report(&app).await;
    let until: chrono::DateTime<chrono::Utc> = report["senders"][0]["resting_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rest = until - chrono::Utc::now();
    assert!(
        rest <= chrono::Duration::seconds(15 * 60) && rest > chrono::Duration::seconds(14 * 60),
        "{rest}"
    );
}

#[tokio::test]
async fn enormous_per_key_rates_saturate_instead_of_overflowing() {
    let app = spawn_app_with(|s| {
        two_keys(s);
        s.gateway.rate_per_minute = u32::MAX;
    })
    .await;
    let v = app.requested("signup").await;
    assert_eq!(v["delivery_status"], "sent");
}
