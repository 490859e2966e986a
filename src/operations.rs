//! What the operations endpoints (`/metrics`, `/readyz`) read: the database's
//! health, the queue and the keys through a pool of their own (two
//! connections, so that a flood of them waits on itself and never takes a
//! connection from the API), and the API pool's own figures.

use std::time::Duration;

use sqlx::PgPool;

use crate::delivery::{Delivery, SenderStatus};
use crate::store::{self, outbox};

/// How long an operations read waits for the database: a probe wants its
/// answer fast.
pub const PATIENCE: Duration = Duration::from_secs(2);

pub struct Operations {
    /// The API's pool: only its figures are read.
    pool: PgPool,
    ops_pool: PgPool,
    delivery: Delivery,
}

/// The API pool's connections.
pub struct PoolFigures {
    pub in_use: i64,
    pub idle: i64,
    pub max: i64,
}

impl Operations {
    pub fn new(pool: PgPool, ops_pool: PgPool, delivery: Delivery) -> Self {
        Self {
            pool,
            ops_pool,
            delivery,
        }
    }

    /// Whether the database answered within `PATIENCE`.
    pub async fn database_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(PATIENCE, store::ping(&self.ops_pool)).await,
            Ok(Ok(()))
        )
    }

    /// The queue's depth and age, or `None` when the database did not answer in time.
    pub async fn queue(&self) -> Option<outbox::QueueStats> {
        tokio::time::timeout(PATIENCE, outbox::stats(&self.ops_pool))
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Each key's state, or `None` when the database did not answer in time.
    pub async fn senders(&self) -> Option<Vec<SenderStatus>> {
        let statuses = self.delivery.senders().statuses_on(&self.ops_pool);
        tokio::time::timeout(PATIENCE, statuses)
            .await
            .ok()
            .and_then(Result::ok)
    }

    pub fn connections(&self) -> PoolFigures {
        let size = i64::from(self.pool.size());
        let idle = self.pool.num_idle() as i64;
        PoolFigures {
            in_use: size - idle,
            idle,
            max: i64::from(self.pool.options().get_max_connections()),
        }
    }
}
