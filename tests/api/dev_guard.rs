//! `serve --dev` never touches a real database.

use std::process::Command;

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
        said.contains("DATABASE_URL") && said.contains("database of its own"),
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
    assert!(said.contains("1 verifications"), "{said}");
}
