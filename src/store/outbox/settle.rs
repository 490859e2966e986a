//! Settling messages: sent, or given up. Each statement writes what its
//! settling tells (`store::transitions`): the webhook event and the stats
//! outcome decided in `domain::transitions`.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::PgPool;

use super::Claimed;
use crate::domain::{FailureReason, MessageId, MessageStatus, VerificationId};
use crate::store::transitions::{Rules, SETTLED, settled_columns, settling};
use crate::store::verifications::{self, waiting};

statement!(
    MARK_SENT = settling!(
        "counted as (update sender_sends set sent_at = clock_timestamp() where id = $4),",
        concat!(
            "update outbox_messages
                 set status = $3, body_sealed = null, leased_until = null, sent_at = now(),
                     provider_message_id = $2, last_error = null
                 where id = $1 and status = 'queued' returning ",
            settled_columns!()
        ),
        "select count(*) from settled",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11",
        "$12",
        "$13",
        "$14"
    )
);
/// Records a send, and counts the key's slot it took (`slot`) from now, in
/// one statement (as `senders::touch` does). A message that went out is
/// recorded as sent whoever holds its lease now: it did go out.
pub async fn mark_sent(
    db: impl sqlx::PgExecutor<'_>,
    id: MessageId,
    provider_message_id: Option<&str>,
    slot: Option<i64>,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(MARK_SENT)
        .bind(id)
        .bind(provider_message_id)
        .bind(MessageStatus::Sent)
        .bind(slot);
    SETTLED.bind_to(query).execute(db).bounded().await?;
    Ok(())
}

statement!(
    MARK_FAILED = settling!(
        concat!(
            "update outbox_messages
             set status = $3, body_sealed = null, leased_until = null, failure = $4, last_error = $5
             where id = $1 and claims = $2 and status = 'queued'
             returning ",
            settled_columns!()
        ),
        "select verification_id from settled",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11",
        "$12",
        "$13",
        "$14",
        "$15"
    )
);
/// Gives the message up for `reason` (`error` is what operators read), and
/// its verification (if still pending) becomes `failed` in the same
/// transaction; says whether it did.
pub async fn mark_failed(
    pool: &PgPool,
    message: &Claimed,
    reason: FailureReason,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().bounded().await?;
    // The verification's row first, as requests (resend, cancel) lock them: the
    // same order everywhere, so the two never deadlock.
    verifications::lock(&mut tx, message.verification_id).await?;
    let query = sqlx::query_scalar(MARK_FAILED)
        .bind(message.id)
        .bind(message.claim)
        .bind(MessageStatus::Failed)
        .bind(reason)
        .bind(error);
    let verification: Option<VerificationId> =
        SETTLED.bind_to(query).fetch_optional(&mut *tx).bounded().await?;
    let mut failed = false;
    if let Some(verification) = verification {
        failed = verifications::fail_if_pending(&mut *tx, verification).await?;
    }
    tx.commit().bounded().await?;
    Ok(failed)
}

statement!(
    EXPIRE_OVERDUE = settling!(
        concat!(
            "update outbox_messages m
         set status = $2, body_sealed = null, leased_until = null,
             failure = case when not (",
            in_time!("m", "$1"),
            ") then $3 else $4 end
         from verifications v
         where v.id = m.verification_id and m.status = 'queued' and ",
            unleased!("m"),
            " and (not (",
            in_time!("m", "$1"),
            ") or not (",
            waiting!("v"),
            ")) returning ",
            settled_columns!("m"),
            ", (select name from clients c where c.id = m.client_id) as client"
        ),
        "select failure, client from settled",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11",
        "$12",
        "$13",
        "$14"
    )
);
/// Gives up what can no longer be useful: messages that could not reach the
/// gateway before their code expires (`expired_before_send`), and messages of
/// verifications that stopped waiting for them (`canceled`).
/// Returns the reason of each message given up, with its client's name.
pub async fn expire_overdue(
    pool: &PgPool,
    send_timeout: Duration,
) -> Result<Vec<(FailureReason, String)>, sqlx::Error> {
    let query = sqlx::query_as(EXPIRE_OVERDUE)
        .bind(send_timeout.as_secs_f64())
        .bind(MessageStatus::Failed)
        .bind(FailureReason::ExpiredBeforeSend)
        .bind(FailureReason::Canceled);
    SETTLED.bind_to(query).fetch_all(pool).bounded().await
}
