//! The `verifications` table: every statement that reads or writes it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{ClientId, FailureReason, MessageStatus, VerificationId, VerificationStatus};

/// Pending and not locked: a verification still waiting for its code. The one
/// place this condition is written; `$alias` names the table in a join.
macro_rules! waiting {
    () => {
        "status = 'pending' and failed_attempts < max_attempts"
    };
    ($alias:literal) => {
        concat!(
            $alias,
            ".status = 'pending' and ",
            $alias,
            ".failed_attempts < ",
            $alias,
            ".max_attempts"
        )
    };
}
pub(crate) use waiting;

/// Waiting and unexpired: a verification whose code may still be tried.
macro_rules! attemptable {
    () => {
        concat!(
            $crate::store::verifications::waiting!(),
            " and expires_at > now()"
        )
    };
}

statement!(LOCK = "select 1 from verifications where id = $1 for update");
mod requests;
pub use requests::{
    Key, NewVerification, Resendable, close_finished, insert, is_one_pending_violation, resend, resendable,
    resendable_for_update,
};

/// Locks the verification's row: every writer that also touches its messages
/// takes this lock first, so the two never deadlock.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: VerificationId) -> Result<(), sqlx::Error> {
    sqlx::query(LOCK).bind(id).execute(&mut **tx).await?;
    Ok(())
}

statement!(
    FAIL_IF_PENDING =
        "update verifications set status = 'failed', updated_at = now() where id = $1 and status = 'pending'",
);
/// Marks a pending verification `failed` (its code could not be delivered);
/// says whether it was pending.
pub async fn fail_if_pending(db: impl PgExecutor<'_>, id: VerificationId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(FAIL_IF_PENDING).bind(id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    /// A verification as the API shows it, with its current message: the select
    /// behind every read. The status is derived as a read sees it (a pending code
    /// whose time is up reads `expired`, whose attempts are used up
    /// `max_attempts_reached`), whether or not the sweeper has marked it yet.
    /// It reads the current message's state from `outbox_messages`: the only
    /// statement outside store::outbox that names that table, since a
    /// verification's answer is one read.
    SELECT_VIEW = "
select v.id, v.phone, v.purpose, v.locale,
       case
           when v.status = 'pending' and v.expires_at <= now() then 'expired'
           when v.status = 'pending' and v.failed_attempts >= v.max_attempts then 'max_attempts_reached'
           else v.status
       end as status,
       v.failed_attempts, v.max_attempts, v.sends, v.last_sent_at, v.expires_at, v.created_at, v.verified_at,
       m.status as message_status,
       coalesce(m.leased_until > now(), false) as message_leased,
       m.failure as message_failure
from verifications v
left join lateral (
    select status, leased_until, failure
    from outbox_messages
    where verification_id = v.id and status <> 'superseded'
    order by created_at desc
    limit 1
) m on true
where v.id = $1 and v.client_id = $2"
);

/// A verification and its current message, as stored.
#[derive(Debug, sqlx::FromRow)]
pub struct ViewRow {
    pub id: VerificationId,
    pub phone: String,
    pub purpose: String,
    pub locale: String,
    pub status: VerificationStatus,
    pub failed_attempts: i32,
    pub max_attempts: i32,
    pub sends: i32,
    pub last_sent_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub message_status: Option<MessageStatus>,
    pub message_leased: bool,
    /// Why the current message was given up, if it was.
    pub message_failure: Option<FailureReason>,
}

pub async fn view(
    db: impl PgExecutor<'_>,
    id: VerificationId,
    client: ClientId,
) -> Result<Option<ViewRow>, sqlx::Error> {
    sqlx::query_as(SELECT_VIEW)
        .bind(id)
        .bind(client)
        .fetch_optional(db)
        .await
}

/// An attempt, counted before its code is compared.
#[derive(Debug, sqlx::FromRow)]
pub struct Reserved {
    pub code_hash: String,
    pub phone: String,
    /// Counting this one.
    pub failed_attempts: i32,
    pub max_attempts: i32,
}

statement!(
    RESERVE_ATTEMPT = concat!(
        "update verifications set failed_attempts = failed_attempts + 1, updated_at = now()
         where id = $1 and client_id = $2 and ",
        attemptable!(),
        " returning code_hash, phone, failed_attempts, max_attempts"
    )
);
/// Counts an attempt on an attemptable verification, in the statement that
/// checks it is attemptable: parallel guesses can never pass the limit.
pub async fn reserve_attempt(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    client: ClientId,
) -> Result<Option<Reserved>, sqlx::Error> {
    sqlx::query_as(RESERVE_ATTEMPT)
        .bind(id)
        .bind(client)
        .fetch_optional(&mut **tx)
        .await
}

statement!(
    GIVE_BACK_ATTEMPT =
        "update verifications set failed_attempts = greatest(failed_attempts - 1, 0), updated_at = now()
         where id = $1 and status = 'pending'",
);
/// Undoes a reserved attempt that was never judged.
pub async fn give_back_attempt(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
) -> Result<(), sqlx::Error> {
    sqlx::query(GIVE_BACK_ATTEMPT).bind(id).execute(&mut **tx).await?;
    Ok(())
}

statement!(APPROVE = "update verifications
         set status = 'approved', verified_at = now(), failed_attempts = failed_attempts - 1, updated_at = now()
         where id = $1 and status = 'pending' and code_hash = $2 and expires_at > now()",);
/// Approves with the code that was compared (a resend since replaced it: no),
/// while it is still valid, giving its reserved attempt back. Only one
/// request can win it.
pub async fn approve(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    code_hash: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(APPROVE)
        .bind(id)
        .bind(code_hash)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    CANCEL = concat!(
        "update verifications set status = 'canceled', updated_at = now()
         where id = $1 and client_id = $2 and ",
        attemptable!()
    )
);
/// Cancels an attemptable verification; says whether it did.
pub async fn cancel(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    client: ClientId,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(CANCEL)
        .bind(id)
        .bind(client)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    PENDING_ID = "select id from verifications
         where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending' and expires_at > now()",
);
/// The pending, unexpired verification of `key` (a locked one too: verify says why).
pub async fn pending_id(
    db: impl PgExecutor<'_>,
    key: &Key<'_>,
) -> Result<Option<VerificationId>, sqlx::Error> {
    sqlx::query_scalar(PENDING_ID)
        .bind(key.client)
        .bind(key.phone)
        .bind(key.purpose)
        .fetch_optional(db)
        .await
}

/// Where a verification stands, for saying why it cannot be attempted.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct State {
    pub status: VerificationStatus,
    pub expired: bool,
    pub failed_attempts: i32,
    pub max_attempts: i32,
    /// Seconds until the code's expiry (at least 1): when a lock stops mattering.
    pub expires_in: i64,
}

statement!(
    STATE = "select status, expires_at <= now() as expired, failed_attempts, max_attempts,
                greatest(1, ceil(extract(epoch from expires_at - now())))::bigint as expires_in
         from verifications where id = $1 and client_id = $2",
);
pub async fn state(
    db: impl PgExecutor<'_>,
    id: VerificationId,
    client: ClientId,
) -> Result<Option<State>, sqlx::Error> {
    sqlx::query_as(STATE)
        .bind(id)
        .bind(client)
        .fetch_optional(db)
        .await
}

statement!(
    MARK_EXPIRED = "update verifications set status = 'expired', updated_at = now()
         where id = $1 and status = 'pending' and expires_at <= now()",
);
/// Marks one pending verification whose code expired `expired`; says whether it did.
pub async fn mark_expired(db: impl PgExecutor<'_>, id: VerificationId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(MARK_EXPIRED).bind(id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

statement!(
    EXPIRE_DUE = "update verifications set status = 'expired', updated_at = now()
         where id in (select id from verifications
                      where status = 'pending' and expires_at <= now()
                      limit $1 for update skip locked)
         returning (select name from clients c where c.id = client_id)",
);
/// Marks up to `batch` pending verifications whose code expired `expired`;
/// returns the name of each one's client.
pub async fn expire_due(db: impl PgExecutor<'_>, batch: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(EXPIRE_DUE).bind(batch).fetch_all(db).await
}

statement!(
    DELETE_FINISHED = "delete from verifications
         where id in (select id from verifications
                      where status <> 'pending' and updated_at < now() - make_interval(secs => $2)
                      limit $1 for update skip locked)",
);
/// Deletes up to `batch` verifications that finished more than `age` ago, with
/// their messages (`on delete cascade`). A finished verification never changes
/// again, so its `updated_at` is when it finished.
pub async fn delete_finished(db: impl PgExecutor<'_>, batch: i64, age: Duration) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(DELETE_FINISHED)
        .bind(batch)
        .bind(age.as_secs_f64())
        .execute(db)
        .await?
        .rows_affected())
}

statement!(
    COUNT_PENDING_UNDER_UNKNOWN_PEPPERS = "select count(*) from verifications
         where status = 'pending' and expires_at > now()
           and substring(code_hash from 'keyid=([A-Za-z0-9+/]+)') <> all($1)",
);
/// Pending verifications whose hash names a pepper id not in `known` (base64,
/// as the PHC string writes it). Hashes made before ids name none: not counted.
pub async fn count_pending_under_unknown_peppers(
    db: impl PgExecutor<'_>,
    known: &[String],
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(COUNT_PENDING_UNDER_UNKNOWN_PEPPERS)
        .bind(known)
        .fetch_one(db)
        .await
}

statement!(COUNT_NOT_MADE_BY_DEV = "select count(*) from verifications where not made_by_dev");
/// Verifications that `serve --dev` did not make.
pub async fn count_not_made_by_dev(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(COUNT_NOT_MADE_BY_DEV).fetch_one(db).await
}
