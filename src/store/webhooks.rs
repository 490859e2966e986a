//! Webhook endpoints (columns of `clients`) and the events they are told of
//! (`webhook_events`, written by the statement of each change: see
//! `store::transitions`).

use crate::store::Bounded;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

use crate::domain::{ClientId, Transition, VerificationId, events_for};

statement!(
    SET_ENDPOINT = "with old as (
             select id, webhook_url, webhook_disabled_at from clients where name = $1 and revoked_at is null
         ), endpoint as (
             update clients c
             set webhook_url = $2, webhook_secret_sealed = coalesce(c.webhook_secret_sealed, $3),
                 webhook_disabled_at = null, webhook_failing_since = null
             from old where c.id = old.id
             returning c.webhook_secret_sealed = $3 as made
         ), given_up as (
             update webhook_events
             set status = 'failed', leased_until = null,
                 last_error = case when old.webhook_url is null then 'the webhook URL was cleared'
                                   when old.webhook_disabled_at is not null
                                       then 'the endpoint was disabled after failing for a day'
                                   else 'the webhook URL changed: the new one hears only of what happens after it was set' end
             from old
             where webhook_events.client_id = old.id and webhook_events.status = 'pending'
               and (old.webhook_url is distinct from $2 or old.webhook_disabled_at is not null)
         )
         select made from endpoint",
);
/// Points the client's webhook at `url` (enabling it again if it was
/// disabled). A new URL hears only of what happens from now on: the events
/// still waiting for the previous one are given up (setting the same URL of
/// an enabled endpoint again keeps them). A client without a secret gets
/// `new_secret`: `Some(true)` then, `Some(false)` when it kept its own,
/// `None` when there is no such client.
pub async fn set_endpoint(
    db: impl PgExecutor<'_>,
    client: &str,
    url: &str,
    new_secret: &[u8],
) -> Result<Option<bool>, sqlx::Error> {
    sqlx::query_scalar(SET_ENDPOINT)
        .bind(client)
        .bind(url)
        .bind(new_secret)
        .fetch_optional(db)
        .bounded()
        .await
}

statement!(
    CLEAR_ENDPOINT = "with endpoint as (
             update clients
             set webhook_url = null, webhook_secret_sealed = null, webhook_previous_secret_sealed = null,
                 webhook_previous_until = null, webhook_disabled_at = null, webhook_failing_since = null
             where name = $1 and revoked_at is null
             returning id
         ), given_up as (
             update webhook_events set status = 'failed', leased_until = null,
                    last_error = 'the webhook URL was cleared'
             where client_id = (select id from endpoint) and status = 'pending'
         )
         select count(*) from endpoint",
);
/// No more webhooks for the client; its secrets are forgotten, and the events
/// that waited for it are given up (listed as `failed`, and swept with the
/// rest): none waits for a URL set later.
pub async fn clear_endpoint(db: impl PgExecutor<'_>, client: &str) -> Result<bool, sqlx::Error> {
    let cleared: i64 = sqlx::query_scalar(CLEAR_ENDPOINT)
        .bind(client)
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(cleared == 1)
}

statement!(
    ROTATE_SECRET = "update clients
         set webhook_previous_secret_sealed = webhook_secret_sealed,
             webhook_previous_until = now() + make_interval(secs => $3),
             webhook_secret_sealed = $2
         where name = $1 and revoked_at is null and webhook_url is not null",
);
/// A new secret; the current one goes on signing for `overlap`. `false`
/// when the client has no webhook (or does not exist).
pub async fn rotate_secret(
    db: impl PgExecutor<'_>,
    client: &str,
    new_secret: &[u8],
    overlap: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(ROTATE_SECRET)
        .bind(client)
        .bind(new_secret)
        .bind(overlap.as_secs_f64())
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A client's webhook as operators see it (never its secrets).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub url: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

statement!(
    ENDPOINT = "select webhook_url as url,
                case when webhook_previous_until > now() then webhook_previous_until end as previous_secret_until,
                webhook_failing_since as failing_since, webhook_disabled_at as disabled_at
         from clients where name = $1",
);
pub async fn endpoint(db: impl PgExecutor<'_>, client: &str) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(ENDPOINT)
        .bind(client)
        .fetch_optional(db)
        .bounded()
        .await
}

statement!(
    SECRETS_BY_PEPPER = concat!(
        "select key_id, count(*) from (
             select ",
        sealed_key_id!("webhook_secret_sealed"),
        " as key_id from clients where webhook_secret_sealed is not null
             union all
             select ",
        sealed_key_id!("webhook_previous_secret_sealed"),
        " from clients
             where webhook_previous_secret_sealed is not null and webhook_previous_until > now()
         ) secrets group by key_id"
    )
);
/// Webhook signing secrets by the key id of the pepper they are sealed
/// under: each client's, and a previous one while it still signs.
pub async fn secrets_by_pepper(db: impl PgExecutor<'_>) -> Result<Vec<super::SealKeyCount>, sqlx::Error> {
    sqlx::query_as(SECRETS_BY_PEPPER).fetch_all(db).bounded().await
}

/// A client's sealed secrets as stored, for re-sealing them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SealedSecrets {
    pub id: ClientId,
    pub name: String,
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
    /// Whether the previous one still signs (its rotation's day is not over).
    pub previous_signs: bool,
}

statement!(
    SECRETS_NOT_SEALED_WITH = "select id, name, webhook_secret_sealed as current,
                webhook_previous_secret_sealed as previous,
                coalesce(webhook_previous_until > now(), false) as previous_signs
         from clients
         where webhook_secret_sealed is not null
           and (substring(webhook_secret_sealed from 1 for length($1::bytea)) <> $1::bytea
                or (webhook_previous_until > now()
                    and substring(webhook_previous_secret_sealed from 1 for length($1::bytea)) <> $1::bytea))",
);
/// Clients whose secret, or previous secret still signing, does not start
/// with `prefix` (what the current pepper's sealed texts start with).
pub async fn secrets_not_sealed_with(
    db: impl PgExecutor<'_>,
    prefix: &[u8],
) -> Result<Vec<SealedSecrets>, sqlx::Error> {
    sqlx::query_as(SECRETS_NOT_SEALED_WITH)
        .bind(prefix)
        .fetch_all(db)
        .bounded()
        .await
}

statement!(
    RESEAL = "update clients set webhook_secret_sealed = $4, webhook_previous_secret_sealed = $5
         where id = $1 and webhook_secret_sealed = $2
           and webhook_previous_secret_sealed is not distinct from $3",
);
/// Replaces a client's sealed secrets by the same secrets sealed anew, if
/// they are still `was` (current, previous): `false` when they changed
/// meanwhile (another replica re-sealed them, or an operator set new ones).
pub async fn reseal(
    db: impl PgExecutor<'_>,
    client: ClientId,
    was: (&[u8], Option<&[u8]>),
    now: (&[u8], Option<&[u8]>),
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(RESEAL)
        .bind(client)
        .bind(was.0)
        .bind(was.1)
        .bind(now.0)
        .bind(now.1)
        .execute(db)
        .bounded()
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    RECORD = concat!(
        "with decided as (select $1::uuid as client_id, $2::uuid as verification_id, $3::text as event,
                                 $4::bool as once, null::integer as send_number)",
        crate::store::transitions::record_events!("decided"),
        " select 1"
    )
);
/// Records the event of a transition that changes no status (a verification
/// whose attempts ran out), as the statements that change one record theirs.
pub async fn record(
    db: impl PgExecutor<'_>,
    client: ClientId,
    verification: VerificationId,
    transition: Transition,
) -> Result<(), sqlx::Error> {
    let Some(event) = events_for(transition) else {
        return Ok(());
    };
    sqlx::query(RECORD)
        .bind(client)
        .bind(verification)
        .bind(event.as_str())
        .bind(event.once())
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    RECORD_URL_POLICY = "insert into webhook_url_policy (allow_http, allow_private) values ($1, $2)
         on conflict (only_row) do update
         set allow_http = excluded.allow_http, allow_private = excluded.allow_private, recorded_at = now()",
);
/// Records which webhook URLs the starting replica accepts.
pub async fn record_url_policy(
    db: impl PgExecutor<'_>,
    allow_http: bool,
    allow_private: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(RECORD_URL_POLICY)
        .bind(allow_http)
        .bind(allow_private)
        .execute(db)
        .bounded()
        .await
        .map(|_| ())
}

statement!(URL_POLICY = "select allow_http, allow_private from webhook_url_policy");
/// `(allow_http, allow_private)` as the replica started last recorded them;
/// `None` before any has started on this database.
pub async fn url_policy(db: impl PgExecutor<'_>) -> Result<Option<(bool, bool)>, sqlx::Error> {
    sqlx::query_as(URL_POLICY).fetch_optional(db).bounded().await
}
