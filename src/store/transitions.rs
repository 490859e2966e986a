//! What a change of a verification or of its message tells (a webhook event,
//! a stats outcome), written by the statement that makes the change: the
//! decisions are `domain::transitions`' (`events_for`, `outcome`,
//! `approval_bucket`), bound into the statement as a table of every case, and
//! the statement joins the rows it changed to that table. No trigger decides
//! them (V16 dropped the ones that did); the database keeps only what must
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

mod sql;
pub(crate) use sql::{
    decide_ended, decide_requested, decide_settled, ended_columns, record_decided, record_events,
    settled_columns, settling,
};

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
