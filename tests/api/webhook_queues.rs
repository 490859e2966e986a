//! Each endpoint's queue: what waited for a URL that was cleared or changed
//! is given up (a new URL hears only of what follows), the claim reads only
//! the head of each queue however long a dead endpoint's backlog, events
//! wait behind the earlier ones of their verification, and the worker's
//! bookkeeping does not make replicas drop what they hold of clients.

use std::time::Duration;

use otp_service::config::Schedule;
use otp_service::retention;
use otp_service::store::webhook_events;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::{Executor, PgPool};

use crate::helpers::*;
use crate::webhook_egress::admin;
use crate::webhook_receiver::{Answer, Receiver};
use crate::webhooks::{WAIT, request, webhook_for};

/// A failed attempt is tried again only an hour later: what a test sees
/// pending stays pending.
async fn spawn_slow_retries() -> TestApp {
    spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.retry_schedule = Some(Schedule(vec![Duration::from_secs(3600)]));
    })
    .await
}

async fn deliveries(app: &TestApp, status: &str) -> Vec<Value> {
    let path = format!("{}/webhooks/deliveries?status={status}", app.address);
    let answer = app
        .http
        .get(&path)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// Two verifications whose `sent` failed once and wait an hour.
async fn two_failed_events(app: &TestApp) -> Receiver {
    let failing = Receiver::start(&[Answer::Status(500)]);
    webhook_for(app, "test-client", &failing).await;
    request(app, &app.api_key, &nth_phone(1)).await;
    request(app, &app.api_key, &nth_phone(2)).await;
    app.wait_for("two failed attempts", WAIT, || async {
        let pending = deliveries(app, "pending").await;
        pending.len() == 2
            && pending
                .iter()
                .all(|d| d["attempts"] == 1 && d["last_status"] == 500)
    })
    .await;
    failing
}

#[tokio::test]
async fn a_cleared_url_gives_up_its_events_and_a_new_one_hears_only_what_follows() {
    let app = spawn_slow_retries().await;
    let failing = two_failed_events(&app).await;
    admin(&app, true).clear("test-client").await.unwrap();

    let given_up = deliveries(&app, "failed").await;
    assert_eq!(given_up.len(), 2, "{given_up:?}");
    assert!(
        given_up
            .iter()
            .all(|d| d["last_error"] == "the webhook URL was cleared")
    );
    let id = given_up[0]["id"].as_str().unwrap();
    let retry = format!("{}/webhooks/deliveries/{id}/retry", app.address);
    let retried = app
        .http
        .post(&retry)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 404, "nothing to send it to");
    assert!(deliveries(&app, "pending").await.is_empty());

    let fresh = Receiver::start(&[]);
    webhook_for(&app, "test-client", &fresh).await;
    // Were the old events still waiting, they would be due by now.
    sqlx::query("update webhook_events set next_attempt_at = now() where status = 'pending'")
        .execute(&app.pool)
        .await
        .unwrap();
    let new = request(&app, &app.api_key, &nth_phone(3)).await;
    app.wait_for("every event settled", WAIT, || async {
        !deliveries(&app, "delivered").await.is_empty() && deliveries(&app, "pending").await.is_empty()
    })
    .await;
    let heard: Vec<Value> = fresh
        .received()
        .iter()
        .map(|r| r.json()["data"]["id"].clone())
        .collect();
    assert_eq!(
        heard,
        [new["id"].clone()],
        "the new URL heard of the old verifications"
    );
    assert_eq!(failing.received().len(), 2);

    // Given up, they are swept like any settled event.
    sqlx::query("update webhook_events set occurred_at = now() - interval '2 hours'")
        .execute(&app.pool)
        .await
        .unwrap();
    let swept = retention::sweep(&app.pool, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(swept.webhook_events_deleted, 3);
}

#[tokio::test]
async fn a_changed_url_does_not_inherit_the_backlog_of_the_old_one() {
    let app = spawn_slow_retries().await;
    let failing = two_failed_events(&app).await;
    // The same URL again changes nothing.
    admin(&app, true)
        .set_url("test-client", &failing.url)
        .await
        .unwrap();
    assert_eq!(deliveries(&app, "pending").await.len(), 2);

    let other = Receiver::start(&[]);
    let kept = admin(&app, true)
        .set_url("test-client", &other.url)
        .await
        .unwrap();
    assert!(kept.is_none(), "a changed URL keeps the secret");
    assert!(deliveries(&app, "pending").await.is_empty());
    let given_up = deliveries(&app, "failed").await;
    assert_eq!(given_up.len(), 2);
    assert!(
        given_up[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("URL changed")
    );
}

#[tokio::test]
async fn events_behind_a_failing_one_wait_with_it_then_follow_at_once() {
    let app = spawn_slow_retries().await;
    let receiver = Receiver::start(&[Answer::Status(500)]);
    webhook_for(&app, "test-client", &receiver).await;
    let sent = request(&app, &app.api_key, PHONE).await;
    // Its answer recorded, not only its claim (which counts the attempt).
    app.wait_for("the failed attempt", WAIT, || async {
        deliveries(&app, "pending")
            .await
            .first()
            .is_some_and(|d| d["attempts"] == 1 && d["last_status"] == 500)
    })
    .await;
    let code = app.last_code_to(PHONE_DIGITS);
    let verified = app
        .verify(serde_json::json!({"id": sent["id"], "code": code}))
        .await;
    assert_eq!(verified.status(), 200);

    // Newest first: `approved`, then `sent`, which waits an hour.
    let pending = deliveries(&app, "pending").await;
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert_eq!(pending[0]["type"], "verification.approved");
    assert_eq!(
        pending[0]["next_attempt_at"], pending[1]["next_attempt_at"],
        "the event behind waits as long as the one before it"
    );

    receiver.answer_from_now(Answer::Status(200));
    let id = pending[1]["id"].as_str().unwrap();
    let retry = format!("{}/webhooks/deliveries/{id}/retry", app.address);
    let retried = app
        .http
        .post(&retry)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    let got = receiver.wait_for(3, WAIT).await;
    let kinds: Vec<String> = got.iter().map(|r| r.kind()).collect();
    assert_eq!(
        kinds,
        ["verification.sent", "verification.sent", "verification.approved"]
    );
}

#[tokio::test]
async fn the_failing_delivering_switch_tells_no_replica_to_drop_its_clients() {
    let app = spawn_app_with(|s| {
        s.webhooks.allow_private = true;
        s.webhooks.retry_schedule = Some(Schedule(vec![Duration::from_secs(1); 3]));
    })
    .await;
    let receiver = Receiver::start(&[Answer::Status(500)]);
    webhook_for(&app, "test-client", &receiver).await;
    let mut listener = PgListener::connect_with(&app.pool).await.unwrap();
    listener
        .listen(otp_service::clients::cache::CHANNEL)
        .await
        .unwrap();

    let endpoint = || async { admin(&app, true).endpoint("test-client").await.unwrap().unwrap() };
    request(&app, &app.api_key, PHONE).await;
    app.wait_for("the endpoint failing", WAIT, || async {
        endpoint().await.failing_since.is_some()
    })
    .await;
    receiver.answer_from_now(Answer::Status(200));
    app.wait_for("the endpoint delivering", WAIT, || async {
        endpoint().await.failing_since.is_none()
    })
    .await;

    // Notifications arrive in commit order: any the switch sent comes first.
    sqlx::query("select pg_notify($1, 'after the switch')")
        .bind(otp_service::clients::cache::CHANNEL)
        .execute(&app.pool)
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.payload(),
        "after the switch",
        "the switch told replicas to drop their clients"
    );

    // A real change still tells.
    sqlx::query("update clients set display_name = 'Shop' where name = 'test-client'")
        .execute(&app.pool)
        .await
        .unwrap();
    let told = tokio::time::timeout(WAIT, listener.recv()).await;
    assert!(told.is_ok_and(|n| n.is_ok_and(|n| n.payload().is_empty())));
}

#[tokio::test]
async fn the_claim_reads_only_the_head_of_a_dead_endpoints_backlog() {
    let database = TestDatabase::create().await;
    otp_service::store::run_migrations(&database.options())
        .await
        .unwrap();
    let pool = PgPool::connect_with(database.options()).await.unwrap();
    for name in ["dead", "alive"] {
        otp_service::clients::add(&pool, name, None).await.unwrap();
    }
    sqlx::raw_sql(BACKLOG).execute(&pool).await.unwrap();

    let claim = otp_service::store::statements()
        .find(|s| s.name.ends_with("webhook_events::CLAIM"))
        .unwrap()
        .sql;
    let mut tx = pool.begin().await.unwrap();
    tx.execute(sqlx::AssertSqlSafe(format!(
        "prepare claim(bigint, uuid[], bigint, float8) as {claim}"
    )))
    .await
    .unwrap();
    let plan: Value =
        sqlx::query_scalar("explain (analyze, buffers, format json) execute claim(64, '{}', 4, 30)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    let top = &plan[0]["Plan"];
    let blocks = top["Shared Hit Blocks"].as_u64().unwrap() + top["Shared Read Blocks"].as_u64().unwrap();
    assert!(
        blocks < 500,
        "the claim read {blocks} blocks of a 51,001-event backlog:\n{plan:#}"
    );

    let claimed = webhook_events::claim(&pool, 64, &[], 4, Duration::from_secs(30))
        .await
        .unwrap();
    let names: Vec<&str> = claimed.iter().map(|c| c.client_name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "dead").count(), 4, "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "alive").count(), 1, "{names:?}");
    assert!(claimed.iter().all(|c| c.kind == "verification.sent"));
}

/// A day of a dead endpoint: 25,000 verifications whose `sent` failed and
/// waits hours, each with an `approved` behind it (recorded as the service
/// records it), and 1,000 `sent` never tried yet; the live client has one.
const BACKLOG: &str = "
    update clients set webhook_url = 'https://' || name || '.example/hooks', webhook_secret_sealed = '\\x00';
    insert into webhook_events (id, client_id, verification_id, type, attempts, next_attempt_at, last_status)
        select gen_random_uuid(), (select id from clients where name = 'dead'), gen_random_uuid(),
               'verification.sent', 3, now() + interval '5 hours', 503
        from generate_series(1, 25000);
    -- Each verification's end, behind its send (due no sooner, as recorded).
    insert into webhook_events (id, client_id, verification_id, type, next_attempt_at)
        select gen_random_uuid(), client_id, verification_id, 'verification.approved', next_attempt_at
        from webhook_events;
    insert into webhook_events (id, client_id, verification_id, type)
        select gen_random_uuid(), (select id from clients where name = 'dead'), gen_random_uuid(),
               'verification.sent'
        from generate_series(1, 1000);
    insert into webhook_events (id, client_id, verification_id, type)
        select gen_random_uuid(), id, gen_random_uuid(), 'verification.sent' from clients where name = 'alive';
    analyze webhook_events;
";

/// V15 gives up what an endpoint cleared before V14 left pending for ever;
/// the pending events of an endpoint still set are kept. Run again on rows
/// laid as an older version left them (the harness migrates to the head).
#[tokio::test]
async fn events_stranded_by_a_url_cleared_before_v14_are_given_up() {
    let app = spawn_slow_retries().await;
    let receiver = Receiver::start(&[Answer::Status(500)]);
    webhook_for(&app, "test-client", &receiver).await;
    // Due tomorrow: the worker leaves them alone meanwhile.
    let strand = "insert into webhook_events (id, client_id, verification_id, type, next_attempt_at)
                  select gen_random_uuid(), id, gen_random_uuid(), 'verification.sent', now() + interval '1 day'
                  from clients where name = $1";
    sqlx::query(strand)
        .bind("test-client")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("insert into clients (id, name, key_hash) values (gen_random_uuid(), 'old', '\\x00')")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(strand).bind("old").execute(&app.pool).await.unwrap();

    let migration = include_str!("../../migrations/V15__stranded_webhook_events.sql");
    app.pool.execute(migration).await.unwrap();

    let statuses: Vec<(String, String)> = sqlx::query_as(
        "select c.name, e.status from webhook_events e join clients c on c.id = e.client_id order by c.name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        statuses,
        [
            ("old".into(), "failed".into()),
            ("test-client".into(), "pending".into())
        ]
    );
}
