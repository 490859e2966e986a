//! The abuse limits of SPEC.md: sends and failed codes per phone, requests per
//! end-user IP and per client. Each is a sliding window kept in PostgreSQL
//! (`limit_hits`, taken by `take_limit_slot`), so every replica shares it and
//! a slot is taken atomically: parallel requests can never get past it.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgExecutor;

use crate::clients::Client;
use crate::domain::PhoneNumber;
use crate::error::{Error, Result};
use crate::store::limits;

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The longest window: what `limit_hits` must keep.
pub const LONGEST_WINDOW: Duration = DAY;

/// The configured size of each limit.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub phone_sends_per_hour: u32,
    pub phone_failures_per_hour: u32,
    pub phone_failures_per_day: u32,
    pub ip_requests_per_hour: u32,
    /// For clients without a limit of their own.
    pub client_requests_per_minute: u32,
}

/// One window: what is counted, how many fit, over how long.
pub struct Bucket {
    key: String,
    max_hits: u32,
    span: Duration,
    refusal: String,
}

impl LimitSettings {
    pub fn phone_sends(&self, phone: &PhoneNumber) -> Bucket {
        Bucket {
            key: format!("phone-sends:{}", phone.as_e164()),
            max_hits: self.phone_sends_per_hour,
            span: HOUR,
            // Says nothing of who sent them: other clients' traffic is theirs.
            refusal: "too many codes have been sent to this phone number in the last hour".into(),
        }
    }

    /// The hourly window and the daily cap (NIST SP 800-63B's bound on guesses
    /// across all of a phone's verifications).
    pub fn phone_failures(&self, phone: &str) -> [Bucket; 2] {
        [
            Bucket {
                key: format!("phone-failures:{phone}"),
                max_hits: self.phone_failures_per_hour,
                span: HOUR,
                refusal: "too many wrong codes have been entered for this phone number in the last hour; \
                          no code is checked for it until then"
                    .into(),
            },
            Bucket {
                key: format!("phone-failures-day:{phone}"),
                max_hits: self.phone_failures_per_day,
                span: DAY,
                refusal: "too many wrong codes have been entered for this phone number today; \
                          no code is checked for it until then"
                    .into(),
            },
        ]
    }

    pub fn end_user_ip(&self, ip: IpAddr) -> Bucket {
        Bucket {
            key: format!("ip:{}", network(ip)),
            max_hits: self.ip_requests_per_hour,
            span: HOUR,
            refusal: format!(
                "this end-user IP address has made the {} requests allowed in an hour",
                self.ip_requests_per_hour
            ),
        }
    }

    pub fn client(&self, client: &Client) -> Bucket {
        let max_hits = client
            .requests_per_minute
            .map_or(self.client_requests_per_minute, |n| n.max(1) as u32);
        Bucket {
            key: format!("client:{}", client.id),
            max_hits,
            span: MINUTE,
            refusal: format!("this client has made the {max_hits} requests allowed in a minute"),
        }
    }
}

/// Wrong admin credentials from one source address: 10 a minute, then every
/// admin request from there waits, so the admin key cannot be guessed.
pub fn admin_failures(source: Option<IpAddr>) -> Bucket {
    Bucket {
        key: format!("admin-failures:{}", source.map_or("unknown".into(), network)),
        max_hits: 10,
        span: MINUTE,
        refusal: "too many wrong admin credentials from this address".into(),
    }
}

/// IPv6 users usually hold a whole /64, so that is what one "IP" is.
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

pub use crate::store::limits::HitId as Hit;

impl Bucket {
    /// Takes a slot, or answers `429 rate_limited` with the seconds until one frees.
    /// In a transaction, the slot counts only if the transaction commits.
    #[tracing::instrument(skip_all, fields(bucket = self.kind()))]
    pub async fn take(&self, db: impl PgExecutor<'_>) -> Result<Hit> {
        limits::take(db, &self.key, self.max_hits, self.span)
            .await?
            .map_err(|seconds| self.refused(seconds))
    }

    /// Refuses, without taking anything, when the window is already full: the
    /// cheap check made before work that a full window would waste.
    pub async fn check(&self, db: impl PgExecutor<'_>) -> Result<()> {
        match limits::wait(db, &self.key, self.max_hits, self.span).await? {
            seconds if seconds > 0.0 => Err(self.refused(seconds)),
            _ => Ok(()),
        }
    }

    fn refused(&self, seconds: f64) -> Error {
        Error::RateLimited {
            detail: format!("{}; try again later", self.refusal),
            // Rounded up: a caller that waits exactly this long is let in.
            retry_after: seconds.ceil().max(1.0) as u64,
        }
    }

    /// The kind of limit, for logs: never the phone or the IP.
    fn kind(&self) -> &str {
        self.key.split(':').next().unwrap_or_default()
    }
}
