//! Where the webhook client connects: never to an IPv6 spelling of a local
//! address.

use std::time::Duration;

use otp_service::config::Schedule;
use otp_service::delivery::Sealer;
use otp_service::otp::Peppers;
use otp_service::webhooks::{UrlPolicy, WebhookAdmin};
use serde_json::Value;

use crate::helpers::*;
use crate::webhooks::{WAIT, request};

pub(crate) fn admin(app: &TestApp, allow_private: bool) -> WebhookAdmin {
    let pepper = app.settings.pepper.clone().unwrap();
    let policy = UrlPolicy {
        allow_http: false,
        allow_private,
    };
    WebhookAdmin::new(
        app.pool.clone(),
        Sealer::new(&Peppers::new(pepper, vec![])),
        policy,
    )
}

/// Points the client's webhook at `url` as stored by an older version (no
/// check at set time), with a secret of its own.
async fn stored_url(app: &TestApp, url: &str) {
    admin(app, true)
        .set_url("test-client", "http://127.0.0.1:9/hooks")
        .await
        .unwrap();
    sqlx::query("update clients set webhook_url = $1 where name = 'test-client'")
        .bind(url)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let path = format!("{}/webhooks/deliveries", app.address);
    let answer = app
        .http
        .get(&path)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    answer.json().await.unwrap()
}

#[tokio::test]
async fn ipv6_spellings_of_local_addresses_are_refused_when_set_and_when_sent() {
    let app = spawn_app_with(|s| {
        s.webhooks.retry_schedule = Some(Schedule(vec![Duration::from_secs(3600)]));
    })
    .await;
    for url in [
        "https://[::7f00:1]/hooks",
        "https://[2002:a00:1::1]/hooks",
        "https://[2001::1]/hooks",
        "https://[fec0::1]/hooks",
        "https://[64:ff9b:1::a00:1]/hooks",
    ] {
        let refused = admin(&app, false).set_url("test-client", url).await;
        assert!(refused.is_err(), "{url} was accepted");
    }

    // One stored before this check existed is refused at the delivery.
    stored_url(&app, "https://[::7f00:1]:9/hooks").await;
    request(&app, &app.api_key, PHONE).await;
    app.wait_for("the attempt", WAIT, || async {
        deliveries(&app)
            .await
            .iter()
            .any(|d| d["attempts"] == 1 && d["last_error"].is_string())
    })
    .await;
    let error = deliveries(&app).await[0]["last_error"].clone();
    assert!(
        error.as_str().unwrap().contains("OTP_WEBHOOK_ALLOW_PRIVATE"),
        "refused, not tried: {error}"
    );
}
