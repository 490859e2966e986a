//! The loops a replica runs beside its HTTP server: the dispatcher, the one
//! `LISTEN` hub, the webhook worker, the fraud detector and the sweeper.
//! Built with the application, started by `run_until_stopped`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clients::cache::{self, ClientCache};
use crate::delivery::Delivery;
use crate::fraud::detect::Detector;
use crate::metrics::Metrics;
use crate::otp::cooldowns::FINISHED_CHANNEL;
use crate::retention;
use crate::store::notifications::Notifications;
use crate::webhooks::{self, Webhooks};

pub(super) struct Background {
    pub delivery: Delivery,
    pub notifications: Notifications,
    pub webhooks: Webhooks,
    /// Counts the fraud rules, unless `OTP_FRAUD_MODE=off`.
    pub detector: Option<Detector>,
    pub sweeper: Sweeper,
}

/// What the retention sweep needs.
pub(super) struct Sweeper {
    pub pool: PgPool,
    pub retention: Duration,
    pub metrics: Metrics,
}

/// The loops, started; each ends soon after the shutdown token is cancelled.
pub(super) struct Running(Vec<JoinHandle<()>>);

impl Background {
    pub fn spawn(self, shutdown: &CancellationToken) -> Running {
        let Sweeper {
            pool,
            retention,
            metrics,
        } = self.sweeper;
        let mut loops = vec![
            tokio::spawn(self.delivery.run(shutdown.clone())),
            tokio::spawn(self.notifications.run(shutdown.clone())),
            tokio::spawn(self.webhooks.run(shutdown.clone())),
            tokio::spawn(retention::run(pool, retention, metrics, shutdown.clone())),
        ];
        loops.extend(self.detector.map(|d| tokio::spawn(d.run(shutdown.clone()))));
        Running(loops)
    }
}

impl Running {
    /// Once every loop has ended.
    pub async fn ended(self) {
        for running in self.0 {
            let _ = running.await;
        }
    }
}

/// The replica's one `LISTEN` connection, and who hears what on it: the
/// client cache and the resend cooldowns (its memory) and the webhook
/// worker's wake-up, so webhooks cost no connection of their own.
pub(super) fn notifications(
    pool: &PgPool,
    clients: &ClientCache,
    webhook_events: Arc<Notify>,
) -> Notifications {
    let mut hub = Notifications::new(pool.clone());
    hub.subscribe(&[cache::CHANNEL], Arc::new(clients.clone()));
    hub.subscribe(&[FINISHED_CHANNEL], clients.cooldowns().clone());
    hub.subscribe(&[webhooks::CHANNEL], webhook_events);
    hub
}
