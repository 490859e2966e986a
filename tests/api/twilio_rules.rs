//! The service's rules and outages through `/twilio`, in Twilio's codes: the
//! client's window, a gateway without a key, countries and fraud blocks, test
//! numbers; and the surface's own document, and the SIDs of an upgrade.

use otp_service::clients;
use otp_service::domain::{Change, SettingsChange};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::helpers::*;
use crate::twilio::{Twilio, set, twilio_error};

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

/// V20 gives the clients that were there before it their SIDs, each its own,
/// and every client made after it gets its pair by the columns' defaults.
#[tokio::test]
async fn the_clients_of_an_upgraded_database_get_sids_of_their_own() {
    use sqlx::{Connection, PgConnection};
    let database = TestDatabase::create().await;
    let mut conn = PgConnection::connect_with(&database.options()).await.unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let version = name[1..name.find("__").unwrap()].parse().unwrap();
            (version, p)
        })
        .collect();
    files.sort();
    let run = |path: &std::path::Path| sqlx::AssertSqlSafe(std::fs::read_to_string(path).unwrap());
    for (_, path) in files.iter().filter(|(v, _)| *v < 20) {
        sqlx::raw_sql(run(path)).execute(&mut conn).await.unwrap();
    }
    for name in ["a", "b", "c"] {
        sqlx::query("insert into clients (id, name, key_hash) values (gen_random_uuid(), $1, $2)")
            .bind(name)
            .bind(name.as_bytes())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let (_, v20) = files.iter().find(|(v, _)| *v == 20).unwrap();
    sqlx::raw_sql(run(v20)).execute(&mut conn).await.unwrap();
    sqlx::query("insert into clients (id, name, key_hash) values (gen_random_uuid(), 'd', 'd')")
        .execute(&mut conn)
        .await
        .unwrap();
    let sids: Vec<(String, String)> =
        sqlx::query_as("select twilio_account_sid, twilio_service_sid from clients order by name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(sids.len(), 4);
    let mut seen = std::collections::HashSet::new();
    for (account, service) in &sids {
        assert!(
            otp_service::domain::TwilioSids::parse(account, service).is_some(),
            "{account} {service}"
        );
        assert!(seen.insert(account[2..].to_owned()) && seen.insert(service[2..].to_owned()));
    }
    let taken = sqlx::query("update clients set twilio_service_sid = $1 where name = 'd'")
        .bind(&sids[0].1)
        .execute(&mut conn)
        .await;
    assert!(taken.is_err(), "a Service SID is one client's");
}
