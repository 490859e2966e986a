//! Who may call `/twilio`, and how it reads: credentials, another client's
//! SIDs, where the SIDs are shown, the service resource, malformed bodies and
//! unknown paths, and what the form's optional fields do to the message.

use otp_service::clients;
use otp_service::domain::{Change, SettingsChange};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::twilio::{Twilio, assert_twilio_time, form, set, twilio_error};

#[tokio::test]
async fn only_a_clients_account_sid_with_its_key_gets_in_and_only_to_its_own_service() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    let other_key = clients::add(&app.pool, "other", None).await.unwrap();
    let other = Twilio::client(&app, "other", other_key.expose_secret()).await;
    assert_ne!(twilio.account, other.account);
    assert_ne!(twilio.service, other.service);
    let create = [("To", PHONE), ("Channel", "whatsapp")];

    // No credentials, or garbled ones.
    let bare = app
        .http
        .post(twilio.url("/Verifications"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(&create))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.headers()["www-authenticate"], r#"Basic realm="Twilio API""#);
    twilio_error(bare, 401, 20003).await;
    let garbled = app
        .http
        .post(twilio.url("/Verifications"))
        .header("Authorization", "Basic !!!")
        .send()
        .await
        .unwrap();
    twilio_error(garbled, 401, 20003).await;
    // The /otp header is not Twilio's credentials.
    let native = app
        .http
        .post(twilio.url("/Verifications"))
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    twilio_error(native, 401, 20003).await;

    // Each half of the pair must be this client's.
    let wrong_user = twilio
        .post_as(&other.account, &twilio.key, "/Verifications", &create)
        .await;
    twilio_error(wrong_user, 401, 20003).await;
    let wrong_key = twilio
        .post_as(&twilio.account, "otpk_nope", "/Verifications", &create)
        .await;
    twilio_error(wrong_key, 401, 20003).await;
    let others_key = twilio
        .post_as(&twilio.account, &other.key, "/Verifications", &create)
        .await;
    twilio_error(others_key, 401, 20003).await;

    // Another client's service is refused as one that does not exist.
    let borrowed = Twilio {
        service: twilio.service.clone(),
        ..Twilio::client(&app, "other", &other.key).await
    };
    twilio_error(borrowed.post("/Verifications", &create).await, 404, 20404).await;
    twilio_error(borrowed.get("").await, 404, 20404).await;
    let made_up = Twilio {
        service: format!("VA{}", uuid::Uuid::new_v4().simple()),
        ..Twilio::of(&app).await
    };
    twilio_error(made_up.post("/Verifications", &create).await, 404, 20404).await;
    assert_eq!(app.verification_count().await, 0, "nothing was started");

    // A verification of one client is not found through another's.
    let started = twilio.create(PHONE).await;
    // The digits in capitals name the same account (Twilio's SIDs allow both).
    let capitals = format!("AC{}", twilio.account[2..].to_uppercase());
    let path = format!("/Verifications/{}", started["sid"].as_str().unwrap());
    let fetched = app
        .http
        .get(twilio.url(&path))
        .basic_auth(&capitals, Some(&twilio.key))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    let sid = started["sid"].as_str().unwrap();
    twilio_error(other.get(&format!("/Verifications/{sid}")).await, 404, 20404).await;
    let check = other.check(&[("VerificationSid", sid), ("Code", "123456")]).await;
    twilio_error(check, 404, 20404).await;

    // Rotation and revocation, as under /otp.
    let rotated = app
        .changing_clients(clients::rotate_key(&app.pool, "test-client"))
        .await
        .unwrap();
    let old = twilio.post("/Verifications", &create).await;
    twilio_error(old, 401, 20003).await;
    let renewed = Twilio::client(&app, "test-client", rotated.expose_secret()).await;
    assert_eq!(renewed.account, twilio.account, "the SIDs outlive the key");
    assert_eq!(renewed.get(&format!("/Verifications/{sid}")).await.status(), 200);
    app.changing_clients(clients::revoke(&app.pool, "test-client"))
        .await
        .unwrap();
    twilio_error(renewed.get(&format!("/Verifications/{sid}")).await, 401, 20003).await;
}

#[tokio::test]
async fn the_service_reads_as_twilio_writes_it() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    set(
        &app,
        SettingsChange {
            display_name: Change::Set("Tienda Sol".into()),
            code_length: Change::Set(8),
            ..Default::default()
        },
    )
    .await;
    let service = twilio.get("").await;
    assert_eq!(service.status(), 200);
    let service: Value = service.json().await.unwrap();
    assert_eq!(service["sid"], twilio.service);
    assert_eq!(service["account_sid"], twilio.account);
    assert_eq!(service["friendly_name"], "Tienda Sol");
    assert_eq!(service["code_length"], 8);
    assert_eq!(service["lookup_enabled"], false);
    assert_eq!(service["custom_code_enabled"], false);
    assert_eq!(service["url"], twilio.url(""));
    assert_eq!(service["links"]["verifications"], twilio.url("/Verifications"));
    assert_twilio_time(&service["date_created"]);
    assert_twilio_time(&service["date_updated"]);
}

#[tokio::test]
async fn the_admin_api_and_the_cli_show_each_clients_sids() {
    let app = crate::admin_clients::admin_app().await;
    let created = crate::admin_clients::json_of(
        crate::admin_clients::admin(&app, Method::POST, "/clients").json(&json!({"name": "shop"})),
        201,
    )
    .await;
    let account = created["twilio_account_sid"].as_str().unwrap().to_owned();
    let service = created["twilio_service_sid"].as_str().unwrap().to_owned();
    for (sid, prefix) in [(&account, "AC"), (&service, "VA")] {
        assert!(
            sid.starts_with(prefix)
                && sid.len() == 34
                && sid[2..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{sid}"
        );
    }
    let shown = crate::admin_clients::json_of(
        crate::admin_clients::admin(&app, Method::GET, "/clients/shop"),
        200,
    )
    .await;
    assert_eq!(
        (&shown["twilio_account_sid"], &shown["twilio_service_sid"]),
        (&json!(account), &json!(service))
    );
    assert_eq!(shown["effective"]["sms_as_whatsapp"], false);
    let listed =
        crate::admin_clients::json_of(crate::admin_clients::admin(&app, Method::GET, "/clients"), 200).await;
    let listed: Vec<&Value> = listed.as_array().unwrap().iter().collect();
    assert!(listed.iter().any(|c| c["twilio_service_sid"] == json!(service)));
    let test_client = listed.iter().find(|c| c["name"] == "test-client").unwrap();
    assert_ne!(
        test_client["twilio_account_sid"],
        json!(account),
        "each client its own"
    );

    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(["clients", "show", "shop"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.contains(&format!("twilio_account_sid       {account}"))
            && printed.contains(&format!("twilio_service_sid       {service}"))
            && printed.contains("sms_as_whatsapp"),
        "{printed}"
    );
}

#[tokio::test]
async fn bodies_paths_and_fields_are_refused_in_twilios_form() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    let post_raw = |content_type: &'static str, body: String| {
        app.http
            .post(twilio.url("/Verifications"))
            .basic_auth(&twilio.account, Some(&twilio.key))
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let json_body = post_raw(
        "application/json",
        json!({"To": PHONE, "Channel": "whatsapp"}).to_string(),
    );
    let body = twilio_error(json_body.await.unwrap(), 400, 60200).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded"),
        "{body}"
    );
    let big = format!("To={PHONE}&Channel=whatsapp&Tags={}", "x".repeat(20_000));
    twilio_error(
        post_raw("application/x-www-form-urlencoded", big).await.unwrap(),
        400,
        60200,
    )
    .await;

    for (fields, named) in [
        (vec![("Channel", "whatsapp")], "`To`"),
        (vec![("To", "not a number"), ("Channel", "whatsapp")], "`To`"),
        (vec![("To", "69657008"), ("Channel", "whatsapp")], "`To`"),
        (vec![("To", PHONE)], "`Channel`"),
        (
            vec![("To", PHONE), ("Channel", "whatsapp"), ("DeviceIp", "nowhere")],
            "`DeviceIp`",
        ),
        (
            vec![
                ("To", PHONE),
                ("Channel", "whatsapp"),
                ("CustomFriendlyName", &"n".repeat(65)),
            ],
            "`CustomFriendlyName`",
        ),
    ] {
        let body = twilio_error(twilio.post("/Verifications", &fields).await, 400, 60200).await;
        assert!(
            body["message"].as_str().unwrap().contains(named),
            "{fields:?}: {body}"
        );
    }
    for fields in [
        vec![("To", PHONE)],
        vec![("To", PHONE), ("Code", "")],
        vec![("Code", "123456")],
    ] {
        twilio_error(twilio.check(&fields).await, 400, 60200).await;
    }
    assert_eq!(app.verification_count().await, 0);

    // Fields Twilio defines that this service does not use are let through.
    let ignored = twilio
        .post(
            "/Verifications",
            &[
                ("To", PHONE),
                ("Channel", "whatsapp"),
                ("AppHash", "abc"),
                ("Tags", "{\"a\":\"b\"}"),
                ("RateLimits", "{}"),
                ("Amount", "1"),
            ],
        )
        .await;
    assert_eq!(ignored.status(), 201);

    // Paths no operation has, and methods a path does not take.
    let unknown = twilio.get("/RateLimits").await;
    twilio_error(unknown, 404, 20404).await;
    let outside = app
        .http
        .get(format!("{}/twilio/v1/Nothing", app.address))
        .basic_auth(&twilio.account, Some(&twilio.key));
    twilio_error(outside.send().await.unwrap(), 404, 20404).await;
    let deleted = app
        .http
        .delete(twilio.url(&format!("/Verifications/VE{}", uuid::Uuid::new_v4().simple())))
        .basic_auth(&twilio.account, Some(&twilio.key))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.headers()["allow"], "GET, POST");
    twilio_error(deleted, 405, 20004).await;
}

#[tokio::test]
async fn locale_and_friendly_name_shape_the_message() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    set(
        &app,
        SettingsChange {
            template_en: Change::Set("{app}: your code is *{code}*".into()),
            display_name: Change::Set("Shop".into()),
            ..Default::default()
        },
    )
    .await;
    let cases = [
        (1, vec![("Locale", "pt-BR")], "Seu código"),
        (2, vec![("Locale", "fr")], "Tu código"),
        (3, vec![("Locale", "en-US")], "Shop: your code"),
        (
            4,
            vec![("Locale", "en"), ("CustomFriendlyName", "Tienda Sol")],
            "Tienda Sol: your code",
        ),
    ];
    for (n, extra, says) in cases {
        let phone = nth_phone(n);
        let mut fields = vec![("To", phone.as_str()), ("Channel", "whatsapp")];
        fields.extend(extra);
        let started = twilio.post("/Verifications", &fields).await;
        assert_eq!(started.status(), 201);
        let started: Value = started.json().await.unwrap();
        crate::twilio::code_sent(&app, &started["sid"], &phone).await;
        let message = app.fake.last_message_to(&phone[1..]).unwrap().message;
        assert!(message.contains(says), "{fields:?}: {message}");
    }
}
