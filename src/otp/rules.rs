//! The verification rules as decisions: what a refused attempt, cancel or
//! resend means, from what the store read. No I/O here.

use crate::domain::{VerificationId, VerificationStatus};
use crate::error::{Error, Window};
use crate::store::verifications::{Resendable, State};

/// Why a verification cannot be attempted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// The code's time is up; `mark` when it still says `pending`.
    Expired {
        mark: bool,
    },
    /// Its wrong codes are used up. Waiting does not help (a new request
    /// replaces it at once), so its answer carries no `Retry-After`.
    Locked,
    NotPending(VerificationStatus),
}

/// Says why a verification that the attempt reservation did not take cannot
/// be attempted; `None` when it could be after all (a race: try again).
pub fn refusal(state: Option<&State>) -> Option<Refusal> {
    let Some(state) = state else {
        return Some(Refusal::NotFound);
    };
    Some(match state.status {
        VerificationStatus::Pending if state.expired => Refusal::Expired { mark: true },
        VerificationStatus::Pending if state.failed_attempts >= state.max_attempts => Refusal::Locked,
        VerificationStatus::Pending => return None,
        VerificationStatus::MaxAttemptsReached => Refusal::Locked,
        VerificationStatus::Expired => Refusal::Expired { mark: false },
        status => Refusal::NotPending(status),
    })
}

impl Refusal {
    /// The answer to a verify.
    pub fn for_verify(self, id: VerificationId) -> Error {
        match self {
            Refusal::NotFound => Error::NotFound("no such verification"),
            Refusal::Expired { .. } => Error::Expired { id: id.0 },
            Refusal::Locked => Error::MaxAttemptsReached { id: id.0 },
            Refusal::NotPending(status) => Error::NotPending { id: id.0, status },
        }
    }

    /// The answer to a cancel: an expired or locked verification is simply not pending.
    pub fn for_cancel(self, id: VerificationId) -> Error {
        match self {
            Refusal::Expired { .. } => Error::NotPending {
                id: id.0,
                status: VerificationStatus::Expired,
            },
            Refusal::Locked => Error::NotPending {
                id: id.0,
                status: VerificationStatus::MaxAttemptsReached,
            },
            other => other.for_verify(id),
        }
    }
}

/// Whether a request may resend `pending`: its sends may be used up, or its
/// cooldown not over.
pub fn resend_refusal(pending: &Resendable, max_sends: u32) -> Option<Error> {
    if pending.sends >= max_sends as i32 {
        return Some(Error::RateLimited {
            detail: format!(
                "this verification has been sent {} times, the most allowed; a new one can be requested when it expires",
                pending.sends
            ),
            retry_after: pending.expires_in.max(1) as u64,
            window: Window::VerificationSends,
        });
    }
    (pending.cooldown_left > 0).then(|| Error::ResendTooSoon {
        id: pending.id.0,
        retry_after: pending.cooldown_left as u64,
    })
}

/// Whether the failed attempts reached the limit (the verification reads as
/// `max_attempts_reached` from now on).
pub fn locks(failed_attempts: i32, max_attempts: i32) -> bool {
    failed_attempts >= max_attempts
}

/// The attempts a verification still allows after the one just counted.
pub fn attempts_remaining(failed_attempts: i32, max_attempts: i32) -> u32 {
    (max_attempts - failed_attempts).max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: VerificationStatus, expired: bool, failed: i32) -> State {
        State {
            status,
            expired,
            failed_attempts: failed,
            max_attempts: 5,
            expires_in: 42,
        }
    }

    #[test]
    fn every_verification_state_has_its_refusal() {
        use VerificationStatus as S;
        assert_eq!(refusal(None), Some(Refusal::NotFound));
        assert_eq!(refusal(Some(&state(S::Pending, false, 0))), None, "attemptable");
        assert_eq!(
            refusal(Some(&state(S::Pending, true, 0))),
            Some(Refusal::Expired { mark: true })
        );
        assert_eq!(
            refusal(Some(&state(S::Pending, true, 5))),
            Some(Refusal::Expired { mark: true }),
            "expiry wins over the lock"
        );
        assert_eq!(refusal(Some(&state(S::Pending, false, 5))), Some(Refusal::Locked));
        assert_eq!(
            refusal(Some(&state(S::MaxAttemptsReached, false, 5))),
            Some(Refusal::Locked)
        );
        assert_eq!(
            refusal(Some(&state(S::Expired, true, 0))),
            Some(Refusal::Expired { mark: false })
        );
        for status in [S::Approved, S::Canceled, S::Failed] {
            assert_eq!(
                refusal(Some(&state(status, false, 0))),
                Some(Refusal::NotPending(status))
            );
        }
    }

    #[test]
    fn a_cancel_calls_expired_and_locked_not_pending() {
        let id = VerificationId::new();
        assert!(matches!(
            Refusal::Expired { mark: false }.for_cancel(id),
            Error::NotPending {
                status: VerificationStatus::Expired,
                ..
            }
        ));
        assert!(matches!(
            Refusal::Locked.for_cancel(id),
            Error::NotPending {
                status: VerificationStatus::MaxAttemptsReached,
                ..
            }
        ));
        assert!(matches!(
            Refusal::Expired { mark: true }.for_verify(id),
            Error::Expired { .. }
        ));
        assert!(matches!(Refusal::NotFound.for_cancel(id), Error::NotFound(_)));
    }

    #[test]
    fn resends_wait_for_the_cooldown_and_stop_at_the_most_sends() {
        let pending = |sends, cooldown_left| Resendable {
            id: VerificationId::new(),
            sends,
            cooldown_left,
            expires_in: 300,
        };
        assert!(resend_refusal(&pending(1, 0), 5).is_none());
        assert!(resend_refusal(&pending(1, -3), 5).is_none());
        assert!(matches!(
            resend_refusal(&pending(1, 12), 5),
            Some(Error::ResendTooSoon { retry_after: 12, .. })
        ));
        assert!(matches!(
            resend_refusal(&pending(5, 0), 5),
            Some(Error::RateLimited { retry_after: 300, .. })
        ));
        assert_eq!(attempts_remaining(5, 5), 0);
        assert_eq!(attempts_remaining(6, 5), 0);
        assert_eq!(attempts_remaining(2, 5), 3);
    }
}
