//! Time limits on the database, so that a database that stops answering (a
//! black-holed route, a frozen primary) is a prompt `503`, never a hang.
//!
//! Three layers: PostgreSQL cancels a statement that runs longer than the
//! statement timeout (and probes an idle client's socket: sqlx 0.9 cannot set
//! keepalive on its own socket, so the server is asked to); every call of the
//! store gives up waiting after the call timeout, which catches what the
//! server cannot (bytes that never arrive); and a connection given up on is
//! closed when it returns to the pool, not kept with an answer still owed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::Map;
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::time::Timeout;
use tokio::time::error::Elapsed;

/// The database's time limits, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// PostgreSQL's `statement_timeout` on every connection of the pools.
    pub statement: Duration,
    /// How long a call waits for a connection and its statement's answer.
    pub call: Duration,
    /// Idle time after which PostgreSQL probes a connection's socket.
    pub keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            statement: Duration::from_millis(5000),
            call: Duration::from_millis(6000),
            keepalive: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The options every pooled connection starts with, in its startup
    /// message (no round trip of their own).
    pub(super) fn apply(&self, options: PgConnectOptions) -> PgConnectOptions {
        let idle = self.keepalive.as_secs().max(1);
        options.options([
            ("statement_timeout", self.statement.as_millis().to_string()),
            ("tcp_keepalives_idle", idle.to_string()),
            ("tcp_keepalives_interval", (idle / 3).max(1).to_string()),
            ("tcp_keepalives_count", "3".to_owned()),
        ])
    }
}

/// The call timeout in milliseconds. One per process: every pool of a
/// process is built from the same settings, and the store's calls (which take
/// any executor: a pool, a transaction, a connection) cannot carry it.
static CALL_TIMEOUT_MS: AtomicU64 = AtomicU64::new(6000);

pub(super) fn set_call_timeout(limit: Duration) {
    CALL_TIMEOUT_MS.store(limit.as_millis().max(1) as u64, Ordering::Relaxed);
}

/// How long one call of the store waits for the database.
pub fn call_timeout() -> Duration {
    Duration::from_millis(CALL_TIMEOUT_MS.load(Ordering::Relaxed))
}

/// What a call that ran out of time fails with: an I/O error, as a dropped
/// connection is, so that every caller treats it as the outage it is.
pub fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the database did not answer within {} ms (OTP_DB_CALL_TIMEOUT_MS)",
            call_timeout().as_millis()
        ),
    ))
}

type Flatten<T> = fn(Result<Result<T, sqlx::Error>, Elapsed>) -> Result<T, sqlx::Error>;

/// A call of the database that gives up after `call_timeout()`.
pub trait Bounded<T>: Future<Output = Result<T, sqlx::Error>> + Sized {
    fn bounded(self) -> Map<Timeout<Self>, Flatten<T>> {
        self.bounded_for(call_timeout())
    }

    /// The same with a limit of its own: a scan in a `long_scan` transaction.
    fn bounded_for(self, limit: Duration) -> Map<Timeout<Self>, Flatten<T>> {
        tokio::time::timeout(limit, self).map(flatten as Flatten<T>)
    }
}

statement!(SET_STATEMENT_TIMEOUT = "select set_config('statement_timeout', $1, true)");

/// A transaction whose statements may each run for `limit`, longer than the
/// statement timeout that bounds a request's: for the background scans over
/// a day or two weeks of verifications (the fraud detector's counts), which
/// would otherwise be cancelled at every pass on a busy database. Its calls
/// use `bounded_for(scan_call(limit))`.
pub async fn long_scan(
    pool: &PgPool,
    limit: Duration,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut scan = pool.begin().bounded().await?;
    sqlx::query(SET_STATEMENT_TIMEOUT)
        .bind(limit.as_millis().to_string())
        .execute(&mut *scan)
        .bounded()
        .await?;
    Ok(scan)
}

/// How long a call in a `long_scan` of `limit` waits: the server's own limit
/// and a call timeout more, so that the server's cancel is what ends it.
pub fn scan_call(limit: Duration) -> Duration {
    limit + call_timeout()
}

impl<T, F: Future<Output = Result<T, sqlx::Error>>> Bounded<T> for F {}

fn flatten<T>(outcome: Result<Result<T, sqlx::Error>, Elapsed>) -> Result<T, sqlx::Error> {
    outcome.unwrap_or_else(|_| Err(timed_out()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_fails_as_an_outage_after_the_call_timeout() {
        let never = std::future::pending::<Result<(), sqlx::Error>>();
        let started = tokio::time::Instant::now();
        let outcome = never.bounded().await;
        assert!(matches!(outcome, Err(sqlx::Error::Io(ref e)) if e.kind() == std::io::ErrorKind::TimedOut));
        assert!(started.elapsed() >= call_timeout());
        // The service answers it as the outage it is: 503, never 500.
        assert!(matches!(
            crate::error::Error::from(timed_out()),
            crate::error::Error::Unavailable { .. }
        ));
        assert!(
            async { Ok::<_, sqlx::Error>(7) }
                .bounded()
                .await
                .is_ok_and(|n| n == 7)
        );
    }

    #[test]
    fn every_connection_starts_with_the_statement_timeout_and_keepalive() {
        let limits = Limits {
            statement: Duration::from_millis(1500),
            call: Duration::from_secs(2),
            keepalive: Duration::from_secs(30),
        };
        let options = limits.apply(PgConnectOptions::new());
        let startup = options.get_options().unwrap();
        for wanted in [
            "statement_timeout=1500",
            "tcp_keepalives_idle=30",
            "tcp_keepalives_interval=10",
            "tcp_keepalives_count=3",
        ] {
            assert!(startup.contains(wanted), "{startup}");
        }
    }
}
