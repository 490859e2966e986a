//! `/admin/clients/{name}/test-numbers`: test numbers managed over HTTP; a
//! request for one sends nothing, and its fixed code verifies it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, admin_app, json_of};
use crate::helpers::*;

#[tokio::test]
async fn a_test_number_added_over_http_sends_nothing_until_removed() {
    let app = admin_app().await;
    let phone = nth_phone(7);
    let numbers = "/clients/test-client/test-numbers";
    let add = |body: Value| admin(&app, Method::POST, numbers).json(&body).send();

    let added = add(json!({"phone": phone, "code": "654321"})).await.unwrap();
    assert_eq!(added.status(), 201);
    let text = added.text().await.unwrap();
    assert!(!text.contains("654321"), "{text}");
    // Adding it again replaces its code and its end.
    let until = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let added = json_of(
        admin(&app, Method::POST, numbers).json(&json!({"phone": phone, "code": "123456", "until": until})),
        201,
    )
    .await;
    assert_eq!(added["phone"], phone);
    assert_eq!(added["active"], true);
    let listed = admin(&app, Method::GET, numbers).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let text = listed.text().await.unwrap();
    assert!(!text.contains("123456") && !text.contains("654321"), "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let listed_until: chrono::DateTime<chrono::Utc> = listed[0]["until"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        listed_until.timestamp(),
        until
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp()
    );

    let requested = app.request_code(json!({"phone": phone})).await;
    assert_eq!(requested.status(), 202);
    let requested: Value = requested.json().await.unwrap();
    assert_eq!(requested["delivery_status"], "sent");
    assert!(
        requested["estimated_send_at"].is_null(),
        "nothing waits: {requested}"
    );
    assert!(
        app.fake.last_message_to(&phone[1..]).is_none(),
        "nothing is sent to a test number"
    );
    let verified = app.verify(json!({"phone": phone, "code": "123456"})).await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.json::<Value>().await.unwrap()["status"], "approved");

    let encoded = format!("{numbers}/%2B{}", &phone[1..]);
    let removed = admin(&app, Method::DELETE, &encoded).send().await.unwrap();
    assert_eq!(removed.status(), 204);
    // A bare `+` in the path is read as the number's own.
    let again = admin(&app, Method::DELETE, &format!("{numbers}/{phone}")).send();
    let body = problem(again.await.unwrap(), 404, "not_found").await;
    assert!(
        body["detail"].as_str().unwrap().contains("no such test number"),
        "{body}"
    );
    assert_eq!(app.request_code(json!({"phone": phone})).await.status(), 202);
    assert!(
        app.fake.last_message_to(&phone[1..]).is_some(),
        "sent as to any number"
    );
    assert_eq!(json_of(admin(&app, Method::GET, numbers), 200).await, json!([]));
}

#[tokio::test]
async fn a_bad_test_number_is_refused_by_field() {
    let app = admin_app().await;
    let phone = nth_phone(8);
    let add = |name: &str, body: Value| {
        admin(&app, Method::POST, &format!("/clients/{name}/test-numbers"))
            .json(&body)
            .send()
    };
    let bad_code = add("test-client", json!({"phone": phone, "code": "12ab"}))
        .await
        .unwrap();
    let body = problem(bad_code, 400, "invalid_request").await;
    assert_eq!(body["field"], "code");
    assert!(!body.to_string().contains("12ab"), "{body}");
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"phone": phone, "code": "123456", "until": past});
    let in_the_past = add("test-client", body).await.unwrap();
    assert_eq!(
        problem(in_the_past, 400, "invalid_request").await["field"],
        "until"
    );
    let garbled = add(
        "test-client",
        json!({"phone": phone, "code": "123456", "until": "soon"}),
    );
    assert_eq!(
        problem(garbled.await.unwrap(), 400, "invalid_request").await["field"],
        "until"
    );
    let bad_phone = add("test-client", json!({"phone": "+591 123", "code": "123456"}));
    problem(bad_phone.await.unwrap(), 400, "invalid_phone").await;
    let nobody = add("nobody", json!({"phone": phone, "code": "123456"}));
    problem(nobody.await.unwrap(), 404, "not_found").await;
    let listed = admin(&app, Method::GET, "/clients/nobody/test-numbers").send();
    problem(listed.await.unwrap(), 404, "not_found").await;
    let removed = admin(
        &app,
        Method::DELETE,
        &format!("/clients/nobody/test-numbers/{phone}"),
    )
    .send();
    problem(removed.await.unwrap(), 404, "not_found").await;
    let listed = json_of(admin(&app, Method::GET, "/clients/test-client/test-numbers"), 200).await;
    assert_eq!(listed, json!([]));
}

fn cli(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let pepper = secrecy::ExposeSecret::expose_secret(app.settings.pepper.as_ref().unwrap()).to_owned();
    std::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("OTP_PEPPER", pepper)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn a_test_number_code_of_fewer_than_6_digits_needs_weak_codes_allowed() {
    let app = admin_app().await;
    let numbers = "/clients/test-client/test-numbers";
    let phone = nth_phone(9);
    let short = admin(&app, Method::POST, numbers).json(&json!({"phone": phone, "code": "4242"}));
    let body = problem(short.send().await.unwrap(), 400, "invalid_request").await;
    assert_eq!(body["field"], "code");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("6 to 10 digits") && detail.contains("OTP_ALLOW_WEAK_CODES"),
        "{body}"
    );
    assert!(!body.to_string().contains("4242"), "{body}");

    let add = |env: &[(&str, &str)]| {
        cli(
            &app,
            env,
            &["clients", "test-numbers", "add", "test-client", &phone, "42424"],
        )
    };
    let refused = add(&[]);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        said.contains("`code`") && said.contains("OTP_ALLOW_WEAK_CODES"),
        "{said}"
    );
    assert!(!said.contains("42424"), "{said}");
    assert_eq!(json_of(admin(&app, Method::GET, numbers), 200).await, json!([]));
    let allowed = add(&[("OTP_ALLOW_WEAK_CODES", "true")]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );

    let weak = spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.policy.allow_weak_codes = true;
    })
    .await;
    let added = admin(&weak, Method::POST, numbers).json(&json!({"phone": phone, "code": "4242"}));
    assert_eq!(added.send().await.unwrap().status(), 201);
    let requested: Value = weak
        .request_code(json!({"phone": phone}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(requested["delivery_status"], "sent");
    let verified = weak.verify(json!({"id": requested["id"], "code": "4242"})).await;
    assert_eq!(verified.status(), 200);
}

/// `until` reads alike on the command line and over HTTP: a date (the whole
/// of that UTC day) or an RFC 3339 time.
#[tokio::test]
async fn until_takes_a_date_or_a_time_from_the_cli_and_over_http() {
    let app = admin_app().await;
    let numbers = "/clients/test-client/test-numbers";
    let day = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    let end_of_day = day.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
    // An offset of its own, as a client abroad would send it.
    let time = (chrono::Utc::now() + chrono::Duration::days(10))
        .with_timezone(&chrono::FixedOffset::west_opt(4 * 3600).unwrap());
    let listed_until = |listed: &Value, phone: &str| -> chrono::DateTime<chrono::Utc> {
        let number = listed.as_array().unwrap().iter().find(|n| n["phone"] == phone);
        number.expect("listed")["until"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };

    let (by_date, by_time) = (nth_phone(3), nth_phone(4));
    let added = admin(&app, Method::POST, numbers)
        .json(&json!({"phone": by_date, "code": "123456", "until": day.to_string()}));
    assert_eq!(json_of(added, 201).await["active"], true);
    let added = admin(&app, Method::POST, numbers)
        .json(&json!({"phone": by_time, "code": "123456", "until": time.to_rfc3339()}));
    json_of(added, 201).await;
    let listed = json_of(admin(&app, Method::GET, numbers), 200).await;
    assert_eq!(listed_until(&listed, &by_date), end_of_day);
    assert_eq!(listed_until(&listed, &by_time).timestamp(), time.timestamp());

    let (cli_date, cli_time) = (nth_phone(5), nth_phone(6));
    for (phone, until) in [(&cli_date, day.to_string()), (&cli_time, time.to_rfc3339())] {
        let add = ["clients", "test-numbers", "add", "test-client", phone, "123456"];
        let added = cli(&app, &[], &[&add[..], &["--until", &until]].concat());
        assert!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let listed = json_of(admin(&app, Method::GET, numbers), 200).await;
    assert_eq!(listed_until(&listed, &cli_date), end_of_day);
    assert_eq!(listed_until(&listed, &cli_time).timestamp(), time.timestamp());

    let refused = admin(&app, Method::POST, numbers)
        .json(&json!({"phone": nth_phone(7), "code": "123456", "until": "2027-02-30"}));
    let body = problem(refused.send().await.unwrap(), 400, "invalid_request").await;
    assert_eq!(body["field"], "until");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("YYYY-MM-DD") && detail.contains("RFC 3339"),
        "{body}"
    );
}
