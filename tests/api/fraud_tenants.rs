//! Fraud flags between clients: a flag refuses only the client whose own
//! traffic raised it, clients pumping a range together are flagged each
//! (never one whose traffic converts), and an operator turns a flag into a
//! block for every client, from the command line or over HTTP.

use std::time::Instant;

use otp_service::fraud::FraudMode;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::admin_clients::{admin, json_of};
use crate::fraud::{fraud, refused_as_fraud};
use crate::fraud_detection::{WAIT, flags, peruvian, pumped, spawn, wait_for_flag, wait_for_flag_with};
use crate::helpers::*;

/// The end user's address the first client states for every request.
const IP: &str = "203.0.113.7";

async fn client(app: &TestApp, name: &str) -> String {
    let key = otp_service::clients::add(&app.pool, name, None).await.unwrap();
    key.expose_secret().to_owned()
}

async fn ask(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.post_as(key, "/otp/request", &body).await
}

/// The first client (`test-client`): one end user asking for numbers of
/// four countries, and twenty codes to +591 777…, none verified.
async fn pump_through_the_first_client(app: &TestApp) {
    for phone in ["+51987654321", "+5491123456789", "+34612345678", "+59169600001"] {
        let answer = app.request_code(json!({"phone": phone, "end_user_ip": IP})).await;
        assert_eq!(answer.status(), 202);
    }
    for n in 0..20 {
        assert_eq!(app.request_code(json!({"phone": pumped(n)})).await.status(), 202);
    }
}

/// Asks with a new body each time until refused as fraud: the replica hears
/// of a new flag or block by notification, a moment after it commits.
async fn refused_soon(mut ask: impl AsyncFnMut(usize) -> reqwest::Response) {
    let start = Instant::now();
    for n in 0.. {
        let answer = ask(n).await;
        if answer.status() == 429 {
            refused_as_fraud(answer).await;
            return;
        }
        assert_eq!(answer.status(), 202);
        assert!(start.elapsed() < WAIT, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_clients_traffic_flags_its_own_requests_never_another_clients() {
    let app = spawn(FraudMode::Enforce).await;
    let other = client(&app, "other").await;
    pump_through_the_first_client(&app).await;
    let network = wait_for_flag(&app, "ip_countries", "ip", IP).await;
    let prefix = wait_for_flag(&app, "low_conversion_hour", "prefix", "591777").await;
    assert_eq!(network["client"], "test-client");
    assert_eq!(prefix["client"], "test-client");

    // The first client is refused for its flags…
    refused_soon(async |n| app.request_code(json!({"phone": pumped(100 + n)})).await).await;
    let from_the_network = json!({"phone": peruvian(1), "end_user_ip": IP});
    refused_as_fraud(app.request_code(from_the_network.clone()).await).await;
    // …the other, stating the same address and asking for the same range, is not.
    assert_eq!(
        ask(&app, &other, json!({"phone": pumped(200)})).await.status(),
        202
    );
    assert_eq!(ask(&app, &other, from_the_network).await.status(), 202);
    assert!(
        flags(&app).await.iter().all(|f| f["client"] == "test-client"),
        "{:?}",
        flags(&app).await
    );
    assert!(network["id"].is_i64() && prefix["id"] != network["id"]);
}

#[tokio::test]
async fn clients_pumping_a_range_together_are_flagged_each_never_one_whose_traffic_converts() {
    let app = spawn(FraudMode::Enforce).await;
    let second = client(&app, "second").await;
    let clean = client(&app, "clean").await;
    // Ten codes to the range, half of them verified: five not, but converting.
    for n in 0..10 {
        let sent: Value = ask(&app, &clean, json!({"phone": pumped(100 + n)}))
            .await
            .json()
            .await
            .unwrap();
        if n % 2 == 0 {
            let code = app.last_code_to(&pumped(100 + n)[1..]);
            let check = json!({"id": sent["id"], "code": code});
            assert_eq!(app.post_as(&clean, "/otp/verify", &check).await.status(), 200);
        }
    }
    // Eleven and ten, none verified: each client alone is under every bound,
    // together over 20 at the last one (the first refused would be the next).
    for n in 0..10 {
        assert_eq!(app.request_code(json!({"phone": pumped(n)})).await.status(), 202);
        assert_eq!(
            ask(&app, &second, json!({"phone": pumped(50 + n)}))
                .await
                .status(),
            202
        );
    }
    assert_eq!(app.request_code(json!({"phone": pumped(10)})).await.status(), 202);
    for name in ["test-client", "second"] {
        // Its figures are brought up to date at every count.
        let flag = wait_for_flag_with(&app, "unverified_day_all_clients", "prefix", "591777", |f| {
            f["client"] == name && f["counted"] == 21
        })
        .await;
        assert_eq!(flag["threshold"], 20.0);
    }
    let standing = flags(&app).await;
    assert_eq!(standing.len(), 2, "{standing:?}");

    refused_soon(async |n| app.request_code(json!({"phone": pumped(300 + n)})).await).await;
    refused_as_fraud(ask(&app, &second, json!({"phone": pumped(400)})).await).await;
    assert_eq!(
        ask(&app, &clean, json!({"phone": pumped(500)})).await.status(),
        202
    );
}

#[tokio::test]
async fn an_operator_turns_a_flag_into_a_block_for_every_client_from_the_cli_or_over_http() {
    let app = spawn(FraudMode::Record).await;
    let other = client(&app, "other").await;
    pump_through_the_first_client(&app).await;
    let prefix = wait_for_flag(&app, "low_conversion_hour", "prefix", "591777").await;
    let network = wait_for_flag(&app, "ip_countries", "ip", IP).await;
    assert_eq!(
        ask(&app, &other, json!({"phone": pumped(200)})).await.status(),
        202
    );

    // From the command line: the flagged range, for both clients.
    let id = prefix["id"].to_string();
    let listed = String::from_utf8(fraud(&app, &["flags"]).stdout).unwrap();
    let line = listed.lines().find(|l| l.starts_with(&format!("{id} "))).unwrap();
    assert!(
        line.contains("591777") && line.contains("test-client"),
        "{listed}"
    );
    let blocked = app
        .changing_clients(async { fraud(&app, &["block", "--from-flag", &id]) })
        .await;
    let said = String::from_utf8(blocked.stdout).unwrap();
    assert!(
        said.contains("+591777 blocked for every client until removed"),
        "{said}"
    );
    refused_as_fraud(app.request_code(json!({"phone": pumped(300)})).await).await;
    refused_as_fraud(ask(&app, &other, json!({"phone": pumped(301)})).await).await;

    // Over HTTP: the flagged network, for both clients.
    let path = format!("/fraud/flags/{}/block", network["id"]);
    let block = admin(&app, Method::POST, &path).json(&json!({})).send();
    let block = app.changing_clients(block).await.unwrap();
    assert_eq!(block.status(), 200);
    let block: Value = block.json().await.unwrap();
    assert_eq!(block["scope"], "ip");
    assert_eq!(block["key"], IP);
    assert_eq!(block["until"], Value::Null);
    let from_the_network = json!({"phone": peruvian(2), "end_user_ip": IP});
    refused_as_fraud(app.request_code(from_the_network.clone()).await).await;
    refused_as_fraud(ask(&app, &other, from_the_network.clone()).await).await;
    let blocks = json_of(admin(&app, Method::GET, "/fraud/blocks"), 200).await;
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
    let listed = String::from_utf8(fraud(&app, &["list"]).stdout).unwrap();
    assert!(
        listed.contains("+591777") && listed.contains(&format!("network {IP}")),
        "{listed}"
    );

    // Lifted, the other client's end user passes again; a flag gone or a
    // path that names none is said so.
    let lift = admin(&app, Method::DELETE, &format!("/fraud/blocks/ip/{IP}")).send();
    assert_eq!(app.changing_clients(lift).await.unwrap().status(), 204);
    assert_eq!(ask(&app, &other, from_the_network).await.status(), 202);
    let gone = admin(&app, Method::POST, "/fraud/flags/999999/block").json(&json!({}));
    problem(gone.send().await.unwrap(), 404, "not_found").await;
    let bad = admin(&app, Method::POST, "/fraud/flags/x/block").json(&json!({}));
    problem(bad.send().await.unwrap(), 400, "invalid_request").await;
}

#[tokio::test]
async fn countries_and_networks_are_blocked_for_every_client_over_http() {
    let app = spawn(FraudMode::Off).await;
    let other = client(&app, "other").await;
    let put = |path: &str, body: Value| admin(&app, Method::PUT, path).json(&body).send();
    let set = app
        .changing_clients(put("/fraud/blocks/country/pe", json!({})))
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let set: Value = set.json().await.unwrap();
    assert_eq!((&set["scope"], &set["key"]), (&json!("country"), &json!("PE")));
    refused_as_fraud(app.request_code(json!({"phone": peruvian(1)})).await).await;
    refused_as_fraud(ask(&app, &other, json!({"phone": peruvian(2)})).await).await;
    assert_eq!(app.request_code(json!({"phone": PHONE})).await.status(), 202);

    for (path, body) in [
        ("/fraud/blocks/country/XX", json!({})),
        ("/fraud/blocks/ip/not-an-address", json!({})),
        ("/fraud/blocks/prefix/591", json!({})),
        (
            "/fraud/blocks/country/BO",
            json!({"until": "2020-01-01T00:00:00Z"}),
        ),
    ] {
        problem(put(path, body).await.unwrap(), 400, "invalid_request").await;
    }
    let lift = admin(&app, Method::DELETE, "/fraud/blocks/country/PE").send();
    assert_eq!(app.changing_clients(lift).await.unwrap().status(), 204);
    assert_eq!(
        app.request_code(json!({"phone": peruvian(3)})).await.status(),
        202
    );
    let again = admin(&app, Method::DELETE, "/fraud/blocks/country/PE").send();
    problem(again.await.unwrap(), 404, "not_found").await;

    // From the command line, an IPv6 address blocks its /64.
    app.changing_clients(async { fraud(&app, &["block", "--ip", "2001:db8:1:2::5"]) })
        .await;
    let from_the_64 = json!({"phone": peruvian(4), "end_user_ip": "2001:db8:1:2:aa::9"});
    refused_as_fraud(ask(&app, &other, from_the_64.clone()).await).await;
    let listed = String::from_utf8(fraud(&app, &["list"]).stdout).unwrap();
    assert!(listed.contains("network 2001:db8:1:2::/64"), "{listed}");
    app.changing_clients(async { fraud(&app, &["remove", "--ip", "2001:db8:1:2::/64"]) })
        .await;
    assert_eq!(ask(&app, &other, from_the_64).await.status(), 202);
}
