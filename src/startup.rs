//! Builds the application from settings: database, hasher, delivery, HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::clients::admin::ClientAdmin;
use crate::clients::cache::ClientCache;
use crate::config::Settings;
use crate::crypto::{CodeHasher, Peppers, Sealer};
use crate::delivery::fake_gateway::FakeGateway;
use crate::delivery::gateway::WaconectaClient;
use crate::delivery::{Delivery, Sender, Senders};
use crate::fraud::FraudMode;
use crate::fraud::detect::Detector;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::operations::Operations;
use crate::otp::{LimitSettings, OtpService, Policy};
use crate::retention;
use crate::store;
use crate::tasks::Tasks;
use crate::webhooks::{WebhookAdmin, Webhooks};

mod entry;
mod pepper_check;

pub use entry::main;

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on a listener of its own (`OTP_METRICS_LISTEN`), and its port.
    metrics_server: Option<(Server, u16)>,
    pool: sqlx::PgPool,
    metrics: Metrics,
    retention: Duration,
    shutdown_timeout: Duration,
    delivery: Delivery,
    client_cache: ClientCache,
    webhooks: Webhooks,
    /// Counts the fraud rules, unless `OTP_FRAUD_MODE=off`.
    detector: Option<Detector>,
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
        let shutdown_timeout = Duration::from_secs(settings.shutdown_timeout_seconds);

        settings.check_secrets().map_err(anyhow::Error::msg)?;
        if let Some(warning) = settings.check_code_strength().map_err(anyhow::Error::msg)? {
            tracing::warn!("{warning}");
        }
        let pepper: SecretString = settings.pepper.clone().context("OTP_PEPPER is required")?;
        let previous = settings.previous_peppers.clone().map(|l| l.0).unwrap_or_default();
        let peppers = Peppers::new(pepper, previous);
        let sealer = Sealer::new(&peppers);
        let pepper_report = pepper_check::check(&pool, &peppers, &sealer).await?;
        if fake_gateway.is_none() {
            crate::clients::dev_database::give_up(&pool)
                .await
                .context("could not take this database's `serve --dev` mark away")?;
        }
        let webhook_admin = WebhookAdmin::new(
            pool.clone(),
            sealer.clone(),
            crate::webhooks::url_policy(&settings.webhooks),
        );
        // For `clients set --webhook-url`, which accepts what the service accepts.
        crate::webhooks::admin::record_policy(&pool, crate::webhooks::url_policy(&settings.webhooks))
            .await
            .context("could not record the webhook URL settings")?;
        let metrics = Metrics::new();
        let hasher =
            CodeHasher::new(peppers.clone(), &settings.hashing, &metrics).map_err(anyhow::Error::msg)?;
        let senders = senders(&settings, &pool).await?;
        let gateway = WaconectaClient::new(&settings.gateway.base_url)?;
        let tasks = Tasks::current();
        let delivery = Delivery::new(
            pool.clone(),
            gateway,
            senders,
            sealer.clone(),
            tasks.clone(),
            metrics.clone(),
        );
        let limits = limit_settings(&settings);
        let policy = policy(&settings, limits.clone(), fake_gateway.is_some(), request_budget);
        let client_cache = ClientCache::new(pool.clone(), metrics.clone());
        let clients = ClientAdmin::new(
            pool.clone(),
            client_cache.clone(),
            hasher.clone(),
            crate::clients::defaults(&settings.policy),
            settings.policy.allow_weak_codes,
        );
        let otp = OtpService::new(
            pool.clone(),
            hasher,
            policy,
            delivery.clone(),
            tasks.clone(),
            metrics.clone(),
            client_cache.clone(),
        );
        let webhooks = Webhooks::new(
            pool.clone(),
            sealer,
            otp.clone(),
            crate::webhooks::egress(&settings.webhooks),
            crate::webhooks::retry_schedule(&settings.webhooks),
            metrics.clone(),
            client_cache.webhook_events(),
        )?;
        let detector = (settings.fraud.mode != FraudMode::Off).then(|| Detector {
            pool: pool.clone(),
            metrics: metrics.clone(),
            every: settings.fraud.every(),
        });
        let pool_for_sweeper = pool.clone();
        let pool_for_access = pool.clone();
        let metrics_for_sweeper = metrics.clone();
        let stats = crate::stats::Stats::new(pool.clone());
        let fraud = crate::fraud::FraudAdmin::new(pool.clone());
        let state = web::Data::new(AppState {
            operations: Operations::new(pool, ops_pool, delivery.clone()),
            otp,
            delivery: delivery.clone(),
            tasks,
            default_country: settings.policy.default_country,
            default_locale: settings.policy.default_locale,
            access: Access::new(
                pool_for_access,
                client_cache.clone(),
                limits,
                settings.admin_key.clone(),
            ),
            clients,
            webhooks: webhook_admin,
            fraud,
            fake_gateway,
            metrics,
            stats,
        });

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

        let retention = Duration::from_secs(u64::from(settings.retention_days) * 24 * 60 * 60);
        Ok(Self {
            port,
            server,
            metrics_server,
            pool: pool_for_sweeper,
            metrics: metrics_for_sweeper,
            retention,
            shutdown_timeout,
            delivery,
            client_cache,
            webhooks,
            detector,
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

    /// Serves until SIGTERM or Ctrl-C. Then, within the shutdown timeout: the
    /// dispatcher and the sweeper stop taking work at once, the server stops
    /// accepting and lets in-flight requests finish, and sends already started
    /// complete; what is still unfinished when the time is nearly up is cut
    /// short, and its messages' leases are given back for other replicas.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // The background work starts here, not in `build`: an app that was only
        // built (to check its settings, say) touches no message.
        let shutdown = CancellationToken::new();
        let dispatcher = tokio::spawn(self.delivery.clone().run(shutdown.clone()));
        let listener = tokio::spawn(self.client_cache.clone().listen(shutdown.clone()));
        let webhooks = tokio::spawn(self.webhooks.clone().run(shutdown.clone()));
        let detector = self.detector.map(|d| tokio::spawn(d.run(shutdown.clone())));
        let sweeper = tokio::spawn(retention::run(
            self.pool.clone(),
            self.retention,
            self.metrics.clone(),
            shutdown.clone(),
        ));
        let handle = self.server.handle();
        let mut server = tokio::spawn(self.server);
        if let Some((metrics, _)) = self.metrics_server {
            // Scrapes are short: it stops as soon as the service begins to.
            let (handle, stopping) = (metrics.handle(), shutdown.clone());
            tokio::spawn(async move {
                stopping.cancelled().await;
                handle.stop(false).await
            });
            tokio::spawn(metrics);
        }
        tokio::select! {
            served = &mut server => {
                shutdown.cancel();
                return Ok(served??);
            }
            _ = stop_signal() => tracing::info!("stop requested; finishing what is in flight"),
        }
        shutdown.cancel();
        let delivery = self.delivery.clone();
        let drained = tokio::time::timeout(drain_budget(self.shutdown_timeout), async move {
            tokio::join!(
                async {
                    handle.stop(true).await;
                    // After the requests, which may still start first attempts.
                    delivery.finish_first_attempts().await;
                },
                dispatcher,
                sweeper,
                listener,
                webhooks,
                async {
                    if let Some(detector) = detector {
                        let _ = detector.await;
                    }
                },
            )
        })
        .await;
        if drained.is_err() {
            tracing::warn!("the shutdown timeout is running out; cutting short what is in flight");
        }
        let release_budget = self.shutdown_timeout - drain_budget(self.shutdown_timeout);
        match tokio::time::timeout(release_budget, self.delivery.release_leases()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(messages = n, "gave back the leases of unfinished sends"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not give back leases; they run out by themselves")
            }
            Err(_) => tracing::warn!("could not give back leases in time; they run out by themselves"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The part of the shutdown timeout for finishing what is in flight; the rest
/// (a quarter, at most two seconds) is for giving back leases.
fn drain_budget(shutdown_timeout: Duration) -> Duration {
    shutdown_timeout - (shutdown_timeout / 4).min(Duration::from_secs(2))
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The gateway keys, named `sender-N` in configuration order, each with its
/// container token (for the QR page), registered in the database.
async fn senders(settings: &Settings, pool: &sqlx::PgPool) -> anyhow::Result<Senders> {
    let keys = settings
        .gateway
        .api_keys
        .clone()
        .context("WACONECTA_API_KEYS is required")?;
    let mut tokens = settings
        .gateway
        .container_tokens
        .clone()
        .map(|t| t.0)
        .unwrap_or_default()
        .into_iter();
    let senders = keys
        .0
        .into_iter()
        .enumerate()
        .map(|(i, key)| Sender::new(format!("sender-{}", i + 1), key, tokens.next()))
        .collect();
    let senders = Senders::new(
        pool.clone(),
        senders,
        settings.gateway.rate_per_minute,
        settings.gateway.burst,
    );
    senders
        .register()
        .await
        .context("could not register the gateway keys")?;
    Ok(senders)
}

fn limit_settings(settings: &Settings) -> LimitSettings {
    LimitSettings {
        phone_sends_per_hour: settings.policy.phone_sends_per_hour,
        phone_sends_per_hour_all_clients: settings.policy.phone_sends_per_hour_all_clients(),
        phone_failures_per_hour: settings.policy.phone_failures_per_hour,
        phone_failures_per_day: settings.policy.phone_failures_per_day,
        ip_requests_per_hour: settings.policy.ip_requests_per_hour,
        client_requests_per_minute: settings.policy.client_requests_per_minute,
    }
}

/// The rules as the settings give them; `dev` marks what `serve --dev` stores.
fn policy(settings: &Settings, limits: LimitSettings, dev: bool, request_budget: Duration) -> Policy {
    Policy {
        defaults: crate::clients::defaults(&settings.policy),
        send_wait: settings.send_wait(),
        dev,
        limits,
        fraud_mode: settings.fraud.mode,
        request_budget,
    }
}
