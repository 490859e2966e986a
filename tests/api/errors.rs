//! Bad input gets a clear problem document and changes nothing.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_request_bodies_are_invalid_request() {
    let app = spawn_app().await;
    let malformed = app
        .http
        .post(format!("{}/otp/request", app.address))
        .header("X-Api-Key", &app.api_key)
        .header("content-type", "application/json")
        .body("{\"phone\": ")
        .send()
        .await
        .unwrap();
    problem(malformed, 400, "invalid_request").await;

    for body in [
        json!({}),
        json!({"phone": 59169657008u64}),
        json!({"phone": PHONE, "extra": 1}),
        json!({"phone": PHONE, "purpose": "Sign Up"}),
        json!({"phone": PHONE, "purpose": ""}),
        json!({"phone": PHONE, "locale": "fr"}),
        json!({"phone": PHONE, "end_user_ip": "not-an-ip"}),
        json!({"phone": "69657008", "country": "ZZ"}),
    ] {
        problem(app.request_code(body).await, 400, "invalid_request").await;
    }
    for body in [
        json!({"code": "123456"}),
        json!({"id": "not-a-uuid", "code": "123456"}),
        json!({"id": uuid::Uuid::now_v7(), "phone": PHONE, "code": "123456"}),
    ] {
        problem(app.verify(body).await, 400, "invalid_request").await;
    }
    // A code sent as a number is refused without repeating it.
    let body = problem(
        app.verify(json!({"id": uuid::Uuid::now_v7(), "code": 987654}))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(!body.to_string().contains("987654"), "{body}");
    problem(app.get("/otp/not-a-uuid").await, 400, "invalid_request").await;
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn unreadable_phone_numbers_are_invalid_phone() {
    let app = spawn_app().await;
    for phone in ["hello", "+591 123", "5916965700e8", "69657008", "+1 000 000 0000"] {
        problem(
            app.request_code(json!({"phone": phone})).await,
            400,
            "invalid_phone",
        )
        .await;
    }
    assert!(app.fake.calls().is_empty());
}

#[tokio::test]
async fn unknown_verifications_and_routes_are_not_found() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    problem(app.get(&format!("/otp/{id}")).await, 404, "not_found").await;
    problem(
        app.verify(json!({"id": id, "code": "123456"})).await,
        404,
        "not_found",
    )
    .await;
    problem(app.get("/no/such/route").await, 404, "not_found").await;
    let wrong_method = app
        .http
        .delete(format!("{}/otp/request", app.address))
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.headers()["allow"], "POST");
    problem(wrong_method, 405, "method_not_allowed").await;
    let wrong_method = app
        .http
        .put(format!("{}/otp/{id}", app.address))
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET");
    // `/otp/request` is a path of its own, not an id.
    let wrong_method = app.get("/otp/request").await;
    assert_eq!(wrong_method.headers()["allow"], "POST");
    problem(wrong_method, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health = app.get_open("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get_open("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["senders"][0]["name"], "sender-1");
    assert_eq!(body["senders"][0]["state"], "ok");
    assert!(!body.to_string().contains(GATEWAY_KEYS[0]));
}

#[tokio::test]
async fn the_service_refuses_to_start_without_its_database() {
    let app = spawn_app().await;
    // A second service whose database does not answer: healthy, but not ready.
    let mut settings = app.settings.clone();
    settings.database.url = "postgres://postgres@127.0.0.1:1/none".to_owned().into();
    let closed = otp_service::startup::Application::build(settings, None).await;
    assert!(
        closed.is_err(),
        "serve must refuse to start without its migrations"
    );
}

#[tokio::test]
async fn numbers_outside_the_allowed_countries_are_refused_before_anything_is_stored() {
    let app = spawn_app_with(|s| {
        s.policy.allowed_countries = otp_service::config::CountryList(vec!["PE".parse().unwrap()])
    })
    .await;
    problem(
        app.request_code(json!({"phone": PHONE})).await,
        403,
        "country_not_allowed",
    )
    .await;
    let count = app.verification_count().await;
    assert_eq!(count, 0);
    assert!(app.fake.calls().is_empty());
    let response = app.request_code(json!({"phone": "+51 912 345 678"})).await;
    assert_eq!(response.status(), 202);
}

fn detail(body: &serde_json::Value) -> &str {
    body["detail"].as_str().unwrap_or_default()
}

/// Every 4xx names the field, what is wrong with its value, and the fix.
#[tokio::test]
async fn each_refusal_names_the_field_the_problem_and_the_fix() {
    let app = spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.policy.allowed_countries =
            otp_service::config::CountryList(vec!["BO".parse().unwrap(), "AR".parse().unwrap()]);
    })
    .await;

    // A field of the wrong type: named, with what is expected, never its value.
    let body = problem(
        app.request_code(json!({"phone": 59169657008u64})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        detail(&body),
        "`phone`: wrong type or value, expected a string",
        "{body}"
    );
    let body = problem(
        app.verify(json!({"phone": PHONE, "code": 987654})).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(detail(&body).starts_with("`code`: "), "{body}");
    assert!(!body.to_string().contains("987654"), "{body}");

    // A national number without a country: the two ways to give one.
    let body = problem(
        app.request_code(json!({"phone": "69657008"})).await,
        400,
        "invalid_phone",
    )
    .await;
    for says in ["`phone`", "`country`", "OTP_DEFAULT_COUNTRY", "+591"] {
        assert!(detail(&body).contains(says), "{says}: {body}");
    }

    // Another country: which one, and the list.
    let body = problem(
        app.request_code(json!({"phone": "+51 912 345 678"})).await,
        403,
        "country_not_allowed",
    )
    .await;
    for says in ["of PE", "BO, AR", "allowed_countries", "OTP_ALLOWED_COUNTRIES"] {
        assert!(detail(&body).contains(says), "{says}: {body}");
    }

    // A code length under NIST's bound: the setting that allows it.
    let refused = app
        .http
        .patch(format!("{}/admin/clients/test-client", app.address))
        .header("X-Admin-Key", ADMIN_KEY)
        .json(&json!({"code_length": 4}))
        .send()
        .await
        .unwrap();
    let body = problem(refused, 400, "invalid_request").await;
    assert_eq!(body["field"], "code_length");
    for says in ["`code_length`", "not 4", "OTP_ALLOW_WEAK_CODES=true"] {
        assert!(detail(&body).contains(says), "{says}: {body}");
    }
}

/// The gateway's failure switches exist only under `serve --dev`.
#[tokio::test]
async fn there_is_no_dev_gateway_outside_dev() {
    let app = spawn_app().await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let answer = app
            .http
            .request(method.clone(), format!("{}/dev/gateway", app.address))
            .json(&json!({"down": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{method}");
    }
    assert_eq!(app.get_open("/dev/messages").await.status(), 404);
}
