use super::*;
use FailureReason as F;
use MessageStatus as M;
use VerificationStatus as V;

fn ended(to: V, locked: bool) -> Transition {
    Transition::Ended { to, locked }
}

fn settled(to: M, failure: Option<F>, first_sent: bool) -> Transition {
    Transition::Settled {
        to,
        failure,
        first_sent,
    }
}

#[test]
fn names_round_trip_and_match_serde() {
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.as_str()), Some(t));
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
    assert_eq!(EventType::parse("verification.unknown"), None);
    for o in Outcome::ALL {
        assert_eq!(o.as_str().parse::<Outcome>(), Ok(*o));
    }
}

#[test]
fn an_end_tells_its_event_once_and_a_send_or_failure_every_time() {
    let table = [
        (EventType::Sent, false),
        (EventType::DeliveryFailed, false),
        (EventType::Approved, true),
        (EventType::Expired, true),
        (EventType::MaxAttemptsReached, true),
        (EventType::Canceled, true),
    ];
    for (event, once) in table {
        assert_eq!(event.once(), once, "{event:?}");
    }
}

#[test]
fn each_end_of_a_verification_yields_its_event() {
    let table = [
        (V::Approved, false, Some(EventType::Approved)),
        (V::Approved, true, Some(EventType::Approved)),
        (V::Canceled, false, Some(EventType::Canceled)),
        (V::Canceled, true, Some(EventType::Canceled)),
        (V::MaxAttemptsReached, false, Some(EventType::MaxAttemptsReached)),
        (V::MaxAttemptsReached, true, Some(EventType::MaxAttemptsReached)),
        (V::Expired, false, Some(EventType::Expired)),
        // Its lock was already told: the expiry after it says nothing new.
        (V::Expired, true, None),
        // An undeliverable code: its message's failure is the event.
        (V::Failed, false, None),
        (V::Failed, true, None),
        (V::Pending, false, None),
    ];
    for (to, locked, event) in table {
        assert_eq!(events_for(ended(to, locked)), event, "{to:?} locked={locked}");
    }
}

#[test]
fn each_settled_message_yields_its_event() {
    let table = [
        (M::Sent, None, true, Some(EventType::Sent)),
        (M::Sent, None, false, Some(EventType::Sent)),
        (
            M::Failed,
            Some(F::PhoneRejected),
            false,
            Some(EventType::DeliveryFailed),
        ),
        (
            M::Failed,
            Some(F::SessionEnded),
            false,
            Some(EventType::DeliveryFailed),
        ),
        (
            M::Failed,
            Some(F::Unauthorized),
            false,
            Some(EventType::DeliveryFailed),
        ),
        (
            M::Failed,
            Some(F::ExpiredBeforeSend),
            false,
            Some(EventType::DeliveryFailed),
        ),
        (
            M::Failed,
            Some(F::Unreadable),
            false,
            Some(EventType::DeliveryFailed),
        ),
        (M::Failed, None, false, Some(EventType::DeliveryFailed)),
        // Given up because its verification ended: that end is the event.
        (M::Failed, Some(F::Canceled), false, None),
        (M::Superseded, None, false, None),
        (M::Queued, None, false, None),
    ];
    for (to, failure, first, event) in table {
        assert_eq!(
            events_for(settled(to, failure, first)),
            event,
            "{to:?} {failure:?}"
        );
    }
}

#[test]
fn a_request_tells_nothing_and_attempts_running_out_tell_the_lock() {
    assert_eq!(events_for(Transition::Requested), None);
    assert_eq!(
        events_for(Transition::AttemptsRanOut),
        Some(EventType::MaxAttemptsReached)
    );
}

#[test]
fn each_end_of_a_verification_counts_its_outcome() {
    let table = [
        (V::Approved, false, Some(Outcome::Approved)),
        // A right code reserved before the lock: approved all the same.
        (V::Approved, true, Some(Outcome::Approved)),
        (V::Expired, false, Some(Outcome::Expired)),
        (V::Expired, true, Some(Outcome::Locked)),
        (V::MaxAttemptsReached, true, Some(Outcome::Locked)),
        (V::MaxAttemptsReached, false, None),
        (V::Failed, true, Some(Outcome::Locked)),
        (V::Failed, false, None),
        (V::Canceled, false, None),
        (V::Canceled, true, None),
        (V::Pending, false, None),
    ];
    for (to, locked, counted) in table {
        assert_eq!(
            outcome(ended(to, locked), false),
            counted,
            "{to:?} locked={locked}"
        );
    }
}

#[test]
fn a_verification_is_sent_once_and_each_failure_counts() {
    let table = [
        (M::Sent, None, true, Some(Outcome::Sent)),
        // A resend that went out: the verification was already sent.
        (M::Sent, None, false, None),
        (
            M::Failed,
            Some(F::PhoneRejected),
            false,
            Some(Outcome::DeliveryFailed),
        ),
        (M::Failed, Some(F::Canceled), false, Some(Outcome::DeliveryFailed)),
        (
            M::Failed,
            Some(F::Unreadable),
            false,
            Some(Outcome::DeliveryFailed),
        ),
        (M::Superseded, None, false, None),
    ];
    for (to, failure, first, counted) in table {
        assert_eq!(
            outcome(settled(to, failure, first), false),
            counted,
            "{to:?} {failure:?} {first}"
        );
    }
    assert_eq!(outcome(Transition::Requested, false), Some(Outcome::Requested));
    assert_eq!(outcome(Transition::AttemptsRanOut, false), None);
}

#[test]
fn a_test_number_is_never_counted() {
    let every = [
        Transition::Requested,
        ended(V::Approved, false),
        ended(V::Expired, false),
        ended(V::Expired, true),
        settled(M::Sent, None, true),
        settled(M::Failed, Some(F::PhoneRejected), false),
    ];
    for transition in every {
        assert_eq!(outcome(transition, true), None, "{transition:?}");
    }
}

#[test]
fn only_an_approval_is_timed() {
    for o in Outcome::ALL {
        assert_eq!(o.timed(), *o == Outcome::Approved, "{o:?}");
    }
}

#[test]
fn approvals_are_bucketed_by_the_second_then_the_minute_then_the_day() {
    let table = [
        (-3.0, 0),
        (0.0, 0),
        (0.99, 0),
        (42.7, 42),
        (599.9, 599),
        (600.0, 600),
        (659.0, 600),
        (660.0, 660),
        (3_725.5, 3_720),
        (86_399.0, 86_340),
        (86_400.0, 86_400),
        (1_000_000.0, 86_400),
    ];
    for (seconds, bucket) in table {
        assert_eq!(approval_bucket(seconds), bucket, "{seconds}");
    }
}
