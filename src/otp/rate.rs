//! Request-rate windows (a client's requests per minute) spent from memory.
//!
//! The window itself is one GCRA row in PostgreSQL, shared by every replica
//! (`store::rate_cells`). A replica takes a small batch of requests from it at
//! once (half a second's worth, one for small windows) and spends the batch
//! in memory for at most `LEASE_LIFE`; once the row refuses, the replica
//! refuses from memory until the wait it was told is over. So a flood costs
//! one statement per batch, not one per request, and the window still holds
//! across replicas: every request let in was taken from the shared row. What
//! a replica took and did not spend in time is lost, so a window can let in
//! slightly fewer than its size, never more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::error::{Error, Result, Window};
use crate::store::{self, rate_cells};

/// How long a replica may hold requests it took from a window.
pub const LEASE_LIFE: Duration = Duration::from_secs(1);
const MAX_BATCH: u32 = 1000;

/// One window: `max_hits` requests per `span`, under `key`.
pub struct RateWindow {
    pub key: String,
    pub max_hits: u32,
    pub span: Duration,
    pub refusal: String,
}

/// What a replica holds of each window.
#[derive(Default)]
pub struct Leases {
    held: Mutex<HashMap<String, Lease>>,
    /// One take from the row at a time per window: callers arriving while a
    /// batch is being taken wait for it instead of each taking a batch.
    taking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Lease {
    /// The window's size when taken: a changed size drops what is held.
    max_hits: u32,
    requests: u32,
    until: Instant,
    closed_until: Option<Instant>,
}

#[derive(Debug, PartialEq)]
enum Step {
    Admit,
    Refuse(Duration),
    /// Nothing held: take this many from the shared row.
    Take(u32),
}

impl Leases {
    /// Lets one request into `window`, or answers `429 rate_limited`.
    pub async fn take(&self, pool: &PgPool, window: &RateWindow) -> Result<()> {
        let now = Instant::now();
        let first = self.with_lease(window, |lease| step(lease, window, now));
        if let Some(done) = decided(first, window) {
            return done;
        }
        let taking = self.taking_lock(&window.key);
        // The one ahead waits on the database: when it stops answering, those
        // queued behind must not each wait their turn of a call timeout.
        let Ok(_taking) = tokio::time::timeout(store::call_timeout(), taking.lock()).await else {
            return Err(store::timed_out().into());
        };
        let now = Instant::now();
        let wanted = match self.with_lease(window, |lease| step(lease, window, now)) {
            Step::Take(wanted) => wanted,
            decided_meanwhile => return decided(decided_meanwhile, window).unwrap_or(Ok(())),
        };
        let taken = rate_cells::take(pool, &window.key, window.max_hits, window.span, wanted).await?;
        let now = Instant::now();
        self.with_lease(window, |lease| record(lease, window.max_hits, &taken, now));
        taken.map(drop).map_err(|seconds| window.refused(seconds))
    }

    fn taking_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut taking = self.taking.lock().unwrap_or_else(|e| e.into_inner());
        taking.entry(key.to_owned()).or_default().clone()
    }

    fn with_lease<T>(&self, window: &RateWindow, f: impl FnOnce(&mut Option<Lease>) -> T) -> T {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mut lease = held.remove(&window.key);
        let out = f(&mut lease);
        if let Some(lease) = lease {
            held.insert(window.key.clone(), lease);
        }
        out
    }
}

/// The answer when memory decides, `None` when the row must be asked.
fn decided(step: Step, window: &RateWindow) -> Option<Result<()>> {
    match step {
        Step::Admit => Some(Ok(())),
        Step::Refuse(wait) => Some(Err(window.refused(wait.as_secs_f64()))),
        Step::Take(_) => None,
    }
}

impl RateWindow {
    fn refused(&self, seconds: f64) -> Error {
        Error::RateLimited {
            detail: format!("{}; try again later", self.refusal),
            retry_after: seconds.ceil().max(1.0) as u64,
            window: Window::ClientRequests,
        }
    }
}

/// Half a second of the window's rate: a flood takes the row twice a second,
/// and a small window is taken one request at a time, exactly.
fn batch(max_hits: u32, span: Duration) -> u32 {
    let per_second = f64::from(max_hits) / span.as_secs_f64().max(1.0);
    ((per_second / 2.0).floor() as u32).clamp(1, MAX_BATCH)
}

fn step(lease: &mut Option<Lease>, window: &RateWindow, now: Instant) -> Step {
    if lease.as_ref().is_some_and(|l| l.max_hits != window.max_hits) {
        *lease = None;
    }
    let take = Step::Take(batch(window.max_hits, window.span));
    let Some(held) = lease else {
        return take;
    };
    if let Some(closed_until) = held.closed_until {
        if closed_until > now {
            return Step::Refuse(closed_until - now);
        }
        held.closed_until = None;
    }
    if held.requests > 0 && held.until > now {
        held.requests -= 1;
        return Step::Admit;
    }
    take
}

/// Keeps what the row gave beyond this request, or when it refused, the time
/// to refuse from memory.
fn record(lease: &mut Option<Lease>, max_hits: u32, taken: &std::result::Result<u32, f64>, now: Instant) {
    let held = lease.get_or_insert(Lease {
        max_hits,
        requests: 0,
        until: now,
        closed_until: None,
    });
    match *taken {
        Ok(granted) => {
            if held.until <= now {
                held.requests = 0;
            }
            held.requests += granted.saturating_sub(1);
            held.until = now + LEASE_LIFE;
            held.closed_until = None;
        }
        Err(seconds) => {
            held.requests = 0;
            held.closed_until = Some(now + Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(max_hits: u32) -> RateWindow {
        RateWindow {
            key: "client:1".into(),
            max_hits,
            span: Duration::from_secs(60),
            refusal: "too many".into(),
        }
    }

    #[test]
    fn a_small_window_is_taken_one_request_at_a_time() {
        assert_eq!(batch(60, Duration::from_secs(60)), 1);
        assert_eq!(batch(119, Duration::from_secs(60)), 1);
        assert_eq!(batch(6000, Duration::from_secs(60)), 50);
        assert_eq!(batch(u32::MAX, Duration::from_secs(60)), MAX_BATCH);
    }

    #[test]
    fn a_batch_is_spent_from_memory_then_taken_again() {
        let now = Instant::now();
        let w = window(6000);
        let mut lease = None;
        assert_eq!(step(&mut lease, &w, now), Step::Take(50));
        record(&mut lease, 6000, &Ok(50), now);
        for _ in 0..49 {
            assert_eq!(step(&mut lease, &w, now), Step::Admit);
        }
        assert_eq!(step(&mut lease, &w, now), Step::Take(50));
    }

    #[test]
    fn what_is_held_runs_out_after_its_lease() {
        let now = Instant::now();
        let w = window(6000);
        let mut lease = None;
        record(&mut lease, 6000, &Ok(50), now);
        assert_eq!(step(&mut lease, &w, now + LEASE_LIFE), Step::Take(50));
        // Taken again: what had run out is not added to the new batch.
        record(&mut lease, 6000, &Ok(2), now + LEASE_LIFE);
        assert_eq!(step(&mut lease, &w, now + LEASE_LIFE), Step::Admit);
        assert_eq!(step(&mut lease, &w, now + LEASE_LIFE), Step::Take(50));
    }

    #[test]
    fn a_refusal_is_repeated_from_memory_until_its_wait_is_over() {
        let now = Instant::now();
        let w = window(60);
        let mut lease = None;
        record(&mut lease, 60, &Err(2.5), now);
        assert_eq!(
            step(&mut lease, &w, now + Duration::from_secs(1)),
            Step::Refuse(Duration::from_millis(1500))
        );
        assert_eq!(step(&mut lease, &w, now + Duration::from_secs(3)), Step::Take(1));
    }

    #[test]
    fn a_changed_window_size_drops_what_is_held() {
        let now = Instant::now();
        let mut lease = None;
        record(&mut lease, 6000, &Ok(50), now);
        assert_eq!(step(&mut lease, &window(60), now), Step::Take(1));
        let mut lease = None;
        record(&mut lease, 6000, &Err(30.0), now);
        assert_eq!(step(&mut lease, &window(12000), now), Step::Take(100));
    }
}
