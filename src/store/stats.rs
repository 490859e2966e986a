//! The conversion stats: `stats_events`, written by the statement of each
//! fact (`store::transitions`), folded by the sweeper into `verification_stats`
//! and `approval_time_stats`, one row per (client, day, country). Reads add
//! the events not folded yet, so a figure is there from its commit.

use crate::store::Bounded;
use chrono::NaiveDate;
use sqlx::{PgExecutor, PgPool};

use crate::domain::ClientId;

statement!(
    FOLD = "
with moved as (
    delete from stats_events
    where id in (select id from stats_events order by id limit $1 for update skip locked)
    returning client_id, day, country, kind, failure, approval_bucket
), figures as (
    insert into verification_stats as t
        (client_id, day, country, requested, sent, approved, expired, locked,
         failed_phone_rejected, failed_session_ended, failed_unauthorized, failed_expired_before_send,
         failed_canceled, failed_unreadable)
    select client_id, day, country,
           count(*) filter (where kind = 'requested'), count(*) filter (where kind = 'sent'),
           count(*) filter (where kind = 'approved'), count(*) filter (where kind = 'expired'),
           count(*) filter (where kind = 'locked'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'phone_rejected'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'session_ended'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'unauthorized'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'expired_before_send'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'canceled'),
           count(*) filter (where kind = 'delivery_failed' and failure = 'unreadable')
    from moved group by 1, 2, 3
    -- Rows locked in one order by every fold: two replicas folding at once never deadlock.
    order by 1, 2, 3
    on conflict (client_id, day, country) do update set
        requested = t.requested + excluded.requested, sent = t.sent + excluded.sent,
        approved = t.approved + excluded.approved, expired = t.expired + excluded.expired,
        locked = t.locked + excluded.locked,
        failed_phone_rejected = t.failed_phone_rejected + excluded.failed_phone_rejected,
        failed_session_ended = t.failed_session_ended + excluded.failed_session_ended,
        failed_unauthorized = t.failed_unauthorized + excluded.failed_unauthorized,
        failed_expired_before_send = t.failed_expired_before_send + excluded.failed_expired_before_send,
        failed_canceled = t.failed_canceled + excluded.failed_canceled,
        failed_unreadable = t.failed_unreadable + excluded.failed_unreadable
), times as (
    insert into approval_time_stats as t (client_id, day, country, bucket, approvals)
    select client_id, day, country, approval_bucket, count(*)
    from moved where kind = 'approved' and approval_bucket is not null
    group by 1, 2, 3, 4 order by 1, 2, 3, 4
    on conflict (client_id, day, country, bucket) do update set approvals = t.approvals + excluded.approvals
)
select count(*) from moved"
);
/// Folds up to `batch` events into the rolled-up rows, in one statement: a
/// read sees each event either as an event or in its row, never both.
pub async fn fold(db: impl PgExecutor<'_>, batch: i64) -> Result<u64, sqlx::Error> {
    let moved: i64 = sqlx::query_scalar(FOLD)
        .bind(batch)
        .fetch_one(db)
        .bounded()
        .await?;
    Ok(moved as u64)
}

/// The rows (folded and not) a read adds up, with `$where` on both tables.
macro_rules! figures_of {
    ($where:literal) => {
        concat!(
            "select client_id, day, country, requested, sent, approved, expired, locked,
                    failed_phone_rejected, failed_session_ended, failed_unauthorized,
                    failed_expired_before_send, failed_canceled, failed_unreadable
             from verification_stats where ",
            $where,
            " union all
             select client_id, day, country, (kind = 'requested')::int, (kind = 'sent')::int,
                    (kind = 'approved')::int, (kind = 'expired')::int, (kind = 'locked')::int,
                    (failure = 'phone_rejected')::int, (failure = 'session_ended')::int,
                    (failure = 'unauthorized')::int, (failure = 'expired_before_send')::int,
                    (failure = 'canceled')::int, (failure = 'unreadable')::int
             from stats_events where ",
            $where
        )
    };
}

/// The group a row falls in: `$group` is the parameter holding `Grouping::as_str`.
macro_rules! group_key {
    ($group:literal) => {
        concat!(
            "case ",
            $group,
            " when 'country' then s.country when 'day' then to_char(s.day, 'YYYY-MM-DD')
                  when 'client' then (select name from clients c where c.id = s.client_id) else '' end"
        )
    };
}

macro_rules! sum_figures {
    ($source:expr, $group:literal) => {
        concat!(
            "select key,
                    coalesce(sum(requested), 0)::bigint as requested, coalesce(sum(sent), 0)::bigint as sent,
                    coalesce(sum(approved), 0)::bigint as approved, coalesce(sum(expired), 0)::bigint as expired,
                    coalesce(sum(locked), 0)::bigint as locked,
                    coalesce(sum(failed_phone_rejected), 0)::bigint as failed_phone_rejected,
                    coalesce(sum(failed_session_ended), 0)::bigint as failed_session_ended,
                    coalesce(sum(failed_unauthorized), 0)::bigint as failed_unauthorized,
                    coalesce(sum(failed_expired_before_send), 0)::bigint as failed_expired_before_send,
                    coalesce(sum(failed_canceled), 0)::bigint as failed_canceled,
                    coalesce(sum(failed_unreadable), 0)::bigint as failed_unreadable
             from (select ",
            group_key!($group),
            " as key, s.* from (",
            $source,
            ") s) k group by key order by key"
        )
    };
}

statement!(CLIENT_FIGURES = sum_figures!(figures_of!("client_id = $1 and day between $2 and $3"), "$4"));
statement!(ALL_FIGURES = sum_figures!(figures_of!("day between $1 and $2"), "$3"));

/// The approvals by bucket (folded and not), with `$where` on both tables.
macro_rules! approval_times_of {
    ($where:literal, $group:literal) => {
        concat!(
            "select key, bucket, sum(approvals)::bigint as approvals
             from (select ",
            group_key!($group),
            " as key, s.bucket, s.approvals from (select client_id, day, country, bucket, approvals from approval_time_stats where ",
            $where,
            " union all
                   select client_id, day, country, approval_bucket, 1 from stats_events
                   where kind = 'approved' and approval_bucket is not null and ",
            $where,
            ") s) k group by key, bucket order by key, bucket"
        )
    };
}

statement!(CLIENT_APPROVAL_TIMES = approval_times_of!("client_id = $1 and day between $2 and $3", "$4"));
statement!(ALL_APPROVAL_TIMES = approval_times_of!("day between $1 and $2", "$3"));

/// One group's figures, as summed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FigureRow {
    /// The country, the day (`YYYY-MM-DD`), the client's name, or `""` for no grouping.
    pub key: String,
    pub requested: i64,
    pub sent: i64,
    pub approved: i64,
    pub expired: i64,
    pub locked: i64,
    pub failed_phone_rejected: i64,
    pub failed_session_ended: i64,
    pub failed_unauthorized: i64,
    pub failed_expired_before_send: i64,
    pub failed_canceled: i64,
    pub failed_unreadable: i64,
}

/// Approvals of one group whose time from request fell in `bucket`
/// (its lower end in seconds; see `domain::approval_bucket`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BucketRow {
    pub key: String,
    pub bucket: i32,
    pub approvals: i64,
}

/// Days from `from` to `to`, inclusive, and the grouping (`country`, `day`,
/// `client` or `""`).
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group: &'a str,
}

/// One client's figures and approval times, by group.
pub async fn of_client(
    pool: &PgPool,
    client: ClientId,
    range: Range<'_>,
) -> Result<(Vec<FigureRow>, Vec<BucketRow>), sqlx::Error> {
    let figures = sqlx::query_as(CLIENT_FIGURES)
        .bind(client)
        .bind(range.from)
        .bind(range.to)
        .bind(range.group)
        .fetch_all(pool)
        .bounded()
        .await?;
    let times = sqlx::query_as(CLIENT_APPROVAL_TIMES)
        .bind(client)
        .bind(range.from)
        .bind(range.to)
        .bind(range.group)
        .fetch_all(pool)
        .bounded()
        .await?;
    Ok((figures, times))
}

/// Every client's figures and approval times together, by group.
pub async fn of_all(
    pool: &PgPool,
    range: Range<'_>,
) -> Result<(Vec<FigureRow>, Vec<BucketRow>), sqlx::Error> {
    let figures = sqlx::query_as(ALL_FIGURES)
        .bind(range.from)
        .bind(range.to)
        .bind(range.group)
        .fetch_all(pool)
        .bounded()
        .await?;
    let times = sqlx::query_as(ALL_APPROVAL_TIMES)
        .bind(range.from)
        .bind(range.to)
        .bind(range.group)
        .fetch_all(pool)
        .bounded()
        .await?;
    Ok((figures, times))
}
