//! Every answer class of docs/waconecta.md, and the ones it does not name.

use super::*;
use crate::delivery::gateway::MAX_RETRY_AFTER;

const SECOND: Duration = Duration::from_secs(1);

fn requeued(step: &Step) -> (Duration, &str, bool) {
    match &step.message {
        MessageStep::Requeue {
            after,
            error,
            counted,
        } => (*after, error.as_str(), *counted),
        other => panic!("not requeued: {other:?}"),
    }
}

fn failed(step: &Step) -> FailureReason {
    match &step.message {
        MessageStep::Fail { reason, .. } => *reason,
        other => panic!("not failed: {other:?}"),
    }
}

#[test]
fn a_2xx_records_the_send_with_or_without_a_provider_id() {
    for id in [Some("BAE56A9BA190B10F".to_owned()), None] {
        let step = plan(
            &SendOutcome::Sent {
                provider_message_id: id.clone(),
            },
            1,
            0.5,
        );
        assert_eq!(
            step.message,
            MessageStep::Sent {
                provider_message_id: id
            }
        );
        assert_eq!(step.key, KeyStep::Keep);
        assert!(!step.refund && !step.wake);
        assert_eq!(step.metric, Some(("sent", "ok")));
        assert_eq!(step.log.unwrap().level, Level::INFO);
    }
}

#[test]
fn an_ended_session_or_a_401_takes_the_key_out_and_requeues_at_once() {
    for (outcome, state, reason) in [
        (SendOutcome::SessionEnded, KeyState::SessionEnded, "session_ended"),
        (SendOutcome::Unauthorized, KeyState::Unauthorized, "unauthorized"),
    ] {
        let step = plan(&outcome, 3, 0.5);
        assert_eq!(
            step.key,
            KeyStep::TakeOut {
                state,
                error: reason.into()
            }
        );
        assert_eq!(requeued(&step), (Duration::ZERO, reason, true));
        assert!(step.wake, "the other keys take it now");
        assert!(!step.refund, "the gateway counted the request");
        assert_eq!(step.metric, Some(("retried", reason)));
        let log = step.log.unwrap();
        assert_eq!(log.level, Level::ERROR);
        assert_eq!(log.reason.as_deref(), Some(reason));
    }
}

#[test]
fn an_invalid_phone_number_fails_the_verification_without_a_retry() {
    let step = plan(&SendOutcome::PhoneRejected, 1, 0.5);
    assert_eq!(failed(&step), FailureReason::PhoneRejected);
    assert_eq!(step.key, KeyStep::Keep);
    assert!(!step.refund);
    assert_eq!(step.metric, Some(("given_up", "phone_rejected")));
    assert_eq!(step.log.unwrap().level, Level::WARN);
}

#[test]
fn a_429_rests_the_key_for_its_retry_after_or_ten_seconds() {
    for (retry_after, rest) in [(Some(2 * SECOND), 2 * SECOND), (None, RATE_LIMIT_REST)] {
        let step = plan(&SendOutcome::RateLimited { retry_after }, 7, 0.9);
        assert_eq!(
            step.key,
            KeyStep::Rest {
                rest,
                error: "gateway answered 429".into()
            }
        );
        assert_eq!(requeued(&step), (rest, "gateway answered 429", true));
        assert!(!step.refund && !step.wake);
        assert_eq!(step.metric, Some(("retried", "rate_limited")));
        let log = step.log.unwrap();
        assert_eq!(log.rest_ms, Some(rest.as_millis() as u64));
        assert_eq!(log.level, Level::WARN);
    }
    assert_eq!(RATE_LIMIT_REST, 10 * SECOND);
}

#[test]
fn a_huge_retry_after_rests_the_key_at_most_15_minutes() {
    let day = Some(24 * 3600 * SECOND);
    let step = plan(&SendOutcome::RateLimited { retry_after: day }, 1, 0.5);
    assert_eq!(requeued(&step).0, 15 * 60 * SECOND);
    for outcome in [
        SendOutcome::Refused {
            status: 403,
            message: "forbidden".into(),
            retry_after: day,
        },
        SendOutcome::Unavailable {
            reason: "gateway answered 503".into(),
            retry_after: day,
            maybe_sent: false,
        },
    ] {
        assert_eq!(requeued(&plan(&outcome, 1, 0.5)).0, MAX_RETRY_AFTER);
    }
}

#[test]
fn a_stray_4xx_rests_the_key_like_a_503_and_retries() {
    let outcome = SendOutcome::Refused {
        status: 403,
        message: "forbidden".into(),
        retry_after: None,
    };
    let step = plan(&outcome, 3, 0.0);
    let error = "gateway answered 403: forbidden";
    // The third attempt's step is 4 s; with no jitter, half of it.
    assert_eq!(
        step.key,
        KeyStep::Rest {
            rest: 2 * SECOND,
            error: error.into()
        }
    );
    assert_eq!(requeued(&step), (2 * SECOND, error, true));
    assert!(!step.refund, "the gateway may have counted it");
    assert_eq!(step.metric, Some(("retried", "refused")));
    let log = step.log.unwrap();
    assert_eq!(log.level, Level::ERROR);
    assert_eq!(
        (log.status, log.answer.as_deref()),
        (Some(403), Some("forbidden"))
    );
    // A longer Retry-After wins over the backoff.
    let outcome = SendOutcome::Refused {
        status: 400,
        message: "bad request".into(),
        retry_after: Some(30 * SECOND),
    };
    assert_eq!(requeued(&plan(&outcome, 1, 0.5)).0, 30 * SECOND);
}

#[test]
fn a_5xx_or_a_refused_connection_backs_off_and_gives_the_slot_back() {
    let outcome = SendOutcome::Unavailable {
        reason: "gateway answered 503".into(),
        retry_after: None,
        maybe_sent: false,
    };
    let step = plan(&outcome, 2, 1.0 - f64::EPSILON);
    let (after, error, counted) = requeued(&step);
    assert!(after > SECOND.mul_f64(1.99) && after <= 2 * SECOND, "{after:?}");
    assert_eq!((error, counted), ("gateway answered 503", true));
    assert_eq!(step.key, KeyStep::Note("gateway answered 503".into()));
    assert!(step.refund);
    assert_eq!(step.metric, Some(("retried", "unavailable")));
    assert_eq!(step.log.unwrap().level, Level::WARN);

    let refused = SendOutcome::Unavailable {
        reason: "gateway connection failed".into(),
        retry_after: Some(5 * SECOND),
        maybe_sent: false,
    };
    let step = plan(&refused, 1, 0.5);
    assert_eq!(requeued(&step).0, 5 * SECOND, "Retry-After honoured");
    assert!(step.refund);
}

#[test]
fn a_timeout_keeps_its_slot_since_the_message_may_have_gone_out() {
    let outcome = SendOutcome::Unavailable {
        reason: "gateway timeout".into(),
        retry_after: None,
        maybe_sent: true,
    };
    let step = plan(&outcome, 1, 0.0);
    assert!(!step.refund);
    assert_eq!(requeued(&step).0, SECOND / 2);
    assert_eq!(step.metric, Some(("retried", "timeout")));
}

#[test]
fn what_no_send_could_be_made_for() {
    let step = unreadable();
    assert_eq!(failed(&step), FailureReason::Unreadable);
    assert!(step.refund);
    assert_eq!(step.metric, Some(("given_up", "unreadable")));

    let step = no_key_in_service(FailureReason::Unauthorized);
    assert_eq!(failed(&step), FailureReason::Unauthorized);
    assert_eq!(step.metric, Some(("given_up", "no_key_in_service")));

    let step = wait_for_slot();
    assert_eq!(
        requeued(&step),
        (Duration::ZERO, "waiting for a free gateway slot", false)
    );
    assert!(step.metric.is_none() && step.log.is_none());
}

#[test]
fn backoff_grows_and_is_capped() {
    for attempts in 1..40 {
        let step = Duration::from_secs(1u64 << (attempts.clamp(1, 16) - 1)).min(MAX_BACKOFF);
        assert_eq!(backoff(attempts, 0.0), step / 2, "{attempts}");
        let d = backoff(attempts, 0.999);
        assert!(d >= step / 2 && d <= step, "{attempts}: {d:?}");
    }
    assert_eq!(backoff(0, 0.0), SECOND / 2);
    assert_eq!(backoff(40, 0.0), MAX_BACKOFF / 2);
}
