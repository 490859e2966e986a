//! The HTTP server: the documented routes, the middleware around them, the
//! docs page and the dev inbox.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;
use crate::http;

/// Serves `state` on `listener`; a stop lets requests in flight finish for `drain`.
/// With `metrics_elsewhere` (`OTP_METRICS_LISTEN`), `/metrics` answers `404` here.
pub fn server(
    listener: TcpListener,
    state: web::Data<AppState>,
    drain: Duration,
    metrics_elsewhere: bool,
) -> std::io::Result<Server> {
    // Served as committed, so that the schemes keep their order (see `to_json`).
    let document = web::Bytes::from(http::openapi::to_json(&http::openapi::document()));
    let dev = state.fake_gateway.is_some();
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .openapi(http::openapi::base())
            .app_data(state.clone())
            .app_data(http::metrics::ServedElsewhere(metrics_elsewhere))
            .app_data(http::json_config())
            .app_data(http::path_config())
            .app_data(http::query_config())
            .configure(http::documented_routes)
            .configure(http::twilio::routes)
            .split_for_parts();
        app.wrap(actix_web::middleware::from_fn(http::metrics::record))
            .wrap(TracingLogger::<crate::telemetry::RequestLog>::new())
            // Outermost: every answer, the middleware's errors included.
            .wrap(actix_web::middleware::from_fn(http::headers::nosniff))
            .configure(|cfg| {
                if dev {
                    http::dev_routes(cfg);
                }
            })
            .service(
                SwaggerUi::new("/docs/{_:.*}").config(
                    utoipa_swagger_ui::Config::new(["/openapi.json"])
                        // The API key survives a reload of the page.
                        .persist_authorization(true)
                        .try_it_out_enabled(true)
                        .display_request_duration(true),
                ),
            )
            .route(
                "/openapi.json",
                web::get().to({
                    let document = document.clone();
                    move || {
                        let document = document.clone();
                        async move {
                            actix_web::HttpResponse::Ok()
                                .content_type("application/json")
                                .body(document)
                        }
                    }
                }),
            )
            .route(
                "/docs",
                web::get().to(|| async {
                    actix_web::HttpResponse::PermanentRedirect()
                        .insert_header(("Location", "/docs/"))
                        .finish()
                }),
            )
            .default_service(web::to(http::fallback))
    })
    .disable_signals()
    .shutdown_timeout(drain.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

/// `GET /metrics` alone, on `address` (`OTP_METRICS_LISTEN`): a port for
/// the monitoring network, apart from the one clients reach. Anything else
/// there is `404`. Returns the server and the port it listens on.
pub fn metrics_server(
    address: SocketAddr,
    state: web::Data<AppState>,
    drain: Duration,
) -> anyhow::Result<(Server, u16)> {
    let listener = TcpListener::bind(address)
        .with_context(|| format!("cannot listen on {address} (OTP_METRICS_LISTEN)"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(http::metrics::scrape))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(crate::error::Error::NotFound("no such endpoint"))
            }))
            .wrap(actix_web::middleware::from_fn(http::metrics::record))
            .wrap(TracingLogger::<crate::telemetry::RequestLog>::new())
            .wrap(actix_web::middleware::from_fn(http::headers::nosniff))
    })
    // Scrapes are few and light.
    .workers(1)
    .disable_signals()
    .shutdown_timeout(drain.as_secs().max(1))
    .listen(listener)?
    .run();
    Ok((server, port))
}
