//! `clients set --webhook-url` and `clients rotate-webhook-secret` through
//! the real binary: refused URLs, the secret shown once, stored sealed.

use secrecy::ExposeSecret;

use crate::helpers::*;
use crate::webhook_receiver::Receiver;
use crate::webhooks::{WAIT, request, spawn};

fn cli(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let pepper = app.settings.pepper.as_ref().unwrap().expose_secret().to_owned();
    std::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("OTP_PEPPER", pepper)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn clients_set_refuses_private_and_plain_http_urls_and_shows_the_secret_once() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    // As recorded by a service that allows no private address (this one
    // does, for its receiver: put back below).
    record_url_policy(&app, false).await;
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for (url, why) in [
        ("https://10.0.0.1/hooks", "private"),
        ("https://169.254.169.254/latest", "private"),
        (receiver.url.as_str(), "private"),
        ("http://example.com/hooks", "https"),
        ("ftp://example.com/hooks", "not a valid"),
    ] {
        let refused = cli(
            &app,
            &[],
            &["clients", "set", "test-client", "--webhook-url", url],
        );
        assert!(!refused.status.success(), "{url} was accepted");
        assert!(text(&refused).contains(why), "{url}: {}", text(&refused));
    }
    let none: Option<String> =
        sqlx::query_scalar("select webhook_url from clients where name = 'test-client'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(none, None);
    record_url_policy(&app, true).await;

    let allowed = [("OTP_WEBHOOK_ALLOW_PRIVATE", "true")];
    let set = cli(
        &app,
        &allowed,
        &["clients", "set", "test-client", "--webhook-url", &receiver.url],
    );
    assert!(set.status.success(), "{}", text(&set));
    let secret = String::from_utf8_lossy(&set.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{}", text(&set));
    assert!(text(&set).contains(&receiver.url));
    let again = cli(
        &app,
        &allowed,
        &["clients", "set", "test-client", "--webhook-url", &receiver.url],
    );
    assert!(
        again.status.success() && !text(&again).contains("whsec_"),
        "shown once: {}",
        text(&again)
    );
    let shown = cli(&app, &[], &["clients", "show", "test-client"]);
    assert!(text(&shown).contains(&receiver.url) && !text(&shown).contains("whsec_"));
    let stored: Vec<u8> =
        sqlx::query_scalar("select webhook_secret_sealed from clients where name = 'test-client'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !String::from_utf8_lossy(&stored).contains(&secret[6..]),
        "stored sealed"
    );

    let rotated = cli(&app, &[], &["clients", "rotate-webhook-secret", "test-client"]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    let new = String::from_utf8_lossy(&rotated.stdout).trim().to_owned();
    assert!(new.starts_with("whsec_") && new != secret);
    request(&app, &app.api_key, PHONE).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert!(got[0].verifies_with(&secret) && got[0].verifies_with(&new));

    let cleared = cli(
        &app,
        &[],
        &["clients", "set", "test-client", "--unset", "webhook-url"],
    );
    assert!(cleared.status.success(), "{}", text(&cleared));
    assert!(text(&cleared).contains("no webhook"));
}

async fn record_url_policy(app: &TestApp, allow_private: bool) {
    sqlx::query("update webhook_url_policy set allow_private = $1")
        .bind(allow_private)
        .execute(&app.pool)
        .await
        .unwrap();
}

fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The command line accepts the URLs the service accepts, read from what the
/// service recorded at its start: no OTP_WEBHOOK_ALLOW_* to repeat.
#[tokio::test]
async fn clients_set_accepts_what_the_service_accepts_without_its_settings() {
    let app = spawn().await;
    let receiver = Receiver::start(&[]);
    assert!(receiver.url.starts_with("http://127.0.0.1"), "{}", receiver.url);
    let set = cli(
        &app,
        &[],
        &["clients", "set", "test-client", "--webhook-url", &receiver.url],
    );
    assert!(set.status.success(), "{}", said(&set));
    assert!(!said(&set).contains("warning"), "{}", said(&set));
    let stdout = String::from_utf8_lossy(&set.stdout).into_owned();
    let secret = stdout.lines().next().unwrap_or_default().to_owned();
    request(&app, &app.api_key, PHONE).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert!(got[0].verifies_with(&secret));
}

/// A service that allows no private address: the refusal says that plain
/// http to loopback needs OTP_WEBHOOK_ALLOW_PRIVATE, and a URL let through
/// only by the command line's own setting is set with a warning.
#[tokio::test]
async fn loopback_needs_allow_private_and_the_cli_says_when_the_service_would_refuse() {
    let app = spawn_app().await;
    let receiver = Receiver::start(&[]);
    let args = ["clients", "set", "test-client", "--webhook-url", &receiver.url];
    let refused = cli(&app, &[], &args);
    assert!(!refused.status.success());
    let text = said(&refused);
    assert!(
        text.contains("OTP_WEBHOOK_ALLOW_PRIVATE=true") && text.contains("loopback"),
        "{text}"
    );
    let refused = cli(
        &app,
        &[],
        &[
            "clients",
            "set",
            "test-client",
            "--webhook-url",
            "http://example.com/hooks",
        ],
    );
    let text = said(&refused);
    assert!(
        text.contains("plain http goes only to loopback") && text.contains("OTP_WEBHOOK_ALLOW_PRIVATE"),
        "{text}"
    );

    let set = cli(&app, &[("OTP_WEBHOOK_ALLOW_PRIVATE", "true")], &args);
    assert!(set.status.success(), "{}", said(&set));
    assert!(
        said(&set).contains("warning: the service, as last started on this database, refuses this URL"),
        "{}",
        said(&set)
    );
}
