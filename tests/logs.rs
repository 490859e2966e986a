//! Every log line, at every level, through a whole flow: the code must not be
//! in any of them, and phone numbers only masked.

#[path = "support/capture.rs"]
mod capture;
#[path = "api/helpers.rs"]
mod helpers;

use std::time::Duration;

use capture::Captured;
use helpers::*;
use otp_service::delivery::fake_gateway::Scripted;
use otp_service::domain::CodeLength;
use serde_json::json;

#[tokio::test]
async fn no_code_in_any_log_line_at_trace_level() {
    let captured = Captured::install("trace");

    // Ten digits: a six-digit code could turn up by chance in a timestamp or a latency.
    let app = spawn_app_with(|s| {
        s.policy.resend_cooldown_seconds = 0;
        s.policy.code_length = CodeLength::new(10).unwrap();
    })
    .await;
    app.fake.script([Scripted::Unavailable]);
    let first = app.requested("signup").await;
    let id = first["id"].as_str().unwrap();
    app.wait_for_delivery(id, "sent", Duration::from_secs(10)).await;
    let first_code = app.last_code_to(PHONE_DIGITS);
    app.requested("signup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    let wrong = if code == "0000000000" {
        "1111111111"
    } else {
        "0000000000"
    };
    assert_eq!(app.verify(json!({"id": id, "code": wrong})).await.status(), 422);
    assert_eq!(
        app.verify(json!({"phone": PHONE, "purpose": "signup", "code": code}))
            .await
            .status(),
        200
    );
    assert_eq!(app.verify(json!({"id": id, "code": code})).await.status(), 409);

    let logs = captured.text();
    assert!(
        logs.contains("request finished") && logs.contains("request_id"),
        "one line per request"
    );
    assert!(logs.lines().count() > 50, "trace level was captured");
    assert_eq!(code.len(), 10);
    for secret in [first_code.as_str(), code.as_str()] {
        assert!(!logs.contains(secret), "a code appeared in the logs");
    }
    assert!(
        !logs.contains(PHONE_DIGITS),
        "an unmasked phone number appeared in the logs"
    );
    assert!(logs.contains("+591*****008"));
}
