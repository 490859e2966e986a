//! The fake's HTTP face: the gateway's two endpoints in its envelope, and
//! `/fake/messages`, the inbox.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::{FakeGateway, QrFormat, Verdict, qr_png, qr_svg};

impl FakeGateway {
    /// Serves the fake on `listener`; the server runs when the future is awaited or spawned.
    pub fn serve(&self, listener: TcpListener) -> std::io::Result<Server> {
        let fake = self.clone();
        Ok(HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(fake.clone()))
                .app_data(web::JsonConfig::default().error_handler(|e, _| {
                    let response = envelope(
                        StatusCode::BAD_REQUEST,
                        "Bad request",
                        Value::String(String::new()),
                    );
                    actix_web::error::InternalError::from_response(e, response).into()
                }))
                .route("/api/v1/services/sendMessage", web::post().to(send_message))
                .route(
                    "/api/v1/services/getQrStaticSession",
                    web::post().to(qr_static_session),
                )
                .route("/fake/messages", web::get().to(inbox))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run())
    }
}

fn empty() -> Value {
    Value::String(String::new())
}

fn envelope(status: StatusCode, message: &str, data: Value) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "success": status.is_success(),
        "status": status.as_u16(),
        "message": message,
        "data": data,
    }))
}

fn api_key(req: &HttpRequest) -> Option<&str> {
    req.headers().get("x-api-key").and_then(|v| v.to_str().ok())
}

async fn send_message(
    req: HttpRequest,
    fake: web::Data<FakeGateway>,
    body: web::Json<Value>,
) -> HttpResponse {
    fake.lock().received += 1;
    let (sender, number, verdict) = fake.judge(api_key(&req), &body);
    let (status, response) = match verdict {
        Verdict::Answer(status, message, retry_after) => {
            let mut response = envelope(status, message, empty());
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from(seconds),
                );
            }
            (status, response)
        }
        Verdict::DelayThenAnswer(delay, status, message) => {
            tokio::time::sleep(delay).await;
            (status, envelope(status, message, empty()))
        }
        Verdict::DelayThenAccept(delay) => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let sender = sender.expect("accepted calls have a sender");
            let data = fake.accept(sender, number.clone(), message);
            (
                StatusCode::OK,
                envelope(StatusCode::OK, "data retrieved successfully", data),
            )
        }
    };
    fake.record(sender, number, status);
    response
}

async fn qr_static_session(
    req: HttpRequest,
    fake: web::Data<FakeGateway>,
    body: web::Json<Value>,
) -> HttpResponse {
    let known_key = api_key(&req).is_some_and(|k| fake.keys.iter().any(|known| known == k));
    if !known_key
        || body
            .get("containerToken")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return envelope(StatusCode::UNAUTHORIZED, "No autorizado", empty());
    }
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let data = match fake.lock().qr_format {
        QrFormat::Png => format!("data:image/png;base64,{}", engine.encode(qr_png())),
        QrFormat::Svg => format!("data:image/svg+xml;base64,{}", engine.encode(qr_svg())),
    };
    envelope(StatusCode::OK, "data retrieved successfully", Value::String(data))
}

async fn inbox(fake: web::Data<FakeGateway>) -> HttpResponse {
    HttpResponse::Ok().json(fake.messages())
}
