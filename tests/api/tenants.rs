//! Clients as tenants: windows that do not cross clients, settings of their
//! own (changed from the command line while the service runs), test numbers.

use std::process::{Command, Output};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");
const TEST_PEPPER: &str = "test-pepper-test-pepper-test-pepper!";

fn otp_service(app: &TestApp, args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("OTP_PEPPER", TEST_PEPPER)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "otp-service {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn client(app: &TestApp, name: &str) -> String {
    let key = otp_service::clients::add(&app.pool, name, None).await.unwrap();
    key.expose_secret().to_owned()
}

async fn ask(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.post_as(key, "/otp/request", &body).await
}

#[tokio::test]
async fn a_phone_locked_at_one_client_is_open_at_another_until_the_global_cap() {
    let app = spawn_app_with(|s| {
        s.policy.phone_sends_per_hour = 2;
        s.policy.phone_sends_per_hour_all_clients = Some(4);
    })
    .await;
    let (a, b, c) = (
        client(&app, "a").await,
        client(&app, "b").await,
        client(&app, "c").await,
    );
    for purpose in ["p1", "p2"] {
        assert_eq!(
            ask(&app, &a, json!({"phone": PHONE, "purpose": purpose}))
                .await
                .status(),
            202
        );
    }
    let own = problem(
        ask(&app, &a, json!({"phone": PHONE, "purpose": "p3"})).await,
        429,
        "rate_limited",
    )
    .await;
    // A's own window: A may know exactly when it frees.
    assert!(
        (3590..=3600).contains(&own["retry_after"].as_u64().unwrap()),
        "{own}"
    );

    for purpose in ["p1", "p2"] {
        assert_eq!(
            ask(&app, &b, json!({"phone": PHONE, "purpose": purpose}))
                .await
                .status(),
            202
        );
    }
    // The phone has had 4 from all clients: C is refused without learning when A and B sent.
    let global = problem(ask(&app, &c, json!({"phone": PHONE})).await, 429, "rate_limited").await;
    let wait = global["retry_after"].as_u64().unwrap();
    assert_eq!(wait % 60, 0, "rounded to the minute: {wait}");
    assert!((3600..=3660).contains(&wait), "{wait}");
    let detail = global["detail"].as_str().unwrap();
    assert!(!detail.contains("hour") && !detail.contains("client"), "{detail}");
    assert_eq!(app.fake.messages().len(), 4);
}

#[tokio::test]
async fn end_user_ip_and_wrong_code_windows_are_per_client() {
    let app = spawn_app_with(|s| {
        s.policy.ip_requests_per_hour = 2;
        s.policy.phone_failures_per_hour = 2;
    })
    .await;
    let (a, b) = (client(&app, "a").await, client(&app, "b").await);
    let from = |n: usize| json!({"phone": nth_phone(n), "end_user_ip": "203.0.113.9"});
    for n in 0..2 {
        assert_eq!(ask(&app, &a, from(n)).await.status(), 202);
    }
    problem(ask(&app, &a, from(2)).await, 429, "rate_limited").await;
    assert_eq!(
        ask(&app, &b, from(3)).await.status(),
        202,
        "B's users behind that address are B's"
    );

    // Wrong codes at A lock the phone at A only.
    let at_a: Value = ask(&app, &a, json!({"phone": PHONE})).await.json().await.unwrap();
    let at_b: Value = ask(&app, &b, json!({"phone": PHONE})).await.json().await.unwrap();
    let b_code = app.last_code_to(PHONE_DIGITS);
    for _ in 0..2 {
        let wrong = app
            .post_as(&a, "/otp/verify", &json!({"id": at_a["id"], "code": "000001"}))
            .await;
        assert_eq!(wrong.status(), 422);
    }
    let locked = app
        .post_as(&a, "/otp/verify", &json!({"id": at_a["id"], "code": "000001"}))
        .await;
    problem(locked, 429, "rate_limited").await;
    let approved = app
        .post_as(&b, "/otp/verify", &json!({"id": at_b["id"], "code": b_code}))
        .await;
    assert_eq!(approved.status(), 200);
}

#[tokio::test]
async fn settings_set_from_the_command_line_shape_the_next_code_without_a_restart() {
    let app = spawn_app().await;
    let shop = client(&app, "shop").await;
    otp_service(
        &app,
        &[
            "clients",
            "set",
            "shop",
            "--ttl-seconds",
            "300",
            "--code-length",
            "8",
            "--display-name",
            "Mi Tienda",
            "--template-es",
            "{app}: tu código es *{code}* ({minutes} min)",
            "--max-attempts",
            "2",
            "--max-sends",
            "1",
        ],
    );
    let v: Value = ask(&app, &shop, json!({"phone": PHONE}))
        .await
        .json()
        .await
        .unwrap();
    let message = app.fake.last_message_to(PHONE_DIGITS).expect("sent");
    let code = code_in(&message);
    assert_eq!(code.len(), 8);
    assert_eq!(
        message.message,
        format!("Mi Tienda: tu código es *{code}* (5 min)")
    );
    let created = chrono::DateTime::parse_from_rfc3339(v["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 300);
    assert_eq!(v["attempts_remaining"], 2);
    assert!(v["resend_available_at"].is_null(), "one send only: {v}");
    let resend = ask(&app, &shop, json!({"phone": PHONE})).await;
    problem(resend, 429, "rate_limited").await;
    // The default client is untouched.
    app.request_code(json!({"phone": nth_phone(1)})).await;
    let other = app.fake.last_message_to(&nth_phone(1)[1..]).unwrap();
    assert_eq!(code_in(&other).len(), 6);
    assert!(other.message.starts_with("Tu código de verificación es"));

    // Countries and locale too; `show` prints what the client gets, and never a key.
    app.changing_clients(async {
        otp_service(
            &app,
            &[
                "clients",
                "set",
                "shop",
                "--allowed-countries",
                "PE",
                "--default-locale",
                "en",
            ],
        )
    })
    .await;
    let refused = ask(&app, &shop, json!({"phone": nth_phone(2)})).await;
    problem(refused, 403, "country_not_allowed").await;
    let shown = String::from_utf8(otp_service(&app, &["clients", "show", "shop"]).stdout).unwrap();
    for line in [
        "ttl_seconds              300",
        "code_length              8",
        "allowed_countries        PE",
        "resend_cooldown_seconds  30  (default)",
    ] {
        assert!(shown.contains(line), "{line:?} in\n{shown}");
    }
    assert!(!shown.contains("otpk_"));
}

#[tokio::test]
async fn an_invalid_setting_is_refused_whole_and_names_its_field() {
    let app = spawn_app().await;
    client(&app, "shop").await;
    let output = Command::new(BIN)
        .args(["clients", "set", "shop", "--ttl-seconds", "300", "--share", "0"])
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`share`"));
    let ttl: Option<i32> = sqlx::query_scalar("select ttl_seconds from clients where name = 'shop'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(ttl, None, "nothing of the change was stored");
}

#[tokio::test]
async fn a_test_number_sends_nothing_and_its_fixed_code_approves_once() {
    let app = spawn_app().await;
    let reviewer = "+59170000077";
    otp_service(
        &app,
        &[
            "clients",
            "test-numbers",
            "add",
            "test-client",
            reviewer,
            "424242",
        ],
    );
    let v = app.request_code(json!({"phone": reviewer})).await;
    assert_eq!(v.status(), 202);
    let v: Value = v.json().await.unwrap();
    assert_eq!(v["delivery_status"], "sent");
    assert!(app.fake.calls().is_empty(), "nothing reached the gateway");
    let counted: i64 = sqlx::query_scalar("select (select count(*) from sender_sends) + (select count(*) from limit_hits where bucket like 'phone-sends%')")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(counted, 0, "no gateway slot, no phone window");
    let stored: String = sqlx::query_scalar("select code_hash from test_numbers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains("424242"));

    let wrong = app.verify(json!({"id": v["id"], "code": "424243"})).await;
    let wrong = problem(wrong, 422, "invalid_code").await;
    assert_eq!(wrong["attempts_remaining"], 4, "wrong codes still count");
    let right = app.verify(json!({"id": v["id"], "code": "424242"})).await;
    assert_eq!(right.status(), 200);
    let again = app.verify(json!({"id": v["id"], "code": "424242"})).await;
    problem(again, 409, "not_pending").await;

    // Another client's request for that number is an ordinary one.
    let other = client(&app, "other").await;
    assert_eq!(ask(&app, &other, json!({"phone": reviewer})).await.status(), 202);
    app.wait_for("the other client's code", Duration::from_secs(10), || async {
        app.fake.last_message_to(&reviewer[1..]).is_some()
    })
    .await;

    // Once it has ended it is an ordinary number again.
    app.changing_clients(
        sqlx::query("update test_numbers set until = now() - interval '1 second'").execute(&app.pool),
    )
    .await
    .unwrap();
    let later = app
        .request_code(json!({"phone": reviewer, "purpose": "login"}))
        .await;
    assert_eq!(later.status(), 202);
    app.wait_for("a real send", Duration::from_secs(10), || async {
        app.fake
            .messages()
            .iter()
            .filter(|m| m.number == reviewer[1..])
            .count()
            == 2
    })
    .await;
    let listed =
        String::from_utf8(otp_service(&app, &["clients", "test-numbers", "list", "test-client"]).stdout)
            .unwrap();
    assert!(
        listed.contains(reviewer) && listed.contains("(ended)") && !listed.contains("424242"),
        "{listed}"
    );
    otp_service(
        &app,
        &["clients", "test-numbers", "remove", "test-client", reviewer],
    );
}

#[tokio::test]
async fn metrics_say_which_client() {
    let app = spawn_app().await;
    app.requested("signup").await;
    let created = metric_with(
        &app,
        "otp_verifications_total",
        &[("client", "test-client"), ("event", "created")],
    )
    .await;
    assert_eq!(created, 1.0);
    let sent = metric_with(
        &app,
        "otp_messages_total",
        &[("client", "test-client"), ("result", "sent")],
    )
    .await;
    assert_eq!(sent, 1.0);
    let queued = metric_with(&app, "otp_client_queued_messages", &[("client", "test-client")]).await;
    assert_eq!(queued, 0.0);
    let refused = app.request_code(json!({"phone": "12"})).await;
    problem(refused, 400, "invalid_phone").await;
    let refusals = [("client", "test-client"), ("code", "invalid_phone")];
    assert_eq!(
        metric_with(&app, "otp_request_refusals_total", &refusals).await,
        1.0
    );
}
