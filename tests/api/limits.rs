//! The attempt limit, alone and under 50 parallel requests.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;

fn wrong_code(right: &str) -> &'static str {
    if right == "000000" { "111111" } else { "000000" }
}

#[tokio::test]
async fn wrong_codes_count_down_then_lock() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);

    // A malformed code is a failed attempt too.
    let body = problem(
        app.verify(json!({"id": id, "code": "12ab"})).await,
        422,
        "invalid_code",
    )
    .await;
    assert_eq!(body["attempts_remaining"], 4);
    for remaining in (0..4).rev() {
        let body = problem(
            app.verify(json!({"id": id, "code": wrong_code(&code)})).await,
            422,
            "invalid_code",
        )
        .await;
        assert_eq!(body["attempts_remaining"], remaining);
    }
    // Locked: even the right code is refused now.
    problem(
        app.verify(json!({"id": id, "code": code})).await,
        429,
        "max_attempts_reached",
    )
    .await;
    let locked = app.verification(id).await;
    assert_eq!(locked["status"], "max_attempts_reached");
    assert_eq!(locked["attempts_remaining"], 0);
}

#[tokio::test]
async fn the_last_allowed_attempt_can_still_be_right() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    for _ in 0..4 {
        problem(
            app.verify(json!({"id": id, "code": wrong_code(&code)})).await,
            422,
            "invalid_code",
        )
        .await;
    }
    let response = app.verify(json!({"id": id, "code": code})).await;
    assert_eq!(response.status(), 200);
    let approved: serde_json::Value = response.json().await.unwrap();
    assert_eq!(approved["attempts_remaining"], 1);
}

#[tokio::test]
async fn fifty_parallel_right_codes_approve_exactly_once() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);

    let body = json!({"id": id, "code": code});
    let answers = join_all((0..50).map(|_| app.verify(body.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 409, 429].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.verification(id).await["status"], "approved");
}

#[tokio::test]
async fn fifty_parallel_wrong_codes_count_exactly_the_limit() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);

    let body = json!({"id": id, "code": wrong_code(&code)});
    let answers = join_all((0..50).map(|_| app.verify(body.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 45, "{statuses:?}");

    let failed: i32 = sqlx::query_scalar("select failed_attempts from verifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(failed, 5);
    problem(
        app.verify(json!({"id": id, "code": code})).await,
        429,
        "max_attempts_reached",
    )
    .await;
}

#[tokio::test]
async fn parallel_first_requests_make_one_verification() {
    let app = spawn_app().await;
    let body = json!({"phone": PHONE, "purpose": "signup"});
    let answers = join_all((0..10).map(|_| app.request_code(body.clone()))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 9, "{statuses:?}");
    let count = app.verification_count().await;
    assert_eq!(count, 1);
    assert_eq!(app.fake.messages().len(), 1);
}

/// The windows count under a lock in statements outside any transaction of
/// the service's: they must see what others committed while they waited,
/// which REPEATABLE READ (a server's possible default) would not.
#[tokio::test]
async fn the_pools_run_at_read_committed_whatever_the_servers_default() {
    let database = TestDatabase::create().await;
    let options: sqlx::postgres::PgConnectOptions = database.url.parse().unwrap();
    let mut admin = sqlx::ConnectOptions::connect(&options).await.unwrap();
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "alter database \"{name}\" set default_transaction_isolation = 'repeatable read'"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let plain = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    let default: String = sqlx::query_scalar("show transaction_isolation")
        .fetch_one(&plain)
        .await
        .unwrap();
    assert_eq!(default, "repeatable read", "the server's default is set");
    for pool in [
        otp_service::store::pool(options.clone(), Default::default()),
        otp_service::store::ops_pool(options, Default::default()),
    ] {
        let level: String = sqlx::query_scalar("show transaction_isolation")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(level, "read committed");
        pool.close().await;
    }
    plain.close().await;
}

/// `max_attempts_reached` tells a client to request a new code, and a new
/// request is answered at once: a `Retry-After` would have it wait for nothing.
#[tokio::test]
async fn a_locked_verification_says_no_wait_and_a_new_code_comes_at_once() {
    let app = spawn_app_with(|s| s.policy.max_attempts = 1).await;
    let v = app.requested("signup").await;
    let id = v["id"].as_str().unwrap();
    let code = app.last_code_to(PHONE_DIGITS);
    problem(
        app.verify(json!({"id": id, "code": wrong_code(&code)})).await,
        422,
        "invalid_code",
    )
    .await;
    let locked = app.verify(json!({"id": id, "code": code})).await;
    assert!(locked.headers().get("retry-after").is_none(), "{locked:?}");
    let body = problem(locked, 429, "max_attempts_reached").await;
    assert!(
        body["detail"].as_str().unwrap().contains("request a new code"),
        "{body}"
    );

    let again = app.requested("signup").await;
    assert_ne!(again["id"], v["id"], "a new verification, at once");
    let code = app.last_code_to(PHONE_DIGITS);
    let approved = app.verify(json!({"id": again["id"], "code": code})).await;
    assert_eq!(approved.status(), 200);
}
