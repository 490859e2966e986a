//! Every log line, at every level, while operators manage clients over HTTP:
//! no test number's code and no client key in any of them.

#[path = "support/capture.rs"]
mod capture;
#[path = "api/helpers.rs"]
mod helpers;

use capture::Captured;
use helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn no_test_code_nor_client_key_in_any_log_line_at_trace_level() {
    let captured = Captured::install("trace");
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let admin = |method: reqwest::Method, path: &str| {
        app.http
            .request(method, format!("{}/admin{path}", app.address))
            .header("X-Admin-Key", ADMIN_KEY)
    };
    // Ten digits: a six-digit code could turn up by chance in a timestamp or a latency.
    let code = "9081726354";
    let numbers = "/clients/test-client/test-numbers";
    let added = admin(reqwest::Method::POST, numbers)
        .json(&json!({"phone": PHONE, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let bad = admin(reqwest::Method::POST, numbers)
        .json(&json!({"phone": PHONE, "code": "90817263x4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        admin(reqwest::Method::GET, numbers)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.requested("signup").await["delivery_status"], "sent");
    let verified = app
        .verify(json!({"phone": PHONE, "purpose": "signup", "code": code}))
        .await;
    assert_eq!(verified.status(), 200);

    let created: Value = admin(reqwest::Method::POST, "/clients")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated: Value = admin(reqwest::Method::POST, "/clients/shop/rotate-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // The path read as the service reads it: decoded, spaces and all.
    let removed = admin(
        reqwest::Method::DELETE,
        &format!("{numbers}/%2B591%20696%2057008"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(removed.status(), 204);
    // Encoded twice, in a query: refused, and logged all the same.
    let odd = admin(reqwest::Method::GET, "/stats?phone=%252B591%2520696%252057008")
        .send()
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);

    let logs = captured.text();
    let targets: Vec<String> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request finished")
        .filter_map(|line| line["span"]["http.target"].as_str().map(str::to_owned))
        .collect();
    for wanted in [
        "/admin/clients/test-client/test-numbers/+591*****008",
        "/admin/stats?phone=+591*****008",
    ] {
        assert!(targets.iter().any(|t| t == wanted), "{wanted} in {targets:#?}");
    }
    for unmasked in [
        &PHONE[1..],
        "696%2057008",
        "696%252057008",
        "696 57008",
        "69657008",
    ] {
        assert!(
            !logs.contains(unmasked),
            "a phone number appeared unmasked in the logs ({unmasked})"
        );
    }
    assert!(
        logs.contains("test number added by an operator"),
        "the action is logged"
    );
    assert!(logs.lines().count() > 50, "trace level was captured");
    for secret in [code, "90817263x4"] {
        assert!(
            !logs.contains(secret),
            "a test number's code appeared in the logs"
        );
    }
    for key in [&created["key"], &rotated["key"]] {
        let key = key.as_str().expect("a key in the answer");
        assert!(
            !logs.contains(&key["otpk_".len()..]),
            "a client key appeared in the logs"
        );
    }
}
