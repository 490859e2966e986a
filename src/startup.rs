//! Builds the application from settings: database, hasher, delivery, HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Settings;
use crate::delivery::fake_gateway::FakeGateway;
use crate::delivery::gateway::WaconectaClient;
use crate::delivery::{Delivery, Sender, Templates};
use crate::http::{self, AppState};
use crate::otp::{CodeHasher, OtpService, Policy};
use crate::store;

pub struct Application {
    port: u16,
    server: Server,
    dispatcher: JoinHandle<()>,
    shutdown: CancellationToken,
    shutdown_timeout: Duration,
}

impl Application {
    /// Migrates the database, then binds `settings.listen` (port 0 picks a free
    /// port, as tests do). `fake_gateway` enables `/dev/messages`.
    pub async fn build(settings: Settings, fake_gateway: Option<FakeGateway>) -> anyhow::Result<Self> {
        let options = store::connect_options(settings.database.url())
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        store::run_migrations(&options).await.context(
            "could not apply the database migrations (is PostgreSQL running and DATABASE_URL right?)",
        )?;
        let pool = store::pool(options);

        let pepper: SecretString = settings.pepper.clone().context("OTP_PEPPER is required")?;
        let hasher = CodeHasher::new(pepper, &settings.hashing).map_err(anyhow::Error::msg)?;
        let keys = settings
            .gateway
            .api_keys
            .clone()
            .context("WACONECTA_API_KEYS is required")?;
        let senders = keys
            .0
            .into_iter()
            .enumerate()
            .map(|(i, key)| Sender::new(format!("sender-{}", i + 1), key))
            .collect();
        let gateway = WaconectaClient::new(&settings.gateway.base_url)?;
        let delivery = Delivery::new(pool.clone(), gateway, senders);
        let policy = Policy {
            code_length: settings.policy.code_length,
            ttl: settings.ttl(),
            max_attempts: settings.policy.max_attempts,
            resend_cooldown_seconds: settings.policy.resend_cooldown_seconds,
            max_sends: settings.policy.max_sends,
            allowed_countries: settings.policy.allowed_countries.0.clone(),
            send_wait: settings.send_wait(),
        };
        let otp = OtpService::new(
            pool.clone(),
            hasher,
            policy,
            Templates::from_settings(&settings.policy),
            delivery.clone(),
        );
        let state = web::Data::new(AppState {
            pool,
            otp,
            delivery: delivery.clone(),
            default_country: settings.policy.default_country,
            default_locale: settings.policy.default_locale,
            fake_gateway,
        });

        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {} (OTP_LISTEN)", settings.listen))?;
        let port = listener.local_addr()?.port();
        let document = http::openapi::document();
        let dev = state.fake_gateway.is_some();
        let server = HttpServer::new(move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .openapi(http::openapi::base())
                .app_data(state.clone())
                .app_data(http::json_config())
                .app_data(http::path_config())
                .configure(http::documented_routes)
                .split_for_parts();
            app.wrap(TracingLogger::<crate::telemetry::RequestLog>::new())
                .configure(|cfg| {
                    if dev {
                        http::dev_routes(cfg);
                    }
                })
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", document.clone()))
                .route(
                    "/docs",
                    web::get().to(|| async {
                        actix_web::HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                .default_service(web::to(http::not_found))
        })
        .shutdown_timeout(settings.shutdown_timeout_seconds)
        .listen(listener)?
        .run();

        let shutdown = CancellationToken::new();
        let dispatcher = tokio::spawn(delivery.run(shutdown.clone()));
        Ok(Self {
            port,
            server,
            dispatcher,
            shutdown,
            shutdown_timeout: Duration::from_secs(settings.shutdown_timeout_seconds),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server from outside, as a signal would.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or Ctrl-C: the server stops accepting and lets
    /// in-flight requests finish, then the dispatcher stops claiming work.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let served = self.server.await;
        self.shutdown.cancel();
        if tokio::time::timeout(self.shutdown_timeout, self.dispatcher)
            .await
            .is_err()
        {
            tracing::warn!("the dispatcher did not stop in time");
        }
        tracing::info!("stopped");
        Ok(served?)
    }
}
