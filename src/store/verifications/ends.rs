//! The statements that end a pending verification, each writing what its
//! end tells (`store::transitions`): the webhook event and the stats outcome
//! decided in `domain::transitions`.

use crate::store::Bounded;

use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{ClientId, VerificationId};
use crate::store::transitions::{ENDED, Rules, decide_ended, ended_columns};

/// Ends verifications with `$update` (returning `ended_columns!`), writing
/// what each end tells (`decide_ended!`, its rules bound after the
/// statement's `$params` parameters); the statement answers how many ended.
macro_rules! ending {
    ($update:expr, $($p:literal),+) => {
        concat!(
            "with ended as (", $update, " returning ", ended_columns!(), ")",
            decide_ended!("ended", $($p),+),
            " select count(*) from ended"
        )
    };
}

statement!(
    FAIL_IF_PENDING = ending!(
        "update verifications set status = 'failed', updated_at = now() where id = $1 and status = 'pending'",
        "$2",
        "$3",
        "$4",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10"
    )
);
/// Marks a pending verification `failed` (its code could not be delivered);
/// says whether it was pending.
pub async fn fail_if_pending(db: impl PgExecutor<'_>, id: VerificationId) -> Result<bool, sqlx::Error> {
    let ended: i64 = ENDED
        .bind_to(sqlx::query_scalar(FAIL_IF_PENDING).bind(id))
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(ended == 1)
}

statement!(
    APPROVE = ending!(
        "update verifications
         set status = 'approved', verified_at = now(), failed_attempts = failed_attempts - 1, updated_at = now()
         where id = $1 and status = 'pending' and code_hash = $2 and expires_at > now()",
        "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11"
    )
);
/// Approves with the code that was compared (a resend since replaced it: no),
/// while it is still valid, giving its reserved attempt back. Only one
/// request can win it.
pub async fn approve(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    code_hash: &str,
) -> Result<bool, sqlx::Error> {
    let ended: i64 = ENDED
        .bind_to(sqlx::query_scalar(APPROVE).bind(id).bind(code_hash))
        .fetch_one(&mut **tx)
        .bounded()
        .await?;
    Ok(ended == 1)
}

statement!(
    CANCEL = ending!(
        concat!(
            "update verifications set status = 'canceled', updated_at = now()
             where id = $1 and client_id = $2 and ",
            attemptable!()
        ),
        "$3",
        "$4",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11"
    )
);
/// Cancels an attemptable verification; says whether it did.
pub async fn cancel(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    client: ClientId,
) -> Result<bool, sqlx::Error> {
    let ended: i64 = ENDED
        .bind_to(sqlx::query_scalar(CANCEL).bind(id).bind(client))
        .fetch_one(&mut **tx)
        .bounded()
        .await?;
    Ok(ended == 1)
}

statement!(
    APPROVE_WITHOUT_CODE = ending!(
        concat!(
            "update verifications set status = 'approved', verified_at = now(), updated_at = now()
             where id = $1 and client_id = $2 and ",
            attemptable!()
        ),
        "$3",
        "$4",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10",
        "$11"
    )
);
/// Approves an attemptable verification without a code (the client checked
/// the person some other way); says whether it did. It tells and counts as
/// an approval by code does.
pub async fn approve_without_code(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    client: ClientId,
) -> Result<bool, sqlx::Error> {
    let ended: i64 = ENDED
        .bind_to(sqlx::query_scalar(APPROVE_WITHOUT_CODE).bind(id).bind(client))
        .fetch_one(&mut **tx)
        .bounded()
        .await?;
    Ok(ended == 1)
}

statement!(
    MARK_EXPIRED = ending!(
        "update verifications set status = 'expired', updated_at = now()
         where id = $1 and status = 'pending' and expires_at <= now()",
        "$2",
        "$3",
        "$4",
        "$5",
        "$6",
        "$7",
        "$8",
        "$9",
        "$10"
    )
);
/// Marks one pending verification whose code expired `expired`; says whether it did.
pub async fn mark_expired(db: impl PgExecutor<'_>, id: VerificationId) -> Result<bool, sqlx::Error> {
    let ended: i64 = ENDED
        .bind_to(sqlx::query_scalar(MARK_EXPIRED).bind(id))
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(ended == 1)
}

statement!(
    EXPIRE_DUE = concat!(
        "with ended as (
             update verifications set status = 'expired', updated_at = now()
             where id in (select id from verifications
                          where status = 'pending' and expires_at <= now()
                          limit $1 for update skip locked)
             returning ",
        ended_columns!(),
        ")",
        decide_ended!("ended", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10"),
        " select (select name from clients c where c.id = ended.client_id) from ended"
    )
);
/// Marks up to `batch` pending verifications whose code expired `expired`;
/// returns the name of each one's client.
pub async fn expire_due(db: impl PgExecutor<'_>, batch: i64) -> Result<Vec<String>, sqlx::Error> {
    ENDED
        .bind_to(sqlx::query_scalar(EXPIRE_DUE).bind(batch))
        .fetch_all(db)
        .bounded()
        .await
}
