//! The sweeper: expiring pending verifications, deleting old finished ones.

use std::time::Duration;

use otp_service::retention;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A verification for the `n`th phone, then finished with `status` `age` ago.
async fn finished(app: &TestApp, n: usize, status: &str, age: &str) -> Uuid {
    let v = app
        .request_code(json!({"phone": nth_phone(n), "purpose": "signup"}))
        .await;
    assert_eq!(v.status(), 202);
    let id: Uuid = v.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    sqlx::query(
        "update verifications set status = $2, updated_at = now() - $3::interval,
             created_at = now() - $3::interval - interval '10 minutes'
         where id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(age)
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

async fn exists(app: &TestApp, id: Uuid) -> bool {
    sqlx::query_scalar("select exists (select 1 from verifications where id = $1)")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn messages_of(app: &TestApp, id: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from outbox_messages where verification_id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn finished_verifications_past_retention_go_with_their_messages_and_nothing_else() {
    let app = spawn_app().await;
    let mut old = Vec::new();
    let mut kept = Vec::new();
    for (n, status) in [
        "approved",
        "expired",
        "canceled",
        "failed",
        "max_attempts_reached",
    ]
    .into_iter()
    .enumerate()
    {
        old.push(finished(&app, 2 * n, status, "7 days 1 minute").await);
        kept.push(finished(&app, 2 * n + 1, status, "6 days 23 hours").await);
    }
    // Pending for a week, and not expired: still in use, whatever its age.
    let pending = finished(&app, 20, "pending", "8 days").await;
    sqlx::query("update verifications set expires_at = now() + interval '1 minute' where id = $1")
        .bind(pending)
        .execute(&app.pool)
        .await
        .unwrap();
    for id in &old {
        assert_eq!(messages_of(&app, *id).await, 1);
    }

    retention::sweep(&app.pool, RETENTION).await.unwrap();

    for id in &old {
        assert!(!exists(&app, *id).await, "{id} is past retention");
        assert_eq!(messages_of(&app, *id).await, 0);
    }
    for id in kept.iter().chain([&pending]) {
        assert!(exists(&app, *id).await, "{id} is kept");
        assert_eq!(messages_of(&app, *id).await, 1);
    }
    // A second sweep finds nothing more.
    let again = retention::sweep(&app.pool, RETENTION).await.unwrap();
    assert_eq!(again.verifications_deleted, 0);
}

#[tokio::test]
async fn a_pending_verification_past_its_expiry_is_marked_expired() {
    let app = spawn_app().await;
    let v = app.requested("signup").await;
    let id: Uuid = v["id"].as_str().unwrap().parse().unwrap();
    let live = app.requested("login").await;
    sqlx::query("update verifications set expires_at = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();

    let swept: u64 = retention::expire_pending(&app.pool).await.unwrap().values().sum();
    assert!(swept <= 1, "only the expired one");

    let (status, finished_recently): (String, bool) = sqlx::query_as(
        "select status, updated_at > now() - interval '1 minute' from verifications where id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "expired");
    assert!(finished_recently, "its retention starts now");
    assert_eq!(app.verification(&id.to_string()).await["status"], "expired");
    // The API reads it as before: verify says 410, and a new request starts afresh.
    problem(
        app.verify(json!({"id": id, "code": "000000"})).await,
        410,
        "expired",
    )
    .await;
    assert_eq!(
        app.verification(live["id"].as_str().unwrap()).await["status"],
        "pending"
    );
    let again = app.requested("signup").await;
    assert_ne!(again["id"], v["id"]);
}

#[tokio::test]
async fn old_rate_window_records_are_deleted() {
    let app = spawn_app().await;
    app.requested("signup").await;
    let sender: String = sqlx::query_scalar("select id from senders limit 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into sender_sends (sender_id, sent_at)
         select $1, now() - interval '1 hour' from generate_series(1, 1200)",
    )
    .bind(&sender)
    .execute(&app.pool)
    .await
    .unwrap();

    let deleted = retention::delete_old_sender_sends(&app.pool).await.unwrap();
    assert_eq!(deleted, 1200, "in batches, all of them");
    let recent: i64 = sqlx::query_scalar("select count(*) from sender_sends")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(recent, 1, "the send just made is kept");
}

#[tokio::test]
async fn old_limit_hits_and_idempotency_keys_are_deleted() {
    let app = spawn_app().await;
    // One of each that is still needed: a phone-sends hit and a fresh key.
    let response = app
        .http
        .post(format!("{}/otp/request", app.address))
        .header("X-Api-Key", &app.api_key)
        .header("Idempotency-Key", "fresh")
        .json(&serde_json::json!({"phone": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    sqlx::query(
        "insert into limit_hits (bucket, at)
         select 'ip:192.0.2.' || (n % 7), now() - interval '24 hours 1 minute' from generate_series(1, 1200) n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into idempotency_keys (client_id, key, request_hash, claim, status, response, created_at)
         select client_id, 'old-' || n, request_hash, gen_random_uuid(), 202, '{}', now() - interval '25 hours'
         from idempotency_keys, generate_series(1, 600) n",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // The app's own sweeper may take a share: what counts is what is left.
    retention::sweep(&app.pool, RETENTION).await.unwrap();
    let count = |table: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let old_hits: i64 =
        sqlx::query_scalar("select count(*) from limit_hits where at < now() - interval '24 hours'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(old_hits, 0, "every hit past the longest window is gone");
    assert!(count("limit_hits").await >= 1, "the recent hit is kept");
    assert_eq!(count("idempotency_keys").await, 1, "the fresh key is kept");
}

#[tokio::test]
async fn an_ended_test_number_is_swept_30_days_after_its_end() {
    let app = spawn_app().await;
    for n in 1..=3 {
        sqlx::query(
            "insert into test_numbers (client_id, phone, code_hash, until)
             select id, $1, 'a hash', now() + interval '1 day' from clients where name = 'test-client'",
        )
        .bind(nth_phone(n))
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let ended = |n: usize, ago: &'static str| {
        sqlx::query("update test_numbers set until = now() - $2::interval where phone = $1")
            .bind(nth_phone(n))
            .bind(ago)
            .execute(&app.pool)
    };
    ended(1, "30 days 1 minute").await.unwrap();
    ended(2, "29 days 23 hours").await.unwrap();

    let swept = retention::sweep(&app.pool, RETENTION).await.unwrap();
    assert_eq!(swept.test_numbers_deleted, 1);
    let left: Vec<String> = sqlx::query_scalar("select phone from test_numbers order by phone")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        [nth_phone(2), nth_phone(3)],
        "ended a little less long, and in use: kept"
    );
    let again = retention::sweep(&app.pool, RETENTION).await.unwrap();
    assert_eq!(again.test_numbers_deleted, 0);
}
