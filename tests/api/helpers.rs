//! One way to start the service for a test: a fresh database (from
//! `#[sqlx::test]`), the fake gateway over real HTTP, and the app on port 0.
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use clap::Parser;
use otp_service::clients;
use otp_service::config::{HashSettings, SecretList, Settings};
use otp_service::delivery::fake_gateway::{FakeGateway, FakeMessage};
use otp_service::startup::Application;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};

pub const PHONE: &str = "+59169657008";
pub const PHONE_DIGITS: &str = "59169657008";
pub const GATEWAY_KEYS: [&str; 2] = ["gateway-key-1", "gateway-key-2"];

#[derive(Parser)]
struct DefaultSettings {
    #[command(flatten)]
    settings: Settings,
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub fake: FakeGateway,
    pub api_key: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub settings: Settings,
    server: actix_web::dev::ServerHandle,
}

/// Stops the app and closes every connection to the test database, so that
/// `#[sqlx::test]` can drop it at once (PostgreSQL otherwise waits 5 s for
/// the app's connections before it gives up on the drop).
impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.server.stop(false));
        let url = self.database_url.clone();
        let closing = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let options: PgConnectOptions = url.parse().unwrap();
                let name = options.get_database().unwrap_or_default().to_owned();
                let mut admin = options.database("postgres").connect().await.unwrap();
                sqlx::query(
                    "select pg_terminate_backend(pid) from pg_stat_activity
                     where datname = $1 and pid <> pg_backend_pid()",
                )
                .bind(name)
                .execute(&mut admin)
                .await
                .unwrap();
            });
        });
        let _ = closing.join();
    }
}

/// The settings every test starts from: defaults, cheap argon2, one gateway key.
pub fn test_settings(database_url: &str, gateway_url: &str) -> Settings {
    let mut settings = DefaultSettings::parse_from(["test"]).settings;
    settings.database.url = database_url.to_owned().into();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.pepper = Some("test-pepper-test-pepper-test-pepper!".to_owned().into());
    settings.gateway.base_url = gateway_url.to_owned();
    settings.gateway.api_keys = Some(SecretList(vec![GATEWAY_KEYS[0].to_owned().into()]));
    settings.hashing = HashSettings {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    settings
}

pub async fn spawn_app(db: PgConnectOptions) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: PgConnectOptions, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let fake = FakeGateway::new(GATEWAY_KEYS.iter().map(|k| k.to_string()).collect(), 30);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(fake.serve(listener).unwrap());

    let database_url = db.to_url_lossy().to_string();
    let mut settings = test_settings(&database_url, &gateway_url);
    tweak(&mut settings);
    let app = Application::build(settings.clone(), None)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.server_handle();
    tokio::spawn(app.run_until_stopped());

    let pool = PgPool::connect_with(db).await.unwrap();
    let api_key = clients::add(&pool, "test-client", None)
        .await
        .unwrap()
        .expose_secret()
        .to_owned();
    TestApp {
        address,
        pool,
        fake,
        api_key,
        http: reqwest::Client::new(),
        database_url,
        settings,
        server,
    }
}

impl TestApp {
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(&self.api_key, path, body).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Response {
        self.http
            .post(format!("{}{path}", self.address))
            .header("X-Api-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.address))
            .header("X-Api-Key", &self.api_key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn request_code(&self, body: Value) -> Response {
        self.post("/otp/request", &body).await
    }

    pub async fn verify(&self, body: Value) -> Response {
        self.post("/otp/verify", &body).await
    }

    /// Requests a code for `PHONE` with `purpose`, expecting 202; returns the verification.
    pub async fn requested(&self, purpose: &str) -> Value {
        let response = self
            .request_code(json!({"phone": PHONE, "purpose": purpose}))
            .await;
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    pub async fn verification(&self, id: &str) -> Value {
        let response = self.get(&format!("/otp/{id}")).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// The code in the newest message the gateway accepted for this number.
    pub fn last_code_to(&self, digits: &str) -> String {
        let message = self
            .fake
            .last_message_to(digits)
            .expect("a message was delivered");
        code_in(&message)
    }

    /// Waits (polling, bounded) until `check` holds.
    pub async fn wait_for<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the verification's delivery_status is `status`.
    pub async fn wait_for_delivery(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.verification(id).await;
            if v["delivery_status"] == status {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for delivery_status {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn code_in(message: &FakeMessage) -> String {
    let start = message.message.find('*').expect("the code is between asterisks") + 1;
    let len = message.message[start..].find('*').unwrap();
    message.message[start..start + len].to_owned()
}

/// The problem document of an error answer, checked for the shape every error has.
pub async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "expected {status} {code}");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
    if status == 429 || status == 503 {
        let header: u64 = retry_after
            .expect("Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(header >= 1);
        assert_eq!(body["retry_after"], header);
    }
    body
}
