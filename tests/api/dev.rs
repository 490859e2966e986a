//! `serve --dev` as the binary: its database, its inbox, its key.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-service");

#[tokio::test]
async fn serve_dev_creates_its_database_and_shows_codes_in_the_inbox() {
    // A database that does not exist yet, on the test server.
    let database = TestDatabase::create().await;
    let missing_url = database.url.replace("otp_test_", "otp_test_dev_");
    let missing_name = missing_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let data_home = DataHome::new();
    let dev = DevProcess::start(&missing_url, &data_home.0).await;
    let (key, base) = (dev.key.clone(), dev.base.clone());
    let http = reqwest::Client::new();
    let v: serde_json::Value = http
        .post(format!("{base}/otp/request"))
        .header("X-Api-Key", &key)
        .json(&json!({"phone": "+591 696-57008", "purpose": "signup"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["delivery_status"], "sent", "{v}");
    let inbox: Vec<serde_json::Value> = http
        .get(format!("{base}/dev/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = inbox.last().unwrap()["message"].as_str().unwrap().to_owned();
    let code = text.split('*').nth(1).unwrap();
    let verified = http
        .post(format!("{base}/otp/verify"))
        .header("X-Api-Key", &key)
        .json(&json!({"phone": "+59169657008", "purpose": "signup", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);

    dev.stop().await;
    let mut admin = sqlx::PgConnection::connect_with(&database.options().database("postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "drop database if exists {missing_name} with (force)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// A data directory of its own (`XDG_DATA_HOME`), so that no test writes in
/// the user's; removed at the end.
pub(crate) struct DataHome(pub(crate) std::path::PathBuf);

impl DataHome {
    pub(crate) fn new() -> Self {
        Self(std::env::temp_dir().join(format!("otp-data-{}", uuid::Uuid::new_v4().simple())))
    }
}

impl Drop for DataHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `serve --dev` as a process, once it has printed its banner.
pub(crate) struct DevProcess {
    child: tokio::process::Child,
    // Kept, so that the process never blocks on a full pipe.
    _stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    pub(crate) banner: String,
    pub(crate) key: String,
    pub(crate) base: String,
}

impl DevProcess {
    pub(crate) async fn start(database_url: &str, data_home: &std::path::Path) -> Self {
        Self::start_with(database_url, data_home, &[]).await
    }

    /// The same, with more of the environment (`OTP_ADMIN_KEY`, say).
    pub(crate) async fn start_with(
        database_url: &str,
        data_home: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = tokio::process::Command::new(BIN)
            .args(["serve", "--dev"])
            .env("DATABASE_URL", database_url)
            .env("OTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("XDG_DATA_HOME", data_home)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let key = tokio::time::timeout(Duration::from_secs(30), async {
            let mut line = String::new();
            loop {
                line.clear();
                assert!(
                    stdout.read_line(&mut line).await.unwrap() > 0,
                    "serve --dev printed no key: {banner}"
                );
                assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
                banner.push_str(&line);
                if let Some(key) = line.trim().strip_prefix("export OTP_KEY=") {
                    return key.to_owned();
                }
            }
        })
        .await
        .expect("serve --dev starts");
        Self {
            child,
            _stdout: stdout,
            banner,
            key,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The status of a call with `key` that only authentication can refuse.
    pub(crate) async fn status_with(&self, key: &str) -> u16 {
        reqwest::Client::new()
            .get(format!("{}/otp/0193b6c2-7a1e-7c3d-9f2e-3b1d5e8a9c01", self.base))
            .header("X-Api-Key", key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub(crate) async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn serve_dev_keeps_its_key_across_restarts() {
    let database = TestDatabase::create().await;
    let data_home = DataHome::new();
    let first = DevProcess::start(&database.url, &data_home.0).await;
    assert!(
        first.banner.contains("new key, kept for the next starts"),
        "{}",
        first.banner
    );
    let first_key = first.key.clone();
    first.stop().await;

    let second = DevProcess::start(&database.url, &data_home.0).await;
    assert!(
        second.banner.contains("kept from the previous start"),
        "{}",
        second.banner
    );
    assert_eq!(second.key, first_key);
    assert_eq!(
        second.status_with(&second.key).await,
        404,
        "the kept key is let in"
    );
    let files: Vec<_> = std::fs::read_dir(data_home.0.join("otp-service"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the user's alone");
    }
    second.stop().await;

    // Without the file (another user, another laptop): a new key, and the old one stops working.
    let elsewhere = DataHome::new();
    let third = DevProcess::start(&database.url, &elsewhere.0).await;
    assert!(third.banner.contains("new key"), "{}", third.banner);
    assert_ne!(third.key, first_key);
    assert_eq!(third.status_with(&first_key).await, 401);
    assert_eq!(third.status_with(&third.key).await, 404);

    // The banner names the dev client's Twilio SIDs, and they let the key in.
    let line = third
        .banner
        .lines()
        .find(|l| l.contains("Twilio Verify:"))
        .unwrap();
    let sid = |prefix: &str| {
        let at = line.find(&format!("SID {prefix}")).unwrap() + 4;
        line[at..at + 34].to_owned()
    };
    let service = reqwest::Client::new()
        .get(format!("{}/twilio/v2/Services/{}", third.base, sid("VA")))
        .basic_auth(sid("AC"), Some(&third.key))
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 200, "{line}");
    third.stop().await;
}

/// `/dev/gateway` under `serve --dev`: a number not on WhatsApp, an outage,
/// a slow gateway and an ended session, each switched on and off over HTTP.
#[tokio::test]
async fn serve_dev_lets_the_gateway_fail_on_demand() {
    let database = TestDatabase::create().await;
    let data_home = DataHome::new();
    let dev = DevProcess::start(&database.url, &data_home.0).await;
    assert!(dev.banner.contains("/dev/gateway"), "{}", dev.banner);
    let http = reqwest::Client::new();
    let gateway = format!("{}/dev/gateway", dev.base);
    let switch = |body: serde_json::Value| http.put(&gateway).json(&body).send();
    let request = |phone: &'static str| {
        http.post(format!("{}/otp/request", dev.base))
            .header("X-Api-Key", &dev.key)
            .json(&json!({"phone": phone, "purpose": "signup"}))
            .send()
    };

    // A number not on WhatsApp.
    let switched: serde_json::Value = switch(json!({"reject": "+591 696-57008"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(switched["rejected_numbers"], json!(["59169657008"]), "{switched}");
    let rejected = request("+59169657008").await.unwrap();
    assert_eq!(rejected.status(), 422);
    let body: serde_json::Value = rejected.json().await.unwrap();
    assert_eq!(body["code"], "phone_rejected", "{body}");
    switch(json!({"accept": "+59169657008"})).await.unwrap();
    assert_eq!(request("+59169657008").await.unwrap().status(), 202);

    // An outage: the code is queued, and sent once the gateway is back.
    switch(json!({"down": true})).await.unwrap();
    let queued: serde_json::Value = request("+59169657009").await.unwrap().json().await.unwrap();
    assert_eq!(queued["delivery_status"], "queued", "{queued}");
    let reset: serde_json::Value = http.delete(&gateway).send().await.unwrap().json().await.unwrap();
    assert_eq!(reset["down"], false, "{reset}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let inbox: Vec<serde_json::Value> = http
            .get(format!("{}/dev/messages", dev.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if inbox.iter().any(|m| m["number"] == "59169657009") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queued code was never sent"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A slow gateway: the request answers before the gateway does (past
    // OTP_SEND_WAIT_MS, 3 s by default).
    switch(json!({"delay_ms": 4000})).await.unwrap();
    let waiting: serde_json::Value = request("+59169657010").await.unwrap().json().await.unwrap();
    let status = waiting["delivery_status"].as_str().unwrap();
    assert!(["queued", "sending"].contains(&status), "{waiting}");

    // An ended session: switched and shown.
    let slow: serde_json::Value = switch(json!({"delay_ms": 1500, "session_ended": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(slow["delay_ms"], 1500);
    assert_eq!(slow["session_ended"], true);
    let refused = switch(json!({"delay_ms": 600000})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("`delay_ms`"), "{body}");
    dev.stop().await;
}
