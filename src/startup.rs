//! Builds the application from settings: database, hasher, delivery, HTTP
//! server, and the background loops (`background`), which `run` starts.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use tokio::sync::Notify;

use crate::access::Access;
use crate::clients::admin::ClientAdmin;
use crate::clients::cache::ClientCache;
use crate::config::Settings;
use crate::crypto::{CodeHasher, Sealer};
use crate::delivery::Delivery;
use crate::delivery::fake_gateway::FakeGateway;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::operations::Operations;
use crate::otp::OtpService;
use crate::store;
use crate::tasks::Tasks;
use crate::webhooks::Webhooks;

mod background;
mod entry;
mod parts;
mod pepper_check;
mod run;

use background::{Background, Sweeper};
pub use entry::main;
use run::drain_budget;

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on a listener of its own (`OTP_METRICS_LISTEN`), and its port.
    metrics_server: Option<(Server, u16)>,
    shutdown_timeout: Duration,
    /// Also the background's: the shutdown finishes its first attempts and
    /// gives back its leases.
    delivery: Delivery,
    background: Background,
    /// What no configured pepper can check or open, counted at start.
    pepper_report: crate::otp::Protected,
}

impl Application {
    /// Migrates the database, then binds `settings.listen` (port 0 picks a free
    /// port, as tests do). `fake_gateway` enables `/dev/messages`.
    pub async fn build(settings: Settings, fake_gateway: Option<FakeGateway>) -> anyhow::Result<Self> {
        let options = store::connect_options(settings.database.url())
            .context("DATABASE_URL is not a valid PostgreSQL URL")?;
        let limits = crate::cli::store_limits(&settings.database).map_err(anyhow::Error::msg)?;
        let request_budget =
            crate::otp::idempotency::check_request_budget(&settings).map_err(anyhow::Error::msg)?;
        store::run_migrations(&options).await.context(
            "could not apply the database migrations (is PostgreSQL running and DATABASE_URL right?)",
        )?;
        let pool = store::pool(options.clone(), limits);
        let ops_pool = store::ops_pool(options, limits);

        let peppers = parts::peppers(&settings)?;
        let sealer = Sealer::new(&peppers);
        let pepper_report = pepper_check::check(&pool, &peppers, &sealer).await?;
        if fake_gateway.is_none() {
            crate::clients::dev_database::give_up(&pool)
                .await
                .context("could not take this database's `serve --dev` mark away")?;
        }
        let webhook_admin = parts::webhook_admin(&settings, &pool, &sealer).await?;
        let metrics = Metrics::new();
        let hasher =
            CodeHasher::new(peppers.clone(), &settings.hashing, &metrics).map_err(anyhow::Error::msg)?;
        let tasks = Tasks::current();
        let delivery = parts::delivery(&settings, &pool, &sealer, &tasks, &metrics).await?;
        let limits = parts::limit_settings(&settings);
        let dev = fake_gateway.is_some();
        let policy = parts::policy(&settings, limits.clone(), dev, request_budget);
        let client_cache = ClientCache::new(pool.clone(), metrics.clone());
        let otp = OtpService::new(
            pool.clone(),
            hasher.clone(),
            policy,
            delivery.clone(),
            tasks.clone(),
            metrics.clone(),
            client_cache.clone(),
        );
        let background = background(
            &settings,
            &pool,
            &sealer,
            &otp,
            &delivery,
            &client_cache,
            &metrics,
        )?;
        let state = web::Data::new(AppState {
            operations: Operations::new(pool.clone(), ops_pool, delivery.clone()),
            otp,
            delivery: delivery.clone(),
            tasks,
            default_country: settings.policy.default_country,
            default_locale: settings.policy.default_locale,
            access: Access::new(
                pool.clone(),
                client_cache.clone(),
                limits,
                settings.admin_key.clone(),
            ),
            clients: ClientAdmin::new(
                pool.clone(),
                client_cache,
                hasher,
                crate::clients::defaults(&settings.policy),
                settings.policy.allow_weak_codes,
            ),
            webhooks: webhook_admin,
            fraud: crate::fraud::FraudAdmin::new(pool.clone()),
            fake_gateway,
            metrics,
            stats: crate::stats::Stats::new(pool),
        });
        Self::serve(settings, state, delivery, background, pepper_report)
    }

    /// Binds the listeners and makes the servers, which run once awaited.
    fn serve(
        settings: Settings,
        state: web::Data<AppState>,
        delivery: Delivery,
        background: Background,
        pepper_report: crate::otp::Protected,
    ) -> anyhow::Result<Self> {
        let shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_seconds);
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {} (OTP_LISTEN)", settings.listen))?;
        let port = listener.local_addr()?.port();
        let metrics_server = settings
            .metrics_listen
            .map(|address| http::metrics_server(address, state.clone(), drain_budget(shutdown_timeout)))
            .transpose()?;
        let server = http::server(
            listener,
            state,
            drain_budget(shutdown_timeout),
            metrics_server.is_some(),
        )?;
        Ok(Self {
            port,
            server,
            metrics_server,
            shutdown_timeout,
            delivery,
            background,
            pepper_report,
        })
    }

    /// What the database holds that no configured pepper can check or open.
    pub fn pepper_report(&self) -> crate::otp::Protected {
        self.pepper_report
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`' own listener, when `OTP_METRICS_LISTEN` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// Stops the HTTP server from outside, as a signal would.
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The loops beside the server, each given what it works on.
fn background(
    settings: &Settings,
    pool: &sqlx::PgPool,
    sealer: &Sealer,
    otp: &OtpService,
    delivery: &Delivery,
    client_cache: &ClientCache,
    metrics: &Metrics,
) -> anyhow::Result<Background> {
    let webhook_events = Arc::new(Notify::new());
    let webhooks = Webhooks::new(
        pool.clone(),
        sealer.clone(),
        otp.clone(),
        crate::webhooks::egress(&settings.webhooks),
        crate::webhooks::retry_schedule(&settings.webhooks),
        metrics.clone(),
        webhook_events.clone(),
    )?;
    Ok(Background {
        delivery: delivery.clone(),
        notifications: background::notifications(pool, client_cache, webhook_events),
        webhooks,
        detector: parts::detector(settings, pool, metrics),
        sweeper: Sweeper {
            pool: pool.clone(),
            retention: Duration::from_secs(u64::from(settings.retention_days) * 24 * 60 * 60),
            metrics: metrics.clone(),
        },
    })
}
