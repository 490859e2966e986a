//! Attempts on a verification: reserving one before its code is compared,
//! giving back one never judged, and where a verification stands when it
//! cannot be attempted.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{Channel, ClientId, VerificationId, VerificationStatus};
use crate::store::Bounded;
use crate::store::limits::{self, HitId, Window};

/// An attempt, counted before its code is compared.
#[derive(Debug, sqlx::FromRow)]
pub struct Reserved {
    pub code_hash: String,
    pub phone: String,
    /// Counting this one.
    pub failed_attempts: i32,
    pub max_attempts: i32,
    /// What a check's answer shows besides, so that a wrong code is
    /// answered without reading the verification again.
    pub channel: Option<Channel>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a reservation came to.
pub enum Reservation {
    /// The attempt is counted, and the windows' hit taken.
    Reserved(Reserved, Vec<HitId>),
    /// The window at this index is full; it frees in these seconds. Nothing was taken.
    Refused { window: usize, retry_after: f64 },
    /// The verification cannot be attempted (any more), as its state says
    /// (`None`: there is no such verification of the client); nothing was taken.
    NotAttemptable(Option<State>),
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    code_hash: Option<String>,
    failed_attempts: Option<i32>,
    max_attempts: Option<i32>,
    hit_id: Option<HitId>,
    refused_by: Option<i32>,
    retry_after: Option<f64>,
    status: Option<VerificationStatus>,
    phone: Option<String>,
    expired: Option<bool>,
    expires_in: Option<i64>,
    channel: Option<Channel>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
}

statement!(
    RESERVE_ATTEMPT = "select code_hash, failed_attempts, max_attempts, hit_id, refused_by, retry_after,
                status, phone, expired, expires_in, channel, created_at, updated_at
         from reserve_attempt($1, $2, $3, $4, $5, $6)",
);
/// Counts an attempt on an attemptable verification, in the statement that
/// checks it is attemptable, and takes a hit of `windows`, all of one bucket
/// (one row that each counts): all of it or nothing, so parallel guesses can
/// pass neither the verification's limit nor a window (`reserve_attempt`,
/// V23). The bucket is named by what comes before the phone: the statement
/// appends the verification's. With `phone`, a verification of another
/// number is as one that does not exist.
pub async fn reserve_attempt(
    db: impl PgExecutor<'_>,
    id: VerificationId,
    client: ClientId,
    phone: Option<&str>,
    windows: &[Window<'_>],
) -> Result<Reservation, sqlx::Error> {
    let (buckets, max_hits, spans) = limits::columns(windows);
    debug_assert!(buckets.windows(2).all(|b| b[0] == b[1]), "windows of one bucket");
    let row: ReservationRow = sqlx::query_as(RESERVE_ATTEMPT)
        .bind(id)
        .bind(client)
        .bind(buckets.first().cloned().unwrap_or_default())
        .bind(max_hits)
        .bind(spans)
        .bind(phone)
        .fetch_one(db)
        .bounded()
        .await?;
    if let Some(window) = row.refused_by {
        return Ok(Reservation::Refused {
            window: window as usize,
            retry_after: row.retry_after.unwrap_or(1.0),
        });
    }
    let (Some(phone), Some(failed_attempts), Some(max_attempts)) =
        (row.phone, row.failed_attempts, row.max_attempts)
    else {
        return Ok(Reservation::NotAttemptable(None));
    };
    Ok(match (row.code_hash, row.status) {
        (Some(code_hash), _) => {
            // A reservation read the verification, dates and all.
            let (Some(created_at), Some(updated_at)) = (row.created_at, row.updated_at) else {
                return Err(sqlx::Error::Decode(
                    "reserve_attempt reserved without the dates".into(),
                ));
            };
            Reservation::Reserved(
                Reserved {
                    code_hash,
                    phone,
                    failed_attempts,
                    max_attempts,
                    channel: row.channel,
                    created_at,
                    updated_at,
                },
                Vec::from_iter(row.hit_id),
            )
        }
        (None, Some(status)) => Reservation::NotAttemptable(Some(State {
            status,
            expired: row.expired.unwrap_or(false),
            failed_attempts,
            max_attempts,
            expires_in: row.expires_in.unwrap_or(1),
        })),
        // Gone between the function's reads (deleted by retention).
        (None, None) => Reservation::NotAttemptable(None),
    })
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
    sqlx::query(GIVE_BACK_ATTEMPT)
        .bind(id)
        .execute(&mut **tx)
        .bounded()
        .await?;
    Ok(())
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
        .bounded()
        .await
}
