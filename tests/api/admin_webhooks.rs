//! A client's webhook over the admin API: set with the settings patch
//! (checked with them), shown with the client, its secret rotated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, json_of};
use crate::helpers::*;
use crate::webhook_receiver::Receiver;

async fn patch(app: &TestApp, body: Value) -> reqwest::Response {
    admin(app, Method::PATCH, "/clients/test-client")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_webhook_url_is_set_checked_shown_rotated_and_cleared_over_http() {
    let app = spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.webhooks.allow_private = true;
    })
    .await;
    let receiver = Receiver::start(&[]);

    // A refused URL refuses the whole patch.
    let refused = patch(
        &app,
        json!({"ttl_seconds": 300, "webhook_url": "ftp://example.com/x"}),
    )
    .await;
    let refusal = problem(refused, 400, "invalid_request").await;
    assert_eq!(refusal["field"], "webhook_url");
    let client = json_of(admin(&app, Method::GET, "/clients/test-client"), 200).await;
    assert!(
        client["settings"]["ttl_seconds"].is_null(),
        "nothing changed: {client}"
    );
    assert!(client["webhook"].is_null());

    let set = patch(&app, json!({"ttl_seconds": 300, "webhook_url": receiver.url})).await;
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    let secret = set["webhook_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(set["webhook"]["url"], receiver.url.as_str());
    assert_eq!(set["webhook"]["disabled"], false);
    assert_eq!(set["settings"]["ttl_seconds"], 300);

    let again: Value = patch(&app, json!({"webhook_url": receiver.url}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        again.get("webhook_secret").is_none(),
        "a secret is shown once: {again}"
    );
    let shown = json_of(admin(&app, Method::GET, "/clients/test-client"), 200).await;
    assert_eq!(shown["webhook"]["url"], receiver.url.as_str());
    assert!(!shown.to_string().contains("whsec_"));

    let rotated = json_of(
        admin(&app, Method::POST, "/clients/test-client/rotate-webhook-secret"),
        200,
    )
    .await;
    let new = rotated["webhook_secret"].as_str().unwrap();
    assert!(new.starts_with("whsec_") && new != secret);
    let shown = json_of(admin(&app, Method::GET, "/clients/test-client"), 200).await;
    assert!(shown["webhook"]["previous_secret_until"].is_string());
    let response = app.post("/otp/request", &json!({"phone": PHONE})).await;
    assert_eq!(response.status(), 202);
    let got = receiver.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert!(got[0].verifies_with(&secret) && got[0].verifies_with(new));

    let cleared: Value = patch(&app, json!({"webhook_url": null}))
        .await
        .json()
        .await
        .unwrap();
    assert!(cleared["webhook"].is_null());
    let no_webhook = admin(&app, Method::POST, "/clients/test-client/rotate-webhook-secret")
        .send()
        .await
        .unwrap();
    let refusal = problem(no_webhook, 400, "invalid_request").await;
    assert_eq!(refusal["field"], "webhook_url");
    let unknown = admin(&app, Method::POST, "/clients/nobody/rotate-webhook-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
