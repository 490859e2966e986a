//! Housekeeping, the service's background sweep: pending verifications whose
//! time is up become `expired`, and rows that have served their purpose are
//! deleted, each with the store's typed delete of its table.
//!
//! Every statement touches at most `BATCH` rows, picked with `for update skip
//! locked`: it holds its locks for milliseconds, never waits on a request, and
//! replicas sweeping at the same time split the work instead of queueing.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{idempotency, limits, senders, stats, test_numbers, verifications, webhook_events};

/// Rows per statement.
const BATCH: i64 = 500;
/// Statements per table and sweep: a large backlog is worked off over several
/// sweeps, so one sweep never runs for long nor delays a stop.
const MAX_BATCHES: u32 = 20;
/// Expiring is what `GET /otp/{id}` and the counts show, so it runs often.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);
/// Deleting old rows can wait.
const DELETE_EVERY: Duration = Duration::from_secs(60);
/// The longest sliding window of the request limits.
const LIMIT_HITS_KEPT: Duration = crate::otp::limits::LONGEST_WINDOW;
/// An ended test number is listed (as ended) this long, for an operator to
/// see what ended, then deleted.
pub const ENDED_TEST_NUMBERS_KEPT: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub expired: u64,
    /// Stats events folded into their rolled-up rows.
    pub stats_events_folded: u64,
    pub verifications_deleted: u64,
    pub sender_sends_deleted: u64,
    pub limit_hits_deleted: u64,
    pub idempotency_keys_deleted: u64,
    pub webhook_events_deleted: u64,
    pub test_numbers_deleted: u64,
}

/// Sweeps until `shutdown`. A failed sweep (the database is down, say) is
/// logged and tried again at the next tick.
pub async fn run(pool: PgPool, retention: Duration, metrics: Metrics, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EXPIRE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deletes_every = (DELETE_EVERY.as_secs() / EXPIRE_EVERY.as_secs()).max(1);
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let result = async {
            for (client, n) in expire_pending(&pool).await? {
                metrics.verifications_by(&client, "expired", n);
            }
            // After expiring, so that what it counted is folded in the same tick.
            fold_stats(&pool).await?;
            // The first deletes come a `DELETE_EVERY` after the start, not at
            // once: tests that seed old rows and sweep them themselves raced
            // a replica's first sweep under load (its deletes waited nowhere).
            if (round + 1).is_multiple_of(deletes_every) {
                let deleted = delete_old(&pool, retention).await?;
                if deleted != Swept::default() {
                    tracing::info!(?deleted, "retention sweep");
                }
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "retention sweep failed; trying again later");
        }
        round = round.wrapping_add(1);
    }
}

/// One full sweep: expire, fold the stats, then delete what is past its
/// keeping time. The deleted verifications' figures are in the rolled-up
/// rows by then (their events were written when each fact happened).
pub async fn sweep(pool: &PgPool, retention: Duration) -> Result<Swept, sqlx::Error> {
    let expired = expire_pending(pool).await?.values().sum();
    let stats_events_folded = fold_stats(pool).await?;
    Ok(Swept {
        expired,
        stats_events_folded,
        ..delete_old(pool, retention).await?
    })
}

/// Folds the stats events into their rolled-up rows, so that reads add up
/// few events; a backlog is worked off over several ticks.
pub async fn fold_stats(pool: &PgPool) -> Result<u64, sqlx::Error> {
    in_batches(|batch| stats::fold(pool, batch)).await
}

/// Deletes what is past its keeping time.
async fn delete_old(pool: &PgPool, retention: Duration) -> Result<Swept, sqlx::Error> {
    Ok(Swept {
        expired: 0,
        stats_events_folded: 0,
        verifications_deleted: delete_finished(pool, retention).await?,
        sender_sends_deleted: delete_old_sender_sends(pool).await?,
        limit_hits_deleted: delete_old_limit_hits(pool).await?,
        idempotency_keys_deleted: delete_old_idempotency_keys(pool).await?,
        webhook_events_deleted: in_batches(|batch| webhook_events::delete_old(pool, batch, retention))
            .await?,
        test_numbers_deleted: in_batches(|batch| {
            test_numbers::delete_ended(pool, batch, ENDED_TEST_NUMBERS_KEPT)
        })
        .await?,
    })
}

/// Marks pending verifications whose code has expired `expired`, as a read
/// already shows them. A locked one (attempts used up) reads
/// `max_attempts_reached` until it expires, and `expired` after: the same here.
/// Returns how many, by client name.
pub async fn expire_pending(pool: &PgPool) -> Result<BTreeMap<String, u64>, sqlx::Error> {
    let mut by_client = BTreeMap::new();
    for _ in 0..MAX_BATCHES {
        let clients = verifications::expire_due(pool, BATCH).await?;
        let done = clients.len();
        for client in clients {
            *by_client.entry(client).or_default() += 1;
        }
        if done < BATCH as usize {
            break;
        }
    }
    Ok(by_client)
}

/// Deletes verifications that finished more than `retention` ago, with their
/// messages. A verification's `updated_at` is set at every change but an
/// attempt's count, and a finished one never changes again, so it is when it
/// finished; one that
/// expired while pending finishes when it is marked, at most a sweep after
/// its expiry.
pub async fn delete_finished(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    in_batches(|batch| verifications::delete_finished(pool, batch, retention)).await
}

/// Deletes the per-key send records older than the rate window needs.
pub async fn delete_old_sender_sends(pool: &PgPool) -> Result<u64, sqlx::Error> {
    in_batches(|batch| senders::delete_old_sends(pool, batch)).await
}

/// Deletes the hits of the request limits older than their longest window
/// (each take also clears its own bucket; this catches buckets seen no more).
pub async fn delete_old_limit_hits(pool: &PgPool) -> Result<u64, sqlx::Error> {
    in_batches(|batch| limits::delete_older_than(pool, batch, LIMIT_HITS_KEPT)).await
}

/// Deletes the `Idempotency-Key` records older than 24 h.
pub async fn delete_old_idempotency_keys(pool: &PgPool) -> Result<u64, sqlx::Error> {
    in_batches(|batch| idempotency::delete_expired(pool, batch)).await
}

/// Runs `statement` (given the batch size) until it touches less than a batch,
/// or `MAX_BATCHES` ran. Each statement is its own transaction.
async fn in_batches<F, Fut>(statement: F) -> Result<u64, sqlx::Error>
where
    F: Fn(i64) -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let done = statement(BATCH).await?;
        total += done;
        if done < BATCH as u64 {
            break;
        }
    }
    Ok(total)
}
