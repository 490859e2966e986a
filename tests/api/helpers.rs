//! One way to start the service for a test: a fresh database of its own, the
//! fake gateway over real HTTP, and the app on port 0.
#![allow(dead_code)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use otp_service::clients;
use otp_service::config::{HashSettings, SecretList, Settings};
use otp_service::delivery::fake_gateway::{FakeGateway, FakeMessage};
use otp_service::startup::Application;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgPool};

#[path = "proxy.rs"]
pub mod proxy;
pub use proxy::DatabaseProxy;

pub const PHONE: &str = "+59169657008";
pub const PHONE_DIGITS: &str = "59169657008";
/// An admin key of the length the service asks for (32 bytes or more).
pub const ADMIN_KEY: &str = "admin-key-for-tests-admin-key-for-tests";
pub const GATEWAY_KEYS: [&str; 2] = ["gateway-key-1", "gateway-key-2"];

pub struct TestApp {
    pub address: String,
    /// Where `GET /metrics` is served: `address`, or `OTP_METRICS_LISTEN`'s own port.
    pub metrics_address: String,
    pub pool: PgPool,
    pub fake: FakeGateway,
    pub api_key: String,
    pub http: reqwest::Client,
    pub database_url: String,
    pub settings: Settings,
    server: actix_web::dev::ServerHandle,
    // Last: dropped after the app is told to stop.
    _database: TestDatabase,
}

/// A database of its own for one test, on the server of `DATABASE_URL` (or
/// the local default), dropped when the test ends, passed or failed.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| otp_service::config::DEFAULT_DATABASE_URL.into());
        let base: PgConnectOptions = base.parse().expect("DATABASE_URL is a PostgreSQL URL");
        let admin = base.clone().database("postgres");
        let name = format!("otp_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin
            .connect()
            .await
            .expect("PostgreSQL answers on DATABASE_URL's server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = base.database(&name).to_url_lossy().to_string();
        Self { url, name, admin }
    }

    pub fn options(&self) -> PgConnectOptions {
        self.url.parse().unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let statement = format!("drop database if exists {} with (force)", self.name);
        // Drop cannot await: a thread with a runtime of its own does the work.
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut conn) = admin.connect().await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = dropping.join();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// Whether the tests run under CI (`CI` set and not `false` or `0`, as
/// `.ci/run` and the common CI services set it): there, a test must not pass
/// by skipping what it checks.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The settings every test starts from: defaults, cheap argon2, one gateway key.
pub fn test_settings(database_url: &str, gateway_url: &str) -> Settings {
    let mut settings = Settings::from_env().expect("the environment's settings are valid");
    settings.database.url = database_url.to_owned().into();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.pepper = Some("test-pepper-test-pepper-test-pepper!".to_owned().into());
    settings.gateway.base_url = gateway_url.to_owned();
    settings.gateway.api_keys = Some(SecretList(vec![GATEWAY_KEYS[0].to_owned().into()]));
    settings.gateway.container_tokens = Some(SecretList(vec!["container-token-1".to_owned().into()]));
    settings.hashing = HashSettings {
        memory_kib: 64,
        iterations: 1,
        ..settings.hashing.clone()
    };
    // Tests poll; only the tests of the per-client limit want it small.
    settings.policy.client_requests_per_minute = 1_000_000;
    // The rate's whole minute at once: only the fair-share tests want it spread.
    settings.gateway.burst = Some(u32::MAX);
    // Each test's `/metrics` on its API port, whatever the shell exported.
    settings.metrics_listen = None;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create().await;
    let url = database.url.clone();
    spawn_app_on(database, &url, tweak).await
}

/// The app reaching its database through a proxy the test can cut; the test's
/// own `pool` goes straight to the database.
pub async fn spawn_app_behind_proxy(tweak: impl FnOnce(&mut Settings)) -> (TestApp, DatabaseProxy) {
    let database = TestDatabase::create().await;
    let options = database.options();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .expect("the database server's address");
    let proxy = DatabaseProxy::start(target).await;
    let url = options
        .host("127.0.0.1")
        .port(proxy.port)
        .to_url_lossy()
        .to_string();
    (spawn_app_on(database, &url, tweak).await, proxy)
}

/// The app on `database`, which it reaches at `app_database_url`.
async fn spawn_app_on(
    database: TestDatabase,
    app_database_url: &str,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway_url = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = test_settings(app_database_url, &gateway_url);
    tweak(&mut settings);
    // The fake gateway enforces the same per-key rate the service is told about.
    let fake = FakeGateway::new(
        GATEWAY_KEYS.iter().map(|k| k.to_string()).collect(),
        settings.gateway.rate_per_minute,
    );
    tokio::spawn(fake.serve(listener).unwrap());

    let database_url = database.url.clone();
    let app = Application::build(settings.clone(), None)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map_or_else(|| address.clone(), |port| format!("http://127.0.0.1:{port}"));
    let server = app.server_handle();
    tokio::spawn(app.run_until_stopped());

    let pool = PgPool::connect_with(database.options()).await.unwrap();
    let api_key = clients::add(&pool, "test-client", None)
        .await
        .unwrap()
        .expose_secret()
        .to_owned();
    TestApp {
        address,
        metrics_address,
        pool,
        fake,
        api_key,
        http: reqwest::Client::new(),
        database_url,
        settings,
        server,
        _database: database,
    }
}

impl TestApp {
    /// Stops the in-process service (its server, dispatcher and sweeper), for
    /// tests where only replicas started as processes may touch the outbox.
    /// The database and the fake gateway stay.
    pub async fn stop_service(&self) {
        self.server.stop(true).await;
    }

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

    /// A GET without an API key (health, readiness, metrics).
    pub async fn get_open(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.address))
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

    pub async fn verification_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from verifications")
            .fetch_one(&self.pool)
            .await
            .unwrap()
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

    /// Runs `change` to the clients (or their test numbers) and waits until this
    /// app has heard of it: clients are held in memory, and a change made
    /// behind the service's back reaches it by notification, a moment later.
    pub async fn changing_clients<F: std::future::Future>(&self, change: F) -> F::Output {
        let drops = || metric(self, "otp_client_cache_drops_total");
        let before = drops().await;
        let out = change.await;
        self.wait_for(
            "the service to hear of the change",
            Duration::from_secs(5),
            || async { drops().await > before || metric(self, "otp_client_cache_listening").await == 0.0 },
        )
        .await;
        out
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

/// What `GET /metrics` says.
pub async fn metrics_text(app: &TestApp) -> String {
    let response = app
        .http
        .get(format!("{}/metrics", app.metrics_address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The sum of every series of a metric whose labels include `labels`, from `GET /metrics`.
pub async fn metric_with(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics_text(app)
        .await
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            let wanted = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

pub async fn metric(app: &TestApp, name: &str) -> f64 {
    metric_with(app, name, &[]).await
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
    if code == "max_attempts_reached" {
        // Waiting does not help: a new request is answered at once.
        assert!(retry_after.is_none(), "no Retry-After on {code}");
        assert!(body.get("retry_after").is_none(), "{body}");
    } else if status == 429 || status == 503 {
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

/// Both fake keys, with their container tokens.
pub fn two_keys(settings: &mut Settings) {
    settings.gateway.api_keys = Some(SecretList(
        GATEWAY_KEYS.iter().map(|k| k.to_string().into()).collect(),
    ));
    settings.gateway.container_tokens = Some(SecretList(vec![
        "container-token-1".to_owned().into(),
        "container-token-2".to_owned().into(),
    ]));
}

/// The `n`th of a series of distinct valid Bolivian mobile numbers, E.164.
pub fn nth_phone(n: usize) -> String {
    format!("+5916{:07}", 9_600_000 + n)
}

/// How many different numbers the gateway delivered to.
pub fn distinct_numbers(fake: &FakeGateway) -> usize {
    let mut numbers: Vec<String> = fake.messages().into_iter().map(|m| m.number).collect();
    numbers.sort();
    numbers.dedup();
    numbers.len()
}

/// The most messages any key received within any 60-second window.
pub fn busiest_minute(fake: &FakeGateway) -> usize {
    let messages = fake.messages();
    let mut worst = 0;
    for sender in 0..GATEWAY_KEYS.len() {
        let times: Vec<_> = messages
            .iter()
            .filter(|m| m.sender == sender)
            .map(|m| m.received_at)
            .collect();
        for (i, start) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|t| **t - *start < chrono::Duration::seconds(60))
                .count();
            worst = worst.max(in_window);
        }
    }
    worst
}

/// The real binary, serving on a port of its own against the test's database
/// and fake gateway: a replica.
pub struct ServiceProcess {
    pub process: tokio::process::Child,
    pub address: String,
}

impl ServiceProcess {
    pub async fn start(app: &TestApp, env: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let keys: Vec<&str> = GATEWAY_KEYS.to_vec();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_otp-service"));
        command
            .arg("serve")
            .env("DATABASE_URL", &app.database_url)
            .env("OTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("OTP_PEPPER", "test-pepper-test-pepper-test-pepper!")
            .env("WACONECTA_API_KEYS", keys.join(","))
            .env("WACONECTA_BASE_URL", &app.settings.gateway.base_url)
            .env(
                "WACONECTA_RATE_PER_MINUTE",
                app.settings.gateway.rate_per_minute.to_string(),
            )
            .env(
                "OTP_CLIENT_MAX_QUEUED",
                app.settings.policy.client_max_queued.to_string(),
            )
            .env("OTP_ARGON2_MEMORY_KIB", "64")
            .env("OTP_ARGON2_ITERATIONS", "1")
            .env("RUST_LOG", "warn")
            .env_remove("OTP_METRICS_LISTEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        if let Some(burst) = app.settings.gateway.burst {
            command.env("WACONECTA_BURST", burst.to_string());
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let process = command.spawn().expect("the binary starts");
        let address = format!("http://127.0.0.1:{port}");
        let health = format!("{address}/healthz");
        app.wait_for("a replica to serve", Duration::from_secs(30), || async {
            app.http
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self { process, address }
    }

    pub fn pid(&self) -> u32 {
        self.process.id().expect("still running")
    }

    /// Sends SIGTERM, as an orchestrator stopping the replica would.
    pub fn terminate(&self) {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.unwrap().success(), "kill -TERM {pid}");
    }

    pub async fn request_code(&self, app: &TestApp, body: &Value) -> Response {
        self.request_code_as(app, &app.api_key, body).await
    }

    pub async fn request_code_as(&self, app: &TestApp, key: &str, body: &Value) -> Response {
        app.http
            .post(format!("{}/otp/request", self.address))
            .header("X-Api-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn kill(mut self) {
        self.process.kill().await.expect("SIGKILL");
    }
}
