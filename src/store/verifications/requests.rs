//! The statements of a new request: find what it would resend, close what
//! finished, resend, or insert.

use crate::store::Bounded;
use std::time::Duration;

use sqlx::{PgExecutor, Postgres, Transaction};

use crate::domain::{Channel, ClientId, MessageId, MessageStatus, VerificationId};
use crate::store::limits::{self, Window};
use crate::store::outbox::NewMessage;
use crate::store::transitions::{ENDED, REQUESTED, Rules, decide_ended, decide_requested, ended_columns};

/// Who a verification is for: the key of the one-pending-per-request rule.
pub struct Key<'a> {
    pub client: ClientId,
    pub phone: &'a str,
    pub purpose: &'a str,
}

/// The attemptable verification a new request for the same key resends.
#[derive(Debug, sqlx::FromRow)]
pub struct Resendable {
    pub id: VerificationId,
    pub sends: i32,
    /// Seconds until the resend cooldown is over (0 or less: over).
    pub cooldown_left: i64,
    pub expires_in: i64,
}

impl Resendable {
    /// From the columns of an outer join: all there, or none.
    fn of(
        id: Option<VerificationId>,
        sends: Option<i32>,
        cooldown_left: Option<i64>,
        expires_in: Option<i64>,
    ) -> Option<Self> {
        Some(Self {
            id: id?,
            sends: sends?,
            cooldown_left: cooldown_left?,
            expires_in: expires_in?,
        })
    }
}

macro_rules! select_resendable {
    () => {
        select_resendable!("")
    };
    ($more:literal) => {
        concat!(
            "select id, sends,
                    ceil(extract(epoch from last_sent_at + make_interval(secs => $4) - now()))::bigint
                        as cooldown_left,
                    ceil(extract(epoch from expires_at - now()))::bigint as expires_in",
            $more,
            " from verifications
             where client_id = $1 and phone = $2 and purpose = $3 and ",
            attemptable!()
        )
    };
}
statement!(
    SELECT_RESENDABLE_AND_WAITS = concat!(
        "with waits as (
             select coalesce(array_agg(coalesce(limit_slot_wait(w.bucket, w.max_hits, w.span), 0) order by w.n),
                             '{}') as waits
             from unnest($5::text[], $6::int[], $7::interval[]) with ordinality as w (bucket, max_hits, span, n)),
         resendable as (",
        select_resendable!(),
        ")
         select r.*, waits.waits from waits left join resendable r on true"
    )
);

#[derive(sqlx::FromRow)]
struct ResendableAndWaits {
    id: Option<VerificationId>,
    sends: Option<i32>,
    cooldown_left: Option<i64>,
    expires_in: Option<i64>,
    waits: Vec<f64>,
}

/// `resendable`, and the seconds until each of `windows` has a free slot (0
/// when it has one; `limit_slot_wait`), in one statement: the whole look
/// before the hash.
pub async fn resendable_and_waits(
    db: impl PgExecutor<'_>,
    key: &Key<'_>,
    cooldown_seconds: u32,
    windows: &[Window<'_>],
) -> Result<(Option<Resendable>, Vec<f64>), sqlx::Error> {
    let (buckets, max_hits, spans) = limits::columns(windows);
    let row: ResendableAndWaits = sqlx::query_as(SELECT_RESENDABLE_AND_WAITS)
        .bind(key.client)
        .bind(key.phone)
        .bind(key.purpose)
        .bind(f64::from(cooldown_seconds))
        .bind(buckets)
        .bind(max_hits)
        .bind(spans)
        .fetch_one(db)
        .bounded()
        .await?;
    let resendable = Resendable::of(row.id, row.sends, row.cooldown_left, row.expires_in);
    Ok((resendable, row.waits))
}

/// The pending verification of the key, if it expired or is locked, closed.
macro_rules! close_finished {
    () => {
        concat!(
            "update verifications
             set status = case when expires_at <= now() then 'expired' else 'max_attempts_reached' end,
                 code_sealed = null, updated_at = now()
             where client_id = $1 and phone = $2 and purpose = $3 and status = 'pending' and not (",
            attemptable!(),
            ") returning status = 'expired' as expired, ",
            ended_columns!()
        )
    };
}

statement!(
    CLOSE_FINISHED_AND_LOCK_RESENDABLE = concat!(
        "with closed as (",
        close_finished!(),
        ")",
        decide_ended!("closed", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13"),
        ", resendable as (",
        select_resendable!(", code_sealed, code_hash"),
        " for update)
         select (select bool_or(expired) from closed) as closed_expired, r.*
         from (select) one left join resendable r on true"
    )
);

#[derive(sqlx::FromRow)]
struct ClosedAndResendable {
    closed_expired: Option<bool>,
    id: Option<VerificationId>,
    sends: Option<i32>,
    cooldown_left: Option<i64>,
    expires_in: Option<i64>,
    code_sealed: Option<Vec<u8>>,
    code_hash: Option<String>,
}

/// A pending verification's code as kept for its resends: sealed, with the
/// hash stored beside it (which the sealing is bound to).
pub struct KeptCode {
    pub sealed: Vec<u8>,
    pub code_hash: String,
}

/// What a request's transaction found for its key.
pub struct Found {
    /// It marked the key's pending verification `expired`.
    pub closed_expired: bool,
    /// The verification it resends, locked until the transaction ends.
    pub resendable: Option<Resendable>,
    /// That verification's code, sealed (`None` for a test number's, or one
    /// erased or made before codes were kept).
    pub kept: Option<KeptCode>,
}

/// In one statement: closes the pending verification of `key` if it expired
/// or is locked, so that a new request starts a new one (and says whether it
/// marked one `expired`); and the resendable verification with its sealed
/// code, locked until the transaction ends. The two are never the same row
/// (one is attemptable, the other not), so neither needs to see what the
/// other did.
pub async fn close_finished_and_lock_resendable(
    tx: &mut Transaction<'_, Postgres>,
    key: &Key<'_>,
    cooldown_seconds: u32,
) -> Result<Found, sqlx::Error> {
    let query = sqlx::query_as(CLOSE_FINISHED_AND_LOCK_RESENDABLE)
        .bind(key.client)
        .bind(key.phone)
        .bind(key.purpose)
        .bind(f64::from(cooldown_seconds));
    let row: ClosedAndResendable = ENDED.bind_to(query).fetch_one(&mut **tx).bounded().await?;
    Ok(Found {
        closed_expired: row.closed_expired == Some(true),
        resendable: Resendable::of(row.id, row.sends, row.cooldown_left, row.expires_in),
        kept: row
            .code_sealed
            .zip(row.code_hash)
            .map(|(sealed, code_hash)| KeptCode { sealed, code_hash }),
    })
}

pub struct NewVerification<'a> {
    pub key: Key<'a>,
    pub locale: &'a str,
    pub code_hash: &'a str,
    pub max_attempts: u32,
    pub ttl: Duration,
    pub made_by_dev: bool,
    /// ISO 3166-1 alpha-2, for the stats.
    pub country: Option<&'a str>,
    /// For a client's test number: left out of the stats.
    pub test_number: bool,
    /// The number's calling code and next three digits, for the fraud rules.
    pub prefix: &'a str,
    /// The end user's network (`otp::limits::network`), when given.
    pub end_user_network: Option<&'a str>,
    /// The channel asked for through `/twilio`; `None` through `/otp`.
    pub channel: Option<Channel>,
    /// The code, sealed for a resend to send it again (`None` for a test
    /// number, whose code is the fixed one).
    pub code_sealed: Option<&'a [u8]>,
}

macro_rules! insert_verification {
    () => {
        "insert into verifications
             (id, client_id, phone, purpose, locale, status, code_hash, max_attempts,
              last_sent_at, expires_at, made_by_dev, country, test_number, prefix, end_user_network, channel,
              code_sealed)
         values ($1, $2, $3, $4, $5, 'pending', $6, $7, now(), now() + make_interval(secs => $8), $9, $10, $11,
                 $12, $13, $14, $15)"
    };
}

/// What a new verification's decisions read of it (`decide_requested!`).
macro_rules! requested_columns {
    () => {
        " returning id, client_id, created_at, country, test_number"
    };
}

statement!(
    INSERT = concat!(
        "with inserted as (",
        insert_verification!(),
        requested_columns!(),
        ")",
        decide_requested!("inserted", "$16", "$17", "$18", "$19", "$20", "$21", "$22"),
        " select count(*) from inserted"
    )
);
/// Inserts a pending verification. A second one for the same key fails on
/// `verifications_one_pending` (`is_one_pending_violation`).
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewVerification<'_>,
) -> Result<VerificationId, sqlx::Error> {
    let id = VerificationId::new();
    REQUESTED
        .bind_to(bind_new(sqlx::query(INSERT), id, new))
        .execute(&mut **tx)
        .bounded()
        .await?;
    Ok(id)
}

statement!(
    INSERT_WITH_MESSAGE = concat!(
        "with verification as (",
        insert_verification!(),
        requested_columns!(),
        ")",
        decide_requested!("verification", "$23", "$24", "$25", "$26", "$27", "$28", "$29"),
        " insert into outbox_messages
             (id, verification_id, client_id, phone_digits, body_sealed, status, expires_at, next_attempt_at,
              estimated_send_at, send_number)
         select $16, id, $2, $17, $18, $19, now() + make_interval(secs => $20), now() + make_interval(secs => $21),
                now() + make_interval(secs => $22), 1
         from verification"
    )
);
/// `insert`, with its first message queued (as `outbox::insert` queues one)
/// in the same statement; the verification's id is `message.verification_id`.
pub async fn insert_with_message(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewVerification<'_>,
    message: &NewMessage<'_>,
) -> Result<MessageId, sqlx::Error> {
    let id = MessageId::new();
    let query = bind_new(sqlx::query(INSERT_WITH_MESSAGE), message.verification_id, new)
        .bind(id)
        .bind(message.phone_digits)
        .bind(message.body_sealed)
        .bind(MessageStatus::Queued)
        .bind(message.ttl.as_secs_f64())
        .bind(message.first_attempt_in.as_secs_f64())
        .bind(message.estimated_in.as_secs_f64());
    REQUESTED.bind_to(query).execute(&mut **tx).bounded().await?;
    Ok(id)
}

/// The new verification's columns, `$1` to `$15`.
fn bind_new<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    id: VerificationId,
    new: &NewVerification<'q>,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(id)
        .bind(new.key.client)
        .bind(new.key.phone)
        .bind(new.key.purpose)
        .bind(new.locale)
        .bind(new.code_hash)
        .bind(new.max_attempts as i32)
        .bind(new.ttl.as_secs_f64())
        .bind(new.made_by_dev)
        .bind(new.country)
        .bind(new.test_number)
        .bind(new.prefix)
        .bind(new.end_user_network)
        .bind(new.channel)
        .bind(new.code_sealed)
}

/// Two first requests for one key raced, and this one lost.
pub fn is_one_pending_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|e| e.constraint())
        .is_some_and(|c| c == "verifications_one_pending")
}
