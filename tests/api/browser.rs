//! The QR page in headless Chromium, however the operator authenticates:
//! credentials in the address (the same Basic challenge a browser's prompt
//! answers), or an `X-Admin-Key` header added by a proxy in front. The page
//! must show a QR-sized image, log nothing to the console, and its Resume
//! button must work. Skipped when `chromium` is not installed, except
//! under CI (`CI` set, as `.ci/run` runs), where they fail instead: a
//! browser test never passes without a browser there (`.ci/run` installs it).

use std::process::Stdio;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use otp_service::delivery::fake_gateway::QrFormat;

use super::qr::ADMIN_KEY;
use crate::helpers::*;

/// A reverse proxy in front of the app (keeping the browser's `Host`), which
/// may add the admin key and may make the page press its Resume button once
/// loaded (with the page's own nonce, as its policy demands).
struct Proxy {
    target: String,
    admin_key: Option<&'static str>,
    http: reqwest::Client,
}

const HOP_BY_HOP: [&str; 4] = ["connection", "content-length", "transfer-encoding", "keep-alive"];

async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<Proxy>) -> HttpResponse {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = proxy.http.request(method, format!("{}{path}", proxy.target));
    for (name, value) in req.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some(key) = proxy.admin_key {
        out = out.header("X-Admin-Key", key);
    }
    let answer = out.body(body.to_vec()).send().await.unwrap();
    let status = actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let html = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html");
    let bytes = answer.bytes().await.unwrap();
    if !html {
        return response.body(bytes);
    }
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    let nonce = page
        .split("<script nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let press = format!(
        r#"<script nonce="{nonce}">addEventListener("load", () => document.getElementById("resume").click());</script></body>"#
    );
    response.body(page.replace("</body>", &press))
}

fn start_proxy(app: &TestApp, admin_key: Option<&'static str>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = web::Data::new(Proxy {
        target: app.address.clone(),
        admin_key,
        http: reqwest::Client::new(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(proxy.clone())
            .default_service(web::to(forward))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            std::process::Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// The browser to drive, or `None` when the test is to be skipped (and says
/// so); under CI, a missing browser fails the test.
fn browser_or_skip() -> Option<&'static str> {
    let browser = decide(chromium(), in_ci()).unwrap_or_else(|refusal| panic!("{refusal}"));
    if browser.is_none() {
        eprintln!("skipped: chromium is not installed (under CI this test fails instead)");
    }
    browser
}

/// `browser_or_skip`'s decision, apart from the machine it runs on.
fn decide(found: Option<&'static str>, ci: bool) -> Result<Option<&'static str>, String> {
    match found {
        Some(browser) => Ok(Some(browser)),
        None if ci => Err(
            "chromium is not installed, and CI is set: a browser test cannot pass \
             without a browser. Install it (`apt-get install chromium`, as .ci/run does)"
                .to_owned(),
        ),
        None => Ok(None),
    }
}

#[test]
fn without_chromium_a_ci_run_fails_instead_of_skipping() {
    assert!(decide(None, true).is_err());
    assert_eq!(decide(None, false), Ok(None));
    assert_eq!(decide(Some("chromium"), true), Ok(Some("chromium")));
    assert_eq!(decide(Some("chromium"), false), Ok(Some("chromium")));
}

/// The page's DOM once it has settled, and what it logged to the console.
async fn open(browser: &str, url: &str) -> (String, Vec<String>) {
    let profile = std::env::temp_dir().join(format!("otp-chromium-{}", uuid::Uuid::new_v4()));
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--enable-logging=stderr",
                "--v=0",
                // Less than the page's 15 s reload.
                "--virtual-time-budget=5000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finishes")
    .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    let console = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&output.stdout).into_owned(), console)
}

/// Opens the page for a key whose session has ended, and checks what it shows
/// and that its Resume button put the key back in service.
async fn check_page(app: &TestApp, url: &str) {
    let Some(browser) = browser_or_skip() else {
        return;
    };
    sqlx::query("update senders set state = 'session_ended'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (dom, console) = open(browser, url).await;
    assert!(console.is_empty(), "console: {console:#?}");
    let size = dom
        .split("data-natural-size=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the image did not load: {dom}"));
    let (width, height) = size.split_once('x').unwrap();
    let (width, height): (u32, u32) = (width.parse().unwrap(), height.parse().unwrap());
    assert!(width >= 100 && width == height, "{width}x{height}");
    assert!(!dom.contains("data-error"), "{dom}");
    assert!(dom.contains("sender-1 is back in service."), "{dom}");
    let state: String = sqlx::query_scalar("select state from senders")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "ok", "Resume did not reach the service");
}

#[tokio::test]
async fn the_qr_page_works_with_credentials_in_the_address() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let port = start_proxy(&app, None);
    let url = format!("http://operator:{ADMIN_KEY}@127.0.0.1:{port}/admin/senders/sender-1/qr");
    check_page(&app, &url).await;
}

#[tokio::test]
async fn the_qr_page_works_behind_a_proxy_that_sends_the_admin_key() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let port = start_proxy(&app, Some(ADMIN_KEY));
    check_page(
        &app,
        &format!("http://127.0.0.1:{port}/admin/senders/sender-1/qr"),
    )
    .await;
}

#[tokio::test]
async fn the_qr_page_shows_an_svg_from_the_gateway() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    app.fake.set_qr_format(QrFormat::Svg);
    let port = start_proxy(&app, Some(ADMIN_KEY));
    check_page(
        &app,
        &format!("http://127.0.0.1:{port}/admin/senders/sender-1/qr"),
    )
    .await;
}
