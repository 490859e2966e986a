//! Pepper rotation: what an old pepper made still works while it is listed in
//! `OTP_PREVIOUS_PEPPERS`, removing it too soon is reported (or, for a test
//! number, refused) at start, and webhook secrets move to the new pepper.

use std::time::Duration;

use otp_service::clients::{self, test_numbers};
use otp_service::config::{SecretList, Settings};
use otp_service::crypto::{CodeHasher, Peppers, Sealer};
use otp_service::domain::PhoneNumber;
use otp_service::metrics::Metrics;
use otp_service::otp::Protected;
use otp_service::startup::Application;
use otp_service::webhooks::reseal::reseal_secrets;
use otp_service::webhooks::{UrlPolicy, WebhookAdmin};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::webhook_receiver::Receiver;
use crate::webhooks::{WAIT, webhook_for};

pub(crate) const NEW_PEPPER: &str = "the-new-pepper-the-new-pepper-the-new-pepper";

/// The pepper every test app starts with.
pub(crate) fn old_pepper(app: &TestApp) -> String {
    app.settings.pepper.as_ref().unwrap().expose_secret().to_owned()
}

/// The same service on the same database with `NEW_PEPPER` and `previous`,
/// built (not yet run), or why it would not start.
pub(crate) async fn build_with(app: &TestApp, previous: &[&str]) -> anyhow::Result<(Application, String)> {
    let mut settings: Settings = app.settings.clone();
    settings.database.url = app.database_url.clone().into();
    settings.pepper = Some(NEW_PEPPER.to_owned().into());
    settings.previous_peppers =
        (!previous.is_empty()).then(|| SecretList(previous.iter().map(|p| p.to_string().into()).collect()));
    let built = Application::build(settings, None).await?;
    let address = format!("http://127.0.0.1:{}", built.port());
    Ok((built, address))
}

pub(crate) async fn restarted(app: &TestApp, previous: &[&str]) -> (Application, String) {
    build_with(app, previous).await.expect("the app builds")
}

#[tokio::test]
async fn codes_and_messages_made_before_a_rotation_still_work_after_it() {
    let app = spawn_app().await;
    let old_pepper = old_pepper(&app);
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
        Protected {
            pending_codes: 2,
            queued_messages: 1,
            ..Protected::default()
        }
    );
    drop(dropped);

    let (rotated, address) = restarted(&app, &[&old_pepper]).await;
    assert!(rotated.pepper_report().is_nothing());
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

/// Points `client`'s webhook at `receiver` and rotates its secret under the
/// old pepper: the day after a rotation, both secrets sign. Returns both.
async fn webhook_mid_rotation(app: &TestApp, client: &str, receiver: &Receiver) -> [String; 2] {
    let first = webhook_for(app, client, receiver).await;
    let policy = UrlPolicy {
        allow_http: false,
        allow_private: true,
    };
    let sealer = Sealer::new(&Peppers::new(old_pepper(app).into(), vec![]));
    let second = WebhookAdmin::new(app.pool.clone(), sealer, policy)
        .rotate_secret(client)
        .await
        .unwrap();
    [first, second.expose_secret().to_owned()]
}

/// Requests a code through the service at `address` as the client with `key`.
async fn request_at(app: &TestApp, address: &str, key: &str, phone: &str) {
    let response = app
        .http
        .post(format!("{address}/otp/request"))
        .header("X-Api-Key", key)
        .json(&json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

#[tokio::test]
async fn a_webhook_still_signs_with_both_its_secrets_once_the_old_pepper_is_dropped() {
    let app = crate::webhooks::spawn().await;
    let old = old_pepper(&app);
    let receiver = Receiver::start(&[]);
    let secrets = webhook_mid_rotation(&app, "test-client", &receiver).await;
    app.stop_service().await;

    // The rotation: the new pepper, the old one kept as previous.
    let (rotated, _) = restarted(&app, &[&old]).await;
    drop(rotated);
    // Then the old pepper dropped, as the guide says once codes have expired.
    let (dropped, address) = restarted(&app, &[]).await;
    assert!(
        dropped.pepper_report().is_nothing(),
        "{:?}",
        dropped.pepper_report()
    );
    tokio::spawn(dropped.run_until_stopped());
    request_at(&app, &address, &app.api_key, PHONE).await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].kind(), "verification.sent");
    for secret in &secrets {
        assert!(got[0].verifies_with(secret), "signed with {secret:.10}…");
    }
}

#[tokio::test]
async fn two_replicas_resealing_at_once_leave_every_webhook_signing_under_the_new_pepper() {
    let app = crate::webhooks::spawn().await;
    let old = old_pepper(&app);
    let (ours, theirs) = (Receiver::start(&[]), Receiver::start(&[]));
    let our_secrets = webhook_mid_rotation(&app, "test-client", &ours).await;
    let shop_key = clients::add(&app.pool, "shop", None).await.unwrap();
    let shop_secret = webhook_for(&app, "shop", &theirs).await;
    app.stop_service().await;

    let rotated = Sealer::new(&Peppers::new(NEW_PEPPER.into(), vec![old.into()]));
    let (a, b) = tokio::join!(
        reseal_secrets(&app.pool, &rotated),
        reseal_secrets(&app.pool, &rotated)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.resealed + b.resealed, 2, "each client once: {a:?} {b:?}");
    assert_eq!(a.unopenable + b.unopenable, 0);

    let (dropped, address) = restarted(&app, &[]).await;
    assert!(dropped.pepper_report().is_nothing());
    tokio::spawn(dropped.run_until_stopped());
    request_at(&app, &address, &app.api_key, PHONE).await;
    request_at(&app, &address, shop_key.expose_secret(), PHONE).await;
    let got = ours.wait_for(1, WAIT).await;
    assert!(our_secrets.iter().all(|s| got[0].verifies_with(s)));
    let got = theirs.wait_for(1, WAIT).await;
    assert!(got[0].verifies_with(&shop_secret));
}

/// Adds a test number to `test-client` as the command line does, its code
/// hashed under `pepper`.
pub(crate) async fn test_number_under(app: &TestApp, pepper: &str, phone: &str, code: &str) {
    let peppers = Peppers::new(pepper.to_owned().into(), vec![]);
    let hasher = CodeHasher::new(peppers, &app.settings.hashing, &Metrics::new()).unwrap();
    let phone = PhoneNumber::parse(phone, None).unwrap();
    test_numbers::add(&app.pool, &hasher, "test-client", &phone, code, None, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_start_without_the_pepper_a_test_number_needs_is_refused_with_the_count_and_the_fix() {
    let app = spawn_app().await;
    let old = old_pepper(&app);
    let (reviewer, ended) = (nth_phone(3), nth_phone(4));
    test_number_under(&app, &old, &reviewer, "424242").await;
    test_number_under(&app, &old, &ended, "424242").await;
    sqlx::query("update test_numbers set until = now() - interval '1 day' where phone = $1")
        .bind(&ended)
        .execute(&app.pool)
        .await
        .unwrap();
    app.stop_service().await;

    let refused = build_with(&app, &[]).await.err().expect("the start is refused");
    let said = format!("{refused:#}");
    assert!(
        said.contains("1 test number in use (of `test-client`)"),
        "an ended one does not count: {said}"
    );
    assert!(said.contains("OTP_PREVIOUS_PEPPERS") && said.contains("clients test-numbers add"));
    assert!(!said.contains(&old) && !said.contains(NEW_PEPPER) && !said.contains(&reviewer[4..]));
    drop(restarted(&app, &[&old]).await);

    // The fix it names: the number added again, its code hashed under the new pepper.
    test_number_under(&app, NEW_PEPPER, &reviewer, "424242").await;
    let (started, address) = restarted(&app, &[]).await;
    tokio::spawn(started.run_until_stopped());
    let post = |path: &str, body: Value| {
        app.http
            .post(format!("{address}{path}"))
            .header("X-Api-Key", &app.api_key)
            .json(&body)
            .send()
    };
    let requested: Value = post("/otp/request", json!({"phone": reviewer}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requested["delivery_status"], "sent");
    let verified = post("/otp/verify", json!({"id": requested["id"], "code": "424242"}));
    assert_eq!(verified.await.unwrap().status(), 200);
}
