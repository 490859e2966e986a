//! `GET /stats` and `GET /admin/stats`: the figures equal the flows the test
//! ran, per country, for the calling client only, and outlive retention.

use std::time::Duration;

use otp_service::retention;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_clients::{admin, json_of};
use crate::helpers::*;

/// Spanish mobile numbers, beside `nth_phone`'s Bolivian ones.
fn spanish(n: usize) -> String {
    format!("+346{:08}", 12_000_000 + n)
}

async fn stats_app() -> TestApp {
    spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.policy.resend_cooldown_seconds = 0;
    })
    .await
}

/// Requests a code for `phone` as `key`, waits for it to go out; returns its id and code.
async fn sent(app: &TestApp, key: &str, phone: &str) -> (String, String) {
    let response = app.post_as(key, "/otp/request", &json!({"phone": phone})).await;
    assert_eq!(response.status(), 202);
    let v: Value = response.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    app.wait_for("the code to go out", Duration::from_secs(10), || async {
        let v: Value = app
            .http
            .get(format!("{}/otp/{id}", app.address))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["delivery_status"] == "sent"
    })
    .await;
    (id, app.last_code_to(&phone[1..]))
}

async fn verify(app: &TestApp, key: &str, id: &str, code: &str) -> reqwest::Response {
    app.post_as(key, "/otp/verify", &json!({"id": id, "code": code}))
        .await
}

fn wrong(code: &str) -> String {
    code.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
}

/// Makes the verification's code expire now, and has the sweeper mark it.
async fn expire(app: &TestApp, id: &str) {
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1::uuid")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    retention::expire_pending(&app.pool).await.unwrap();
}

async fn stats_as(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/stats{query}", app.address))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
}

async fn stats(app: &TestApp, key: &str, query: &str) -> Value {
    let response = stats_as(app, key, query).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn group<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {report}"))
}

/// The counted figures of a total or group, in one comparable line.
fn counts(figures: &Value) -> [u64; 7] {
    let n = |name: &str| figures[name].as_u64().unwrap();
    let failed = &figures["delivery_failed"];
    let failed_total: u64 = failed
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    [
        n("requested"),
        n("sent"),
        n("approved"),
        n("expired"),
        n("locked"),
        failed["phone_rejected"].as_u64().unwrap(),
        failed_total,
    ]
}

/// The test client's flows: five in Bolivia, three in Spain, one test number.
async fn run_flows(app: &TestApp) {
    let key = app.api_key.clone();
    let key = key.as_str();
    // BO: approved at once.
    let (id, code) = sent(app, key, &nth_phone(1)).await;
    assert_eq!(verify(app, key, &id, &code).await.status(), 200);
    // BO: four wrong codes, then the right one with the last attempt: approved, not locked.
    let (id, code) = sent(app, key, &nth_phone(2)).await;
    for _ in 0..4 {
        assert_eq!(verify(app, key, &id, &wrong(&code)).await.status(), 422);
    }
    assert_eq!(verify(app, key, &id, &code).await.status(), 200);
    // BO: resent, then approved with the first message's code (a resend
    // sends the same one): requested, sent and approved once.
    let (first, first_code) = sent(app, key, &nth_phone(3)).await;
    let (id, _) = sent(app, key, &nth_phone(3)).await;
    assert_eq!(first, id, "a resend");
    assert_eq!(verify(app, key, &id, &first_code).await.status(), 200);
    // BO: locked by five wrong codes, counted when it ends.
    let (locked, code) = sent(app, key, &nth_phone(4)).await;
    for _ in 0..5 {
        assert_eq!(verify(app, key, &locked, &wrong(&code)).await.status(), 422);
    }
    expire(app, &locked).await;
    // BO: expired with its attempts left.
    let (id, _) = sent(app, key, &nth_phone(5)).await;
    expire(app, &id).await;
    // ES: approved.
    let (id, code) = sent(app, key, &spanish(1)).await;
    assert_eq!(verify(app, key, &id, &code).await.status(), 200);
    // ES: the gateway refuses the number.
    app.fake.reject_number(&spanish(2)[1..]);
    problem(
        app.post_as(key, "/otp/request", &json!({"phone": spanish(2)}))
            .await,
        422,
        "phone_rejected",
    )
    .await;
    // ES: canceled after it went out: requested and sent, nothing more.
    let (id, _) = sent(app, key, &spanish(3)).await;
    assert_eq!(
        app.post_as(key, &format!("/otp/{id}/cancel"), &json!({}))
            .await
            .status(),
        200
    );
    // A test number (a reviewer's): not counted at all.
    let reviewer = nth_phone(9);
    let added = admin(app, Method::POST, "/clients/test-client/test-numbers")
        .json(&json!({"phone": reviewer, "code": "424242"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let response = app
        .post_as(key, "/otp/request", &json!({"phone": reviewer}))
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(verify(app, key, &id, "424242").await.status(), 200);
}

#[tokio::test]
async fn the_figures_equal_the_flows_per_country_for_the_caller_only_and_outlive_retention() {
    let app = stats_app().await;
    run_flows(&app).await;
    let other = otp_service::clients::add(&app.pool, "other", None).await.unwrap();
    let other = secrecy::ExposeSecret::expose_secret(&other).to_owned();
    let (id, code) = sent(&app, &other, &nth_phone(1)).await;
    assert_eq!(verify(&app, &other, &id, &code).await.status(), 200);

    let by_country = stats(&app, &app.api_key, "?group_by=country").await;
    //                                   requested sent approved expired locked rejected failed
    assert_eq!(counts(group(&by_country, "BO")), [5, 5, 3, 1, 1, 0, 0]);
    assert_eq!(counts(group(&by_country, "ES")), [3, 2, 1, 0, 0, 1, 1]);
    assert_eq!(by_country["groups"].as_array().unwrap().len(), 2, "{by_country}");
    assert_eq!(counts(&by_country["total"]), [8, 7, 4, 1, 1, 1, 1]);
    assert_eq!(group(&by_country, "BO")["conversion_rate"], 0.6);
    assert_eq!(group(&by_country, "ES")["conversion_rate"], 0.5);
    let median = by_country["total"]["median_approval_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&median), "{median}");
    assert_eq!(by_country["group_by"], "country");

    // Ungrouped: the total alone; by day: today's only group.
    let total = stats(&app, &app.api_key, "").await;
    assert_eq!(total["total"], by_country["total"]);
    assert_eq!(total["groups"], json!([]));
    let today = chrono::Utc::now().date_naive().to_string();
    let by_day = stats(
        &app,
        &app.api_key,
        &format!("?from={today}&to={today}&group_by=day"),
    )
    .await;
    assert_eq!(group(&by_day, &today).as_object().unwrap().len(), 9);
    assert_eq!(counts(group(&by_day, &today)), counts(&by_country["total"]));
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    let before = stats(&app, &app.api_key, &format!("?to={yesterday}")).await;
    assert_eq!(counts(&before["total"]), [0; 7]);
    assert_eq!(before["total"]["conversion_rate"], Value::Null);

    // The other client sees its own figures only; the operators see both.
    let theirs = stats(&app, &other, "?group_by=country").await;
    assert_eq!(counts(&theirs["total"]), [1, 1, 1, 0, 0, 0, 0]);
    let all = json_of(admin(&app, Method::GET, "/stats?group_by=client"), 200).await;
    assert_eq!(counts(group(&all, "test-client")), counts(&by_country["total"]));
    assert_eq!(counts(group(&all, "other")), [1, 1, 1, 0, 0, 0, 0]);
    assert_eq!(counts(&all["total"]), [9, 8, 5, 1, 1, 1, 1]);
    let all_by_country = json_of(admin(&app, Method::GET, "/stats?group_by=country"), 200).await;
    assert_eq!(counts(group(&all_by_country, "BO")), [6, 6, 4, 1, 1, 0, 0]);

    // Every verification finished long ago and swept: the figures stay.
    sqlx::query("update verifications set updated_at = now() - interval '8 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    retention::sweep(&app.pool, Duration::from_secs(7 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(app.verification_count().await, 0);
    let unfolded: i64 = sqlx::query_scalar("select count(*) from stats_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        unfolded, 0,
        "the sweep folded every event into the rolled-up rows"
    );
    assert_eq!(stats(&app, &app.api_key, "?group_by=country").await, by_country);
    assert_eq!(
        json_of(admin(&app, Method::GET, "/stats?group_by=client"), 200).await,
        all
    );
}

#[tokio::test]
async fn a_bad_range_or_grouping_is_refused_naming_the_field() {
    let app = stats_app().await;
    let key = app.api_key.clone();
    for (query, field) in [
        ("?from=2026-13-01", "from"),
        ("?from=2026-1-05", "from"),
        ("?to=tomorrow", "to"),
        ("?from=2026-12-03&to=2026-12-02", "from"),
        ("?from=2025-01-01&to=2026-01-02", "from"),
        ("?group_by=client", "group_by"),
        ("?group_by=phone", "group_by"),
    ] {
        let body = problem(stats_as(&app, &key, query).await, 400, "invalid_request").await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    problem(stats_as(&app, &key, "?colour=red").await, 400, "invalid_request").await;
    problem(stats_as(&app, "wrong", "").await, 401, "unauthorized").await;
    let refused = admin(&app, Method::GET, "/stats?group_by=phone")
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(refused, 400, "invalid_request").await["field"],
        "group_by"
    );
    let unauthorized = app
        .http
        .get(format!("{}/admin/stats", app.address))
        .send()
        .await
        .unwrap();
    problem(unauthorized, 401, "unauthorized").await;
}
