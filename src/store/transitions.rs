//! What a change of a verification or of its message tells (a webhook event,
//! a stats outcome), written by the statement that makes the change: the
//! decisions are `domain::transitions`' (`events_for`, `outcome`,
//! `approval_bucket`), bound into the statement as a table of every case, and
//! the statement joins the rows it changed to that table. No trigger decides
//! them (V18 dropped the ones that did); the database keeps only what must
//! be atomic with the change: an event at most once per verification where
//! Rust says so, behind the verification's earlier pending events, and only
//! for a client whose endpoint is set and enabled.

use std::sync::LazyLock;

use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};

use crate::domain::{
    APPROVAL_BUCKETS, FailureReason, MessageStatus, Outcome, Transition, VerificationStatus, events_for,
    outcome,
};

/// The decided columns of one case: its event, whether at most once, its
/// outcome, whether timed.
#[derive(Default)]
pub(crate) struct Decisions {
    event: Vec<Option<&'static str>>,
    once: Vec<bool>,
    outcome: Vec<Option<&'static str>>,
    timed: Vec<bool>,
}

impl Decisions {
    fn push(&mut self, transition: Transition, test_number: bool) {
        let event = events_for(transition);
        let counted = outcome(transition, test_number);
        self.event.push(event.map(|e| e.as_str()));
        self.once.push(event.is_some_and(|e| e.once()));
        self.outcome.push(counted.map(Outcome::as_str));
        self.timed.push(counted.is_some_and(Outcome::timed));
    }
}

/// Every end of a pending verification: (status, locked, test number).
pub(crate) struct EndedRules {
    status: Vec<&'static str>,
    locked: Vec<bool>,
    test_number: Vec<bool>,
    decided: Decisions,
}

pub(crate) static ENDED: LazyLock<EndedRules> = LazyLock::new(|| {
    let mut rules = EndedRules {
        status: Vec::new(),
        locked: Vec::new(),
        test_number: Vec::new(),
        decided: Decisions::default(),
    };
    for &to in VerificationStatus::ALL
        .iter()
        .filter(|s| **s != VerificationStatus::Pending)
    {
        for locked in [false, true] {
            for test_number in [false, true] {
                rules.status.push(to.as_str());
                rules.locked.push(locked);
                rules.test_number.push(test_number);
                rules.decided.push(Transition::Ended { to, locked }, test_number);
            }
        }
    }
    rules
});

/// Every settling of a message: (status, failure, first sent, test number).
pub(crate) struct SettledRules {
    status: Vec<&'static str>,
    failure: Vec<Option<&'static str>>,
    first_sent: Vec<bool>,
    test_number: Vec<bool>,
    decided: Decisions,
}

pub(crate) static SETTLED: LazyLock<SettledRules> = LazyLock::new(|| {
    let mut rules = SettledRules {
        status: Vec::new(),
        failure: Vec::new(),
        first_sent: Vec::new(),
        test_number: Vec::new(),
        decided: Decisions::default(),
    };
    let failures = std::iter::once(None).chain(FailureReason::ALL.iter().copied().map(Some));
    for failure in failures {
        for to in [MessageStatus::Sent, MessageStatus::Failed] {
            for first_sent in [false, true] {
                for test_number in [false, true] {
                    rules.status.push(to.as_str());
                    rules.failure.push(failure.map(FailureReason::as_str));
                    rules.first_sent.push(first_sent);
                    rules.test_number.push(test_number);
                    let transition = Transition::Settled {
                        to,
                        failure,
                        first_sent,
                    };
                    rules.decided.push(transition, test_number);
                }
            }
        }
    }
    rules
});

/// A new verification: (test number).
pub(crate) struct RequestedRules {
    test_number: Vec<bool>,
    decided: Decisions,
}

pub(crate) static REQUESTED: LazyLock<RequestedRules> = LazyLock::new(|| {
    let mut rules = RequestedRules {
        test_number: Vec::new(),
        decided: Decisions::default(),
    };
    for test_number in [false, true] {
        rules.test_number.push(test_number);
        rules.decided.push(Transition::Requested, test_number);
    }
    rules
});

/// The approval buckets' (below, step) columns.
static BUCKETS: LazyLock<(Vec<f64>, Vec<f64>)> = LazyLock::new(|| APPROVAL_BUCKETS.iter().copied().unzip());

/// A query parameters can be bound to: `query`, `query_as`, `query_scalar`.
pub(crate) trait Binds<'q>: Sized {
    fn with<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self;
}

impl<'q> Binds<'q> for Query<'q, Postgres, PgArguments> {
    fn with<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Binds<'q> for QueryAs<'q, Postgres, O, PgArguments> {
    fn with<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

impl<'q, O> Binds<'q> for QueryScalar<'q, Postgres, O, PgArguments> {
    fn with<T: 'q + sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>>(self, value: T) -> Self {
        self.bind(value)
    }
}

/// A table of decisions, bound in the order its `decide_*!` macro names
/// its parameters.
pub(crate) trait Rules: Sync + 'static {
    fn bind_to<'q, Q: Binds<'q>>(&'static self, query: Q) -> Q;
}

fn bind_decided<'q, Q: Binds<'q>>(query: Q, d: &'static Decisions) -> Q {
    query
        .with(&d.event[..])
        .with(&d.once[..])
        .with(&d.outcome[..])
        .with(&d.timed[..])
        .with(&BUCKETS.0[..])
        .with(&BUCKETS.1[..])
}

impl Rules for EndedRules {
    fn bind_to<'q, Q: Binds<'q>>(&'static self, query: Q) -> Q {
        let query = query
            .with(&self.status[..])
            .with(&self.locked[..])
            .with(&self.test_number[..]);
        bind_decided(query, &self.decided)
    }
}

impl Rules for SettledRules {
    fn bind_to<'q, Q: Binds<'q>>(&'static self, query: Q) -> Q {
        let query = query
            .with(&self.status[..])
            .with(&self.failure[..])
            .with(&self.first_sent[..])
            .with(&self.test_number[..]);
        bind_decided(query, &self.decided)
    }
}

impl Rules for RequestedRules {
    fn bind_to<'q, Q: Binds<'q>>(&'static self, query: Q) -> Q {
        bind_decided(query.with(&self.test_number[..]), &self.decided)
    }
}

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
                        r.event, r.once, r.outcome, r.timed
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
        "id, verification_id, client_id, status, failure"
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
            ".failure"
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
                 select s.id, s.verification_id, s.client_id, s.status, s.failure, v.created_at, v.country,
                        coalesce(v.test_number, true) as test_number,
                        s.status = 'sent' and not exists (
                            select 1 from outbox_messages o
                            where o.verification_id = s.verification_id and o.status = 'sent' and o.id <> s.id)
                            as first_sent
                 from ", $source, " s left join verifications v on v.id = s.verification_id),
             decided as (
                 select f.verification_id, f.client_id, f.created_at, f.country, f.failure,
                        null::float8 as approval_seconds, r.event, r.once, r.outcome, r.timed
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
                        null::float8 as approval_seconds, r.event, r.once, r.outcome, r.timed
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
/// `once`): only for a client whose endpoint is set and enabled, a `once`
/// event only if its verification has not had it, each due no sooner than
/// the verification's earlier pending events (they go out in order).
macro_rules! record_events {
    ($source:literal) => {
        concat!(
            ", events as (
                 insert into webhook_events (id, client_id, verification_id, type, next_attempt_at)
                 select gen_random_uuid(), d.client_id, d.verification_id, d.event,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_is_in_its_table_once() {
        assert_eq!(ENDED.status.len(), 5 * 2 * 2);
        assert_eq!(SETTLED.status.len(), 7 * 2 * 2 * 2);
        assert_eq!(REQUESTED.test_number.len(), 2);
        for d in [&ENDED.decided, &SETTLED.decided, &REQUESTED.decided] {
            let n = d.event.len();
            assert!(d.once.len() == n && d.outcome.len() == n && d.timed.len() == n);
        }
    }

    #[test]
    fn the_tables_say_what_the_rules_say() {
        let i = (0..ENDED.status.len())
            .find(|&i| ENDED.status[i] == "expired" && ENDED.locked[i] && !ENDED.test_number[i])
            .unwrap();
        assert_eq!(
            (ENDED.decided.event[i], ENDED.decided.outcome[i]),
            (None, Some("locked"))
        );
        let i = (0..ENDED.status.len())
            .find(|&i| ENDED.status[i] == "approved" && !ENDED.locked[i] && !ENDED.test_number[i])
            .unwrap();
        assert_eq!(ENDED.decided.event[i], Some("verification.approved"));
        assert!(ENDED.decided.once[i] && ENDED.decided.timed[i]);
        let i = (0..SETTLED.status.len())
            .find(|&i| SETTLED.status[i] == "sent" && !SETTLED.first_sent[i] && !SETTLED.test_number[i])
            .unwrap();
        assert_eq!(SETTLED.decided.event[i], Some("verification.sent"));
        assert!(!SETTLED.decided.once[i]);
        assert_eq!(SETTLED.decided.outcome[i], None);
        assert_eq!(REQUESTED.decided.outcome, [Some("requested"), None]);
    }
}
