//! `/admin/clients`: clients managed over HTTP, with effect on the very next
//! `/otp` request.

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) async fn admin_app() -> TestApp {
    spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await
}

pub(crate) fn admin(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.http
        .request(method, format!("{}/admin{path}", app.address))
        .header("X-Admin-Key", ADMIN_KEY)
}

pub(crate) async fn json_of(request: RequestBuilder, status: u16) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

async fn patch(app: &TestApp, name: &str, body: Value) -> reqwest::Response {
    admin(app, Method::PATCH, &format!("/clients/{name}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn client(app: &TestApp, name: &str) -> Value {
    json_of(admin(app, Method::GET, &format!("/clients/{name}")), 200).await
}

#[tokio::test]
async fn client_endpoints_need_the_admin_key_and_are_off_without_one() {
    let app = admin_app().await;
    let clients = format!("{}/admin/clients", app.address);
    problem(app.http.get(&clients).send().await.unwrap(), 401, "unauthorized").await;
    let wrong = app.http.get(&clients).header("X-Admin-Key", "wrong").send().await;
    problem(wrong.unwrap(), 401, "unauthorized").await;
    let wrong = app
        .http
        .post(&clients)
        .basic_auth("operator", Some("wrong"))
        .json(&json!({"name": "shop"}))
        .send()
        .await;
    problem(wrong.unwrap(), 401, "unauthorized").await;
    let by_basic = app
        .http
        .get(&clients)
        .basic_auth("operator", Some(ADMIN_KEY))
        .send();
    assert_eq!(by_basic.await.unwrap().status(), 200);

    let off = spawn_app().await;
    let answer = admin(&off, Method::GET, "/clients").send().await.unwrap();
    problem(answer, 404, "not_found").await;
    let answer = admin(&off, Method::POST, "/clients")
        .json(&json!({"name": "shop"}))
        .send()
        .await
        .unwrap();
    problem(answer, 404, "not_found").await;
}

#[tokio::test]
async fn a_created_client_gets_a_working_key_shown_only_once() {
    let app = admin_app().await;
    let created = json_of(
        admin(&app, Method::POST, "/clients").json(&json!({"name": "shop", "ttl_seconds": 300})),
        201,
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("otpk_"), "{created}");
    assert_eq!(created["name"], "shop");
    assert_eq!(created["revoked_at"], Value::Null);
    assert_eq!(created["settings"], json!({"ttl_seconds": 300}));
    assert_eq!(created["effective"]["ttl_seconds"], 300);

    let answer = app.post_as(&key, "/otp/request", &json!({"phone": PHONE})).await;
    assert_eq!(answer.status(), 202);

    for path in ["/clients", "/clients/shop"] {
        let text = admin(&app, Method::GET, path)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !text.contains(&key) && !text.contains("\"key\""),
            "{path}: {text}"
        );
    }
    let list = json_of(admin(&app, Method::GET, "/clients"), 200).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop", "test-client"]);

    let again = admin(&app, Method::POST, "/clients")
        .json(&json!({"name": "shop"}))
        .send();
    problem(again.await.unwrap(), 409, "client_exists").await;
    let bad = admin(&app, Method::POST, "/clients")
        .json(&json!({"name": "Shop!"}))
        .send();
    problem(bad.await.unwrap(), 400, "invalid_request").await;
    // A refused setting leaves no client behind.
    let refused = admin(&app, Method::POST, "/clients")
        .json(&json!({"name": "kiosk", "max_sends": 0}))
        .send();
    let body = problem(refused.await.unwrap(), 400, "invalid_request").await;
    assert_eq!(body["field"], "max_sends");
    let gone = admin(&app, Method::GET, "/clients/kiosk").send();
    problem(gone.await.unwrap(), 404, "not_found").await;
    // No client can have such a name: not a database error, but no one.
    let impossible = admin(&app, Method::GET, "/clients/ki%00osk").send();
    problem(impossible.await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn a_patch_sets_and_resets_fields_and_is_never_half_applied() {
    let app = admin_app().await;
    let changed = patch(
        &app,
        "test-client",
        json!({"display_name": "Tienda Sol", "ttl_seconds": 300, "max_sends": 3,
               "allowed_countries": ["bo", "PE"], "template_en": "{app}: {code}"}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let shown = client(&app, "test-client").await;
    assert_eq!(
        shown["settings"],
        json!({"display_name": "Tienda Sol", "ttl_seconds": 300, "max_sends": 3,
               "allowed_countries": ["BO", "PE"], "template_en": "{app}: {code}"})
    );
    let effective = &shown["effective"];
    assert_eq!(effective["display_name"], "Tienda Sol");
    assert_eq!(effective["ttl_seconds"], 300);
    assert_eq!(effective["allowed_countries"], json!(["BO", "PE"]));
    assert_eq!(effective["templates"]["en"], "{app}: {code}");
    assert_eq!(effective["max_attempts"], app.settings.policy.max_attempts);
    assert!(effective["templates"]["es"].as_str().unwrap().contains("{code}"));

    let reset = patch(
        &app,
        "test-client",
        json!({"ttl_seconds": null, "allowed_countries": null}),
    )
    .await;
    assert_eq!(reset.status(), 200);
    let shown = client(&app, "test-client").await;
    assert!(shown["settings"].get("ttl_seconds").is_none(), "{shown}");
    assert_eq!(shown["effective"]["ttl_seconds"], app.settings.policy.ttl_seconds);
    assert_eq!(shown["effective"]["allowed_countries"], json!([]));
    assert_eq!(shown["settings"]["max_sends"], 3, "a field left out is kept");

    let half = patch(&app, "test-client", json!({"ttl_seconds": 120, "share": 0})).await;
    let body = problem(half, 400, "invalid_request").await;
    assert_eq!(body["field"], "share");
    assert!(body["detail"].as_str().unwrap().contains("1 to 1000"), "{body}");
    let shown = client(&app, "test-client").await;
    assert_eq!(shown["effective"]["ttl_seconds"], app.settings.policy.ttl_seconds);
    assert!(shown["settings"].get("share").is_none(), "{shown}");

    let unknown = patch(&app, "test-client", json!({"colour": "red"})).await;
    let body = problem(unknown, 400, "invalid_request").await;
    assert!(body.get("field").is_none(), "{body}");
    let nul = patch(&app, "test-client", json!({"template_es": "{code}\0"})).await;
    assert_eq!(problem(nul, 400, "invalid_request").await["field"], "template_es");
    let weak = patch(&app, "test-client", json!({"code_length": 4})).await;
    assert_eq!(
        problem(weak, 400, "invalid_request").await["field"],
        "code_length"
    );
    problem(
        patch(&app, "nobody", json!({"ttl_seconds": 300})).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_patched_code_length_is_used_by_the_next_request() {
    let app = admin_app().await;
    let first = nth_phone(1);
    assert_eq!(app.request_code(json!({"phone": first})).await.status(), 202);
    assert_eq!(app.last_code_to(&first[1..]).len(), 6);

    assert_eq!(
        patch(&app, "test-client", json!({"code_length": 8}))
            .await
            .status(),
        200
    );
    let second = nth_phone(2);
    assert_eq!(app.request_code(json!({"phone": second})).await.status(), 202);
    let code = app.last_code_to(&second[1..]);
    assert_eq!(code.len(), 8, "{code}");
    let verified = app.verify(json!({"phone": second, "code": code})).await;
    assert_eq!(verified.status(), 200);
}

#[tokio::test]
async fn a_rotated_key_replaces_the_old_one_at_once() {
    let app = admin_app().await;
    let rotated = json_of(admin(&app, Method::POST, "/clients/test-client/rotate-key"), 200).await;
    assert_eq!(rotated["name"], "test-client");
    let key = rotated["key"].as_str().unwrap();
    assert_ne!(key, app.api_key);
    let old = app
        .post_as(&app.api_key, "/otp/request", &json!({"phone": PHONE}))
        .await;
    problem(old, 401, "unauthorized").await;
    let new = app.post_as(key, "/otp/request", &json!({"phone": PHONE})).await;
    assert_eq!(new.status(), 202);
    let unknown = admin(&app, Method::POST, "/clients/nobody/rotate-key").send();
    problem(unknown.await.unwrap(), 404, "not_found").await;
}

#[tokio::test]
async fn client_changes_from_a_page_of_another_origin_are_refused() {
    let app = admin_app().await;
    let phone = nth_phone(9);
    let evil =
        |method: Method, path: &str| admin(&app, method, path).header("Origin", "https://evil.example");
    let refused = [
        evil(Method::POST, "/clients").json(&json!({"name": "evil"})),
        evil(Method::PATCH, "/clients/test-client").json(&json!({"ttl_seconds": 60})),
        evil(Method::POST, "/clients/test-client/rotate-key"),
        evil(Method::POST, "/clients/test-client/test-numbers")
            .json(&json!({"phone": phone, "code": "123456"})),
        evil(
            Method::DELETE,
            &format!("/clients/test-client/test-numbers/{phone}"),
        ),
    ];
    for request in refused {
        problem(request.send().await.unwrap(), 403, "cross_origin").await;
    }
    problem(
        admin(&app, Method::GET, "/clients/evil").send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let shown = client(&app, "test-client").await;
    assert_eq!(shown["settings"], json!({}));
    assert_eq!(
        app.request_code(json!({"phone": PHONE})).await.status(),
        202,
        "the key still works"
    );
    // Reading is no change: a page elsewhere cannot read the answer anyway.
    let read = evil(Method::GET, "/clients").send().await.unwrap();
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let app = admin_app().await;
    // serde reads a struct from an array too: `[null, null]` was an empty patch.
    for body in [json!([null, null]), json!(["shop"]), json!(7)] {
        let patched = patch(&app, "test-client", body.clone()).await;
        let refusal = problem(patched, 400, "invalid_request").await;
        assert!(
            refusal["detail"].as_str().unwrap().contains("object"),
            "{body}: {refusal}"
        );
        let created = admin(&app, Method::POST, "/clients")
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(created, 400, "invalid_request").await;
    }
    let unknown = patch(&app, "test-client", json!({"ttl": 300})).await;
    let refusal = problem(unknown, 400, "invalid_request").await;
    assert!(
        refusal["detail"].as_str().unwrap().contains("unknown field"),
        "{refusal}"
    );
}
