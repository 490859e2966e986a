//! What to do after each answer of the gateway (and when no send could be
//! made): pure decisions, tested below. `Delivery` carries them out.

use std::time::Duration;

use tracing::Level;

use super::gateway::{SendOutcome, bounded};
use crate::domain::{FailureReason, KeyState};

/// How long a key rests after a 429 that did not say how long.
pub const RATE_LIMIT_REST: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Everything an attempt's end comes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub message: MessageStep,
    pub key: KeyStep,
    /// Give the slot back: the gateway surely sent nothing, so it did not count it.
    pub refund: bool,
    /// Have the dispatcher look at the queue now (the other keys can take it).
    pub wake: bool,
    /// `otp_messages_total`'s `result` and `class`.
    pub metric: Option<(&'static str, &'static str)>,
    pub log: Option<Log>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageStep {
    Sent {
        provider_message_id: Option<String>,
    },
    /// Give the message up, and fail its verification; `error` is for operators.
    Fail {
        reason: FailureReason,
        error: String,
    },
    /// Back in the queue, due after `after`. Not `counted`: the claim was no attempt.
    Requeue {
        after: Duration,
        error: String,
        counted: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyStep {
    Keep,
    /// The key stays in service; its error is shown.
    Note(String),
    Rest {
        rest: Duration,
        error: String,
    },
    /// Out of service until an operator resumes it.
    TakeOut {
        state: KeyState,
        error: String,
    },
}

/// One log line: its level, its text, and the fields it has.
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub level: Level,
    pub text: &'static str,
    pub reason: Option<String>,
    pub status: Option<u16>,
    pub answer: Option<String>,
    pub rest_ms: Option<u64>,
    pub retry_in_ms: Option<u64>,
}

impl Log {
    fn new(level: Level, text: &'static str) -> Self {
        Self {
            level,
            text,
            reason: None,
            status: None,
            answer: None,
            rest_ms: None,
            retry_in_ms: None,
        }
    }
}

impl Step {
    fn new(message: MessageStep, metric: (&'static str, &'static str), log: Log) -> Self {
        Self {
            message,
            key: KeyStep::Keep,
            refund: false,
            wake: false,
            metric: Some(metric),
            log: Some(log),
        }
    }
}

/// What to do with the gateway's answer to a message's `attempts`th send;
/// `jitter` is a random number in [0, 1), spreading the retries.
pub fn plan(outcome: &SendOutcome, attempts: i32, jitter: f64) -> Step {
    match outcome {
        SendOutcome::Sent { provider_message_id } => Step::new(
            MessageStep::Sent {
                provider_message_id: provider_message_id.clone(),
            },
            ("sent", "ok"),
            Log::new(Level::INFO, "sent"),
        ),
        SendOutcome::PhoneRejected => Step::new(
            MessageStep::Fail {
                reason: FailureReason::PhoneRejected,
                error: "gateway answered 400: invalid phone number".into(),
            },
            ("given_up", "phone_rejected"),
            Log::new(Level::WARN, "gateway rejected the phone number"),
        ),
        SendOutcome::SessionEnded => key_taken_out(KeyState::SessionEnded, "session_ended"),
        SendOutcome::Unauthorized => key_taken_out(KeyState::Unauthorized, "unauthorized"),
        SendOutcome::RateLimited { retry_after } => rate_limited(*retry_after),
        SendOutcome::Refused {
            status,
            message,
            retry_after,
        } => refused(*status, message, retry_delay(*retry_after, attempts, jitter)),
        SendOutcome::Unavailable {
            reason,
            retry_after,
            maybe_sent,
        } => unavailable(reason, *maybe_sent, retry_delay(*retry_after, attempts, jitter)),
    }
}

/// The key is dead until an operator acts (`reason`): out of service, and
/// the message straight back to the queue, for the other keys.
fn key_taken_out(state: KeyState, reason: &'static str) -> Step {
    let requeue = MessageStep::Requeue {
        after: Duration::ZERO,
        error: reason.into(),
        counted: true,
    };
    let log = Log {
        reason: Some(reason.into()),
        ..Log::new(
            Level::ERROR,
            "gateway key taken out of service; it needs an operator",
        )
    };
    Step {
        key: KeyStep::TakeOut {
            state,
            error: reason.into(),
        },
        wake: true,
        ..Step::new(requeue, ("retried", reason), log)
    }
}

/// A 429: the key rests as long as the gateway said (or `RATE_LIMIT_REST`).
fn rate_limited(retry_after: Option<Duration>) -> Step {
    let rest = bounded(retry_after.unwrap_or(RATE_LIMIT_REST));
    let error = "gateway answered 429";
    let log = Log {
        rest_ms: Some(rest.as_millis() as u64),
        ..Log::new(Level::WARN, "gateway rate limit")
    };
    Step {
        key: KeyStep::Rest {
            rest,
            error: error.into(),
        },
        ..Step::new(requeue(rest, error), ("retried", "rate_limited"), log)
    }
}

/// Not an answer the contract knows: neither a dead key nor a bad number.
/// The key rests as after a 503, and an operator is told.
fn refused(status: u16, message: &str, delay: Duration) -> Step {
    let error = format!("gateway answered {status}: {message}");
    let log = Log {
        status: Some(status),
        answer: Some(message.to_owned()),
        retry_in_ms: Some(delay.as_millis() as u64),
        ..Log::new(
            Level::ERROR,
            "gateway gave an answer the contract does not name; the key rests and the message is retried",
        )
    };
    Step {
        key: KeyStep::Rest {
            rest: delay,
            error: error.clone(),
        },
        ..Step::new(requeue(delay, &error), ("retried", "refused"), log)
    }
}

/// The gateway could not be reached or answered 5xx; `maybe_sent` when it
/// timed out after the request went out.
fn unavailable(reason: &str, maybe_sent: bool, delay: Duration) -> Step {
    let class = if maybe_sent { "timeout" } else { "unavailable" };
    let log = Log {
        reason: Some(reason.to_owned()),
        retry_in_ms: Some(delay.as_millis() as u64),
        ..Log::new(Level::WARN, "gateway unavailable")
    };
    Step {
        key: KeyStep::Note(reason.to_owned()),
        // A timeout keeps its slot: the message may have gone out.
        refund: !maybe_sent,
        ..Step::new(requeue(delay, reason), ("retried", class), log)
    }
}

/// A message whose text cannot be opened: it fails, and gives back any slot
/// taken for it (nothing was sent).
pub fn unreadable() -> Step {
    Step {
        refund: true,
        ..Step::new(
            MessageStep::Fail {
                reason: FailureReason::Unreadable,
                error: "the text cannot be opened".into(),
            },
            ("given_up", "unreadable"),
            Log::new(
                Level::ERROR,
                "the message cannot be opened (was OTP_PEPPER changed?); it fails",
            ),
        )
    }
}

/// No key is in service (`reason` is the first key's): the message fails now,
/// so that its caller learns it now rather than at expiry.
pub fn no_key_in_service(reason: FailureReason) -> Step {
    let log = Log {
        reason: Some(reason.as_str().into()),
        ..Log::new(Level::ERROR, "no gateway key can deliver; the message fails")
    };
    Step::new(
        MessageStep::Fail {
            reason,
            error: "no gateway key in service".into(),
        },
        ("given_up", "no_key_in_service"),
        log,
    )
}

/// Every key in service is busy or resting: back in the queue, and the claim
/// was no attempt.
pub fn wait_for_slot(wait: Duration) -> Step {
    Step {
        message: MessageStep::Requeue {
            after: wait,
            error: "waiting for a free gateway slot".into(),
            counted: false,
        },
        key: KeyStep::Keep,
        refund: false,
        wake: false,
        metric: None,
        log: None,
    }
}

fn requeue(after: Duration, error: &str) -> MessageStep {
    MessageStep::Requeue {
        after,
        error: error.into(),
        counted: true,
    }
}

/// The backoff, or longer if the gateway asked for longer.
fn retry_delay(retry_after: Option<Duration>, attempts: i32, jitter: f64) -> Duration {
    bounded(retry_after.unwrap_or_default()).max(backoff(attempts, jitter))
}

/// Exponential backoff from one second, capped, with "equal jitter": at least
/// half the step, so retries spread out but still grow.
pub fn backoff(attempts: i32, jitter: f64) -> Duration {
    let exponent = attempts.clamp(1, 16) as u32 - 1;
    let step = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    let half = step / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
