//! Pepper rotation: what an old pepper made still works while it is listed in
//! `OTP_PREVIOUS_PEPPERS`, and removing it too soon is reported at start.

use std::time::Duration;

use otp_service::config::{SecretList, Settings};
use otp_service::startup::Application;
use otp_service::store::PepperReport;
use serde_json::{Value, json};

use crate::helpers::*;

const NEW_PEPPER: &str = "the-new-pepper-the-new-pepper-the-new-pepper";

/// The same service on the same database, with other peppers, built (not yet run).
async fn restarted(app: &TestApp, previous: &[&str]) -> (Application, String) {
    let mut settings: Settings = app.settings.clone();
    settings.database.url = app.database_url.clone().into();
    settings.pepper = Some(NEW_PEPPER.to_owned().into());
    settings.previous_peppers =
        (!previous.is_empty()).then(|| SecretList(previous.iter().map(|p| p.to_string().into()).collect()));
    let built = Application::build(settings, None).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", built.port());
    (built, address)
}

#[tokio::test]
async fn codes_and_messages_made_before_a_rotation_still_work_after_it() {
    let app = spawn_app().await;
    let old_pepper = secrecy::ExposeSecret::expose_secret(app.settings.pepper.as_ref().unwrap()).to_owned();
    let pending = app.requested("signup").await;
    let code = app.last_code_to(PHONE_DIGITS);
    app.fake.set_down(true);
    let waiting: Value = app
        .request_code(json!({"phone": nth_phone(1)}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["delivery_status"], "queued");
    app.stop_service().await;

    // The old pepper dropped too soon: said at start, before anything is lost.
    let (dropped, _) = restarted(&app, &[]).await;
    assert_eq!(
        dropped.pepper_report(),
        PepperReport {
            verifications: 2,
            messages: 1
        }
    );
    drop(dropped);

    let (rotated, address) = restarted(&app, &[&old_pepper]).await;
    assert_eq!(rotated.pepper_report(), PepperReport::default());
    tokio::spawn(rotated.run_until_stopped());
    let verified = app
        .http
        .post(format!("{address}/otp/verify"))
        .header("X-Api-Key", &app.api_key)
        .json(&json!({"id": pending["id"], "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200, "a code from before the rotation verifies");
    app.fake.set_down(false);
    app.wait_for(
        "the message queued before the rotation",
        Duration::from_secs(30),
        || async { app.fake.last_message_to(&nth_phone(1)[1..]).is_some() },
    )
    .await;
    // And what the new pepper makes needs no old one.
    let fresh = app
        .http
        .post(format!("{address}/otp/request"))
        .header("X-Api-Key", &app.api_key)
        .json(&json!({"phone": nth_phone(2)}))
        .send()
        .await
        .unwrap();
    let fresh: Value = fresh.json().await.unwrap();
    let stored: String = sqlx::query_scalar("select code_hash from verifications where id = $1::uuid")
        .bind(fresh["id"].as_str().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.contains(",keyid="), "{stored}");
}
