//! A resend: the pending verification sent again, its expiry restarted,
//! with the code the resend sends.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::VerificationId;

/// The code a resend sends.
#[derive(Clone, Copy)]
pub enum ResendCode<'a> {
    /// The one already sent: its hash and sealed code are kept.
    Same,
    /// A new one (a test number's fixed code, or one made because the kept
    /// code could not be opened): its hash, and the code sealed if kept.
    New {
        code_hash: &'a str,
        code_sealed: Option<&'a [u8]>,
    },
}

statement!(
    RESEND = "update verifications
         set code_hash = coalesce($2::text, code_hash),
             code_sealed = case when $2::text is null then code_sealed else $5::bytea end,
             sends = sends + 1, locale = $3, last_sent_at = now(),
             expires_at = now() + make_interval(secs => $4), updated_at = now()
         where id = $1
         returning sends",
);
/// A resend: the expiry restarted, failed attempts kept, the code as `code`
/// says. Returns which send it is (the verification's sends, this one
/// included).
pub async fn resend(
    tx: &mut Transaction<'_, Postgres>,
    id: VerificationId,
    code: ResendCode<'_>,
    locale: &str,
    ttl: Duration,
) -> Result<i32, sqlx::Error> {
    let (code_hash, code_sealed) = match code {
        ResendCode::Same => (None, None),
        ResendCode::New {
            code_hash,
            code_sealed,
        } => (Some(code_hash), code_sealed),
    };
    sqlx::query_scalar(RESEND)
        .bind(id)
        .bind(code_hash)
        .bind(locale)
        .bind(ttl.as_secs_f64())
        .bind(code_sealed)
        .fetch_one(&mut **tx)
        .bounded()
        .await
}

statement!(
    FORGET_KEPT_CODE = concat!(
        "update verifications set code_sealed = null
         where id = $1 and code_sealed is not null and not ",
        waiting!()
    ),
);
/// Erases the kept code of a verification that no longer waits for it (its
/// attempts ran out): nothing resends it. Called once the attempt that locked
/// it is judged, not when that attempt is reserved, since an attempt given
/// back unjudged leaves it waiting for the same code.
pub async fn forget_kept_code(db: impl PgExecutor<'_>, id: VerificationId) -> Result<(), sqlx::Error> {
    sqlx::query(FORGET_KEPT_CODE)
        .bind(id)
        .execute(db)
        .bounded()
        .await?;
    Ok(())
}
