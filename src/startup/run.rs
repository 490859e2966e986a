//! Running the built application until it is told to stop, and stopping it
//! within the shutdown timeout.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Application;

impl Application {
    /// Serves until SIGTERM or Ctrl-C. Then, within the shutdown timeout: the
    /// dispatcher and the sweeper stop taking work at once, the server stops
    /// accepting and lets in-flight requests finish, and sends already started
    /// complete; what is still unfinished when the time is nearly up is cut
    /// short, and its messages' leases are given back for other replicas.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // The background work starts here, not in `build`: an app that was only
        // built (to check its settings, say) touches no message.
        let shutdown = CancellationToken::new();
        let background = self.background.spawn(&shutdown);
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
                background.ended(),
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
pub(super) fn drain_budget(shutdown_timeout: Duration) -> Duration {
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
