//! The real binary: client keys, migrations, configuration errors, SIGTERM.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");

fn otp_service(database_url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn clients_add_list_revoke() {
    let app = spawn_app().await;
    let url = &app.database_url;

    let added = otp_service(url, &["clients", "add", "shop", "--requests-per-minute", "60"]);
    assert!(added.status.success(), "{}", stderr(&added));
    let key = stdout(&added).trim().to_owned();
    assert!(key.starts_with("otpk_") && key.len() >= 5 + 32, "{key}");

    let response = app.post_as(&key, "/otp/request", &json!({"phone": PHONE})).await;
    assert_eq!(response.status(), 202);

    let duplicate = otp_service(url, &["clients", "add", "shop"]);
    assert!(!duplicate.status.success());
    assert!(stderr(&duplicate).contains("already exists"));

    let listed = otp_service(url, &["clients", "list"]);
    assert!(listed.status.success());
    let listing = stdout(&listed);
    assert!(listing.contains("shop") && listing.contains("60"), "{listing}");
    assert!(!listing.contains(&key[5..]), "a key must never be listed");

    let stored: Vec<u8> = sqlx::query_scalar("select key_hash from clients where name = 'shop'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&key[5..]));

    // Told to the running service by notification, a moment after it commits.
    let revoked = app
        .changing_clients(async { otp_service(url, &["clients", "revoke", "shop"]) })
        .await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    problem(
        app.post_as(&key, "/otp/request", &json!({"phone": PHONE})).await,
        401,
        "unauthorized",
    )
    .await;

    let unknown = otp_service(url, &["clients", "revoke", "nobody"]);
    assert!(!unknown.status.success());
}

#[tokio::test]
async fn migrate_twice_is_a_no_op() {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    let first = otp_service(&url, &["migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert!(
        stdout(&first).contains(&format!("migrations applied: {files}")),
        "{}",
        stdout(&first)
    );
    let second = otp_service(&url, &["migrate"]);
    assert!(second.status.success());
    assert!(stdout(&second).contains("migrations applied: 0"));
}

#[test]
fn serve_names_the_missing_or_invalid_setting() {
    let url = "postgres://postgres@127.0.0.1:5432/unused";
    let missing = otp_service(url, &["serve"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("OTP_PEPPER"), "{}", stderr(&missing));

    let output = Command::new(BIN)
        .args(["serve"])
        .env("OTP_PEPPER", "short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("OTP_PEPPER"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("short"), "a secret must not be printed");

    let output = Command::new(BIN)
        .args(["serve"])
        .env("OTP_PEPPER", "p".repeat(40))
        .env("WACONECTA_API_KEYS", "k")
        .env("OTP_CODE_LENGTH", "3")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("OTP_CODE_LENGTH"), "{}", stderr(&output));

    let output = Command::new(BIN)
        .args(["serve"])
        .env("OTP_PEPPER", "p".repeat(40))
        .env_remove("WACONECTA_API_KEYS")
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("WACONECTA_API_KEYS"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn sigterm_stops_the_service_cleanly() {
    let app = spawn_app().await;
    let mut child = ServiceProcess::start(&app, &[]).await;
    child.terminate();
    let status = tokio::time::timeout(Duration::from_secs(30), child.process.wait())
        .await
        .expect("stops within the shutdown timeout")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_fake_gateway_runs_alone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _child = tokio::process::Command::new(BIN)
        .args([
            "fake-gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--keys",
            "k1",
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/v1/services/sendMessage");
    let body = json!({"number": "59169657008", "message": "hola"});
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(r) = http.post(&url).header("x-api-key", "k1").json(&body).send().await {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer: serde_json::Value = answer.expect("the fake serves").json().await.unwrap();
    assert_eq!(answer["success"], true);
    assert_eq!(answer["data"]["key"]["remoteJid"], "59169657008@s.whatsapp.net");
    let refused: serde_json::Value = http
        .post(&url)
        .header("x-api-key", "wrong")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["message"], "No autorizado");
    assert_eq!(refused["data"], "");
    let inbox: Vec<serde_json::Value> = http
        .get(format!("http://127.0.0.1:{port}/fake/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
}

#[test]
fn a_database_url_without_its_scheme_says_what_form_it_needs() {
    for args in [&["migrate"][..], &["clients", "list"]] {
        let output = otp_service("localhost:5432/otp_service", args);
        assert!(!output.status.success());
        let text = stderr(&output);
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(text.contains("postgres://user@host:5432/database"), "{text}");
        assert!(!text.contains("anonymous"), "{text}");
    }
}

#[test]
fn an_unreachable_database_names_database_url_and_says_each_cause_once() {
    // Nothing listens on port 1.
    let url = "postgres://postgres@127.0.0.1:1/otp_service";
    for args in [
        &["migrate"][..],
        &["clients", "list"],
        &["clients", "add", "shop"],
    ] {
        let output = otp_service(url, args);
        assert!(!output.status.success());
        let text = stderr(&output);
        assert!(
            text.contains("is PostgreSQL running and DATABASE_URL right?"),
            "{args:?}: {text}"
        );
        assert_eq!(text.matches("Connection refused").count(), 1, "{args:?}: {text}");
    }
}

#[test]
fn serve_help_names_the_metrics_listener() {
    let help = otp_service("postgres://postgres@127.0.0.1:5432/unused", &["serve", "--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    assert!(
        text.contains("--metrics-listen <OTP_METRICS_LISTEN>") && text.contains("404"),
        "{text}"
    );
}
