//! A database error is logged with its message, never its `detail`, where
//! PostgreSQL quotes the row's values (phone numbers among them).

#[path = "api/helpers.rs"]
mod helpers;

use std::io::Write;
use std::sync::{Arc, Mutex};

use helpers::*;
use otp_service::config::LogFormat;
use serde_json::json;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_database_error_is_logged_without_its_detail() {
    let captured = Captured::default();
    let writer = captured.clone();
    otp_service::telemetry::init_with_filter(LogFormat::Json, EnvFilter::new("debug"), move || {
        writer.clone()
    });
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

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("row refused by a test trigger"),
        "the cause is logged"
    );
    assert!(!logs.contains(PHONE_DIGITS), "the detail is not: {logs}");
}
