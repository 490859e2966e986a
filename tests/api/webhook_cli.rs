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
