//! Removing a client with everything that is its: one transaction, under the
//! client's row lock, so that no request of it can add a row halfway.

use std::time::Duration;

use sqlx::PgPool;

use crate::domain::ClientId;
use crate::store::{Bounded, long_scan, scan_call};

/// What went with a removed client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub verifications: i64,
    /// Messages that were still waiting to be sent: never sent now.
    pub queued_messages: i64,
    pub test_numbers: i64,
    /// Webhook events not delivered yet: never delivered now.
    pub pending_webhook_events: i64,
}

statement!(LOCK_CLIENT = "select id from clients where name = $1 for update");
statement!(DELETE_IDEMPOTENCY_KEYS = "delete from idempotency_keys where client_id = $1");
statement!(
    DELETE_MESSAGES = "with gone as (delete from outbox_messages where client_id = $1 returning status)
         select count(*) filter (where status = 'queued') from gone"
);
statement!(
    DELETE_VERIFICATIONS = "with gone as (delete from verifications where client_id = $1 returning 1)
         select count(*) from gone"
);
statement!(
    DELETE_TEST_NUMBERS = "with gone as (delete from test_numbers where client_id = $1 returning 1)
         select count(*) from gone"
);
statement!(
    DELETE_WEBHOOK_EVENTS = "with gone as (delete from webhook_events where client_id = $1 returning status)
         select count(*) filter (where status = 'pending') from gone"
);
// Stats events have no reference to the client: left behind, they would stop
// the sweeper's fold into the tables that have one.
statement!(DELETE_STATS_EVENTS = "delete from stats_events where client_id = $1");
statement!(DELETE_VERIFICATION_STATS = "delete from verification_stats where client_id = $1");
statement!(DELETE_APPROVAL_TIME_STATS = "delete from approval_time_stats where client_id = $1");
// Fraud flags go by their `on delete cascade`; the trigger on `clients` tells
// every replica to drop what it holds of the client.
statement!(DELETE_CLIENT = "delete from clients where id = $1");

/// Removes the client named `name` and what is its; `None` when there is no
/// such client. Each statement may run for `limit`: a client's history can
/// be long.
pub async fn remove(pool: &PgPool, name: &str, limit: Duration) -> Result<Option<Removed>, sqlx::Error> {
    let call = scan_call(limit);
    let mut tx = long_scan(pool, limit).await?;
    let Some(id): Option<ClientId> = sqlx::query_scalar(LOCK_CLIENT)
        .bind(name)
        .fetch_optional(&mut *tx)
        .bounded_for(call)
        .await?
    else {
        return Ok(None);
    };
    let count = async |sql: &'static str, tx: &mut sqlx::PgConnection| {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(id)
            .fetch_one(tx)
            .bounded_for(call)
            .await
    };
    let queued_messages = count(DELETE_MESSAGES, &mut tx).await?;
    let verifications = count(DELETE_VERIFICATIONS, &mut tx).await?;
    let test_numbers = count(DELETE_TEST_NUMBERS, &mut tx).await?;
    let pending_webhook_events = count(DELETE_WEBHOOK_EVENTS, &mut tx).await?;
    for sql in [
        DELETE_IDEMPOTENCY_KEYS,
        DELETE_STATS_EVENTS,
        DELETE_VERIFICATION_STATS,
        DELETE_APPROVAL_TIME_STATS,
        DELETE_CLIENT,
    ] {
        sqlx::query(sql)
            .bind(id)
            .execute(&mut *tx)
            .bounded_for(call)
            .await?;
    }
    tx.commit().bounded_for(call).await?;
    Ok(Some(Removed {
        verifications,
        queued_messages,
        test_numbers,
        pending_webhook_events,
    }))
}
