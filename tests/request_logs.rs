//! One line per request, at a level that says whether an operator should
//! look: `INFO` for a 4xx (the caller's mistake), `ERROR` for a 5xx. Its own
//! test binary, since the log subscriber is global.

#[path = "support/capture.rs"]
mod capture;
#[path = "api/helpers.rs"]
mod helpers;

use capture::Captured;
use helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_4xx_is_one_info_line_and_a_5xx_one_error_line() {
    let captured = Captured::install("info,sqlx=warn");
    let (app, proxy) = spawn_app_behind_proxy(|_| {}).await;

    for (n, status) in [401, 404, 400, 200, 503].into_iter().enumerate() {
        if status == 503 {
            proxy.cut().await;
        }
        let before = captured.len();
        let response = match n {
            0 => {
                app.post_as("wrong", "/otp/request", &json!({"phone": PHONE}))
                    .await
            }
            1 => app.get("/otp/0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01").await,
            2 => app.request_code(json!({"phone": "+591 123"})).await,
            3 => app.get_open("/healthz").await,
            _ => app.request_code(json!({"phone": PHONE})).await,
        };
        assert_eq!(response.status(), status);
        // The line is written as the answer leaves; give it a moment.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let lines = request_lines(&captured.text_since(before));
        let finished: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == "request finished")
            .collect();
        assert_eq!(finished.len(), 1, "{status}: {lines:#?}");
        let wanted = if status >= 500 { "ERROR" } else { "INFO" };
        assert_eq!(finished[0]["level"], wanted, "{status}: {lines:#?}");
        assert_eq!(finished[0]["status"], status);
        let from_the_middleware = lines
            .iter()
            .filter(|l| {
                l["target"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("tracing_actix_web")
            })
            .count();
        assert_eq!(from_the_middleware, 0, "{status}: {lines:#?}");
        if status < 500 {
            assert!(
                lines
                    .iter()
                    .all(|l| l["level"] == "INFO" || l["level"] == "DEBUG"),
                "{status}: {lines:#?}"
            );
        }
    }
}

/// The request lines (those in a request's span) of `text`.
fn request_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["span"]["request_id"].is_string())
        .collect()
}
