//! The QR page and image over HTTP: their content, and the headers that keep
//! a browser from sniffing, framing or running what they hold.

use otp_service::delivery::fake_gateway::QrFormat;

use crate::helpers::*;

/// At least 32 bytes, as an admin key must be.
pub const ADMIN_KEY: &str = "admin-key-for-tests-at-least-32-bytes";

async fn admin_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/admin{path}", app.address))
        .header("X-Admin-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_answer_says_nosniff() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let answers = [
        app.get_open("/healthz").await,
        app.get_open("/metrics").await,
        app.get_open("/openapi.json").await,
        app.get_open("/docs/").await,
        app.get_open("/no/such/path").await,
        app.get_open("/otp/request").await,
        app.get_open("/admin/senders").await,
        app.post_as("wrong", "/otp/request", &serde_json::json!({})).await,
        app.get("/otp/not-a-uuid").await,
        admin_get(&app, "/senders/sender-1/qr.png").await,
    ];
    for answer in answers {
        let nosniff = answer.headers().get("x-content-type-options");
        assert_eq!(
            nosniff.map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{} {}",
            answer.url(),
            answer.status()
        );
    }
}

#[tokio::test]
async fn the_qr_page_carries_the_code_under_a_strict_policy() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let page = admin_get(&app, "/senders/sender-1/qr").await;
    assert_eq!(page.status(), 200);
    let policy = header(&page, "content-security-policy");
    let html = page.text().await.unwrap();
    let nonce = html
        .split("<script nonce=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the script has a nonce");
    assert!(nonce.len() >= 22, "{nonce}");
    for directive in [
        "default-src 'none'".to_owned(),
        format!("script-src 'nonce-{nonce}'"),
        format!("style-src 'nonce-{nonce}'"),
        "img-src data:".to_owned(),
        "connect-src 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'none'".to_owned(),
    ] {
        assert!(
            policy.split(';').any(|d| d.trim() == directive),
            "{directive} missing from {policy}"
        );
    }
    assert!(html.contains("src=\"data:image/png;base64,"), "{html}");
    assert!(
        !html.contains("onclick"),
        "inline handlers would need 'unsafe-inline'"
    );

    let again = admin_get(&app, "/senders/sender-1/qr")
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(nonce), "a nonce is used once");
}

#[tokio::test]
async fn the_qr_image_is_a_png_of_a_qr_code_size() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    let image = admin_get(&app, "/senders/sender-1/qr.png").await;
    assert_eq!(image.status(), 200);
    assert_eq!(header(&image, "content-type"), "image/png");
    assert!(header(&image, "content-security-policy").contains("sandbox"));
    let bytes = image.bytes().await.unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let (width, height) = (reader.info().width, reader.info().height);
    assert!(width >= 100 && width == height, "{width}x{height}");
}

#[tokio::test]
async fn an_svg_from_the_gateway_is_sandboxed_and_still_shown() {
    let app = spawn_app_with(|s| s.admin_key = Some(ADMIN_KEY.to_owned().into())).await;
    app.fake.set_qr_format(QrFormat::Svg);
    let image = admin_get(&app, "/senders/sender-1/qr.png").await;
    assert_eq!(image.status(), 200);
    assert_eq!(header(&image, "content-type"), "image/svg+xml");
    let policy = header(&image, "content-security-policy");
    assert!(policy.split(';').any(|d| d.trim() == "sandbox"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let html = admin_get(&app, "/senders/sender-1/qr")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("src=\"data:image/svg+xml;base64,"));
}

#[tokio::test]
async fn the_qr_page_says_why_there_is_no_code() {
    let app = spawn_app_with(|s| {
        s.admin_key = Some(ADMIN_KEY.to_owned().into());
        s.gateway.container_tokens = None;
    })
    .await;
    let page = admin_get(&app, "/senders/sender-1/qr").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("No QR code: no container token is configured for this key"),
        "{html}"
    );
    assert!(!html.contains("<img"));
}
