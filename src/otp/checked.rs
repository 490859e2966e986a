//! What checking a code came to, when it was judged: approved, or wrong.
//! A wrong code carries what the attempt's reservation read, so an answer
//! that shows the verification (`/twilio`'s check) needs no second read.

use chrono::{DateTime, Utc};

use super::Verification;
use super::rules;
use crate::domain::{Channel, VerificationId, VerificationStatus};
use crate::error::Error;
use crate::store::verifications::Reserved;

#[derive(Debug)]
pub enum Checked {
    /// The right code: the verification as it now stands.
    Approved(Verification),
    /// A wrong (or malformed) code, counted.
    Wrong(WrongCode),
}

/// A counted wrong code, and the verification as its attempt left it.
#[derive(Debug, Clone)]
pub struct WrongCode {
    pub id: VerificationId,
    /// E.164.
    pub phone: String,
    /// The channel asked for through `/twilio`, if it was.
    pub channel: Option<Channel>,
    /// Counting this one.
    pub failed_attempts: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WrongCode {
    pub(super) fn new(id: VerificationId, reserved: Reserved) -> Self {
        Self {
            id,
            phone: reserved.phone,
            channel: reserved.channel,
            failed_attempts: reserved.failed_attempts,
            max_attempts: reserved.max_attempts,
            created_at: reserved.created_at,
            updated_at: reserved.updated_at,
        }
    }

    /// Whether this attempt used the last one allowed.
    pub fn locked(&self) -> bool {
        rules::locks(self.failed_attempts, self.max_attempts)
    }

    /// How a read shows it now: a locked verification reads
    /// `max_attempts_reached` (no status is written for it).
    pub fn status(&self) -> VerificationStatus {
        match self.locked() {
            true => VerificationStatus::MaxAttemptsReached,
            false => VerificationStatus::Pending,
        }
    }

    /// The native API's answer: `invalid_code`, with the attempts left.
    pub fn to_error(&self) -> Error {
        Error::InvalidCode {
            id: self.id.0,
            attempts_remaining: rules::attempts_remaining(self.failed_attempts, self.max_attempts),
        }
    }
}

impl Checked {
    /// The approved verification; a wrong code as the error the native API answers.
    pub fn approved(self) -> Result<Verification, Error> {
        match self {
            Checked::Approved(verification) => Ok(verification),
            Checked::Wrong(wrong) => Err(wrong.to_error()),
        }
    }

    /// How a check's outcome is counted (`otp_verify_outcomes_total`): the
    /// problem code it answers by, or `approved`, whichever API asked.
    pub fn counted(outcome: &Result<Checked, Error>) -> &'static str {
        match outcome {
            Ok(Checked::Approved(_)) => "approved",
            Ok(Checked::Wrong(wrong)) => wrong.to_error().problem().code,
            Err(e) => e.problem().code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong(failed_attempts: i32, max_attempts: i32) -> WrongCode {
        WrongCode {
            id: VerificationId(uuid::Uuid::nil()),
            phone: "+59169657008".into(),
            channel: None,
            failed_attempts,
            max_attempts,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn the_wrong_code_that_uses_the_last_attempt_reads_max_attempts_reached() {
        let table = [
            (1, 5, VerificationStatus::Pending, 4),
            (4, 5, VerificationStatus::Pending, 1),
            (5, 5, VerificationStatus::MaxAttemptsReached, 0),
            (1, 1, VerificationStatus::MaxAttemptsReached, 0),
        ];
        for (failed, max, status, left) in table {
            let wrong = wrong(failed, max);
            assert_eq!(wrong.status(), status, "{failed}/{max}");
            match wrong.to_error() {
                Error::InvalidCode {
                    attempts_remaining, ..
                } => assert_eq!(attempts_remaining, left, "{failed}/{max}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_wrong_code_is_counted_as_the_native_api_answers_it() {
        assert_eq!(Checked::counted(&Ok(Checked::Wrong(wrong(1, 5)))), "invalid_code");
        assert_eq!(Checked::counted(&Err(Error::NotFound("gone"))), "not_found");
    }
}
