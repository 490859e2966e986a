//! Every way a call can fail, one case per row of the error table in docs/api.md.
//! `http::errors` turns each into an RFC 9457 problem document.

use phonenumber::country::Id as CountryId;
use uuid::Uuid;

use crate::domain::{FieldError, VerificationStatus};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    /// A setting (or a test number's code or end) that is refused, by name.
    #[error("{0}")]
    InvalidField(FieldError),
    #[error("{0}")]
    InvalidPhone(String),
    #[error("a valid X-Api-Key header is required")]
    Unauthorized,
    #[error("a valid X-Admin-Key header (or Basic credentials with the admin key as password) is required")]
    AdminUnauthorized,
    #[error("a browser request from a page of another origin is refused")]
    CrossOrigin,
    #[error("{}", country_refusal(*.country, .allowed))]
    CountryNotAllowed {
        country: Option<CountryId>,
        allowed: Vec<CountryId>,
    },
    #[error("{0}")]
    NotFound(&'static str),
    #[error("a client named `{0}` already exists")]
    ClientExists(String),
    #[error("this endpoint does not take that method; it takes {allow}")]
    MethodNotAllowed { allow: String },
    #[error("the verification is {}, not pending", .status.as_str())]
    NotPending { id: Uuid, status: VerificationStatus },
    #[error("the code has expired; request a new one")]
    Expired { id: Uuid },
    #[error("the code is not correct")]
    InvalidCode { id: Uuid, attempts_remaining: u32 },
    #[error("the gateway refused the phone number; the verification has failed")]
    PhoneRejected { id: Uuid },
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being answered; retry shortly")]
    IdempotencyKeyInUse,
    #[error(
        "this verification's wrong codes are used up, so even the right code is refused now; request a new code (POST /otp/request with the same phone and purpose), which can be done at once"
    )]
    MaxAttemptsReached { id: Uuid },
    #[error("a new code can be sent in {retry_after} s")]
    ResendTooSoon { id: Uuid, retry_after: u64 },
    #[error("{detail}")]
    RateLimited {
        detail: String,
        retry_after: u64,
        window: Window,
    },
    /// The number's prefix or country, or the end user's network, is
    /// blocked by the operators (or, in `enforce` mode, flagged in this
    /// client's traffic): refused before anything is counted or sent.
    #[error("codes to this number are refused for now: it, or the end user's network, is suspected of fraud")]
    SuspectedFraud { retry_after: u64 },
    #[error("{detail}")]
    DeliveryUnavailable { detail: String, retry_after: u64 },
    #[error("{0}")]
    QrUnavailable(String),
    #[error("the service is temporarily unavailable")]
    Unavailable { retry_after: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // The database is unreachable: a passing condition, not a bug.
            // Refused, reset, silent (the pool's wait runs out) or answering
            // something that is not PostgreSQL (TLS or protocol garbage).
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::BeginFailed
            | sqlx::Error::PoolClosed => unavailable(e),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_unavailable_state(&c)) => {
                unavailable(e)
            }
            other => Error::Internal(other.into()),
        }
    }
}

fn unavailable(e: sqlx::Error) -> Error {
    tracing::warn!(error = %e, "database unavailable");
    Error::Unavailable { retry_after: 5 }
}

/// SQLSTATEs a server sends while it stops, starts, is full or too slow: the
/// connection class (08), shutdowns and "cannot connect now" (57P01-57P03),
/// insufficient resources (53), such as too many connections, and a statement
/// cancelled by `OTP_DB_STATEMENT_TIMEOUT_MS` (57014; the service cancels no
/// statement otherwise).
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03" | "57014")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The window that refused a request (`rate_limited`): a fixed set, so that
/// it can label `otp_request_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A client's codes to one phone in an hour.
    PhoneSends,
    /// Every client's codes to one phone in an hour.
    PhoneSendsAllClients,
    /// A client's requests from one end-user network in an hour.
    EndUserIp,
    /// A client's requests in a minute.
    ClientRequests,
    /// The sends one verification allows.
    VerificationSends,
    /// Wrong codes for one phone in an hour or a day.
    WrongCodes,
    /// Wrong admin credentials from one address in a minute.
    AdminFailures,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::PhoneSends => "phone_sends",
            Window::PhoneSendsAllClients => "phone_sends_all_clients",
            Window::EndUserIp => "end_user_ip",
            Window::ClientRequests => "client_requests",
            Window::VerificationSends => "verification_sends",
            Window::WrongCodes => "wrong_codes",
            Window::AdminFailures => "admin_failures",
        }
    }
}

impl Error {
    /// Why a `rate_limited` request was refused: `suspected_fraud`, or the
    /// window's name; empty for every other error (the code says it all).
    pub fn refusal_reason(&self) -> &'static str {
        match self {
            Error::SuspectedFraud { .. } => "suspected_fraud",
            Error::RateLimited { window, .. } => window.as_str(),
            _ => "",
        }
    }
}

/// `country_not_allowed`'s detail: the number's country, the list, and the
/// ways out. The list is the calling client's own (or the service's default).
fn country_refusal(country: Option<CountryId>, allowed: &[CountryId]) -> String {
    let country = country.map_or_else(
        || "a number of no single country".to_owned(),
        |c| format!("a number of {}", c.as_ref()),
    );
    let allowed: Vec<&str> = allowed.iter().map(|c| c.as_ref()).collect();
    format!(
        "`phone` is {country}, and this client sends codes only to numbers of {} (its \
         `allowed_countries`, or the service's OTP_ALLOWED_COUNTRIES): ask the person for a \
         number of one of these countries, or have an operator widen the list",
        allowed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_going_away_is_unavailable_and_a_bug_is_not() {
        for code in ["08006", "08001", "57P01", "57P03", "53300", "57014"] {
            assert!(is_unavailable_state(code), "{code}");
        }
        for code in ["23505", "42P01", "40001"] {
            assert!(!is_unavailable_state(code), "{code}");
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            Error::from(sqlx::Error::Io(refused)),
            Error::Unavailable { .. }
        ));
        for garbage in [
            sqlx::Error::Protocol("unexpected response from SSLRequest: 0x48".into()),
            sqlx::Error::WorkerCrashed,
            sqlx::Error::PoolTimedOut,
        ] {
            assert!(matches!(Error::from(garbage), Error::Unavailable { .. }));
        }
        assert!(matches!(
            Error::from(sqlx::Error::RowNotFound),
            Error::Internal(_)
        ));
        assert!(matches!(
            Error::from(sqlx::Error::ColumnNotFound("x".into())),
            Error::Internal(_)
        ));
    }
}
