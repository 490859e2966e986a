//! The `verifications` table: every statement that reads or writes it.

use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::VerificationId;

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
pub(crate) use attemptable;

/// Locks the verification's row: every writer that also touches its messages
/// takes this lock first, so the two never deadlock.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, id: VerificationId) -> Result<(), sqlx::Error> {
    sqlx::query("select 1 from verifications where id = $1 for update")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a pending verification `failed` (its code could not be delivered);
/// says whether it was pending.
pub async fn fail_if_pending(db: impl PgExecutor<'_>, id: VerificationId) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update verifications set status = 'failed', updated_at = now() where id = $1 and status = 'pending'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
