//! A database error is logged with its message, never its `detail`, where
//! PostgreSQL quotes the row's values (phone numbers among them).

#[path = "support/capture.rs"]
mod capture;
#[path = "api/helpers.rs"]
mod helpers;

use capture::Captured;
use helpers::*;
use serde_json::json;

#[tokio::test]
async fn a_database_error_is_logged_without_its_detail() {
    let captured = Captured::install("debug");
    let app = spawn_app().await;
    // A real bug's shape: the database refuses the row, and says which row.
    sqlx::raw_sql(
        "create function refuse_row() returns trigger language plpgsql as $$
         begin
             raise exception 'row refused by a test trigger' using detail = 'the row was for ' || new.phone;
         end $$;
         create trigger refuse_row before insert on verifications for each row execute function refuse_row();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let response = app.request_code(json!({"phone": PHONE})).await;
    problem(response, 500, "internal_error").await;

    let logs = captured.text();
    assert!(
        logs.contains("row refused by a test trigger"),
        "the cause is logged"
    );
    assert!(!logs.contains(PHONE_DIGITS), "the detail is not: {logs}");
}
