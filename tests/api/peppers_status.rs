//! `otp-service peppers status` through the real binary: what each configured
//! pepper still protects, what none does, and never a pepper.

use std::process::{Command, Output};
use std::time::Duration;

use crate::helpers::*;
use crate::peppers::{NEW_PEPPER, old_pepper, restarted};
use crate::webhook_receiver::Receiver;
use crate::webhooks::webhook_for;

const REVIEWER: &str = "+59170000077";

fn otp_service(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// What `peppers status` prints; it must succeed and never print a pepper.
fn status(app: &TestApp, env: &[(&str, &str)]) -> String {
    let output = otp_service(app, env, &["peppers", "status"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{all}");
    assert!(
        !all.contains(&old_pepper(app)) && !all.contains(NEW_PEPPER),
        "a pepper printed"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The four counts of the row that starts with `name`: pending codes, queued
/// messages, test numbers, webhook secrets.
fn row(status: &str, name: &str) -> [i64; 4] {
    let line = status
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no row {name:?} in\n{status}"));
    let counts: Vec<i64> = line
        .split_whitespace()
        .rev()
        .take(4)
        .map(|n| n.parse().unwrap())
        .collect();
    [counts[3], counts[2], counts[1], counts[0]]
}

#[tokio::test]
async fn peppers_status_says_what_each_pepper_still_protects() {
    let app = crate::webhooks::spawn().await;
    let old = old_pepper(&app);
    let receiver = Receiver::start(&[]);
    webhook_for(&app, "test-client", &receiver).await;
    let pending = app.requested("signup").await;
    let id = pending["id"].as_str().unwrap();
    app.wait_for_delivery(id, "sent", Duration::from_secs(10)).await;
    let under = |pepper: &str| {
        let added = otp_service(
            &app,
            &[("OTP_PEPPER", pepper)],
            &[
                "clients",
                "test-numbers",
                "add",
                "test-client",
                REVIEWER,
                "424242",
            ],
        );
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    };
    under(&old);
    app.stop_service().await;

    let both = [("OTP_PEPPER", NEW_PEPPER), ("OTP_PREVIOUS_PEPPERS", old.as_str())];
    let said = status(&app, &both);
    assert_eq!(row(&said, "OTP_PEPPER "), [0, 0, 0, 0], "{said}");
    assert_eq!(row(&said, "OTP_PREVIOUS_PEPPERS #1"), [1, 0, 1, 1], "{said}");
    assert_eq!(row(&said, "not configured"), [0, 0, 0, 0], "{said}");
    assert!(
        said.contains("OTP_PREVIOUS_PEPPERS #1 is still needed for:"),
        "{said}"
    );
    assert!(said.contains(&format!("test-client {REVIEWER}")), "{said}");

    // A replica started with the new pepper re-seals the webhook secret.
    drop(restarted(&app, &[&old]).await);
    let said = status(&app, &both);
    assert_eq!(row(&said, "OTP_PEPPER "), [0, 0, 0, 1], "{said}");
    assert_eq!(row(&said, "OTP_PREVIOUS_PEPPERS #1"), [1, 0, 1, 0], "{said}");

    // With the old pepper gone, what it made is what no pepper serves.
    let said = status(&app, &[("OTP_PEPPER", NEW_PEPPER)]);
    assert_eq!(row(&said, "not configured"), [1, 0, 1, 0], "{said}");
    assert!(
        said.contains("No configured pepper checks or opens these"),
        "{said}"
    );

    // Its code expired and the test number added again: the old one can go.
    sqlx::query("update verifications set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    under(NEW_PEPPER);
    let said = status(&app, &both);
    assert_eq!(row(&said, "OTP_PEPPER "), [0, 0, 1, 1], "{said}");
    assert!(
        said.contains("OTP_PREVIOUS_PEPPERS #1 protects nothing any more: remove it"),
        "{said}"
    );

    let unnamed = otp_service(&app, &[], &["peppers", "status"]);
    assert!(!unnamed.status.success());
    assert!(String::from_utf8_lossy(&unnamed.stderr).contains("OTP_PEPPER (the service's own) is needed"));
}
