//! `otp-service clients remove` and `DELETE /admin/clients/{name}`: a client
//! goes with everything that is its, and no other client loses anything.

use reqwest::Method;
use serde_json::json;

use crate::admin_clients::{admin, admin_app, json_of};
use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");

fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("the binary runs")
}

/// Rows of `table` that belong to the client named `name`.
async fn rows_of(app: &TestApp, table: &str, name: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from {table} t join clients c on c.id = t.client_id where c.name = $1"
    )))
    .bind(name)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

async fn orphans(app: &TestApp) -> i64 {
    let mut total = 0;
    for table in [
        "verifications",
        "outbox_messages",
        "test_numbers",
        "webhook_events",
        "stats_events",
        "idempotency_keys",
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from {table} t where not exists (select 1 from clients c where c.id = t.client_id)"
        )))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        total += n;
    }
    total
}

#[tokio::test]
async fn delete_admin_client_takes_its_verifications_and_its_key_and_spares_the_others() {
    let app = admin_app().await;
    let created = json_of(
        admin(&app, Method::POST, "/clients").json(&json!({"name": "shop"})),
        201,
    )
    .await;
    let shop_key = created["key"].as_str().unwrap().to_owned();
    let sent = app
        .post_as(&shop_key, "/otp/request", &json!({"phone": nth_phone(1)}))
        .await;
    assert_eq!(sent.status(), 202);
    let added = admin(&app, Method::POST, "/clients/shop/test-numbers")
        .json(&json!({"phone": nth_phone(2), "code": "424242"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    app.requested("signup").await;
    let others_before = rows_of(&app, "verifications", "test-client").await;

    let removed = json_of(admin(&app, Method::DELETE, "/clients/shop"), 200).await;
    assert_eq!(removed["name"], "shop");
    assert_eq!(removed["verifications"], 1, "{removed}");
    assert_eq!(removed["test_numbers"], 1, "{removed}");

    problem(
        app.post_as(&shop_key, "/otp/request", &json!({"phone": nth_phone(1)}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(orphans(&app).await, 0, "nothing of shop is left behind");
    let stats: i64 = sqlx::query_scalar(
        "select (select count(*) from verification_stats) + (select count(*) from approval_time_stats)
              + (select count(*) from stats_events s where not exists (select 1 from clients c where c.id = s.client_id))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stats, 0);
    assert_eq!(
        rows_of(&app, "verifications", "test-client").await,
        others_before,
        "the other client keeps its verifications"
    );
    assert_eq!(
        app.request_code(json!({"phone": nth_phone(3)})).await.status(),
        202
    );

    let again = admin(&app, Method::DELETE, "/clients/shop").send().await.unwrap();
    problem(again, 404, "not_found").await;
}

#[tokio::test]
async fn clients_remove_says_what_went_and_running_services_refuse_the_key() {
    let app = spawn_app().await;
    let added = cli(&app, &["clients", "add", "shop"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let key = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    let sent = app
        .post_as(&key, "/otp/request", &json!({"phone": nth_phone(4)}))
        .await;
    assert_eq!(sent.status(), 202);

    let removed = app
        .changing_clients(async { cli(&app, &["clients", "remove", "shop"]) })
        .await;
    let said = String::from_utf8_lossy(&removed.stdout);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(said.contains("`shop` removed, with 1 verifications"), "{said}");
    problem(
        app.post_as(&key, "/otp/request", &json!({"phone": nth_phone(4)}))
            .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(orphans(&app).await, 0);

    let unknown = cli(&app, &["clients", "remove", "shop"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no client named `shop`"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
