//! What requests do to the outbox: queue a message with its verification,
//! drop it for a resend, give it up for a cancel. Each runs in the request's
//! transaction.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::{Postgres, Transaction};

use crate::domain::{ClientId, FailureReason, MessageId, MessageStatus, VerificationId};
use crate::store::transitions::{Rules, SETTLED, settled_columns, settling};

pub struct NewMessage<'a> {
    pub verification_id: VerificationId,
    pub client_id: ClientId,
    pub phone_digits: &'a str,
    pub body_sealed: &'a [u8],
    pub ttl: Duration,
    /// When the dispatcher may take the message if nobody sent it before.
    pub first_attempt_in: Duration,
    /// When it should go out, from now: the figure admission admitted it by.
    pub estimated_in: Duration,
    /// Which of its verification's sends it is (1 for the first).
    pub send_number: i32,
}

statement!(
    INSERT = "insert into outbox_messages
             (id, verification_id, client_id, phone_digits, body_sealed, status, expires_at, next_attempt_at,
              estimated_send_at, send_number)
         values ($1, $2, $8, $3, $4, $5, now() + make_interval(secs => $6), now() + make_interval(secs => $7),
                 now() + make_interval(secs => $9), $10)",
);
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    message: &NewMessage<'_>,
) -> Result<MessageId, sqlx::Error> {
    let id = MessageId::new();
    sqlx::query(INSERT)
        .bind(id)
        .bind(message.verification_id)
        .bind(message.phone_digits)
        .bind(message.body_sealed)
        .bind(MessageStatus::Queued)
        .bind(message.ttl.as_secs_f64())
        .bind(message.first_attempt_in.as_secs_f64())
        .bind(message.client_id)
        .bind(message.estimated_in.as_secs_f64())
        .bind(message.send_number)
        .execute(&mut **tx)
        .bounded()
        .await?;
    Ok(id)
}

statement!(
    INSERT_FOR_TEST_NUMBER = settling!(
        concat!(
            "insert into outbox_messages
                 (id, verification_id, client_id, phone_digits, status, expires_at, sent_at, last_error,
                  send_number)
             values ($1, $2, $3, $4, $5, now(), now(), 'test number: nothing was sent', $6)
             returning ",
            settled_columns!()
        ),
        "select count(*) from settled",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11",
        "$12",
        "$13",
        "$14",
        "$15",
        "$16"
    )
);
/// The message of a test number: recorded as sent, and never handed to the
/// gateway (it has no text, and is not queued). `send_number` as for
/// `NewMessage`.
pub async fn insert_for_test_number(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: VerificationId,
    client_id: ClientId,
    phone_digits: &str,
    send_number: i32,
) -> Result<MessageId, sqlx::Error> {
    let id = MessageId::new();
    let query = sqlx::query(INSERT_FOR_TEST_NUMBER)
        .bind(id)
        .bind(verification_id)
        .bind(client_id)
        .bind(phone_digits)
        .bind(MessageStatus::Sent)
        .bind(send_number);
    SETTLED.bind_to(query).execute(&mut **tx).bounded().await?;
    Ok(id)
}

statement!(
    SUPERSEDE_QUEUED = "update outbox_messages set status = $2, body_sealed = null, leased_until = null
         where verification_id = $1 and status = 'queued'",
);
/// A resend makes the queued message of the old code pointless: drop it unsent.
pub async fn supersede_queued(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: VerificationId,
) -> Result<(), sqlx::Error> {
    sqlx::query(SUPERSEDE_QUEUED)
        .bind(verification_id)
        .bind(MessageStatus::Superseded)
        .execute(&mut **tx)
        .bounded()
        .await?;
    Ok(())
}

statement!(
    GIVE_UP_QUEUED = settling!(
        concat!(
            "update outbox_messages set status = $2, body_sealed = null, leased_until = null, failure = $3
             where verification_id = $1 and status = 'queued'
             returning ",
            settled_columns!()
        ),
        "select count(*) from settled",
        "$4",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11",
        "$12",
        "$13"
    )
);
/// Gives up the queued message of a verification that stopped waiting for it.
pub async fn give_up_queued(
    tx: &mut Transaction<'_, Postgres>,
    verification_id: VerificationId,
    reason: FailureReason,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(GIVE_UP_QUEUED)
        .bind(verification_id)
        .bind(MessageStatus::Failed)
        .bind(reason);
    SETTLED.bind_to(query).execute(&mut **tx).bounded().await?;
    Ok(())
}
