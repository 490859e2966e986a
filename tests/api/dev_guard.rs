//! `serve --dev` never touches a real database.

use std::process::Command;

use serde_json::json;
use sqlx::Connection;

use crate::dev::{DataHome, DevProcess};
use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");

/// Runs `serve --dev` on `url`, expecting it to refuse; returns what it said.
fn refused_dev(url: &str) -> String {
    let output = Command::new(BIN)
        .args(["serve", "--dev"])
        .env("DATABASE_URL", url)
        .env("OTP_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        // Nowhere the user's own dev key could be touched.
        .env("XDG_DATA_HOME", std::env::temp_dir().join("otp-dev-guard-test"))
        .output()
        .expect("the binary runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "serve --dev started on a real database: {said}"
    );
    assert!(
        !said.contains("export OTP_KEY="),
        "no dev key on a real database: {said}"
    );
    said
}

#[tokio::test]
async fn serve_dev_refuses_a_database_with_real_clients() {
    // spawn_app adds a client of its own, as `clients add` would.
    let app = spawn_app().await;
    app.stop_service().await;
    let said = refused_dev(&app.database_url);
    assert!(
        said.contains("DATABASE_URL=") && said.contains("otp-service clients remove test-client"),
        "{said}"
    );
    let keys: Vec<String> = sqlx::query_scalar("select name from clients order by name")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, ["test-client"], "no dev client was made there");
}

#[tokio::test]
async fn serve_dev_refuses_a_database_with_verifications_made_outside_it() {
    let app = spawn_app().await;
    app.requested("signup").await;
    app.stop_service().await;
    // Even if the only client left is called `dev`.
    sqlx::query("update clients set name = 'dev', made_by_dev = true")
        .execute(&app.pool)
        .await
        .unwrap();
    let said = refused_dev(&app.database_url);
    assert!(said.contains("otp-service clients remove dev"), "{said}");
}

fn cli(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn clients_the_cli_adds_to_a_dev_database_keep_it_one() {
    let database = TestDatabase::create().await;
    let home = DataHome::new();
    DevProcess::start(&database.url, &home.0).await.stop().await;
    let added = cli(&database.url, &["clients", "add", "shop"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let shop_key = String::from_utf8_lossy(&added.stdout).trim().to_owned();

    let again = DevProcess::start(&database.url, &home.0).await;
    assert_eq!(again.status_with(&shop_key).await, 404, "shop's key is let in");
    again.stop().await;
}

#[tokio::test]
async fn clients_made_by_the_dev_admin_api_keep_it_a_dev_database() {
    let database = TestDatabase::create().await;
    let home = DataHome::new();
    let admin = [("OTP_ADMIN_KEY", ADMIN_KEY)];
    let first = DevProcess::start_with(&database.url, &home.0, &admin).await;
    let created = reqwest::Client::new()
        .post(format!("{}/admin/clients", first.base))
        .header("X-Admin-Key", ADMIN_KEY)
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let shop_key = created.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = reqwest::Client::new()
        .post(format!("{}/otp/request", first.base))
        .header("X-Api-Key", &shop_key)
        .json(&json!({"phone": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    first.stop().await;

    let again = DevProcess::start_with(&database.url, &home.0, &admin).await;
    assert_eq!(again.status_with(&shop_key).await, 404);
    again.stop().await;
}

#[tokio::test]
async fn both_ways_out_the_refusal_names_work() {
    let app = spawn_app().await;
    app.requested("signup").await;
    app.stop_service().await;
    let said = refused_dev(&app.database_url);

    // Another database: one that is not this one, and that --dev takes.
    let url = said
        .split_whitespace()
        .find_map(|word| word.strip_prefix("DATABASE_URL="))
        .unwrap_or_else(|| panic!("no DATABASE_URL= in: {said}"))
        .to_owned();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let name = options.get_database().unwrap().to_owned();
    let current = app
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    assert_ne!(name, current, "{said}");
    let home = DataHome::new();
    DevProcess::start(&url, &home.0).await.stop().await;
    let mut admin = sqlx::PgConnection::connect_with(&options.database("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    // Or the clients named, removed: then this very database.
    let removed = cli(&app.database_url, &["clients", "remove", "test-client"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    DevProcess::start(&app.database_url, &home.0).await.stop().await;
}

#[tokio::test]
async fn the_real_service_makes_a_dev_database_a_real_one() {
    let database = TestDatabase::create().await;
    let home = DataHome::new();
    DevProcess::start(&database.url, &home.0).await.stop().await;
    let settings = test_settings(&database.url, "http://127.0.0.1:9");
    let app = otp_service::startup::Application::build(settings, None)
        .await
        .expect("the real service builds");
    drop(app);
    let pool = sqlx::PgPool::connect_with(database.options()).await.unwrap();
    otp_service::clients::add(&pool, "shop", None).await.unwrap();
    pool.close().await;
    let said = refused_dev(&database.url);
    assert!(said.contains("otp-service clients remove shop"), "{said}");
}
