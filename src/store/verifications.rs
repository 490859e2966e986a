//! The `verifications` table: every statement that reads or writes it.
//!
//! The SQL functions it calls, and the migration holding each one's live
//! definition: `reserve_attempt` (V23); `verification_waiting`,
//! `verification_attemptable` (V17); `take_limit_slot_in` (V12).

use crate::store::Bounded;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{Channel, ClientId, FailureReason, MessageStatus, VerificationId, VerificationStatus};

/// Pending and not locked: a verification still waiting for its code
/// (`verification_waiting`, V17, the one place it is written); `$alias`
/// names the table in a join.
macro_rules! waiting {
    () => {
        "verification_waiting(status, failed_attempts, max_attempts)"
    };
    ($alias:literal) => {
        concat!(
            "verification_waiting(",
            $alias,
            ".status, ",
            $alias,
            ".failed_attempts, ",
            $alias,
            ".max_attempts)"
        )
    };
}
pub(crate) use waiting;

/// Waiting and unexpired: a verification whose code may still be tried
/// (`verification_attemptable`, V17, which `reserve_attempt` calls too).
macro_rules! attemptable {
    () => {
        "verification_attemptable(status, failed_attempts, max_attempts, expires_at)"
    };
}

statement!(LOCK = "select 1 from verifications where id = $1 for update");
mod attempts;
mod ends;
mod requests;
mod resends;
pub use attempts::{Reservation, Reserved, State, give_back_attempt, reserve_attempt, state};
pub use ends::{approve, approve_without_code, cancel, expire_due, fail_if_pending, mark_expired};
pub use requests::{
    Found, KeptCode, Key, NewVerification, Resendable, close_finished_and_lock_resendable, insert,
    insert_with_message, is_one_pending_violation, resendable_and_waits,
};
pub use resends::{ResendCode, forget_kept_code, resend};

/// Locks the verification's row: every writer that also touches its messages
/// takes this lock first, so the two never deadlock.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: VerificationId) -> Result<(), sqlx::Error> {
    sqlx::query(LOCK).bind(id).execute(&mut **tx).bounded().await?;
    Ok(())
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
       v.updated_at, v.channel,
       case when $3 then array(select id from outbox_messages
                               where verification_id = v.id order by created_at)
            else '{}' end as send_ids,
       case when $3 then array(select coalesce(sent_at, created_at) from outbox_messages
                               where verification_id = v.id order by created_at)
            else '{}' end as send_times,
       m.status as message_status,
       coalesce(m.leased_until > now(), false) as message_leased,
       m.failure as message_failure,
       case when m.status = 'queued' and v.status = 'pending' and v.expires_at > now()
                 and m.estimated_send_at is not null
            then greatest(m.estimated_send_at, now()) end as estimated_send_at
from verifications v
left join lateral (
    select status, leased_until, failure, estimated_send_at
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
    pub updated_at: DateTime<Utc>,
    /// The channel asked for through `/twilio`, if it was.
    pub channel: Option<Channel>,
    /// Each of its sends (resends included): the message's id, and when it
    /// went out (or was queued, if it has not); empty unless asked for.
    pub send_ids: Vec<uuid::Uuid>,
    pub send_times: Vec<DateTime<Utc>>,
    pub message_status: Option<MessageStatus>,
    pub message_leased: bool,
    /// Why the current message was given up, if it was.
    pub message_failure: Option<FailureReason>,
    /// While the current message waits for a pending verification: when it
    /// should go out, as admission estimated it, or now once that has passed
    /// (`None` for a message queued before estimates were stored).
    pub estimated_send_at: Option<DateTime<Utc>>,
}

/// The verification `id` of `client`, as the API shows it; with `sends`,
/// each of its sends too (only `/twilio` shows them: the native API's
/// answers do not read them).
pub async fn view(
    db: impl PgExecutor<'_>,
    id: VerificationId,
    client: ClientId,
    sends: bool,
) -> Result<Option<ViewRow>, sqlx::Error> {
    sqlx::query_as(SELECT_VIEW)
        .bind(id)
        .bind(client)
        .bind(sends)
        .fetch_optional(db)
        .bounded()
        .await
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
        .bounded()
        .await
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
        .bounded()
        .await?
        .rows_affected())
}

statement!(
    PENDING_BY_PEPPER = "select substring(code_hash from 'keyid=([A-Za-z0-9+/]+)') as key_id, count(*)
         from verifications where status = 'pending' and expires_at > now() group by 1",
);
/// Pending verifications (whose code may still be typed) by the key id of
/// the pepper their hash names (base64, as the PHC string writes it; `None`
/// for hashes made before key ids).
pub async fn pending_by_pepper(db: impl PgExecutor<'_>) -> Result<Vec<super::HashKeyCount>, sqlx::Error> {
    sqlx::query_as(PENDING_BY_PEPPER).fetch_all(db).bounded().await
}
