//! Pumping detection: a prefix with many codes sent and none verified is
//! flagged (`record`), and refused (`enforce`) while other prefixes, the
//! safe list and test numbers go on; an end user asking for numbers of a
//! fourth country in a day is flagged.

use std::time::Duration;

use otp_service::fraud::FraudMode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, json_of};
use crate::helpers::*;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn spawn(mode: FraudMode) -> TestApp {
    spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.fraud.mode = mode;
        s.fraud.check_seconds = 0.1;
    })
    .await
}

/// A pumped range: Bolivian numbers +591 777…, never verified.
pub(crate) fn pumped(n: usize) -> String {
    format!("+591777{:05}", n)
}

/// A converting range: Peruvian mobile numbers.
pub(crate) fn peruvian(n: usize) -> String {
    format!("+5198765{:04}", n)
}

pub(crate) async fn converting_traffic(app: &TestApp, count: usize) {
    for n in 0..count {
        let phone = peruvian(n);
        let sent: Value = app
            .request_code(json!({"phone": phone}))
            .await
            .json()
            .await
            .unwrap();
        let code = app.last_code_to(&phone[1..]);
        let verified = app.verify(json!({"id": sent["id"], "code": code})).await;
        assert_eq!(verified.status(), 200);
    }
}

pub(crate) async fn flags(app: &TestApp) -> Vec<Value> {
    let listed = json_of(admin(app, Method::GET, "/fraud/flags"), 200).await;
    listed.as_array().unwrap().clone()
}

pub(crate) async fn wait_for_flag(app: &TestApp, rule: &str, scope: &str, key: &str) -> Value {
    wait_for_flag_with(app, rule, scope, key, |_| true).await
}

/// The flag, once it stands and `ready` holds of it (its figures are
/// brought up to date at every count).
pub(crate) async fn wait_for_flag_with(
    app: &TestApp,
    rule: &str,
    scope: &str,
    key: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let start = std::time::Instant::now();
    loop {
        let found = flags(app)
            .await
            .into_iter()
            .find(|f| f["rule"] == rule && f["scope"] == scope && f["key"] == key && ready(f));
        if let Some(flag) = found {
            return flag;
        }
        assert!(
            start.elapsed() < WAIT,
            "no {rule} flag on {scope} {key}: {:?}",
            flags(app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn record_flags_a_pumped_prefix_and_still_answers_202() {
    let app = spawn(FraudMode::Record).await;
    converting_traffic(&app, 5).await;
    for n in 0..50 {
        let answer = app.request_code(json!({"phone": pumped(n)})).await;
        assert_eq!(answer.status(), 202, "record mode refuses nothing");
    }
    let flag = wait_for_flag_with(&app, "unverified_day", "prefix", "591777", |f| f["counted"] == 50).await;
    assert_eq!(flag["threshold"], 20.0);
    assert_eq!(flag["client"], "test-client");
    assert_eq!(flag["country"], "BO");
    wait_for_flag(&app, "low_conversion_hour", "prefix", "591777").await;
    wait_for_flag(&app, "unverified_day", "country", "BO").await;
    assert!(
        flags(&app)
            .await
            .iter()
            .all(|f| f["key"] != "51987" && f["key"] != "PE"),
        "the converting range is not flagged"
    );
    assert_eq!(
        metric_with(
            &app,
            "otp_fraud_flags_total",
            &[("rule", "unverified_day"), ("country", "BO")]
        )
        .await,
        2.0,
        "the prefix and the country, each counted once"
    );
    assert_eq!(app.request_code(json!({"phone": pumped(60)})).await.status(), 202);
}

#[tokio::test]
async fn enforce_refuses_the_flagged_prefix_but_not_other_prefixes_the_safe_list_or_test_numbers() {
    let app = spawn(FraudMode::Enforce).await;
    converting_traffic(&app, 3).await;
    // Twenty sends, none verified: the hour's rule flags the range (the
    // day's wants more than 20), and the next ones are refused.
    for n in 0..20 {
        assert_eq!(app.request_code(json!({"phone": pumped(n)})).await.status(), 202);
    }
    let flag = wait_for_flag(&app, "low_conversion_hour", "prefix", "591777").await;
    let refused = app.request_code(json!({"phone": pumped(30)})).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = problem(refused, 429, "rate_limited").await;
    assert_eq!(body["reason"], "suspected_fraud");
    assert!(
        (3000..=3600).contains(&retry_after),
        "until the hour's window clears: {retry_after} ({flag})"
    );
    assert_eq!(
        app.request_code(json!({"phone": peruvian(50)})).await.status(),
        202
    );

    let numbers = "/clients/test-client/test-numbers";
    let added = admin(&app, Method::POST, numbers)
        .json(&json!({"phone": pumped(40), "code": "123456"}))
        .send();
    assert_eq!(app.changing_clients(added).await.unwrap().status(), 201);
    assert_eq!(
        app.request_code(json!({"phone": pumped(40)})).await.status(),
        202,
        "a test number"
    );

    let allowed = admin(&app, Method::PUT, "/fraud/591777")
        .json(&json!({"action": "allow"}))
        .send();
    assert_eq!(app.changing_clients(allowed).await.unwrap().status(), 200);
    assert_eq!(
        app.request_code(json!({"phone": pumped(31)})).await.status(),
        202,
        "the safe list"
    );
}

#[tokio::test]
async fn an_end_user_asking_for_a_fourth_country_in_a_day_is_flagged() {
    let app = spawn(FraudMode::Record).await;
    let ip = "203.0.113.9";
    for phone in ["+59169657008", "+51987654321", "+5491123456789"] {
        let answer = app.request_code(json!({"phone": phone, "end_user_ip": ip})).await;
        assert_eq!(answer.status(), 202);
    }
    // Give the detector a few rounds: three countries raise nothing.
    let rounds = metric(&app, "otp_fraud_flags_total").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        flags(&app).await.iter().all(|f| f["rule"] != "ip_countries"),
        "{rounds}"
    );
    let fourth = app
        .request_code(json!({"phone": "+34612345678", "end_user_ip": ip}))
        .await;
    assert_eq!(fourth.status(), 202);
    let flag = wait_for_flag(&app, "ip_countries", "ip", ip).await;
    assert_eq!(flag["counted"], 4);
}

#[tokio::test]
async fn a_prefix_that_usually_converts_more_has_a_higher_bound() {
    let app = spawn(FraudMode::Record).await;
    // Three days ago the range had a busy day: 150 codes verified. The clock
    // is moved through the database: copies of one approved verification,
    // verified then.
    converting_traffic(&app, 1).await;
    sqlx::query(
        "insert into verifications (id, client_id, phone, purpose, locale, status, code_hash, max_attempts,
                                    last_sent_at, expires_at, created_at, verified_at, country, prefix)
         select gen_random_uuid(), client_id, '+591777' || lpad(n::text, 5, '0'), purpose, locale, 'approved',
                code_hash, max_attempts, now() - interval '3 days', now() - interval '3 days',
                now() - interval '3 days', now() - interval '3 days' + interval '1 minute', 'BO', '591777'
         from verifications, generate_series(1, 150) as n limit 150",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    // 25 codes not verified: over 20, under 0.2 × 150 = 30.
    for n in 0..25 {
        assert_eq!(app.request_code(json!({"phone": pumped(n)})).await.status(), 202);
    }
    // The hour's rule has no baseline: it flags as soon as it counts 20.
    wait_for_flag_with(&app, "low_conversion_hour", "prefix", "591777", |f| {
        f["counted"] == 25
    })
    .await;
    let day_flags: Vec<Value> = flags(&app)
        .await
        .into_iter()
        .filter(|f| f["rule"] == "unverified_day" && f["key"] == "591777")
        .collect();
    assert!(
        day_flags.is_empty(),
        "25 is under this range's bound of 30: {day_flags:?}"
    );
    for n in 25..31 {
        assert_eq!(app.request_code(json!({"phone": pumped(n)})).await.status(), 202);
    }
    let flag = wait_for_flag(&app, "unverified_day", "prefix", "591777").await;
    assert_eq!(flag["threshold"], 30.0);
}

/// The detector's counts scan a day or two weeks of verifications: on a busy
/// database they take longer than a request's statement may. They run in a
/// `long_scan`, whose statements the request's statement timeout does not
/// cancel; on the same connections a plain statement is cancelled.
#[tokio::test]
async fn the_detectors_scans_outlast_the_statement_timeout_of_requests() {
    let database = TestDatabase::create().await;
    let options = database.options().options([("statement_timeout", "100")]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let cancelled = sqlx::query("select pg_sleep(0.5)").execute(&pool).await;
    let code = cancelled
        .unwrap_err()
        .as_database_error()
        .unwrap()
        .code()
        .unwrap()
        .into_owned();
    assert_eq!(code, "57014", "a plain statement is cancelled at 100 ms");

    let mut scan = otp_service::store::long_scan(&pool, Duration::from_secs(10))
        .await
        .unwrap();
    sqlx::query("select pg_sleep(0.5)")
        .execute(&mut *scan)
        .await
        .expect("a scan's statement runs past the request's statement timeout");
    scan.commit().await.unwrap();
    // And only that transaction's: the connection is back at 100 ms.
    assert!(sqlx::query("select pg_sleep(0.5)").execute(&pool).await.is_err());
}
