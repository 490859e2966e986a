//! A command that hashes or seals with a pepper refuses one the service does
//! not hold, and needs none against a `serve --dev` database.

use std::process::Output;

use serde_json::json;

use crate::dev::{DataHome, DevProcess};
use crate::helpers::*;
use crate::peppers::{NEW_PEPPER, old_pepper, restarted};

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");
const WRONG_PEPPER: &str = "a-pepper-no-service-here-was-ever-given";

fn cli(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn test_numbers(database_url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    let n = sqlx::query_scalar("select count(*) from test_numbers")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn against_a_dev_database_the_cli_needs_no_pepper_and_refuses_a_wrong_one() {
    let database = TestDatabase::create().await;
    let home = DataHome::new();
    let dev = DevProcess::start(&database.url, &home.0).await;
    let add = ["clients", "test-numbers", "add", "dev", PHONE, "424242"];

    let wrong = cli(&database.url, &[("OTP_PEPPER", WRONG_PEPPER)], &add);
    assert!(!wrong.status.success(), "{}", said(&wrong));
    assert!(said(&wrong).contains("is not the service's"), "{}", said(&wrong));
    assert!(!said(&wrong).contains(WRONG_PEPPER), "never the pepper");
    assert_eq!(test_numbers(&database.url).await, 0, "nothing stored");

    let added = cli(&database.url, &[], &add);
    assert!(added.status.success(), "{}", said(&added));
    let http = reqwest::Client::new();
    let requested: serde_json::Value = http
        .post(format!("{}/otp/request", dev.base))
        .header("X-Api-Key", &dev.key)
        .json(&json!({"phone": PHONE}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verified = http
        .post(format!("{}/otp/verify", dev.base))
        .header("X-Api-Key", &dev.key)
        .json(&json!({"id": requested["id"], "code": "424242"}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200, "the fixed code verifies");
    dev.stop().await;
}

#[tokio::test]
async fn a_pepper_the_service_does_not_hold_is_refused_naming_the_mismatch() {
    let app = spawn_app().await;
    let old = old_pepper(&app);
    // The service now runs with NEW_PEPPER, the old one as a previous pepper.
    let (_restarted, _) = restarted(&app, &[&old]).await;
    let add = ["clients", "test-numbers", "add", "test-client", PHONE, "424242"];

    let wrong = cli(&app.database_url, &[("OTP_PEPPER", WRONG_PEPPER)], &add);
    assert!(!wrong.status.success());
    assert!(said(&wrong).contains("is not the service's"), "{}", said(&wrong));
    let previous = cli(&app.database_url, &[("OTP_PEPPER", &old)], &add);
    assert!(!previous.status.success());
    assert!(
        said(&previous).contains("OTP_PREVIOUS_PEPPERS"),
        "{}",
        said(&previous)
    );
    assert_eq!(test_numbers(&app.database_url).await, 0);

    // Refused before any of the change is written.
    let set = [
        "clients",
        "set",
        "test-client",
        "--display-name",
        "Renamed",
        "--webhook-url",
        "https://shop.example/hooks",
    ];
    let refused = cli(&app.database_url, &[("OTP_PEPPER", WRONG_PEPPER)], &set);
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("is not the service's"),
        "{}",
        said(&refused)
    );
    let name: Option<String> =
        sqlx::query_scalar("select display_name from clients where name = 'test-client'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(name, None, "nothing was changed");
    let rotate = ["clients", "rotate-webhook-secret", "test-client"];
    let refused = cli(&app.database_url, &[("OTP_PEPPER", WRONG_PEPPER)], &rotate);
    assert!(
        said(&refused).contains("is not the service's"),
        "{}",
        said(&refused)
    );

    let right = cli(&app.database_url, &[("OTP_PEPPER", NEW_PEPPER)], &add);
    assert!(right.status.success(), "{}", said(&right));
}

/// Replicas starting together each record their peppers: the records replace
/// one another, none fails on the other's rows (two replicas did, at random,
/// with a duplicate key).
#[tokio::test]
async fn replicas_starting_together_record_their_peppers_without_failing() {
    use otp_service::store::peppers_in_use;
    let app = spawn_app().await;
    let (current, previous) = (b"current-id".to_vec(), vec![b"previous-id".to_vec()]);
    let starts = (0..8).map(|_| peppers_in_use::record(&app.pool, &current, &previous));
    for recorded in futures_util::future::join_all(starts).await {
        recorded.expect("each start records its peppers");
    }
    let held = peppers_in_use::read(&app.pool).await.unwrap();
    let ids: Vec<(Vec<u8>, bool)> = held.into_iter().map(|p| (p.key_id, p.current)).collect();
    assert_eq!(ids, [(current, true), (previous[0].clone(), false)]);
}
