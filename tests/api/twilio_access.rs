//! Who may call `/twilio`, and how its refusals read: credentials, another
//! client's SIDs, malformed bodies, unknown paths, and the service's limits,
//! fraud rules and outages in Twilio's codes.

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
    for fields in [vec![("To", PHONE)], vec![("Code", "123456")]] {
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

#[tokio::test]
async fn the_clients_limit_is_20429_with_retry_after() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    app.changing_clients(clients::set_requests_per_minute(
        &app.pool,
        "test-client",
        Some(2),
    ))
    .await
    .unwrap();
    // One window for both APIs.
    let unknown = format!("/otp/{}", uuid::Uuid::now_v7());
    assert_eq!(app.get(&unknown).await.status(), 404);
    assert_eq!(twilio.get("").await.status(), 200);
    let body = twilio_error(twilio.get("").await, 429, 20429).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("Too many requests"),
        "{body}"
    );
}

#[tokio::test]
async fn a_gateway_without_a_key_in_service_is_20503() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    app.fake.set_session_ended(0, true);
    // The first request finds out the hard way: its message fails with the key.
    let first = twilio.create(&nth_phone(0)).await;
    app.wait_for_delivery(
        &crate::twilio::native_id(&first["sid"]),
        "failed",
        std::time::Duration::from_secs(10),
    )
    .await;
    let refused = twilio
        .post(
            "/Verifications",
            &[("To", &nth_phone(1)), ("Channel", "whatsapp")],
        )
        .await;
    twilio_error(refused, 503, 20503).await;
    let failed: Value = twilio
        .get(&format!("/Verifications/{}", first["sid"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed["status"], "failed");
}

#[tokio::test]
async fn a_country_not_allowed_or_a_blocked_prefix_is_60410() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    set(
        &app,
        SettingsChange {
            allowed_countries: Change::Set(vec!["PE".into()]),
            ..Default::default()
        },
    )
    .await;
    let body = twilio_error(
        twilio
            .post("/Verifications", &[("To", PHONE), ("Channel", "whatsapp")])
            .await,
        403,
        60410,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("`To` is a number of BO"),
        "{body}"
    );

    set(
        &app,
        SettingsChange {
            allowed_countries: Change::Clear,
            ..Default::default()
        },
    )
    .await;
    app.changing_clients(async { crate::fraud::fraud(&app, &["block", "+591696"]) })
        .await;
    let blocked = twilio
        .post("/Verifications", &[("To", PHONE), ("Channel", "whatsapp")])
        .await;
    twilio_error(blocked, 403, 60410).await;
    assert_eq!(app.verification_count().await, 0);
}

#[tokio::test]
async fn a_test_number_sends_nothing_and_its_fixed_code_approves() {
    let app = spawn_app().await;
    let twilio = Twilio::of(&app).await;
    let pepper = app.settings.pepper.clone().unwrap();
    app.changing_clients(crate::peppers::test_number_under(
        &app,
        pepper.expose_secret(),
        PHONE,
        "246810",
    ))
    .await;
    let started = twilio.create(PHONE).await;
    assert_eq!(started["status"], "pending");
    let checked: Value = twilio
        .check(&[("To", PHONE), ("Code", "246810")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(checked["status"], "approved");
    assert!(app.fake.messages().is_empty(), "nothing sent to a test number");
}

#[tokio::test]
async fn the_twilio_document_is_committed_served_and_apart_from_the_native_one() {
    use otp_service::http::{openapi, twilio};
    let generated = openapi::to_json(&twilio::openapi::document());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/twilio-verify.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        // Never under CI: there, a stale document must fail, not be rewritten.
        if std::env::var_os("UPDATE_OPENAPI").is_some() && !in_ci() {
            std::fs::write(path, &generated).unwrap();
        } else {
            panic!(
                "openapi/twilio-verify.json is stale: run `cargo run -- openapi --twilio > openapi/twilio-verify.json`"
            );
        }
    }
    let document: Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/twilio/v2/Services/{ServiceSid}/Verifications",
        "/twilio/v2/Services/{ServiceSid}/VerificationCheck",
        "/twilio/v2/Services/{ServiceSid}/Verifications/{Sid}",
        "/twilio/v2/Services/{Sid}",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    let native = openapi::document();
    assert!(
        native.paths.paths.keys().all(|p| !p.starts_with("/twilio")),
        "the native document has no /twilio operation"
    );
    let app = spawn_app().await;
    let served = app.get_open("/twilio/openapi.json").await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.text().await.unwrap(), generated);
}
