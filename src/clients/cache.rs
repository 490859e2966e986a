//! Clients by API key, and their test numbers, kept in memory so that a
//! request is authenticated and looked up without a statement.
//!
//! Every change to `clients` or `test_numbers` is told by a trigger on the
//! channel `otp_clients_changed` (V7__fast_refusals.sql); the replica's
//! `LISTEN` hub (`store::notifications`) tells the cache, which drops what it
//! holds, so a revocation or a new setting applies everywhere within moments
//! of its commit. Memory is trusted only while the hub listens; without it
//! (PostgreSQL down, the connection lost) every request reads its client
//! again. What is held is also read again after `MAX_AGE`, in case a
//! notification was lost in a way the connection did not show. The resend
//! cooldowns are held here too, and dropped with the clients (a client's
//! settings decide them); they hear of finished verifications on their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use chrono::Utc;

use super::{Client, key_hash};
use crate::domain::ClientId;
use crate::fraud::{Lists, StandingFlag};
use crate::metrics::Metrics;
use crate::otp::cooldowns::Cooldowns;
use crate::store::clients as store;
use crate::store::notifications::Subscriber;
use crate::store::test_numbers::{self, ActiveTestNumber};

pub const CHANNEL: &str = "otp_clients_changed";
const MAX_AGE: Duration = Duration::from_secs(5);
/// Past this many clients held, memory starts again from nothing.
const MAX_HELD: usize = 10_000;

#[derive(Clone)]
pub struct ClientCache {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    metrics: Metrics,
    /// Dropped with the clients, and at every finished verification.
    cooldowns: Arc<Cooldowns>,
    held: Mutex<Held>,
    /// Moves at every drop: what was read before it is not kept after it.
    epoch: AtomicU64,
    listening: AtomicBool,
}

#[derive(Default)]
struct Held {
    by_key: HashMap<Vec<u8>, (Client, Instant)>,
    test_numbers: HashMap<ClientId, (Arc<Vec<ActiveTestNumber>>, Instant)>,
    /// The operators' allowed and blocked prefixes, blocked countries and
    /// networks (one list for all clients).
    fraud_lists: Option<(Arc<Lists>, Instant)>,
    /// The fraud detector's standing flags.
    flags: Option<(Arc<Vec<StandingFlag>>, Instant)>,
}

impl ClientCache {
    pub fn new(pool: PgPool, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                metrics,
                cooldowns: Arc::default(),
                held: Mutex::default(),
                epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
            }),
        }
    }

    /// The active client holding `key`, from memory when it may be trusted.
    /// Unknown keys are not held, so guessing keys cannot fill memory.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Client>, sqlx::Error> {
        let hash = key_hash(key);
        if let Some(client) = self.inner.recall(|held| held.by_key.get(&hash)) {
            return Ok(Some(client));
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let read_at = Instant::now();
        let client = store::by_key_hash(&self.inner.pool, &hash)
            .await?
            .map(Client::from);
        if let Some(client) = &client {
            self.inner
                .keep(epoch, |held| held.by_key.insert(hash, (client.clone(), read_at)));
        }
        Ok(client)
    }

    /// The hash of the fixed code if `phone` is one of the client's test
    /// numbers now: each client's active test numbers are held together.
    pub async fn test_number(&self, client: ClientId, phone: &str) -> Result<Option<String>, sqlx::Error> {
        let numbers = self
            .remembered(
                |held| held.test_numbers.get(&client),
                test_numbers::active(&self.inner.pool, client),
                |held, numbers| {
                    held.test_numbers.insert(client, numbers);
                },
            )
            .await?;
        let now = Utc::now();
        Ok(numbers
            .iter()
            .find(|n| n.phone == phone && n.until > now)
            .map(|n| n.code_hash.clone()))
    }

    /// The operators' fraud lists, from memory when it may be trusted: a
    /// change reaches every replica by notification, as a client's does.
    pub async fn fraud_lists(&self) -> Result<Arc<Lists>, sqlx::Error> {
        self.remembered(
            |held| held.fraud_lists.as_ref(),
            crate::fraud::lists(&self.inner.pool),
            |held, lists| held.fraud_lists = Some(lists),
        )
        .await
    }

    /// The fraud detector's standing flags, held as the prefixes are.
    pub async fn fraud_flags(&self) -> Result<Arc<Vec<StandingFlag>>, sqlx::Error> {
        self.remembered(
            |held| held.flags.as_ref(),
            crate::fraud::standing_flags(&self.inner.pool),
            |held, flags| held.flags = Some(flags),
        )
        .await
    }

    /// What `find` holds, while it may be trusted; else `read` from the
    /// database, and held with `put` unless a change was told meanwhile.
    async fn remembered<T>(
        &self,
        find: impl FnOnce(&Held) -> Option<&(Arc<T>, Instant)>,
        read: impl Future<Output = Result<T, sqlx::Error>>,
        put: impl FnOnce(&mut Held, (Arc<T>, Instant)),
    ) -> Result<Arc<T>, sqlx::Error> {
        if let Some(held) = self.inner.recall(find) {
            return Ok(held);
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let read_at = Instant::now();
        let value = Arc::new(read.await?);
        self.inner.keep(epoch, |held| put(held, (value.clone(), read_at)));
        Ok(value)
    }

    /// The pending verifications this replica remembers (`otp::cooldowns`),
    /// trusted while it listens.
    pub fn cooldowns(&self) -> &Arc<Cooldowns> {
        &self.inner.cooldowns
    }

    /// Forgets every client: the next request of each reads it again.
    pub fn drop_all(&self) {
        self.inner.cooldowns.drop_all();
        let mut held = self.inner.lock();
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        *held = Held::default();
        self.inner.metrics.client_cache_drops.inc();
    }
}

/// Subscribed to `CHANNEL`: any change to a client or its test numbers drops all.
impl Subscriber for ClientCache {
    fn told(&self, _channel: &str) {
        self.drop_all();
    }

    /// Either way what is held is dropped: changes may have gone unheard.
    fn listening(&self, listening: bool) {
        self.drop_all();
        self.inner.listening.store(listening, Ordering::Release);
        self.inner
            .metrics
            .client_cache_listening
            .set(i64::from(listening));
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `find` finds in memory, if memory may be trusted and it is recent.
    fn recall<T: Clone>(&self, find: impl FnOnce(&Held) -> Option<&(T, Instant)>) -> Option<T> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let held = self.lock();
        find(&held)
            .filter(|(_, read_at)| read_at.elapsed() < MAX_AGE)
            .map(|(value, _)| value.clone())
    }

    /// Keeps what was read since `epoch`, unless a change was told meanwhile:
    /// compared under the lock that `drop_all` takes, so the change wins.
    fn keep<T>(&self, epoch: u64, put: impl FnOnce(&mut Held) -> T) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        let mut held = self.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if held.by_key.len() >= MAX_HELD || held.test_numbers.len() >= MAX_HELD {
            *held = Held::default();
        }
        put(&mut held);
    }
}
