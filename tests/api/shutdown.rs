//! SIGTERM to the real binary while it is busy.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use otp_service::delivery::fake_gateway::Scripted;
use serde_json::json;

use crate::helpers::*;

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(4);
const WORKERS: usize = 8;

enum Outcome {
    /// A whole answer: its status, its phone, and when it was read.
    Answered(u16, String, Instant),
    /// No connection: the service no longer accepts.
    Refused,
    /// A connection that ended without an answer.
    Broken(String, String),
}

#[tokio::test]
async fn sigterm_under_load_answers_what_it_took_exits_in_time_and_gives_back_its_leases() {
    let app = spawn_app_with(|s| s.gateway.rate_per_minute = 6000).await;
    // Only the replica below may claim messages.
    app.stop_service().await;
    let timeout = SHUTDOWN_TIMEOUT.as_secs().to_string();
    let mut replica = ServiceProcess::start(&app, &[("OTP_SHUTDOWN_TIMEOUT_SECONDS", &timeout)]).await;
    // The first send outlasts the stop; the later ones take long enough to be
    // in flight when the signal comes.
    app.fake.script(
        std::iter::once(Scripted::Delay(Duration::from_secs(9))).chain(std::iter::repeat_n(
            Scripted::Delay(Duration::from_millis(400)),
            1000,
        )),
    );
    let slow_phone = nth_phone(0);
    let slow = replica.request_code(&app, &json!({"phone": slow_phone})).await;
    assert_eq!(slow.status(), 202);

    // A new connection per request: after the stop, each is either refused or answered.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let next = AtomicUsize::new(1);
    let answered = AtomicUsize::new(0);
    let url = format!("{}/otp/request", replica.address);
    let worker = || async {
        let mut outcomes = Vec::new();
        for _ in 0..200 {
            let phone = nth_phone(next.fetch_add(1, Ordering::SeqCst));
            let sent = http
                .post(&url)
                .header("X-Api-Key", &app.api_key)
                .json(&json!({"phone": phone}))
                .send()
                .await;
            let outcome = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(_) => Outcome::Answered(status, phone, Instant::now()),
                        Err(e) => Outcome::Broken(phone, e.to_string()),
                    }
                }
                Err(e) if e.is_connect() => Outcome::Refused,
                Err(e) => Outcome::Broken(phone, format!("{e:?}")),
            };
            let refused = matches!(outcome, Outcome::Refused);
            if matches!(outcome, Outcome::Answered(..)) {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            outcomes.push(outcome);
            if refused {
                break;
            }
        }
        outcomes
    };
    let stop = async {
        app.wait_for("the load to run", Duration::from_secs(30), || async {
            answered.load(Ordering::SeqCst) >= 2 * WORKERS
        })
        .await;
        replica.terminate();
        let signalled = Instant::now();
        let status = tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(2), replica.process.wait())
            .await
            .expect("exits within the shutdown timeout")
            .unwrap();
        (signalled, signalled.elapsed(), status)
    };
    let (outcomes, (signalled, took, status)) = tokio::join!(join_all((0..WORKERS).map(|_| worker())), stop);
    assert!(status.success(), "{status:?}");
    // The process keeps its own clock; the margin is for the OS to reap it and
    // the test to notice, on a busy 2-core machine.
    assert!(
        took < SHUTDOWN_TIMEOUT + Duration::from_millis(1500),
        "took {took:?}"
    );
    // It waited for the slow send until its time was nearly up, not less.
    assert!(took > SHUTDOWN_TIMEOUT / 2, "took {took:?}");

    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    let mut accepted = HashSet::from([slow_phone.clone()]);
    let mut finished_after_signal = 0;
    for outcome in &outcomes {
        match outcome {
            Outcome::Answered(status, phone, at) => {
                assert!(*status == 202 || (400..600).contains(status), "{status}");
                if *status == 202 {
                    accepted.insert(phone.clone());
                }
                if *at > signalled {
                    finished_after_signal += 1;
                }
            }
            Outcome::Refused => {}
            Outcome::Broken(phone, error) => {
                // The connection was still queued when the port closed: the
                // service never saw the request. Anything it did see, it answered.
                let stored: bool =
                    sqlx::query_scalar("select exists (select 1 from verifications where phone = $1)")
                        .bind(phone)
                        .fetch_one(&app.pool)
                        .await
                        .unwrap();
                assert!(!stored, "{phone} was stored but its answer was cut: {error}");
            }
        }
    }
    eprintln!(
        "outcomes {} answered-after-signal {finished_after_signal} took {took:?} broken {}",
        outcomes.len(),
        outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Broken(..)))
            .count()
    );
    assert!(
        finished_after_signal > 0,
        "requests in flight at the signal were finished"
    );
    let stored: Vec<String> = sqlx::query_scalar("select phone from verifications")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for phone in &stored {
        assert!(
            accepted.contains(phone),
            "{phone} was stored but not answered 202"
        );
    }

    // The send still in flight at the deadline was cut, and its lease given back.
    let held: Vec<(String, i32, i32, f64)> = sqlx::query_as(
        "select phone_digits, claims, attempts, extract(epoch from leased_until - now())::float8
         from outbox_messages where leased_until > now()",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        held.is_empty(),
        "no lease outlives the replica; held (phone, claims, attempts, lease left): {held:?}, the slow one is {slow_phone}"
    );
    let (status, leased): (String, bool) = sqlx::query_as(
        "select status, leased_until is not null from outbox_messages where phone_digits = $1",
    )
    .bind(&slow_phone[1..])
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((status.as_str(), leased), ("queued", false));

    // So another replica sends it now, not when a lease would have run out.
    let started = Instant::now();
    let _next = ServiceProcess::start(&app, &[]).await;
    app.wait_for("the cut message to be sent", Duration::from_secs(15), || async {
        sqlx::query_scalar::<_, String>("select status from outbox_messages where phone_digits = $1")
            .bind(&slow_phone[1..])
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == "sent"
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// A send that ends during a stop, when every pooled connection it could be
/// recorded on is dead (reset by the network, or opened by an HTTP worker
/// whose runtime the stop ended): it is recorded on a fresh connection, not
/// left leased to go out again when the lease runs out.
#[tokio::test]
async fn a_send_that_ends_during_a_stop_is_recorded_though_the_pooled_connections_are_dead() {
    let (app, proxy) = spawn_app_behind_proxy(|_| {}).await;
    app.stop_service().await;
    let through_proxy = app.settings.database.url().to_owned();
    let mut replica = ServiceProcess::start(
        &app,
        &[
            ("DATABASE_URL", through_proxy.as_str()),
            ("OTP_SHUTDOWN_TIMEOUT_SECONDS", "10"),
            ("OTP_SEND_WAIT_MS", "0"),
        ],
    )
    .await;
    // Requests at once fill the pool with connections, idle once answered.
    let bodies: Vec<_> = (0..16).map(|i| json!({"phone": nth_phone(100 + i)})).collect();
    let warm: Vec<_> = join_all(bodies.iter().map(|body| replica.request_code(&app, body))).await;
    assert!(warm.iter().all(|r| r.status() == 202));
    app.wait_for(
        "the first messages to go out",
        Duration::from_secs(20),
        || async { app.fake.messages().len() == 16 },
    )
    .await;

    app.fake.script([Scripted::Delay(Duration::from_secs(3))]);
    let slow_phone = nth_phone(0);
    let slow = replica.request_code(&app, &json!({"phone": slow_phone})).await;
    assert_eq!(slow.status(), 202);
    let status = || async {
        sqlx::query_as::<_, (String, i32)>(
            "select status, claims from outbox_messages where phone_digits = $1",
        )
        .bind(&slow_phone[1..])
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    app.wait_for("the slow send to be claimed", Duration::from_secs(10), || async {
        status().await.1 > 0
    })
    .await;
    // Every open connection is reset while the send is in flight; new ones work.
    proxy.restore().await;
    replica.terminate();
    let exited = tokio::time::timeout(Duration::from_secs(15), replica.process.wait())
        .await
        .expect("exits within the shutdown timeout")
        .unwrap();
    assert!(exited.success(), "{exited:?}");

    assert_eq!(status().await.0, "sent", "the send was recorded");
    let leased: bool =
        sqlx::query_scalar("select leased_until is not null from outbox_messages where phone_digits = $1")
            .bind(&slow_phone[1..])
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!leased);
    let to_slow = app
        .fake
        .messages()
        .iter()
        .filter(|m| m.number == slow_phone[1..])
        .count();
    assert_eq!(to_slow, 1);
}
