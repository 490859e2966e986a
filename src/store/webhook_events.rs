//! The `webhook_events` outbox: claimed in order per verification, a few at a
//! time per client, and settled by the webhook worker.

use crate::store::Bounded;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

use crate::domain::{ClientId, VerificationId, WebhookEventId};

/// An event leased for one delivery attempt, with its endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: WebhookEventId,
    pub client_id: ClientId,
    pub client_name: String,
    pub verification_id: VerificationId,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// Which of its verification's sends the event tells of (a message's events).
    pub send_number: Option<i32>,
    pub payload: Option<String>,
    /// Attempts made, this one included.
    pub attempts: i32,
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub previous_secret_sealed: Option<Vec<u8>>,
}

/// Notified by `webhook_events`' trigger whenever an event is recorded.
pub const CHANNEL: &str = "otp_webhook_events";

statement!(
    CLAIM = "with picked as (
             select q.id, q.nth
             from clients c
             cross join lateral (
                 select h.id, row_number() over (order by h.next_attempt_at, h.seq) as nth
                 from (
                     select e.id, e.next_attempt_at, e.seq
                     from webhook_events e
                     where e.client_id = c.id and e.status = 'pending' and e.next_attempt_at <= now()
                       and (e.leased_until is null or e.leased_until <= now())
                       and e.seq = (select min(p.seq) from webhook_events p
                                    where p.verification_id = e.verification_id and p.status = 'pending')
                     order by e.next_attempt_at, e.seq
                     limit $3
                 ) h
             ) q
             where c.webhook_url is not null and c.webhook_disabled_at is null and not (c.id = any($2))
             order by q.nth
             limit $1
         )
         update webhook_events e
         set leased_until = now() + make_interval(secs => $4), attempts = e.attempts + 1
         from picked p, clients c
         where e.id = p.id and c.id = e.client_id and e.status = 'pending'
           and (e.leased_until is null or e.leased_until <= now())
         returning e.id, e.client_id, c.name as client_name, e.verification_id, e.type as kind, e.occurred_at,
                   e.send_number, e.payload, e.attempts, c.webhook_url as url, c.webhook_secret_sealed as secret_sealed,
                   case when c.webhook_previous_until > now() then c.webhook_previous_secret_sealed end
                       as previous_secret_sealed",
);
/// Leases up to `limit` due events for `lease`: only the first pending event
/// of each verification (so each verification's events go out in order), at
/// most `per_client` of each client, none of the clients in `busy`. Each
/// endpoint's queue is read from its head (`webhook_events_client_due`) only
/// until `per_client` events are found, so a dead endpoint's backlog, not
/// due yet, costs nothing.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    busy: &[ClientId],
    per_client: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let busy: Vec<uuid::Uuid> = busy.iter().map(|c| c.0).collect();
    sqlx::query_as(CLAIM)
        .bind(limit)
        .bind(&busy)
        .bind(per_client)
        .bind(lease.as_secs_f64())
        .fetch_all(pool)
        .bounded()
        .await
}

statement!(SET_PAYLOAD = "update webhook_events set payload = $2 where id = $1 and payload is null");
/// The body, kept from the first attempt so that every retry sends the same.
pub async fn set_payload(
    db: impl PgExecutor<'_>,
    id: WebhookEventId,
    payload: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(SET_PAYLOAD)
        .bind(id)
        .bind(payload)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    DELIVERED = "with event as (
             update webhook_events
             set status = 'delivered', delivered_at = now(), leased_until = null, last_status = $2, last_error = null
             where id = $1 and status = 'pending'
             returning client_id, verification_id, seq
         ), next as (
             update webhook_events s set next_attempt_at = now()
             from event e
             where s.verification_id = e.verification_id and s.status = 'pending' and s.seq > e.seq
               and s.next_attempt_at > now()
         )
         update clients set webhook_failing_since = null
         where id = (select client_id from event) and webhook_failing_since is not null",
);
/// A 2xx answer: delivered, the endpoint no longer failing, and the events
/// that waited behind it due at once.
pub async fn delivered(pool: &PgPool, id: WebhookEventId, status: u16) -> Result<(), sqlx::Error> {
    sqlx::query(DELIVERED)
        .bind(id)
        .bind(i32::from(status))
        .execute(pool)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    FAILED = "with event as (
             update webhook_events
             set status = case when $4::float8 is null then 'failed' else 'pending' end,
                 next_attempt_at = case when $4::float8 is null then next_attempt_at
                                        else now() + make_interval(secs => $4) end,
                 leased_until = null, last_status = $2, last_error = $3
             where id = $1 and status = 'pending'
             returning client_id, verification_id, seq, status, next_attempt_at
         ), behind as (
             update webhook_events s
             set next_attempt_at = case when e.status = 'pending' then greatest(s.next_attempt_at, e.next_attempt_at)
                                        else least(s.next_attempt_at, now()) end
             from event e
             where s.verification_id = e.verification_id and s.status = 'pending' and s.seq > e.seq
         ), marked as (
             update clients set webhook_failing_since = now()
             where id = (select client_id from event) and webhook_failing_since is null
             returning webhook_failing_since
         )
         select coalesce((select webhook_failing_since from marked),
                         (select webhook_failing_since from clients where id = (select client_id from event)))",
);
/// A failed attempt: tried again in `retry_in`, or given up (`None`). The
/// events behind it in its verification wait as long, or are due at once
/// when it is given up. Says since when the endpoint has been failing.
pub async fn failed(
    pool: &PgPool,
    id: WebhookEventId,
    status: Option<u16>,
    error: &str,
    retry_in: Option<Duration>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(FAILED)
        .bind(id)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(retry_in.map(|d| d.as_secs_f64()))
        .fetch_one(pool)
        .bounded()
        .await
}

statement!(
    DISABLE = "with endpoint as (
             update clients set webhook_disabled_at = now()
             where id = $1 and webhook_disabled_at is null
             returning id
         )
         update webhook_events set status = 'failed', leased_until = null,
                last_error = 'the endpoint was disabled after failing for a day'
         where client_id = (select id from endpoint) and status = 'pending'",
);
/// Disables the endpoint, giving up what waited for it.
pub async fn disable(pool: &PgPool, client: ClientId) -> Result<(), sqlx::Error> {
    sqlx::query(DISABLE).bind(client).execute(pool).bounded().await?;
    Ok(())
}

/// A delivery as its client sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: WebhookEventId,
    pub verification_id: VerificationId,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

statement!(
    LIST = "select id, verification_id, type as kind, occurred_at, status, attempts, last_status, last_error,
                case when status = 'pending' then next_attempt_at end as next_attempt_at, delivered_at
         from webhook_events
         where client_id = $1 and ($2::text is null or status = $2)
         order by occurred_at desc, seq desc
         limit $3",
);
/// The client's latest deliveries, newest first, of one status or all.
pub async fn list(
    db: impl PgExecutor<'_>,
    client: ClientId,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(LIST)
        .bind(client)
        .bind(status)
        .bind(limit)
        .fetch_all(db)
        .bounded()
        .await
}

statement!(
    RETRY = "update webhook_events
         set status = 'pending', attempts = 0, next_attempt_at = now(), leased_until = null
         where id = $1 and client_id = $2 and (status <> 'pending' or leased_until is null or leased_until <= now())
           and exists (select 1 from clients c where c.id = $2
                       and c.webhook_url is not null and c.webhook_disabled_at is null)
         returning id",
);
/// Tries the event again now, with a whole schedule ahead. `false` when the
/// client has no such event, it is being sent right now, or the client has
/// no enabled endpoint (it would wait for ever, and never be swept).
pub async fn retry(
    db: impl PgExecutor<'_>,
    id: WebhookEventId,
    client: ClientId,
) -> Result<bool, sqlx::Error> {
    let found: Option<WebhookEventId> = sqlx::query_scalar(RETRY)
        .bind(id)
        .bind(client)
        .fetch_optional(db)
        .bounded()
        .await?;
    Ok(found.is_some())
}

statement!(
    DELETE_OLD = "delete from webhook_events where id in (
             select id from webhook_events where status <> 'pending' and occurred_at < now() - make_interval(secs => $2)
             limit $1)",
);
/// Settled events older than `age` (the retention sweep).
pub async fn delete_old(db: impl PgExecutor<'_>, batch: i64, age: Duration) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(DELETE_OLD)
        .bind(batch)
        .bind(age.as_secs_f64())
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected())
}
