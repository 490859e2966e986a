//! The SQL that writes what `store::transitions`' tables decided: each
//! statement's changed rows joined to the table bound into it, then the
//! outcomes and the events inserted, all in that one statement.

/// What a statement that ends verifications returns of each, for `decide_ended!`.
macro_rules! ended_columns {
    () => {
        "id, client_id, status, failed_attempts >= max_attempts as locked, test_number, created_at, country,
         verified_at"
    };
}
pub(crate) use ended_columns;

/// The decisions for the verifications `$source` ended (with
/// `ended_columns!`), the rules bound from `$p` on (`EndedRules`, 9
/// parameters), and what they write. Opens with a comma: it follows the
/// statement's own common table expressions.
macro_rules! decide_ended {
    ($source:literal, $p1:literal, $p2:literal, $p3:literal, $p4:literal, $p5:literal, $p6:literal,
     $p7:literal, $p8:literal, $p9:literal) => {
        concat!(
            ", decided as (
                 select s.id as verification_id, s.client_id, s.created_at, s.country, null::text as failure,
                        extract(epoch from s.verified_at - s.created_at)::float8 as approval_seconds,
                        null::integer as send_number, r.event, r.once, r.outcome, r.timed
                 from ", $source, " s
                 join unnest(", $p1, "::text[], ", $p2, "::bool[], ", $p3, "::bool[], ", $p4, "::text[], ",
            $p5, "::bool[], ", $p6, "::text[], ", $p7, "::bool[])
                     as r (status, locked, test_number, event, once, outcome, timed)
                   on r.status = s.status and r.locked = s.locked and r.test_number = s.test_number)",
            $crate::store::transitions::record_decided!($p8, $p9)
        )
    };
}
pub(crate) use decide_ended;

/// What a statement that settles messages returns of each, for `decide_settled!`.
macro_rules! settled_columns {
    () => {
        "id, verification_id, client_id, status, failure, send_number"
    };
    ($alias:literal) => {
        concat!(
            $alias,
            ".id, ",
            $alias,
            ".verification_id, ",
            $alias,
            ".client_id, ",
            $alias,
            ".status, ",
            $alias,
            ".failure, ",
            $alias,
            ".send_number"
        )
    };
}
pub(crate) use settled_columns;

/// The decisions for the messages `$source` settled (with
/// `settled_columns!`), the rules bound from `$p` on (`SettledRules`, 10
/// parameters), and what they write. A message is its verification's first
/// sent when no other of its messages was sent before this statement.
macro_rules! decide_settled {
    ($source:literal, $p1:literal, $p2:literal, $p3:literal, $p4:literal, $p5:literal, $p6:literal,
     $p7:literal, $p8:literal, $p9:literal, $p10:literal) => {
        concat!(
            ", facts as (
                 select s.id, s.verification_id, s.client_id, s.status, s.failure, s.send_number, v.created_at,
                        v.country,
                        coalesce(v.test_number, true) as test_number,
                        s.status = 'sent' and not exists (
                            select 1 from outbox_messages o
                            where o.verification_id = s.verification_id and o.status = 'sent' and o.id <> s.id)
                            as first_sent
                 from ", $source, " s left join verifications v on v.id = s.verification_id),
             decided as (
                 select f.verification_id, f.client_id, f.created_at, f.country, f.failure,
                        null::float8 as approval_seconds, f.send_number, r.event, r.once, r.outcome, r.timed
                 from facts f
                 join unnest(", $p1, "::text[], ", $p2, "::text[], ", $p3, "::bool[], ", $p4, "::bool[], ",
            $p5, "::text[], ", $p6, "::bool[], ", $p7, "::text[], ", $p8, "::bool[])
                     as r (status, failure, first_sent, test_number, event, once, outcome, timed)
                   on r.status = f.status and r.failure is not distinct from f.failure
                  and r.first_sent = f.first_sent and r.test_number = f.test_number)",
            $crate::store::transitions::record_decided!($p9, $p10)
        )
    };
}
pub(crate) use decide_settled;

/// The decisions for the verifications `$source` inserted (returning `id,
/// client_id, created_at, country, test_number`), the rules bound from `$p`
/// on (`RequestedRules`, 7 parameters), and what they write.
macro_rules! decide_requested {
    ($source:literal, $p1:literal, $p2:literal, $p3:literal, $p4:literal, $p5:literal, $p6:literal,
     $p7:literal) => {
        concat!(
            ", decided as (
                 select s.id as verification_id, s.client_id, s.created_at, s.country, null::text as failure,
                        null::float8 as approval_seconds, null::integer as send_number, r.event, r.once, r.outcome,
                        r.timed
                 from ", $source, " s
                 join unnest(", $p1, "::bool[], ", $p2, "::text[], ", $p3, "::bool[], ", $p4, "::text[], ",
            $p5, "::bool[]) as r (test_number, event, once, outcome, timed)
                   on r.test_number = s.test_number)",
            $crate::store::transitions::record_decided!($p6, $p7)
        )
    };
}
pub(crate) use decide_requested;

/// Writes what `decided` holds: its outcomes (each counted toward the day
/// its verification was requested, timed ones with their bucket from the
/// (below, step) columns `$below`, `$step`) and its events.
macro_rules! record_decided {
    ($below:literal, $step:literal) => {
        concat!(
            ", outcomes as (
                 insert into stats_events (client_id, day, country, kind, failure, approval_bucket)
                 select d.client_id, (d.created_at at time zone 'UTC')::date, coalesce(d.country, 'unknown'),
                        d.outcome, d.failure,
                        case when d.timed and d.approval_seconds is not null then coalesce(
                            (select (floor(greatest(d.approval_seconds, 0) / b.step) * b.step)::integer
                             from unnest(", $below, "::float8[], ", $step, "::float8[]) as b (below, step)
                             where greatest(d.approval_seconds, 0) < b.below order by b.below limit 1),
                            (select max(b.below) from unnest(", $below, "::float8[]) as b (below))::integer) end
                 from decided d where d.outcome is not null)",
            $crate::store::transitions::record_events!("decided")
        )
    };
}
pub(crate) use record_decided;

/// Records the events of `$source` (`verification_id`, `client_id`, `event`,
/// `once`, `send_number`): only for a client whose endpoint is set and enabled, a `once`
/// event only if its verification has not had it, each due no sooner than
/// the verification's earlier pending events (they go out in order).
macro_rules! record_events {
    ($source:literal) => {
        concat!(
            ", events as (
                 insert into webhook_events (id, client_id, verification_id, type, send_number, next_attempt_at)
                 select gen_random_uuid(), d.client_id, d.verification_id, d.event, d.send_number,
                        greatest(clock_timestamp(),
                                 (select max(p.next_attempt_at) from webhook_events p
                                  where p.verification_id = d.verification_id and p.status = 'pending'))
                 from ", $source, " d join clients c on c.id = d.client_id
                 where d.event is not null and c.webhook_url is not null and c.webhook_disabled_at is null
                   and not (d.once and exists (select 1 from webhook_events p
                                               where p.verification_id = d.verification_id and p.type = d.event)))"
        )
    };
}
pub(crate) use record_events;

/// Settles messages with `$change` (returning `settled_columns!`), writing
/// what each settling tells (`decide_settled!`, its rules bound after the
/// statement's own parameters), then `$answer`; after `$before`, a common
/// table expression of the statement's own.
macro_rules! settling {
    ($before:literal, $change:expr, $answer:literal, $($p:literal),+) => {
        concat!(
            "with ", $before, " settled as (", $change, ")",
            $crate::store::transitions::decide_settled!("settled", $($p),+),
            " ", $answer
        )
    };
    ($change:expr, $answer:literal, $($p:literal),+) => {
        $crate::store::transitions::settling!("", $change, $answer, $($p),+)
    };
}
pub(crate) use settling;
