//! Where the webhook client connects: never through a proxy the environment
//! names, through `OTP_WEBHOOK_PROXY` when an operator sets one, and never to
//! an IPv6 spelling of a local address.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otp_service::config::Schedule;
use otp_service::crypto::Peppers;
use otp_service::crypto::Sealer;
use otp_service::webhooks::{UrlPolicy, WebhookAdmin};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::webhook_receiver::Receiver;
use crate::webhooks::{WAIT, request, webhook_for};

/// An HTTP proxy that forwards nothing: it notes each request line it is
/// sent (`POST http://host/path HTTP/1.1`, or `CONNECT host:443`) and
/// answers `204`.
#[derive(Clone, Default)]
struct FakeProxy {
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeProxy {
    async fn start() -> (Self, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self::default();
        let seen = Arc::clone(&proxy.seen);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    seen.lock()
                        .unwrap()
                        .push(text.lines().next().unwrap_or_default().to_owned());
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = socket.write_all(answer).await;
                });
            }
        });
        (proxy, port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

pub(crate) fn admin(app: &TestApp, allow_private: bool) -> WebhookAdmin {
    let pepper = app.settings.pepper.clone().unwrap();
    let policy = UrlPolicy {
        allow_http: false,
        allow_private,
    };
    WebhookAdmin::new(
        app.pool.clone(),
        Sealer::new(&Peppers::new(pepper, vec![])),
        policy,
    )
}

/// Points the client's webhook at `url` as stored by an older version (no
/// check at set time), with a secret of its own.
async fn stored_url(app: &TestApp, url: &str) {
    admin(app, true)
        .set_url("test-client", "http://127.0.0.1:9/hooks")
        .await
        .unwrap();
    sqlx::query("update clients set webhook_url = $1 where name = 'test-client'")
        .bind(url)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn deliveries(app: &TestApp) -> Vec<Value> {
    let path = format!("{}/webhooks/deliveries", app.address);
    let answer = app
        .http
        .get(&path)
        .header("X-Api-Key", &app.api_key)
        .send()
        .await
        .unwrap();
    answer.json().await.unwrap()
}

#[tokio::test]
async fn proxies_named_by_the_environment_are_never_used_for_webhooks() {
    let app = spawn_app().await;
    let (proxy, port) = FakeProxy::start().await;
    // On another loopback address than the fake gateway's, which NO_PROXY
    // sends straight, so that only webhooks could go through the proxy.
    let receiver = Receiver::start_on("127.0.0.2", &[]);
    webhook_for(&app, "test-client", &receiver).await;
    app.stop_service().await;
    let proxy_url = format!("http://127.0.0.1:{port}");
    let replica = ServiceProcess::start(
        &app,
        &[
            ("OTP_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("HTTP_PROXY", &proxy_url),
            ("HTTPS_PROXY", &proxy_url),
            ("ALL_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("NO_PROXY", "127.0.0.1"),
        ],
    )
    .await;
    let sent: Value = replica
        .request_code(&app, &json!({"phone": PHONE}))
        .await
        .json()
        .await
        .unwrap();

    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["data"]["id"], sent["id"]);
    assert!(proxy.seen().is_empty(), "through the proxy: {:?}", proxy.seen());
}

#[tokio::test]
async fn an_operators_proxy_carries_every_webhook_and_resolves_the_name() {
    let (proxy, port) = FakeProxy::start().await;
    let app = spawn_app_with(|s| {
        s.webhooks.allow_http = true;
        // Named, and on loopback: the operator's proxy may be private.
        s.webhooks.proxy = Some(format!("http://localhost:{port}").into());
    })
    .await;
    // A name only the proxy could resolve: the service does not try.
    stored_url(&app, "http://hooks.example.invalid/otp-events").await;
    request(&app, &app.api_key, PHONE).await;

    app.wait_for("the delivery through the proxy", WAIT, || async {
        deliveries(&app).await.iter().any(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(
        proxy.seen(),
        ["POST http://hooks.example.invalid/otp-events HTTP/1.1"]
    );
}

#[tokio::test]
async fn ipv6_spellings_of_local_addresses_are_refused_when_set_and_when_sent() {
    let app = spawn_app_with(|s| {
        s.webhooks.retry_schedule = Some(Schedule(vec![Duration::from_secs(3600)]));
    })
    .await;
    for url in [
        "https://[::7f00:1]/hooks",
        "https://[2002:a00:1::1]/hooks",
        "https://[2001::1]/hooks",
        "https://[fec0::1]/hooks",
        "https://[64:ff9b:1::a00:1]/hooks",
    ] {
        let refused = admin(&app, false).set_url("test-client", url).await;
        assert!(refused.is_err(), "{url} was accepted");
    }

    // One stored before this check existed is refused at the delivery.
    stored_url(&app, "https://[::7f00:1]:9/hooks").await;
    request(&app, &app.api_key, PHONE).await;
    app.wait_for("the attempt", WAIT, || async {
        deliveries(&app)
            .await
            .iter()
            .any(|d| d["attempts"] == 1 && d["last_error"].is_string())
    })
    .await;
    let error = deliveries(&app).await[0]["last_error"].clone();
    assert!(
        error.as_str().unwrap().contains("OTP_WEBHOOK_ALLOW_PRIVATE"),
        "refused, not tried: {error}"
    );
}
